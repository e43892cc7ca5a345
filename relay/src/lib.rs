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
pub mod blocks;
pub mod clientip;
pub mod config;
pub mod contacts;
pub mod db;
pub mod devices;
pub mod digest;
pub mod egress;
pub mod error;
pub mod events;
pub mod extract;
#[cfg(feature = "postgres")]
pub mod fanout;
pub mod files;
pub mod fsutil;
pub mod housekeeping;
pub mod ids;
pub mod ingest;
pub mod invitations;
pub mod json;
pub mod keycache;
pub mod mail;
pub mod membership;
pub mod messages;
pub mod ops;
pub mod pagination;
pub mod presence;
pub mod push;
pub mod pusher;
pub mod quotas;
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
use std::sync::{Arc, OnceLock};
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
    #[error("configuration: {0}")]
    Config(String),
    #[error("Web Push: {0}")]
    Push(std::io::Error),
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
    config.validate().map_err(StartError::Config)?;
    let db = Db::open(&config).await?;
    let jwt = auth::JwtKeys::load(config.jwt_secret.as_ref(), &config.data_dir)
        .map_err(StartError::Jwt)?;
    let mailer = Arc::new(mail::Mailer::from_config(&config)?);
    let limits = Arc::new(ratelimit::RateLimits::new(ratelimit::Rates::of(&config)));
    let presence = Arc::new(presence::Presence::new(config.ws_typing_rate));
    let ingest = ingest::Ingest::start(&db);
    let subject = config
        .vapid_subject
        .clone()
        .unwrap_or_else(|| config.public_url());
    let vapid = pusher::Vapid::load(config.vapid_private_key.as_ref(), &config.data_dir, subject)
        .map_err(StartError::Vapid)?;
    let (push, push_wake) = pusher::Pusher::new(
        vapid,
        pusher::PushSettings {
            policy: egress::Policy {
                allow_http: config.push_allow_http,
                allow_private: config.push_allow_private,
            },
            coalesce: Duration::from_millis(config.push_coalesce_ms),
            round_deadline: Duration::from_millis(config.push_round_deadline_ms),
            max_failures: config.push_max_failures,
            nameserver: config.push_dns_server,
        },
        db.clone(),
        Arc::clone(&presence),
    )
    .map_err(StartError::Push)?;
    tokio::spawn(pusher::run(Arc::downgrade(&push), push_wake));
    let quotas = Arc::new(quotas::Quotas::new(
        db.clone(),
        config.message_bytes_per_day,
        config.message_bytes_stored,
    ));
    let trusted = Arc::new(clientip::TrustedProxies::new(
        config.trusted_proxies.clone(),
        config.proxy_header,
    ));
    let dummy = crate::tokens::new_opaque_token()
        .map_err(|_| StartError::Bootstrap("no randomness".into()))?;
    let dummy_hash = auth::hash_password(dummy)
        .await
        .map_err(|_| StartError::Bootstrap("cannot hash".into()))?;
    let files = Arc::new(files::Files::new(&config.data_dir));
    let state = AppState::new(Inner {
        config,
        db,
        jwt,
        mailer,
        limits,
        metrics: metrics_handle(),
        events: events::Events::new(),
        ingest,
        push,
        presence,
        quotas,
        device_cache: keycache::DeviceCache::default(),
        uploads: files::UploadSlots::default(),
        files,
        trusted,
        ws_clients: Arc::new(server::PeerCounts::default()),
        dummy_hash,
    });
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

/// Serves on an already-bound listener until `shutdown` resolves (no metrics
/// listener; see [`serve_with_metrics`]).
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    serve_with_metrics(state, listener, None, shutdown).await
}

/// Serves the API on `listener`, and `/metrics` alone on `metrics` when given,
/// until `shutdown` resolves.
pub async fn serve_with_metrics(
    state: AppState,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let mut tasks = housekeeping::start(
        housekeeping::Upkeep {
            db: state.db.clone(),
            quotas: Arc::clone(&state.quotas),
            files: Arc::clone(&state.files),
            metrics: state.metrics.clone(),
            refresh_token_ttl: Duration::from_secs(state.config.refresh_token_ttl),
            audit_retention_days: state.config.audit_retention_days,
            quota_sync: Duration::from_millis(state.config.quota_sync_ms),
        },
        Arc::clone(&state.limits),
    );
    #[cfg(feature = "postgres")]
    tasks.extend(fanout::start(&state.db, &state.events));
    let limits = server::ConnLimits {
        header_read_timeout: Duration::from_secs(state.config.header_read_timeout),
        idle_timeout: Duration::from_secs(state.config.idle_timeout),
        max_per_ip: state.config.max_connections_per_ip,
        max_total: state.config.max_connections,
        trusted: Arc::clone(&state.trusted),
    };
    if let Some(metrics) = metrics {
        let router = app::metrics_router(state.metrics.clone());
        let limits = server::ConnLimits {
            trusted: Arc::new(clientip::TrustedProxies::new(
                Vec::new(),
                clientip::ProxyHeader::XForwardedFor,
            )),
            max_per_ip: 0,
            ..limits.clone()
        };
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server::serve(metrics, router, limits, std::future::pending()).await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        }));
    }
    let events = state.events.clone();
    let quotas = Arc::clone(&state.quotas);
    let app = app::router(state);
    let res = server::serve(listener, app, limits, shutdown)
        .await
        .map_err(StartError::Serve);
    // WebSockets are upgraded connections, outside the HTTP drain: end their
    // subscriptions so each closes (1012) and its client resumes elsewhere.
    events.reset_all();
    quotas.sync().await;
    for task in tasks {
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
    let metrics_listen = config.metrics_listen.0;
    let state = build_state(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| StartError::Listen(listen, e))?;
    let metrics = match metrics_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| StartError::Listen(addr, e))?;
            let bound = l.local_addr().map_err(|e| StartError::Listen(addr, e))?;
            tracing::info!("metrics (Prometheus text) at http://{bound}/metrics");
            Some(l)
        }
        None => None,
    };
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
    serve_with_metrics(state, listener, metrics, shutdown_signal()).await
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
