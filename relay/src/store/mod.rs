//! The storage layer: the relay's SQL statements behind typed functions, one
//! module per feature. Handlers call these and never see SQL.
//!
//! Statements run on sqlx's native SQLite and PostgreSQL drivers and are
//! checked at compile time against both schemas ([`q!`]: one statement text,
//! compiled once per backend; where the backends need different SQL a function
//! matches on [`Conn`] and writes each). The offline query data is committed in
//! `.sqlx/` (regenerate with `scripts/sqlx-prepare`), so a build needs no
//! database.
//!
//! Types as each backend stores them: ids are [`Id`] (PostgreSQL `UUID`,
//! SQLite hyphenated text), times [`Millis`] (PostgreSQL `TIMESTAMPTZ`, SQLite
//! integer milliseconds), flags `bool` (PostgreSQL `BOOLEAN`, SQLite 0/1).
//!
//! The write rule in the types: a function that reads takes `&Db` (and runs on
//! the read-only pool); one that writes a single statement takes a [`Writer`]
//! (obtainable only from [`Db::writer`]); one that writes within a transaction
//! takes `&mut WriteTx` ([`Db::begin_write`]).
//!
//! Every statement of the relay is here (`db.rs` keeps the pools, migrations
//! and the health ping); `relay/tests/layout.rs` fails when SQL appears
//! anywhere else.

pub mod attachments;
pub mod audit;
pub mod blocks;
pub mod contacts;
pub mod devices;
pub mod email_tokens;
pub mod fanout;
pub mod invitations;
pub mod maintenance;
pub mod membership;
pub mod messages;
pub mod push;
pub mod rooms;
pub mod sessions;
pub mod usage;
pub mod users;

use sqlx::error::BoxDynError;
use sqlx::pool::PoolConnection;
use uuid::Uuid;

use sotto_core::api::rooms::RoomKind;

use crate::db::{Db, Pool, WriteTx};
use crate::error::{ApiError, ApiResult};

/// Takes PostgreSQL advisory transaction locks `keys`, in this order, for the
/// rest of `tx` (SQLite runs one writer at a time: nothing to take).
pub(crate) async fn advisory_xact_locks(tx: &mut WriteTx, keys: &[i64]) -> ApiResult<()> {
    let mut held = tx.hold().await?;
    match held.conn() {
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(_) => {
            let _ = keys;
        }
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            for key in keys {
                sqlx::query!("SELECT pg_advisory_xact_lock($1)", key)
                    .fetch_one(&mut *c)
                    .await?;
            }
        }
    }
    Ok(())
}

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

    /// A connection of the read-only pool.
    pub(crate) async fn hold(&self) -> Result<Held<'static>, sqlx::Error> {
        Held::acquire(self.read_pool()).await
    }
}

impl Writer<'_> {
    /// A connection of the write pool.
    pub(crate) async fn hold(&self) -> Result<Held<'static>, sqlx::Error> {
        Held::acquire(self.db.write_pool()).await
    }
}

impl WriteTx {
    /// The transaction's connection.
    pub(crate) async fn hold(&mut self) -> Result<Held<'_>, sqlx::Error> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            WriteTx::Sqlite(tx) => Held::Sqlite(tx),
            #[cfg(feature = "postgres")]
            WriteTx::Postgres(tx) => Held::Postgres(tx),
        })
    }
}

impl crate::db::ReadTx {
    /// The transaction's connection (one snapshot).
    pub(crate) async fn hold(&mut self) -> Result<Held<'_>, sqlx::Error> {
        self.0.hold().await
    }
}

/// A connection a statement runs on: taken from a pool, or a transaction's.
pub(crate) enum Held<'a> {
    #[cfg(feature = "sqlite")]
    SqlitePooled(PoolConnection<sqlx::Sqlite>),
    #[cfg(feature = "sqlite")]
    Sqlite(&'a mut sqlx::SqliteConnection),
    #[cfg(feature = "postgres")]
    PostgresPooled(PoolConnection<sqlx::Postgres>),
    #[cfg(feature = "postgres")]
    Postgres(&'a mut sqlx::PgConnection),
}

/// The connection of one backend.
pub(crate) enum Conn<'a> {
    #[cfg(feature = "sqlite")]
    Sqlite(&'a mut sqlx::SqliteConnection),
    #[cfg(feature = "postgres")]
    Postgres(&'a mut sqlx::PgConnection),
}

impl Held<'_> {
    async fn acquire(pool: &Pool) -> Result<Held<'static>, sqlx::Error> {
        Ok(match pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => Held::SqlitePooled(p.acquire().await?),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => Held::PostgresPooled(p.acquire().await?),
        })
    }

    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            #[cfg(feature = "sqlite")]
            Held::SqlitePooled(c) => Conn::Sqlite(c),
            #[cfg(feature = "sqlite")]
            Held::Sqlite(c) => Conn::Sqlite(c),
            #[cfg(feature = "postgres")]
            Held::PostgresPooled(c) => Conn::Postgres(c),
            #[cfg(feature = "postgres")]
            Held::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// Runs one statement, checked at compile time against both backends' schemas.
///
/// `q!(source, kind, "SQL", args... => |row| value)` where `source` is a `&Db`
/// (reads), a [`Writer`] or a `&mut WriteTx`, and `kind` is `one`, `optional`
/// or `all` (the rows mapped by the closure); `q!(source, execute, "SQL",
/// args...)` gives the number of rows affected. Errors are returned with `?`
/// (as the enclosing function's error type). The SQL text is the same for both
/// backends; the SQLite copy is marked with a leading comment so that the two
/// have distinct offline query data. Columns carry type overrides where the
/// backends' natural types differ (`id AS "id: Id"`, `created_at AS
/// "created_at: Millis"`, `flag AS "flag: Flag"`).
macro_rules! q {
    ($src:expr, execute, $sql:literal $(, $arg:expr)* $(,)?) => {{
        let mut held = $src.hold().await?;
        match held.conn() {
            #[cfg(feature = "sqlite")]
            $crate::store::Conn::Sqlite(c) => sqlx::query!("/* sqlite */ " + $sql $(, $arg)*)
                .execute(&mut *c)
                .await?
                .rows_affected(),
            #[cfg(feature = "postgres")]
            $crate::store::Conn::Postgres(c) => sqlx::query!($sql $(, $arg)*)
                .execute(&mut *c)
                .await?
                .rows_affected(),
        }
    }};
    ($src:expr, $kind:ident, $sql:literal $(, $arg:expr)* $(,)? => |$r:pat_param| $map:expr) => {{
        let mut held = $src.hold().await?;
        match held.conn() {
            #[cfg(feature = "sqlite")]
            $crate::store::Conn::Sqlite(c) => $crate::store::q!(
                @$kind c, sqlx::query!("/* sqlite */ " + $sql $(, $arg)*), |$r| $map),
            #[cfg(feature = "postgres")]
            $crate::store::Conn::Postgres(c) => $crate::store::q!(
                @$kind c, sqlx::query!($sql $(, $arg)*), |$r| $map),
        }
    }};
    (@one $c:ident, $q:expr, |$r:pat_param| $map:expr) => {{
        let $r = $q.fetch_one(&mut *$c).await?;
        $map
    }};
    (@optional $c:ident, $q:expr, |$r:pat_param| $map:expr) => {
        $q.fetch_optional(&mut *$c).await?.map(|$r| $map)
    };
    (@all $c:ident, $q:expr, |$r:pat_param| $map:expr) => {
        $q.fetch_all(&mut *$c)
            .await?
            .into_iter()
            .map(|$r| $map)
            .collect::<Vec<_>>()
    };
}
pub(crate) use q;

/// A stored room kind (anything else is a corrupt row: 500 with a logged id).
pub(crate) fn parse_kind(kind: &str) -> ApiResult<RoomKind> {
    match kind {
        "direct" => Ok(RoomKind::Direct),
        "group" => Ok(RoomKind::Group),
        other => Err(ApiError::internal(crate::db::corrupt("rooms.kind", &other))),
    }
}

/// A UUID as each backend stores it: PostgreSQL's `UUID`, SQLite's hyphenated
/// lower-case text. A stored value that is not a UUID fails to decode (a
/// corrupt row: 500 with a logged id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub Uuid);

impl From<Id> for Uuid {
    fn from(id: Id) -> Uuid {
        id.0
    }
}

/// A flag as each backend stores it: PostgreSQL's `BOOLEAN`, SQLite's 0 or 1;
/// any other stored integer fails to decode (a corrupt row), where sqlx's
/// `bool` would read it as `true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

/// A time as each backend stores it: PostgreSQL's `TIMESTAMPTZ`, SQLite's
/// integer milliseconds since the Unix epoch. The relay computes in
/// milliseconds (`.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub i64);

impl From<Millis> for i64 {
    fn from(m: Millis) -> i64 {
        m.0
    }
}

#[cfg(feature = "sqlite")]
mod sqlite_types {
    use super::*;
    use sqlx::encode::IsNull;
    use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
    use sqlx::{Decode, Encode, Sqlite, Type};
    use uuid::fmt::Hyphenated;

    impl Type<Sqlite> for Id {
        fn type_info() -> SqliteTypeInfo {
            <Hyphenated as Type<Sqlite>>::type_info()
        }
        fn compatible(ty: &SqliteTypeInfo) -> bool {
            <Hyphenated as Type<Sqlite>>::compatible(ty)
        }
    }
    impl Encode<'_, Sqlite> for Id {
        fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
            <Hyphenated as Encode<'_, Sqlite>>::encode_by_ref(&self.0.hyphenated(), buf)
        }
    }
    impl Decode<'_, Sqlite> for Id {
        fn decode(value: SqliteValueRef<'_>) -> Result<Self, BoxDynError> {
            Ok(Id(
                <Hyphenated as Decode<'_, Sqlite>>::decode(value)?.into_uuid()
            ))
        }
    }

    impl Type<Sqlite> for Flag {
        fn type_info() -> SqliteTypeInfo {
            <i64 as Type<Sqlite>>::type_info()
        }
        fn compatible(ty: &SqliteTypeInfo) -> bool {
            <i64 as Type<Sqlite>>::compatible(ty) || <bool as Type<Sqlite>>::compatible(ty)
        }
    }
    impl Decode<'_, Sqlite> for Flag {
        fn decode(value: SqliteValueRef<'_>) -> Result<Self, BoxDynError> {
            match <i64 as Decode<'_, Sqlite>>::decode(value)? {
                0 => Ok(Flag(false)),
                1 => Ok(Flag(true)),
                n => Err(format!("a flag of {n} (not 0 or 1)").into()),
            }
        }
    }

    impl Type<Sqlite> for Millis {
        fn type_info() -> SqliteTypeInfo {
            <i64 as Type<Sqlite>>::type_info()
        }
        fn compatible(ty: &SqliteTypeInfo) -> bool {
            <i64 as Type<Sqlite>>::compatible(ty)
        }
    }
    impl Encode<'_, Sqlite> for Millis {
        fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
            <i64 as Encode<'_, Sqlite>>::encode_by_ref(&self.0, buf)
        }
    }
    impl Decode<'_, Sqlite> for Millis {
        fn decode(value: SqliteValueRef<'_>) -> Result<Self, BoxDynError> {
            Ok(Millis(<i64 as Decode<'_, Sqlite>>::decode(value)?))
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres_types {
    use super::*;
    use sqlx::encode::IsNull;
    use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
    use sqlx::{Decode, Encode, Postgres, Type};
    use time::OffsetDateTime;

    impl Type<Postgres> for Id {
        fn type_info() -> PgTypeInfo {
            <Uuid as Type<Postgres>>::type_info()
        }
    }
    impl PgHasArrayType for Id {
        fn array_type_info() -> PgTypeInfo {
            <Uuid as PgHasArrayType>::array_type_info()
        }
    }
    impl Encode<'_, Postgres> for Id {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            <Uuid as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
        }
    }
    impl Decode<'_, Postgres> for Id {
        fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
            Ok(Id(<Uuid as Decode<'_, Postgres>>::decode(value)?))
        }
    }

    impl Type<Postgres> for Flag {
        fn type_info() -> PgTypeInfo {
            <bool as Type<Postgres>>::type_info()
        }
    }
    impl Decode<'_, Postgres> for Flag {
        fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
            Ok(Flag(<bool as Decode<'_, Postgres>>::decode(value)?))
        }
    }

    impl Type<Postgres> for Millis {
        fn type_info() -> PgTypeInfo {
            <OffsetDateTime as Type<Postgres>>::type_info()
        }
    }
    impl Encode<'_, Postgres> for Millis {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)?;
            <OffsetDateTime as Encode<'_, Postgres>>::encode_by_ref(&t, buf)
        }
    }
    impl Decode<'_, Postgres> for Millis {
        fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
            let t = <OffsetDateTime as Decode<'_, Postgres>>::decode(value)?;
            Ok(Millis(i64::try_from(t.unix_timestamp_nanos() / 1_000_000)?))
        }
    }
}
