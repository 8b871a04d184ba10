// Attachments through the SDK: upload, send with attachments, the other
// member's download (whole and by range), and the refusals as NatterErrors.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { ErrorCodes, NatterError } from "../dist/index.js";
import { client, startDev, uid, waitFor } from "./harness.mjs";

let dev;
before(async () => {
  dev = await startDev();
});
after(async () => {
  await dev?.cleanup();
});

const code = (c) => (e) => {
  assert.ok(e instanceof NatterError, `${e} is a NatterError`);
  assert.equal(e.code, c, e.message);
  return true;
};

test("upload, send, download", async (t) => {
  const alice = client(dev.url, uid("alice"));
  const bob = client(dev.url, uid("bob"));
  const carol = client(dev.url, uid("carol"));
  t.after(() => Promise.all([alice.close(), bob.close(), carol.close()]));
  await Promise.all([alice.connect(), bob.connect(), carol.connect()]);
  const conv = await alice.createDirect(bob.user);

  const text = "natter attachment ".repeat(500);
  const a = await alice.upload(new TextEncoder().encode(text), "text/plain", "notes.txt");
  assert.equal(a.size, text.length);
  assert.equal(a.type, "text/plain");
  assert.equal(a.name, "notes.txt");
  assert.match(a.id, /^a_[a-z2-7]{26}$/);

  await alice.send(conv.id, "", { attachments: [a] });
  const got = await waitFor(() => bob.got.find((m) => m.conv === conv.id), { what: "bob's message" });
  assert.deepEqual(got.attachments, [a]);

  const whole = await bob.download(a.id);
  assert.equal(await whole.text(), text);
  assert.equal(whole.headers.get("content-type"), "text/plain");
  assert.ok(whole.headers.get("etag"));
  const part = await bob.download(a.id, { range: [7, 16] });
  assert.equal(part.status, 206);
  assert.equal(await part.text(), "attachment");

  // A signed URL works without a token; carol may not get one.
  const url = await bob.attachmentURL(a.id, { ttlSec: 60 });
  const viaURL = await fetch(url);
  assert.equal(viaURL.status, 200);
  assert.equal(await viaURL.text(), text);
  await assert.rejects(carol.attachmentURL(a.id), code(ErrorCodes.Forbidden));

  await assert.rejects(carol.download(a.id), code(ErrorCodes.Forbidden));
  await assert.rejects(alice.upload(new TextEncoder().encode("x"), "application/x-nope"), code(ErrorCodes.UnsupportedType));
  await assert.rejects(bob.send(conv.id, "mine", { attachments: [a] }), code(ErrorCodes.Forbidden));
});
