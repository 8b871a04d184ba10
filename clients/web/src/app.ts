// natter's chat web app: sign-in, the conversation list, a conversation's
// messages and composer, new conversations. Plain DOM on the TypeScript SDK.

import { Chat, type Change } from "./chat.js";
import type { Attachment } from "../../js/src/index.js";
import { $, h, replace, time } from "./dom.js";
import { DevTokenUnavailable, devToken, deviceID, idRe, loadSession, saveSession, tokenExpired, type Session } from "./session.js";

const root = $("#root");

// ---- sign-in ----

function showSignIn(message = "", askToken = false): void {
  const err = h("p", { class: "error", role: "alert", id: "signin-error" }, message);
  const user = h("input", { id: "signin-user", name: "user", autocomplete: "username", required: true, pattern: "[A-Za-z0-9_\\-]{1,64}", "aria-describedby": "signin-help" });
  const token = h("textarea", { id: "signin-token", name: "token", rows: 3, required: true });
  const form = h(
    "form",
    { class: "signin card", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "natter"),
    h("label", { for: "signin-user" }, "User id"),
    user,
    h("p", { id: "signin-help", class: "help" }, "Letters, digits, _ and -. natter dev signs you in as anyone."),
    askToken && h("label", { for: "signin-token" }, "Token"),
    askToken && token,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    err,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const u = user.value.trim();
    if (!idRe.test(u)) {
      err.textContent = "A user id is 1 to 64 letters, digits, _ or -.";
      user.focus();
      return;
    }
    try {
      const s: Session = askToken ? { user: u, token: token.value.trim(), dev: false } : { user: u, token: await devToken(u, deviceID()), dev: true };
      saveSession(s);
      start(s);
    } catch (e) {
      if (e instanceof DevTokenUnavailable) showSignIn(e.message, true);
      else err.textContent = String((e as Error).message);
    }
  });
  replace(root, h("div", { class: "signin-wrap" }, form));
  user.focus();
}

// ---- the chat ----

interface View {
  chat: Chat;
  open: string | undefined;
  list: HTMLUListElement;
  pane: HTMLElement;
  banner: HTMLElement;
  layout: HTMLElement;
  /** The next render of the messages scrolls to the end (the user just sent). */
  toEnd?: boolean;
}

function start(session: Session): void {
  const getToken = async (reason: "connect" | "expired"): Promise<string> => {
    if (reason === "connect" && !tokenExpired(session.token)) return session.token;
    if (!session.dev) throw new Error("the token has expired: sign in again");
    session.token = await devToken(session.user, deviceID());
    saveSession(session);
    return session.token;
  };
  const chat = new Chat(session, getToken);
  // The SDK's counters, for the browser tests and for a look in the console.
  (window as unknown as { natterStats: () => unknown }).natterStats = () => ({ ...chat.client.stats(), deliveryFaults: chat.deliveryFaults, readsFromEdge: chat.readsFromEdge });
  const list = h("ul", { class: "convs", id: "conv-list" });
  const banner = h("div", { class: "banner", role: "status", "aria-live": "polite", hidden: true, id: "banner" });
  const pane = h("main", { class: "pane", id: "pane", "aria-label": "Conversation" });
  const layout = h(
    "div",
    { class: "layout" },
    h(
      "nav",
      { class: "sidebar", "aria-label": "Conversations" },
      h("div", { class: "sidebar-head" }, h("h2", {}, "Chats"), h("button", { type: "button", class: "primary", id: "new-conv", onclick: () => newConversation(v) }, "New chat")),
      list,
    ),
    pane,
  );
  const v: View = { chat, open: undefined, list, pane, banner, layout };
  replace(
    root,
    h(
      "div",
      { class: "app" },
      h(
        "header",
        { class: "topbar" },
        h("span", { class: "logo" }, "natter"),
        h("span", { class: "me", id: "me" }, "Signed in as ", h("strong", {}, session.user)),
        h("button", { type: "button", class: "link", onclick: () => signOut(chat) }, "Sign out"),
      ),
      banner,
      layout,
    ),
  );
  renderPane(v);
  chat.onChange((c) => onChange(v, c));
  chat.start().catch((e) => showBanner(v, "Cannot connect: " + String((e as Error).message)));
  // The browser knows it is offline before the socket does.
  window.addEventListener("offline", () => showState(v));
  window.addEventListener("online", () => showState(v));
  showState(v);
  document.addEventListener("visibilitychange", () => {
    if (v.open && document.visibilityState === "visible") chat.markRead(v.open);
  });
}

async function signOut(chat: Chat): Promise<void> {
  saveSession(undefined);
  await chat.close().catch(() => {});
  showSignIn();
}

function showBanner(v: View, text: string | undefined): void {
  v.banner.hidden = !text;
  v.banner.textContent = text ?? "";
}

/** showState shows the connection's state in the banner (nothing while connected). */
function showState(v: View, detail?: string): void {
  const state = v.chat.client.state;
  if (state === "closed") showBanner(v, "Disconnected" + (detail ? ": " + detail : "") + ". Reload the page to connect again.");
  else if (!navigator.onLine) showBanner(v, "You are offline: messages are kept and sent when you are back.");
  else if (state === "reconnecting") showBanner(v, "Connection lost: reconnecting…");
  else if (state === "connecting") showBanner(v, "Connecting…");
  else showBanner(v, undefined);
}

function onChange(v: View, c: Change): void {
  switch (c.kind) {
    case "convs":
    case "presence":
      renderList(v);
      if (v.open) renderHead(v); // a name, a member count, a presence
      break;
    case "msgs":
      if (c.conv === v.open) renderMessages(v, c.older ?? false);
      break;
    case "typing":
      if (c.conv === v.open) renderTyping(v);
      break;
    case "state":
      document.body.dataset.state = c.state;
      showState(v, c.detail);
      break;
    case "error":
      showBanner(v, c.text);
      break;
  }
}

// ---- the conversation list ----

function renderList(v: View): void {
  const { chat } = v;
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.conv : undefined;
  const items = chat.sorted().map((id) => {
    const last = chat.last(id);
    const unread = v.open === id ? 0 : chat.unread(id);
    const peer = chat.peer(id);
    const online = peer ? chat.online.get(peer) : undefined;
    const lastText = last ? (chat.view(last)?.body ?? "message deleted") : chat.convs.get(id)?.loaded ? "No messages yet" : "";
    const title = chat.title(id);
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: "conv" + (unread > 0 ? " has-unread" : ""),
          "data-conv": id,
          "aria-current": v.open === id ? "true" : undefined,
          onclick: () => openConv(v, id),
        },
        h("span", { class: "avatar", "aria-hidden": "true" }, title.slice(0, 1).toUpperCase()),
        h(
          "span",
          { class: "conv-text" },
          h(
            "span",
            { class: "conv-title" },
            title,
            online !== undefined && h("span", { class: "dot " + (online ? "on" : "off"), title: online ? "online" : "offline", "aria-label": online ? "online" : "offline" }),
          ),
          h("span", { class: "conv-last" }, last && last.from !== chat.user && chat.convs.get(id)?.conv.kind === "group" ? last.from + ": " : "", lastText),
        ),
        h(
          "span",
          { class: "conv-meta" },
          last && h("span", { class: "conv-time" }, time(last.ts)),
          unread > 0 && h("span", { class: "badge", "aria-label": unread + " unread" }, String(unread)),
        ),
      ),
    );
  });
  if (items.length === 0) items.push(h("li", { class: "empty" }, "No conversations yet: start one with New chat."));
  replace(v.list, ...items);
  if (focused) v.list.querySelector<HTMLElement>(`[data-conv="${focused}"]`)?.focus();
}

// ---- a conversation ----

function openConv(v: View, id: string): void {
  if (v.open && v.open !== id) v.chat.typing(v.open, false);
  v.open = id;
  v.chat.show(id);
  v.layout.classList.add("show-pane");
  renderPane(v);
  renderList(v);
  v.chat.markRead(id);
  $("#composer-input", v.pane).focus();
}

function closeConv(v: View): void {
  const id = v.open;
  v.open = undefined;
  v.chat.show(undefined);
  v.layout.classList.remove("show-pane");
  renderPane(v);
  renderList(v);
  if (id) v.list.querySelector<HTMLElement>(`[data-conv="${id}"]`)?.focus();
}

function renderPane(v: View): void {
  const id = v.open;
  if (!id) {
    replace(v.pane, h("div", { class: "placeholder" }, h("p", {}, "Pick a conversation, or start a new one.")));
    return;
  }
  const input = h("textarea", { id: "composer-input", rows: 1, placeholder: "Message", autocomplete: "off", enterkeyhint: "send" });
  const form = h(
    "form",
    { class: "composer", "aria-label": "Send a message" },
    h("label", { for: "composer-input", class: "sr-only" }, "Message"),
    input,
    h("button", { type: "submit", class: "primary" }, "Send"),
  );
  const submit = () => {
    const body = input.value.trim();
    if (!body) return;
    v.toEnd = true;
    v.chat.send(id, body);
    v.chat.typing(id, false);
    input.value = "";
    input.style.height = "";
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    } else if (ev.key === "Escape") closeConv(v);
  });
  input.addEventListener("input", () => {
    v.chat.typing(id, input.value.trim() !== "");
    input.style.height = "";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  });
  input.addEventListener("blur", () => v.chat.typing(id, false));
  const log = h("div", { class: "messages", id: "messages", role: "log", "aria-label": "Messages", tabindex: 0 });
  log.addEventListener("scroll", () => {
    if (log.scrollTop < 40) void loadOlder(v, id);
  });
  replace(
    v.pane,
    h("header", { class: "pane-head", id: "pane-head" }),
    log,
    h("div", { class: "typing", id: "typing", "aria-live": "polite" }),
    form,
  );
  renderHead(v);
  renderMessages(v, false);
  renderTyping(v);
}

function renderHead(v: View): void {
  const id = v.open;
  if (!id) return;
  const c = v.chat.convs.get(id)?.conv;
  const peer = v.chat.peer(id);
  const online = peer ? v.chat.online.get(peer) : undefined;
  const sub = c?.kind === "group" ? `${c.member_count} members` : online === undefined ? "" : online ? "online" : "offline";
  replace(
    $("#pane-head", v.pane),
    h("button", { type: "button", class: "back", "aria-label": "Back to the conversations", onclick: () => closeConv(v) }, "←"),
    h("div", { class: "head-text" }, h("h2", { id: "conv-title" }, v.chat.title(id)), h("p", { class: "sub", id: "conv-sub" }, sub)),
    c?.kind === "group" && h("button", { type: "button", class: "link", id: "rename", onclick: () => renameGroup(v, id) }, "Rename"),
  );
}

let loadingOlder = false;

async function loadOlder(v: View, id: string): Promise<void> {
  if (loadingOlder) return;
  loadingOlder = true;
  try {
    await v.chat.loadOlder(id);
  } catch (e) {
    showBanner(v, "Cannot load older messages: " + String((e as Error).message));
  } finally {
    loadingOlder = false;
  }
}

function renderMessages(v: View, older: boolean): void {
  const id = v.open;
  if (!id) return;
  const log = $("#messages", v.pane);
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
  const fromBottom = log.scrollHeight - log.scrollTop;
  const { chat } = v;
  const cs = chat.convs.get(id);
  const items: HTMLElement[] = [];
  const msgs = chat.messages(id);
  const group = cs?.conv.kind === "group";
  // Receipts: the newest message of the user's own that others have read
  // says who ("Seen", in a group "Seen by ..."); a message read by every
  // other member gets a double tick.
  const others = Math.max(1, (cs?.conv.member_count ?? 2) - 1);
  let seenAt = 0;
  for (const m of msgs) if (m.from === chat.user && chat.seenBy(id, m.seq).length > 0) seenAt = m.seq;
  for (const m of msgs) {
    const shown = chat.view(m);
    const mine = m.from === chat.user;
    const seen = mine ? chat.seenBy(id, m.seq) : [];
    const tick = seen.length >= others ? h("span", { class: "tick seen", "aria-label": "read" }, " ✓✓") : h("span", { class: "tick", "aria-label": "sent" }, " ✓");
    items.push(
      h(
        "li",
        { class: "msg" + (mine ? " mine" : "") + (shown ? "" : " deleted"), "data-seq": m.seq, "data-state": mine ? "sent" : undefined },
        !mine && cs?.conv.kind === "group" && h("span", { class: "from" }, m.from),
        h("span", { class: "body" }, shown ? shown.body : "message deleted"),
        shown && m.attachments?.length ? h("span", { class: "attachments" }, ...m.attachments.map((a) => attachmentEl(chat, a))) : false,
        h("span", { class: "meta" }, shown?.edited ? "edited · " : "", time(m.ts), mine ? tick : ""),
      ),
    );
    if (m.seq === seenAt) items.push(h("li", { class: "seen-by", id: "seen-by" }, group ? "Seen by " + names(seen) : "Seen"));
  }
  for (const p of chat.pendingOf(id)) {
    const label = p.state === "failed" ? "Not sent: " + (p.error ?? "refused") : p.state === "sent" ? "Sent" : "Sending…";
    items.push(
      h(
        "li",
        { class: "msg mine " + p.state, "data-cmid": p.entry.cmid, "data-state": p.state },
        h("span", { class: "body" }, clip(p.entry.body)),
        h(
          "span",
          { class: "meta" },
          h("span", { class: "status" }, label),
          p.state === "failed" && h("button", { type: "button", class: "link", onclick: () => chat.retry(p.entry.cmid) }, "Retry"),
          p.state === "failed" && h("button", { type: "button", class: "link", onclick: () => chat.discard(p.entry.cmid) }, "Discard"),
        ),
      ),
    );
  }
  const top: HTMLElement[] = [];
  if (cs?.more) top.push(h("button", { type: "button", class: "link older", id: "load-older", onclick: () => void loadOlder(v, id) }, "Load older messages"));
  else if (cs?.loaded && items.length === 0) top.push(h("p", { class: "empty" }, "No messages yet. Say hi!"));
  const hadFocus = document.activeElement?.id === "load-older";
  replace(log, ...top, h("ol", { class: "msg-list" }, ...items));
  if (hadFocus) (log.querySelector<HTMLElement>("#load-older") ?? log).focus({ preventScroll: true });
  // Loading older keeps the view where it was; new messages scroll to them
  // only when the user was at the end (or just sent), not while reading back.
  if (older) log.scrollTop = log.scrollHeight - fromBottom;
  else if (atBottom || v.toEnd) log.scrollTop = log.scrollHeight;
  v.toEnd = false;
  if (document.visibilityState === "visible") chat.markRead(id);
}

/** names lists users, the first three by name. */
function names(users: string[]): string {
  return users.length <= 3 ? users.join(", ") : `${users.slice(0, 3).join(", ")} and ${users.length - 3} more`;
}

/** clip shortens a long unsent body (one refused as too big, say) for its bubble. */
function clip(body: string): string {
  return body.length <= 2000 ? body : body.slice(0, 2000) + ` … (${body.length} characters)`;
}

function renderTyping(v: View): void {
  const id = v.open;
  if (!id) return;
  const who = v.chat.typers(id);
  $("#typing", v.pane).textContent = who.length === 0 ? "" : who.length === 1 ? `${who[0]} is typing…` : `${who.join(", ")} are typing…`;
}

// ---- new conversations ----

function newConversation(v: View): void {
  const err = h("p", { class: "error", role: "alert" });
  const kindDirect = h("input", { type: "radio", name: "kind", value: "direct", id: "kind-direct", checked: true });
  const kindGroup = h("input", { type: "radio", name: "kind", value: "group", id: "kind-group" });
  const withUser = h("input", { id: "new-with", autocomplete: "off" });
  const name = h("input", { id: "new-name", autocomplete: "off", maxlength: 128 });
  const members = h("input", { id: "new-members", autocomplete: "off", "aria-describedby": "new-members-help" });
  const directBox = h("div", { class: "field" }, h("label", { for: "new-with" }, "User id"), withUser);
  const groupBox = h(
    "div",
    { class: "field", hidden: true },
    h("label", { for: "new-name" }, "Group name"),
    name,
    h("label", { for: "new-members" }, "Members"),
    members,
    h("p", { class: "help", id: "new-members-help" }, "User ids, separated by commas or spaces."),
  );
  const dialog = h("dialog", { class: "card", "aria-labelledby": "new-title", id: "new-dialog" });
  const toggle = () => {
    directBox.hidden = !kindDirect.checked;
    groupBox.hidden = kindDirect.checked;
  };
  kindDirect.addEventListener("change", toggle);
  kindGroup.addEventListener("change", toggle);
  const form = h(
    "form",
    { method: "dialog" },
    h("h2", { id: "new-title" }, "New chat"),
    h(
      "fieldset",
      { class: "kinds" },
      h("legend", {}, "Kind"),
      h("label", {}, kindDirect, " Direct"),
      h("label", {}, kindGroup, " Group"),
    ),
    directBox,
    groupBox,
    err,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "primary" }, "Create"),
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      let id: string;
      if (kindDirect.checked) {
        const u = withUser.value.trim();
        if (!idRe.test(u)) throw new Error("User id: 1 to 64 letters, digits, _ or -.");
        id = await v.chat.createDirect(u);
      } else {
        const ms = members.value.split(/[\s,]+/).filter(Boolean);
        const bad = ms.find((m) => !idRe.test(m));
        if (bad) throw new Error(`Members: ${bad} is not a user id.`);
        id = await v.chat.createGroup(name.value.trim(), ms);
      }
      dialog.close();
      openConv(v, id);
    } catch (e) {
      err.textContent = String((e as Error).message);
    }
  });
  dialog.append(form);
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (!v.open) $("#new-conv").focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  withUser.focus();
}

/** renameGroup asks for a group's new name; every member's app shows it from the conv push. */
function renameGroup(v: View, id: string): void {
  const err = h("p", { class: "error", role: "alert" });
  const name = h("input", { id: "rename-name", autocomplete: "off", maxlength: 128, required: true, value: v.chat.title(id) });
  const dialog = h("dialog", { class: "card", "aria-labelledby": "rename-title", id: "rename-dialog" });
  const form = h(
    "form",
    { method: "dialog" },
    h("h2", { id: "rename-title" }, "Rename the group"),
    h("div", { class: "field" }, h("label", { for: "rename-name" }, "Group name"), name),
    err,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "primary" }, "Rename"),
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const n = name.value.trim();
      if (!n) throw new Error("Group name: required.");
      await v.chat.rename(id, n);
      dialog.close();
    } catch (e) {
      err.textContent = String((e as Error).message);
    }
  });
  dialog.append(form);
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (v.open) $("#composer-input", v.pane).focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  name.select();
}

// ---- boot ----

const s = loadSession();
if (s) start(s);
else showSignIn();

// Signed URLs of attachments, by id (+ "#thumb"), shared by every render:
// an <img> keeps its src across the re-renders of the list.
const attachURLs = new Map<string, Promise<string>>();

function attachURL(chat: Chat, id: string, thumb: boolean): Promise<string> {
  const key = id + (thumb ? "#thumb" : "");
  let p = attachURLs.get(key);
  if (!p) {
    p = chat.client.attachmentURL(id, { thumb, ttlSec: 3600 });
    p.catch(() => attachURLs.delete(key)); // asked again at the next render
    attachURLs.set(key, p);
    setTimeout(() => attachURLs.delete(key), 50 * 60 * 1000); // before it expires
  }
  return p;
}

/** attachmentEl shows an attachment: an image (its thumbnail, else the file), or a link. */
function attachmentEl(chat: Chat, a: Attachment): HTMLElement {
  const label = (a.name || "file") + " (" + (a.size < 1024 ? a.size + " B" : Math.ceil(a.size / 1024) + " KiB") + ")";
  if (a.type.startsWith("image/")) {
    const img = h("img", { class: "att-image", alt: a.name || "image", "data-att": a.id, width: a.width ? Math.min(a.width, 320) : undefined });
    attachURL(chat, a.id, false).then((u) => (img.src = u), () => {});
    return img;
  }
  const link = h("a", { class: "att-file", "data-att": a.id, target: "_blank", rel: "noopener" }, label);
  attachURL(chat, a.id, false).then((u) => (link.href = u), () => {});
  return link;
}
