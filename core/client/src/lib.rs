//! # sotto-client
//!
//! The native SDK of Sotto, for apps that link Rust: everything between the
//! user's plaintext and the relay, done the careful way once.
//!
//! - [`Client`]: the relay API as typed async methods (one per route), on the
//!   `sotto_core::api` wire types; access-token refresh with rotation (one
//!   refresh in flight), timeouts, retries with back-off for idempotent calls.
//! - [`Session`]: one device of one account. It sets keys up (new identity,
//!   linking from a key backup, or restoring one), keeps them encrypted in a
//!   [`Store`], pins identity keys on first use, verifies device bundles,
//!   seals to every member device, posts idempotently through an outbox that
//!   survives restarts, and turns the live WebSocket into an [`EventStream`] of
//!   decrypted, verified, de-duplicated [`Event`]s, reconnecting and resuming by
//!   itself.
//!
//! The app speaks plaintext ([`Content`]), users, devices and rooms; it never
//! sees an envelope, so the next protocol version (prekeys, ratchets) changes
//! no app code.
//!
//! **Why a separate crate, not a feature of `sotto-core`:** the core stays
//! sans-I/O with no way to switch I/O on (a `client` feature would, under
//! Cargo's feature unification, pull tokio and reqwest into every build of the
//! workspace that happens to include this SDK, the WASM package included);
//! this crate has its own lints and dependencies; and editing it rebuilds
//! neither the core nor the relay. It lives under `core/client/`.
//!
//! `docs/client.md` walks through a complete program; `examples/chat` is a
//! terminal chat built on it.

mod content;
mod error;
mod events;
mod files;
mod routes;
mod session;
pub mod store;
mod sync;
mod transport;

use std::pin::Pin;
use std::task::{Context, Poll};

pub use content::Content;
pub use error::{Error, Result};
pub use events::{Connection, Event, ReceivedMessage, SenderTrust, UndecryptableReason};
pub use files::{OnProgress, Progress};
pub use routes::token_from_link;
pub use session::{BackupSecret, DeviceSetup, Sent, Session, SessionOptions};
pub use sotto_engine::Changes;
pub use sotto_engine::pins::Trust;
pub use store::{SqliteStore, Store};
pub use transport::{Client, ClientOptions};

pub use sotto_core;
pub use sotto_engine;

/// The session's events, in order. A [`futures_util::Stream`]; or call
/// [`EventStream::next`].
#[derive(Debug)]
pub struct EventStream {
    rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
}

impl EventStream {
    fn new(rx: tokio::sync::mpsc::UnboundedReceiver<Event>) -> Self {
        Self { rx }
    }

    /// The next event (`None` once the session is gone).
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

impl futures_util::Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}
