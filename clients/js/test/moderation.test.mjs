// Group roles through the SDK against a real natter: the owner appoints an
// admin, the admin mutes a member and turns announcement mode on, the
// owner hands ownership on; every member gets each change as a "conv"
// event; forged attempts get "forbidden" and store nothing.
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

const forbidden = (e) => {
  assert.ok(e instanceof NatterError, `${e} is a NatterError`);
  assert.equal(e.code, ErrorCodes.Forbidden, e.message);
  return true;
};

test("roles, mutes and announcement mode", async (t) => {
  const [alice, bob, carol] = ["alice", "bob", "carol"].map((u) => client(dev.url, uid(u)));
  t.after(() => Promise.all([alice.close(), bob.close(), carol.close()]));
  await Promise.all([alice.connect(), bob.connect(), carol.connect()]);
  const events = new Map([alice, bob, carol].map((c) => [c, []]));
  for (const [c, list] of events) c.on("conv", (e) => list.push(e));
  const seen = (ev, rev) =>
    waitFor(() => [...events.values()].every((l) => l.some((e) => e.event === ev && e.rev === rev)), { what: `${ev} at rev ${rev} on every client` });

  const g = await alice.createGroup("Team", [bob.user, carol.user]);
  assert.equal(g.owner, alice.user);

  await assert.rejects(bob.addMembers(g.id, [uid("dave")]), forbidden);
  await assert.rejects(carol.removeMembers(g.id, [bob.user]), forbidden);
  await assert.rejects(bob.addAdmins(g.id, [bob.user]), forbidden);

  await alice.addAdmins(g.id, [bob.user]);
  await seen("roles", 1);
  const roles = events.get(carol).find((e) => e.event === "roles");
  assert.equal(roles.owner, alice.user);
  assert.deepEqual(roles.admins, [bob.user]);

  await bob.mute(g.id, [carol.user], 60_000);
  await seen("muted", 2);
  const muted = events.get(carol).find((e) => e.event === "muted");
  assert.deepEqual(muted.users, [carol.user]);
  assert.ok(muted.until > Date.now(), "the mute ends in the future");
  await assert.rejects(carol.send(g.id, "muted"), forbidden);

  await bob.unmute(g.id, [carol.user]);
  await seen("muted", 3);
  await bob.updateGroup(g.id, { announce: true, description: "Planning" });
  await seen("updated", 4);
  const updated = events.get(carol).find((e) => e.event === "updated");
  assert.equal(updated.announce, true);
  assert.equal(updated.description, "Planning");
  await assert.rejects(carol.send(g.id, "not an admin"), forbidden);
  await bob.send(g.id, "from an admin");

  await alice.transferOwner(g.id, carol.user);
  await seen("roles", 5);
  const got = await carol.conversation(g.id);
  assert.equal(got.owner, carol.user);
  assert.deepEqual([...got.admins].sort(), [alice.user, bob.user].sort());
  assert.equal(got.announce, true);
  assert.equal(got.description, "Planning");
  await carol.send(g.id, "from the owner");

  const page = await alice.history(g.id);
  assert.deepEqual(
    page.msgs.map((m) => m.body),
    ["from an admin", "from the owner"],
    "the refused sends are not stored",
  );
});

test("blocking: a blocked user's direct sends and starts are refused, group messages are not", async (t) => {
  const [alice, bob] = ["alice", "bob"].map((u) => client(dev.url, uid(u)));
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  const d = await alice.createDirect(bob.user);
  const g = await alice.createGroup("Team", [bob.user]);
  await bob.send(d.id, "hi");

  assert.deepEqual(await alice.block([bob.user]), [bob.user]);
  assert.deepEqual(await alice.blocks(), [bob.user]);
  await assert.rejects(bob.send(d.id, "refused"), forbidden);
  await assert.rejects(bob.createDirect(alice.user), forbidden);
  await bob.send(g.id, "group messages pass");
  const [st] = await bob.subscribePresence([alice.user]);
  assert.equal(st.online, false, "the blocker looks offline to the blocked user");

  assert.deepEqual(await alice.unblock([bob.user]), []);
  await bob.send(d.id, "again");
  const page = await alice.history(d.id);
  assert.deepEqual(
    page.msgs.map((m) => m.body),
    ["hi", "again"],
  );
});

test("conversation settings: synced to the user's devices, clear history for me", async (t) => {
  const aliceID = uid("alice");
  const alice1 = client(dev.url, aliceID, { device: "d1" });
  const alice2 = client(dev.url, aliceID, { device: "d2" });
  const bob = client(dev.url, uid("bob"));
  t.after(() => Promise.all([alice1.close(), alice2.close(), bob.close()]));
  await Promise.all([alice1.connect(), alice2.connect(), bob.connect()]);
  const pushed = [];
  alice2.on("conv", (e) => e.event === "settings" && pushed.push(e));
  const d = await alice1.createDirect(bob.user);
  for (const body of ["one", "two"]) await bob.send(d.id, body);

  const s = await alice1.setConversationSettings(d.id, { pinned: true, cleared: 2 });
  assert.deepEqual(s, { pinned: true, cleared: 2 });
  await waitFor(() => pushed.length === 1, { what: "the settings push on alice's other device" });
  assert.deepEqual(pushed[0].settings, { pinned: true, cleared: 2 });
  const [conv] = await alice2.conversations();
  assert.deepEqual(conv.settings, { pinned: true, cleared: 2 });
  assert.equal((await alice2.history(d.id)).msgs.length, 0, "cleared for alice");
  assert.equal((await bob.history(d.id)).msgs.length, 2, "not for bob");
  await bob.send(d.id, "three");
  await waitFor(() => alice2.got.some((m) => m.conv === d.id && m.seq === 3), { what: "seq 3 on alice's device" });
});
