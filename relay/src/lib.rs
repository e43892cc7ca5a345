//! # sotto-relay
//!
//! The relay of Sotto: accounts and authentication, users and roles, e-mail,
//! devices and public keys, rooms, opaque messages, receipts, contacts and
//! attachments. It stores public
//! keys and ciphertext only. The contract is the OpenAPI document it serves at
//! `/openapi.json`; configuration is in `docs/config.md`.

pub mod app;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod auth_routes;
pub mod config;
pub mod contacts;
pub mod db;
pub mod devices;
pub mod digest;
pub mod error;
pub mod events;
#[cfg(feature = "postgres")]
pub mod fanout;
pub mod ids;
pub mod ingest;
pub mod json;
pub mod mail;
pub mod membership;
pub mod messages;
pub mod ops;
pub mod pagination;
pub mod push;
pub mod ratelimit;
pub mod rooms;
pub mod server;
pub mod state;
pub mod store;
pub mod tokens;
pub mod users;
pub mod validate;
pub mod ws;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use sotto_core::api::users::Role;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::db::Db;
use crate::state::{AppState, Inner};
use crate::validate::{Email, Username};

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("JWT key: {0}")]
    Jwt(std::io::Error),
    #[error("VAPID key: {0}")]
    Vapid(std::io::Error),
    #[error("e-mail: {0}")]
    Mail(#[from] mail::MailError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("bootstrap master: {0}")]
    Bootstrap(String),
    #[error("server: {0}")]
    Serve(std::io::Error),
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Only the first app in a process installs the global recorder (tests build many).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Opens the database, loads keys and builds the state.
pub async fn build_state(config: Config) -> Result<AppState, StartError> {
    let db = Db::open(&config).await?;
    let jwt = auth::JwtKeys::load(config.jwt_secret.as_ref(), &config.data_dir)
        .map_err(StartError::Jwt)?;
    let mailer = mail::Mailer::from_config(&config)?;
    let limits = ratelimit::RateLimits::new(
        config.auth_rate_per_ip,
        config.auth_rate_per_account,
        config.post_rate,
    );
    let realtime = ws::Realtime::new(&config);
    let ingest = ingest::Ingest::start(&db);
    let subject = config
        .vapid_subject
        .clone()
        .unwrap_or_else(|| config.public_url());
    let vapid = push::Vapid::load(config.vapid_private_key.as_ref(), &config.data_dir, subject)
        .map_err(StartError::Vapid)?;
    let (pusher, push_wake) = push::Pusher::new(
        vapid,
        config.push_allow_http,
        std::time::Duration::from_millis(config.push_coalesce_ms),
    )
    .map_err(|e| StartError::Vapid(std::io::Error::other(e)))?;
    let dummy = crate::tokens::new_opaque_token()
        .map_err(|_| StartError::Bootstrap("no randomness".into()))?;
    let dummy_hash = auth::hash_password(dummy)
        .await
        .map_err(|_| StartError::Bootstrap("cannot hash".into()))?;
    let state = AppState::new(Inner {
        config,
        db,
        jwt,
        mailer,
        limits,
        metrics: metrics_handle(),
        events: events::Events::new(),
        ingest,
        push: pusher,
        realtime,
        device_cache: devices::DeviceCache::default(),
        uploads: attachments::UploadSlots::default(),
        dummy_hash,
    });
    tokio::spawn(push::run(state.downgrade(), push_wake));
    bootstrap_master(&state).await?;
    Ok(state)
}

/// Creates the master from `SOTTO_BOOTSTRAP_MASTER_*` when no master exists yet.
async fn bootstrap_master(state: &AppState) -> Result<(), StartError> {
    let c = &state.config;
    let (Some(u), Some(e), Some(p)) = (
        &c.bootstrap_master_username,
        &c.bootstrap_master_email,
        &c.bootstrap_master_password,
    ) else {
        return Ok(());
    };
    if master_count(&state.db)
        .await
        .map_err(|e| StartError::Bootstrap(e.detail.unwrap_or_default()))?
        > 0
    {
        return Ok(());
    }
    let fail = |e: error::ApiError| StartError::Bootstrap(e.detail.unwrap_or_default());
    validate::check_new_password(p.expose_secret()).map_err(fail)?;
    create_master(state, u, e, p.expose_secret().to_string())
        .await
        .map_err(fail)?;
    tracing::info!(username = %u, "created the bootstrap master");
    Ok(())
}

pub async fn master_count(db: &Db) -> error::ApiResult<i64> {
    store::users::master_count(db).await
}

/// Creates a verified master account.
pub async fn create_master(
    state: &AppState,
    username: &str,
    email: &str,
    password: String,
) -> error::ApiResult<users::UserRow> {
    let username = Username::parse(username)?;
    let email = Email::parse(email)?;
    let password_hash = auth::hash_password(password).await?;
    let row = crate::store::users::insert(
        state.db.writer(),
        users::NewUser {
            username: &username,
            email: &email,
            password_hash,
            display_name: None,
            role: Role::Master,
            email_verified: true,
        },
    )
    .await?;
    audit::record(
        &state.db,
        audit::event::MASTER_CREATED,
        None,
        Some(row.uuid()),
        None,
        None,
    )
    .await;
    Ok(row)
}

/// Serves on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let housekeeping = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut minutes = 0u64;
            loop {
                if minutes.is_multiple_of(60) {
                    attachments::sweep_orphans(&state, Duration::from_secs(3600)).await;
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
                minutes += 1;
                state.limits.housekeeping();
                state.metrics.run_upkeep();
            }
        })
    };
    // SQLite: restart the write-ahead log every second (see
    // `store::maintenance::checkpoint`).
    let checkpoints = (state.db.backend == db::Backend::Sqlite).then(|| {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Err(e) = store::maintenance::checkpoint(state.db.writer()).await {
                    tracing::warn!(code = e.code, "WAL checkpoint failed");
                }
            }
        })
    });
    #[cfg(feature = "postgres")]
    let fanout = fanout::start(&state);
    #[cfg(not(feature = "postgres"))]
    let fanout: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let limits = server::ConnLimits {
        header_read_timeout: Duration::from_secs(state.config.header_read_timeout),
        idle_timeout: Duration::from_secs(state.config.idle_timeout),
        max_per_ip: state.config.max_connections_per_ip,
    };
    let events = state.events.clone();
    let app = app::router(state);
    let res = server::serve(listener, app, limits, shutdown)
        .await
        .map_err(StartError::Serve);
    // WebSockets are upgraded connections, outside the HTTP drain: end their
    // subscriptions so each closes (1012) and its client resumes elsewhere.
    events.reset_all();
    housekeeping.abort();
    if let Some(task) = checkpoints {
        task.abort();
    }
    for task in fanout {
        task.abort();
    }
    res
}

/// Binds `config.listen` and serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), StartError> {
    let listen = config.listen;
    match server::raise_open_files_limit() {
        Ok(n) => tracing::info!(open_files_limit = n, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
    let state = build_state(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| StartError::Listen(listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(listen, e))?;
    let masters = master_count(&state.db)
        .await
        .map_err(|e| StartError::Bootstrap(e.detail.unwrap_or_default()))?;
    tracing::info!(
        "sotto-relay listening on http://{addr} (database: {:?}, data dir: {})",
        state.db.backend,
        state.config.data_dir.display()
    );
    if masters == 0 {
        tracing::warn!(
            "no master account yet: run `sotto-relay admin create-master --username NAME --email ADDRESS` \
             (prints a generated password once), or set SOTTO_BOOTSTRAP_MASTER_USERNAME/_EMAIL/_PASSWORD"
        );
    }
    serve(state, listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
