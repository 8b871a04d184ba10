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
