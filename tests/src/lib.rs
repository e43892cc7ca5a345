//! Support for the workspace integration tests: a real relay on a real socket
//! (port 0) over a fresh database — a new SQLite directory, or a new database in
//! a real PostgreSQL cluster (`scripts/test-postgres`) — with e-mail going to a
//! real SMTP server on loopback ([`SmtpSink`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use sotto_core::api::auth::TokenResponse;
use sotto_core::api::messages::{Message, PostMessageRequest, PostMessageResponse};
use sotto_core::api::pagination::Page;
use sotto_core::api::rooms::{CreateRoomRequest, RoomDetails};
use sotto_relay::config::Config;
use sotto_relay::db::{Pool, WriteTx};
use sotto_relay::state::AppState;

pub mod dns;
pub mod fuzz;
pub mod process;
pub mod push;
pub mod upgrade;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Defines `mod sqlite` and `mod postgres`, each running the same test body.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::Backend::Postgres).await } )*
        }
    };
}

/// The base URL of the shared test PostgreSQL cluster, started on first use.
pub fn postgres_base_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(u) = std::env::var("SOTTO_TEST_PG_URL") {
            return u;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/test-postgres");
        let out = std::process::Command::new(script)
            .arg("start")
            .output()
            .expect("run scripts/test-postgres");
        assert!(
            out.status.success(),
            "cannot start PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
    .clone()
}

/// Creates a fresh, empty database and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let base = postgres_base_url();
    let name = format!("sotto_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{base}/{name}")
}

/// One e-mail received by the sink.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    /// The body, decoded from quoted-printable when the message says so.
    pub fn body(&self) -> String {
        let (head, body) = self.data.split_once("\r\n\r\n").unwrap_or(("", &self.data));
        if !head
            .to_ascii_lowercase()
            .contains("content-transfer-encoding: quoted-printable")
        {
            return body.to_string();
        }
        let soft = body.replace("=\r\n", "");
        let bytes = soft.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&soft[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The first link in the body that contains `needle`.
    pub fn link(&self, needle: &str) -> Option<String> {
        self.body()
            .split_whitespace()
            .find(|w| w.starts_with("http") && w.contains(needle))
            .map(str::to_string)
    }
    /// The token in a `...#token=...` link.
    pub fn token(&self, needle: &str) -> Option<String> {
        self.link(needle)?
            .split_once("#token=")
            .map(|(_, t)| t.to_string())
    }
}

/// A minimal, real SMTP server on loopback (RFC 5321 commands HELO/EHLO, MAIL,
/// RCPT, DATA, RSET, NOOP, QUIT) that keeps every message it accepts.
#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    notify: Arc<Notify>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Self {
            addr,
            mails: Arc::default(),
            notify: Arc::default(),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(stream).await;
                });
            }
        });
        sink
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"220 sink.test ESMTP ready\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let cmd = line.trim_end().to_string();
            let upper = cmd.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                w.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    .await?;
            } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                w.write_all(b"250 OK\r\n").await?;
            } else if upper.starts_with("MAIL FROM:") {
                from = cmd[10..].trim().to_string();
                to.clear();
                w.write_all(b"250 OK\r\n").await?;
            } else if upper.starts_with("RCPT TO:") {
                to.push(
                    cmd[8..]
                        .trim()
                        .trim_matches(|c| c == '<' || c == '>')
                        .to_string(),
                );
                w.write_all(b"250 OK\r\n").await?;
            } else if upper == "DATA" {
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                self.mails.lock().unwrap().push(Mail {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                self.notify.notify_waiters();
                w.write_all(b"250 OK queued\r\n").await?;
            } else if upper == "RSET" {
                w.write_all(b"250 OK\r\n").await?;
            } else if upper == "QUIT" {
                w.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            } else {
                w.write_all(b"502 Command not implemented\r\n").await?;
            }
        }
    }

    /// Every mail so far.
    pub fn all(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) for a mail to `to` whose data contains `needle`.
    pub async fn wait_for(&self, to: &str, needle: &str) -> Mail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.notify.notified();
            if let Some(m) = self
                .all()
                .into_iter()
                .rev()
                .find(|m| m.to.iter().any(|t| t == to) && m.data.contains(needle))
            {
                return m;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "no mail to {to} containing {needle:?}; got {:#?}",
                    self.all()
                );
            }
        }
    }
}

/// Copies the files of `from` into `to`, recursively.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Runs a plain-text `pg_dump` (`--inserts`) on the database at `url`: psql
/// meta-commands (lines starting with a backslash) are left out.
pub async fn run_postgres_script(url: &str, sql: &str) {
    let sql: String = sql
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// A running relay.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub smtp: SmtpSink,
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pub database_url: Option<String>,
    /// The metrics listener (`--metrics-listen`, here on a port of its own).
    pub metrics_addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Options for [`spawn_app_with`].
#[derive(Clone)]
pub struct AppOptions {
    pub rate_per_ip: u32,
    /// `--post-rate` (messages per user per second).
    pub post_rate: u32,
    pub rate_per_account: u32,
    pub require_email_verification: bool,
    pub access_token_ttl: u64,
    pub max_body_bytes: usize,
    pub cors_origins: Vec<String>,
    pub max_message_bytes: usize,
    pub max_attachment_bytes: u64,
    pub attachment_quota_bytes: u64,
    pub request_timeout: u64,
    /// Start on a copy of this data directory (an upgrade fixture) instead of an
    /// empty one.
    pub data_from: Option<std::path::PathBuf>,
    /// SQL run on the fresh PostgreSQL database before the relay starts (a
    /// fixture's dump), for [`Backend::Postgres`].
    pub postgres_sql: Option<String>,
    /// Share this PostgreSQL database (another relay's) instead of a fresh one.
    pub database_url: Option<String>,
    /// `--ws-queue`.
    pub ws_queue: u32,
    /// `--ws-presence-debounce`.
    pub ws_presence_debounce: u64,
    /// `--ws-typing`, `--ws-presence`.
    pub ws_typing: bool,
    pub ws_presence: bool,
    /// `--push-coalesce-ms`, `--push-allow-http` (the test push service is
    /// plain HTTP on loopback).
    pub push_coalesce_ms: u64,
    pub push_allow_http: bool,
    /// `--web-root` (the browser chat's directory); `None`: off.
    pub web_root: Option<std::path::PathBuf>,
    /// `--push-allow-private` (the test push services are on loopback).
    pub push_allow_private: bool,
    /// Anything else, applied last to the configuration.
    pub config: Option<ConfigEdit>,
}

/// A change to a test relay's configuration ([`AppOptions::config`]).
pub type ConfigEdit = std::sync::Arc<dyn Fn(&mut Config) + Send + Sync>;

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            rate_per_ip: 100_000,
            post_rate: 100_000,
            rate_per_account: 100_000,
            require_email_verification: true,
            access_token_ttl: 900,
            max_body_bytes: 64 * 1024,
            cors_origins: vec![],
            max_message_bytes: 128 * 1024,
            max_attachment_bytes: 4 * 1024 * 1024,
            attachment_quota_bytes: 64 * 1024 * 1024,
            request_timeout: 30,
            data_from: None,
            postgres_sql: None,
            database_url: None,
            ws_queue: 512,
            ws_presence_debounce: 1,
            ws_typing: true,
            ws_presence: true,
            push_coalesce_ms: 50,
            push_allow_http: true,
            web_root: None,
            push_allow_private: true,
            config: None,
        }
    }
}

impl AppOptions {
    /// These options with `f` applied to the configuration last.
    pub fn with_config(mut self, f: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        let before = self.config.take();
        self.config = Some(std::sync::Arc::new(move |c: &mut Config| {
            if let Some(b) = &before {
                b(c);
            }
            f(c);
        }));
        self
    }
}

/// A metric's value in `/metrics` text (0 when absent).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The rate limits of a test relay: high enough that no test meets one by
/// accident (each limit is tested on its own with a low value).
pub fn relaxed_limits(config: &mut Config) {
    config.room_create_rate = 1_000_000;
    config.invite_rate = 1_000_000;
    config.receipt_rate = 1_000_000;
    config.device_update_rate = 1_000_000;
    config.contact_rate = 1_000_000;
    config.refresh_rate = 1_000_000;
    config.check_username_rate = 1_000_000;
    config.push_test_rate = 1_000_000;
    config.ws_replay_rate = 1_000_000;
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, AppOptions::default()).await
}

pub async fn spawn_app_with(backend: Backend, opts: AppOptions) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    if let Some(from) = &opts.data_from {
        copy_dir(from, data_dir.path());
    }
    let smtp = SmtpSink::start().await;
    let mut config = Config::for_data_dir(data_dir.path().to_path_buf());
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => match &opts.database_url {
            Some(url) => Some(url.clone()),
            None => Some(fresh_postgres_database().await),
        },
    };
    if let (Some(url), Some(sql)) = (&database_url, &opts.postgres_sql) {
        run_postgres_script(url, sql).await;
    }
    config.database_url = database_url.clone().map(SecretString::from);
    config.smtp_url = Some(SecretString::from(format!(
        "smtp://{}:{}",
        smtp.addr.ip(),
        smtp.addr.port()
    )));
    config.smtp_from = "Sotto Test <relay@sotto.test>".into();
    config.auth_rate_per_ip = opts.rate_per_ip;
    config.post_rate = opts.post_rate;
    config.auth_rate_per_account = opts.rate_per_account;
    config.require_email_verification = opts.require_email_verification;
    config.access_token_ttl = opts.access_token_ttl;
    config.max_body_bytes = opts.max_body_bytes;
    config.cors_origins = opts.cors_origins;
    config.max_message_bytes = opts.max_message_bytes;
    config.max_attachment_bytes = opts.max_attachment_bytes;
    config.attachment_quota_bytes = opts.attachment_quota_bytes;
    config.request_timeout = opts.request_timeout;
    config.ws_queue = opts.ws_queue;
    config.ws_presence_debounce = opts.ws_presence_debounce;
    config.ws_typing = opts.ws_typing;
    config.ws_presence = opts.ws_presence;
    config.push_coalesce_ms = opts.push_coalesce_ms;
    config.push_allow_http = opts.push_allow_http;
    config.web_root = Some(opts.web_root.clone().unwrap_or_default());
    config.push_allow_private = opts.push_allow_private;
    relaxed_limits(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    config.listen = addr;
    config.public_url = Some(format!("http://{addr}"));
    if let Some(f) = &opts.config {
        f(&mut config);
    }
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let state = sotto_relay::build_state(config).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s = state.clone();
    tokio::spawn(async move {
        sotto_relay::serve_with_metrics(s, listener, Some(metrics), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        addr,
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        state,
        smtp,
        backend,
        data_dir,
        database_url,
        metrics_addr,
        shutdown: Some(tx),
    }
}

/// A status and parsed body.
#[derive(Debug)]
pub struct Res {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Res {
    /// Asserts the status and deserializes the body into the wire type `T`.
    pub fn typed<T: serde::de::DeserializeOwned>(&self, status: u16) -> T {
        assert_eq!(self.status, status, "{self:?}");
        serde_json::from_value(self.body.clone()).unwrap_or_else(|e| {
            panic!(
                "the body is not a {}: {e}: {self:?}",
                std::any::type_name::<T>()
            )
        })
    }

    /// Asserts a problem+json error with this status and code.
    pub fn problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["code"], code, "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
        let ct = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert_eq!(ct, "application/problem+json", "{self:?}");
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: uuid::Uuid,
    pub username: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let mut rb = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Res {
            status,
            body,
            headers,
        }
    }

    /// `/metrics` from the metrics listener (it is not on the API's listener).
    pub async fn metrics_text(&self) -> String {
        let r = self
            .http
            .get(format!("http://{}/metrics", self.metrics_addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Res {
        self.req("GET", path, token, None).await
    }
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.req("POST", path, token, Some(body)).await
    }

    pub async fn login(&self, login: &str, password: &str) -> Res {
        self.post(
            "/api/v1/auth/login",
            None,
            json!({"login": login, "password": password}),
        )
        .await
    }

    fn account_from(&self, r: &Res) -> Account {
        let t: TokenResponse = r.typed(200);
        Account {
            id: t.user.id,
            username: t.user.username,
            email: t.user.email,
            access: t.access_token,
            refresh: t.refresh_token,
        }
    }

    /// A request with a typed body, answered with `expect` and a typed body: the
    /// relay's JSON must deserialize into the wire type (unknown fields refused
    /// where the type says so), so helpers check the contract as they go.
    pub async fn call<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
        expect: u16,
    ) -> T {
        let body = body.map(|b| serde_json::to_value(b).unwrap());
        self.req(method, path, token, body).await.typed(expect)
    }

    /// `POST /api/v1/rooms` as `owner` → the new room's details. Each of
    /// `others` first gets `owner` into their contacts (written behind the API:
    /// [`Self::befriend`]), so they are members at once rather than invited
    /// (`docs/relay.md`, "Consent"); tests of consent itself use the API.
    pub async fn create_room(
        &self,
        owner: &Account,
        name: &str,
        others: &[uuid::Uuid],
    ) -> RoomDetails {
        for other in others {
            self.befriend(*other, owner.id).await;
        }
        let req = CreateRoomRequest {
            name: name.into(),
            member_ids: Some(others.to_vec()),
        };
        self.call(
            "POST",
            "/api/v1/rooms",
            Some(&owner.access),
            Some(&req),
            201,
        )
        .await
    }

    /// `POST /api/v1/rooms/{room}/messages` as `from`, expecting `expect`.
    pub async fn post_message(
        &self,
        from: &Member,
        room: uuid::Uuid,
        client_id: uuid::Uuid,
        envelope: &[u8],
        expect: u16,
    ) -> PostMessageResponse {
        let req = PostMessageRequest {
            client_id,
            envelope: sotto_core::encoding::B64(envelope.to_vec()),
        };
        self.call(
            "POST",
            &format!("/api/v1/rooms/{room}/messages"),
            Some(from.token()),
            Some(&req),
            expect,
        )
        .await
    }

    /// A page of a room's history after `after_seq`, as `who`.
    pub async fn history(
        &self,
        who: &Account,
        room: uuid::Uuid,
        after_seq: u64,
        limit: u32,
    ) -> Page<Message> {
        self.call::<(), _>(
            "GET",
            &format!("/api/v1/rooms/{room}/messages?after_seq={after_seq}&limit={limit}"),
            Some(&who.access),
            None,
            200,
        )
        .await
    }

    /// Puts `contact` into `owner`'s contacts, behind the API (a test shortcut
    /// for "they know each other": `owner` may then be added to rooms by
    /// `contact` without an invitation). Nothing when already there.
    pub async fn befriend(&self, owner: uuid::Uuid, contact: uuid::Uuid) {
        self.exec(
            "INSERT INTO contacts (id, owner_id, contact_id, nickname, created_at, updated_at)
             SELECT $1, $2, $3, NULL, created_at, created_at FROM users WHERE id = $2
             ON CONFLICT (owner_id, contact_id) DO NOTHING",
            &[uuid::Uuid::now_v7(), owner, contact],
        )
        .await;
    }

    /// Every one of `users` gets every other into their contacts ([`Self::befriend`]):
    /// they can all add each other to rooms without invitations.
    pub async fn acquaint(&self, users: &[uuid::Uuid]) {
        for a in users {
            for b in users {
                if a != b {
                    self.befriend(*a, *b).await;
                }
            }
        }
    }

    /// Registers through the API, verifies through the e-mailed link, signs in.
    pub async fn register_verified(&self, username: &str) -> Account {
        let email = format!("{username}@example.org");
        let r = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"username": username, "email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        let mail = self.smtp.wait_for(&email, "verify-email").await;
        let token = mail.token("verify-email").unwrap();
        let v = self
            .post("/api/v1/auth/verify-email", None, json!({"token": token}))
            .await;
        assert_eq!(v.status, 200, "{v:?}");
        let r = self.login(username, PASSWORD).await;
        self.account_from(&r)
    }

    /// A signed-in account with `role`, created directly (masters) or by a master (others).
    pub async fn account_with_role(&self, username: &str, role: &str) -> Account {
        let email = format!("{username}@example.org");
        if role == "master" {
            sotto_relay::create_master(&self.state, username, &email, PASSWORD.into())
                .await
                .unwrap();
        } else {
            let master = self.master().await;
            let r = self
                .post("/api/v1/users", Some(&master.access), json!({"username": username, "email": email, "password": PASSWORD, "role": role}))
                .await;
            assert_eq!(r.status, 201, "{r:?}");
        }
        let r = self.login(username, PASSWORD).await;
        self.account_from(&r)
    }

    /// The first master ("root"), created on first use.
    pub async fn master(&self) -> Account {
        let r = self.login("root", PASSWORD).await;
        if r.status == 200 {
            return self.account_from(&r);
        }
        sotto_relay::create_master(&self.state, "root", "root@example.org", PASSWORD.into())
            .await
            .unwrap();
        let r = self.login("root", PASSWORD).await;
        self.account_from(&r)
    }

    pub async fn user_count(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM users", &[]).await
    }
}

// ---------------------------------------------------------------------------
// Clients with keys: a signed-in account with an identity key and one device
// registered on the relay, able to seal envelopes like a real client.

use sotto_core::envelope::{self, Header, Recipient};
use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, RsaBits, VerifiedDevice,
};

/// A user with one registered device.
pub struct Member {
    pub account: Account,
    pub identity: IdentityKeyPair,
    pub device_id: uuid::Uuid,
    pub keys: DeviceKeys,
    pub bundle: DeviceBundle,
}

impl Member {
    pub fn id(&self) -> uuid::Uuid {
        self.account.id
    }
    pub fn token(&self) -> &str {
        &self.account.access
    }
    pub fn verified(&self) -> VerifiedDevice {
        self.bundle.verify().unwrap()
    }

    /// Seals `plaintext` from this device into `room` for `to` (x25519 suite,
    /// or RSA where the device has an RSA key and `rsa` is set).
    pub fn seal_with(
        &self,
        room: uuid::Uuid,
        client_id: uuid::Uuid,
        plaintext: &[u8],
        to: &[VerifiedDevice],
        rsa: bool,
    ) -> Vec<u8> {
        let header = Header {
            room_id: room,
            sender_user_id: self.id(),
            sender_device_id: self.device_id,
            client_message_id: client_id,
            timestamp_ms: 1_700_000_000_000,
        };
        let recipients: Vec<Recipient<'_>> = to
            .iter()
            .map(|d| {
                if rsa && d.has_rsa() {
                    Recipient::rsa(d)
                } else {
                    Recipient::x25519(d)
                }
            })
            .collect();
        envelope::seal(plaintext, &header, &recipients, &self.keys)
            .unwrap()
            .to_bytes()
    }

    /// A fresh client id and the envelope sealed under it.
    pub fn seal(
        &self,
        room: uuid::Uuid,
        plaintext: &[u8],
        to: &[VerifiedDevice],
    ) -> (uuid::Uuid, Vec<u8>) {
        let cid = uuid::Uuid::new_v4();
        (cid, self.seal_with(room, cid, plaintext, to, false))
    }

    /// Every secret key byte string of this member (for at-rest searches).
    pub fn secrets(&self) -> Vec<Vec<u8>> {
        let mut out = vec![
            self.identity.to_seed().to_vec(),
            self.keys.signing_seed().to_vec(),
            self.keys.x25519_secret().to_vec(),
        ];
        if let Some(der) = self.keys.rsa_pkcs8_der().unwrap() {
            // The tail of PKCS#8 holds only private values (primes and CRT
            // coefficients); its head repeats the public modulus.
            let tail = &der[der.len().saturating_sub(600)..];
            out.push(tail.to_vec());
        }
        out
    }
}

pub fn b64(bytes: &[u8]) -> String {
    sotto_core::encoding::b64_encode(bytes)
}

impl TestApp {
    /// Sends `head` (request line and headers, without the blank line) and then
    /// `body_chunks` with chunked transfer encoding over a raw socket; returns
    /// the response status. Stops sending when the relay answers early.
    pub async fn raw_chunked(&self, head: &str, body_chunks: usize, chunk: usize) -> u16 {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "{head}\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            self.addr
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let data = vec![0x5au8; chunk];
        for _ in 0..body_chunks {
            let framed = [
                format!("{chunk:x}\r\n").into_bytes(),
                data.clone(),
                b"\r\n".to_vec(),
            ]
            .concat();
            if s.write_all(&framed).await.is_err() {
                break;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Sends a request whose `Content-Length` announces more than it sends.
    pub async fn raw_declared(&self, head: &str, declared: u64) -> u16 {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "{head}\r\nHost: {}\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\nabc",
            self.addr
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// A request with a raw body (`content_type` when given).
    pub async fn req_bytes(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut rb = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .body(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.bytes().await.unwrap().to_vec())
    }

    /// Verified users created by the master (fast: no e-mail round trip).
    pub async fn users(&self, prefix: &str, n: usize) -> Vec<Account> {
        let master = self.master().await;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let username = format!("{prefix}{i}");
            let email = format!("{username}@example.org");
            let r = self
                .post(
                    "/api/v1/users",
                    Some(&master.access),
                    json!({"username": username, "email": email, "password": PASSWORD}),
                )
                .await;
            assert_eq!(r.status, 201, "{r:?}");
            let r = self.login(&username, PASSWORD).await;
            out.push(self.account_from(&r));
        }
        out
    }

    /// Registers a device with fresh keys for `account`.
    pub async fn with_device(&self, account: Account, rsa: Option<RsaBits>) -> Member {
        let identity = IdentityKeyPair::generate().unwrap();
        self.register_device(account, identity, rsa, false).await
    }

    /// Registers a device with fresh device keys signed by `identity` (with
    /// `replace_identity`, one that replaces the identity the relay has pinned).
    pub async fn register_device(
        &self,
        account: Account,
        identity: IdentityKeyPair,
        rsa: Option<RsaBits>,
        replace_identity: bool,
    ) -> Member {
        let keys = DeviceKeys::generate(DeviceKeyOptions { rsa }).unwrap();
        let device_id = uuid::Uuid::new_v4();
        let bundle = DeviceBundle::create(&identity, &keys, account.id, device_id).unwrap();
        let r = self
            .req(
                "PUT",
                &format!("/api/v1/devices/{device_id}"),
                Some(&account.access),
                Some(if replace_identity {
                    json!({"bundle": bundle, "display_name": "test device", "replace_identity": true, "current_password": PASSWORD})
                } else {
                    json!({"bundle": bundle, "display_name": "test device", "replace_identity": false})
                }),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        Member {
            account,
            identity,
            device_id,
            keys,
            bundle,
        }
    }

    /// `n` users with one device each.
    pub async fn members(&self, prefix: &str, n: usize) -> Vec<Member> {
        let mut out = Vec::with_capacity(n);
        for a in self.users(prefix, n).await {
            out.push(self.with_device(a, None).await);
        }
        out
    }

    /// A group room owned by `owner` with `others`; returns its id.
    pub async fn room(&self, owner: &Account, name: &str, others: &[uuid::Uuid]) -> uuid::Uuid {
        self.create_room(owner, name, others).await.room.id
    }

    /// Posts an envelope.
    pub async fn send(
        &self,
        from: &Member,
        room: uuid::Uuid,
        client_id: uuid::Uuid,
        envelope: &[u8],
    ) -> Res {
        self.post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(from.token()),
            json!({"client_id": client_id, "envelope": b64(envelope)}),
        )
        .await
    }

    /// A scalar (an integer) from the relay's database, read behind the API.
    pub async fn count(&self, sql: &str, binds: &[uuid::Uuid]) -> i64 {
        raw_scalar(self.state.db.read_pool(), sql, binds)
            .await
            .unwrap()
    }

    /// The text column of every row `sql` selects (portable SQL: `CAST(id AS
    /// TEXT)` for ids, which PostgreSQL stores as UUID).
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        match self.state.db.read_pool() {
            Pool::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(p)
                .await
                .unwrap(),
            Pool::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(p)
                .await
                .unwrap(),
        }
    }

    /// Runs a statement directly on the relay's database (to corrupt or inspect
    /// rows behind the API's back); returns the rows affected. `binds` are ids.
    pub async fn exec(&self, sql: &str, binds: &[uuid::Uuid]) -> u64 {
        self.try_exec(sql, binds).await.unwrap()
    }

    /// [`Self::exec`], with the database's error.
    pub async fn try_exec(&self, sql: &str, binds: &[uuid::Uuid]) -> Result<u64, sqlx::Error> {
        raw_exec(self.state.db.write_pool(), sql, binds).await
    }
}

/// A scalar integer `sql` reads on `pool`, with `binds` bound as ids.
pub async fn raw_scalar(pool: &Pool, sql: &str, binds: &[uuid::Uuid]) -> Result<i64, sqlx::Error> {
    match pool {
        Pool::Sqlite(p) => {
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()));
            for b in binds {
                q = q.bind(b.to_string());
            }
            q.fetch_one(p).await
        }
        Pool::Postgres(p) => {
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()));
            for b in binds {
                q = q.bind(*b);
            }
            q.fetch_one(p).await
        }
    }
}

/// Runs `sql` on `pool` with `binds` bound as ids; the rows affected.
pub async fn raw_exec(pool: &Pool, sql: &str, binds: &[uuid::Uuid]) -> Result<u64, sqlx::Error> {
    Ok(match pool {
        Pool::Sqlite(p) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
            for b in binds {
                q = q.bind(b.to_string());
            }
            q.execute(p).await?.rows_affected()
        }
        Pool::Postgres(p) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(p).await?.rows_affected()
        }
    })
}

/// Runs `sql` inside the write transaction `tx` with `binds` bound as ids.
pub async fn tx_exec(tx: &mut WriteTx, sql: &str, binds: &[uuid::Uuid]) -> u64 {
    match tx {
        WriteTx::Sqlite(t) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
            for b in binds {
                q = q.bind(b.to_string());
            }
            q.execute(&mut **t).await.unwrap().rows_affected()
        }
        WriteTx::Postgres(t) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(&mut **t).await.unwrap().rows_affected()
        }
    }
}

// ---------------------------------------------------------------------------
// WebSocket clients (`GET /api/v1/ws`).

use futures_util::{SinkExt, StreamExt};
use sotto_core::api::ServerFrame;
use sotto_core::api::ws::ClientFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A raw WebSocket to the relay, speaking the JSON frames.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// How a socket ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEnd {
    /// A close frame with this code.
    Closed(u16),
    /// The connection ended without a close frame (reset, EOF).
    Dropped,
}

impl TestApp {
    /// A WebSocket to `/api/v1/ws`, not yet authenticated.
    pub async fn ws_connect(&self) -> Ws {
        let url = format!("ws://{}/api/v1/ws", self.addr);
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Ws { stream }
    }

    /// A WebSocket authenticated with `token`, after its `ready`.
    pub async fn ws(&self, token: &str) -> Ws {
        let ws = self.ws_connect().await;
        ws.authenticate(token).await
    }
}

impl Ws {
    /// A WebSocket to `url` (`ws://` or `wss://`), TLS through `connector`.
    pub async fn connect_to(url: &str, connector: Option<tokio_tungstenite::Connector>) -> Ws {
        let (stream, _) =
            tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector)
                .await
                .unwrap();
        Ws { stream }
    }

    /// Sends `auth` with `token` and waits for `ready`.
    pub async fn authenticate(self, token: &str) -> Ws {
        let mut ws = self;
        ws.send(&ClientFrame::Auth {
            token: token.to_string(),
        })
        .await;
        match ws.next().await {
            ServerFrame::Ready { .. } => ws,
            other => panic!("expected ready, got {other:?}"),
        }
    }
}

impl Ws {
    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_text(&serde_json::to_string(frame).unwrap()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(WsMessage::Text(text.to_string().into()))
            .await
            .unwrap();
    }

    /// Sends a text frame; the error if the connection broke.
    pub async fn try_send_text(
        &mut self,
        text: &str,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.stream
            .send(WsMessage::Text(text.to_string().into()))
            .await
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream
            .send(WsMessage::Binary(bytes.into()))
            .await
            .unwrap();
    }

    /// The next frame within 10 s (pings and pongs of the protocol skipped).
    pub async fn next(&mut self) -> ServerFrame {
        self.try_next(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no frame within 10 s"))
    }

    /// The next frame within `wait`, if any.
    pub async fn try_next(&mut self, wait: Duration) -> Option<ServerFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(WsMessage::Text(t))) => {
                    return Some(serde_json::from_str(&t).unwrap_or_else(|e| {
                        panic!("the relay sent a frame that is not a ServerFrame: {e}: {t}")
                    }));
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// The next frame `want` accepts, skipping others (presence, typing...).
    pub async fn next_where(&mut self, want: impl Fn(&ServerFrame) -> bool) -> ServerFrame {
        loop {
            let f = self.next().await;
            if want(&f) {
                return f;
            }
        }
    }

    /// Reads until the socket ends (within `wait`); how it ended.
    pub async fn end(&mut self, wait: Duration) -> WsEnd {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => panic!("the socket did not end within {wait:?}"),
                Ok(Some(Ok(WsMessage::Close(Some(f))))) => return WsEnd::Closed(f.code.into()),
                Ok(Some(Ok(WsMessage::Close(None)))) => return WsEnd::Closed(1005),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return WsEnd::Dropped,
            }
        }
    }
}

/// A PostgreSQL client program (`pg_dump`, `psql`...) of the newest installed version.
pub fn pg_bin(name: &str) -> std::path::PathBuf {
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join(name).exists())
        .collect();
    dirs.sort();
    dirs.pop().unwrap().join(name)
}

/// `pg_dump` of the database at `url` (plain SQL).
pub fn pg_dump(url: &str) -> Vec<u8> {
    let out = std::process::Command::new(pg_bin("pg_dump"))
        .arg("--no-owner")
        .arg("--dbname")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
    out.stdout
}
