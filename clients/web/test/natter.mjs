// Test helpers: a real natter dev process on free ports, and Chromium.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, "..", "..", "..");

/**
 * natterBinary returns the natter binary: NATTER_BIN if set, else one built
 * from this checkout into a temporary folder.
 */
export function natterBinary() {
  if (process.env.NATTER_BIN) return process.env.NATTER_BIN;
  const dir = mkdtempSync(join(tmpdir(), "natter-web-bin-"));
  const bin = join(dir, "natter");
  execFileSync("go", ["build", "-o", bin, "./cmd/natter"], { cwd: repo, stdio: "inherit" });
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return bin;
}

/**
 * startDev starts "natter dev" on free ports with a fresh data dir and
 * resolves once it logs "natter ready", with its base URL and a stop().
 */
export async function startDev(bin, extra = []) {
  const data = mkdtempSync(join(tmpdir(), "natter-web-data-"));
  const p = spawn(bin, ["dev", "--data", data, "--http", "127.0.0.1:0", "--nats-port", "-1", ...extra], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("natter dev not ready after 90s:\n" + log)), 90_000);
    p.stderr.setEncoding("utf8");
    p.stderr.on("data", (chunk) => {
      log += chunk;
      const m = /msg="natter ready".* http=(\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    p.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`natter dev exited with ${code}:\n${log}`));
    });
  });
  const addr = await ready;
  return {
    url: `http://${addr}/`,
    log: () => log,
    async stop() {
      if (p.exitCode === null) {
        const exited = new Promise((r) => p.once("exit", r));
        p.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
        if (p.exitCode === null) p.kill("SIGKILL");
      }
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** The system's Chromium (Debian's chromium package); CHROMIUM overrides the path. */
export function chromiumPath() {
  for (const p of [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    if (p && existsSync(p)) return p;
  }
  throw new Error("no Chromium: install Debian's chromium package (go tool task test:web does) or set CHROMIUM");
}

export function launch() {
  return chromium.launch({ executablePath: chromiumPath(), args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      // No connections of its own: the test machines' network is closed.
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
    ], });
}

export const screenshots = join(here, "..", "screenshots");
