//! The SDK's one error type.

use std::time::Duration;

use sotto_core::api::Problem;
use uuid::Uuid;

/// Everything an SDK call can fail with.
///
/// Relay refusals keep the RFC 9457 [`Problem`] with its stable `code` (branch on
/// [`Error::code`]) and the `Retry-After` the relay sent. Trust failures are
/// their own variants so an app cannot mistake them for network trouble.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The relay answered with a problem (4xx/5xx).
    #[error("relay refused: {problem}")]
    Relay {
        /// The problem body (or one made up from the status when the body was not one).
        problem: Box<Problem>,
        /// The `Retry-After` of a 429/503, if any.
        retry_after: Option<Duration>,
    },
    /// The relay could not be reached, or the connection broke (after retries).
    #[error("network: {0}")]
    Network(String),
    /// The relay answered something that is not what the API promises.
    #[error("unexpected answer from the relay: {0}")]
    Protocol(String),
    /// No session: log in first (or the refresh token was spent or revoked).
    #[error("not logged in, or the session ended: log in again")]
    NotLoggedIn,
    /// The local store failed.
    #[error("local store: {0}")]
    Store(String),
    /// The local store holds keys of another account or device, or none yet.
    #[error("local store: {0}")]
    StoreMismatch(&'static str),
    /// The store passphrase (or backup secret) did not decrypt the keys.
    #[error("wrong passphrase or damaged key store")]
    Locked,
    /// A key backup could not be imported.
    #[error("key backup: {0}")]
    Backup(#[from] sotto_core::BackupError),
    /// Key generation or bundle creation failed.
    #[error("keys: {0}")]
    Keys(#[from] sotto_core::KeyError),
    /// Sealing a message failed.
    #[error("sealing: {0}")]
    Seal(#[from] sotto_core::SealError),
    /// An attachment could not be encrypted or decrypted.
    #[error("attachment: {0}")]
    Attachment(#[from] sotto_core::attachment::AttachmentError),
    /// A file could not be read or written.
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    /// The account already has an identity on the relay (another device): set
    /// this device up from a key backup instead of generating a new identity.
    #[error("this account already has devices: link this device with a key backup")]
    IdentityExists,
    /// This device was revoked on the relay; it can no longer be used.
    #[error("this device was revoked")]
    DeviceRevoked,
    /// The identity key of these users changed since it was pinned. Nothing was
    /// sealed to them. Show the safety number change; after the person confirms,
    /// call [`crate::Session::accept_identity`].
    #[error("identity key changed for {0:?}: refusing to encrypt to them until accepted")]
    IdentityChanged(Vec<Uuid>),
    /// A direct room lists users besides its two (a relay writing them into
    /// the room): nothing is sent there (see [`crate::Event::Membership`]).
    #[error("the direct room lists {0:?} besides its two users: not sending there")]
    DirectRoomTampered(Vec<Uuid>),
    /// This device has not yet received the owner's membership statement of
    /// the room (it joined moments ago): nothing can be sealed until it has.
    #[error("the room's membership statement has not arrived yet; try again shortly")]
    MembershipPending,
    /// The user has no device that can receive messages (none, or none that verify).
    #[error("user {0} has no device to encrypt to")]
    NoDevices(Uuid),
    /// The message is too large to seal (see `sotto_core::envelope::MAX_PLAINTEXT`).
    #[error("message too large")]
    TooLarge,
    /// The message was sealed and is in the outbox, but the relay could not be
    /// reached: it is posted by itself when the connection is back (then
    /// [`crate::Event::Sent`] names this `client_id`). Do not send it again.
    #[error("queued, not yet delivered to the relay ({cause})")]
    Queued {
        /// The message's id, as `Event::Sent` will name it.
        client_id: Uuid,
        /// Why it could not be posted now.
        cause: Box<Error>,
    },
    /// A membership statement could not be signed (a room over the member limit).
    #[error("membership: {0}")]
    Membership(#[from] sotto_core::membership::MembershipError),
    /// The session was closed.
    #[error("session closed")]
    Closed,
}

impl Error {
    /// The relay's problem `code`, if this is a relay refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Relay { problem, .. } => Some(&problem.code),
            _ => None,
        }
    }

    /// The HTTP status, if this is a relay refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Relay { problem, .. } => Some(problem.status),
            _ => None,
        }
    }

    /// The relay's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Relay { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn store(e: impl std::fmt::Display) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::store(e)
    }
}

/// Result with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
