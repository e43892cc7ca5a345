//! The npm package's TypeScript wire types, generated from the Rust types
//! (`sotto_core::api`, the device bundle, the attachment pointer, and the
//! engine's types apps see) by `ts-rs`, and the constants the TypeScript client
//! shares with the relay (problem codes, limits) and with the native SDK (the
//! engine's timing policy).
//!
//! This test fails when the committed files differ from what the Rust types
//! generate. `SOTTO_UPDATE_TS=1 cargo test -p sotto-wasm --test ts_wire`
//! (or `scripts/gen-ts`) rewrites them.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;

use sotto_core::api::{self, codes};
use ts_rs::{Config, TS};

const HEADER: &str =
    "// Generated from the Rust types by `scripts/gen-ts` (wasm/tests/ts_wire.rs). Do not edit.\n";

/// One declaration: its doc comment and `export type Name = ...;`.
fn decl<T: TS + ?Sized + 'static>(cfg: &Config, out: &mut String, names: &mut Vec<String>) {
    if let Some(docs) = T::docs() {
        out.push_str(&docs);
    }
    let _ = writeln!(out, "export {}\n", layout(&T::decl(cfg)));
    names.push(T::ident(cfg));
    // Every type a declaration names must be declared here too.
    for dep in T::dependencies(cfg) {
        deps_named(&dep.ts_name);
    }
}

/// `ts-rs` closes an object at the end of its last field's line (`a: T, }`);
/// put every closing brace at the start of its own line, indent by depth and
/// drop trailing blanks, so that the declarations read well and wasm-bindgen, which indents
/// custom sections by the braces that end and start lines, keeps them aligned.
fn layout(decl: &str) -> String {
    let mut lines = Vec::new();
    for line in decl.lines() {
        let mut rest = line.trim_end();
        while let Some(i) = rest.find(", }") {
            lines.push(&rest[..=i]);
            rest = &rest[i + 2..];
        }
        lines.push(rest);
    }
    let mut out = String::new();
    let mut depth = 0usize;
    for line in lines {
        let line = line.trim_start_matches(' ');
        let closes = line.starts_with('}');
        if closes {
            depth = depth.saturating_sub(1);
        }
        // Doc comments keep their one-space continuation indent.
        let pad = if line.starts_with('*') { 1 } else { 0 };
        out.push_str(&" ".repeat(2 * depth + pad));
        out.push_str(line);
        out.push('\n');
        let opened = line.matches('{').count() + usize::from(closes);
        depth = (depth + opened).saturating_sub(line.matches('}').count());
    }
    out.trim_end().to_owned()
}

fn deps_named(name: &str) {
    DEPS.with(|d| d.borrow_mut().push(name.to_owned()));
}

thread_local! {
    static DEPS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The wire declarations (`wasm/src/wire.gen.d.ts`) and the names they declare.
fn wire() -> (String, Vec<String>) {
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(HEADER);
    out.push_str(
        "// The relay's wire (sotto-core `api`, snake_case as on the wire; binary as\n\
         // base64url without padding; requests refuse unknown fields), and the\n\
         // engine's types apps see. Included in the package's `.d.ts`.\n\n",
    );
    let mut names = Vec::new();
    macro_rules! decls {
        ($($t:ty),* $(,)?) => { $( decl::<$t>(&cfg, &mut out, &mut names); )* };
    }
    decls!(
        sotto_core::encoding::B64,
        sotto_core::keys::DeviceBundle,
        sotto_core::attachment::AttachmentPointer,
        sotto_engine::Content,
        sotto_engine::Warning,
        sotto_engine::vault::HistoryTrust,
        sotto_engine::vault::HistoryItem,
        api::Problem,
        api::Page<()>,
        api::PageQuery,
        // Accounts and auth
        api::RegisterRequest,
        api::VerifyEmailRequest,
        api::ResendVerificationRequest,
        api::LoginRequest,
        api::TokenResponse,
        api::RefreshRequest,
        api::LogoutRequest,
        api::ForgotPasswordRequest,
        api::ResetPasswordRequest,
        api::CheckUsernameQuery,
        api::CheckUsernameResponse,
        // Users
        api::Role,
        api::User,
        api::PublicUser,
        api::UserListQuery,
        api::UserSearchQuery,
        api::CreateUserRequest,
        api::PatchUserRequest,
        // Devices
        api::PutDeviceRequest,
        api::RevokeDeviceRequest,
        api::Device,
        api::DeviceListQuery,
        api::KeysQueryRequest,
        api::KeysQueryResponse,
        // Rooms, invitations, blocks
        api::RoomKind,
        api::CreateRoomRequest,
        api::DirectRoomRequest,
        api::Room,
        api::RoomMember,
        api::RoomDetails,
        api::PatchRoomRequest,
        api::AddMemberRequest,
        api::AddedMember,
        api::RoomChange,
        api::Invitation,
        api::RoomInvitee,
        api::InvitationChange,
        api::BlockRequest,
        api::BlockedUser,
        // Messages
        api::PostMessageRequest,
        api::PostMessageResponse,
        api::Message,
        api::MessageListQuery,
        api::ReceiptKind,
        api::ReceiptRequest,
        api::Receipt,
        api::UnreadResponse,
        api::AttachmentCreated,
        // Contacts
        api::Contact,
        api::AddContactRequest,
        api::PatchContactRequest,
        // Push
        api::VapidPublicKey,
        api::PushSubscriptionRequest,
        api::PushSubscription,
        api::PushSubscriptionKeys,
        api::DeletePushSubscriptionRequest,
        api::PushPayload,
        api::PushTestResponse,
        // Real time
        api::ClientFrame,
        api::ServerFrame,
        // Operations
        api::CheckStatus,
        api::Health,
        api::RootInfo,
    );
    (out, names)
}

/// The TypeScript client's module of wire names and shared constants
/// (`wasm/ts/wire.gen.ts`).
fn client_module(names: &[String]) -> String {
    let mut out = String::from(HEADER);
    out.push_str("// The wire types (declared in the package's `.d.ts`) and the constants the\n// client shares with the relay.\n\n");
    out.push_str("export type {\n");
    for n in names {
        let _ = writeln!(out, "  {n},");
    }
    out.push_str("} from \"./sotto_wasm.js\";\n\n");
    out.push_str("/** Every `code` of a relay problem (RFC 9457) or WebSocket `error` frame. */\n");
    out.push_str("export const PROBLEM_CODES = [\n");
    for c in codes::ALL {
        let _ = writeln!(out, "  \"{c}\",");
    }
    out.push_str("] as const;\n/** One of [`PROBLEM_CODES`]. */\nexport type ProblemCode = (typeof PROBLEM_CODES)[number];\n\n");
    let _ = writeln!(
        out,
        "/** Limits of the relay's contract (sotto-core `api`, `envelope`). */\n\
         export const LIMITS = {{\n  \
           /** Page size when a list query names none. */\n  pageDefault: {},\n  \
           /** Largest page a list query may ask for. */\n  pageMax: {},\n  \
           /** Users one `POST /api/v1/keys/query` may name. */\n  keysQueryUsers: {},\n  \
           /** Password length in characters. */\n  passwordMinChars: {},\n  passwordMaxChars: {},\n  \
           /** Largest plaintext of one message, in bytes. */\n  maxPlaintext: {},\n  \
           /** Largest envelope, in bytes. */\n  maxEnvelope: {},\n  \
           /** Most recipient devices of one envelope. */\n  maxRecipients: {},\n  \
           /** Most members one membership statement lists. */\n  maxStatementMembers: {},\n  \
           /** Seconds the relay waits for the WebSocket `auth` frame. */\n  wsAuthTimeoutSecs: {},\n\
         }} as const;",
        api::DEFAULT_LIMIT,
        api::MAX_LIMIT,
        api::devices::MAX_KEYS_QUERY_USERS,
        api::auth::PASSWORD_MIN_CHARS,
        api::auth::PASSWORD_MAX_CHARS,
        sotto_core::envelope::MAX_PLAINTEXT,
        sotto_core::envelope::MAX_ENVELOPE_BYTES,
        sotto_core::envelope::MAX_RECIPIENTS,
        sotto_core::membership::MAX_MEMBERS,
        api::ws::AUTH_TIMEOUT_SECS,
    );
    let _ = writeln!(
        out,
        "\n/** The client's timing and retry policy (sotto-engine `policy`); times in milliseconds. */\n\
         export const POLICY = {{\n  \
           /** A socket `send` waits this long for its `ack`, then posts over HTTP. */\n  ackTimeoutMs: {},\n  \
           /** Keep-alive period; three silent periods end the connection. */\n  pingEveryMs: {},\n  \
           /** `delivered` receipts go out this often. */\n  receiptEveryMs: {},\n  \
           /** A connection up this long resets the reconnect back-off. */\n  stableAfterMs: {},\n  \
           /** To open the socket, then to get `ready` after `auth`. */\n  handshakeTimeoutMs: {},\n  \
           /** Refresh the access token this long before it expires (or at half its life). */\n  refreshMarginMs: {},\n  \
           /** Messages read ahead of the live stream for their membership statements. */\n  readAheadLimit: {},\n\
         }} as const;",
        sotto_engine::policy::ACK_TIMEOUT_MS,
        sotto_engine::policy::PING_EVERY_MS,
        sotto_engine::policy::RECEIPT_EVERY_MS,
        sotto_engine::policy::STABLE_AFTER_MS,
        sotto_engine::policy::HANDSHAKE_TIMEOUT_MS,
        sotto_engine::policy::REFRESH_MARGIN_MS,
        sotto_engine::policy::READ_AHEAD_LIMIT,
    );
    out
}

fn check(path: &Path, want: &str, stale: &mut Vec<String>) {
    if std::env::var_os("SOTTO_UPDATE_TS").is_some() {
        std::fs::write(path, want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    if have != want {
        stale.push(path.display().to_string());
    }
}

#[test]
fn generated_typescript_matches_the_rust_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (decls, names) = wire();
    let missing: Vec<String> = DEPS
        .with(|d| d.borrow().clone())
        .into_iter()
        .filter(|d| !names.contains(d))
        .collect();
    assert!(
        missing.is_empty(),
        "types named but not declared (add them to wire()): {missing:?}"
    );
    let mut stale = Vec::new();
    check(&root.join("src/wire.gen.d.ts"), &decls, &mut stale);
    check(
        &root.join("ts/wire.gen.ts"),
        &client_module(&names),
        &mut stale,
    );
    assert!(
        stale.is_empty(),
        "generated TypeScript is out of date: {stale:?}; run scripts/gen-ts and commit the result"
    );
}
