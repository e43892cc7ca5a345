//! Contacts: each user's private list of other users, with optional nicknames.

use sotto_core::api::contacts::Contact;
use sotto_core::api::pagination::Page;
use sotto_core::api::users::PublicUser;
use uuid::Uuid;

use super::Writer;
use crate::db::{Db, WriteTx, rfc3339};
use crate::error::ApiResult;
use crate::ids::parse_id;
use crate::pagination::try_page_of;

const CONTACT_SELECT: &str = "SELECT c.id, c.contact_id, u.username, u.display_name, c.nickname, c.created_at, c.updated_at \
    FROM contacts c JOIN users u ON u.id = c.contact_id";

#[derive(sqlx::FromRow)]
struct ContactRow {
    id: String,
    contact_id: String,
    username: String,
    display_name: Option<String>,
    nickname: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl ContactRow {
    fn to_api(&self) -> ApiResult<Contact> {
        Ok(Contact {
            id: parse_id(&self.id)?,
            user: PublicUser {
                id: parse_id(&self.contact_id)?,
                username: self.username.clone(),
                display_name: self.display_name.clone(),
            },
            nickname: self.nickname.clone(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        })
    }
}

/// `owner`'s contact entry `id`.
pub async fn one(db: &Db, owner: Uuid, id: Uuid) -> ApiResult<Option<Contact>> {
    sqlx::query_as::<_, ContactRow>(sqlx::AssertSqlSafe(format!(
        "{CONTACT_SELECT} WHERE c.id = $1 AND c.owner_id = $2"
    )))
    .bind(id.to_string())
    .bind(owner.to_string())
    .fetch_optional(db.read())
    .await?
    .map(|r| r.to_api())
    .transpose()
}

/// A page of `owner`'s contacts after the cursor `after` (a contact id, or empty).
pub async fn page(db: &Db, owner: Uuid, after: &str, limit: u32) -> ApiResult<Page<Contact>> {
    let rows = sqlx::query_as::<_, ContactRow>(sqlx::AssertSqlSafe(format!(
        "{CONTACT_SELECT} WHERE c.owner_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3"
    )))
    .bind(owner.to_string())
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(db.read())
    .await?;
    try_page_of(rows, limit, |r| r.id.clone(), ContactRow::to_api)
}

/// How many contacts `owner` keeps (within `tx`, before adding one).
pub async fn count(tx: &mut WriteTx, owner: Uuid) -> ApiResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE owner_id = $1")
            .bind(owner.to_string())
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Adds `contact` to `owner`'s contacts as entry `id`; `false` if already there.
pub async fn insert(
    tx: &mut WriteTx,
    id: Uuid,
    owner: Uuid,
    contact: Uuid,
    nickname: Option<&str>,
    now: i64,
) -> ApiResult<bool> {
    Ok(sqlx::query(
        "INSERT INTO contacts (id, owner_id, contact_id, nickname, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (owner_id, contact_id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(owner.to_string())
    .bind(contact.to_string())
    .bind(nickname)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// Sets the nickname of `owner`'s entry `id`; `false` if there is no such entry.
pub async fn set_nickname(
    w: Writer<'_>,
    owner: Uuid,
    id: Uuid,
    nickname: Option<&str>,
    now: i64,
) -> ApiResult<bool> {
    Ok(sqlx::query(
        "UPDATE contacts SET nickname = $1, updated_at = $2 WHERE id = $3 AND owner_id = $4",
    )
    .bind(nickname)
    .bind(now)
    .bind(id.to_string())
    .bind(owner.to_string())
    .execute(w.pool())
    .await?
    .rows_affected()
        == 1)
}

/// Removes `owner`'s entry `id`; `false` if there is no such entry.
pub async fn remove(w: Writer<'_>, owner: Uuid, id: Uuid) -> ApiResult<bool> {
    Ok(
        sqlx::query("DELETE FROM contacts WHERE id = $1 AND owner_id = $2")
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(w.pool())
            .await?
            .rows_affected()
            == 1,
    )
}
