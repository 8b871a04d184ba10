import { NatterError } from "./errors.js";
import { CloseCodes, ErrorCodes, SUBPROTOCOL, type Bye, type Hello } from "./protocol.js";

/**
 * The part of the standard WebSocket the SDK uses: what browsers, React
 * Native, Node 22+ (globalThis.WebSocket) and the ws package all provide.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}

/** A WebSocket constructor: globalThis.WebSocket, or the ws package's on Node 20. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

const OPEN = 1;

/** A frame as decoded: the client switches on t. */
export type Frame = { t: string; id?: string; [field: string]: any };

/** Disconnected is thrown by request when the connection ends before the reply. */
export class Disconnected extends Error {
  constructor(readonly written: boolean) {
    super("natter: disconnected");
  }
}

/** RequestTimeout is thrown by request when no reply came in time. */
export class RequestTimeout extends Error {
  constructor() {
    super("natter: request timed out");
  }
}

/** Fatal marks a dial error after which the client must not reconnect. */
export class Fatal extends Error {
  constructor(readonly err: NatterError) {
    super(err.message);
  }
}

/**
 * Conn is one authenticated WebSocket: it matches replies to requests by
 * id, hands every other frame to onFrame, and watches liveness: a
 * connection silent for ping_ms gets a ping request, one silent for 2.5 x
 * ping_ms is declared dead and closed (browsers do not show WebSocket pings
 * to scripts, so the SDK uses the protocol's ping op instead).
 */
export class Conn {
  hello!: Hello;
  /** The bye frame, when the edge said goodbye. */
  bye: Bye | undefined;
  /** How the connection ended: the close code (0 when the client gave up on it), and why. */
  closeCode = 0;
  closeReason = "";
  dead = false;
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private readonly pending = new Map<string, (f: Frame | undefined) => void>();
  private ids = 0;
  private lastHeard = Date.now();
  private pinging = false;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  onFrame: (f: Frame) => void = () => {};

  constructor(
    private readonly ws: WebSocketLike,
    readonly url: string,
    readonly idx: number,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }

  /**
   * dial opens a WebSocket to url, authenticates with an auth frame (the
   * one way that works in browsers) and waits for the hello.
   */
  static dial(
    WS: WebSocketConstructor,
    url: string,
    idx: number,
    token: string,
    device: string | undefined,
    timeoutMs: number,
  ): Promise<Conn> {
    return new Promise<Conn>((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new WS(url, SUBPROTOCOL);
      } catch (e) {
        reject(new Fatal(new NatterError("connect", ErrorCodes.BadFrame, `url ${url}: ${String(e)}`)));
        return;
      }
      const cn = new Conn(ws, url, idx);
      let refused: NatterError | undefined;
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        cn.finish(0, err.message);
        reject(err);
      };
      const timer = setTimeout(() => fail(new NatterError("connect", ErrorCodes.Unavailable, `no hello from ${url} within ${timeoutMs} ms`)), timeoutMs);
      ws.onopen = () => {
        const auth: Record<string, string> = { op: "auth", id: "auth", token };
        if (device) auth.device = device;
        try {
          ws.send(JSON.stringify(auth));
        } catch {
          // The close event follows.
        }
      };
      ws.onerror = () => {};
      ws.onclose = (ev) => {
        const code = ev?.code ?? 0;
        if (refused || code === CloseCodes.Unauthorized) {
          fail(new Fatal(refused ?? new NatterError("connect", ErrorCodes.Unauthorized, `${url} closed the connection with 4001 ${ev?.reason ?? ""}`)));
          return;
        }
        const err = new NatterError("connect", ErrorCodes.Unavailable, `${url} closed the connection before hello (${code} ${ev?.reason ?? ""})`);
        if (code === CloseCodes.Policy || code === CloseCodes.BadProtocol) {
          fail(new Fatal(err));
          return;
        }
        fail(err);
      };
      ws.onmessage = (ev) => {
        let f: Frame;
        try {
          f = JSON.parse(String(ev.data));
        } catch {
          return;
        }
        if (f.t === "hello") {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          cn.hello = f as unknown as Hello;
          cn.start();
          resolve(cn);
        } else if (f.t === "err" && f.code === ErrorCodes.Unauthorized) {
          refused = new NatterError("connect", f.code, `${f.msg} (${url})`);
        } else if (f.t === "err") {
          refused = new NatterError("connect", f.code, `${f.msg} (${url})`);
        }
      };
    });
  }

  /**
   * Whether requests can go out: not ended, and the socket open (a socket
   * that is closing is not, though its close event has not come yet).
   */
  get usable(): boolean {
    return !this.dead && this.ws.readyState === OPEN;
  }

  /** start takes over the socket's events once the hello is in. */
  private start(): void {
    const ws = this.ws;
    ws.onmessage = (ev) => this.onMessage(String(ev.data));
    ws.onclose = (ev) => this.finish(ev?.code ?? 0, ev?.reason ?? "");
    ws.onerror = () => {};
    const ping = this.hello.ping_ms > 0 ? this.hello.ping_ms : 25000;
    this.lastHeard = Date.now();
    this.watchdog = setInterval(() => this.watch(ping), Math.max(50, ping / 4));
  }

  /** watch pings a silent connection and gives up on a dead one. */
  private watch(ping: number): void {
    const silent = Date.now() - this.lastHeard;
    if (silent >= 2.5 * ping) {
      this.abort(`nothing heard for ${silent} ms`);
      return;
    }
    if (silent >= ping && !this.pinging) {
      this.pinging = true;
      this.request({ op: "ping" }, 2 * ping).then(
        () => (this.pinging = false),
        () => (this.pinging = false),
      );
    }
  }

  /** onMessage takes one frame after the hello. Exposed for the receive-path benchmark. */
  onMessage(data: string): void {
    this.lastHeard = Date.now();
    let f: Frame;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if ((f.t === "res" || f.t === "err") && f.id !== undefined) {
      const done = this.pending.get(f.id);
      if (done) {
        this.pending.delete(f.id);
        done(f);
        return;
      }
    }
    if (f.t === "bye") {
      this.bye = { code: f.code, reason: f.reason, reconnect: f.reconnect };
      return;
    }
    this.onFrame(f);
  }

  /**
   * request sends req with a fresh id and resolves with its res or err frame.
   * It rejects with Disconnected or RequestTimeout.
   */
  request(req: Record<string, unknown>, timeoutMs: number): Promise<Frame> {
    if (this.dead || this.ws.readyState !== OPEN) return Promise.reject(new Disconnected(false));
    const id = (++this.ids).toString(36);
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestTimeout());
      }, timeoutMs);
      this.pending.set(id, (f) => {
        clearTimeout(timer);
        if (f) resolve(f);
        else reject(new Disconnected(true));
      });
      try {
        this.ws.send(JSON.stringify({ ...req, id }));
      } catch {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(new Disconnected(false));
        this.abort("write failed");
      }
    });
  }

  /** abort gives up on the connection at once (without waiting for a closing handshake). */
  abort(reason: string, code: number = CloseCodes.Normal): void {
    try {
      this.ws.close(code, reason);
    } catch {
      // already closed
    }
    this.finish(0, reason);
  }

  /** finish fails every pending request and marks the connection ended. Idempotent. */
  finish(code: number, reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.closeCode = code;
    this.closeReason = reason;
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    for (const done of this.pending.values()) done(undefined);
    this.pending.clear();
    const ws = this.ws;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onopen = null;
    if (ws.readyState === OPEN) {
      try {
        ws.close(CloseCodes.Normal, reason.slice(0, 120));
      } catch {
        // ignore
      }
    }
    this.resolveClosed();
  }
}
