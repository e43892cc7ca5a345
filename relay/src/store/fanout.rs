//! The notifications that carry events to the other relays (PostgreSQL; see
//! `crate::fanout`).

use super::{Conn, Writer};
use crate::error::ApiResult;

/// `NOTIFY channel, payload` (nothing on SQLite, where one relay runs alone).
pub async fn notify(w: Writer<'_>, channel: &str, payload: &str) -> ApiResult<()> {
    let mut held = w.hold().await?;
    match held.conn() {
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(_) => {
            let _ = (channel, payload);
        }
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            sqlx::query!("SELECT pg_notify($1, $2)", channel, payload)
                .fetch_one(&mut *c)
                .await?;
        }
    }
    Ok(())
}
