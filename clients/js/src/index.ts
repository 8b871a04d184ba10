// The TypeScript SDK of natter: see README.md and docs/protocol.md.
export { Client } from "./client.js";
export type { ClientEvents, ClientState, ClientStats, SendOptions, StateEvent } from "./client.js";
export type { ClientOptions, Logger, TokenReason } from "./options.js";
export type { WebSocketConstructor, WebSocketLike } from "./conn.js";
export { NatterError, ClientErrorCodes, isCode } from "./errors.js";
export type { ClientErrorCode, ErrorCode } from "./errors.js";
export { MemoryStorage, IndexedDBStorage } from "./storage.js";
export type { OutboxEntry, Storage } from "./storage.js";
export { Delivery } from "./delivery.js";
export type { DeliveryStats } from "./delivery.js";
export { newCmid } from "./util.js";
export { SUBPROTOCOL, Ops, ErrorCodes, CloseCodes } from "./protocol.js";
export type {
  Ack,
  Attachment,
  Bye,
  Conversation,
  ConversationKind,
  ConvEvent,
  ConvEventKind,
  ConversationsPage,
  ConvSettings,
  ConvSettingsUpdate,
  GroupUpdate,
  PageOptions,
  Hello,
  HistoryOptions,
  HistoryPage,
  Message,
  Op,
  PresenceState,
  PushProvider,
  PushSubscriptionJSON,
  ReadEvent,
  ReactionEvent,
  Reaction,
  Receipt,
  ReceiptsOptions,
  ReceiptsPage,
  ServerErrorCode,
  ServerFrame,
  SyncConv,
  SyncResult,
  SyncState,
  SyncSummary,
  TypingEvent,
  TypingState,
  UnknownFrame,
} from "./protocol.js";
