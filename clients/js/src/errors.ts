import { ErrorCodes, type ServerErrorCode } from "./protocol.js";

/**
 * Codes of errors the client makes itself, besides the server's:
 * - closed: the client was closed (or stopped) before the call finished;
 * - timeout: no reply within requestTimeoutMs;
 * - connection_lost: the connection failed with a request that is not safe
 *   to repeat in flight (a group conv.create): it may or may not have taken
 *   effect, check conversations() first;
 * - aborted: the caller's AbortSignal fired.
 */
export const ClientErrorCodes = {
  Closed: "closed",
  Timeout: "timeout",
  ConnectionLost: "connection_lost",
  Aborted: "aborted",
} as const;

export type ClientErrorCode = (typeof ClientErrorCodes)[keyof typeof ClientErrorCodes];

/** Every code a NatterError may carry. */
export type ErrorCode = ServerErrorCode | ClientErrorCode;

const retryable: ReadonlySet<string> = new Set<string>([
  ErrorCodes.RateLimited,
  ErrorCodes.Unavailable,
  ClientErrorCodes.Timeout,
  ClientErrorCodes.ConnectionLost,
]);

const known: ReadonlySet<string> = new Set<string>([
  ...Object.values(ErrorCodes),
  ...Object.values(ClientErrorCodes),
]);

/**
 * An error the server answered (an err frame, or a refused connection), or
 * one the client made (ClientErrorCodes). Switch on code:
 *
 *   if (e instanceof NatterError && e.code === ErrorCodes.NotMember) ...
 *
 * An unknown server code (added within v1) is reported as "internal", with
 * the code as the server sent it in rawCode.
 */
export class NatterError extends Error {
  override readonly name = "NatterError";
  /** The stable error code. */
  readonly code: ErrorCode;
  /** The code as the server sent it (differs from code only for codes this SDK does not know). */
  readonly rawCode: string;
  /** The request's op ("send", "history", ...), or "connect". */
  readonly op: string;
  /** The server's text; for bad_frame it starts with the field name. */
  readonly detail: string;

  constructor(op: string, code: string, detail: string) {
    const c = (known.has(code) ? code : ErrorCodes.Internal) as ErrorCode;
    super(`natter: ${op}: ${code}${detail ? ": " + detail : ""}`);
    this.code = c;
    this.rawCode = code;
    this.op = op;
    this.detail = detail;
  }

  /** Whether the same request may succeed after a back-off. */
  get retryable(): boolean {
    return retryable.has(this.code);
  }
}

/** isCode reports whether err is a NatterError with the given code. */
export function isCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof NatterError && err.code === code;
}
