//! The storage layer: the relay's SQL statements behind typed functions, one
//! module per feature. Handlers call these and never see SQL.
//!
//! The write rule in the types: a function that reads takes `&Db` (and runs on
//! the read-only pool); one that writes a single statement takes a [`Writer`]
//! (obtainable only from [`Db::writer`]); one that writes within a transaction
//! takes `&mut WriteTx` ([`Db::begin_write`]). See `docs/architecture.md` for
//! the move of every feature here and onto sqlx's native drivers.
//!
//! Every statement of the relay is here (`db.rs` keeps the pools, migrations
//! and the health ping); `relay/tests/layout.rs` fails when SQL appears
//! anywhere else. Statements run on sqlx's `Any` driver today; moving them to
//! the native drivers with compile-time checked queries changes this module
//! only.

pub mod attachments;
pub mod audit;
pub mod contacts;
pub mod devices;
pub mod email_tokens;
pub mod membership;
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
