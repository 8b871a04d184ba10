// The outbox across a simulated page reload: a new Client on the same
// storage sends what the old one left, each message stored once.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { MemoryStorage } from "../dist/index.js";
import { client, range, sentFrames, seqs, startDev, token, uid, waitFor } from "./harness.mjs";

let dev;
before(async () => {
  dev = await startDev();
});
after(async () => {
  await dev?.cleanup();
});

test("messages sent offline survive a reload: the next client on the same storage sends them, in order, once", async (t) => {
  const aliceID = uid("alice");
  const bob = client(dev.url, uid("bob"));
  const alice = client(dev.url, aliceID);
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([bob.connect(), alice.connect()]);
  const conv = await bob.createDirect(aliceID);

  // The first page: offline (its edge URL answers nothing), the user sends three messages, then the page is reloaded.
  const storage = new MemoryStorage();
  const page1 = client("ws://127.0.0.1:9/v1/ws", bob.user, { storage, token: token(bob.user) });
  void page1.connect().catch(() => {});
  const queued = [];
  page1.on("queued", (e) => queued.push(e));
  // Each send's outcome, caught at once: close() rejects them all together.
  const sends = ["one", "two", "three"].map((b) => page1.send(conv.id, b).then(() => assert.fail("a send of a closed client resolved"), (e) => e));
  await waitFor(() => queued.length === 3, { what: "3 queued" });
  assert.deepEqual(page1.pending().map((e) => e.body), ["one", "two", "three"]);
  await page1.close();
  for (const e of await Promise.all(sends)) assert.equal(e.code, "closed");
  assert.equal((await storage.loadOutbox()).length, 3, "the outbox outlives the client");

  // The reloaded page: same storage, the edge reachable.
  const page2 = client(dev.url, bob.user, { storage });
  const sent = [];
  page2.on("sent", (e) => sent.push(e));
  t.after(() => page2.close());
  await page2.connect();
  await waitFor(() => sent.length === 3, { what: "3 sent" });
  assert.deepEqual(sent.map((e) => e.entry.body), ["one", "two", "three"]);
  assert.deepEqual(sent.map((e) => e.ack.seq), [1, 2, 3]);
  assert.equal((await storage.loadOutbox()).length, 0);
  assert.deepEqual(page2.pending(), []);
  await waitFor(() => seqs(alice.got, conv.id).length >= 3, { what: "alice has 3" });
  assert.deepEqual(alice.got.map((m) => m.body), ["one", "two", "three"]);
});

test("a message whose ack was lost before the reload is resent with its cmid and stored once (dup)", async (t) => {
  const aliceID = uid("alice");
  const bob = client(dev.url, uid("bob"));
  const alice = client(dev.url, aliceID);
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([bob.connect(), alice.connect()]);
  const conv = await bob.createDirect(aliceID);

  // The first page sent "hello" (the edge stored it) and was reloaded before the ack came:
  // its outbox still holds the entry.
  const first = await bob.send(conv.id, "hello", { cmid: "c-lost-ack" });
  const storage = new MemoryStorage();
  await storage.putOutbox({ cmid: "c-lost-ack", conv: conv.id, body: "hello", created: Date.now(), order: 1 });

  const page2 = client(dev.url, bob.user, { storage });
  const sent = [];
  page2.on("sent", (e) => sent.push(e));
  t.after(() => page2.close());
  await page2.connect();
  await waitFor(() => sent.length === 1, { what: "the resend's ack" });
  assert.equal(sent[0].ack.dup, true);
  assert.equal(sent[0].ack.id, first.id);
  assert.equal(sent[0].ack.seq, first.seq);
  const frames = sentFrames("send").filter((f) => f.cmid === "c-lost-ack");
  assert.equal(frames.length, 2);
  assert.ok(frames.every((f) => f.first === undefined), "a cmid of the application's, or from storage, is never sent as a first attempt");
  const page = await alice.history(conv.id);
  assert.deepEqual(page.msgs.map((m) => m.body), ["hello"], "stored once");
  await waitFor(() => alice.got.length >= 1, { what: "alice has it" });
  assert.deepEqual(seqs(alice.got, conv.id), [1]);
});

test("a refused message leaves the outbox and says why; discard drops one", async (t) => {
  const bob = client(dev.url, uid("bob"));
  t.after(() => bob.close());
  await bob.connect();
  const failed = [];
  bob.on("failed", (e) => failed.push(e));
  await assert.rejects(bob.send("g_nosuchconversation", "x"), (e) => e.code === "not_member");
  assert.equal(failed.length, 1);
  assert.equal(failed[0].error.code, "not_member");
  assert.deepEqual(bob.pending(), []);

  // Discard: an offline client's message is dropped before it is sent.
  const storage = new MemoryStorage();
  const offline = client("ws://127.0.0.1:9/v1/ws", bob.user, { storage, token: token(bob.user) });
  void offline.connect().catch(() => {});
  t.after(() => offline.close());
  const p = offline.send("g_x", "never", { cmid: "c-discard" }).then(() => assert.fail("a discarded send resolved"), (e) => e);
  await waitFor(() => offline.pending().length === 1, { what: "queued" });
  await offline.discard("g_x", "c-discard");
  assert.equal((await storage.loadOutbox()).length, 0);
  assert.deepEqual(offline.pending(), []);
  await offline.close();
  assert.equal((await p).code, "aborted");
});

test("sends keep their order per conversation and get consecutive seqs", async (t) => {
  const aliceID = uid("alice");
  const bob = client(dev.url, uid("bob"));
  t.after(() => bob.close());
  await bob.connect();
  const conv = await bob.createGroup("order", [aliceID]);
  const acks = await Promise.all(range(1, 20).map((i) => bob.send(conv.id, "o" + i)));
  assert.deepEqual(acks.map((a) => a.seq), range(1, 20));
  const cmids = new Set((await bob.history(conv.id)).msgs.map((m) => m.cmid));
  const frames = sentFrames("send").filter((f) => cmids.has(f.cmid));
  assert.equal(frames.length, 20);
  assert.ok(frames.every((f) => f.first === true), "the first frame of a cmid the client made is marked first");
});
