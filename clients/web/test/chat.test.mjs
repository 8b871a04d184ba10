// Browser tests of the chat web app: real headless Chromium (the system's)
// driven by playwright-core, against a real natter dev started on free ports.
// Screenshots of the main screens go to clients/web/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { natterBinary, startDev, launch, screenshots } from "./natter.mjs";

let dev;
let browser;
const users = {};

before(async () => {
  mkdirSync(screenshots, { recursive: true });
  dev = await startDev(natterBinary());
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await dev?.stop();
});

/** until polls fn until it returns a truthy value, or fails after ms with what it last returned. */
async function until(what, fn, ms = 20_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * signIn opens the app in a browser context of its own for user and signs
 * in through the dev token endpoint. Its WebSockets go through a route the
 * test can cut: net.cut() closes them and holds new ones unanswered (a
 * network that accepts a connection and then carries nothing), net.restore()
 * lets new ones through again.
 */
async function signIn(user, viewport = { width: 1100, height: 720 }, key = user) {
  const context = await browser.newContext({ viewport });
  const net = { held: false, open: [] };
  net.cut = () => {
    net.held = true;
    for (const ws of net.open.splice(0)) ws.close({ code: 4009, reason: "test: network cut" }).catch(() => {});
  };
  net.restore = () => (net.held = false);
  await context.routeWebSocket(/\/v1\/ws$/, (ws) => {
    if (net.held) return; // mocked: open, silent
    ws.connectToServer();
    net.open.push(ws);
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(dev.url);
  if (user === "alice") await page.screenshot({ path: join(screenshots, "signin.png") });
  // Keyboard only: the user field has the focus, Enter submits.
  await page.keyboard.type(user);
  await page.keyboard.press("Enter");
  await page.locator("#me", { hasText: user }).waitFor();
  await until(`${user} connected`, () => page.evaluate(() => document.body.dataset.state === "connected"));
  const u = { user, context, page, net, errors };
  users[key] = u;
  return u;
}

/** bodies are the texts of the messages shown in the open conversation, in order. */
function bodies(page) {
  return page.locator(".msg .body").allTextContents();
}

test("two users chat both ways; a group at phone width", async () => {
  const alice = await signIn("alice");
  const bob = await signIn("bob");
  const carol = await signIn("carol", { width: 390, height: 780 });

  // alice starts a direct conversation with bob, by keyboard.
  await alice.page.getByRole("button", { name: "New chat" }).click();
  await alice.page.locator("#new-with").fill("bob");
  await alice.page.keyboard.press("Enter");
  await alice.page.locator("#conv-title", { hasText: "bob" }).waitFor();
  // The composer has the focus; Enter sends.
  await alice.page.keyboard.type("hi bob");
  await alice.page.keyboard.press("Enter");
  await alice.page.locator('.msg[data-state="sent"]', { hasText: "hi bob" }).waitFor();

  // bob's list shows the conversation with one unread and the last message.
  const conv = bob.page.locator(".conv", { hasText: "alice" });
  await conv.locator(".badge", { hasText: "1" }).waitFor();
  await conv.locator(".conv-last", { hasText: "hi bob" }).waitFor();
  await bob.page.screenshot({ path: join(screenshots, "list-unread.png") });
  await conv.click();
  await until("bob sees hi bob", async () => (await bodies(bob.page)).join("|") === "hi bob");
  assert.equal(await conv.locator(".badge").count(), 0, "the badge goes when the conversation is open");

  // Presence: each sees the other online.
  await alice.page.locator("#conv-sub", { hasText: "online" }).waitFor();
  // Typing: bob types, alice sees it; bob sends, alice gets the message.
  await bob.page.locator("#composer-input").pressSequentially("hi al");
  await alice.page.locator("#typing", { hasText: "bob is typing" }).waitFor();
  await bob.page.locator("#composer-input").pressSequentially("ice");
  await bob.page.keyboard.press("Enter");
  await until("alice sees the reply", async () => (await bodies(alice.page)).join("|") === "hi bob|hi alice");
  await until("typing ends with the message", async () => (await alice.page.locator("#typing").textContent()) === "");
  await alice.page.screenshot({ path: join(screenshots, "conversation.png") });

  // A group: alice creates it with bob and carol; carol, at phone width,
  // sees the list, opens the group, answers, and goes back.
  await alice.page.getByRole("button", { name: "New chat" }).click();
  await alice.page.getByRole("radio", { name: "Group" }).check();
  await alice.page.locator("#new-name").fill("Team");
  await alice.page.locator("#new-members").fill("bob, carol");
  await alice.page.screenshot({ path: join(screenshots, "new-group.png") });
  await alice.page.getByRole("button", { name: "Create" }).click();
  await alice.page.locator("#conv-title", { hasText: "Team" }).waitFor();
  await alice.page.locator("#composer-input").fill("hello team");
  await alice.page.keyboard.press("Enter");
  const team = carol.page.locator(".conv", { hasText: "Team" });
  await team.locator(".badge", { hasText: "1" }).waitFor();
  assert.equal(await carol.page.locator("#pane").isVisible(), false, "at phone width the list is shown alone");
  await carol.page.screenshot({ path: join(screenshots, "phone-list.png") });
  // By keyboard: Tab from New chat reaches the conversation, Enter opens it
  // with the focus in the composer.
  await carol.page.locator("#new-conv").focus();
  await carol.page.keyboard.press("Tab");
  assert.equal(await carol.page.evaluate(() => document.activeElement?.textContent), await team.textContent());
  await carol.page.keyboard.press("Enter");
  await carol.page.locator("#composer-input:focus").waitFor();
  assert.equal(await carol.page.locator(".sidebar").isVisible(), false, "at phone width the conversation is shown alone");
  await carol.page.keyboard.type("hi both");
  await carol.page.keyboard.press("Enter");
  await until("alice sees carol's answer", async () => (await bodies(alice.page)).join("|") === "hello team|hi both");
  await carol.page.screenshot({ path: join(screenshots, "phone-conversation.png") });
  // Escape goes back to the list, the focus on the conversation it left.
  await carol.page.keyboard.press("Escape");
  await carol.page.locator(".sidebar").waitFor();
  await carol.page.locator(".conv:focus", { hasText: "Team" }).waitFor();
  // alice's list keeps both conversations, the group's last message on top.
  await until("alice's list", async () => (await alice.page.locator(".conv .conv-title").allTextContents()).join("|") === "Team|bob");
  for (const u of [alice, bob, carol]) assert.deepEqual(u.errors, [], `${u.user}: page errors`);
});

test("offline: the other sends 20, all 20 show once and in order after", async () => {
  const { alice, bob } = users;
  await alice.page.locator(".conv", { hasText: "bob" }).click();
  await bob.page.locator(".conv", { hasText: "alice" }).click();
  const want = Array.from({ length: 20 }, (_, i) => `offline ${i + 1}`);
  const before = await bodies(bob.page);

  // Chromium's offline emulation holds the frames of an open WebSocket
  // instead of closing it; a real network change closes it: cut it too, so
  // that bob comes back through a new connection and a sync.
  await bob.context.setOffline(true);
  bob.net.cut();
  await bob.page.locator("#banner", { hasText: "offline" }).waitFor();
  // Away from the edge, alice's presence is unknown to bob: none is shown.
  await until("bob shows no presence while offline", async () => (await bob.page.locator("#conv-sub").textContent()) === "");
  for (const body of want) {
    await alice.page.locator("#composer-input").fill(body);
    await alice.page.keyboard.press("Enter");
  }
  await until("alice's 20 acked", async () => (await alice.page.locator('.msg[data-state="sent"]').allTextContents()).filter((t) => t.startsWith("offline ")).length === 20);
  await bob.page.screenshot({ path: join(screenshots, "offline.png") });
  assert.deepEqual(await bodies(bob.page), before, "bob, offline, got nothing");

  const syncsBefore = await bob.page.evaluate(() => window.natterStats?.().syncs ?? 0);
  bob.net.restore();
  await bob.context.setOffline(false);
  await until("bob shows all 20 once, in order", async () => {
    const got = await bodies(bob.page);
    return JSON.stringify(got) === JSON.stringify([...before, ...want]) || (got.length > before.length + 20 && assert.fail("more than 20: " + got.join("|")));
  }, 60_000);
  await bob.page.locator("#banner").waitFor({ state: "hidden" });
  await bob.page.locator("#conv-sub", { hasText: "online" }).waitFor();
  const stats = await bob.page.evaluate(() => window.natterStats());
  assert.ok(stats.syncs > syncsBefore && stats.reconnects >= 1, "bob came back by a reconnect and a sync: " + JSON.stringify(stats));
  assert.equal(stats.deliveryFaults, 0, "the app was handed every message once, in order");
  assert.deepEqual(bob.errors, []);
});

test("a reload keeps an unsent message in the outbox and sends it", async () => {
  const { alice, bob } = users;
  await alice.page.locator(".conv", { hasText: "bob" }).click();
  alice.net.cut();
  await alice.page.locator("#banner", { hasText: "reconnecting" }).waitFor();
  await alice.page.locator("#composer-input").fill("kept in the outbox");
  await alice.page.keyboard.press("Enter");
  await alice.page.locator('.msg[data-state="pending"]', { hasText: "kept in the outbox" }).waitFor();
  await alice.page.screenshot({ path: join(screenshots, "pending.png") });

  alice.net.restore();
  await alice.page.reload();
  await alice.page.locator(".conv", { hasText: "bob" }).click();
  await alice.page.locator('.msg[data-seq][data-state="sent"]', { hasText: "kept in the outbox" }).waitFor();
  await until("bob gets it once", async () => (await bodies(bob.page)).filter((b) => b === "kept in the outbox").length === 1);
  await until("alice shows it once", async () => (await bodies(alice.page)).filter((b) => b === "kept in the outbox").length === 1);
  assert.equal((await bodies(bob.page)).at(-1), "kept in the outbox");
  assert.deepEqual(alice.errors, []);
});

/** rest calls natter dev's REST API as user (a token from its POST /dev/token). */
async function rest(user, method, path, body) {
  const t = await fetch(new URL("dev/token", dev.url), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user }) });
  assert.equal(t.status, 200, "dev token");
  const { token } = await t.json();
  const res = await fetch(new URL(path, dev.url), {
    method,
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: HTTP ${res.status} ${await res.clone().text()}`);
  return res.json();
}

test("history paging: the newest page first, older pages by scrolling up or the button", async () => {
  const { alice, bob } = users;
  await bob.page.locator(".conv", { hasText: "alice" }).click();
  const conv = await bob.page.locator(".conv", { hasText: "alice" }).getAttribute("data-conv");
  await until("bob shows every message so far", async () => (await bodies(bob.page)).at(-1) === "kept in the outbox");
  const all = await bodies(bob.page);
  const paged = Array.from({ length: 40 }, (_, i) => `paged ${i + 1}`);
  for (const [i, body] of paged.entries()) await rest("alice", "POST", `v1/conversations/${conv}/messages`, { cmid: `paged-${i}`, body });
  all.push(...paged);
  await until("bob gets the 40 live", async () => (await bodies(bob.page)).length === all.length);

  // A fresh page loads the newest 30; scrolling to the top loads 30 more,
  // the button the rest; the view stays where it was each time.
  await bob.page.reload();
  await bob.page.locator(".conv", { hasText: "alice" }).click();
  await until("the newest page", async () => JSON.stringify(await bodies(bob.page)) === JSON.stringify(all.slice(-30)));
  await bob.page.locator("#messages").evaluate((el) => el.scrollTo(0, 0));
  await until("a second page by scrolling up", async () => (await bodies(bob.page)).length === 60);
  assert.ok(await bob.page.locator("#messages").evaluate((el) => el.scrollTop > 100), "the view stays at the messages read, not at the top");
  // The button, by keyboard (a click scrolls it into view, which loads the page by itself).
  await bob.page.getByRole("button", { name: "Load older messages" }).focus();
  await bob.page.keyboard.press("Enter");
  await until("every message, once, in order", async () => JSON.stringify(await bodies(bob.page)) === JSON.stringify(all));
  assert.equal(await bob.page.locator("#load-older").count(), 0, "no more to load");
  // A message that arrives while bob reads back does not pull his view away.
  await bob.page.locator("#messages").evaluate((el) => el.scrollTo(0, 0));
  await rest("alice", "POST", `v1/conversations/${conv}/messages`, { cmid: "paged-late", body: "while bob reads back" });
  await until("it arrives", async () => (await bodies(bob.page)).at(-1) === "while bob reads back");
  assert.ok(await bob.page.locator("#messages").evaluate((el) => el.scrollTop < 50), "the view stays at the top");
  assert.deepEqual(bob.errors, []);
});

test("a message the edge refuses shows as failed, with Retry and Discard", async () => {
  const { alice } = users;
  await alice.page.locator(".conv", { hasText: "bob" }).click();
  const big = "x".repeat(70_000); // more than max_body (64 KiB)
  await alice.page.locator("#composer-input").fill(big);
  await alice.page.keyboard.press("Enter");
  const failed = alice.page.locator('.msg[data-state="failed"]');
  await failed.locator(".status", { hasText: "Not sent" }).waitFor();
  assert.match(await failed.locator(".status").textContent(), /max_body/);
  assert.match(await failed.locator(".body").textContent(), /\(70000 characters\)$/);
  await failed.getByRole("button", { name: "Discard" }).click();
  await failed.waitFor({ state: "detached" });
  // The next message goes as usual.
  await alice.page.locator("#composer-input").fill("after the refused one");
  await alice.page.keyboard.press("Enter");
  await alice.page.locator('.msg[data-seq][data-state="sent"]', { hasText: "after the refused one" }).waitFor();
  assert.deepEqual(alice.errors, []);
});

test("receipts: the sender sees Seen; unread follows the reads of the user's other device", async () => {
  const { alice, bob } = users;
  // bob goes back to his list, so that alice's next message stays unread.
  await bob.page.locator("#composer-input").press("Escape");
  await bob.page.locator(".conv:focus", { hasText: "alice" }).waitFor();
  await alice.page.locator(".conv", { hasText: "bob" }).click();
  await alice.page.locator("#composer-input").fill("read me");
  await alice.page.keyboard.press("Enter");
  const mine = alice.page.locator(".msg[data-seq]", { hasText: "read me" });
  await mine.locator('.tick[aria-label="sent"]').waitFor();

  // bob's second device, a browser with nothing stored: its badge counts
  // what bob has not read on any device (the edge's read cursor), not the
  // whole conversation.
  const bob2 = await signIn("bob", undefined, "bob2");
  const conv2 = bob2.page.locator(".conv", { hasText: "alice" });
  await conv2.locator(".badge", { hasText: /^1$/ }).waitFor();
  await bob.page.locator(".conv", { hasText: "alice" }).locator(".badge", { hasText: /^1$/ }).waitFor();

  // bob reads it on his first device: the badge goes on the second, and
  // alice sees it read.
  await bob.page.locator(".conv", { hasText: "alice" }).click();
  await conv2.locator(".badge").waitFor({ state: "detached" });
  await mine.locator('.tick[aria-label="read"]').waitFor();
  await until("alice sees Seen under it", () => alice.page.evaluate(() => document.querySelector("#seen-by")?.previousElementSibling?.textContent?.includes("read me") && document.querySelector("#seen-by")?.textContent === "Seen"));
  await alice.page.screenshot({ path: join(screenshots, "receipts.png") });

  // In the group, alice's message shows who has read it (carol opened the group, bob never did).
  await alice.page.locator(".conv", { hasText: "Team" }).click();
  await alice.page.locator("#seen-by", { hasText: "Seen by carol" }).waitFor();
  await bob2.context.close();
  assert.deepEqual([...alice.errors, ...bob.errors, ...bob2.errors], []);
});

test("a group renamed by one member is renamed for every member", async () => {
  const { alice, bob, carol } = users;
  await alice.page.locator(".conv", { hasText: "Team" }).click();
  await alice.page.getByRole("button", { name: "Rename" }).click();
  await alice.page.locator("#rename-name").fill("Team B");
  await alice.page.keyboard.press("Enter");
  await alice.page.locator("#conv-title", { hasText: "Team B" }).waitFor();
  // The others learn it from the conv push: carol has the group open, bob has not.
  await carol.page.locator(".conv", { hasText: "Team" }).click();
  await alice.page.getByRole("button", { name: "Rename" }).click();
  await alice.page.locator("#rename-name").fill("Team C");
  await alice.page.keyboard.press("Enter");
  await carol.page.locator("#conv-title", { hasText: "Team C" }).waitFor();
  await bob.page.locator(".conv .conv-title", { hasText: "Team C" }).waitFor();
  await alice.page.locator("#conv-title", { hasText: "Team C" }).waitFor();
  // A group name is required.
  await alice.page.getByRole("button", { name: "Rename" }).click();
  await alice.page.locator("#rename-name").fill("   ");
  await alice.page.locator("#rename-dialog button[type=submit]").click();
  await alice.page.locator("#rename-dialog .error", { hasText: "Group name: required" }).waitFor();
  await alice.page.keyboard.press("Escape");
  await alice.page.locator("#rename-dialog").waitFor({ state: "detached" });
  assert.deepEqual([...alice.errors, ...bob.errors, ...carol.errors], []);
});

/** png returns a w x h PNG (a colour gradient). */
async function png(w, h) {
  const { deflateSync, crc32 } = await import("node:zlib");
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = x % 256;
      raw[o + 1] = y % 256;
      raw[o + 2] = 128;
    }
  }
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

test("an image attachment shows in the conversation", async () => {
  const erin = await signIn("erin");
  // dora sends from a script: a token from natter dev, the REST API.
  const base = dev.url.replace(/\/$/, "");
  const tok = (await (await fetch(base + "/dev/token", { method: "POST", body: JSON.stringify({ user: "dora" }), headers: { "content-type": "application/json" } })).json()).token;
  const auth = { authorization: "Bearer " + tok };
  const conv = await (await fetch(base + "/v1/conversations", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ kind: "direct", with: "erin" }) })).json();
  const up = await fetch(base + "/v1/attachments?name=grad.png", { method: "POST", headers: { ...auth, "content-type": "image/png" }, body: await png(64, 48) });
  assert.equal(up.status, 201);
  const att = await up.json();
  assert.equal(att.width, 64);
  const sent = await fetch(base + `/v1/conversations/${conv.id}/messages`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ cmid: "img-1", body: "a picture", attachments: [{ id: att.id }] }),
  });
  assert.equal(sent.status, 201);
  await erin.page.locator(".conv", { hasText: "dora" }).click();
  const img = erin.page.locator(`img.att-image[data-att="${att.id}"]`);
  await img.waitFor();
  await until("the image loads", () => img.evaluate((el) => el.complete && el.naturalWidth === 64));
  assert.deepEqual(erin.errors, []);
});
