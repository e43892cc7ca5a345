//! The audit log of security events, stored in the database and readable by
//! admins at `GET /api/v1/admin/audit`.

use std::net::IpAddr;

use uuid::Uuid;

use crate::db::{Db, now_ms};

pub mod event {
    pub const LOGIN_OK: &str = "login_ok";
    pub const LOGIN_FAILED: &str = "login_failed";
    pub const LOGOUT: &str = "logout";
    pub const REGISTER: &str = "register";
    pub const EMAIL_VERIFIED: &str = "email_verified";
    pub const PASSWORD_RESET_REQUESTED: &str = "password_reset_requested";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const REFRESH_REUSE: &str = "refresh_reuse";
    pub const ROLE_CHANGED: &str = "role_changed";
    pub const USER_CREATED: &str = "user_created";
    pub const USER_DELETED: &str = "user_deleted";
    pub const EMAIL_CHANGED: &str = "email_changed";
    pub const MASTER_CREATED: &str = "master_created";
    pub const DEVICE_ADDED: &str = "device_added";
    pub const DEVICE_REVOKED: &str = "device_revoked";
    pub const IDENTITY_REPLACED: &str = "identity_replaced";
    pub const ROOM_DELETED: &str = "room_deleted";
    pub const PASSWORD_CHECK_FAILED: &str = "password_check_failed";
}

/// Records one event. Failures are logged, never surfaced: auditing must not
/// turn a successful operation into an error.
pub async fn record(
    db: &Db,
    event: &str,
    actor: Option<Uuid>,
    target: Option<Uuid>,
    ip: Option<IpAddr>,
    detail: Option<&str>,
) {
    let res = crate::store::audit::insert(
        db.writer(),
        now_ms(),
        event,
        actor,
        target,
        ip.map(|i| i.to_string()),
        detail,
    )
    .await;
    if let Err(e) = res {
        tracing::error!(code = e.code, event, "cannot write the audit log");
    }
    tracing::info!(target: "audit", event, actor = ?actor, subject = ?target, ip = ?ip, "security event");
}
