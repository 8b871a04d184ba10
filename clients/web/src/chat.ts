// The chat state of one signed-in user: conversations, the messages loaded
// of each, the outbox's pending sends, presence and typing. It listens to
// the SDK's client and tells the view what changed; it never touches the DOM.

import { Client, IndexedDBStorage, NatterError, type Conversation, type Message, type OutboxEntry, type ReceiptsPage } from "../../js/src/index.js";
import { deviceID, wsURL, type Session } from "./session.js";

/** A send of this device that the log has not delivered back yet. */
export interface Pending {
  entry: OutboxEntry;
  state: "pending" | "sent" | "failed";
  error?: string;
}

export interface ConvState {
  conv: Conversation;
  /** Loaded messages by seq (edit and delete entries applied, not listed). */
  msgs: Map<number, Message>;
  /** The lowest seq loaded (0: none yet); older pages exist while more. */
  oldest: number;
  more: boolean;
  loaded: boolean;
  /** The last seq the user has read (kept per user in localStorage, and the edge's read cursor: read pushes, receipts). */
  read: number;
  /** The other members' read cursors (receipts), from receipts and read pushes. */
  reads: Map<string, number>;
  typing: Map<string, number>; // user -> expiry (Date.now() ms)
}

export type Change =
  | { kind: "convs" }
  | { kind: "msgs"; conv: string; older?: boolean }
  | { kind: "state"; state: string; detail?: string }
  | { kind: "presence" }
  | { kind: "typing"; conv: string }
  | { kind: "error"; text: string };

const pageSize = 30;

export class Chat {
  readonly client: Client;
  readonly user: string;
  readonly convs = new Map<string, ConvState>();
  readonly pending = new Map<string, Pending>(); // by cmid
  readonly online = new Map<string, boolean>(); // watched users' presence
  /** Edits and deletes of messages not loaded yet, by the message id they name. */
  private readonly changes = new Map<string, Message>();
  private readonly watched = new Set<string>();
  private readonly readKey: string;
  private listener: (c: Change) => void = () => {};
  /** The conversation the view shows (its receipts are kept up to date). */
  private open: string | undefined;

  constructor(session: Session, getToken: (reason: "connect" | "expired") => Promise<string>) {
    this.user = session.user;
    this.readKey = "natter.read." + session.user;
    this.client = new Client({
      urls: wsURL(),
      getToken,
      device: deviceID(),
      storage: new IndexedDBStorage("natter-" + session.user),
      maxBackoffMs: 3000,
    });
    const c = this.client;
    c.on("state", (ev) => {
      // Away from the edge, others' presence is unknown: show none until the
      // next connection watches them again (the SDK re-reads their states).
      if (ev.state !== "connected" && this.online.size > 0) {
        this.online.clear();
        this.emit({ kind: "presence" });
      }
      this.emit({ kind: "state", state: ev.state, detail: ev.error?.message ?? ev.reason });
    });
    c.on("message", (m) => this.onMessage(m));
    c.on("queued", (e) => this.setPending(e, "pending"));
    c.on("sent", ({ entry }) => this.setPending(entry, "sent"));
    c.on("failed", ({ entry, error }) => this.setPending(entry, "failed", error.detail || error.code));
    c.on("presence", (p) => {
      this.online.set(p.user, p.online);
      this.emit({ kind: "presence" });
    });
    c.on("typing", (t) => this.onTyping(t.conv, t.user, t.state, t.expires_ms));
    c.on("conv", (ev) => {
      if (ev.event === "removed") {
        this.convs.delete(ev.conv);
        this.emit({ kind: "convs" });
      } else if (ev.event === "added") void this.learn(ev.conv);
      // renamed, members_added, members_removed: read its state again.
      else if (this.convs.has(ev.conv)) void this.reread(ev.conv);
    });
    c.on("read", (r) => this.onRead(r.conv, r.user, r.seq));
    // Edges that keep the read state send the user's read cursors with
    // every sync that starts a connection (and with conv.list).
    c.on("sync", (sum) => {
      for (const st of sum.convs) {
        if (st.read === undefined) continue;
        this.readsFromEdge = true;
        this.onRead(st.conv, this.user, st.read);
      }
    });
  }

  onChange(fn: (c: Change) => void): void {
    this.listener = fn;
  }

  private emit(c: Change): void {
    this.listener(c);
  }

  /**
   * start connects and loads the conversation list with the newest page of
   * each; every later connect refreshes the list (a conversation created
   * meanwhile, a list that failed to load).
   */
  async start(): Promise<void> {
    let first = true;
    this.client.on("state", (ev) => {
      if (ev.state === "connected" && !first) void this.refresh(true).catch(() => {});
    });
    await this.client.connect();
    first = false;
    for (const e of this.client.pending()) if (!this.pending.has(e.cmid)) this.setPending(e, "pending");
    await this.refresh();
  }

  /**
   * refresh reads the conversation list again. After a reconnect it also
   * reads what read pushes may have told meanwhile: the user's own read
   * cursor where a conversation shows unread messages (another device may
   * have read them), and the receipts of the open conversation.
   */
  private async refresh(again = false): Promise<void> {
    for (const conv of await this.client.conversations()) this.addConv(conv);
    this.emit({ kind: "convs" });
    if (again) {
      const stale = [...this.convs.values()].filter((cs) => cs.loaded && cs.conv.head > cs.read);
      await Promise.all(stale.map((cs) => this.loadOwnRead(cs).catch(() => {})));
      if (this.open) await this.loadReceipts(this.open).catch(() => {});
    }
    // The newest page of each conversation not loaded yet (for its last message), a few at a time.
    const queue = [...this.convs.values()].filter((cs) => !cs.loaded).map((cs) => cs.conv.id);
    const worker = async () => {
      for (let id = queue.shift(); id; id = queue.shift()) await this.loadNewest(id);
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    await this.watchPresence();
  }

  private readCursors(): Record<string, number> {
    try {
      return JSON.parse(localStorage.getItem(this.readKey) ?? "{}") as Record<string, number>;
    } catch {
      return {};
    }
  }

  private addConv(conv: Conversation): ConvState {
    let cs = this.convs.get(conv.id);
    if (cs) {
      cs.conv = { ...conv, head: Math.max(conv.head, cs.conv.head) };
    } else {
      const read = Math.max(this.readCursors()[conv.id] ?? 0, this.earlyReads.get(conv.id) ?? 0);
      this.earlyReads.delete(conv.id);
      cs = { conv, msgs: new Map(), oldest: 0, more: conv.head > 0, loaded: false, read, reads: new Map(), typing: new Map() };
      this.convs.set(conv.id, cs);
    }
    if (conv.read !== undefined) {
      this.readsFromEdge = true;
      if (conv.read > cs.read) cs.read = conv.read;
    }
    return cs;
  }

  /** learn fetches a conversation the user was added to (or got a message of) and its newest page. */
  private async learn(id: string): Promise<void> {
    if (this.convs.has(id)) return;
    try {
      this.addConv(await this.client.conversation(id));
    } catch (e) {
      this.emit({ kind: "error", text: String((e as Error).message) });
      return;
    }
    this.emit({ kind: "convs" });
    await this.loadNewest(id);
    await this.watchPresence();
  }

  /** reread reads a known conversation's state again (its name, its members changed). */
  private async reread(id: string): Promise<void> {
    try {
      this.addConv(await this.client.conversation(id));
    } catch (e) {
      if (e instanceof NatterError && e.code === "not_member") this.convs.delete(id);
    }
    this.emit({ kind: "convs" });
  }

  private async loadNewest(id: string): Promise<void> {
    const cs = this.convs.get(id);
    if (!cs || cs.loaded) return;
    try {
      const page = await this.client.history(id, { limit: pageSize });
      cs.loaded = true;
      this.addMsgs(cs, page.msgs);
      if (page.msgs.length > 0) {
        cs.oldest = cs.oldest === 0 ? page.msgs[0]!.seq : Math.min(cs.oldest, page.msgs[0]!.seq);
      }
      cs.more = page.more;
      await this.loadOwnRead(cs);
    } catch (e) {
      if (e instanceof NatterError && e.code === "not_member") this.convs.delete(id);
    }
    this.emit({ kind: "msgs", conv: id });
    this.emit({ kind: "convs" });
  }

  /** loadOlder loads the page before the oldest loaded message. */
  async loadOlder(id: string): Promise<void> {
    const cs = this.convs.get(id);
    if (!cs || !cs.more || cs.oldest <= 1) return;
    const page = await this.client.history(id, { before: cs.oldest, limit: pageSize });
    this.addMsgs(cs, page.msgs);
    if (page.msgs.length > 0) cs.oldest = Math.min(cs.oldest, page.msgs[0]!.seq);
    cs.more = page.more && cs.oldest > 1;
    this.emit({ kind: "msgs", conv: id, older: true });
  }

  /**
   * Deliveries out of order or repeated (a seq at or below the last one
   * delivered of its conversation): the SDK promises none. For the tests.
   */
  deliveryFaults = 0;
  private readonly lastDelivered = new Map<string, number>();
  /** The user's read cursors the edge told before the conversation was known. */
  private readonly earlyReads = new Map<string, number>();
  /** The edge sends read cursors with sync and conv.list: no receipts lookups for them. */
  readsFromEdge = false;

  private onMessage(m: Message): void {
    if (m.seq <= (this.lastDelivered.get(m.conv) ?? 0)) this.deliveryFaults++;
    this.lastDelivered.set(m.conv, m.seq);
    const cs = this.convs.get(m.conv);
    if (!cs) {
      void this.learn(m.conv);
      return;
    }
    this.addMsgs(cs, [m]);
    cs.typing.delete(m.from);
    this.emit({ kind: "msgs", conv: m.conv });
    this.emit({ kind: "convs" });
  }

  /** addMsgs stores messages (a page or a delivery; duplicates are dropped) and applies edits and deletes. */
  private addMsgs(cs: ConvState, msgs: Message[]): void {
    for (const m of msgs) {
      cs.conv.head = Math.max(cs.conv.head, m.seq);
      if (m.from === this.user && m.cmid) this.pending.delete(m.cmid);
      if ((m.type === "edit" || m.type === "delete") && m.ref) {
        this.changes.set(m.ref, m);
        if (cs.oldest === 0 || m.seq < cs.oldest) cs.oldest = m.seq;
        continue;
      }
      if (cs.msgs.has(m.seq)) continue;
      cs.msgs.set(m.seq, m);
      if (cs.oldest === 0 || m.seq < cs.oldest) cs.oldest = m.seq;
    }
  }

  /** view is a message as shown: its latest edit applied, or null when deleted. */
  view(m: Message): { body: string; edited: boolean } | null {
    const c = this.changes.get(m.id);
    if (!c) return { body: m.body, edited: false };
    return c.type === "delete" ? null : { body: c.body, edited: true };
  }

  /** messages of a conversation, oldest first. */
  messages(id: string): Message[] {
    const cs = this.convs.get(id);
    return cs ? [...cs.msgs.values()].sort((a, b) => a.seq - b.seq) : [];
  }

  pendingOf(id: string): Pending[] {
    return [...this.pending.values()].filter((p) => p.entry.conv === id).sort((a, b) => a.entry.order - b.entry.order);
  }

  last(id: string): Message | undefined {
    const cs = this.convs.get(id);
    let best: Message | undefined;
    for (const m of cs?.msgs.values() ?? []) if (!best || m.seq > best.seq) best = m;
    return best;
  }

  unread(id: string): number {
    const cs = this.convs.get(id);
    return cs ? Math.max(0, cs.conv.head - cs.read) : 0;
  }

  /** markRead marks a conversation read up to its head (locally, and with the edge). */
  markRead(id: string): void {
    const cs = this.convs.get(id);
    if (!cs || cs.conv.head <= cs.read) return;
    cs.read = cs.conv.head;
    this.saveRead(id, cs.read);
    this.client.markRead(id, cs.read).catch(() => {});
    this.emit({ kind: "convs" });
  }

  private saveRead(id: string, seq: number): void {
    const all = this.readCursors();
    all[id] = seq;
    localStorage.setItem(this.readKey, JSON.stringify(all));
  }

  /** onRead applies a read push: the user's own read on another device, or another member's (receipts). */
  private onRead(conv: string, user: string, seq: number): void {
    const cs = this.convs.get(conv);
    if (!(seq > 0)) return;
    if (!cs) {
      if (user === this.user) this.earlyReads.set(conv, Math.max(seq, this.earlyReads.get(conv) ?? 0));
      return;
    }
    if (user === this.user) {
      if (seq <= cs.read) return;
      cs.read = seq;
      this.saveRead(conv, seq);
      this.emit({ kind: "convs" });
      return;
    }
    if (seq <= (cs.reads.get(user) ?? 0)) return;
    cs.reads.set(user, seq);
    this.emit({ kind: "msgs", conv });
  }

  /** show tells which conversation the view shows (undefined: none), and reads its receipts. */
  show(id: string | undefined): void {
    this.open = id;
    if (id) this.loadReceipts(id).catch(() => {});
  }

  /**
   * loadReceipts reads the members' read cursors of a conversation (the
   * first 100 members: in larger groups read pushes carry no receipts
   * either), after a connect or when it is opened.
   */
  async loadReceipts(id: string): Promise<void> {
    const cs = this.convs.get(id);
    if (!cs) return;
    const page = await this.receipts(id);
    for (const r of page?.reads ?? []) this.onRead(id, r.user, r.seq);
  }

  /**
   * loadOwnRead reads the user's own read cursor of a conversation (which
   * another device may have moved), from an edge that does not send it
   * with sync and conv.list: one entry of receipts, the page after the
   * largest id below the user's own.
   */
  private async loadOwnRead(cs: ConvState): Promise<void> {
    if (this.readsFromEdge) return;
    const page = await this.receipts(cs.conv.id, idBefore(this.user), 1);
    const r = page?.reads?.[0];
    if (r && r.user === this.user) this.onRead(cs.conv.id, r.user, r.seq);
  }

  /** receipts pages the read cursors of a conversation's members; undefined where the edge has no receipts. */
  private async receipts(conv: string, afterUser?: string, limit?: number): Promise<ReceiptsPage | undefined> {
    try {
      return await this.client.receipts(conv, { afterUser: afterUser || undefined, limit });
    } catch (e) {
      if (e instanceof NatterError && e.code === "unknown_op") return undefined; // an edge before receipts
      throw e;
    }
  }

  /** rename renames a group; every member's devices learn it from the conv push. */
  async rename(id: string, name: string): Promise<void> {
    await this.client.renameConversation(id, name);
    await this.reread(id);
  }

  /**
   * seenBy are the other members who have read up to seq (receipts), by
   * user id; empty where receipts are unknown.
   */
  seenBy(id: string, seq: number): string[] {
    const cs = this.convs.get(id);
    if (!cs) return [];
    return [...cs.reads].filter(([u, r]) => u !== this.user && r >= seq).map(([u]) => u).sort();
  }

  /** title of a conversation: a group's name, or the other member of a direct one. */
  title(id: string): string {
    const c = this.convs.get(id)?.conv;
    if (!c) return id;
    if (c.kind === "group") return c.name || (c.members ?? []).join(", ") || "Group";
    return this.peer(id) ?? "Direct";
  }

  /** peer is the other member of a direct conversation. */
  peer(id: string): string | undefined {
    const c = this.convs.get(id)?.conv;
    if (!c || c.kind !== "direct") return undefined;
    return (c.members ?? []).find((u) => u !== this.user) ?? this.user;
  }

  /** sorted conversation ids, the latest activity first. */
  sorted(): string[] {
    const at = (id: string) => this.last(id)?.ts ?? this.convs.get(id)?.conv.created_at ?? 0;
    return [...this.convs.keys()].sort((a, b) => at(b) - at(a) || a.localeCompare(b));
  }

  send(id: string, body: string): void {
    this.client.send(id, body).catch(() => {}); // states come as events
  }

  /** retry sends a failed message's text again, as a new message. */
  retry(cmid: string): void {
    const p = this.pending.get(cmid);
    if (!p) return;
    this.pending.delete(cmid);
    this.send(p.entry.conv, p.entry.body);
  }

  discard(cmid: string): void {
    const p = this.pending.get(cmid);
    if (!p) return;
    this.pending.delete(cmid);
    void this.client.discard(p.entry.conv, cmid);
    this.emit({ kind: "msgs", conv: p.entry.conv });
  }

  private setPending(entry: OutboxEntry, state: Pending["state"], error?: string): void {
    const cs = this.convs.get(entry.conv);
    const delivered = cs && [...cs.msgs.values()].some((m) => m.cmid === entry.cmid && m.from === this.user);
    if (delivered) {
      this.pending.delete(entry.cmid);
    } else {
      this.pending.set(entry.cmid, { entry, state, error });
    }
    this.emit({ kind: "msgs", conv: entry.conv });
    this.emit({ kind: "convs" });
  }

  async createDirect(user: string): Promise<string> {
    const c = await this.client.createDirect(user);
    this.addConv(c);
    this.emit({ kind: "convs" });
    void this.loadNewest(c.id);
    void this.watchPresence();
    return c.id;
  }

  async createGroup(name: string, members: string[]): Promise<string> {
    const c = await this.client.createGroup(name, members);
    this.addConv(c);
    this.emit({ kind: "convs" });
    void this.loadNewest(c.id);
    return c.id;
  }

  /** watchPresence subscribes to the peers of direct conversations not watched yet. */
  private async watchPresence(): Promise<void> {
    const peers: string[] = [];
    for (const id of this.convs.keys()) {
      const p = this.peer(id);
      if (p && p !== this.user && !this.watched.has(p) && this.watched.size + peers.length < 500) peers.push(p);
    }
    if (peers.length === 0) return;
    for (const p of peers) this.watched.add(p);
    try {
      for (const s of await this.client.subscribePresence(peers)) this.online.set(s.user, s.online);
    } catch {
      for (const p of peers) this.watched.delete(p);
    }
    this.emit({ kind: "presence" });
  }

  private lastTyping = new Map<string, number>();

  /** typing tells the others that the user types in id (at most every 3 s), or stopped. */
  typing(id: string, active: boolean): void {
    const was = this.lastTyping.get(id) ?? 0;
    const now = Date.now();
    if (active && now - was < 3000) return;
    if (!active && was === 0) return;
    this.lastTyping.set(id, active ? now : 0);
    this.client.setTyping(id, active ? "started" : "stopped").catch(() => {});
  }

  private onTyping(conv: string, user: string, state: string, expiresMs?: number): void {
    const cs = this.convs.get(conv);
    if (!cs) return;
    if (state === "started") {
      const until = Date.now() + (expiresMs ?? 6000);
      cs.typing.set(user, until);
      setTimeout(() => {
        if (cs.typing.get(user) === until) {
          cs.typing.delete(user);
          this.emit({ kind: "typing", conv });
        }
      }, expiresMs ?? 6000);
    } else cs.typing.delete(user);
    this.emit({ kind: "typing", conv });
  }

  typers(id: string): string[] {
    return [...(this.convs.get(id)?.typing.keys() ?? [])];
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

const idChars = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"; // in byte order

/**
 * idBefore is the largest id (1..64 of [A-Za-z0-9_-]) below id in byte
 * order, or "" for none: the last character one lower and the rest filled
 * with the highest, or, for a last "-", id without it.
 */
export function idBefore(id: string): string {
  const last = idChars.indexOf(id.slice(-1));
  if (last <= 0) return id.slice(0, -1);
  return (id.slice(0, -1) + idChars[last - 1]).padEnd(64, "z");
}
