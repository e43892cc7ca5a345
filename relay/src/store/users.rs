//! Accounts: the `users` table.

use uuid::Uuid;

use sotto_core::api::problem::codes;
use sotto_core::api::users::{PublicUser, Role, User};

use super::{Flag, Id, Millis, Writer, q};
use crate::db::{Db, WriteTx, now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::validate::{Email, Username};

/// Marks `user`'s address verified if it is still `email`; whether it was.
pub async fn mark_email_verified(
    w: Writer<'_>,
    user: Uuid,
    email: &str,
    now: i64,
) -> ApiResult<bool> {
    Ok(q!(
        w,
        execute,
        "UPDATE users SET email_verified = TRUE, updated_at = $1 WHERE id = $2 AND email = $3",
        Millis(now),
        Id(user),
        email
    ) == 1)
}

/// Sets `user`'s password hash (a reset through a link sent to `email`, which
/// also proves the address) if `email` is still their address; whether it was.
pub async fn reset_password(
    w: Writer<'_>,
    user: Uuid,
    email: &str,
    password_hash: &str,
    now: i64,
) -> ApiResult<bool> {
    Ok(q!(
        w,
        execute,
        "UPDATE users SET password_hash = $1, updated_at = $2, email_verified = TRUE WHERE id = $4 AND email = $3",
        password_hash,
        Millis(now),
        email,
        Id(user)
    ) == 1)
}

/// A `users` row, decoded and checked: a stored id that is not a UUID, an unknown
/// role or an impossible flag is a decode error (answered 500 with a logged id),
/// never a nil id or a silent default.
#[derive(Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub password_hash: String,
    pub role: Role,
    pub email_verified: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Builds a [`UserRow`] from a query record with the user columns (see
/// [`UserRow::decode`]): `id AS "id: Id", username, email, display_name,
/// password_hash, role, email_verified AS "email_verified: Flag", created_at AS
/// "created_at: Millis", updated_at AS "updated_at: Millis"`.
macro_rules! user_row {
    ($r:expr) => {{
        let r = $r;
        $crate::store::users::UserRow::decode(
            r.id,
            r.username,
            r.email,
            r.display_name,
            r.password_hash,
            &r.role,
            r.email_verified,
            r.created_at,
            r.updated_at,
        )
    }};
}
pub(crate) use user_row;

impl UserRow {
    /// The row from its columns; an unknown role is a decode error.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decode(
        id: Id,
        username: String,
        email: String,
        display_name: Option<String>,
        password_hash: String,
        role: &str,
        email_verified: Flag,
        created_at: Millis,
        updated_at: Millis,
    ) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: id.0,
            username,
            email,
            display_name,
            password_hash,
            role: parse_role(role).map_err(|_| crate::db::corrupt("users.role", &role))?,
            email_verified: email_verified.0,
            created_at: created_at.0,
            updated_at: updated_at.0,
        })
    }

    pub fn uuid(&self) -> Uuid {
        self.id
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn to_api(&self) -> User {
        User {
            id: self.id,
            username: self.username.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            email_verified: self.email_verified,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
    pub fn to_public(&self) -> PublicUser {
        PublicUser {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
        }
    }
}

pub async fn find_by_id(db: &Db, id: Uuid) -> ApiResult<Option<UserRow>> {
    Ok(q!(
        db,
        optional,
        r#"SELECT id AS "id: Id", username, email, display_name, password_hash, role,
           email_verified AS "email_verified: Flag", created_at AS "created_at: Millis",
           updated_at AS "updated_at: Millis" FROM users WHERE id = $1"#,
        Id(id)
        => |r| user_row!(r)
    )
    .transpose()?)
}

/// Finds a user by username or e-mail (both stored in lower case).
pub async fn find_by_login(db: &Db, login: &str) -> ApiResult<Option<UserRow>> {
    let login = login.trim().to_lowercase();
    if login.chars().any(char::is_control) {
        return Ok(None); // cannot name an account (and PostgreSQL refuses NUL in text)
    }
    Ok(q!(
        db,
        optional,
        r#"SELECT id AS "id: Id", username, email, display_name, password_hash, role,
           email_verified AS "email_verified: Flag", created_at AS "created_at: Millis",
           updated_at AS "updated_at: Millis" FROM users WHERE username = $1 OR email = $1"#,
        &login
        => |r| user_row!(r)
    )
    .transpose()?)
}

/// The account whose address is exactly `email` (not a username that looks like one).
pub async fn find_by_email(db: &Db, email: &Email) -> ApiResult<Option<UserRow>> {
    Ok(find_by_login(db, email.as_str())
        .await?
        .filter(|u| u.email == email.as_str()))
}

pub async fn username_exists(db: &Db, username: &Username) -> ApiResult<bool> {
    Ok(q!(
        db,
        one,
        r#"SELECT COUNT(*) AS "n!: i64" FROM users WHERE username = $1"#,
        username.as_str()
        => |r| r.n
    ) > 0)
}

pub async fn email_exists(db: &Db, email: &Email) -> ApiResult<bool> {
    Ok(q!(
        db,
        one,
        r#"SELECT COUNT(*) AS "n!: i64" FROM users WHERE email = $1"#,
        email.as_str()
        => |r| r.n
    ) > 0)
}

pub struct NewUser<'a> {
    pub username: &'a Username,
    pub email: &'a Email,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub email_verified: bool,
}

/// `INSERT INTO users`: the row; with `skip_taken_email`, `None` (and nothing
/// written) when the address is registered already.
async fn insert_row(
    w: Writer<'_>,
    u: NewUser<'_>,
    skip_taken_email: bool,
) -> Result<Option<UserRow>, sqlx::Error> {
    let id = Id(Uuid::now_v7());
    let now = Millis(now_ms());
    let row = if skip_taken_email {
        q!(
            w,
            optional,
            r#"INSERT INTO users (id, username, email, display_name, password_hash, role, email_verified, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (email) DO NOTHING
               RETURNING id AS "id: Id", username, email, display_name, password_hash, role,
               email_verified AS "email_verified: Flag", created_at AS "created_at: Millis",
               updated_at AS "updated_at: Millis""#,
            id,
            u.username.as_str(),
            u.email.as_str(),
            u.display_name,
            u.password_hash,
            u.role.as_str(),
            u.email_verified,
            now
            => |r| user_row!(r)
        )
    } else {
        Some(q!(
            w,
            one,
            r#"INSERT INTO users (id, username, email, display_name, password_hash, role, email_verified, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
               RETURNING id AS "id: Id", username, email, display_name, password_hash, role,
               email_verified AS "email_verified: Flag", created_at AS "created_at: Millis",
               updated_at AS "updated_at: Millis""#,
            id,
            u.username.as_str(),
            u.email.as_str(),
            u.display_name,
            u.password_hash,
            u.role.as_str(),
            u.email_verified,
            now
            => |r| user_row!(r)
        ))
    };
    row.transpose()
}

fn username_taken() -> ApiError {
    ApiError::conflict(codes::USERNAME_TAKEN, "this username is taken")
}

/// Inserts a user; a duplicate username or e-mail is a 409 with the matching code.
pub async fn insert(w: Writer<'_>, u: NewUser<'_>) -> ApiResult<UserRow> {
    let username = u.username;
    match insert_row(w, u, false).await {
        Ok(Some(row)) => Ok(row),
        Ok(None) => Err(ApiError::internal("INSERT ... RETURNING returned no row")),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            if username_exists(w.db, username).await? {
                Err(username_taken())
            } else {
                Err(ApiError::conflict(
                    codes::EMAIL_TAKEN,
                    "this e-mail address is already registered",
                ))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Inserts `u` unless its e-mail address is already registered: `None` then, and
/// nothing written. One statement either way, so the caller's timing does not
/// depend on whether the address exists. A taken username is 409.
pub async fn insert_unless_email_taken(
    w: Writer<'_>,
    u: NewUser<'_>,
) -> ApiResult<Option<UserRow>> {
    match insert_row(w, u, true).await {
        Ok(row) => Ok(row),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(username_taken()),
        Err(e) => Err(e.into()),
    }
}

/// On PostgreSQL, serialises changes that depend on the number of masters (under
/// READ COMMITTED two concurrent demotions could each still see two masters).
/// SQLite already runs one writer at a time.
pub async fn lock_master_changes(tx: &mut WriteTx) -> ApiResult<()> {
    super::advisory_xact_locks(tx, &[MASTER_CHANGES_LOCK]).await
}

/// The advisory lock of [`lock_master_changes`].
const MASTER_CHANGES_LOCK: i64 = 7_270_001;

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish()
    }
}

/// A page of users after the id `after` whose username or address matches the
/// LIKE `pattern` (admin listing).
pub async fn list_page(db: &Db, after: Uuid, pattern: &str, limit: u32) -> ApiResult<Vec<UserRow>> {
    q!(
        db,
        all,
        r#"SELECT id AS "id: Id", username, email, display_name, password_hash, role,
           email_verified AS "email_verified: Flag", created_at AS "created_at: Millis",
           updated_at AS "updated_at: Millis" FROM users
           WHERE id > $1 AND (username LIKE $2 ESCAPE '\' OR email LIKE $2 ESCAPE '\')
           ORDER BY id LIMIT $3"#,
        Id(after),
        pattern,
        i64::from(limit) + 1
        => |r| user_row!(r)
    )
    .into_iter()
    .map(|r| r.map_err(ApiError::from))
    .collect()
}

/// A page of verified users whose username matches the LIKE `pattern`, after the
/// username `after`, in username order (user search).
pub async fn search_page(
    db: &Db,
    pattern: &str,
    after: &str,
    limit: u32,
) -> ApiResult<Vec<UserRow>> {
    q!(
        db,
        all,
        r#"SELECT id AS "id: Id", username, email, display_name, password_hash, role,
           email_verified AS "email_verified: Flag", created_at AS "created_at: Millis",
           updated_at AS "updated_at: Millis" FROM users
           WHERE username LIKE $1 ESCAPE '\' AND email_verified = TRUE AND username > $2
           ORDER BY username LIMIT $3"#,
        pattern,
        after,
        i64::from(limit) + 1
        => |r| user_row!(r)
    )
    .into_iter()
    .map(|r| r.map_err(ApiError::from))
    .collect()
}

/// Sets `user`'s role unless that would demote the last master; whether it did.
pub async fn set_role(tx: &mut WriteTx, user: Uuid, role: Role, now: i64) -> ApiResult<bool> {
    Ok(q!(
        tx,
        execute,
        "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3 AND
         (role <> 'master' OR $1 = 'master' OR (SELECT COUNT(*) FROM users WHERE role = 'master') > 1)",
        role.as_str(),
        Millis(now),
        Id(user)
    ) == 1)
}

/// Sets (or with `None` removes) `user`'s display name.
pub async fn set_display_name(
    tx: &mut WriteTx,
    user: Uuid,
    name: Option<&str>,
    now: i64,
) -> ApiResult<()> {
    q!(
        tx,
        execute,
        "UPDATE users SET display_name = $1, updated_at = $2 WHERE id = $3",
        name,
        Millis(now),
        Id(user)
    );
    Ok(())
}

/// Sets `user`'s address (unverified until verified again).
pub async fn set_email(tx: &mut WriteTx, user: Uuid, email: &Email, now: i64) -> ApiResult<()> {
    q!(
        tx,
        execute,
        "UPDATE users SET email = $1, email_verified = FALSE, updated_at = $2 WHERE id = $3",
        email.as_str(),
        Millis(now),
        Id(user)
    );
    Ok(())
}

/// Sets `user`'s password hash.
pub async fn set_password(tx: &mut WriteTx, user: Uuid, hash: &str, now: i64) -> ApiResult<()> {
    q!(
        tx,
        execute,
        "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
        hash,
        Millis(now),
        Id(user)
    );
    Ok(())
}

/// Deletes `user` unless they are the last master; whether it did. Their rooms'
/// membership epochs move first, so posts racing the deletion re-check; each
/// room is locked so, one at a time in the order of their ids, the order every
/// other path that locks several rooms keeps (one `UPDATE … WHERE id IN` locked
/// them in whatever order its plan visited them, and on PostgreSQL could
/// deadlock with a block locking two of the same rooms).
pub async fn delete(tx: &mut WriteTx, user: Uuid) -> ApiResult<bool> {
    let rooms = q!(
        tx,
        all,
        r#"SELECT id AS "id: Id" FROM rooms WHERE id IN (SELECT room_id FROM room_members WHERE user_id = $1)
           OR id IN (SELECT room_id FROM invitations WHERE invitee_id = $1 OR inviter_id = $1)
           ORDER BY id"#,
        Id(user)
        => |r| r.id.0
    );
    for room in rooms {
        q!(
            tx,
            execute,
            "UPDATE rooms SET member_epoch = member_epoch + 1 WHERE id = $1",
            Id(room)
        );
    }
    Ok(q!(
        tx,
        execute,
        "DELETE FROM users WHERE id = $1 AND (role <> 'master' OR (SELECT COUNT(*) FROM users WHERE role = 'master') > 1)",
        Id(user)
    ) == 1)
}

/// How many masters exist.
pub async fn master_count(db: &Db) -> ApiResult<i64> {
    Ok(q!(
        db,
        one,
        r#"SELECT COUNT(*) AS "n!: i64" FROM users WHERE role = 'master'"#
        => |r| r.n
    ))
}

/// A stored role. Anything else in the column is a corrupt row: an error (500,
/// logged with an id), never a silent `user`.
pub fn parse_role(s: &str) -> ApiResult<Role> {
    match s {
        "master" => Ok(Role::Master),
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        other => Err(ApiError::internal(format!(
            "corrupt row: unknown role {other:?}"
        ))),
    }
}
