//! Contacts: each user's private list of other users, with optional nicknames.

use sotto_core::api::contacts::Contact;
use sotto_core::api::pagination::Page;
use sotto_core::api::users::PublicUser;
use uuid::Uuid;

use super::{Id, Millis, Writer, q};
use crate::db::{Db, WriteTx, rfc3339};
use crate::error::ApiResult;
use crate::pagination::page_of;

/// Builds a [`Contact`] from a record with the contact columns.
macro_rules! contact {
    ($r:expr) => {{
        let r = $r;
        Contact {
            id: r.id.0,
            user: PublicUser {
                id: r.contact_id.0,
                username: r.username,
                display_name: r.display_name,
            },
            nickname: r.nickname,
            created_at: rfc3339(r.created_at.0),
            updated_at: rfc3339(r.updated_at.0),
        }
    }};
}

/// `owner`'s contact entry `id`.
pub async fn one(db: &Db, owner: Uuid, id: Uuid) -> ApiResult<Option<Contact>> {
    Ok(q!(
        db,
        optional,
        r#"SELECT c.id AS "id: Id", c.contact_id AS "contact_id: Id", u.username, u.display_name, c.nickname,
           c.created_at AS "created_at: Millis", c.updated_at AS "updated_at: Millis"
           FROM contacts c JOIN users u ON u.id = c.contact_id WHERE c.id = $1 AND c.owner_id = $2"#,
        Id(id),
        Id(owner)
        => |r| contact!(r)
    ))
}

/// A page of `owner`'s contacts after the entry id `after` (nil: from the start).
pub async fn page(db: &Db, owner: Uuid, after: Uuid, limit: u32) -> ApiResult<Page<Contact>> {
    let rows = q!(
        db,
        all,
        r#"SELECT c.id AS "id: Id", c.contact_id AS "contact_id: Id", u.username, u.display_name, c.nickname,
           c.created_at AS "created_at: Millis", c.updated_at AS "updated_at: Millis"
           FROM contacts c JOIN users u ON u.id = c.contact_id
           WHERE c.owner_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3"#,
        Id(owner),
        Id(after),
        i64::from(limit) + 1
        => |r| contact!(r)
    );
    Ok(page_of(rows, limit, |c| c.id.to_string(), Clone::clone))
}

/// How many contacts `owner` keeps (within `tx`, before adding one).
pub async fn count(tx: &mut WriteTx, owner: Uuid) -> ApiResult<i64> {
    Ok(q!(
        tx,
        one,
        r#"SELECT COUNT(*) AS "n!: i64" FROM contacts WHERE owner_id = $1"#,
        Id(owner)
        => |r| r.n
    ))
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
    Ok(q!(
        tx,
        execute,
        "INSERT INTO contacts (id, owner_id, contact_id, nickname, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (owner_id, contact_id) DO NOTHING",
        Id(id),
        Id(owner),
        Id(contact),
        nickname,
        Millis(now)
    ) == 1)
}

/// Sets the nickname of `owner`'s entry `id`; `false` if there is no such entry.
pub async fn set_nickname(
    w: Writer<'_>,
    owner: Uuid,
    id: Uuid,
    nickname: Option<&str>,
    now: i64,
) -> ApiResult<bool> {
    Ok(q!(
        w,
        execute,
        "UPDATE contacts SET nickname = $1, updated_at = $2 WHERE id = $3 AND owner_id = $4",
        nickname,
        Millis(now),
        Id(id),
        Id(owner)
    ) == 1)
}

/// Removes `owner`'s entry `id`; `false` if there is no such entry.
pub async fn remove(w: Writer<'_>, owner: Uuid, id: Uuid) -> ApiResult<bool> {
    Ok(q!(
        w,
        execute,
        "DELETE FROM contacts WHERE id = $1 AND owner_id = $2",
        Id(id),
        Id(owner)
    ) == 1)
}

/// Whether `owner` has `contact` in their contacts (inside a write transaction,
/// so the answer holds for it).
pub async fn has(tx: &mut WriteTx, owner: Uuid, contact: Uuid) -> ApiResult<bool> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT id AS "id: Id" FROM contacts WHERE owner_id = $1 AND contact_id = $2"#,
        Id(owner),
        Id(contact)
        => |r| r.id
    )
    .is_some())
}
