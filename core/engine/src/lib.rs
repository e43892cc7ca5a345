//! # sotto-engine
//!
//! The client decisions of Sotto, written once in Rust and driven by both SDKs:
//! the native `sotto-client` (tokio) calls it directly, and the npm package's
//! TypeScript client through WebAssembly (`sotto-wasm`). Sans-I/O: no sockets,
//! no clock, no storage; the driver feeds it what the relay said and what the
//! user did, and does what it answers (seal to these users, post this
//! statement, show this warning, save this record).
//!
//! What it decides today:
//! - [`membership`]: room membership the relay cannot forge
//!   (`docs/protocol.md` §12.4): whom each message may be sealed to, which
//!   membership statements to accept, what the owner signs, and the warnings a
//!   user must see when the relay lists someone the owner did not;
//! - [`content`]: the content codec, and which opened plaintexts are control
//!   messages apps never see;
//! - [`trust`]: whether a sending device is trusted (pins, own devices, the
//!   revoked-device rule);
//! - [`vault`]: the store key (the passphrase wraps it; the device's secrets
//!   and local history are sealed under it) and the sealing of local history;
//! - [`feed`]: the incoming stream: room cursors, gaps and `resume`,
//!   de-duplication, `delivered` receipts, and the [`Changes`] a step leaves
//!   for the store (applied in one transaction before its events are shown);
//! - [`outbox`]: single-flight posting of sealed messages and what each answer
//!   of the relay means for the entry (sent, refused, retried, queued);
//! - [`pins`]: trust on first use: which key each user is pinned to, identity
//!   changes, rejected devices, a user's trust state;
//! - [`devices`]: a served device list's verification, the device-list cache
//!   (in memory, dropped on connect and on `keys_changed`, overtaken answers
//!   not kept), which devices a message is sealed to, whether a sending device
//!   is known and trusted, and the key an identity change is accepted under;
//! - [`link`]: the live connection as a state machine (connect, `resume`,
//!   steps stored before shown, acks, keep-alive, receipts, back-off), with
//!   the driver's clock and jitter as inputs;
//! - [`open`]: the open pipeline of one message, in one order (peek, sender
//!   check with one refetch, open, replay check, decode, a statement's signer
//!   check), asking the driver for device lists and the feed's verdict;
//! - [`address`]: whom to seal to in a room and the membership statements to
//!   post first (for a send, after a room event, creating a group, adding and
//!   withdrawing a member), asking the driver for the room's view, device
//!   lists, a read-ahead, posts and warnings;
//! - [`post`]: sealing one outgoing message for the devices the addressing
//!   chose, and posting it (socket first, HTTP when the outbox says so, out
//!   of the store once stored or refused), for a send and for a flush alike;
//!   the flush of the store's outbox (in order, joining a post in flight,
//!   stopping at the first entry that cannot go out yet);
//! - [`room_ops`]: creating a group room, the direct room, adding and
//!   removing members, accepting an invitation, in the order that keeps the signed membership right
//!   (the statement before the relay adds; withdrawn again on a refusal;
//!   posted without the removed whatever the relay answered);
//! - [`setup`]: opening a session on this device: unlocking a stored
//!   account, or setting the device up (new, linked from a backup, restored),
//!   with the checks against the store, the backup and the relay's list, and
//!   the keys kept before they are published;
//! - [`auth`]: the session's tokens: when the access token is refreshed,
//!   one refresh at a time (a refresh token is single-use), what a `401`
//!   means, when the session has ended;
//! - [`policy`]: timing and retry (reconnect back-off, ack timeout, receipt
//!   batching, keep-alive, token refresh margin, which refusals are retried).
//!
//! Each part is its own machine, stepped by each driver; one `step(inputs)`
//! over all of them is not there yet. `docs/architecture.md` ("The client
//! half") says where each part stands.

pub mod address;
pub mod auth;
pub mod content;
pub mod devices;
pub mod feed;
pub mod ids;
pub mod link;
pub mod membership;
pub mod open;
pub mod outbox;
pub mod pins;
pub mod policy;
pub mod post;
pub mod room_ops;
pub mod setup;
pub mod trust;
pub mod vault;

pub use content::{Content, Plaintext};
pub use feed::{Arrival, Changes, Deletion, Feed};
pub use ids::IdSet;
pub use membership::{Received, RecordError, RoomRecord, Rooms, SendRefused, Warning};
