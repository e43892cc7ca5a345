// `sotto-wasm/client`: the TypeScript client on top of the WASM bindings (the
// contract is wasm/CLIENT_API.md). Call the bindings' `init()` (browsers) or
// `initSync({ module })` (Node) once before using anything here.

export { Relay } from "./relay.js";
export type { RelayEventMap, RelayOptions } from "./relay.js";
export { Session, storedBefore } from "./session.js";
export type {
  RoomInviteeSummary,
  RoomMemberSummary,
  RoomSummary,
  BackupSecret,
  DeviceSetup,
  RsaBits,
  SafetyNumber,
  SessionOptions,
  Trust,
} from "./session.js";
export { IndexedDbStore, MemoryStore, TEST_ARGON2 } from "./store.js";
export type { Argon2Params, KeyStore, OutboxEntry, Pin, Seen, StoredAccount } from "./store.js";
export { ClientCodes, SottoError, codeOf, hasCode } from "./errors.js";
export type { SottoErrorOptions } from "./errors.js";
export { decodeContent, encodeContent, preview } from "./events.js";
export type {
  ConnectionDetail,
  ConnectionState,
  Content,
  DeletedDetail,
  DeviceRejectedDetail,
  DevicesChangedDetail,
  IdentityChangedDetail,
  MembershipWarning,
  InvitationDetail,
  PresenceDetail,
  ReceiptDetail,
  ReceivedMessage,
  RelayErrorDetail,
  RoomDetail,
  SenderTrust,
  Sent,
  SentDetail,
  SessionEventMap,
  TypingDetail,
  UndecryptableDetail,
  UndecryptableReason,
} from "./events.js";
export { backoffMs } from "./sync.js";
export type { WebSocketConstructor } from "./sync.js";
export { fromB64, toB64, uuidv7 } from "./codec.js";
export { tokenFromLink } from "./sotto_wasm.js";
export type { Timestamp, Uuid } from "./sotto_wasm.js";
export * from "./wire.gen.js";
