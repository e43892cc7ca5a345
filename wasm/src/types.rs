//! The TypeScript types of the package, written into the generated `.d.ts`
//! (`typescript_custom_section`s), and the extern types that make the generated
//! signatures reference them instead of `any`.
//!
//! Two sources, never the same type twice:
//! - the wire (`sotto_core::api`, the device bundle, the attachment pointer and
//!   the engine types apps see): `wire.gen.d.ts`, generated from the Rust types
//!   by `ts-rs` (`scripts/gen-ts`; the test `ts_wire` fails when it is stale);
//! - this binding's own JavaScript API (camelCase objects that `js.rs` builds,
//!   which exist nowhere else): written here.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(typescript_custom_section)]
const WIRE_TYPES: &'static str = include_str!("wire.gen.d.ts");

#[wasm_bindgen(typescript_custom_section)]
const BINDING_TYPES: &'static str = r#"
/** A UUID: lowercase, hyphenated (`00000000-0000-0000-0000-000000000000`). */
export type Uuid = string;
/** An RFC 3339 UTC timestamp formatted by the relay; opaque and sortable. */
export type Timestamp = string;
/** A key-wrap suite. */
export type Suite = "x25519" | "rsa";

/** The stable `code` of every `Error` this package throws (see API.md). */
export type SottoErrorCode =
  | "malformed" | "too_large" | "unsupported_version" | "unsupported_suite" | "invalid_key"
  | "bad_signature" | "identity_mismatch" | "not_a_recipient" | "decryption_failed"
  | "context_mismatch" | "recipient_count" | "duplicate_recipient" | "no_rsa_key"
  | "wrong_key_or_corrupted" | "bad_recovery_key" | "bad_parameters" | "empty_passphrase"
  | "attachment" | "invalid_argument" | "rng" | "internal";
/** `detail` of an error whose code is `"attachment"`. */
export type AttachmentErrorDetail =
  | "bad_header" | "unsupported_version" | "bad_chunk_size" | "truncated" | "decryption_failed"
  | "digest_mismatch" | "size_mismatch" | "bad_pointer" | "too_large";
/** What every function of this package throws. */
export interface SottoError extends Error {
  code: SottoErrorCode;
  detail?: AttachmentErrorDetail;
}

export interface Versions {
  /** sotto-wasm crate version. */
  package: string;
  /** sotto-core version. */
  core: string;
  /** Envelope format version (1). */
  protocol: number;
  suites: Suite[];
  /** The pinned wasm-bindgen version. */
  wasmBindgen: string;
}

/** RSA-OAEP device key size; omit for X25519 only. */
export interface DeviceOptions { rsaBits?: 2048 | 3072 | 4096 }
/** Argon2id parameters of a passphrase backup (defaults 64 MiB, t=3, p=1). */
export interface BackupParams { mCostKib: number; tCost: number; pCost: number }
export interface RecoveryBackup { blob: Uint8Array; recoveryKey: string }
/** A stored account unlocked (`StoreVault.unlockAccount`); `upgraded`: a store from before the store key, to save in place of the old. */
export interface UnlockedAccount { vault: StoreVault; device: Device; upgraded?: { storeKey: Uint8Array; backup: Uint8Array } }

export interface SealHeader { roomId: string; clientMessageId: string; timestampMs: number }
/** `suite` defaults to `"x25519"`. */
export interface Recipient { device: VerifiedDevice; suite?: Suite }
/** Where a message arrived from, as the caller knows it (not as the message claims). */
export interface OpenExpected { roomId: string; sender: VerifiedDevice }
export interface Opened {
  plaintext: Uint8Array;
  roomId: string;
  senderUserId: string;
  senderDeviceId: string;
  clientMessageId: string;
  timestampMs: number;
  /** The suite of this device's recipient entry. */
  suite: Suite;
}
export interface EnvelopeInfo {
  version: number;
  /** The suite every recipient entry uses, or `"mixed"`. */
  suite: Suite | "mixed";
  roomId: string;
  senderUserId: string;
  senderDeviceId: string;
  clientMessageId: string;
  timestampMs: number;
  recipientDeviceIds: string[];
  /** The suite of each entry, parallel to `recipientDeviceIds`. */
  recipientSuites: Suite[];
}

export interface SafetyNumber {
  /** 60 digits, no separators. */
  digits: string;
  /** 12 space-separated groups of 5 digits. */
  display: string;
  qrPayload: Uint8Array;
}
/** TOFU: pin on "first_seen"; warn on "changed" (keep the old pin until accepted). */
export type TrustDecision = "first_seen" | "unchanged" | "changed";

export interface EncryptedAttachment { blob: Uint8Array; sealed: AttachmentSealed }
"#;

#[wasm_bindgen]
extern "C" {
    /// `Versions` in TypeScript.
    #[wasm_bindgen(typescript_type = "Versions")]
    pub type Versions;
    /// `DeviceOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "DeviceOptions")]
    pub type DeviceOptions;
    /// `BackupParams` in TypeScript.
    #[wasm_bindgen(typescript_type = "BackupParams")]
    pub type BackupParams;
    /// `RecoveryBackup` in TypeScript.
    #[wasm_bindgen(typescript_type = "RecoveryBackup")]
    pub type RecoveryBackup;
    /// `UnlockedAccount` in TypeScript.
    #[wasm_bindgen(typescript_type = "UnlockedAccount")]
    pub type UnlockedAccount;
    /// `SealHeader` in TypeScript.
    #[wasm_bindgen(typescript_type = "SealHeader")]
    pub type SealHeader;
    /// `Recipient[]` in TypeScript.
    #[wasm_bindgen(typescript_type = "Recipient[]")]
    pub type RecipientList;
    /// `OpenExpected` in TypeScript.
    #[wasm_bindgen(typescript_type = "OpenExpected")]
    pub type OpenExpected;
    /// `Opened` in TypeScript.
    #[wasm_bindgen(typescript_type = "Opened")]
    pub type Opened;
    /// `EnvelopeInfo` in TypeScript.
    #[wasm_bindgen(typescript_type = "EnvelopeInfo")]
    pub type EnvelopeInfo;
    /// `SafetyNumber` in TypeScript.
    #[wasm_bindgen(typescript_type = "SafetyNumber")]
    pub type SafetyNumber;
    /// `TrustDecision` in TypeScript.
    #[wasm_bindgen(typescript_type = "TrustDecision")]
    pub type TrustDecision;
    /// `EncryptedAttachment` in TypeScript.
    #[wasm_bindgen(typescript_type = "EncryptedAttachment")]
    pub type EncryptedAttachment;
    /// `DeviceBundle` in TypeScript.
    #[wasm_bindgen(typescript_type = "DeviceBundle")]
    pub type DeviceBundle;
    /// `AttachmentPointer` in TypeScript.
    #[wasm_bindgen(typescript_type = "AttachmentPointer")]
    pub type AttachmentPointer;
    /// `ServerFrame` in TypeScript.
    #[wasm_bindgen(typescript_type = "ServerFrame")]
    pub type ServerFrame;
    /// `ClientFrame` in TypeScript.
    #[wasm_bindgen(typescript_type = "ClientFrame")]
    pub type ClientFrame;
}
