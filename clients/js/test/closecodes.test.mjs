// How the client ends a connection and what it does next: 4001 (token
// expired: a fresh token from getToken, or a stop without one), a token
// refused at connect, 4008 (slow consumer), a connection on which nothing
// is heard any more, and 4000 and 1009 (client bugs: the client stops).
// 4010 is in reconnect.test.mjs.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { client, range, seqs, startDev, token, uid, waitFor } from "./harness.mjs";

let dev;
before(async () => {
  // A 1 s ping interval: an expired token is closed within 250 ms; a silent connection is pinged after 1 s.
  dev = await startDev({ extra: ["--ping-interval", "1s", "--rate", "1000", "--burst", "1000", "--user-rate", "1000", "--user-burst", "1000"] });
});
after(async () => {
  await dev?.cleanup();
});

// A token that expired 28 s ago: the edge accepts it (30 s leeway) and closes
// the connection with 4001 about 2 s later.
const expiring = (user) => token(user, { ttlSec: -28 });

test("4001: the client asks getToken for a fresh token and carries on, losing nothing", async (t) => {
  const aliceID = uid("alice");
  const reasons = [];
  const states = [];
  const alice = client(dev.url, aliceID, {
    getToken: (reason) => {
      reasons.push(reason);
      return reasons.length === 1 ? expiring(aliceID) : token(aliceID);
    },
  });
  alice.on("state", (s) => states.push(s));
  const bob = client(dev.url, uid("bob"));
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  const conv = await bob.createDirect(aliceID);
  for (let i = 1; i <= 5; i++) await bob.send(conv.id, "before" + i);
  await waitFor(() => reasons.length === 2 && alice.state === "connected", { what: "a reconnect with a fresh token" });
  assert.deepEqual(reasons, ["connect", "expired"]);
  assert.equal(states.find((s) => s.state === "reconnecting").code, 4001);
  for (let i = 6; i <= 10; i++) await bob.send(conv.id, "after" + i);
  await waitFor(() => seqs(alice.got, conv.id).length >= 10, { what: "10 messages" });
  assert.deepEqual(seqs(alice.got, conv.id), range(1, 10));
});

test("4001 without getToken: the client stops with unauthorized", async (t) => {
  const aliceID = uid("alice");
  const alice = client(dev.url, aliceID, { token: expiring(aliceID) });
  t.after(() => alice.close());
  const closed = new Promise((r) => alice.on("state", (s) => s.state === "closed" && r(s)));
  await alice.connect();
  const s = await closed;
  assert.equal(s.error.code, "unauthorized");
  assert.equal(alice.error.code, "unauthorized");
  await assert.rejects(alice.ping(), (e) => e.code === "unauthorized");
  await assert.rejects(alice.send("g_x", "x"), (e) => e.code === "unauthorized");
});

test("a token the edge refuses: connect rejects with unauthorized, no retries", async (t) => {
  const bad = token("mallory").slice(0, -4) + "AAAA";
  const m = client(dev.url, "mallory", { token: bad });
  t.after(() => m.close());
  await assert.rejects(m.connect(), (e) => e.code === "unauthorized" && e.op === "connect");
  assert.equal(m.state, "closed");
  assert.equal(m.stats().connects, 0);
});

test("4008: a client that stops reading is cut as a slow consumer, reconnects and syncs: every message once", async (t) => {
  // Its own natter: a small send queue, and the default ping interval (so that the cut comes before the client gives up on the silence).
  const dev = await startDev({ extra: ["--send-queue", "8", "--rest-rate", "1000", "--rest-burst", "1000"] });
  t.after(() => dev.cleanup());
  const aliceID = uid("alice");
  const states = [];
  const alice = client(dev.url, aliceID);
  alice.on("state", (s) => states.push(s));
  t.after(() => alice.close());
  await alice.connect();
  const ws = alice.sockets.at(-1);
  // bob sends over REST: alice's is the only socket, so the slow-consumer count is hers.
  const rest = async (path, body) => {
    const r = await fetch(`http://${dev.http}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token(bobID)}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    assert.ok(r.ok, `${path}: ${r.status} ${text}`);
    return JSON.parse(text);
  };
  const bobID = uid("bob");
  const conv = await rest("/v1/conversations", { kind: "group", name: "slow", members: [aliceID] });
  await waitFor(() => alice.cursors()[conv.id] !== undefined, { what: "alice knows the group" });

  ws._socket.pause(); // alice's socket is no longer read: the edge's queue for it fills
  const body = "z".repeat(60 << 10);
  const metric = async () => /natter_edge_slow_consumers_total (\d+)/.exec(await (await fetch(`http://${dev.http}/metrics`)).text())?.[1] ?? "0";
  const before = Number(await metric());
  let n = 0;
  while (n < 400) {
    await Promise.all(range(n + 1, n + 20).map((i) => rest(`/v1/conversations/${conv.id}/messages`, { cmid: "c" + i, body: `${i} ${body}` })));
    n += 20;
    if (Number(await metric()) > before) break;
  }
  assert.ok(Number(await metric()) > before, `no slow-consumer cut after ${n} messages`);
  t.diagnostic(`cut after ${n} messages of 60 KiB`);
  ws._socket.resume();
  // What was queued before the cut may all arrive before the close: wait for the reconnect too.
  await waitFor(() => states.some((s) => s.state === "reconnecting") && alice.state === "connected", { what: "a reconnect" });
  await waitFor(() => seqs(alice.got, conv.id).length >= n, { what: `${n} messages` });
  assert.deepEqual(seqs(alice.got, conv.id), range(1, n));
  const cut = states.find((s) => s.state === "reconnecting");
  // The close frame reaches a client that reads again soon enough; else it sees the socket end (1006).
  assert.ok([4008, 1006].includes(cut.code), `reconnect after ${JSON.stringify(cut)}`);
});

test("a connection on which nothing is heard is given up and replaced; what came meanwhile is synced", async (t) => {
  const aliceID = uid("alice");
  const states = [];
  const alice = client(dev.url, aliceID);
  alice.on("state", (s) => states.push(s));
  await alice.connect();
  const ws = alice.sockets.at(-1);
  const bob = client(dev.url, uid("bob"));
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await bob.connect();
  const conv = await bob.createDirect(aliceID);
  await bob.send(conv.id, "one");
  await waitFor(() => alice.got.length === 1, { what: "the first message" });
  ws._socket.pause(); // a dead network: nothing arrives any more (the client's pings still leave)
  for (let i = 2; i <= 5; i++) await bob.send(conv.id, "m" + i);
  await waitFor(() => alice.stats().reconnects >= 1 && alice.state === "connected", { what: "a new connection", timeoutMs: 10000 });
  const gaveUp = states.find((s) => s.state === "reconnecting");
  assert.equal(gaveUp.code, 0);
  assert.match(gaveUp.reason, /nothing heard/);
  await waitFor(() => seqs(alice.got, conv.id).length >= 5, { what: "5 messages" });
  assert.deepEqual(seqs(alice.got, conv.id), range(1, 5));
});

for (const [name, frames, code] of [
  ["4000 (10 undecodable frames in a row)", Array(10).fill("{"), 4000],
  ["1009 (a frame longer than max_body + 4 KiB)", ["x".repeat(65536 + 4096 + 1)], 1009],
]) {
  test(`${name}: a client bug, so the client stops instead of reconnecting`, async (t) => {
    const alice = client(dev.url, uid("alice"));
    t.after(() => alice.close());
    const states = [];
    alice.on("state", (s) => states.push(s));
    await alice.connect();
    const closed = new Promise((r) => alice.on("state", (s) => s.state === "closed" && r(s)));
    for (const f of frames) alice.sockets.at(-1).send(f);
    const s = await closed;
    assert.equal(s.error.code, "bad_frame");
    assert.match(s.error.message, new RegExp(`${code}`));
    assert.equal(alice.stats().reconnects, 0);
    assert.ok(!states.some((x) => x.state === "reconnecting"));
    await assert.rejects(alice.ping(), (e) => e.code === "bad_frame");
  });
}
