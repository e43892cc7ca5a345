//! Configuration: CLI flags with `SOTTO_*` environment fallbacks (and `.env`).
//! Every option is documented in `docs/config.md`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

/// Where `scripts/dev` builds the browser chat, relative to the working directory.
pub const DEFAULT_WEB_ROOT: &str = "examples/web/dist";

#[derive(Debug, Parser)]
#[command(
    name = "sotto-relay",
    version,
    about = "Sotto relay: accounts, keys, rooms and opaque messages"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Administration commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a master account; prints its generated password once.
    CreateMaster {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        long,
        env = "SOTTO_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,
    /// Directory for the SQLite database, the e-mail outbox and generated keys.
    #[arg(long, env = "SOTTO_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// Database URL: unset for SQLite in the data dir, or `postgres://...`.
    #[arg(
        long,
        env = "SOTTO_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<SecretString>,
    /// Public base URL of the relay, used in e-mailed links (default `http://<listen>`).
    #[arg(long, env = "SOTTO_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// SMTP server URL (`smtp://host:port?tls=required`, `smtps://user:pass@host`); unset:
    /// e-mails are written to `<data dir>/outbox/*.eml`.
    #[arg(long, env = "SOTTO_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<SecretString>,
    /// Sender address of e-mails.
    #[arg(
        long,
        env = "SOTTO_SMTP_FROM",
        default_value = "Sotto <no-reply@sotto.invalid>",
        global = true
    )]
    pub smtp_from: String,
    /// Comma-separated origins allowed by CORS (none by default).
    #[arg(long, env = "SOTTO_CORS_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_origins: Vec<String>,
    /// Directory of the browser chat to serve under `/app/` (its `index.html` and assets).
    /// Default: `examples/web/dist` under the working directory when it holds an
    /// `index.html` (what `scripts/dev` builds); an empty value turns the page off.
    #[arg(long, env = "SOTTO_WEB_ROOT", global = true, value_parser = web_root_arg)]
    pub web_root: Option<PathBuf>,
    /// Whether login requires a verified e-mail address.
    #[arg(long, env = "SOTTO_REQUIRE_EMAIL_VERIFICATION", default_value_t = true, action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub require_email_verification: bool,
    /// JWT signing secret (at least 32 bytes); generated into `<data dir>/jwt.key` when unset.
    #[arg(long, env = "SOTTO_JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,
    /// Access-token lifetime in seconds.
    #[arg(
        long,
        env = "SOTTO_ACCESS_TOKEN_TTL",
        default_value_t = 900,
        global = true
    )]
    pub access_token_ttl: u64,
    /// Refresh-token lifetime in seconds.
    #[arg(long, env = "SOTTO_REFRESH_TOKEN_TTL", default_value_t = 30 * 24 * 3600, global = true)]
    pub refresh_token_ttl: u64,
    /// Requests per minute per client IP on login, register, forgot and resend.
    #[arg(
        long,
        env = "SOTTO_AUTH_RATE_PER_IP",
        default_value_t = 20,
        global = true
    )]
    pub auth_rate_per_ip: u32,
    /// Attempts per minute per account (login name or e-mail) on login, forgot and resend.
    #[arg(
        long,
        env = "SOTTO_AUTH_RATE_PER_ACCOUNT",
        default_value_t = 5,
        global = true
    )]
    pub auth_rate_per_account: u32,
    /// Maximum request body in bytes (JSON routes).
    #[arg(long, env = "SOTTO_MAX_BODY_BYTES", default_value_t = 1024 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// Maximum size of one sealed envelope in bytes (`POST .../messages`; larger is 413).
    #[arg(long, env = "SOTTO_MAX_MESSAGE_BYTES", default_value_t = 512 * 1024, global = true)]
    pub max_message_bytes: usize,
    /// Maximum size of one encrypted attachment in bytes (larger is 413).
    #[arg(long, env = "SOTTO_MAX_ATTACHMENT_BYTES", default_value_t = 100 * 1024 * 1024, global = true)]
    pub max_attachment_bytes: u64,
    /// Total bytes of attachments one user may have stored (413 `quota_exceeded` beyond).
    #[arg(long, env = "SOTTO_ATTACHMENT_QUOTA_BYTES", default_value_t = 1024 * 1024 * 1024, global = true)]
    pub attachment_quota_bytes: u64,
    /// Attachments up to this size are stored in the database; larger ones as
    /// files under `<data dir>/attachments/`.
    #[arg(long, env = "SOTTO_ATTACHMENT_INLINE_BYTES", default_value_t = 64 * 1024, global = true)]
    pub attachment_inline_bytes: u64,
    /// Per-request timeout in seconds.
    #[arg(
        long,
        env = "SOTTO_REQUEST_TIMEOUT",
        default_value_t = 30,
        global = true
    )]
    pub request_timeout: u64,
    /// Seconds a client has to send a whole request head; on a kept-alive
    /// HTTP/1.1 connection the wait for the next request counts too.
    #[arg(
        long,
        env = "SOTTO_HEADER_READ_TIMEOUT",
        default_value_t = 20,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub header_read_timeout: u64,
    /// Seconds after which a connection on which no byte moved either way is closed.
    #[arg(
        long,
        env = "SOTTO_IDLE_TIMEOUT",
        default_value_t = 75,
        value_parser = clap::value_parser!(u64).range(1..=86400),
        global = true
    )]
    pub idle_timeout: u64,
    /// Open connections allowed per client address (IPv6 per /64); 0 for no cap.
    #[arg(
        long,
        env = "SOTTO_MAX_CONNECTIONS_PER_IP",
        default_value_t = 256,
        global = true
    )]
    pub max_connections_per_ip: u32,
    /// Messages one user may post per second, over REST and WebSockets together
    /// (bursts of twice that; beyond, 429 `rate_limited` with `Retry-After`, or
    /// `error rate_limited` on a socket). Per relay process.
    #[arg(
        long,
        env = "SOTTO_POST_RATE",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub post_rate: u32,
    /// Send `typing` events over WebSockets (`false`: `typing` frames are refused).
    #[arg(long, env = "SOTTO_WS_TYPING", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub ws_typing: bool,
    /// Send `presence` events over WebSockets.
    #[arg(long, env = "SOTTO_WS_PRESENCE", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub ws_presence: bool,
    /// Seconds a user stays `online` after their last socket closes (a reconnect
    /// within this time is not announced at all).
    #[arg(
        long,
        env = "SOTTO_WS_PRESENCE_DEBOUNCE",
        default_value_t = 5,
        global = true
    )]
    pub ws_presence_debounce: u64,
    /// Frames queued for one socket before it is closed as too slow (4408).
    #[arg(
        long,
        env = "SOTTO_WS_QUEUE",
        default_value_t = 512,
        value_parser = clap::value_parser!(u32).range(8..=65536),
        global = true
    )]
    pub ws_queue: u32,
    /// Frames per second one socket may send (bursts of twice that); beyond, each
    /// frame is answered `error rate_limited`.
    #[arg(
        long,
        env = "SOTTO_WS_FRAME_RATE",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub ws_frame_rate: u32,
    /// `typing` frames per second per user (all their sockets), bursts of twice that.
    #[arg(
        long,
        env = "SOTTO_WS_TYPING_RATE",
        default_value_t = 2,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub ws_typing_rate: u32,
    /// Seconds between the relay's WebSocket pings; a peer silent for two of
    /// these is closed.
    #[arg(
        long,
        env = "SOTTO_WS_HEARTBEAT",
        default_value_t = 25,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub ws_heartbeat: u64,
    /// VAPID private key for Web Push (P-256 scalar, base64url without padding);
    /// generated into `<data dir>/vapid.key` when unset. Relays sharing one
    /// database must share it (browsers subscribed with its public key).
    #[arg(
        long,
        env = "SOTTO_VAPID_PRIVATE_KEY",
        global = true,
        hide_env_values = true
    )]
    pub vapid_private_key: Option<SecretString>,
    /// Contact the relay's VAPID tokens name (`sub`, RFC 8292): a `mailto:` or
    /// `https:` URL; the public URL when unset.
    #[arg(long, env = "SOTTO_VAPID_SUBJECT", global = true)]
    pub vapid_subject: Option<String>,
    /// Milliseconds a room's news waits before its pushes go out, so a burst of
    /// messages is one push per subscription.
    #[arg(
        long,
        env = "SOTTO_PUSH_COALESCE_MS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(0..=60_000),
        global = true
    )]
    pub push_coalesce_ms: u64,
    /// Accept `http://` push endpoints (a push service on a private network or
    /// in tests); only `https://` otherwise.
    #[arg(long, env = "SOTTO_PUSH_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub push_allow_http: bool,
    /// Accept push endpoints on private, loopback and link-local addresses and
    /// on any port (a push service on a private network, tests); only public
    /// addresses on port 443 otherwise.
    #[arg(long, env = "SOTTO_PUSH_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub push_allow_private: bool,
    /// Milliseconds one push round may take; pushes still in flight then are
    /// cancelled and count as failed. Also each push request's timeout.
    #[arg(
        long,
        env = "SOTTO_PUSH_ROUND_DEADLINE_MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(100..=120_000),
        global = true
    )]
    pub push_round_deadline_ms: u64,
    /// Failed pushes in a row after which a subscription is deleted.
    #[arg(
        long,
        env = "SOTTO_PUSH_MAX_FAILURES",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..=1000),
        global = true
    )]
    pub push_max_failures: u32,
    /// Push subscriptions per device.
    #[arg(
        long,
        env = "SOTTO_PUSH_MAX_PER_DEVICE",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub push_max_per_device: u32,
    /// Push subscriptions per user, over all their devices.
    #[arg(
        long,
        env = "SOTTO_PUSH_MAX_PER_USER",
        default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub push_max_per_user: u32,
    /// `POST /api/v1/push/test` calls per user per minute.
    #[arg(
        long,
        env = "SOTTO_PUSH_TEST_RATE",
        default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub push_test_rate: u32,
    /// The nameserver (`ip:port`) the push client's resolver asks instead of the
    /// system's: for tests and unusual set-ups.
    #[arg(long, env = "SOTTO_PUSH_DNS_SERVER", global = true, hide = true)]
    pub push_dns_server: Option<SocketAddr>,
    /// Address of the separate metrics listener (`/metrics`, Prometheus text);
    /// an empty value turns it off. `/metrics` is never served on `--listen`.
    #[arg(long, env = "SOTTO_METRICS_LISTEN", default_value = "127.0.0.1:9464",
        value_parser = optional_addr, global = true)]
    pub metrics_listen: OptionalAddr,
    /// Comma-separated addresses or CIDR blocks of reverse proxies whose
    /// `X-Forwarded-For` / `Forwarded` headers are believed (none by default).
    #[arg(long, env = "SOTTO_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::clientip::parse_net, global = true)]
    pub trusted_proxies: Vec<crate::clientip::Net>,
    /// The forwarding header the trusted proxies write (only that one is read).
    #[arg(
        long,
        env = "SOTTO_PROXY_HEADER",
        value_enum,
        default_value = "x-forwarded-for",
        global = true
    )]
    pub proxy_header: crate::clientip::ProxyHeader,
    /// Open connections in all (0: no cap); one beyond is closed at once.
    #[arg(
        long,
        env = "SOTTO_MAX_CONNECTIONS",
        default_value_t = 16_384,
        global = true
    )]
    pub max_connections: u32,
    /// Database reads per second one socket's replays may take (`resume` and
    /// gap fills, a page of up to 100 messages per read; bursts of twice that).
    /// A larger replay is served at this pace, never refused.
    #[arg(
        long,
        env = "SOTTO_WS_REPLAY_RATE",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub ws_replay_rate: u32,
    /// Rooms one user may be a member of.
    #[arg(long, env = "SOTTO_MAX_ROOMS_PER_USER", default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_rooms_per_user: u32,
    /// Members of one room, pending invitations included.
    #[arg(long, env = "SOTTO_MAX_ROOM_MEMBERS", default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(2..=1000), global = true)]
    pub max_room_members: u32,
    /// Invitations one user may have sent and not yet answered.
    #[arg(long, env = "SOTTO_MAX_OPEN_INVITATIONS", default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_open_invitations: u32,
    /// Invitations one user may have received and not yet answered.
    #[arg(long, env = "SOTTO_MAX_PENDING_INVITATIONS", default_value_t = 200,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_pending_invitations: u32,
    /// Rooms (group or direct) one user may create per minute.
    #[arg(long, env = "SOTTO_ROOM_CREATE_RATE", default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub room_create_rate: u32,
    /// Invitations one user may send per minute.
    #[arg(long, env = "SOTTO_INVITE_RATE", default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub invite_rate: u32,
    /// Receipts one user may send per minute (REST and WebSocket together).
    #[arg(long, env = "SOTTO_RECEIPT_RATE", default_value_t = 600,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub receipt_rate: u32,
    /// Device and identity changes (upload, replace, revoke) one user may make
    /// per minute.
    #[arg(long, env = "SOTTO_DEVICE_UPDATE_RATE", default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub device_update_rate: u32,
    /// Contact and block changes one user may make per minute.
    #[arg(long, env = "SOTTO_CONTACT_RATE", default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub contact_rate: u32,
    /// Token refreshes per minute per session, and ten times that per client
    /// address.
    #[arg(long, env = "SOTTO_REFRESH_RATE", default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub refresh_rate: u32,
    /// `GET /api/v1/users/check-username` calls per minute per client address.
    #[arg(long, env = "SOTTO_CHECK_USERNAME_RATE", default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub check_username_rate: u32,
    /// Envelope bytes one user may post per UTC day (429 `quota_exceeded` beyond).
    #[arg(long, env = "SOTTO_MESSAGE_BYTES_PER_DAY", default_value_t = 256 * 1024 * 1024, global = true)]
    pub message_bytes_per_day: u64,
    /// Envelope bytes one user may have stored in all (429 `quota_exceeded`
    /// beyond; deleting messages or rooms frees it).
    #[arg(long, env = "SOTTO_MESSAGE_BYTES_STORED", default_value_t = 4 * 1024 * 1024 * 1024, global = true)]
    pub message_bytes_stored: u64,
    /// Milliseconds between writes of the message quota counters to the
    /// database (where relays sharing it see each other's counts).
    #[arg(long, env = "SOTTO_QUOTA_SYNC_MS", default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(100..=60_000), global = true)]
    pub quota_sync_ms: u64,
    /// Days the security audit log is kept.
    #[arg(long, env = "SOTTO_AUDIT_RETENTION_DAYS", default_value_t = 180,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub audit_retention_days: u32,
    /// Development mode: e-mailed links (with their tokens) are also logged.
    #[arg(long, env = "SOTTO_DEV", default_value_t = false, action = clap::ArgAction::Set,
        num_args = 0..=1, default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub dev: bool,
    /// Log format.
    #[arg(
        long,
        env = "SOTTO_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    /// Bootstrap master (used only when no master exists; all three must be set).
    #[arg(long, env = "SOTTO_BOOTSTRAP_MASTER_USERNAME", global = true)]
    pub bootstrap_master_username: Option<String>,
    #[arg(long, env = "SOTTO_BOOTSTRAP_MASTER_EMAIL", global = true)]
    pub bootstrap_master_email: Option<String>,
    #[arg(
        long,
        env = "SOTTO_BOOTSTRAP_MASTER_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub bootstrap_master_password: Option<SecretString>,
}

/// An address, or none (the empty value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalAddr(pub Option<SocketAddr>);

/// `--metrics-listen`: `ip:port`, or empty for none.
fn optional_addr(s: &str) -> Result<OptionalAddr, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("off") {
        return Ok(OptionalAddr(None));
    }
    s.parse()
        .map(|a| OptionalAddr(Some(a)))
        .map_err(|e| format!("not an address (ip:port): {e}"))
}

/// Whether `o` is a browser origin: `http(s)://host[:port]` with nothing after.
fn reqwest_like_origin(o: &str) -> bool {
    let Some(rest) = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' ', '*'])
        && axum::http::HeaderValue::from_str(o).is_ok()
}

/// `--web-root`: any path, and the empty value (which turns the page off; clap's
/// path parser would refuse it).
fn web_root_arg(s: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(s))
}

impl Config {
    /// Checks what clap's parsers cannot: a clear start-up error instead of a
    /// failure (or a panic) later.
    pub fn validate(&self) -> Result<(), String> {
        for origin in &self.cors_origins {
            let o = origin.trim();
            if o == "*" {
                return Err(
                    "SOTTO_CORS_ORIGINS / --cors-origins: `*` is not allowed (the API takes bearer \
                     tokens from any page that is allowed); list the origins, e.g. https://app.example.org"
                        .into(),
                );
            }
            let ok = reqwest_like_origin(o);
            if !ok {
                return Err(format!(
                    "SOTTO_CORS_ORIGINS / --cors-origins: {o:?} is not an origin (scheme://host[:port], no path)"
                ));
            }
        }
        Ok(())
    }

    /// The browser chat's directory, if one is served: the configured one, or the
    /// default when it was built. `None` when the option is empty or nothing is built.
    pub fn web_root(&self) -> Option<PathBuf> {
        match &self.web_root {
            Some(dir) if dir.as_os_str().is_empty() => None,
            Some(dir) => Some(dir.clone()),
            None => {
                let dir = PathBuf::from(DEFAULT_WEB_ROOT);
                dir.join("index.html").is_file().then_some(dir)
            }
        }
    }

    /// The base of e-mailed links, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }

    /// A configuration for tests and embedding: defaults, data in `data_dir`.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        let cli = Cli::parse_from([
            "sotto-relay",
            "--data-dir",
            &data_dir.to_string_lossy(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "",
        ]);
        cli.config
    }
}
