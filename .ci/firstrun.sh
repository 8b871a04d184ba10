#!/usr/bin/env bash
# Measures the first run as a new user has it on a fresh clone (not part of
# CI; "go tool task firstrun:measure" runs it). With an empty module cache and
# an empty build cache it times
#   1. go tool task --version             (downloading and building go-task)
#   2. go tool task run -- <dev flags>    (building natter, up to "natter ready")
#   3. one SIGTERM to that "go tool task run" process until every process of
#      it has exited, and whether natter logged "natter stopped".
# The caches live in a temporary directory that is removed at the end; the
# natter binary and data go there too, so the working tree is left alone.
# Linux (setsid, ps --sid, /proc/loadavg).
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
cleanup() {
	if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
	chmod -R u+w "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export GOMODCACHE=$tmp/mod GOCACHE=$tmp/cache GOFLAGS="${GOFLAGS:-} -modcacherw"
now() { date +%s.%N; }
# alive: some process of the run's session has not exited (zombies aside).
alive() { ps -o stat= --sid "$pid" | grep -qv '^Z'; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

echo "firstrun: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version)"
TIMEFORMAT='firstrun: go tool task --version: %R s (cold caches; CPU %U s user, %S s system)'
time go tool task --version

# The task process runs in a process group of its own (setsid) so that the
# cleanup can end whatever it leaves behind.
start=$(now)
setsid go tool task run BIN="$tmp/natter" -- --data "$tmp/data" --http 127.0.0.1:0 --nats-port -1 >"$tmp/out" 2>&1 &
pid=$!
until grep -q 'msg="natter ready"' "$tmp/out"; do
	if ! kill -0 "$pid" 2>/dev/null; then
		cat "$tmp/out"
		echo "firstrun: go tool task run exited before natter was ready"
		exit 1
	fi
	sleep 0.2
done
echo "firstrun: go tool task run to \"natter ready\": $(since "$start") s (go-task already built)"
grep -m1 -v '^time=' "$tmp/out" || true

start=$(now)
kill -TERM "$pid"
for _ in $(seq 150); do
	alive || break
	sleep 0.2
done
if alive; then
	echo "firstrun: one SIGTERM: processes still running after 30 s:"
	ps -o pid,stat,args --sid "$pid" || true
	status=1
else
	echo "firstrun: one SIGTERM: every process gone after $(since "$start") s"
	status=0
fi
if grep -q 'msg="natter stopped"' "$tmp/out"; then
	echo "firstrun: natter logged \"natter stopped\""
else
	echo "firstrun: natter did not log \"natter stopped\""
	status=1
fi
exit $status
