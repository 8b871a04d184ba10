// Push registration through the SDK: push.register with each provider,
// push.unregister, and bad input answered with bad_frame naming the field.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { NatterError } from "../dist/index.js";
import { client, startDev, uid } from "./harness.mjs";

let dev;
before(async () => {
  dev = await startDev();
});
after(async () => {
  await dev?.cleanup();
});

const badFrame = (field) => (e) => {
  assert.ok(e instanceof NatterError, `${e} is a NatterError`);
  assert.equal(e.code, "bad_frame", e.message);
  assert.ok(e.message.includes("bad_frame: " + field + ":"), e.message);
  return true;
};

test("registerPush and unregisterPush", async (t) => {
  const c = client(dev.url, uid("pia"));
  t.after(() => c.close());
  await c.connect();
  await c.registerPush("apns", "5b1f0c3a9e2d4f6a8b7c1d0e3f2a4b6c8d9e0f1a2b3c4d5e6f708192a3b4c5d6");
  await c.registerPush("fcm", "dXk3Yz9QRmGx0rT:APA91bH7zq_3kLmN0pQrStUvWxYz-12345");
  await c.registerPush("webpush", {
    endpoint: "https://push.example.net/wp/abc123",
    keys: { p256dh: "BGuD43Mzyedq42_VFeRhxeHl5WVR9s0YhrQ6hYFp-IdYomXhnYW7s8ueRsJUGZoRd3lExF9e282hUz37DdGxKrU", auth: "62kRtUpxHN1E5gOByJjVTg" },
  });
  await c.unregisterPush();
  await assert.rejects(c.registerPush("mpns", "abc"), badFrame("provider"));
  await assert.rejects(c.registerPush("apns", "not-hex"), badFrame("token"));
  await assert.rejects(
    c.registerPush("webpush", { endpoint: "http://push.example.net/x", keys: { p256dh: "AAAA", auth: "AAAA" } }),
    badFrame("subscription.endpoint"),
  );
});
