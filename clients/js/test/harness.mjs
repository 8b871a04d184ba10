// Test harness: a real natter binary (natter dev, natter edge) on free
// ports, HS256 tokens minted with the secret it was given, and clients that
// use the ws package as their WebSocket (Node 20 has no global one).
import { spawn, execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after } from "node:test";
import WS from "ws";

import { Client, MemoryStorage } from "../dist/index.js";

const repo = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
export const SECRET = "natter-jssdk-tests-" + "s".repeat(32);

let built;

/** natterBin returns the natter binary: $NATTER_BIN, else one built from this checkout once per process. */
export function natterBin() {
  if (process.env.NATTER_BIN) return process.env.NATTER_BIN;
  if (!built) {
    const dir = mkdtempSync(join(tmpdir(), "natter-jssdk-bin-"));
    built = join(dir, "natter");
    execFileSync("go", ["build", "-o", built, "./cmd/natter"], { cwd: repo, stdio: "inherit" });
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return built;
}

/** token mints an HS256 token for user; ttlSec may be negative (an expired token within the edge's 30 s leeway). */
export function token(user, { ttlSec = 3600, device } = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const claims = { sub: user, exp: Math.floor(Date.now() / 1000) + ttlSec };
  if (device) claims.dev = device;
  const head = b64({ alg: "HS256", typ: "JWT" }) + "." + b64(claims);
  return head + "." + createHmac("sha256", SECRET).update(head).digest("base64url");
}

/**
 * Proc is one natter process. start waits for its "natter ready" line and
 * takes the addresses from it.
 */
// Every natter a test started, killed when the test process exits however
// it ends (a failed test's cleanup may never run).
const running = new Set();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

class Proc {
  constructor(args, label) {
    this.args = args;
    this.label = label;
    this.log = "";
  }

  start(timeoutMs = 60000) {
    return new Promise((resolveReady, reject) => {
      const p = spawn(natterBin(), this.args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NATTER_JWT_SECRET: SECRET } });
      this.proc = p;
      running.add(p);
      p.on("exit", () => running.delete(p));
      this.exited = new Promise((r) => p.on("exit", (code, sig) => r({ code, sig })));
      const timer = setTimeout(() => reject(new Error(`${this.label}: no ready line within ${timeoutMs} ms:\n${this.log}`)), timeoutMs);
      const onData = (chunk) => {
        this.log += chunk.toString();
        const m = /msg="natter ready"[^\n]*/.exec(this.log);
        if (m && !this.ready) {
          this.ready = m[0];
          clearTimeout(timer);
          this.http = /http=(\S+)/.exec(m[0])[1];
          this.nats = /nats=(\S+)/.exec(m[0])?.[1];
          resolveReady(this);
        }
      };
      p.stdout.on("data", onData);
      p.stderr.on("data", onData);
      p.on("exit", (code) => {
        clearTimeout(timer);
        if (!this.ready) reject(new Error(`${this.label} exited ${code} before ready:\n${this.log}`));
      });
    });
  }

  get url() {
    return `ws://${this.http}/v1/ws`;
  }

  /** stop sends SIGTERM (a graceful stop: lame duck, bye 4010) and waits for the exit. */
  async stop(signal = "SIGTERM") {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 30000);
    await this.exited;
    clearTimeout(t);
    this.ready = undefined;
    this.log = "";
  }
}

/**
 * startDev starts natter dev on free ports in a fresh data directory (or
 * the given one, with the given http address, to restart on the same
 * state). extra are more flags.
 */
export async function startDev({ data, http = "127.0.0.1:0", extra = [] } = {}) {
  const dir = data ?? mkdtempSync(join(tmpdir(), "natter-jssdk-"));
  const proc = new Proc(["dev", "--data", dir, "--http", http, "--nats-port", "-1", "--lame-duck", "500ms", ...extra], "natter dev");
  await proc.start();
  proc.data = dir;
  proc.cleanup = async () => {
    await proc.stop();
    if (!data) rmSync(dir, { recursive: true, force: true });
  };
  return proc;
}

/** startEdge starts natter edge against the NATS of a running dev. */
export async function startEdge(dev, { http = "127.0.0.1:0", extra = [] } = {}) {
  const proc = new Proc(["edge", "--nats-url", dev.nats, "--http", http, "--lame-duck", "500ms", ...extra], "natter edge");
  await proc.start();
  return proc;
}

/**
 * TrackedWS is the ws package's WebSocket, remembered in sockets so that a
 * test can reach a client's socket (to stop reading it, say).
 */
export const sockets = [];
export class TrackedWS extends WS {
  constructor(url, protocols) {
    super(url, protocols);
    this.sent = [];
    sockets.push(this);
  }

  send(data, ...rest) {
    this.sent.push(data);
    return super.send(data, ...rest);
  }
}

/** sentFrames returns the frames (decoded) every tracked socket to url sent, with op op. */
export function sentFrames(op) {
  return sockets.flatMap((s) => s.sent.map((d) => JSON.parse(d))).filter((f) => f.op === op);
}

// Every client a test made is closed when its file is done, also when a
// failed test did not get to register its own cleanup: one left running
// would keep reconnecting, and the file's process alive.
const made = [];
after(() => Promise.all(made.map((c) => c.close())));

/**
 * client makes a Client for user against urls with fast back-off; got
 * collects every message it delivers, sockets every WebSocket it opened.
 */
export function client(urls, user, opts = {}) {
  const mine = [];
  class Mine extends TrackedWS {
    constructor(url, protocols) {
      super(url, protocols);
      mine.push(this);
    }
  }
  const c = new Client({
    urls,
    token: opts.getToken ? undefined : token(user, { device: opts.device }),
    WebSocket: Mine,
    backoffMs: 50,
    maxBackoffMs: 500,
    requestTimeoutMs: 5000,
    storage: new MemoryStorage(),
    ...opts,
  });
  made.push(c);
  c.got = [];
  c.sockets = mine; // every WebSocket the client opened, the live one last
  c.on("message", (m) => c.got.push(m));
  return c;
}

/** waitFor polls fn until it returns a truthy value (returned) or the deadline passes. */
export async function waitFor(fn, { timeoutMs = 20000, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** uid returns a fresh user id for a test, so that tests on one natter do not see each other. */
export function uid(prefix) {
  return prefix + "_" + randomBytes(4).toString("hex");
}

/** seqs maps messages of conv to their seqs. */
export function seqs(msgs, conv) {
  return msgs.filter((m) => m.conv === conv).map((m) => m.seq);
}

/** range returns [from, ..., to]. */
export function range(from, to) {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
