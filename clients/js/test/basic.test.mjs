import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { client, range, seqs, startDev, uid, waitFor } from "./harness.mjs";

let dev;
before(async () => {
  dev = await startDev();
});
after(async () => {
  await dev?.cleanup();
});

test("two users chat: each message delivered once, in order, to both", async (t) => {
  const alice = client(dev.url, uid("alice"));
  const bobID = uid("bob");
  const bob = client(dev.url, bobID);
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  assert.equal(alice.state, "connected");
  const conv = await alice.createDirect(bobID);
  assert.equal(conv.kind, "direct");
  for (let i = 1; i <= 10; i++) {
    const ack = await (i % 2 ? alice : bob).send(conv.id, "m" + i);
    assert.equal(ack.seq, i);
  }
  await waitFor(() => seqs(bob.got, conv.id).length >= 10 && seqs(alice.got, conv.id).length >= 10, { what: "10 messages each" });
  assert.deepEqual(seqs(bob.got, conv.id), range(1, 10));
  assert.deepEqual(seqs(alice.got, conv.id), range(1, 10));
  assert.deepEqual(bob.got.map((m) => m.body), range(1, 10).map((i) => "m" + i));
  assert.equal(bob.cursors()[conv.id], 10);
});

test("own sends, edits and deletes come from their acks: the edge pushes them to the other members only, and they equal those pushes", async (t) => {
  const alice = client(dev.url, uid("alice"));
  const bobID = uid("bob");
  const bob = client(dev.url, bobID);
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  const g = await alice.createGroup("own", [bobID]);
  const first = await alice.send(g.id, "plain");
  // Bob has the group (a sync of it would return the first message as
  // edited, then deleted: pages apply the actions): the rest come as pushes.
  await waitFor(() => seqs(bob.got, g.id).length >= 1, { what: "bob's first message" });
  await alice.send(g.id, "typed", { type: "note" });
  await alice.send(g.id, "to bob", { mentions: [bobID], replyTo: first.id });
  await alice.edit(g.id, first.id, "plain, edited");
  await alice.deleteMessage(g.id, first.id);
  await waitFor(() => seqs(bob.got, g.id).length >= 5 && seqs(alice.got, g.id).length >= 5, { what: "5 entries each" });
  assert.deepEqual(seqs(alice.got, g.id), range(1, 5));
  assert.deepEqual(
    alice.got.filter((m) => m.conv === g.id),
    bob.got.filter((m) => m.conv === g.id),
  );
  await new Promise((r) => setTimeout(r, 200));
  const s = alice.stats();
  assert.equal(s.pushes, 0, "the sender got a push of its own entry");
  // s.duplicates may be 1 or more: the conv push of the new group starts a
  // sync of it, which may return an entry its ack has delivered already
  // (dropped, and counted, by the client). The deepEqual above is the
  // exactly-once check.
});
