//! The storage layer: the relay's SQL statements behind typed functions, one
//! module per feature. Handlers call these and never see SQL.
//!
//! The write rule in the types: a function that reads takes `&Db` (and runs on
//! the read-only pool); one that writes a single statement takes a [`Writer`]
//! (obtainable only from [`Db::writer`]); one that writes within a transaction
//! takes `&mut WriteTx` ([`Db::begin_write`]). See `docs/architecture.md` for
//! the move of every feature here and onto sqlx's native drivers.
//!
//! Moved so far: sessions and refresh tokens, e-mail tokens, the account
//! writes of the e-mail flows, contacts, attachments, devices (`auth_routes.rs`,
//! `tokens.rs`, `contacts.rs`, `attachments.rs` and `devices.rs` hold no SQL).

pub mod attachments;
pub mod contacts;
pub mod devices;
pub mod email_tokens;
pub mod messages;
pub mod rooms;
pub mod sessions;
pub mod users;

use crate::db::Db;

/// Permission to run single writing statements (see the module docs).
#[derive(Clone, Copy)]
pub struct Writer<'a> {
    db: &'a Db,
}

impl Db {
    /// The handle that single-statement writes take.
    pub fn writer(&self) -> Writer<'_> {
        Writer { db: self }
    }
}

impl Writer<'_> {
    fn pool(&self) -> &sqlx::AnyPool {
        self.db.write()
    }
}
