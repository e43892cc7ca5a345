//! `sotto-relay`: serve (default) or administer.

use std::process::ExitCode;

use clap::Parser;
use sotto_relay::config::{AdminCommand, Cli, Command, LogFormat};

/// mimalloc returns freed memory to the system promptly. With glibc's allocator,
/// the 19 MiB buffers of concurrent Argon2id computations stayed mapped in its
/// per-thread arenas after a burst of logins (RSS ~750 MB after 100 logins at
/// concurrency 8, and it stayed there); see `BENCHMARKS.md`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    init_tracing(cli.config.log_format);
    let result = match cli.command {
        None | Some(Command::Serve) => sotto_relay::run(cli.config)
            .await
            .map_err(|e| e.to_string()),
        Some(Command::Admin {
            command: AdminCommand::CreateMaster { username, email },
        }) => create_master(cli.config, &username, &email).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sotto-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn create_master(
    config: sotto_relay::config::Config,
    username: &str,
    email: &str,
) -> Result<(), String> {
    let state = sotto_relay::build_state(config)
        .await
        .map_err(|e| e.to_string())?;
    let password =
        sotto_relay::tokens::new_opaque_token().map_err(|_| "no randomness".to_string())?;
    let row = sotto_relay::create_master(&state, username, email, password.clone())
        .await
        .map_err(|e| e.detail.unwrap_or_else(|| e.code.to_string()))?;
    println!("created master `{}` ({})", row.username, row.id);
    println!("password (shown once; change it after signing in): {password}");
    Ok(())
}
