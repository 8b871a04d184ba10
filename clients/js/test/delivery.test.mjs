// The delivery rules alone (no server): duplicates dropped, early messages
// held back until the gap is synced, and conv pushes "removed" that race
// with sync replies.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Delivery } from "../dist/index.js";

const msg = (conv, seq) => ({ id: `m_${conv}_${seq}`, conv, seq, from: "u", body: "b" + seq, ts: 0 });

function delivery(cursors = {}) {
  const got = [];
  let wakes = 0;
  const d = new Delivery((m) => got.push(m.seq), () => wakes++, cursors);
  return { d, got, wakes: () => wakes };
}

test("pushes in order are handed over once; an early one waits for the sync of the gap", () => {
  const { d, got, wakes } = delivery();
  d.applySync({}, { convs: [{ conv: "g", head: 0 }] });
  d.onPush(msg("g", 1));
  d.onPush(msg("g", 1));
  d.onPush(msg("g", 3));
  assert.deepEqual(got, [1]);
  assert.equal(d.needsSync(), true);
  assert.equal(wakes(), 1);
  assert.deepEqual(d.cursorChunks(false, 100), [{ g: 1 }]);
  d.applySync({ g: 1 }, { convs: [{ conv: "g", head: 3, msgs: [msg("g", 2), msg("g", 3)], more: false }] });
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(d.needsSync(), false);
  assert.equal(d.stats.duplicates, 2);
  assert.deepEqual(d.cursors(), { g: 3 });
});

test("a sync reply sent before a conv push 'removed' does not bring the conversation back", () => {
  const { d } = delivery({ g: 5 });
  d.applySync({ g: 5 }, { convs: [{ conv: "g", head: 5 }] });
  const mark = d.mark(); // a sync request leaves...
  d.onRemoved("g"); // ...the user is removed, and the push comes before the reply
  d.applySync({ g: 5 }, { convs: [{ conv: "g", head: 5 }] }, mark);
  assert.deepEqual(d.cursors(), {});
  // A message pushed after the removal is dropped, the conversation stays left.
  d.onPush(msg("g", 6));
  assert.deepEqual(d.cursors(), {});
  // Added again: a sync request sent from now on lists it, and it is back.
  d.onAdded("g");
  assert.deepEqual(d.cursorChunks(false, 100), [{ g: 5 }]);
  d.applySync({ g: 5 }, { convs: [{ conv: "g", head: 6, msgs: [msg("g", 6)], more: false }] }, d.mark());
  assert.deepEqual(d.cursors(), { g: 6 });
});

test("a conversation missing from a sync reply that named it is one the user left", () => {
  const { d } = delivery({ a: 1, b: 2 });
  d.applySync({ a: 1, b: 2 }, { convs: [{ conv: "a", head: 1 }] });
  assert.deepEqual(d.cursors(), { a: 1 });
});

test("a paged first sync: conversations on every page start at their head; a page says nothing of those after it", () => {
  const { d, got } = delivery({ c: 1, e: 0 });
  // Page 1 covers a..b: a is new (starts at its head), c and e are named but not covered.
  d.applySync({ c: 1, e: 0 }, { convs: [{ conv: "a", head: 5 }, { conv: "b", head: 2 }], next: "b.0" }, Infinity, { coveredTo: "b", last: false });
  assert.equal(d.started, false, "the first pass is not over");
  assert.deepEqual(d.cursors(), { a: 5, b: 2, c: 1, e: 0 });
  // Page 2 (the last) covers the rest: d is new, c has a message, e is gone (the user left it).
  d.applySync({ c: 1, e: 0 }, { convs: [{ conv: "c", head: 2, msgs: [msg("c", 2)], more: false }, { conv: "d", head: 7 }] }, Infinity, { last: true });
  assert.equal(d.started, true);
  assert.deepEqual(d.cursors(), { a: 5, b: 2, c: 2, d: 7 });
  assert.deepEqual(got, [2]);
});

test("resumeFromAcked: a conversation without a local cursor starts after the device's acked cursor on the server", () => {
  const got = [];
  const d = new Delivery((m) => got.push(m.conv + m.seq), () => {}, { k: 3 }, false, true);
  d.applySync({ k: 3 }, { convs: [{ conv: "a", head: 9, acked: 6 }, { conv: "b", head: 4, acked: 0 }, { conv: "k", head: 3, acked: 1 }] });
  assert.deepEqual(d.cursors(), { a: 6, b: 4, k: 3 }, "a after acked, b (nothing acked) at its head, k at the app's cursor");
  assert.equal(d.needsSync(), true, "a has 7..9 to fetch");
  assert.deepEqual(d.cursorChunks(false, 100), [{ a: 6 }]);
});
