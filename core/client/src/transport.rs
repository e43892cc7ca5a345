//! [`Client`]: the relay's HTTP API as typed async methods (the methods are in
//! [`crate::routes`]), with the session's tokens, refresh, timeouts and retries.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sotto_core::api::{Problem, RefreshRequest, TokenResponse, User};
use sotto_engine::auth::{Access, Issued, Refreshed, Tokens as EngineTokens};
use tokio::sync::Notify;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Timeouts and retries of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time to establish a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time for a whole request and its answer. Uploads get this plus one
    /// second per 64 KiB; downloads get this much between two chunks.
    pub request_timeout: Duration,
    /// Attempts for an idempotent call (GET, PUT, DELETE, and message posts,
    /// which are idempotent on their `client_id`); other calls are retried only
    /// when the request provably never left (connection refused).
    pub max_attempts: u32,
    /// First back-off delay; doubled on each retry, with jitter.
    pub backoff: Duration,
    /// Longest back-off delay (a `Retry-After` is honoured up to this too).
    pub max_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_attempts: 4,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The session: the engine's tokens (when to refresh, one refresh at a
/// time, what a 401 means) and the user they belong to.
#[derive(Default)]
struct TokenState {
    auth: EngineTokens,
    user: Option<User>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    options: ClientOptions,
    tokens: Mutex<TokenState>,
    /// Woken when a refresh ends (callers the engine told to join it).
    refreshed: Notify,
    /// The clock the engine's token deadlines count from.
    origin: Instant,
}

/// A connection to one relay: every route of the API as a typed method, built on
/// the `sotto_core::api` wire types (so relay and SDK cannot drift).
///
/// Cheap to clone (shared). After [`Client::login`] it holds the session's
/// tokens and refreshes the access token by itself (rotating the refresh
/// token; one refresh at a time). Errors carry the relay's problem `code` and
/// `Retry-After` ([`Error::code`], [`Error::retry_after`]).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

/// Whether a call may be sent again after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Safe to repeat (GET/PUT/DELETE, posts with a `client_id`).
    Idempotent,
    /// Repeat only if the request never left.
    Once,
}

/// Whether a call carries the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// `Authorization: Bearer`.
    Bearer,
    /// A public route.
    Public,
}

impl Client {
    /// A client for the relay at `base_url` (e.g. `http://127.0.0.1:8080`), with
    /// default [`ClientOptions`].
    pub fn new(base_url: &str) -> Result<Self> {
        Self::with_options(base_url, ClientOptions::default())
    }

    /// A client with explicit timeouts and retries.
    pub fn with_options(base_url: &str, options: ClientOptions) -> Result<Self> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Protocol(format!(
                "relay URL must be http(s)://, got {base}"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("sotto-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Network(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                options,
                tokens: Mutex::new(TokenState::default()),
                refreshed: Notify::new(),
                origin: Instant::now(),
            }),
        })
    }

    /// The relay's base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The WebSocket URL (`ws(s)://.../api/v1/ws`).
    pub fn ws_url(&self) -> String {
        let base = &self.inner.base;
        let rest = base
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
            .unwrap_or_else(|| base.clone());
        format!("{rest}/api/v1/ws")
    }

    pub(crate) fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, TokenState> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Milliseconds on the engine's clock.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The logged-in user (as of the last login or refresh), if any.
    pub async fn user(&self) -> Option<User> {
        self.tokens().user.clone()
    }

    /// Whether the client holds a session.
    pub async fn is_logged_in(&self) -> bool {
        self.tokens().auth.is_logged_in()
    }

    pub(crate) async fn set_tokens(&self, t: TokenResponse) -> User {
        let now = self.now_ms();
        let (issued, user) = issued(t);
        let mut tokens = self.tokens();
        tokens.auth.logged_in(now, issued);
        tokens.user = Some(user.clone());
        user
    }

    pub(crate) async fn take_refresh_token(&self) -> Option<Zeroizing<String>> {
        let mut tokens = self.tokens();
        tokens.user = None;
        tokens.auth.logout()
    }

    /// A valid access token, refreshed first if it is due. One refresh at a
    /// time (the engine's rule): concurrent callers wait for it and then use
    /// its result.
    pub async fn access_token(&self) -> Result<Zeroizing<String>> {
        self.until_token(|auth, now| auth.access(now)).await
    }

    /// After a 401 with a token we thought valid: refreshes, unless another
    /// caller already replaced the token `used`; the token to retry with.
    pub(crate) async fn refresh_after_401(&self, used: &str) -> Result<Zeroizing<String>> {
        let mut first = true;
        self.until_token(|auth, now| {
            // Once: after that refresh (or the one joined), the current token.
            if std::mem::take(&mut first) {
                auth.rejected(used)
            } else {
                auth.access(now)
            }
        })
        .await
    }

    /// Asks the engine (`ask`) until it hands out a token: refreshes when it
    /// says this caller refreshes, waits for the refresh in flight when it
    /// says join.
    async fn until_token(
        &self,
        mut ask: impl FnMut(&mut EngineTokens, u64) -> Access,
    ) -> Result<Zeroizing<String>> {
        loop {
            // Registered before asking: a refresh that ends after it still wakes this.
            let ended = self.inner.refreshed.notified();
            let access = {
                let now = self.now_ms();
                ask(&mut self.tokens().auth, now)
            };
            match access {
                Access::Use(token) => return Ok(token),
                Access::LoggedOut => return Err(Error::NotLoggedIn),
                Access::Join => ended.await,
                Access::Refresh { ticket, refresh } => {
                    self.refresh_detached(ticket, refresh).await?
                }
            }
        }
    }

    /// Runs the refresh in a task of its own: if the caller is dropped (a
    /// timeout, a `select!`), the refresh still completes and its rotated
    /// refresh token is kept; losing it would make the next refresh present a
    /// spent token, which revokes the session.
    async fn refresh_detached(&self, ticket: u64, refresh: Zeroizing<String>) -> Result<()> {
        let me = self.clone();
        tokio::spawn(async move {
            // Reports the refresh ended however the task ends (a cancelled or
            // panicking task too): a ticket left in flight would make every
            // later caller wait for it forever.
            let mut report = Report {
                client: &me,
                ticket,
                outcome: Some((Refreshed::Failed, None)),
            };
            let (outcome, user, answer) = match me.post_refresh(&refresh).await {
                Ok(t) => {
                    let (issued, user) = issued(t);
                    (Refreshed::Tokens(issued), Some(user), Ok(()))
                }
                Err(e) if e.status() == Some(401) => {
                    (Refreshed::Revoked, None, Err(Error::NotLoggedIn))
                }
                Err(e) => (Refreshed::Failed, None, Err(e)),
            };
            report.outcome = Some((outcome, user));
            drop(report);
            answer
        })
        .await
        .map_err(|e| Error::Network(format!("token refresh failed: {e}")))?
    }

    /// `POST /auth/refresh` with `refresh`. Not idempotent: a refresh token is
    /// single-use, and re-presenting a spent one revokes the session. Only a
    /// request that never left is repeated.
    async fn post_refresh(&self, refresh: &str) -> Result<TokenResponse> {
        let body = RefreshRequest {
            refresh_token: refresh.to_owned(),
        };
        let url = format!("{}/api/v1/auth/refresh", self.inner.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .inner
                .http
                .post(&url)
                .timeout(self.inner.options.request_timeout)
                .header(header::CONTENT_TYPE, "application/json")
                .body(json(&body)?)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return decode(r).await,
                Ok(r) => {
                    let ra = retry_after(&r);
                    return Err(problem_of(r, ra).await);
                }
                Err(e) if e.is_connect() && attempt < self.inner.options.max_attempts => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(e) => return Err(Error::Network(e.to_string())),
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let o = &self.inner.options;
        let exp = o.backoff.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(o.max_backoff);
        // Full jitter in [capped/2, capped].
        let r = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
        capped / 2 + capped / 2 * r / 1000
    }

    /// Sends one request (with retries) and returns the successful answer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send<Q: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: Option<&Q>,
        body: Option<Vec<u8>>,
        auth: Auth,
        retry: Retry,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response> {
        let url = format!("{}{}", self.inner.base, path);
        let max = self.inner.options.max_attempts.max(1);
        let mut refreshed = false;
        // The token a 401 was answered with, to retry with once.
        let mut retry_token: Option<Zeroizing<String>> = None;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = self
                .inner
                .http
                .request(method.clone(), &url)
                .timeout(timeout.unwrap_or(self.inner.options.request_timeout));
            if let Some(q) = query {
                req = req.query(q);
            }
            if let Some(b) = &body {
                req = req
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(b.clone());
            }
            let token = match (auth, retry_token.take()) {
                (Auth::Bearer, Some(t)) => Some(t),
                (Auth::Bearer, None) => Some(self.access_token().await?),
                (Auth::Public, _) => None,
            };
            if let Some(t) = &token {
                req = req.bearer_auth(t.as_str());
            }
            let res = match req.send().await {
                Ok(res) => res,
                Err(e) => {
                    let may_retry = attempt < max && (retry == Retry::Idempotent || e.is_connect());
                    if may_retry {
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(Error::Network(e.to_string()));
                }
            };
            let status = res.status();
            if status.is_success() {
                return Ok(res);
            }
            if status == StatusCode::UNAUTHORIZED
                && !refreshed
                && let Some(t) = &token
            {
                refreshed = true;
                attempt -= 1;
                retry_token = Some(self.refresh_after_401(t).await?);
                continue;
            }
            let transient = matches!(status.as_u16(), 429 | 502 | 503 | 504);
            let retry_after = retry_after(&res);
            if transient && attempt < max && (retry == Retry::Idempotent || status == 429) {
                let wait = retry_after.unwrap_or_default().max(self.backoff(attempt));
                if wait <= self.inner.options.max_backoff {
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Err(problem_of(res, retry_after).await);
        }
    }

    /// A JSON call with a JSON answer.
    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        auth: Auth,
        retry: Retry,
    ) -> Result<T> {
        let body = body.map(json).transpose()?;
        decode(
            self.send(method, path, None::<&()>, body, auth, retry, None)
                .await?,
        )
        .await
    }

    /// A GET with a query string and a JSON answer.
    pub(crate) async fn get_query<Q: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Q,
        auth: Auth,
    ) -> Result<T> {
        decode(
            self.send(
                Method::GET,
                path,
                Some(query),
                None,
                auth,
                Retry::Idempotent,
                None,
            )
            .await?,
        )
        .await
    }

    /// A JSON call whose answer has no body we need.
    pub(crate) async fn call_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        auth: Auth,
        retry: Retry,
    ) -> Result<()> {
        let body = body.map(json).transpose()?;
        self.send(method, path, None::<&()>, body, auth, retry, None)
            .await?;
        Ok(())
    }

    /// The underlying HTTP client (streaming uploads and downloads).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }
}

/// Hands a refresh's end to the engine when dropped, and wakes the callers
/// that joined it.
struct Report<'a> {
    client: &'a Client,
    ticket: u64,
    outcome: Option<(Refreshed, Option<User>)>,
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        let Some((outcome, user)) = self.outcome.take() else {
            return;
        };
        let now = self.client.now_ms();
        {
            let mut tokens = self.client.tokens();
            // The user only from a refresh that counted (not one a login overtook).
            if tokens.auth.refreshed(now, self.ticket, outcome) {
                if user.is_some() {
                    tokens.user = user;
                } else if !tokens.auth.is_logged_in() {
                    tokens.user = None;
                }
            }
        }
        self.client.inner.refreshed.notify_waiters();
    }
}

/// A token answer as the engine's [`Issued`], and its user.
fn issued(t: TokenResponse) -> (Issued, User) {
    (
        Issued {
            access: Zeroizing::new(t.access_token),
            refresh: Zeroizing::new(t.refresh_token),
            expires_in_s: t.expires_in,
        },
        t.user,
    )
}

pub(crate) fn json<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|e| Error::Protocol(e.to_string()))
}

pub(crate) async fn decode<T: DeserializeOwned>(res: reqwest::Response) -> Result<T> {
    let bytes = res
        .bytes()
        .await
        .map_err(|e| Error::Network(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Protocol(e.to_string()))
}

fn retry_after(res: &reqwest::Response) -> Option<Duration> {
    res.headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The error of a non-2xx answer: its problem body, or one made from the status.
pub(crate) async fn problem_of(res: reqwest::Response, retry_after: Option<Duration>) -> Error {
    let status = res.status();
    let bytes = res.bytes().await.unwrap_or_default();
    let problem = serde_json::from_slice::<Problem>(&bytes).unwrap_or_else(|_| {
        Problem::new(
            status.as_u16(),
            status
                .canonical_reason()
                .map_or("http_error", |_| "http_error"),
            status.canonical_reason().unwrap_or("error"),
        )
    });
    Error::Relay {
        problem: Box::new(problem),
        retry_after,
    }
}
