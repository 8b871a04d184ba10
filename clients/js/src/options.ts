import type { WebSocketConstructor } from "./conn.js";
import type { Storage } from "./storage.js";

/** Why the client asks for a token: a (re)connect, or the edge closed the connection with 4001. */
export type TokenReason = "connect" | "expired";

/** A log sink; the SDK logs connection events at info, oddities at warn. */
export type Logger = (level: "debug" | "info" | "warn", msg: string, fields?: Record<string, unknown>) => void;

/** Options of a Client. Only urls and one of token and getToken are required. */
export interface ClientOptions {
  /**
   * WebSocket endpoints of one or more edges ("wss://host/v1/ws"). The
   * client tries them in order; reconnects rotate through them.
   */
  urls: string | string[];
  /** The JWT, sent in the auth frame of every connect. Ignored when getToken is set. */
  token?: string;
  /**
   * Called for a token before every connect and reconnect: reason is
   * "expired" after the edge closed the connection with 4001 (the token
   * expired), so return a fresh one. If it throws, the client stops.
   * Without it a 4001 stops the client.
   */
  getToken?: (reason: TokenReason) => string | Promise<string>;
  /**
   * This installation's device id (1..64 of [A-Za-z0-9_-]): delivered
   * cursors (acks) are kept per user and device. Absent means the token's
   * device claim, else "default".
   */
  device?: string;
  /**
   * Per conversation, the last seq the application already has (as
   * cursors() returned it, persisted with the messages). Delivery resumes
   * after them. Absent means none; see fromStart.
   */
  cursors?: Record<string, number>;
  /**
   * Makes conversations that are not in cursors at the first sync start at
   * seq 0 (their whole history is delivered) instead of at their head (only
   * what arrives from then on; load older pages with history()). Set it when
   * cursors are the ones a previous run persisted. Default false.
   */
  fromStart?: boolean;
  /**
   * Makes conversations that are not in cursors at the first sync start
   * after this device's delivered cursor on the server (the sync reply's
   * acked: what its acks left there), where it has one: for an app that
   * lost its local cursors (a reinstall, cleared storage) and resumes
   * where the device left off. Others start as fromStart says. Needs a
   * server whose sync replies carry acked. Default false.
   */
  resumeFromAcked?: boolean;
  /** Messages per conversation one sync round fetches: 1..1000. Absent means 100. */
  syncLimit?: number;
  /**
   * Conversations per reply of the sync that starts every connection:
   * 1..500, the pass goes page by page (for users in many conversations:
   * each page costs the server the same whatever the user's list). Absent
   * or 0: every conversation in one reply.
   */
  syncPageSize?: number;
  /**
   * Interval in ms at which delivered cursors are reported to the edge (ack
   * frames, only for conversations whose cursor moved). Default 1000;
   * negative disables acks.
   */
  autoAckMs?: number;
  /** Reconnect and retry delays: exponential with full jitter from backoffMs up to maxBackoffMs. Default 100 and 5000. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Bound of the wait for one reply. Calls other than send give up after it
   * in total (waiting for a connection and retries included); send re-sends
   * after it and runs until the message is acked, refused or discarded. It
   * also bounds the wait for hello. Default 10000.
   */
  requestTimeoutMs?: number;
  /** Where the outbox lives. Default: a new MemoryStorage (the outbox lives as long as this client). */
  storage?: Storage;
  /**
   * The WebSocket constructor. Default globalThis.WebSocket (browsers, React
   * Native, Node 22+); on Node 20 pass the ws package's WebSocket.
   */
  WebSocket?: WebSocketConstructor;
  /** Receives log lines. Default: none. */
  logger?: Logger;
}

/** Options with their defaults filled in. */
export interface ResolvedOptions {
  urls: string[];
  token: string;
  getToken: ((reason: TokenReason) => string | Promise<string>) | undefined;
  device: string | undefined;
  cursors: Record<string, number>;
  fromStart: boolean;
  resumeFromAcked: boolean;
  syncLimit: number;
  syncPageSize: number;
  autoAckMs: number;
  backoffMs: number;
  maxBackoffMs: number;
  requestTimeoutMs: number;
  storage: Storage;
  WebSocket: WebSocketConstructor;
  logger: Logger;
}

const idRe = /^[A-Za-z0-9_-]{1,64}$/;

/** validID reports whether s is a valid user, conversation, device id or cmid. */
export function validID(s: unknown): s is string {
  return typeof s === "string" && idRe.test(s);
}

export function resolveOptions(o: ClientOptions, memory: () => Storage): ResolvedOptions {
  const urls = typeof o.urls === "string" ? [o.urls] : [...(o.urls ?? [])];
  if (urls.length === 0) throw new TypeError("natter: options.urls: at least one edge URL is required");
  if (!o.token && !o.getToken) throw new TypeError("natter: options.token or options.getToken is required");
  if (o.device !== undefined && !validID(o.device)) {
    throw new TypeError(`natter: options.device ${JSON.stringify(o.device)}: must be 1..64 characters of [A-Za-z0-9_-]`);
  }
  const syncLimit = o.syncLimit ?? 0;
  if (!Number.isInteger(syncLimit) || syncLimit < 0 || syncLimit > 1000) {
    throw new TypeError(`natter: options.syncLimit ${syncLimit}: must be 1..1000 (0 or absent: 100)`);
  }
  const syncPageSize = o.syncPageSize ?? 0;
  if (!Number.isInteger(syncPageSize) || syncPageSize < 0 || syncPageSize > 500) {
    throw new TypeError(`natter: options.syncPageSize ${syncPageSize}: must be 1..500 (0 or absent: no paging)`);
  }
  const cursors: Record<string, number> = {};
  for (const [conv, seq] of Object.entries(o.cursors ?? {})) {
    if (!validID(conv)) throw new TypeError(`natter: options.cursors: ${JSON.stringify(conv)} is not a conversation id`);
    if (!Number.isInteger(seq) || seq < 0) throw new TypeError(`natter: options.cursors[${conv}]: ${seq} is not a seq`);
    cursors[conv] = seq;
  }
  const WS = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WS) {
    throw new TypeError("natter: options.WebSocket: there is no global WebSocket (Node 20): pass one, e.g. the ws package's");
  }
  const backoffMs = o.backoffMs && o.backoffMs > 0 ? o.backoffMs : 100;
  return {
    urls,
    token: o.token ?? "",
    getToken: o.getToken,
    device: o.device,
    cursors,
    fromStart: o.fromStart ?? false,
    resumeFromAcked: o.resumeFromAcked ?? false,
    syncLimit,
    syncPageSize,
    autoAckMs: o.autoAckMs === undefined || o.autoAckMs === 0 ? 1000 : o.autoAckMs,
    backoffMs,
    maxBackoffMs: Math.max(backoffMs, o.maxBackoffMs && o.maxBackoffMs > 0 ? o.maxBackoffMs : 5000),
    requestTimeoutMs: o.requestTimeoutMs && o.requestTimeoutMs > 0 ? o.requestTimeoutMs : 10000,
    storage: o.storage ?? memory(),
    WebSocket: WS,
    logger: o.logger ?? (() => {}),
  };
}
