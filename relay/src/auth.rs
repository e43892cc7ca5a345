//! Password hashing, access tokens (JWT, HS256), and [`authenticate`]: who a
//! token belongs to. The extractors that put this in handlers' signatures
//! (`AuthUser`, `AdminUser`, `AuthUserRow`) are in `extract.rs`.

use std::path::Path;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use sotto_core::api::problem::codes;
use sotto_core::api::users::Role;
use uuid::Uuid;

use crate::db::Db;
use crate::error::{ApiError, ApiResult};

const AUDIENCE: &str = "sotto-relay";

/// At most this many Argon2 computations (19 MiB each) run at once, so a flood of
/// logins queues instead of exhausting memory with blocking threads.
fn argon2_permits() -> &'static tokio::sync::Semaphore {
    static SEM: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SEM.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        tokio::sync::Semaphore::new(cores * 2)
    })
}

/// Runs one Argon2 computation on the blocking pool, within the concurrency cap.
async fn argon2_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    let _permit = argon2_permits()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)
}

/// Hashes a password with Argon2id (m = 19 MiB, t = 2, p = 1: OWASP's
/// recommendation) on the blocking pool.
pub async fn hash_password(password: String) -> ApiResult<String> {
    let password = SecretString::from(password);
    argon2_blocking(move || {
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes())
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await?
}

/// Verifies a password against a PHC string on the blocking pool. Malformed
/// hashes verify as false.
pub async fn verify_password(password: String, phc: String) -> ApiResult<bool> {
    let password = SecretString::from(password);
    argon2_blocking(move || {
        Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), phc.as_str())
            .is_ok()
    })
    .await
}

/// Access-token claims.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub sid: Uuid,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Loads the configured secret, or the one in `<data dir>/jwt.key`, generating it
    /// (0600) on first start.
    pub fn load(configured: Option<&SecretString>, data_dir: &Path) -> std::io::Result<Self> {
        if let Some(s) = configured {
            if s.expose_secret().len() < 32 {
                return Err(std::io::Error::other(
                    "SOTTO_JWT_SECRET must be at least 32 bytes",
                ));
            }
            return Ok(Self::new(s.expose_secret().as_bytes()));
        }
        crate::fsutil::create_private_dir(data_dir)?;
        let path = data_dir.join("jwt.key");
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => Ok(Self::new(&bytes)),
            Ok(_) => Err(std::io::Error::other(format!(
                "{} is shorter than 32 bytes",
                path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 64];
                getrandom::fill(&mut key).map_err(std::io::Error::other)?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                std::io::Write::write_all(&mut opts.open(&path)?, &key)?;
                tracing::info!(path = %path.display(), "generated a new JWT signing key");
                Ok(Self::new(&key))
            }
            Err(e) => Err(e),
        }
    }

    pub fn issue(&self, user: Uuid, session: Uuid, ttl_secs: u64) -> ApiResult<String> {
        let now = crate::db::now_ms() / 1000;
        let claims = Claims {
            sub: user,
            sid: session,
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
            jti: Uuid::new_v4(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    pub fn verify(&self, token: &str) -> ApiResult<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized(codes::TOKEN_EXPIRED, "the access token has expired")
                }
                _ => ApiError::unauthorized(codes::INVALID_TOKEN, "the access token is invalid"),
            })
    }
}

/// The authenticated caller: the JWT verified, its session live and the user's
/// current role read fresh on every request (so role changes, revocations and
/// deletions take effect at once). Carries ids and the role, nothing secret.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub role: Role,
    pub session_id: Uuid,
}

impl AuthUser {
    pub fn id(&self) -> Uuid {
        self.user_id
    }
    pub fn role(&self) -> Role {
        self.role
    }
    /// Whether the caller's role is at least `min` (403 otherwise).
    pub fn require(&self, min: Role) -> ApiResult<()> {
        if self.role >= min {
            Ok(())
        } else {
            Err(ApiError::forbidden("your role does not allow this"))
        }
    }
}

/// Authenticates an access token: a valid HS256 JWT for this relay whose session
/// is live and whose user still exists. Used by the `Authorization` extractor and
/// by anything else that receives a token (the WebSocket `auth` frame).
pub async fn authenticate(jwt: &JwtKeys, db: &Db, token: &str) -> ApiResult<AuthUser> {
    let claims = jwt.verify(token.trim())?;
    match crate::store::sessions::live_session_role(db, claims.sid, claims.sub).await? {
        Some(role) => Ok(AuthUser {
            user_id: claims.sub,
            role,
            session_id: claims.sid,
        }),
        None => Err(ApiError::unauthorized(
            codes::INVALID_TOKEN,
            "the session has ended",
        )),
    }
}

pub use crate::store::users::parse_role;
