// Delivery across reconnects, a draining edge (4010), a killed edge and a
// restart of the whole natter: nothing lost, nothing repeated.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { client, range, seqs, startDev, startEdge, uid, waitFor } from "./harness.mjs";

const fast = ["--rate", "1000", "--burst", "1000", "--user-rate", "1000", "--user-burst", "1000"];
let dev;
before(async () => {
  dev = await startDev({ extra: fast });
});
after(async () => {
  await dev?.cleanup();
});

/** sendAll sends n messages from c to conv, a few at a time, and returns the acks in order. */
async function sendAll(c, conv, n, prefix, inFlight = 4) {
  const acks = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      acks[i] = await c.send(conv, `${prefix}${i + 1}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return acks;
}

function assertExactlyOnce(c, conv, n) {
  assert.deepEqual(seqs(c.got, conv), range(1, n), "every seq once, in order");
  assert.equal(new Set(c.got.filter((m) => m.conv === conv).map((m) => m.id)).size, n);
}

test("an edge that drains (bye 4010): the client moves to the next edge and gets every message once", async (t) => {
  const edge = await startEdge(dev, { extra: fast });
  t.after(() => edge.stop("SIGKILL"));
  const aliceID = uid("alice");
  const states = [];
  // The receiver prefers the edge; the dev process is its second URL.
  const alice = client([edge.url, dev.url], aliceID);
  alice.on("state", (s) => states.push(s));
  const bob = client(dev.url, uid("bob"));
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  assert.equal(states.at(-1).url, edge.url);
  const conv = await bob.createGroup("drain", [aliceID]);

  const n = 150;
  const sending = sendAll(bob, conv.id, n, "d");
  await waitFor(() => seqs(alice.got, conv.id).length >= 30, { what: "30 messages before the drain" });
  await edge.stop("SIGTERM"); // lame duck: bye 4010, reconnect: true
  await waitFor(() => alice.state === "connected" && states.at(-1).url === dev.url, { what: "alice on the other edge" });
  const drained = states.find((s) => s.state === "reconnecting");
  assert.equal(drained.code, 4010, `reconnect after ${JSON.stringify(drained)}`);
  assert.equal(drained.url, dev.url, "a draining edge sends the client to the next URL");

  const acks = await sending;
  assert.deepEqual(acks.map((a) => a.seq).sort((a, b) => a - b), range(1, n));
  await waitFor(() => seqs(alice.got, conv.id).length >= n, { what: `${n} messages` });
  assertExactlyOnce(alice, conv.id, n);
  assert.ok(alice.stats().reconnects >= 1);
});

test("a killed edge (no bye, no close frame): the client reconnects to another and syncs what it missed", async (t) => {
  const edge = await startEdge(dev, { extra: fast });
  t.after(() => edge.stop("SIGKILL"));
  const aliceID = uid("alice");
  const alice = client([edge.url, dev.url], aliceID);
  const bob = client(dev.url, uid("bob"));
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  const conv = await bob.createGroup("kill", [aliceID]);
  const n = 100;
  // 20 before the kill, 80 after it: alice misses some whatever the timing,
  // and gets them from her sync on the other edge or as pushes there.
  await sendAll(bob, conv.id, 20, "k");
  await waitFor(() => seqs(alice.got, conv.id).length >= 20, { what: "20 messages before the kill" });
  await edge.stop("SIGKILL");
  const acks = await sendAll(bob, conv.id, n - 20, "l");
  assert.equal(acks.length, n - 20);
  await waitFor(() => alice.stats().reconnects >= 1 && alice.state === "connected", { what: "alice reconnected to the other edge" });
  await waitFor(() => seqs(alice.got, conv.id).length >= n, { what: `${n} messages` });
  assertExactlyOnce(alice, conv.id, n);
});

test("natter restarts (every edge gone, then back on the same address): sends are retried with their cmid and stored once, every message delivered once", async (t) => {
  const own = await startDev({ extra: fast });
  t.after(() => own.cleanup());
  const aliceID = uid("alice");
  const alice = client(own.url, aliceID);
  const bob = client(own.url, uid("bob"));
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  const conv = await bob.createDirect(aliceID);
  // bob keeps 4 sends in flight until natter is back and 20 more are acked.
  let restarted = false;
  let afterRestart = 0;
  let crossed = 0; // sends in the outbox while natter was gone
  let stopped = false;
  const acks = [];
  const worker = async () => {
    while (!restarted || afterRestart < 20) {
      const ack = await bob.send(conv.id, `r${acks.length + 1}`);
      acks.push(ack);
      if (restarted) afterRestart++;
    }
  };
  const sending = Promise.all(range(1, 4).map(worker));
  await waitFor(() => seqs(alice.got, conv.id).length >= 20, { what: "20 messages before the restart" });
  const http = own.http;
  await own.stop("SIGTERM");
  stopped = true;
  await waitFor(() => alice.state === "reconnecting" && bob.state === "reconnecting", { what: "both reconnecting" });
  crossed = bob.pending().length;
  own.args[own.args.indexOf("--http") + 1] = http;
  await own.start(30000);
  restarted = true;
  await sending;
  const n = acks.length;
  t.diagnostic(`${n} messages, ${crossed} sends in the outbox across the restart, ${bob.stats().sendRetries} resends`);
  assert.deepEqual(acks.map((a) => a.seq).sort((a, b) => a - b), range(1, n), "each message stored once");
  await waitFor(() => seqs(alice.got, conv.id).length >= n, { what: `${n} messages` });
  assertExactlyOnce(alice, conv.id, n);
  assert.ok(crossed > 0, "some send was in the outbox while natter was gone");
  // The log agrees: n messages, one per cmid.
  const stored = [];
  for (let more = true; more; ) {
    const page = await alice.history(conv.id, { after: stored.length, limit: 200 });
    stored.push(...page.msgs);
    more = page.more;
  }
  assert.equal(stored.length, n);
  assert.equal(new Set(stored.map((m) => m.cmid)).size, n);
});

test("requests made while the socket is closing wait for the next connection instead of spinning", async (t) => {
  const aliceID = uid("alice");
  const alice = client(dev.url, aliceID);
  const bob = client(dev.url, uid("bob"));
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  const conv = await bob.createDirect(aliceID);
  // The socket is closing (readyState CLOSING) until the edge answers the
  // close: a send and a request made now must not be tried on it again and
  // again (that loop never yields, so the close event never comes).
  alice.sockets.at(-1).close(1000, "test");
  const sent = alice.send(conv.id, "while closing");
  const page = alice.history(conv.id);
  let ticked = false;
  setTimeout(() => (ticked = true), 10);
  await waitFor(() => ticked, { what: "a timer to run" });
  assert.equal((await sent).seq, 1);
  assert.deepEqual((await page).msgs.length >= 0, true);
  assert.equal(alice.stats().reconnects, 1);
  await waitFor(() => seqs(bob.got, conv.id).length === 1, { what: "bob has it" });
});
