#!/usr/bin/env bash
# Installs what the browser tests need, each only where it is missing, so
# that "go tool task test" passes on a fresh machine: Debian's chromium
# (apt-get, as root or through sudo; CHROMIUM=path uses another browser) and
# the Node packages of package-lock.json (npm ci; again only when
# package-lock.json changed since the last install).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "setup: the browser tests need Node.js >= 20 with npm (Debian 12's nodejs is 18: too old for playwright-core)" >&2
	exit 1
fi

if [ -n "${CHROMIUM:-}" ]; then
	[ -x "$CHROMIUM" ] || { echo "setup: CHROMIUM=$CHROMIUM is not an executable" >&2; exit 1; }
elif [ ! -x /usr/bin/chromium ]; then
	echo "setup: installing Debian's chromium (apt-get; once, about a minute)"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "setup: npm ci (clients/web)"
	npm ci --no-audit --no-fund --loglevel=error
fi
