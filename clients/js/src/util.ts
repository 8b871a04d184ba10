const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * newCmid returns a random client message id: 22 characters of
 * [A-Za-z0-9_-] (128 random bits), what send uses when no cmid is given.
 */
export function newCmid(): string {
  const b = new Uint8Array(22);
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256); // React Native without a crypto polyfill
  let s = "";
  for (let i = 0; i < b.length; i++) s += alphabet[b[i]! & 63];
  return s;
}

/** utf8Length is the length of s in UTF-8 bytes. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** jitter returns a random delay in (0, ms]: "full jitter". */
export function jitter(ms: number): number {
  return ms <= 0 ? 0 : Math.random() * ms + 1;
}

/** backoff is the delay before retry number attempt (0 = the first): exponential with full jitter. */
export function backoff(attempt: number, base: number, max: number): number {
  return jitter(Math.min(max, base * 2 ** Math.min(attempt, 30)));
}

/** sleep waits ms; it resolves false when one of the interrupts settles first. */
export function sleep(ms: number, ...interrupts: Promise<unknown>[]): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), Math.max(0, ms))));
  return Promise.race([t, ...interrupts.map((p) => p.then(() => false, () => false))]).finally(() => clearTimeout(timer));
}
