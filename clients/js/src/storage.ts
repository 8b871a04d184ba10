/** A message waiting in the outbox for its ack. */
export interface OutboxEntry {
  /** The client message id: the idempotency key of every (re)send. */
  cmid: string;
  conv: string;
  body: string;
  /** Application-defined type; absent means "text". */
  type?: string;
  /** Uploaded files it carries, by id (and an optional name for this message). */
  attachments?: { id: string; name?: string }[];
  /** The message it replies to, and the root of the thread it is in. */
  reply_to?: string;
  thread?: string;
  /** The user ids (or "@all") it mentions. */
  mentions?: string[];
  /** When the application sent it (Unix ms, client clock). */
  created: number;
  /** Orders entries: increasing in the order they were sent. */
  order: number;
}

/**
 * Storage keeps the outbox across page reloads and app restarts. Entries are
 * keyed by (conv, cmid). The client writes an entry before the first frame of
 * its message leaves and deletes it once the message is acked or refused, so
 * a new client on the same storage sends whatever an earlier one left.
 * Implementations: MemoryStorage (the default: survives only the Client
 * instance's owner), IndexedDBStorage (browsers), or your own (React Native:
 * AsyncStorage, SQLite).
 */
export interface Storage {
  /** Every entry, in any order (the client sorts them by order). */
  loadOutbox(): Promise<OutboxEntry[]>;
  putOutbox(entry: OutboxEntry): Promise<void>;
  deleteOutbox(conv: string, cmid: string): Promise<void>;
}

const key = (conv: string, cmid: string) => conv + "\u0000" + cmid;

/** Storage in memory: share one instance between clients to model a reload in tests. */
export class MemoryStorage implements Storage {
  private readonly entries = new Map<string, OutboxEntry>();

  async loadOutbox(): Promise<OutboxEntry[]> {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }

  async putOutbox(entry: OutboxEntry): Promise<void> {
    this.entries.set(key(entry.conv, entry.cmid), { ...entry });
  }

  async deleteOutbox(conv: string, cmid: string): Promise<void> {
    this.entries.delete(key(conv, cmid));
  }
}

/**
 * Storage in IndexedDB (browsers): one object store "outbox" in database
 * name (default "natter"). Use one database name per signed-in user.
 */
export class IndexedDBStorage implements Storage {
  private db: Promise<IDBDatabase> | undefined;

  /**
   * @param name the database name (default "natter")
   * @param factory the IndexedDB factory (default globalThis.indexedDB)
   */
  constructor(
    private readonly name = "natter",
    private readonly factory: IDBFactory = globalThis.indexedDB,
  ) {}

  private open(): Promise<IDBDatabase> {
    if (!this.db) {
      this.db = new Promise((resolve, reject) => {
        const req = this.factory.open(this.name, 1);
        req.onupgradeneeded = () => {
          req.result.createObjectStore("outbox");
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    return this.db;
  }

  private async run<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.open();
    return new Promise<T>((resolve, reject) => {
      const tx = db.transaction("outbox", mode);
      const req = fn(tx.objectStore("outbox"));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  async loadOutbox(): Promise<OutboxEntry[]> {
    return (await this.run("readonly", (s) => s.getAll())) as OutboxEntry[];
  }

  async putOutbox(entry: OutboxEntry): Promise<void> {
    await this.run("readwrite", (s) => s.put(entry, key(entry.conv, entry.cmid)));
  }

  async deleteOutbox(conv: string, cmid: string): Promise<void> {
    await this.run("readwrite", (s) => s.delete(key(conv, cmid)));
  }
}
