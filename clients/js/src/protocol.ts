// Wire types of natter protocol v1 (docs/protocol.md is the contract).
// Every field name is the one on the wire; ids are opaque strings, seqs and
// timestamps (Unix milliseconds) are numbers.

/** The WebSocket subprotocol the SDK offers. */
export const SUBPROTOCOL = "natter.v1";

/** A message, as pushed and as returned by sync and history. */
export interface Message {
  /** Server id: "m_" + 26 base32 characters. */
  id: string;
  conv: string;
  /** Per conversation: 1, 2, 3 ... gap-free. */
  seq: number;
  /** A user id, or the identity of an internal service. */
  from: string;
  /** The client message id the sender gave it. */
  cmid?: string;
  /** Absent means "text". "edit" and "delete" entries carry ref. */
  type?: string;
  body: string;
  /** Only on edit and delete entries: the id of the message they change. */
  ref?: string;
  /** Files the message carries (uploaded with Client.upload). */
  attachments?: Attachment[];
  /** The id of the message (of the same conversation) this one replies to. */
  reply_to?: string;
  /** The id of the root message of the thread this one is a reply in. */
  thread?: string;
  /** The user ids (members) the message mentions, or "@all" (every member). */
  mentions?: string[];
  /** Server time, Unix ms. */
  ts: number;
  /** In history and sync pages: the ts of the latest edit, whose text body then is. */
  edited_at?: number;
  /** In history and sync pages: the message was deleted (body empty). */
  deleted?: boolean;
  /** In history and sync pages: its reactions, in the order first added. */
  reactions?: Reaction[];
  /** In history, sync and thread pages, on a thread's root: its reply count and the newest reply's ts. */
  thread_replies?: number;
  thread_last_at?: number;
}

/** The reply to send: the message is durable. dup is true when this cmid was stored before. */
export interface Ack {
  id: string;
  conv: string;
  seq: number;
  ts: number;
  dup?: boolean;
}

export type ConversationKind = "direct" | "group";

/** A conversation as conv.create, conv.get and conv.list return it. */
export interface Conversation {
  id: string;
  kind: ConversationKind;
  name?: string;
  created_by: string;
  created_at: number;
  /** Present for direct conversations and groups of at most 100 members; else use members(). */
  members?: string[];
  member_count: number;
  /** The newest seq, 0 if none. */
  head: number;
  /**
   * The conversation's state version (absent: 0): it grows by one with
   * every member change and rename of a group; conv pushes carry it.
   */
  rev?: number;
  /** conv.list: the user's read cursor (any device; absent: 0). */
  read?: number;
  /** conv.list: head - read (absent: 0). */
  unread?: number;
  /** conv.list: how many messages after read mention the user or @all (absent: 0; at most 100 per key). */
  mentions?: number;
  /** A group's owner (its creator until ownership is transferred). */
  owner?: string;
  /** A group's admins (absent: none). */
  admins?: string[];
  /** conv.list: your own settings of the conversation (absent: none set). */
  settings?: ConvSettings;
  description?: string;
  avatar_url?: string;
  /** Announcement mode: only the owner and admins send. */
  announce?: boolean;
  /** The members muted now, with when each mute ends (Unix ms). */
  muted?: { user: string; until: number }[];
}

/** What updateGroup sets: the fields present ("" clears a string). */
export interface GroupUpdate {
  description?: string;
  avatarURL?: string;
  announce?: boolean;
}

/** A page of conv.list: next names the following page (absent on the last). */
export interface ConversationsPage {
  convs: Conversation[];
  next?: string;
}

/** Options of conversationsPage: 1..500 conversations a page, page = the previous page's next. */
export interface PageOptions {
  pageSize: number;
  page?: string;
}

/** One conversation of a sync reply. */
export interface SyncConv {
  conv: string;
  head: number;
  /** The conversation's state version (absent: 0); higher than yours: you missed changes (conv.get). */
  rev?: number;
  /** The user's read cursor, shared by every device (0: none). */
  read?: number;
  /** head - read (0 when read >= head). */
  unread?: number;
  /** How many messages after read mention the user or @all (absent: 0). */
  mentions?: number;
  /** This device's delivered cursor as its acks left it on the server. */
  acked?: number;
  msgs?: Message[];
  more: boolean;
  /** The user's own settings of the conversation (absent: none set). */
  settings?: ConvSettings;
  /** The oldest seq kept when a retention policy removed messages the cursor had not reached (absent otherwise): msgs start there. */
  floor?: number;
}

/**
 * A user's own settings of a conversation, the same on all their devices
 * (conv.settings): absent fields are 0 or false. cleared hides the
 * messages up to that seq from the user.
 */
export interface ConvSettings {
  muted_until?: number;
  pinned?: boolean;
  archived?: boolean;
  cleared?: number;
}

/** What setConversationSettings sets: the fields present (mutedUntil 0 unmutes). */
export interface ConvSettingsUpdate {
  mutedUntil?: number;
  pinned?: boolean;
  archived?: boolean;
  cleared?: number;
}

export interface SyncResult {
  convs: SyncConv[];
  /** With page_size: the next page (absent on the last). */
  next?: string;
  /** On the last page (or the one reply): the sum of unread over the pass. */
  unread_total?: number;
}

/** A conversation's state as a sync reply gives it, without messages. */
export type SyncState = Omit<SyncConv, "msgs" | "more">;

/**
 * The "sync" event: every conversation of the user with its head, rev and
 * read state, as the sync that starts each connection found them.
 */
export interface SyncSummary {
  convs: SyncState[];
  /** The sum of unread over the conversations (from servers that send it). */
  unread_total?: number;
}

/** A history page, oldest first; more is true when the page was cut. */
export interface HistoryPage {
  msgs: Message[];
  more: boolean;
  /** The oldest seq kept when the page reached messages a retention policy removed (absent otherwise). */
  floor?: number;
}

/** Options of history: before or after (exclusive seq bounds), neither for the newest page. */
export interface HistoryOptions {
  /** The page just older than this seq (>= 1). */
  before?: number;
  /** The page just newer than this seq (>= 0; 0 is the page from the first message on). */
  after?: number;
  /** 1..200; absent means 50. */
  limit?: number;
}

export interface PresenceState {
  user: string;
  online: boolean;
  /** Unix ms; only when offline and known. */
  last_seen?: number;
}

export type TypingState = "started" | "stopped";

/** A typing push: another member of conv started or stopped typing. */
export interface TypingEvent {
  conv: string;
  user: string;
  state: TypingState;
  /** A started state ends by itself this long after the push. */
  expires_ms?: number;
}

/** The events of conv pushes (more may come within v1: ignore those you do not know). */
export type ConvEventKind =
  | "added"
  | "removed"
  | "members_added"
  | "members_removed"
  | "renamed"
  | "roles"
  | "muted"
  | "updated"
  | "settings";

/**
 * A conv push: one of your conversations changed. added and removed are
 * your own membership (to the users added or removed); members_added,
 * members_removed and renamed go to the other members. The fields are the
 * state after the change: apply a push only when its rev is above the one
 * you hold (pushes of one conversation can overtake each other).
 */
export interface ConvEvent {
  conv: string;
  event: ConvEventKind | (string & {});
  /** The state version after the change (absent: 0, a new conversation). */
  rev?: number;
  /** Who made the change (a user or a service). */
  by?: string;
  /** added: true for a conversation just created. */
  created?: boolean;
  /** members_added, members_removed: the users, when at most 100 (n always says how many). */
  users?: string[];
  n?: number;
  /** members_added, members_removed: the group's size after the change. */
  member_count?: number;
  /** renamed: the new name. */
  name?: string;
  /** roles: the owner and admins after the change. */
  owner?: string;
  admins?: string[];
  /** muted: when the mute of users ends (Unix ms); absent: unmuted. */
  until?: number;
  /** updated: the group's description, avatar URL and announcement mode after the change. */
  description?: string;
  avatar_url?: string;
  announce?: boolean;
  /** settings (to your own devices): your settings after the change. */
  settings?: ConvSettings;
}

/** A read push: user has read conv up to seq (your own devices, and receipts in small groups). */
export interface ReadEvent {
  conv: string;
  user: string;
  seq: number;
}

/** A member added (or, removed: true, took back) a reaction; count is the emoji's count now. */
export interface ReactionEvent {
  conv: string;
  ref: string;
  seq: number;
  user: string;
  emoji: string;
  removed?: boolean;
  count: number;
}

/** One emoji's count on a message in a history or sync page; mine: yours is on it. */
export interface Reaction {
  emoji: string;
  count: number;
  mine?: boolean;
}

/** One member's read cursor (seq 0: nothing read yet). */
export interface Receipt {
  user: string;
  seq: number;
}

/** A page of receipts, sorted by user id; next is set when more members follow. */
export interface ReceiptsPage {
  reads: Receipt[];
  next?: string;
}

/** Options of receipts: a page after a user (the previous page's next), limit 1..200 (absent: 100). */
export interface ReceiptsOptions {
  afterUser?: string;
  limit?: number;
}

/** The hello frame: the first frame of every session. */
export interface Hello {
  v: number;
  user: string;
  device: string;
  session: string;
  ping_ms: number;
  max_body: number;
}

/** The bye frame, sent just before the edge closes. */
export interface Bye {
  code: number;
  reason: string;
  reconnect: boolean;
}

/** The ops of protocol v1. */
export const Ops = {
  Auth: "auth",
  Send: "send",
  Ack: "ack",
  Read: "read",
  Sync: "sync",
  History: "history",
  ConvCreate: "conv.create",
  ConvList: "conv.list",
  ConvGet: "conv.get",
  ConvRename: "conv.rename",
  MembersAdd: "members.add",
  MembersRemove: "members.remove",
  MembersList: "members.list",
  Ping: "ping",
  PresenceSub: "presence.sub",
  PresenceUnsub: "presence.unsub",
  PresenceSet: "presence.set",
  Typing: "typing",
  Receipts: "receipts",
  MsgEdit: "msg.edit",
  MsgDelete: "msg.delete",
  React: "react",
  Thread: "thread",
  ConvUpdate: "conv.update",
  AdminsAdd: "admins.add",
  AdminsRemove: "admins.remove",
  OwnerTransfer: "owner.transfer",
  MembersMute: "members.mute",
  MembersUnmute: "members.unmute",
  Block: "block",
  Unblock: "unblock",
  BlocksList: "blocks.list",
  ConvSettings: "conv.settings",
  PushRegister: "push.register",
  PushUnregister: "push.unregister",
} as const;

/** A push service a device registers with (push.register). */
export type PushProvider = "apns" | "fcm" | "webpush";

/** A browser's Web Push subscription, as PushSubscription.toJSON() gives it. */
export interface PushSubscriptionJSON {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export type Op = (typeof Ops)[keyof typeof Ops];

/** The error codes of docs/protocol.md ("Error codes"). */
export const ErrorCodes = {
  BadJSON: "bad_json",
  BadFrame: "bad_frame",
  UnknownOp: "unknown_op",
  TooBig: "too_big",
  BadVersion: "bad_version",
  Unauthorized: "unauthorized",
  NotMember: "not_member",
  NotFound: "not_found",
  Forbidden: "forbidden",
  RateLimited: "rate_limited",
  TooMany: "too_many",
  Conflict: "conflict",
  Unavailable: "unavailable",
  Internal: "internal",
  UnsupportedType: "unsupported_type",
  QuotaExceeded: "quota_exceeded",
} as const;

/** A server error code. Unknown codes (added within v1) are treated like "internal". */
export type ServerErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The close codes of docs/protocol.md ("Close codes"). */
export const CloseCodes = {
  Normal: 1000,
  Policy: 1008,
  TooBig: 1009,
  Internal: 1011,
  BadProtocol: 4000,
  Unauthorized: 4001,
  AuthTimeout: 4002,
  SlowConsumer: 4008,
  IdleTimeout: 4009,
  GoingAway: 4010,
} as const;

/** A frame the edge sends that this SDK knows. */
export type ServerFrame =
  | { t: "res"; id: string; data: unknown }
  | { t: "err"; id?: string; code: string; msg: string }
  | { t: "msg"; msg: Message }
  | ({ t: "hello" } & Hello)
  | ({ t: "bye" } & Bye)
  | ({ t: "conv" } & ConvEvent)
  | ({ t: "presence" } & PresenceState)
  | ({ t: "typing" } & TypingEvent)
  | ({ t: "read" } & ReadEvent)
  | ({ t: "reaction" } & ReactionEvent);

/**
 * A server frame whose t this SDK version does not handle (new push types
 * may appear within v1): the client passes it to the "push" event as it came.
 */
export interface UnknownFrame {
  t: string;
  [field: string]: unknown;
}

/** A file a message carries: what the upload recorded (docs/protocol.md, "Attachments"). */
export interface Attachment {
  /** "a_" + 26 characters, what the upload returned. */
  id: string;
  name?: string;
  size: number;
  type: string;
  /** Of images, in pixels. */
  width?: number;
  height?: number;
}
