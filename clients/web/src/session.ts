// The signed-in user: who, with which token, on which device. Kept in
// localStorage so that a reload stays signed in (and its outbox, in
// IndexedDB per user, is sent by the next page).

export interface Session {
  user: string;
  token: string;
  /** true: the token came from natter dev's POST /dev/token, which gives a fresh one on expiry. */
  dev: boolean;
}

const sessionKey = "natter.session";
const deviceKey = "natter.device";

export const idRe = /^[A-Za-z0-9_-]{1,64}$/;

export function loadSession(): Session | undefined {
  try {
    const s = JSON.parse(localStorage.getItem(sessionKey) ?? "null") as Session | null;
    if (s && idRe.test(s.user) && typeof s.token === "string" && s.token) return s;
  } catch {
    // a broken entry is no session
  }
  return undefined;
}

export function saveSession(s: Session | undefined): void {
  if (s) localStorage.setItem(sessionKey, JSON.stringify(s));
  else localStorage.removeItem(sessionKey);
}

/** This browser's device id: delivered cursors are kept per user and device. */
export function deviceID(): string {
  let d = localStorage.getItem(deviceKey);
  if (!d || !idRe.test(d)) {
    const b = new Uint8Array(8);
    crypto.getRandomValues(b);
    d = "web-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    localStorage.setItem(deviceKey, d);
  }
  return d;
}

/** DevTokenUnavailable: the edge has no /dev/token (it is not natter dev). */
export class DevTokenUnavailable extends Error {}

/** devToken asks natter dev for a token of user. */
export async function devToken(user: string, device: string): Promise<string> {
  const res = await fetch("/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user, device }),
  });
  if (res.status === 404) throw new DevTokenUnavailable("this edge has no dev sign-in: paste a token");
  const body = (await res.json().catch(() => ({}))) as { token?: string; msg?: string };
  if (!res.ok || !body.token) throw new Error(body.msg ?? `sign-in failed: HTTP ${res.status}`);
  return body.token;
}

/** The edge's WebSocket URL: the page's own origin. */
export function wsURL(): string {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws";
}

/** tokenExpired reports whether a JWT's exp has passed (or it cannot be read). */
export function tokenExpired(token: string, skewMs = 30_000): boolean {
  try {
    const part = token.split(".")[1] ?? "";
    const claims = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: number };
    return typeof claims.exp !== "number" || claims.exp * 1000 < Date.now() + skewMs;
  } catch {
    return true;
  }
}
