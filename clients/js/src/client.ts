import { Conn, Disconnected, Fatal, RequestTimeout, type Frame } from "./conn.js";
import { Delivery, ownEntry, type DeliveryStats } from "./delivery.js";
import { ClientErrorCodes, NatterError } from "./errors.js";
import { resolveOptions, validID, type ClientOptions, type ResolvedOptions } from "./options.js";
import {
  CloseCodes,
  ErrorCodes,
  Ops,
  type Ack,
  type Attachment,
  type Conversation,
  type ConversationsPage,
  type ConvSettings,
  type ConvSettingsUpdate,
  type GroupUpdate,
  type PageOptions,
  type ConvEvent,
  type HistoryOptions,
  type HistoryPage,
  type Message,
  type PresenceState,
  type PushProvider,
  type PushSubscriptionJSON,
  type ReadEvent,
  type ReactionEvent,
  type ReceiptsOptions,
  type ReceiptsPage,
  type SyncConv,
  type SyncResult,
  type SyncState,
  type SyncSummary,
  type TypingEvent,
  type TypingState,
  type UnknownFrame,
} from "./protocol.js";
import { MemoryStorage, type OutboxEntry } from "./storage.js";
import { backoff, jitter, newCmid, sleep, utf8Length } from "./util.js";

/** The client's connection state. */
export type ClientState = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

/** The value of the "state" event. */
export interface StateEvent {
  state: ClientState;
  /** The edge URL (connected, reconnecting). */
  url?: string;
  /** reconnecting: the close code of the connection that ended (0: the client gave up on it). */
  code?: number;
  reason?: string;
  /** reconnecting: the wait before the next attempt. */
  delayMs?: number;
  /** closed: why the client stopped on its own (absent after close()). */
  error?: NatterError;
}

/** The events of a Client and the value each listener gets. */
export interface ClientEvents {
  /** Every message of every conversation of the user, exactly once, in seq order per conversation. */
  message: Message;
  state: StateEvent;
  /** A message entered the outbox (send). */
  queued: OutboxEntry;
  /** An outbox message was acked: it is durable. */
  sent: { entry: OutboxEntry; ack: Ack };
  /** An outbox message was refused (not_member, too_big, ...): it left the outbox unsent. */
  failed: { entry: OutboxEntry; error: NatterError };
  /** A watched user's presence changed (and, after every reconnect, each watched user's state). */
  presence: PresenceState;
  typing: TypingEvent;
  /**
   * One of your conversations changed: your membership (added, removed:
   * the client starts or stops delivering it), its members or its name.
   */
  conv: ConvEvent;
  /** A read cursor moved: yours on another device (or this one), or another member's (receipts). */
  read: ReadEvent;
  /** A member of one of your conversations (you too) added or removed a reaction. */
  reaction: ReactionEvent;
  /**
   * After the sync that starts every connection: each conversation's head,
   * rev, read cursor, unread count and this device's acked cursor (unread
   * badges, and conversations whose rev moved while away).
   */
  sync: SyncSummary;
  /** A server frame this SDK version does not know (new push types may appear within v1). */
  push: UnknownFrame;
}

/** Counters, for tests and dashboards. */
export interface ClientStats extends DeliveryStats {
  connects: number;
  reconnects: number;
  syncs: number;
  acks: number;
  sendRetries: number;
}

/** Options of send. */
export interface SendOptions {
  /** Application-defined type (at most 32 bytes); absent means "text". */
  type?: string;
  /**
   * The client message id (1..64 of [A-Za-z0-9_-]), the idempotency key.
   * Absent: a random one. A send with a cmid of yours is never marked as a
   * first attempt: the edge always checks it against the stored messages.
   */
  cmid?: string;
  /** Files uploaded with upload() (at most 10, yours); with them body may be empty. */
  attachments?: { id: string; name?: string }[];
  /** The id of the message (of the same conversation) this one replies to. */
  replyTo?: string;
  /** The id of the root message of the thread this one is a reply in (see thread()). */
  thread?: string;
  /** User ids (members) to mention, or "@all" (group owners and admins): at most 50, none twice. */
  mentions?: string[];
}

type Listener<T> = (value: T) => void;

interface OutboxItem {
  entry: OutboxEntry;
  /** Only the very first frame of a cmid the client made is marked first. */
  fresh: boolean;
  discarded: boolean;
  promise: Promise<Ack>;
  /** Rejects promise at once (discard). */
  reject: (e: Error) => void;
}

const maxAcksPerTick = 32;

/**
 * Client is a connection to natter that survives disconnects: it
 * reconnects, re-sends and re-syncs by itself. Add listeners, then connect:
 *
 *   const c = new Client({ urls: "wss://chat.example.com/v1/ws", getToken });
 *   c.on("message", (m) => store(m));
 *   await c.connect();
 *   const ack = await c.send(conv, "hi");
 */
export class Client {
  private readonly o: ResolvedOptions;
  private readonly delivery: Delivery;
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener<any>>>();
  private conn: Conn | undefined;
  private waiters: { resolve: (c: Conn) => void; reject: (e: Error) => void }[] = [];
  private readonly watched = new Set<string>();
  private readonly outbox = new Map<string, OutboxItem>();
  private order = 0;
  private started = false;
  private stoppedFlag = false;
  private stopError: NatterError | undefined;
  private resolveStopped!: () => void;
  private readonly stoppedP: Promise<void>;
  private firstSync: Promise<void>;
  private resolveFirst!: () => void;
  private rejectFirst!: (e: Error) => void;
  private loop: Promise<void> | undefined;
  private woken = false;
  private wakeResolve: (() => void) | undefined;
  private authFails = 0;
  private acking = false;
  private stateNow: ClientState = "idle";
  private userID = "";
  private deviceID = "";
  private readonly counters = { connects: 0, reconnects: 0, syncs: 0, acks: 0, sendRetries: 0 };

  constructor(options: ClientOptions) {
    this.o = resolveOptions(options, () => new MemoryStorage());
    this.delivery = new Delivery(
      (m) => this.emit("message", m),
      () => this.wake(),
      this.o.cursors,
      this.o.fromStart,
      this.o.resumeFromAcked,
    );
    this.stoppedP = new Promise((r) => (this.resolveStopped = r));
    this.firstSync = new Promise((resolve, reject) => {
      this.resolveFirst = resolve;
      this.rejectFirst = reject;
    });
    this.firstSync.catch(() => {}); // connect() returns it; unhandled otherwise
  }

  /** on adds a listener and returns a function that removes it. */
  on<E extends keyof ClientEvents>(event: E, fn: Listener<ClientEvents[E]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  off<E extends keyof ClientEvents>(event: E, fn: Listener<ClientEvents[E]>): void {
    this.listeners.get(event)?.delete(fn);
  }

  private emit<E extends keyof ClientEvents>(event: E, value: ClientEvents[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of set) {
      try {
        fn(value);
      } catch (e) {
        this.o.logger("warn", "listener threw", { event, err: String(e) });
      }
    }
  }

  /**
   * connect starts the client: it connects to the first edge that accepts
   * the token, sends what the outbox holds, and resolves once the first sync
   * is applied. From then on the client keeps itself connected until close()
   * or a fatal error (the "state" event "closed" with error). It rejects
   * with a NatterError when the client stops first (a refused token, ...).
   * Calling it again returns the same promise.
   */
  connect(): Promise<void> {
    if (!this.started) {
      this.started = true;
      this.loop = this.run();
      void this.loadOutbox();
    }
    return this.firstSync;
  }

  /** The connection state. */
  get state(): ClientState {
    return this.stateNow;
  }

  /** The authenticated user, as the edge announced it ("" before the first hello). */
  get user(): string {
    return this.userID;
  }

  /** The device id in use, as the edge announced it. */
  get device(): string {
    return this.deviceID;
  }

  /** Why the client stopped on its own, or undefined. */
  get error(): NatterError | undefined {
    return this.stopError;
  }

  /**
   * cursors returns, per conversation the user is in, the last seq handed
   * to the "message" listeners (or the starting cursor). Persist them with
   * the messages and pass them as options.cursors (with fromStart) next time.
   */
  cursors(): Record<string, number> {
    return this.delivery.cursors();
  }

  /** pending lists the outbox: messages sent and not yet acked or refused, in the order they were sent. */
  pending(): OutboxEntry[] {
    return [...this.outbox.values()].map((i) => ({ ...i.entry })).sort((a, b) => a.order - b.order);
  }

  stats(): ClientStats {
    return { ...this.delivery.stats, ...this.counters };
  }

  /**
   * close disconnects (reporting the delivered cursors first), stops
   * retrying and rejects calls in flight with "closed". The outbox stays in
   * storage: a new client on the same storage sends it. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.stoppedFlag) {
      await this.loop;
      return;
    }
    const cn = this.conn;
    if (cn && !cn.dead && this.o.autoAckMs > 0) {
      await sleep(2000, this.sendAcks(cn, 0)); // at most 2 s; the timer is cleared when the acks are done
    }
    this.stop(undefined);
    await this.loop;
  }

  private stop(err: NatterError | undefined): void {
    if (this.stoppedFlag) return;
    this.stoppedFlag = true;
    this.stopError = err;
    if (err) this.o.logger("warn", "client stopped", { err: err.message });
    const closed = err ?? new NatterError("client", ClientErrorCodes.Closed, "the client was closed");
    for (const w of this.waiters) w.reject(closed);
    this.waiters = [];
    this.conn?.abort("client closed");
    this.resolveStopped();
    this.rejectFirst(closed);
    this.setState({ state: "closed", error: err });
  }

  private setState(ev: StateEvent): void {
    this.stateNow = ev.state;
    this.emit("state", ev);
  }

  private closedError(): NatterError {
    return this.stopError ?? new NatterError("client", ClientErrorCodes.Closed, "the client was closed");
  }

  // ---- connections ----

  /** run serves one connection after the other until the client stops. */
  private async run(): Promise<void> {
    let idx = 0;
    let delay = 0;
    let attempt = 0;
    this.setState({ state: "connecting", url: this.o.urls[0] });
    while (!this.stoppedFlag) {
      if (delay > 0 && !(await sleep(delay, this.stoppedP))) return;
      let cn: Conn;
      try {
        cn = await this.dial(idx);
      } catch (e) {
        if (this.stoppedFlag) return;
        if (e instanceof Fatal) {
          this.stop(e.err);
          return;
        }
        attempt++;
        this.o.logger("info", "connect failed", { url: this.o.urls[idx], attempt, err: String(e) });
        idx = (idx + 1) % this.o.urls.length;
        delay = backoff(attempt - 1, this.o.backoffMs, this.o.maxBackoffMs);
        this.setState({ state: "reconnecting", url: this.o.urls[idx], code: 0, reason: String((e as Error).message), delayMs: delay });
        continue;
      }
      if (this.stoppedFlag) {
        cn.abort("client closed");
        return;
      }
      attempt = 0;
      this.counters.connects++;
      if (this.counters.connects > 1) this.counters.reconnects++;
      await this.serve(cn);
      if (this.stoppedFlag) return;
      let step: number;
      try {
        [delay, step] = this.afterClose(cn);
      } catch (e) {
        this.stop(e as NatterError);
        return;
      }
      idx = (cn.idx + step) % this.o.urls.length;
      this.setState({ state: "reconnecting", url: this.o.urls[idx], code: cn.bye?.code ?? cn.closeCode, reason: cn.bye?.reason ?? cn.closeReason, delayMs: delay });
    }
  }

  private lastClose = 0;

  /** dial connects to urls[idx] with a token: from getToken, "expired" after a 4001. */
  private async dial(idx: number): Promise<Conn> {
    let token = this.o.token;
    if (this.o.getToken) {
      try {
        token = await this.o.getToken(this.lastClose === CloseCodes.Unauthorized ? "expired" : "connect");
      } catch (e) {
        throw new Fatal(new NatterError("connect", ErrorCodes.Unauthorized, `getToken: ${String(e)}`));
      }
    }
    return Conn.dial(this.o.WebSocket, this.o.urls[idx]!, idx, token, this.o.device, this.o.requestTimeoutMs);
  }

  /** serve runs one connection (its sync loop, its ack ticks) until it ends. */
  private async serve(cn: Conn): Promise<void> {
    const started = Date.now();
    this.conn = cn;
    this.userID = cn.hello.user;
    this.deviceID = cn.hello.device;
    cn.onFrame = (f) => this.onFrame(f);
    this.o.logger("info", "connected", { url: cn.url, user: cn.hello.user, session: cn.hello.session });
    this.setState({ state: "connected", url: cn.url });
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.resolve(cn);
    const tick = setInterval(() => this.onTick(cn), this.o.autoAckMs > 0 ? this.o.autoAckMs : 1000);
    void this.syncLoop(cn);
    void this.resubscribe(cn);
    await Promise.race([cn.closed, this.stoppedP]);
    clearInterval(tick);
    if (this.conn === cn) this.conn = undefined;
    if (cn.closeCode !== CloseCodes.Unauthorized || Date.now() - started > 60000) this.authFails = 0;
    this.lastClose = cn.bye?.code ?? cn.closeCode;
    this.o.logger("info", "disconnected", { url: cn.url, session: cn.hello.session, code: cn.closeCode, reason: cn.closeReason });
  }

  /**
   * afterClose decides from how cn ended when to reconnect and whether to
   * move on to the next URL ([delay, step]); it throws the error that stops
   * the client.
   */
  private afterClose(cn: Conn): [number, number] {
    const code = cn.bye?.code ?? cn.closeCode;
    const reason = cn.bye?.reason ?? cn.closeReason;
    const reconnect = cn.bye?.reconnect ?? true;
    switch (code) {
      case CloseCodes.Unauthorized:
        if (!this.o.getToken) {
          throw new NatterError("connect", ErrorCodes.Unauthorized, `the edge closed the connection (4001 ${reason}) and there is no getToken for a new token`);
        }
        // Back off when fresh tokens keep getting closed soon after the
        // connect, instead of spinning.
        this.authFails++;
        return [backoff(this.authFails - 1, this.o.backoffMs, this.o.maxBackoffMs), 0];
      case CloseCodes.Policy:
      case CloseCodes.TooBig:
      case CloseCodes.BadProtocol:
        throw new NatterError("connect", ErrorCodes.BadFrame, `the edge closed the connection with ${code} ${JSON.stringify(reason)}: a client bug, not retrying`);
      case CloseCodes.GoingAway:
        // Lame duck: the edge spreads its closes, so a small jitter is enough; try the next edge.
        return [jitter(this.o.backoffMs), 1];
    }
    if (!reconnect) {
      throw new NatterError("connect", ErrorCodes.Unavailable, `the edge closed the connection with ${code} ${JSON.stringify(reason)} and said not to reconnect`);
    }
    return [jitter(this.o.backoffMs), 0];
  }

  /** current returns the live connection, waiting for one while the client reconnects. */
  private current(): Promise<Conn> {
    if (this.stoppedFlag) return Promise.reject(this.closedError());
    const cn = this.conn;
    // A closing socket is not handed out: a request on it would fail at
    // once, and a caller that retries would spin without ever letting its
    // close event run.
    if (cn && cn.usable) return Promise.resolve(cn);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** onFrame takes every frame that is not a reply. */
  private onFrame(f: Frame): void {
    switch (f.t) {
      case "msg":
        this.delivery.onPush(f.msg);
        return;
      case "presence":
        this.emit("presence", presenceOf(f as unknown as PresenceState));
        return;
      case "typing": {
        const ev: TypingEvent = { conv: f.conv, user: f.user, state: f.state };
        if (f.expires_ms !== undefined) ev.expires_ms = f.expires_ms;
        this.emit("typing", ev);
        return;
      }
      case "conv": {
        if (f.event === "added") this.delivery.onAdded(f.conv);
        else if (f.event === "removed") this.delivery.onRemoved(f.conv);
        else if (f.event === "settings" && f.settings?.cleared) this.delivery.onCleared(f.conv, f.settings.cleared);
        const { t: _t, ...ev } = f;
        this.emit("conv", ev as ConvEvent);
        return;
      }
      case "read":
        this.emit("read", { conv: f.conv, user: f.user, seq: f.seq });
        return;
      case "reaction": {
        const { t: _t, ...ev } = f;
        this.emit("reaction", ev as ReactionEvent);
        return;
      }
      case "hello":
        return;
      case "err":
        this.o.logger("warn", "server error without request id", { code: f.code, msg: f.msg });
        return;
      default:
        this.emit("push", f as UnknownFrame);
    }
  }

  // ---- sync and acks ----

  private wake(): void {
    this.woken = true;
    const r = this.wakeResolve;
    this.wakeResolve = undefined;
    r?.();
  }

  private async waitWake(cn: Conn): Promise<void> {
    if (!this.woken) {
      await Promise.race([new Promise<void>((r) => (this.wakeResolve = r)), cn.closed, this.stoppedP]);
    }
    this.woken = false;
  }

  /**
   * syncLoop runs for the life of one connection: first a sync with every
   * cursor (the edge subscribed the user's deliveries before its hello, so
   * nothing pushed while the client was away is missed), then a sync
   * whenever a conversation has a gap, one request at a time.
   */
  private async syncLoop(cn: Conn): Promise<void> {
    let full = true;
    let stalls = 0;
    while (!cn.dead && !this.stoppedFlag) {
      if (full || this.delivery.needsSync()) {
        let progress = false;
        let failed = false;
        try {
          progress = await this.syncRound(cn, full);
        } catch (e) {
          if (cn.dead || this.stoppedFlag || e instanceof Disconnected) return;
          this.o.logger("warn", "sync failed", { err: String(e), session: cn.hello.session });
          failed = true;
        }
        if (failed) stalls++;
        else if (progress || !this.delivery.needsSync()) stalls = 0;
        else stalls++; // the reply did not move a conversation that still has a gap
        if (!failed) full = false;
        if (stalls > 0 && !(await sleep(backoff(stalls - 1, this.o.backoffMs, this.o.maxBackoffMs), cn.closed, this.stoppedP))) return;
        continue;
      }
      await this.waitWake(cn);
    }
  }

  /** syncRound sends one sync (in as many requests as the cursors need) and applies the replies. */
  private async syncRound(cn: Conn, full: boolean): Promise<boolean> {
    let progress = false;
    // A cursor takes at most 64 (id) + 24 bytes; keep the frame under max_body + 4 KiB.
    const per = Math.max(1, Math.floor(((cn.hello.max_body || 65536) + 4096 - 256) / 88));
    if (full && this.o.syncPageSize > 0) return this.syncPass(cn, per);
    let summary: SyncResult | undefined;
    for (const cursors of this.delivery.cursorChunks(full, per)) {
      const req: Record<string, unknown> = { op: Ops.Sync, cursors };
      if (this.o.syncLimit) req.limit = this.o.syncLimit;
      const mark = this.delivery.mark();
      const f = await cn.request(req, this.o.requestTimeoutMs);
      if (f.t === "err") throw new NatterError(Ops.Sync, f.code, f.msg);
      this.counters.syncs++;
      if (this.delivery.applySync(cursors, f.data as SyncResult, mark)) progress = true;
      summary = f.data as SyncResult;
      this.resolveFirst();
    }
    // Every reply lists every conversation: the last one is the newest state.
    if (full && summary) this.emitSync(summary.convs ?? [], summary.unread_total);
    return progress;
  }

  private emitSync(convs: SyncConv[], unreadTotal: number | undefined): void {
    const out: SyncSummary = { convs: convs.map(({ msgs: _m, more: _x, ...st }) => st as SyncState) };
    if (unreadTotal !== undefined) out.unread_total = unreadTotal;
    this.emit("sync", out);
  }

  /**
   * syncPass is a full sync page by page (options.syncPageSize): each page
   * names the cursors of the conversations after the previous page's last
   * one, and a named conversation the page covers but leaves out is one the
   * user left.
   */
  private async syncPass(cn: Conn, per: number): Promise<boolean> {
    let progress = false;
    let after = "";
    let page: string | undefined;
    const states: SyncConv[] = [];
    for (;;) {
      const cursors = this.delivery.cursorsAfter(after, per);
      const req: Record<string, unknown> = { op: Ops.Sync, cursors, page_size: this.o.syncPageSize };
      if (page !== undefined) req.page = page;
      if (this.o.syncLimit) req.limit = this.o.syncLimit;
      const mark = this.delivery.mark();
      const f = await cn.request(req, this.o.requestTimeoutMs);
      if (f.t === "err") throw new NatterError(Ops.Sync, f.code, f.msg);
      this.counters.syncs++;
      const res = f.data as SyncResult;
      const convs = res.convs ?? [];
      const last = !res.next;
      const coveredTo = last ? undefined : (convs[convs.length - 1]?.conv ?? after);
      if (this.delivery.applySync(cursors, res, mark, { coveredTo, last })) progress = true;
      states.push(...convs);
      if (last) {
        this.emitSync(states, res.unread_total);
        this.resolveFirst();
        return progress;
      }
      after = coveredTo!;
      page = res.next;
    }
  }

  private onTick(cn: Conn): void {
    this.delivery.checkLag();
    if (this.o.autoAckMs > 0 && !this.acking) {
      this.acking = true;
      void this.sendAcks(cn, maxAcksPerTick).finally(() => (this.acking = false));
    }
  }

  /** sendAcks reports up to n delivered cursors (all when n <= 0) that moved. */
  private async sendAcks(cn: Conn, n: number): Promise<void> {
    for (const a of this.delivery.ackable(n)) {
      let f: Frame;
      try {
        f = await cn.request({ op: Ops.Ack, conv: a.conv, seq: a.seq }, this.o.requestTimeoutMs);
      } catch {
        return; // tried again next tick (or on the next connection)
      }
      if (f.t === "err") {
        if (new NatterError(Ops.Ack, f.code, f.msg).retryable) return;
        this.o.logger("debug", "ack refused", { conv: a.conv, code: f.code, msg: f.msg });
      } else {
        this.counters.acks++;
      }
      this.delivery.acked(a.conv, a.seq);
    }
  }

  /** resubscribe watches the watched users again on a new connection (the edge forgets watches with it). */
  private async resubscribe(cn: Conn): Promise<void> {
    const users = [...this.watched].sort();
    for (let i = 0; i < users.length; i += 500) {
      const chunk = users.slice(i, i + 500);
      try {
        const f = await cn.request({ op: Ops.PresenceSub, users: chunk }, this.o.requestTimeoutMs);
        if (f.t === "err") {
          this.o.logger("warn", "presence resubscribe refused", { code: f.code, msg: f.msg });
          continue;
        }
        for (const s of (f.data as { users: PresenceState[] }).users ?? []) {
          if (this.watched.has(s.user)) this.emit("presence", presenceOf(s));
        }
      } catch {
        return;
      }
    }
  }

  // ---- requests ----

  /**
   * request runs any op and resolves with its reply's data: the escape
   * hatch for ops this SDK version does not wrap. It waits for a connection
   * and retries across disconnects (when idempotent) and after rate_limited
   * and unavailable, all within requestTimeoutMs. A request that is not
   * idempotent is not repeated once it may have reached the edge (except
   * after rate_limited, which guarantees nothing was done): then it rejects
   * with connection_lost.
   */
  async request<T = unknown>(op: string, fields: Record<string, unknown> = {}, opts: { idempotent?: boolean; retryRateLimited?: boolean } = {}): Promise<T> {
    const idempotent = opts.idempotent ?? true;
    const retryRL = opts.retryRateLimited ?? true;
    const deadline = Date.now() + this.o.requestTimeoutMs;
    const timeout = () => new NatterError(op, ClientErrorCodes.Timeout, `no reply within ${this.o.requestTimeoutMs} ms`);
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) throw timeout();
      const next = this.current();
      if (await sleep(left, next)) {
        next.catch(() => {});
        throw timeout();
      }
      const cn = await next;
      let f: Frame;
      try {
        f = await cn.request({ ...fields, op }, Math.max(1, deadline - Date.now()));
      } catch (e) {
        if (e instanceof Disconnected) {
          if (idempotent || !e.written) continue;
          throw new NatterError(op, ClientErrorCodes.ConnectionLost, "the connection failed with the request in flight: it may or may not have taken effect");
        }
        if (e instanceof RequestTimeout) throw timeout();
        throw e;
      }
      if (f.t === "err") {
        const e = new NatterError(op, f.code, f.msg);
        const rl = e.code === ErrorCodes.RateLimited;
        if ((rl && retryRL) || (!rl && idempotent && e.retryable)) {
          const d = backoff(attempt, this.o.backoffMs, this.o.maxBackoffMs);
          if (Date.now() + d < deadline && (await sleep(d, this.stoppedP))) continue;
        }
        throw e;
      }
      return f.data as T;
    }
  }

  /** history returns a page of conv, oldest first (the newest page without before/after). */
  async history(conv: string, opts: HistoryOptions = {}): Promise<HistoryPage> {
    const res = await this.request<HistoryPage>(Ops.History, { conv, ...opts });
    return { msgs: res.msgs ?? [], more: !!res.more };
  }

  /**
   * thread returns a page of the replies in the thread of the message root
   * of conv, oldest first (the newest without before/after; limit 1..100,
   * absent 50).
   */
  async thread(conv: string, root: string, opts: HistoryOptions = {}): Promise<HistoryPage> {
    const res = await this.request<HistoryPage>(Ops.Thread, { conv, root, ...opts });
    return { msgs: res.msgs ?? [], more: !!res.more };
  }

  /**
   * markRead records that the user has read conv up to seq (for all
   * devices; forward only). A read that moves the cursor comes back as a
   * "read" event to every device of the user, and to the other members in
   * direct conversations and groups of at most 100 members.
   */
  async markRead(conv: string, seq: number): Promise<void> {
    await this.request(Ops.Read, { conv, seq });
  }

  /** createDirect returns the direct conversation with user with, creating it if needed. */
  createDirect(withUser: string): Promise<Conversation> {
    return this.request<Conversation>(Ops.ConvCreate, { kind: "direct", with: withUser });
  }

  /**
   * createGroup creates a group named name with the caller and members. It
   * is not idempotent: if the connection fails with the request in flight
   * it rejects with connection_lost instead of trying again.
   */
  createGroup(name: string, members: string[] = []): Promise<Conversation> {
    const fields: Record<string, unknown> = { kind: "group", members };
    if (name) fields.name = name;
    return this.request<Conversation>(Ops.ConvCreate, fields, { idempotent: false });
  }

  /** conversation returns conv with its head and member_count (and members up to 100). */
  conversation(conv: string): Promise<Conversation> {
    return this.request<Conversation>(Ops.ConvGet, { conv });
  }

  /** conversations lists every conversation of the user with its head (and read, unread). */
  async conversations(): Promise<Conversation[]> {
    return (await this.request<{ convs: Conversation[] }>(Ops.ConvList)).convs ?? [];
  }

  /**
   * conversationsPage lists the user's conversations a page at a time, in
   * id order: pageSize 1..500, page the previous page's next (absent on the
   * last page). For users in many conversations.
   */
  async conversationsPage(opts: PageOptions): Promise<ConversationsPage> {
    const fields: Record<string, unknown> = { page_size: opts.pageSize };
    if (opts.page !== undefined) fields.page = opts.page;
    const res = await this.request<ConversationsPage>(Ops.ConvList, fields);
    const out: ConversationsPage = { convs: res.convs ?? [] };
    if (res.next) out.next = res.next;
    return out;
  }

  /**
   * renameConversation renames the group conv (its owner and admins; 1..128
   * characters). Renaming to the current name changes nothing. Every
   * member gets a "conv" event "renamed".
   */
  async renameConversation(conv: string, name: string): Promise<void> {
    await this.request(Ops.ConvRename, { conv, name });
  }

  /**
   * receipts returns a page of the members' read cursors of conv, sorted by
   * user id; pass the page's next as afterUser for the following one.
   */
  async receipts(conv: string, opts: ReceiptsOptions = {}): Promise<ReceiptsPage> {
    const fields: Record<string, unknown> = { conv };
    if (opts.afterUser !== undefined) fields.after_user = opts.afterUser;
    if (opts.limit !== undefined) fields.limit = opts.limit;
    const res = await this.request<ReceiptsPage>(Ops.Receipts, fields);
    const page: ReceiptsPage = { reads: res.reads ?? [] };
    if (res.next) page.next = res.next;
    return page;
  }

  /**
   * edit replaces the text of message ref of conv (your own, within the
   * edit window) with body. The edit is a log entry with a cmid of its own
   * (random, or opts.cmid), so retries are stored once. Resolves to the
   * entry's ack; forbidden, not_found, conflict (deleted) are NatterErrors.
   */
  edit(conv: string, ref: string, body: string, opts: { cmid?: string } = {}): Promise<Ack> {
    return this.appendAction(Ops.MsgEdit, { conv, ref, body, cmid: opts.cmid ?? newCmid() });
  }

  /**
   * deleteMessage deletes (recalls) message ref of conv: your own within
   * the delete window, or any message of a group you administer. Pages
   * then return it with deleted: true and an empty body.
   */
  deleteMessage(conv: string, ref: string, opts: { cmid?: string } = {}): Promise<Ack> {
    return this.appendAction(Ops.MsgDelete, { conv, ref, cmid: opts.cmid ?? newCmid() });
  }

  /** appendAction runs msg.edit or msg.delete and delivers its entry from the ack (the edge pushes it to the other connections only). */
  private async appendAction(op: string, fields: Record<string, unknown>): Promise<Ack> {
    const ack = await this.request<Ack>(op, fields);
    this.delivery.onOwn(fields.conv as string, ack.seq, ownEntry(this.userID, op, fields, ack));
    return ack;
  }

  /**
   * react adds your reaction emoji (1..32 bytes) to message ref of conv, or
   * with opts.remove takes it back; idempotent per user, message and
   * emoji. Resolves to the emoji's count after it and whether yours is on it.
   */
  react(conv: string, ref: string, emoji: string, opts: { remove?: boolean } = {}): Promise<{ count: number; mine: boolean }> {
    const fields: Record<string, unknown> = { conv, ref, emoji };
    if (opts.remove) fields.remove = true;
    return this.request<{ count: number; mine: boolean }>(Ops.React, fields);
  }

  /** addMembers adds users to the group conv (adding a member is a no-op). */
  async addMembers(conv: string, users: string[]): Promise<void> {
    await this.request(Ops.MembersAdd, { conv, users });
  }

  /** removeMembers removes users from the group conv; removing yourself leaves it. */
  async removeMembers(conv: string, users: string[]): Promise<void> {
    await this.request(Ops.MembersRemove, { conv, users });
  }

  /**
   * updateGroup sets the group's description, avatar URL (http or https)
   * or announcement mode (only the owner and admins send): the fields
   * given. The owner and admins only (else "forbidden"); every member gets
   * a "conv" event "updated".
   */
  async updateGroup(conv: string, u: GroupUpdate): Promise<void> {
    const fields: Record<string, unknown> = { conv };
    if (u.description !== undefined) fields.description = u.description;
    if (u.avatarURL !== undefined) fields.avatar_url = u.avatarURL;
    if (u.announce !== undefined) fields.announce = u.announce;
    await this.request(Ops.ConvUpdate, fields);
  }

  /** addAdmins makes members of conv admins (the owner only; "conv" event "roles"). */
  async addAdmins(conv: string, users: string[]): Promise<void> {
    await this.request(Ops.AdminsAdd, { conv, users });
  }

  /** removeAdmins makes admins of conv plain members (the owner only). */
  async removeAdmins(conv: string, users: string[]): Promise<void> {
    await this.request(Ops.AdminsRemove, { conv, users });
  }

  /** transferOwner makes the member to the owner of conv; you, the owner, become an admin. */
  async transferOwner(conv: string, to: string): Promise<void> {
    await this.request(Ops.OwnerTransfer, { conv, to });
  }

  /**
   * mute stops members of conv from sending for durationMs (1 ms .. 366
   * days): their sends get "forbidden". The owner and admins, on plain
   * members; every member gets a "conv" event "muted".
   */
  async mute(conv: string, users: string[], durationMs: number): Promise<void> {
    await this.request(Ops.MembersMute, { conv, users, duration_ms: durationMs });
  }

  /** unmute ends the mutes of members of conv (the owner and admins). */
  async unmute(conv: string, users: string[]): Promise<void> {
    await this.request(Ops.MembersUnmute, { conv, users });
  }

  /**
   * block blocks users: they cannot start or send in a direct conversation
   * with you ("forbidden", nothing stored) and see you offline; group
   * messages are not filtered. Returns the users you block after it.
   */
  async block(users: string[]): Promise<string[]> {
    return (await this.request<{ users: string[] }>(Ops.Block, { users })).users ?? [];
  }

  /** unblock ends your blocks of users and returns the users you block after it. */
  async unblock(users: string[]): Promise<string[]> {
    return (await this.request<{ users: string[] }>(Ops.Unblock, { users })).users ?? [];
  }

  /** blocks returns the users you block, sorted. */
  async blocks(): Promise<string[]> {
    return (await this.request<{ users: string[] }>(Ops.BlocksList)).users ?? [];
  }

  /**
   * setConversationSettings sets your own settings of conv (the fields
   * given) and returns them after the change: mutedUntil (Unix ms, 0
   * unmutes), pinned, archived, and cleared ("clear history for me": the
   * messages up to that seq are hidden from you on every device; never
   * lowered). Your other devices get a "conv" event "settings".
   */
  async setConversationSettings(conv: string, u: ConvSettingsUpdate): Promise<ConvSettings> {
    const fields: Record<string, unknown> = { conv };
    if (u.mutedUntil !== undefined) fields.muted_until = u.mutedUntil;
    if (u.pinned !== undefined) fields.pinned = u.pinned;
    if (u.archived !== undefined) fields.archived = u.archived;
    if (u.cleared !== undefined) fields.cleared = u.cleared;
    return await this.request<ConvSettings>(Ops.ConvSettings, fields);
  }

  /** members lists the members of conv. */
  async members(conv: string): Promise<string[]> {
    return (await this.request<{ members: string[] }>(Ops.MembersList, { conv })).members ?? [];
  }

  /** ping measures the round trip to the edge and returns it (ms) with the edge's clock (Unix ms). */
  async ping(): Promise<{ rttMs: number; serverTs: number }> {
    const start = Date.now();
    const res = await this.request<{ ts: number }>(Ops.Ping);
    return { rttMs: Date.now() - start, serverTs: res.ts };
  }

  /**
   * subscribePresence watches users (each must share a conversation with
   * you; at most 500 in all) and returns their state in the order given.
   * Changes come as "presence" events, across reconnects: on every new
   * connection the client subscribes the watched users again and emits
   * their current state.
   */
  async subscribePresence(users: string[]): Promise<PresenceState[]> {
    const res = await this.request<{ users: PresenceState[] }>(Ops.PresenceSub, { users });
    for (const u of users) this.watched.add(u);
    return (res.users ?? []).map(presenceOf);
  }

  /** unsubscribePresence stops watching users. */
  async unsubscribePresence(users: string[]): Promise<void> {
    for (const u of users) this.watched.delete(u);
    await this.request(Ops.PresenceUnsub, { users });
  }

  /**
   * registerPush registers this device for push notifications, replacing
   * what it had registered: an APNs or FCM token, or a browser's Web Push
   * subscription (its toJSON()). While connected, the device gets messages
   * over the socket and no push. A malformed token is bad_frame.
   */
  async registerPush(provider: "apns" | "fcm", token: string): Promise<void>;
  async registerPush(provider: "webpush", subscription: PushSubscriptionJSON): Promise<void>;
  async registerPush(provider: PushProvider, target: string | PushSubscriptionJSON): Promise<void> {
    const fields: Record<string, unknown> = { provider };
    if (typeof target === "string") fields.token = target;
    else fields.subscription = { endpoint: target.endpoint, keys: { p256dh: target.keys.p256dh, auth: target.keys.auth } };
    await this.request(Ops.PushRegister, fields);
  }

  /** unregisterPush removes this device's push registration (call it at logout). */
  async unregisterPush(): Promise<void> {
    await this.request(Ops.PushUnregister, {});
  }

  /** setPresenceHidden hides (or shows again) your presence: watchers see you offline. */
  async setPresenceHidden(hidden: boolean): Promise<void> {
    await this.request(Ops.PresenceSet, { hidden });
  }

  /**
   * setTyping tells the other members of conv that you started or stopped
   * typing. Renew "started" every few seconds while typing. A rate_limited
   * answer (more than 1 per second per conversation, burst 3) is returned
   * at once, not retried.
   */
  async setTyping(conv: string, state: TypingState): Promise<void> {
    await this.request(Ops.Typing, { conv, state }, { retryRateLimited: false });
  }

  // ---- attachments (HTTP on the first edge's origin) ----

  /**
   * upload sends a file (POST /v1/attachments) and resolves with the
   * attachment to pass in send's attachments. body is streamed by fetch
   * (a Blob, an ArrayBuffer, a Uint8Array or a ReadableStream); type must
   * be on the edge's allow-list. Refusals reject with a NatterError: too_big,
   * quota_exceeded, unsupported_type, bad_frame.
   */
  async upload(body: BodyInit, type: string, name = ""): Promise<Attachment> {
    const init: RequestInit & { duplex?: string } = { method: "POST", body, headers: { authorization: "Bearer " + (await this.httpToken()), "content-type": type } };
    if (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) init.duplex = "half";
    const r = await fetch(this.httpBase() + "/v1/attachments?name=" + encodeURIComponent(name), init);
    if (r.status !== 201) throw await httpError("upload", r);
    return (await r.json()) as Attachment;
  }

  /**
   * download reads an attachment (GET /v1/attachments/{id}, or its
   * thumbnail) and resolves with the fetch Response (200, or 206 for a
   * range: body, headers, etag). Rejects with a NatterError (forbidden,
   * not_found, ...).
   */
  async download(id: string, opts: { thumb?: boolean; range?: [number, number?] } = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: "Bearer " + (await this.httpToken()) };
    if (opts.range) headers.range = `bytes=${opts.range[0]}-${opts.range[1] ?? ""}`;
    const r = await fetch(this.httpBase() + "/v1/attachments/" + encodeURIComponent(id) + (opts.thumb ? "/thumb" : ""), { headers });
    if (r.status !== 200 && r.status !== 206) throw await httpError("download", r);
    return r;
  }

  /**
   * attachmentURL resolves with a signed URL of an attachment (or its
   * thumbnail) that works without a token until it expires (ttlSec, by
   * default the edge's): for <img src> and links.
   */
  async attachmentURL(id: string, opts: { thumb?: boolean; ttlSec?: number } = {}): Promise<string> {
    let q = opts.thumb ? "?thumb=1" : "";
    if (opts.ttlSec) q += (q ? "&" : "?") + "ttl=" + opts.ttlSec;
    const r = await fetch(this.httpBase() + "/v1/attachments/" + encodeURIComponent(id) + "/url" + q, {
      method: "POST",
      headers: { authorization: "Bearer " + (await this.httpToken()) },
    });
    if (r.status !== 200) throw await httpError("url", r);
    return this.httpBase() + ((await r.json()) as { url: string }).url;
  }

  private httpBase(): string {
    const u = new URL(this.o.urls[0]!);
    return (u.protocol === "wss:" ? "https:" : u.protocol === "ws:" ? "http:" : u.protocol) + "//" + u.host;
  }

  private async httpToken(): Promise<string> {
    return this.o.getToken ? await this.o.getToken("connect") : this.o.token;
  }

  // ---- sending and the outbox ----

  /**
   * send puts a message in the outbox and resolves with its ack once it is
   * durable. It keeps re-sending with the same cmid across disconnects,
   * reconnects, edges, timeouts and retryable errors (unavailable,
   * rate_limited), so the message is stored exactly once, and rejects only
   * when the edge refuses it (not_member, too_big, ...: it then leaves the
   * outbox), when it is discarded, or when the client closes ("closed": it
   * stays in the outbox, and a client on the same storage sends it).
   */
  async send(conv: string, body: string, opts: SendOptions = {}): Promise<Ack> {
    if (this.stoppedFlag) throw this.closedError();
    if (!validID(conv)) throw new NatterError(Ops.Send, ErrorCodes.BadFrame, "conv: must be 1..64 characters of [A-Za-z0-9_-]");
    const atts = opts.attachments?.map((a) => (a.name ? { id: a.id, name: a.name } : { id: a.id }));
    if (typeof body !== "string" || (body === "" && !atts?.length)) throw new NatterError(Ops.Send, ErrorCodes.BadFrame, "body: required (or attachments)");
    if (opts.cmid !== undefined && !validID(opts.cmid)) throw new NatterError(Ops.Send, ErrorCodes.BadFrame, "cmid: must be 1..64 characters of [A-Za-z0-9_-]");
    if (opts.type !== undefined && utf8Length(opts.type) > 32) throw new NatterError(Ops.Send, ErrorCodes.BadFrame, "type: at most 32 bytes");
    const cmid = opts.cmid ?? newCmid();
    const existing = this.outbox.get(outboxKey(conv, cmid));
    if (existing) return existing.promise;
    const entry: OutboxEntry = { cmid, conv, body, created: Date.now(), order: this.nextOrder() };
    if (opts.type) entry.type = opts.type;
    if (atts?.length) entry.attachments = atts;
    if (opts.replyTo) entry.reply_to = opts.replyTo;
    if (opts.thread) entry.thread = opts.thread;
    if (opts.mentions?.length) entry.mentions = [...opts.mentions];
    await this.o.storage.putOutbox(entry);
    const item = this.track(entry, opts.cmid === undefined);
    this.emit("queued", { ...entry });
    return item.promise;
  }

  /**
   * discard drops a message from the outbox: the client stops sending it and
   * its send rejects with "aborted". A frame may already have reached the
   * edge, so it may still be stored (and delivered).
   */
  async discard(conv: string, cmid: string): Promise<void> {
    const item = this.outbox.get(outboxKey(conv, cmid));
    if (item) {
      item.discarded = true;
      this.outbox.delete(outboxKey(conv, cmid));
      item.reject(new NatterError(Ops.Send, ClientErrorCodes.Aborted, `cmid ${cmid} was discarded`));
    }
    await this.o.storage.deleteOutbox(conv, cmid);
  }

  private nextOrder(): number {
    this.order = Math.max(this.order + 1, Date.now() * 1000);
    return this.order;
  }

  /** loadOutbox sends what an earlier client on the same storage left. */
  private async loadOutbox(): Promise<void> {
    let entries: OutboxEntry[];
    try {
      entries = await this.o.storage.loadOutbox();
    } catch (e) {
      this.o.logger("warn", "loading the outbox failed", { err: String(e) });
      return;
    }
    entries.sort((a, b) => a.order - b.order);
    for (const e of entries) {
      if (this.outbox.has(outboxKey(e.conv, e.cmid))) continue;
      this.order = Math.max(this.order, e.order);
      // From storage: the frame may have left before, so it is no first attempt.
      this.track(e, false).promise.catch(() => {});
    }
  }

  private track(entry: OutboxEntry, fresh: boolean): OutboxItem {
    const item = { entry, fresh, discarded: false } as OutboxItem;
    this.outbox.set(outboxKey(entry.conv, entry.cmid), item);
    item.promise = new Promise<Ack>((resolve, reject) => {
      item.reject = reject;
      this.deliver(item).then(resolve, reject);
    });
    return item;
  }

  /** deliver sends one outbox entry until it is acked, refused, discarded or the client stops. */
  private async deliver(item: OutboxItem): Promise<Ack> {
    const e = item.entry;
    const key = outboxKey(e.conv, e.cmid);
    const aborted = () => new NatterError(Ops.Send, ClientErrorCodes.Aborted, `cmid ${e.cmid} was discarded`);
    const done = async (ok: boolean) => {
      if (this.outbox.get(key) === item) this.outbox.delete(key);
      try {
        await this.o.storage.deleteOutbox(e.conv, e.cmid);
      } catch (err) {
        this.o.logger("warn", "outbox delete failed", { cmid: e.cmid, err: String(err) });
      }
      return ok;
    };
    let backoffs = 0;
    for (let attempt = 0; ; attempt++) {
      const cn = await this.current();
      if (item.discarded) throw aborted();
      if (cn.hello.max_body > 0 && utf8Length(e.body) > cn.hello.max_body) {
        const err = new NatterError(Ops.Send, ErrorCodes.TooBig, `body: ${utf8Length(e.body)} bytes, more than max_body ${cn.hello.max_body}`);
        await done(false);
        this.emit("failed", { entry: { ...e }, error: err });
        throw err;
      }
      if (attempt > 0) this.counters.sendRetries++;
      const req: Record<string, unknown> = { op: Ops.Send, conv: e.conv, cmid: e.cmid, body: e.body };
      if (e.type) req.type = e.type;
      if (e.attachments?.length) req.attachments = e.attachments;
      if (e.reply_to) req.reply_to = e.reply_to;
      if (e.thread) req.thread = e.thread;
      if (e.mentions?.length) req.mentions = e.mentions;
      // Only the very first frame of a cmid of our own is a first attempt:
      // once a frame may have left, every later one is a resend.
      if (item.fresh && attempt === 0) req.first = true;
      let f: Frame;
      try {
        f = await cn.request(req, this.o.requestTimeoutMs);
      } catch (err) {
        if (err instanceof Disconnected || err instanceof RequestTimeout) continue; // same cmid on the next (or same) connection
        throw err;
      }
      if (item.discarded) throw aborted();
      if (f.t === "err") {
        const err = new NatterError(Ops.Send, f.code, f.msg);
        if (!err.retryable) {
          await done(false);
          this.emit("failed", { entry: { ...e }, error: err });
          throw err;
        }
        if (!(await sleep(backoff(backoffs++, this.o.backoffMs, this.o.maxBackoffMs), this.stoppedP))) throw this.closedError();
        continue;
      }
      const ack = f.data as Ack;
      // The edge pushes the message to the user's other connections only.
      this.delivery.onOwn(e.conv, ack.seq, ownEntry(cn.hello.user, Ops.Send, req, ack));
      await done(true);
      this.emit("sent", { entry: { ...e }, ack });
      return ack;
    }
  }
}

function outboxKey(conv: string, cmid: string): string {
  return conv + "\u0000" + cmid;
}

function presenceOf(f: { user: string; online: boolean; last_seen?: number }): PresenceState {
  const s: PresenceState = { user: f.user, online: f.online };
  if (f.last_seen !== undefined) s.last_seen = f.last_seen;
  return s;
}

async function httpError(op: string, r: Response): Promise<NatterError> {
  let e: { code?: string; msg?: string } = {};
  try {
    e = (await r.json()) as typeof e;
  } catch {
    // not JSON: the status says it
  }
  return new NatterError(op, e.code ?? ErrorCodes.Internal, e.msg ?? `HTTP ${r.status}`);
}
