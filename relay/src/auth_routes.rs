//! `/api/v1/auth/...`: register, verify e-mail, login, refresh (rotating,
//! reuse-detecting), logout, forgot/reset password, me, check-username.
//!
//! Answers that could reveal whether an address exists (register, resend,
//! forgot) are identical either way, and e-mail goes out off the request path.

use crate::extract::ClientIp;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use sotto_core::api::auth::{
    CheckUsernameQuery, CheckUsernameResponse, ForgotPasswordRequest, LoginRequest, LogoutRequest,
    RefreshRequest, RegisterRequest, ResendVerificationRequest, ResetPasswordRequest,
    TokenResponse, VerifyEmailRequest,
};
use sotto_core::api::problem::{Problem, codes};
use sotto_core::api::users::{Role, User};
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::{self, event};
use crate::auth::{self, AuthUser};
use crate::db::{now_ms, rfc3339};
use crate::digest::token_hash;
use crate::error::{ApiError, ApiResult};
use crate::extract::AuthUserRow;
use crate::json::ApiJson;
use crate::mail::{send_later, send_verification};
use crate::state::AppState;
use crate::store::{self, sessions};
use crate::tokens::{
    Purpose, RESET_TTL_MS, consume_email_token, create_email_token, new_opaque_token,
};
use crate::users::{self, NewUser, UserRow};
use crate::validate::{Email, Username, check_new_password};

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = User), (status = 400, body = Problem), (status = 409, body = Problem), (status = 429, body = Problem)))]
/// Create an account and send a verification e-mail. The answer for an address that is
/// already registered is the same as for a new one (that address gets a notice instead).
pub async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    state.limits.check_ip(client)?;
    // Per address too: an address that is registered already gets a notice mail,
    // which must not become a way to flood its owner.
    state.limits.check_account("register", &req.email)?;
    let username = Username::parse(&req.username)?;
    let email = Email::parse(&req.email)?;
    check_new_password(&req.password)?;
    // Hash first, in every case, so the answer's timing does not depend on the address.
    let password_hash = auth::hash_password(req.password).await?;
    if crate::store::users::username_exists(&state.db, &username).await? {
        return Err(ApiError::conflict(
            codes::USERNAME_TAKEN,
            "this username is taken",
        ));
    }
    let verified = !state.config.require_email_verification;
    // One statement whether or not the address is registered; what differs (a
    // verification token and mail, or a notice mail) happens off the request path.
    let inserted = crate::store::users::insert_unless_email_taken(
        state.db.writer(),
        NewUser {
            username: &username,
            email: &email,
            password_hash,
            display_name: None,
            role: Role::User,
            email_verified: verified,
        },
    )
    .await?;
    let now = rfc3339(now_ms());
    let answer = match &inserted {
        Some(row) => row.to_api(),
        None => User {
            id: Uuid::now_v7(),
            username: username.as_str().to_string(),
            email: email.as_str().to_string(),
            display_name: None,
            role: Role::User,
            email_verified: verified,
            created_at: now.clone(),
            updated_at: now,
        },
    };
    let bg = state.clone();
    let ip = client;
    tokio::spawn(async move {
        let res = match inserted {
            Some(row) => after_register(&bg, &row, ip).await,
            None => {
                let link = format!("{}/reset-password", bg.mailer.public_url());
                send_later(
                    &bg.mailer,
                    email.as_str().to_string(),
                    "Someone tried to register with your address",
                    "Someone tried to create a Sotto account with this e-mail address, which already has one.\n\n\
                     If it was you, sign in instead, or reset your password from the sign-in page.\n\
                     If not, you can ignore this message.\n"
                        .to_string(),
                    link,
                );
                Ok(())
            }
        };
        if let Err(e) = res {
            tracing::error!(code = e.code, "registration follow-up failed");
        }
    });
    Ok((StatusCode::CREATED, Json(answer)))
}

/// What follows a registration, off the request path: the audit record and, when
/// required, the verification mail.
async fn after_register(state: &AppState, row: &UserRow, ip: std::net::IpAddr) -> ApiResult<()> {
    audit::record(
        &state.db,
        event::REGISTER,
        Some(row.uuid()),
        Some(row.uuid()),
        Some(ip),
        None,
    )
    .await;
    if !row.email_verified {
        send_verification(&state.mailer, &state.db, row.uuid(), &row.email).await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses((status = 200, body = User), (status = 400, body = Problem)))]
/// Verify an e-mail address with the token from the e-mailed link (single use, 24 h).
pub async fn verify_email(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<VerifyEmailRequest>,
) -> ApiResult<Json<User>> {
    let (user, email) = consume_email_token(&state.db, &req.token, Purpose::Verify).await?;
    if !store::users::mark_email_verified(state.db.writer(), user, &email, now_ms()).await? {
        return Err(ApiError::bad_request(
            codes::INVALID_TOKEN,
            "this link is for an address the account no longer uses",
        ));
    }
    audit::record(
        &state.db,
        event::EMAIL_VERIFIED,
        Some(user),
        Some(user),
        None,
        None,
    )
    .await;
    let row = crate::store::users::find_by_id(&state.db, user)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(row.to_api()))
}

#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "auth", request_body = ResendVerificationRequest,
    responses((status = 202), (status = 400, body = Problem), (status = 429, body = Problem)))]
/// Send the verification e-mail again. Always 202, whether or not the address exists.
pub async fn resend_verification(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(req): ApiJson<ResendVerificationRequest>,
) -> ApiResult<StatusCode> {
    let Some(email) = address_request(&state, client, "resend", &req.email)? else {
        return Ok(StatusCode::ACCEPTED);
    };
    // The lookup and whatever follows run off the request path: the answer and its
    // timing are the same whether or not the address is registered.
    let state = state.clone();
    tokio::spawn(async move {
        let res = async {
            if let Some(u) = crate::store::users::find_by_email(&state.db, &email).await?
                && !u.email_verified
            {
                send_verification(&state.mailer, &state.db, u.uuid(), &u.email).await?;
            }
            Ok::<_, ApiError>(())
        }
        .await;
        if let Err(e) = res {
            tracing::error!(code = e.code, "resending a verification mail failed");
        }
    });
    Ok(StatusCode::ACCEPTED)
}

/// The common start of the "always 202" address requests (resend, forgot): rate
/// limits per IP and per address, then the address, or `None` when it cannot be one
/// (answered 202 like any other, so nothing is revealed).
fn address_request(
    state: &AppState,
    client: std::net::IpAddr,
    scope: &str,
    raw: &str,
) -> ApiResult<Option<Email>> {
    state.limits.check_ip(client)?;
    state.limits.check_account(scope, raw)?;
    Ok(Email::parse(raw).ok())
}

async fn start_session(state: &AppState, user: &UserRow) -> ApiResult<TokenResponse> {
    let session = Uuid::now_v7();
    sessions::create(state.db.writer(), session, user.id, now_ms()).await?;
    issue_pair(state, user, session).await
}

async fn issue_pair(state: &AppState, user: &UserRow, session: Uuid) -> ApiResult<TokenResponse> {
    let refresh = new_opaque_token()?;
    let now = now_ms();
    let ttl = i64::try_from(state.config.refresh_token_ttl)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000);
    sessions::add_refresh_token(
        state.db.writer(),
        &token_hash(&refresh),
        session,
        now,
        now.saturating_add(ttl),
    )
    .await?;
    let access = state
        .jwt
        .issue(user.uuid(), session, state.config.access_token_ttl)?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: state.config.access_token_ttl,
        user: user.to_api(),
    })
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 429, body = Problem)))]
/// Sign in with username or e-mail. 403 `email_not_verified` when verification is required.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    state.limits.check_ip(client)?;
    let bad = || {
        ApiError::unauthorized(
            codes::INVALID_CREDENTIALS,
            "wrong username, e-mail or password",
        )
    };
    if req.password.len() > 4 * crate::validate::PASSWORD_MAX_CHARS
        || req.password.chars().count() > crate::validate::PASSWORD_MAX_CHARS
        || req.login.len() > 254
    {
        state.limits.check_login(None, &req.login, client)?;
        return Err(bad());
    }
    let user = crate::store::users::find_by_login(&state.db, &req.login).await?;
    state
        .limits
        .check_login(user.as_ref().map(UserRow::uuid), &req.login, client)?;
    // Verify against a dummy hash when there is no such account: same cost either way.
    let phc = user
        .as_ref()
        .map_or_else(|| state.dummy_hash.clone(), |u| u.password_hash.clone());
    let ok = auth::verify_password(req.password, phc).await?;
    let user = match (user, ok) {
        (Some(u), true) => u,
        (u, _) => {
            audit::record(
                &state.db,
                event::LOGIN_FAILED,
                None,
                u.map(|u| u.uuid()),
                Some(client),
                None,
            )
            .await;
            return Err(bad());
        }
    };
    if state.config.require_email_verification && !user.email_verified {
        return Err(ApiError::forbidden_code(
            codes::EMAIL_NOT_VERIFIED,
            "verify your e-mail address first",
        ));
    }
    state.limits.remember_login(user.uuid(), client);
    let pair = start_session(&state, &user).await?;
    audit::record(
        &state.db,
        event::LOGIN_OK,
        Some(user.uuid()),
        Some(user.uuid()),
        Some(client),
        None,
    )
    .await;
    Ok(Json(pair))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 429, body = Problem, description = "`rate_limited`: `--refresh-rate` per session (ten times that per client address) per minute")))]
/// Exchange a refresh token for a new pair. Each refresh token works once; presenting a
/// spent one revokes its whole session (all tokens descended from that login).
pub async fn refresh(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let invalid = || {
        ApiError::unauthorized(
            codes::INVALID_TOKEN,
            "the refresh token is invalid or expired",
        )
    };
    state.limits.check_refresh_ip(client)?;
    if req.refresh_token.len() > 256 {
        return Err(invalid());
    }
    let hash = token_hash(&req.refresh_token);
    let now = now_ms();
    let Some(token) = sessions::find_refresh_token(&state.db, &hash).await? else {
        return Err(invalid());
    };
    let session = token.session;
    // Before the token is spent, so a refused refresh keeps it usable.
    state.limits.check_refresh_session(session)?;
    // Spend it atomically: of two concurrent uses only one wins; the other is a reuse.
    let spent_now =
        !token.used && sessions::spend_refresh_token(state.db.writer(), &hash, now).await?;
    if !spent_now {
        sessions::revoke(state.db.writer(), session, now).await?;
        let owner = sessions::owner(&state.db, session).await?;
        if let Some(owner) = owner {
            state.presence.sessions_changed(owner);
        }
        audit::record(
            &state.db,
            event::REFRESH_REUSE,
            owner,
            owner,
            Some(client),
            Some(&session.to_string()),
        )
        .await;
        return Err(ApiError::unauthorized(
            codes::REFRESH_REUSED,
            "this refresh token was already used; the session is revoked",
        ));
    }
    if token.expires_at <= now {
        return Err(invalid());
    }
    let user = sessions::user_of_live(&state.db, session)
        .await?
        .ok_or_else(invalid)?;
    sessions::touch(state.db.writer(), session, now).await?;
    Ok(Json(issue_pair(&state, &user, session).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = LogoutRequest,
    responses((status = 204), (status = 401, body = Problem)), security(("bearer" = [])))]
/// End the session: its refresh tokens stop working.
pub async fn logout(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<LogoutRequest>,
) -> ApiResult<StatusCode> {
    let now = now_ms();
    // The caller's session, and the one the refresh token belongs to if it is the caller's.
    sessions::revoke_for_logout(
        state.db.writer(),
        me.id(),
        me.session_id,
        &token_hash(&req.refresh_token),
        now,
    )
    .await?;
    state.presence.sessions_changed(me.id());
    audit::record(
        &state.db,
        event::LOGOUT,
        Some(me.id()),
        Some(me.id()),
        None,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "auth", request_body = ForgotPasswordRequest,
    responses((status = 202), (status = 400, body = Problem), (status = 429, body = Problem)))]
/// Request a password-reset e-mail. Always 202, whether or not the address exists.
pub async fn forgot(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(req): ApiJson<ForgotPasswordRequest>,
) -> ApiResult<StatusCode> {
    let Some(email) = address_request(&state, client, "forgot", &req.email)? else {
        return Ok(StatusCode::ACCEPTED);
    };
    // Off the request path, as for resend.
    let ip = client;
    tokio::spawn(async move {
        if let Err(e) = send_reset(&state, &email, ip).await {
            tracing::error!(code = e.code, "sending a password-reset mail failed");
        }
    });
    Ok(StatusCode::ACCEPTED)
}

/// Sends a reset link to `email` if an account has that address.
async fn send_reset(state: &AppState, email: &Email, ip: std::net::IpAddr) -> ApiResult<()> {
    let Some(u) = crate::store::users::find_by_email(&state.db, email).await? else {
        return Ok(());
    };
    let token =
        create_email_token(&state.db, u.uuid(), &u.email, Purpose::Reset, RESET_TTL_MS).await?;
    let link = format!("{}/reset-password#token={token}", state.mailer.public_url());
    let body = format!(
        "Someone asked to reset the password of your Sotto account.\n\n\
         Open this link within an hour to choose a new password:\n\n{link}\n\n\
         If it was not you, ignore this message: your password stays the same.\n"
    );
    audit::record(
        &state.db,
        event::PASSWORD_RESET_REQUESTED,
        None,
        Some(u.uuid()),
        Some(ip),
        None,
    )
    .await;
    send_later(
        &state.mailer,
        u.email.clone(),
        "Reset your password",
        body,
        link,
    );
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "auth", request_body = ResetPasswordRequest,
    responses((status = 204), (status = 400, body = Problem)))]
/// Set a new password with the token from the e-mailed link (single use, 1 h). Every
/// session of the account is revoked.
pub async fn reset(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    // Check the new password before spending the token.
    check_new_password(&req.new_password)?;
    let (user, email) = consume_email_token(&state.db, &req.token, Purpose::Reset).await?;
    let hash = auth::hash_password(req.new_password).await?;
    // The link proves control of the address it was sent to, and is only good while
    // that is still the account's address.
    if !store::users::reset_password(state.db.writer(), user, &email, &hash, now_ms()).await? {
        return Err(ApiError::bad_request(
            codes::INVALID_TOKEN,
            "this link is for an address the account no longer uses",
        ));
    }
    users::revoke_sessions(&state, user, None).await?;
    crate::tokens::spend_email_tokens(&state.db, user).await?;
    audit::record(
        &state.db,
        event::PASSWORD_RESET,
        Some(user),
        Some(user),
        None,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401, body = Problem)), security(("bearer" = [])))]
/// The caller's own user.
pub async fn me(AuthUserRow(_, row): AuthUserRow) -> Json<User> {
    Json(row.to_api())
}

#[utoipa::path(get, path = "/api/v1/users/check-username", tag = "auth", params(CheckUsernameQuery),
    responses((status = 200, body = CheckUsernameResponse), (status = 400, body = Problem),
        (status = 429, body = Problem, description = "`rate_limited`: `--check-username-rate` per client address per minute")))]
/// Whether a username is valid and free.
pub async fn check_username(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Query(q): Query<CheckUsernameQuery>,
) -> ApiResult<Json<CheckUsernameResponse>> {
    state.limits.check_username_probe(client)?;
    let username = Username::parse(&q.username)?;
    Ok(Json(CheckUsernameResponse {
        available: !crate::store::users::username_exists(&state.db, &username).await?,
    }))
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]). Accounts and sessions: register, verify, login, refresh, logout, password reset, me, check-username.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(forgot))
        .routes(routes!(reset))
        .routes(routes!(me))
        .routes(routes!(check_username))
}
