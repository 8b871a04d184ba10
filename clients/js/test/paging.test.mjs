// Paged conv.list and sync (users in many conversations), and the read
// state sync and conv.list carry.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { MemoryStorage } from "../dist/index.js";
import { client, range, seqs, startDev, uid, waitFor } from "./harness.mjs";

let dev;
before(async () => {
  dev = await startDev({ extra: ["--rate", "1000", "--burst", "1000", "--user-rate", "1000", "--user-burst", "1000"] });
});
after(async () => {
  await dev?.cleanup();
});

test("conversationsPage pages conv.list in id order; read and unread come with it", async (t) => {
  const alice = client(dev.url, uid("alice"));
  const bob = client(dev.url, uid("bob"));
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  const ids = [];
  for (const i of range(1, 5)) ids.push((await alice.createGroup("p" + i, [bob.user])).id);
  // bob writes (a sender's own messages count as read by the sender), alice reads the first.
  await bob.send(ids[0], "one");
  await bob.send(ids[0], "two");
  await alice.markRead(ids[0], 1);
  const pages = [];
  let page;
  do {
    const p = await alice.conversationsPage({ pageSize: 2, page });
    pages.push(p.convs.map((c) => c.id));
    page = p.next;
  } while (page !== undefined);
  assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
  assert.deepEqual(pages.flat(), [...ids].sort());
  const all = await alice.conversations();
  const first = all.find((c) => c.id === ids[0]);
  assert.equal(first.head, 2);
  assert.equal(first.read, 1);
  assert.equal(first.unread, 1);
  // The sync that starts a connection reports the same read state.
  const again = client(dev.url, alice.user);
  t.after(() => again.close());
  const synced = new Promise((r) => again.on("sync", r));
  await again.connect();
  const summary = await synced;
  const st = summary.convs.find((c) => c.conv === ids[0]);
  assert.deepEqual([st.head, st.read, st.unread], [2, 1, 1]);
  assert.equal(st.msgs, undefined);
  assert.equal(summary.convs.length, 5);
  assert.equal(summary.unread_total, 1);
  await assert.rejects(alice.conversationsPage({ pageSize: 501 }), (e) => e.code === "bad_frame" && e.detail.startsWith("page_size"));
});

test("a paged sync (syncPageSize) delivers every message once, resumes from cursors and drops a conversation left meanwhile", async (t) => {
  const aliceID = uid("alice");
  const bob = client(dev.url, uid("bob"));
  t.after(() => bob.close());
  await bob.connect();
  const convs = [];
  for (const i of range(1, 7)) convs.push((await bob.createGroup("s" + i, [aliceID])).id);
  for (const [i, conv] of convs.entries()) for (const j of range(1, i + 1)) await bob.send(conv, `m${j}`);

  // A first client from the start of every conversation, three per page.
  const storage = new MemoryStorage();
  const a1 = client(dev.url, aliceID, { syncPageSize: 3, fromStart: true, storage });
  t.after(() => a1.close());
  await a1.connect();
  await waitFor(() => convs.every((c, i) => seqs(a1.got, c).length === i + 1), { what: "every message" });
  for (const [i, conv] of convs.entries()) assert.deepEqual(seqs(a1.got, conv), range(1, i + 1));
  assert.ok(a1.stats().syncs >= 3, `${a1.stats().syncs} sync requests for 7 conversations, 3 a page`);
  const cursors = a1.cursors();
  await a1.close();

  // Meanwhile: more messages, and alice leaves one group.
  for (const conv of convs) await bob.send(conv, "later");
  await bob.removeMembers(convs[3], [aliceID]);
  const kept = convs.filter((_, i) => i !== 3);
  const a2 = client(dev.url, aliceID, { syncPageSize: 2, cursors, fromStart: true });
  t.after(() => a2.close());
  const synced = new Promise((r) => a2.on("sync", r));
  await a2.connect();
  // One summary for the whole pass: every page's conversations, the total from the last.
  const summary = await synced;
  assert.deepEqual(summary.convs.map((c) => c.conv), [...kept].sort());
  for (const c of summary.convs) {
    const i = convs.indexOf(c.conv);
    assert.equal(c.head, i + 2);
    assert.equal(c.acked, cursors[c.conv], "a1 acked what it had before it closed");
  }
  assert.equal(summary.unread_total, summary.convs.reduce((n, c) => n + c.unread, 0));
  await waitFor(() => kept.every((c) => seqs(a2.got, c).length === 1), { what: "the later messages" });
  for (const conv of kept) assert.deepEqual(seqs(a2.got, conv), [cursors[conv] + 1]);
  assert.equal(a2.cursors()[convs[3]], undefined, "the group alice left is dropped");
  assert.deepEqual(Object.keys(a2.cursors()).sort(), [...kept].sort());

  // A reinstall: no local cursors; resumeFromAcked starts each conversation after what this device acked.
  await a2.close();
  for (const conv of kept) await bob.send(conv, "latest");
  const a3 = client(dev.url, aliceID, { resumeFromAcked: true });
  t.after(() => a3.close());
  await a3.connect();
  await waitFor(() => kept.every((c) => seqs(a3.got, c).length === 1), { what: "the latest messages" });
  for (const conv of kept) assert.deepEqual(a3.got.filter((m) => m.conv === conv).map((m) => m.body), ["latest"]);
});
