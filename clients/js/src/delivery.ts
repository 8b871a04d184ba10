import type { Message, SyncResult } from "./protocol.js";

/** maxConvBuffer bounds the early messages kept per conversation; later ones are fetched by sync. */
const maxConvBuffer = 4096;

/** The delivery state of one conversation. */
interface ConvState {
  /** The seq of the next message to hand over: cursor + 1. */
  next: number;
  /** The highest seq known to exist (from pushes and sync replies). */
  seen: number;
  /** The highest seq the edge confirmed in an ack. */
  acked: number;
  /** next is set; false for pushes that came before the first sync. */
  known: boolean;
  /** The user is no longer a member (a sync reply left it out, or a conv push said so). */
  left: boolean;
  /** When left was set by a conv push: the value of removals then. */
  leftAt: number;
  /** Messages that came early, by seq. */
  buf: Map<number, Message> | undefined;
}

/** Counters of the delivery path. */
export interface DeliveryStats {
  /** Messages handed to the application. */
  delivered: number;
  /** Of those, how many came from sync replies. */
  synced: number;
  /** Pushes received. */
  pushes: number;
  /** Messages dropped as already delivered (or already buffered). */
  duplicates: number;
  /** Pushes that came early: a sync of their conversation followed. */
  gaps: number;
}

/**
 * Delivery turns pushes and sync replies into one gap-free, duplicate-free
 * stream per conversation (the rules of docs/protocol.md, "Ordering,
 * idempotency and delivery"): per conversation it keeps next (cursor + 1)
 * and the messages that came early. A message with seq < next is a
 * duplicate; seq == next is handed to emit and next moves on, releasing
 * buffered successors; seq > next is held back and the conversation needs a
 * sync from its cursor. Pushes that arrive while a sync runs go through the
 * same rules, so they are held back until the sync has caught up.
 *
 * It is synchronous and has no I/O: the client feeds it and runs the syncs
 * it asks for (dirty()).
 */
export class Delivery {
  private readonly convs = new Map<string, ConvState>();
  private readonly dirtySet = new Set<string>();
  /** Heads ahead of next in sync replies that did not name the conversation (this tick, last tick). */
  private lagNew = new Map<string, number>();
  private lagOld = new Map<string, number>();
  private first = false;
  /** Counts conv pushes "removed": a sync reply sent before one must not undo it. */
  private removals = 0;
  readonly stats: DeliveryStats = { delivered: 0, synced: 0, pushes: 0, duplicates: 0, gaps: 0 };

  /**
   * @param emit receives every message once, in seq order per conversation
   * @param wake is called when a conversation starts needing a sync
   * @param cursors per conversation, the last seq the application has
   * @param fromStart conversations not in cursors start at 0 at the first sync (else at their head)
   * @param fromAcked ... or after the sync reply's acked (this device's cursor on the server) where it is above 0
   */
  constructor(
    private readonly emit: (m: Message) => void,
    private readonly wake: () => void,
    cursors: Record<string, number> = {},
    private readonly fromStart = false,
    private readonly fromAcked = false,
  ) {
    for (const [conv, cur] of Object.entries(cursors)) {
      this.convs.set(conv, { next: cur + 1, seen: cur, acked: cur, known: true, left: false, leftAt: 0, buf: undefined });
    }
  }

  /** Whether the first sync reply has been applied. */
  get started(): boolean {
    return this.first;
  }

  /** onPush takes a msg push. */
  onPush(m: Message): void {
    this.stats.pushes++;
    if (!m || !(m.seq > 0) || !m.conv) return;
    let st = this.convs.get(m.conv);
    if (!st) {
      // A conversation this client has not heard of. After the first sync
      // it is new (created, or the user was added, since): it starts at 0.
      // Before, the first sync decides where it starts.
      st = newState();
      this.convs.set(m.conv, st);
      if (this.first) this.start(st, 0);
    }
    if (st.left) {
      // A message that comes after the removed push is dropped
      // (docs/protocol.md, conv); a conv push "added" brings the
      // conversation back, and its sync fetches what it missed.
      this.stats.duplicates++;
      return;
    }
    if (this.accept(st, m, false)) this.stats.gaps++;
    this.markDirty(m.conv, st);
  }

  /**
   * onOwn takes the ack of an entry this client appended (a send, an edit
   * or a delete): the edge pushes it to the user's other connections, not
   * to the one that appended it (docs/protocol.md, "msg"). With m, the
   * entry as the log holds it, it is delivered as a push would be. Without
   * (a retry of a stored entry, whose first attempt may have differed, or
   * a message with attachments, whose metadata the edge filled in), seq is
   * marked as existing, so that a sync fetches it.
   */
  onOwn(conv: string, seq: number, m: Message | undefined): void {
    if (!(seq > 0) || !conv) return;
    let st = this.convs.get(conv);
    if (!st) {
      st = newState();
      this.convs.set(conv, st);
      if (this.first) this.start(st, 0);
    }
    if (st.left) return;
    if (m) this.accept(st, m, false);
    else st.seen = Math.max(st.seen, seq);
    this.markDirty(conv, st);
  }

  /** onAdded takes a conv push "added": a conversation new to the user starts at 0 and is synced. */
  onAdded(conv: string): void {
    let st = this.convs.get(conv);
    if (!st) {
      st = newState();
      this.convs.set(conv, st);
      if (!this.first) return; // the first sync decides
      this.start(st, 0);
    }
    if (st.left) {
      st.left = false;
      st.seen = Math.max(st.seen, st.next); // sync it: messages may have come meanwhile
    }
    if (st.known) {
      st.seen = Math.max(st.seen, st.next);
      this.markDirty(conv, st);
    }
  }

  /** onRemoved takes a conv push "removed": the conversation's cursor is dropped from cursors(). */
  onRemoved(conv: string): void {
    const st = this.convs.get(conv);
    if (st) this.leave(conv, st, ++this.removals);
  }

  private leave(conv: string, st: ConvState, at: number): void {
    st.left = true;
    st.leftAt = at;
    st.buf = undefined;
    this.dirtySet.delete(conv);
  }

  /**
   * mark returns what to pass to applySync for a sync request sent now, so
   * that its reply does not bring back a conversation a conv push said the
   * user left after the request went out.
   */
  mark(): number {
    return this.removals;
  }

  /**
   * accept applies one message, pushed or synced: a duplicate is dropped,
   * the next one is emitted with every buffered successor, a later one is
   * buffered until the gap is filled. It reports whether m came early.
   */
  private accept(st: ConvState, m: Message, synced: boolean): boolean {
    if (m.seq > st.seen) st.seen = m.seq;
    if (st.known && m.seq < st.next) {
      this.stats.duplicates++;
      return false;
    }
    if (!st.known || m.seq > st.next) {
      if (st.buf?.has(m.seq)) {
        this.stats.duplicates++;
        return false;
      }
      // Past the limit the message is dropped: seen remembers it, so a sync fetches it again.
      if (!st.buf) st.buf = new Map();
      if (st.buf.size < maxConvBuffer) st.buf.set(m.seq, m);
      return st.known;
    }
    this.hand(st, m, synced);
    this.drain(st);
    return false;
  }

  private hand(st: ConvState, m: Message, synced: boolean): void {
    st.next++;
    this.stats.delivered++;
    if (synced) this.stats.synced++;
    this.emit(m);
  }

  /** drain emits buffered messages that are next in line and drops stale ones. */
  private drain(st: ConvState): void {
    const buf = st.buf;
    if (!buf) return;
    for (let m = buf.get(st.next); m; m = buf.get(st.next)) {
      buf.delete(st.next);
      this.hand(st, m, false);
    }
    for (const seq of buf.keys()) {
      if (seq < st.next) {
        buf.delete(seq);
        this.stats.duplicates++;
      }
    }
    if (buf.size === 0 && st.buf === buf) st.buf = undefined;
  }

  /**
   * skipCleared moves a known conversation past the messages up to
   * cleared, which the user cleared (conv.settings, on any device): the
   * edge sends none of them, so waiting for them would stall it.
   */
  private skipCleared(st: ConvState, cleared: number): void {
    if (!st.known || cleared < st.next) return;
    st.next = cleared + 1;
    st.seen = Math.max(st.seen, cleared);
    this.drain(st);
  }

  /** onCleared applies a settings push's cleared to conv. */
  onCleared(conv: string, cleared: number): void {
    const st = this.convs.get(conv);
    if (!st) return;
    this.skipCleared(st, cleared);
    this.markDirty(conv, st);
  }

  /** start sets where a conversation the client did not know starts: after seq cursor. */
  private start(st: ConvState, cursor: number): void {
    st.known = true;
    st.next = cursor + 1;
    st.acked = cursor;
    this.drain(st);
  }

  /** markDirty records whether the conversation needs a sync and wakes the sync loop when it does. */
  private markDirty(conv: string, st: ConvState): void {
    if (st.known && !st.left && st.seen >= st.next) {
      if (!this.dirtySet.has(conv)) {
        this.dirtySet.add(conv);
        this.wake();
      }
      return;
    }
    this.dirtySet.delete(conv);
  }

  /** Whether a conversation needs a sync. */
  needsSync(): boolean {
    return this.dirtySet.size > 0;
  }

  /**
   * applySync applies one sync reply to the cursors the request sent. It
   * reports whether any conversation moved forward. mark is what mark()
   * returned when the request was sent (absent: the reply is newer than
   * every conv push so far). pass is set for a page of a paged sync:
   * coveredTo is the last conversation id the page covers (absent on the
   * last page: everything after the previous one), last whether it is the
   * pass's last page (the first pass ends there).
   */
  applySync(sent: Record<string, number>, res: SyncResult, mark = Infinity, pass?: { coveredTo?: string; last: boolean }): boolean {
    const first = !this.first;
    let progress = false;
    const listed = new Set<string>();
    for (const sc of res.convs ?? []) {
      listed.add(sc.conv);
      let st = this.convs.get(sc.conv);
      if (!st) {
        st = newState();
        this.convs.set(sc.conv, st);
      }
      let named = Object.prototype.hasOwnProperty.call(sent, sc.conv);
      if (st.left && st.leftAt > mark) continue; // the reply is older than the removal
      if (st.left) {
        st.left = false; // the user was added again
        named = true;
      }
      if (!st.known) {
        // The first sync starts conversations the application has no
        // cursor for at their head (or at 0 with fromStart); any later one
        // is new and starts at 0.
        let at = first && !this.fromStart ? sc.head : 0;
        if (first && this.fromAcked && sc.acked) at = Math.min(sc.acked, sc.head);
        this.start(st, at);
        named = true;
      }
      const before = st.next;
      if (sc.settings?.cleared) this.skipCleared(st, sc.settings.cleared);
      // A retention policy removed what lay below: never coming.
      if (sc.floor && sc.floor > 1) this.skipCleared(st, sc.floor - 1);
      if (named) {
        st.seen = Math.max(st.seen, sc.head);
      } else if (sc.head >= st.next) {
        // Probably a push on its way; checked again after a tick.
        this.lagNew.set(sc.conv, Math.max(this.lagNew.get(sc.conv) ?? 0, sc.head));
      }
      for (const m of sc.msgs ?? []) this.accept(st, m, true);
      if (st.next > before) progress = true;
      this.markDirty(sc.conv, st);
    }
    for (const conv of Object.keys(sent)) {
      // A paged reply says nothing of the conversations after the ones it covers.
      if (pass?.coveredTo !== undefined && conv > pass.coveredTo) continue;
      if (!listed.has(conv)) {
        const st = this.convs.get(conv);
        if (st && !st.left) this.leave(conv, st, 0);
      }
    }
    if (first && (pass?.last ?? true)) {
      // Pushed before the first sync but not in its list: new since.
      for (const [conv, st] of this.convs) {
        if (!st.known) {
          this.start(st, 0);
          this.markDirty(conv, st);
        }
      }
      this.first = true;
    }
    return progress;
  }

  /**
   * cursorChunks returns the cursors for the next sync: of every
   * conversation (full) or of those that need one, cut into requests of at
   * most per conversations. A full sync without conversations is one empty
   * request.
   */
  cursorChunks(full: boolean, per: number): Record<string, number>[] {
    const chunks: Record<string, number>[] = [];
    let cur: Record<string, number> | undefined;
    let n = 0;
    const add = (conv: string, st: ConvState) => {
      if (!cur || n >= per) {
        cur = {};
        n = 0;
        chunks.push(cur);
      }
      cur[conv] = st.next - 1;
      n++;
    };
    if (full) {
      for (const [conv, st] of this.convs) {
        if (st.known && !st.left) add(conv, st);
      }
      if (chunks.length === 0) chunks.push({});
      return chunks;
    }
    for (const conv of this.dirtySet) add(conv, this.convs.get(conv)!);
    return chunks;
  }

  /**
   * cursorsAfter returns the cursors of up to n conversations with ids
   * after after (in id order): what a page of a paged sync names.
   */
  cursorsAfter(after: string, n: number): Record<string, number> {
    const ids: string[] = [];
    for (const [conv, st] of this.convs) {
      if (st.known && !st.left && conv > after) ids.push(conv);
    }
    ids.sort();
    const out: Record<string, number> = {};
    for (const conv of ids.slice(0, n)) out[conv] = this.convs.get(conv)!.next - 1;
    return out;
  }

  /** checkLag marks conversations dirty whose head, seen in a sync reply a tick ago, is still not delivered. */
  checkLag(): void {
    for (const [conv, head] of this.lagOld) {
      const st = this.convs.get(conv);
      if (st && st.known && st.next <= head) {
        st.seen = Math.max(st.seen, head);
        this.markDirty(conv, st);
      }
    }
    this.lagOld.clear();
    [this.lagOld, this.lagNew] = [this.lagNew, this.lagOld];
  }

  /** ackable lists up to n conversations whose delivered cursor moved past what the edge acked. */
  ackable(n: number): { conv: string; seq: number }[] {
    const out: { conv: string; seq: number }[] = [];
    for (const [conv, st] of this.convs) {
      if (st.known && !st.left && st.next - 1 > st.acked) {
        out.push({ conv, seq: st.next - 1 });
        if (n > 0 && out.length >= n) break;
      }
    }
    return out;
  }

  acked(conv: string, seq: number): void {
    const st = this.convs.get(conv);
    if (st && seq > st.acked) st.acked = seq;
  }

  /**
   * cursors returns, per conversation the user is in, the last seq handed to
   * the application (or the starting cursor).
   */
  cursors(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [conv, st] of this.convs) {
      if (st.known && !st.left) out[conv] = st.next - 1;
    }
    return out;
  }
}

function newState(): ConvState {
  return { next: 1, seen: 0, acked: 0, known: false, left: false, leftAt: 0, buf: undefined };
}

/**
 * ownEntry is the log entry of a send, edit or delete of user (req, the
 * request's fields) that got ack, as the edge's push carries it; undefined
 * when the client cannot know it (see Delivery.onOwn).
 */
export function ownEntry(user: string, op: string, req: Record<string, unknown>, ack: { id: string; seq: number; ts: number; dup?: boolean }): Message | undefined {
  const atts = req.attachments as unknown[] | undefined;
  if (ack.dup || atts?.length || !user) return undefined;
  const type = op === "msg.edit" ? "edit" : op === "msg.delete" ? "delete" : ((req.type as string | undefined) || "text");
  const m: Message = { id: ack.id, conv: req.conv as string, seq: ack.seq, from: user, cmid: req.cmid as string, type, body: op === "msg.delete" ? "" : ((req.body as string | undefined) ?? ""), ts: ack.ts };
  if (req.ref) m.ref = req.ref as string;
  if (req.reply_to) m.reply_to = req.reply_to as string;
  if (req.thread) m.thread = req.thread as string;
  const ms = req.mentions as string[] | undefined;
  if (ms?.length) m.mentions = [...ms];
  return m;
}
