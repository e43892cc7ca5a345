//! Accounts: the `users` table.

use uuid::Uuid;

use sotto_core::api::problem::codes;
use sotto_core::api::users::{PublicUser, Role, User};

use super::Writer;
use crate::auth::parse_role;
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
    Ok(sqlx::query(
        "UPDATE users SET email_verified = 1, updated_at = $1 WHERE id = $2 AND email = $3",
    )
    .bind(now)
    .bind(user.to_string())
    .bind(email)
    .execute(w.pool())
    .await?
    .rows_affected()
        == 1)
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
    Ok(sqlx::query(
        "UPDATE users SET password_hash = $1, updated_at = $2, email_verified = 1 WHERE id = $4 AND email = $3",
    )
    .bind(password_hash)
    .bind(now)
    .bind(email)
    .bind(user.to_string())
    .execute(w.pool())
    .await?
    .rows_affected()
        == 1)
}

pub const USER_COLUMNS: &str = "id, username, email, display_name, password_hash, role, email_verified, created_at, updated_at";

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

impl UserRow {
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
    Ok(sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(db.read())
    .await?)
}

/// Finds a user by username or e-mail (both stored in lower case).
pub async fn find_by_login(db: &Db, login: &str) -> ApiResult<Option<UserRow>> {
    let login = login.trim().to_lowercase();
    if login.chars().any(char::is_control) {
        return Ok(None); // cannot name an account (and PostgreSQL refuses NUL in text)
    }
    Ok(sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = $1 OR email = $1"
    )))
    .bind(login)
    .fetch_optional(db.read())
    .await?)
}

/// The account whose address is exactly `email` (not a username that looks like one).
pub async fn find_by_email(db: &Db, email: &Email) -> ApiResult<Option<UserRow>> {
    Ok(find_by_login(db, email.as_str())
        .await?
        .filter(|u| u.email == email.as_str()))
}

pub async fn username_exists(db: &Db, username: &Username) -> ApiResult<bool> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users WHERE username = $1")
            .bind(username.as_str())
            .fetch_one(db.read())
            .await?
            > 0,
    )
}

pub async fn email_exists(db: &Db, email: &Email) -> ApiResult<bool> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_one(db.read())
            .await?
            > 0,
    )
}

pub struct NewUser<'a> {
    pub username: &'a Username,
    pub email: &'a Email,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub email_verified: bool,
}

/// The one `INSERT INTO users` statement, with `on_conflict` (empty, or an
/// `ON CONFLICT ... DO NOTHING` clause): the row, or `None` when the clause
/// skipped it.
async fn insert_row(
    w: Writer<'_>,
    u: NewUser<'_>,
    on_conflict: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         {on_conflict} RETURNING {USER_COLUMNS}"
    )))
    .bind(Uuid::now_v7().to_string())
    .bind(u.username.as_str())
    .bind(u.email.as_str())
    .bind(u.display_name)
    .bind(u.password_hash)
    .bind(u.role.as_str())
    .bind(i64::from(u.email_verified))
    .bind(now_ms())
    .fetch_optional(w.pool())
    .await
}

fn username_taken() -> ApiError {
    ApiError::conflict(codes::USERNAME_TAKEN, "this username is taken")
}

/// Inserts a user; a duplicate username or e-mail is a 409 with the matching code.
pub async fn insert(w: Writer<'_>, u: NewUser<'_>) -> ApiResult<UserRow> {
    let username = u.username;
    match insert_row(w, u, "").await {
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
    match insert_row(w, u, "ON CONFLICT (email) DO NOTHING").await {
        Ok(row) => Ok(row),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(username_taken()),
        Err(e) => Err(e.into()),
    }
}

/// On PostgreSQL, serialises changes that depend on the number of masters (under
/// READ COMMITTED two concurrent demotions could each still see two masters).
/// SQLite already runs one writer at a time.
pub async fn lock_master_changes(db: &Db, tx: &mut WriteTx) -> ApiResult<()> {
    if db.backend == crate::db::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7270001)")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for UserRow {
    fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        let role: String = row.try_get("role")?;
        Ok(Self {
            id: crate::ids::uuid_column(row, "id")?,
            username: row.try_get("username")?,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            password_hash: row.try_get("password_hash")?,
            role: parse_role(&role).map_err(|_| crate::db::corrupt("role", &role))?,
            email_verified: crate::db::bool_column(row, "email_verified")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

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
pub async fn list_page(db: &Db, after: &str, pattern: &str, limit: u32) -> ApiResult<Vec<UserRow>> {
    Ok(sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id > $1 AND (username LIKE $2 ESCAPE '\\' OR email LIKE $2 ESCAPE '\\') \
         ORDER BY id LIMIT $3"
    )))
    .bind(after)
    .bind(pattern)
    .bind(i64::from(limit) + 1)
    .fetch_all(db.read())
    .await?)
}

/// A page of verified users whose username matches the LIKE `pattern`, after the
/// username `after`, in username order (user search).
pub async fn search_page(
    db: &Db,
    pattern: &str,
    after: &str,
    limit: u32,
) -> ApiResult<Vec<UserRow>> {
    Ok(sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username LIKE $1 ESCAPE '\\' AND email_verified = 1 AND username > $2 \
         ORDER BY username LIMIT $3"
    )))
    .bind(pattern)
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(db.read())
    .await?)
}

/// Sets `user`'s role unless that would demote the last master; whether it did.
pub async fn set_role(tx: &mut WriteTx, user: Uuid, role: Role, now: i64) -> ApiResult<bool> {
    Ok(sqlx::query(
        "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3 AND \
         (role <> 'master' OR $1 = 'master' OR (SELECT COUNT(*) FROM users WHERE role = 'master') > 1)",
    )
    .bind(role.as_str())
    .bind(now)
    .bind(user.to_string())
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// Sets (or with `None` removes) `user`'s display name.
pub async fn set_display_name(
    tx: &mut WriteTx,
    user: Uuid,
    name: Option<&str>,
    now: i64,
) -> ApiResult<()> {
    sqlx::query("UPDATE users SET display_name = $1, updated_at = $2 WHERE id = $3")
        .bind(name)
        .bind(now)
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sets `user`'s address (unverified until verified again).
pub async fn set_email(tx: &mut WriteTx, user: Uuid, email: &Email, now: i64) -> ApiResult<()> {
    sqlx::query("UPDATE users SET email = $1, email_verified = 0, updated_at = $2 WHERE id = $3")
        .bind(email.as_str())
        .bind(now)
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sets `user`'s password hash.
pub async fn set_password(tx: &mut WriteTx, user: Uuid, hash: &str, now: i64) -> ApiResult<()> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes `user` unless they are the last master; whether it did. Their rooms'
/// membership epochs move first, so posts racing the deletion re-check.
pub async fn delete(tx: &mut WriteTx, user: Uuid) -> ApiResult<bool> {
    sqlx::query(
        "UPDATE rooms SET member_epoch = member_epoch + 1 WHERE id IN (SELECT room_id FROM room_members WHERE user_id = $1)",
    )
    .bind(user.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(sqlx::query(
        "DELETE FROM users WHERE id = $1 AND (role <> 'master' OR (SELECT COUNT(*) FROM users WHERE role = 'master') > 1)",
    )
    .bind(user.to_string())
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// How many masters exist.
pub async fn master_count(db: &Db) -> ApiResult<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users WHERE role = 'master'")
            .fetch_one(db.read())
            .await?,
    )
}
