// Every op of docs/protocol.md through the SDK, with typed results, and
// every error code a client can provoke, as a NatterError with that code.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { ErrorCodes, NatterError, isCode } from "../dist/index.js";
import { client, range, seqs, startDev, uid, waitFor } from "./harness.mjs";

let dev;
before(async () => {
  dev = await startDev();
});
after(async () => {
  await dev?.cleanup();
});

/** pair connects two fresh users. */
async function pair(t, opts = {}) {
  const a = client(dev.url, uid("alice"), opts);
  const b = client(dev.url, uid("bob"), opts);
  t.after(() => Promise.all([a.close(), b.close()]));
  await Promise.all([a.connect(), b.connect()]);
  return [a, b];
}

const code = (c) => (e) => {
  assert.ok(e instanceof NatterError, `${e} is a NatterError`);
  assert.equal(e.code, c, e.message);
  return true;
};

test("conversations, members and their pushes", async (t) => {
  const [alice, bob] = await pair(t);
  const convEvents = [];
  bob.on("conv", (e) => convEvents.push(e));
  const direct = await alice.createDirect(bob.user);
  assert.equal(direct.kind, "direct");
  assert.deepEqual([...direct.members].sort(), [alice.user, bob.user].sort());
  assert.equal((await alice.createDirect(bob.user)).id, direct.id, "one direct conversation per pair");

  const group = await alice.createGroup("Team", []);
  assert.equal(group.name, "Team");
  assert.equal(group.member_count, 1);
  await alice.addMembers(group.id, [bob.user]);
  await waitFor(() => convEvents.some((e) => e.conv === group.id && e.event === "added"), { what: "bob's conv push" });
  assert.deepEqual((await alice.members(group.id)).sort(), [alice.user, bob.user].sort());
  const got = await bob.conversation(group.id);
  assert.equal(got.member_count, 2);
  assert.deepEqual((await bob.conversations()).map((c) => c.id).sort(), [direct.id, group.id].sort());

  // A message in the group reaches bob, who was added after the first sync: from seq 1.
  await alice.send(group.id, "welcome");
  await waitFor(() => seqs(bob.got, group.id).length === 1, { what: "bob has the welcome" });
  assert.equal(bob.cursors()[group.id], 1);

  // Removed: a conv push, the cursor is dropped, requests get not_member.
  await alice.removeMembers(group.id, [bob.user]);
  await waitFor(() => convEvents.some((e) => e.conv === group.id && e.event === "removed"), { what: "the removed push" });
  assert.equal(bob.cursors()[group.id], undefined);
  await assert.rejects(bob.history(group.id), code(ErrorCodes.NotMember));
});

test("read pushes and receipts, renames and the conv pushes of the other members", async (t) => {
  const [alice, bob] = await pair(t);
  const bobConv = [];
  bob.on("conv", (e) => bobConv.push(e));
  const aliceReads = [];
  const bobReads = [];
  alice.on("read", (e) => aliceReads.push(e));
  bob.on("read", (e) => bobReads.push(e));

  const group = await alice.createGroup("Team", [bob.user]);
  await waitFor(() => bobConv.some((e) => e.conv === group.id && e.event === "added"), { what: "bob's added push" });
  const added = bobConv.find((e) => e.conv === group.id && e.event === "added");
  assert.equal(added.by, alice.user);
  assert.equal(added.created, true);
  assert.equal(added.t, undefined, "the event is the push without its frame type");

  // A read moves bob's cursor: his own connection and alice (receipts) get a read push.
  for (const i of range(1, 3)) await alice.send(group.id, "r" + i);
  await bob.markRead(group.id, 3);
  const want = { conv: group.id, user: bob.user, seq: 3 };
  await waitFor(() => bobReads.length >= 1 && aliceReads.length >= 1, { what: "the read pushes" });
  assert.deepEqual(bobReads.at(-1), want);
  assert.deepEqual(aliceReads.at(-1), want);
  const reads = (await alice.receipts(group.id)).reads;
  assert.deepEqual(reads, [{ user: alice.user, seq: 0 }, { user: bob.user, seq: 3 }].sort((a, b) => (a.user < b.user ? -1 : 1)));
  const first = await alice.receipts(group.id, { limit: 1 });
  assert.equal(first.reads.length, 1);
  assert.equal(first.next, first.reads[0].user);
  const second = await alice.receipts(group.id, { afterUser: first.next, limit: 1 });
  assert.deepEqual([...first.reads, ...second.reads], reads);
  assert.equal(second.next, undefined);
  await assert.rejects(alice.receipts(group.id, { limit: 201 }), (e) => code(ErrorCodes.BadFrame)(e) && e.detail.startsWith("limit"));

  // A rename reaches every member as "renamed" with the rev that conv.get returns.
  await alice.renameConversation(group.id, "Team B");
  await waitFor(() => bobConv.some((e) => e.event === "renamed"), { what: "the renamed push" });
  const renamed = bobConv.find((e) => e.event === "renamed");
  assert.equal(renamed.name, "Team B");
  assert.equal(renamed.by, alice.user);
  const now = await bob.conversation(group.id);
  assert.equal(now.name, "Team B");
  assert.equal(now.rev, renamed.rev);
  await assert.rejects(alice.renameConversation(group.id, ""), (e) => code(ErrorCodes.BadFrame)(e) && e.detail.startsWith("name"));
  const direct = await alice.createDirect(bob.user);
  await assert.rejects(alice.renameConversation(direct.id, "x"), code(ErrorCodes.Forbidden));

  // A member added: the others get members_added with the users and the size.
  const carol = uid("carol");
  await alice.addMembers(group.id, [carol]);
  await waitFor(() => bobConv.some((e) => e.event === "members_added"), { what: "the members_added push" });
  const more = bobConv.find((e) => e.event === "members_added");
  assert.deepEqual(more.users, [carol]);
  assert.equal(more.n, 1);
  assert.equal(more.member_count, 3);
  assert.ok(more.rev > renamed.rev);
});

test("history pages both ways, markRead, ping", async (t) => {
  const [alice, bob] = await pair(t);
  const conv = await alice.createDirect(bob.user);
  for (const i of range(1, 7)) await alice.send(conv.id, "h" + i);
  const newest = await bob.history(conv.id, { limit: 3 });
  assert.deepEqual(newest.msgs.map((m) => m.seq), [5, 6, 7]);
  assert.equal(newest.more, true);
  const older = await bob.history(conv.id, { before: 5, limit: 3 });
  assert.deepEqual(older.msgs.map((m) => m.seq), [2, 3, 4]);
  const fromStart = await bob.history(conv.id, { after: 0, limit: 4 });
  assert.deepEqual(fromStart.msgs.map((m) => m.seq), [1, 2, 3, 4]);
  assert.equal(fromStart.more, true);
  const rest = await bob.history(conv.id, { after: 4 });
  assert.deepEqual(rest.msgs.map((m) => m.body), ["h5", "h6", "h7"]);
  assert.equal(rest.more, false);
  await bob.markRead(conv.id, 7);
  const p = await bob.ping();
  assert.ok(p.rttMs >= 0 && Math.abs(p.serverTs - Date.now()) < 60000);
});

test("presence: watch, changes, hidden, and the state again after a reconnect; typing", async (t) => {
  const [alice, bob] = await pair(t);
  await alice.createDirect(bob.user);
  const seen = [];
  alice.on("presence", (p) => seen.push(p));
  const now = await alice.subscribePresence([bob.user]);
  assert.deepEqual(now, [{ user: bob.user, online: true }]);
  await bob.setPresenceHidden(true);
  await waitFor(() => seen.some((p) => p.user === bob.user && !p.online), { what: "bob offline (hidden)" });
  await bob.setPresenceHidden(false);
  await waitFor(() => seen.at(-1)?.online === true, { what: "bob online again" });

  const typing = [];
  alice.on("typing", (e) => typing.push(e));
  const conv = (await bob.conversations())[0].id;
  await bob.setTyping(conv, "started");
  await waitFor(() => typing.length === 1, { what: "a typing push" });
  assert.equal(typing[0].user, bob.user);
  assert.equal(typing[0].state, "started");
  assert.ok(typing[0].expires_ms > 0);

  // The edge forgets watches with the connection: the client watches again and emits the state.
  const before = seen.length;
  alice.sockets.at(-1).terminate();
  await waitFor(() => alice.stats().reconnects === 1 && seen.length > before, { what: "bob's state after alice's reconnect" });
  assert.deepEqual(seen.at(-1), { user: bob.user, online: true });
  await bob.setPresenceHidden(true);
  await waitFor(() => seen.at(-1)?.online === false, { what: "a change seen on the new connection" });
  await bob.setPresenceHidden(false);
  await waitFor(() => seen.at(-1)?.online === true, { what: "bob back" });

  await alice.unsubscribePresence([bob.user]);
  const n = seen.length;
  await bob.setPresenceHidden(true);
  await bob.setPresenceHidden(false);
  await bob.ping(); // the presence changes have been made; none comes to alice
  assert.equal(seen.length, n);
});

test("error codes a client can provoke", async (t) => {
  const [alice, bob] = await pair(t);
  const direct = await alice.createDirect(bob.user);

  // bad_frame: the edge names the field.
  await assert.rejects(alice.history(direct.id, { limit: 500 }), (e) => code(ErrorCodes.BadFrame)(e) && e.detail.startsWith("limit"));
  await assert.rejects(alice.history(direct.id, { before: 0 }), code(ErrorCodes.BadFrame));
  // unknown_op: through the raw request (an op this SDK version does not wrap).
  await assert.rejects(alice.request("msg.frobnicate", { conv: direct.id }), code(ErrorCodes.UnknownOp));
  // not_member, also for a conversation that does not exist.
  await assert.rejects(alice.history("g_doesnotexist"), code(ErrorCodes.NotMember));
  await assert.rejects(alice.send("g_doesnotexist", "x"), code(ErrorCodes.NotMember));
  // forbidden: a direct conversation cannot change; only the creator removes others; presence of a stranger; from someone else.
  await assert.rejects(alice.addMembers(direct.id, [uid("carol")]), code(ErrorCodes.Forbidden));
  const group = await alice.createGroup("g", [bob.user, "carol"]);
  await assert.rejects(bob.removeMembers(group.id, ["carol"]), code(ErrorCodes.Forbidden));
  await assert.rejects(alice.subscribePresence([uid("stranger")]), (e) => code(ErrorCodes.Forbidden)(e) && /users\[0\]/.test(e.detail));
  await assert.rejects(alice.request("send", { conv: direct.id, cmid: "c-from", body: "x", from: bob.user }), code(ErrorCodes.Forbidden));
  // too_big: refused by the SDK before it leaves (max_body from hello), and by the edge.
  const big = "x".repeat(65537);
  await assert.rejects(alice.send(direct.id, big), code(ErrorCodes.TooBig));
  await assert.rejects(alice.request("send", { conv: direct.id, cmid: "c-big", body: big }), code(ErrorCodes.TooBig));
  // rate_limited: typing is limited to 1 per second per conversation, burst 3; setTyping does not retry it.
  const results = await Promise.allSettled(range(1, 5).map(() => alice.setTyping(direct.id, "started")));
  const limited = results.filter((r) => r.status === "rejected");
  assert.ok(limited.length >= 1, "at least one typing frame over the burst");
  for (const r of limited) assert.ok(isCode(r.reason, ErrorCodes.RateLimited), String(r.reason));
  assert.ok(limited[0].reason.retryable);
  // too_many: a connection watches at most 500 users.
  const members = range(1, 501).map((i) => "w" + i);
  const big1 = await alice.createGroup("many", members.slice(0, 500));
  await alice.addMembers(big1.id, members.slice(500));
  await alice.subscribePresence(members.slice(0, 500));
  await assert.rejects(alice.subscribePresence(members.slice(500)), code(ErrorCodes.TooMany));
  // Client-side checks name the field like the edge does.
  await assert.rejects(alice.send(direct.id, ""), (e) => code(ErrorCodes.BadFrame)(e) && e.detail.startsWith("body"));
  await assert.rejects(alice.send(direct.id, "x", { cmid: "bad cmid" }), (e) => code(ErrorCodes.BadFrame)(e) && e.detail.startsWith("cmid"));
});

test("bad_json and bad_version, which the SDK never sends: an err without id is logged and the connection carries on; the SDK offers natter.v1", async (t) => {
  const logs = [];
  const alice = client(dev.url, uid("alice"), { logger: (level, msg, fields) => logs.push({ level, msg, ...fields }) });
  t.after(() => alice.close());
  await alice.connect();
  const ws = alice.sockets.at(-1);
  assert.equal(ws.protocol, "natter.v1");
  ws.send("{not json");
  await waitFor(() => logs.some((l) => l.code === ErrorCodes.BadJSON), { what: "the bad_json answer in the log" });
  assert.equal(logs.find((l) => l.code === ErrorCodes.BadJSON).level, "warn");
  await alice.ping();
  assert.equal(alice.stats().reconnects, 0);

  // Another subprotocol only: HTTP 400 bad_version at the upgrade (a browser's WebSocket shows it as a failed connect).
  const { default: WS } = await import("ws");
  const status = await new Promise((resolve, reject) => {
    const raw = new WS(dev.url, "natter.v2");
    raw.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
    });
    raw.on("open", () => reject(new Error("upgraded without natter.v1")));
    raw.on("error", () => {});
  });
  assert.equal(status.status, 400);
  assert.equal(status.body.code, ErrorCodes.BadVersion);
});

test("rate_limited sends are retried with their cmid after a back-off: every one stored once", async (t) => {
  const slow = await startDev({ extra: ["--rate", "10", "--burst", "5"] });
  t.after(() => slow.cleanup());
  const alice = client(slow.url, uid("alice"));
  t.after(() => alice.close());
  await alice.connect();
  const conv = await alice.createGroup("rl", []);
  const acks = await Promise.all(range(1, 20).map((i) => alice.send(conv.id, "rl" + i)));
  assert.deepEqual(acks.map((a) => a.seq).sort((a, b) => a - b), range(1, 20));
  assert.ok(alice.stats().sendRetries > 0, "some send was over the limit and sent again");
  const page = await alice.history(conv.id);
  assert.equal(new Set(page.msgs.map((m) => m.cmid)).size, 20);
});

test("NatterError: unknown codes count as internal, retryable codes", () => {
  const e = new NatterError("send", "brand_new_code", "later within v1");
  assert.equal(e.code, "internal");
  assert.equal(e.rawCode, "brand_new_code");
  assert.equal(e.retryable, false);
  assert.equal(new NatterError("send", "unavailable", "").retryable, true);
  assert.equal(new NatterError("send", "rate_limited", "").retryable, true);
  assert.equal(new NatterError("send", "not_member", "").retryable, false);
});

test("edit and delete a message", async (t) => {
  const [alice, bob] = await pair(t);
  const direct = await alice.createDirect(bob.user);
  const m = await alice.send(direct.id, "helo");
  await assert.rejects(bob.edit(direct.id, m.id, "mine"), code(ErrorCodes.Forbidden));
  await assert.rejects(bob.deleteMessage(direct.id, m.id), code(ErrorCodes.Forbidden));
  await assert.rejects(alice.edit(direct.id, "m_nosuchmessage", "x"), code(ErrorCodes.NotFound));
  const e = await alice.edit(direct.id, m.id, "hello", { cmid: "fix-1" });
  const again = await alice.edit(direct.id, m.id, "hello", { cmid: "fix-1" });
  assert.equal(again.dup, true);
  assert.equal(again.seq, e.seq);
  let page = await bob.history(direct.id);
  assert.equal(page.msgs[0].body, "hello");
  assert.equal(page.msgs[0].edited_at, e.ts);
  await alice.deleteMessage(direct.id, m.id);
  page = await bob.history(direct.id);
  assert.equal(page.msgs[0].deleted, true);
  assert.equal(page.msgs[0].body, "");
  assert.equal(page.msgs[1].deleted, true, "the edit entry's text is gone too");
  await assert.rejects(alice.edit(direct.id, m.id, "back"), code(ErrorCodes.Conflict));
});

test("reactions: idempotent, pushed to the members, counted in pages with mine", async (t) => {
  const [alice, bob] = await pair(t);
  const events = [];
  alice.on("reaction", (e) => events.push(e));
  const direct = await alice.createDirect(bob.user);
  const m = await alice.send(direct.id, "lunch?");
  assert.deepEqual(await bob.react(direct.id, m.id, "👍"), { count: 1, mine: true });
  assert.deepEqual(await bob.react(direct.id, m.id, "👍"), { count: 1, mine: true }, "idempotent");
  await waitFor(() => events.length === 1, { what: "alice's reaction event" });
  assert.equal(events[0].user, bob.user);
  assert.equal(events[0].emoji, "👍");
  assert.equal(events[0].count, 1);
  let page = await alice.history(direct.id);
  assert.deepEqual(page.msgs[0].reactions, [{ emoji: "👍", count: 1 }]);
  page = await bob.history(direct.id);
  assert.deepEqual(page.msgs[0].reactions, [{ emoji: "👍", count: 1, mine: true }]);
  assert.deepEqual(await bob.react(direct.id, m.id, "👍", { remove: true }), { count: 0, mine: false });
  await assert.rejects(bob.react(direct.id, m.id, "a b"), code(ErrorCodes.BadFrame));
  await assert.rejects(bob.react(direct.id, "m_nosuchmessage", "👍"), code(ErrorCodes.NotFound));
});

test("replies and threads: reply_to and thread on send, counts on the root, the thread page", async (t) => {
  const [alice, bob] = await pair(t);
  const direct = await alice.createDirect(bob.user);
  const root = await alice.send(direct.id, "root");
  const r1 = await bob.send(direct.id, "re 1", { thread: root.id, replyTo: root.id });
  const r2 = await alice.send(direct.id, "re 2", { thread: root.id });
  await waitFor(() => alice.got.some((m) => m.conv === direct.id && m.seq === r1.seq), { what: "alice has bob's reply" });
  const pushed = alice.got.find((m) => m.conv === direct.id && m.seq === r1.seq);
  assert.equal(pushed.reply_to, root.id);
  assert.equal(pushed.thread, root.id);
  await assert.rejects(bob.send(direct.id, "x", { replyTo: "m_nosuchmessage" }), code(ErrorCodes.NotFound));
  const page = await bob.history(direct.id);
  assert.equal(page.msgs[0].thread_replies, 2);
  assert.equal(page.msgs[0].thread_last_at, r2.ts);
  let th = await bob.thread(direct.id, root.id, { limit: 1 });
  assert.deepEqual(th.msgs.map((m) => m.seq), [r2.seq]);
  assert.equal(th.more, true);
  th = await bob.thread(direct.id, root.id, { before: r2.seq });
  assert.deepEqual(th.msgs.map((m) => m.seq), [r1.seq]);
  assert.equal(th.more, false);
});
