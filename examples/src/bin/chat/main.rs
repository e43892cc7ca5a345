//! `chat`: a keyboard-first, end-to-end-encrypted terminal chat on a Sotto
//! relay, built on the `sotto-client` SDK.
//!
//! ```text
//! chat --relay http://127.0.0.1:8080                 # start screen: log in, register, verify
//! chat --relay URL --login alice --password-file F   # straight into the chat
//! chat register --relay URL --username U --email E --password-file F
//! chat verify --relay URL --link 'http://…/verify-email#token=…'
//! ```
//!
//! Files: `app.rs` holds the state and reacts to keys and SDK events,
//! `commands.rs` the `/commands`, `ui.rs` draws the chat, `start.rs` the start
//! screen (log in, register, verify, link this device), `input.rs` the text field.

mod app;
mod commands;
mod input;
mod start;
mod ui;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ratatui::crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use ratatui::crossterm::execute;
use sotto_client::Client;
use zeroize::Zeroizing;

#[derive(Parser, Debug)]
#[command(
    name = "chat",
    version,
    about = "A keyboard-first, end-to-end-encrypted terminal chat on a Sotto relay"
)]
pub struct Cli {
    /// The relay's base URL.
    #[arg(
        long,
        env = "SOTTO_RELAY",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub relay: String,
    /// The local store (SQLite: keys and message history, sealed under a
    /// store key that the store passphrase wraps).
    /// Default: ~/.local/share/sotto/<username>.db
    #[arg(long, env = "SOTTO_STORE")]
    pub store: Option<PathBuf>,
    /// Log in as this user (username or e-mail) and open the chat directly.
    #[arg(long, requires = "password_file")]
    pub login: Option<String>,
    /// A file whose first line is the password (for --login).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// A file whose first line is the store passphrase (default: the login
    /// password). Keep it apart from the password so that whoever learns the
    /// password cannot open a copy of this device's store.
    #[arg(long, env = "SOTTO_STORE_PASSPHRASE_FILE")]
    pub store_passphrase_file: Option<PathBuf>,
    /// The name of this device in device lists.
    #[arg(long, default_value = "terminal chat")]
    pub device_name: String,
    /// When the account already has a device: link this one from this key
    /// backup file (made with /backup on the other device).
    #[arg(long, requires = "backup_passphrase_file")]
    pub backup: Option<PathBuf>,
    /// A file whose first line is the passphrase of --backup.
    #[arg(long)]
    pub backup_passphrase_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an account; the relay e-mails a verification link.
    Register {
        /// The username (unique, cannot change).
        #[arg(long)]
        username: String,
        /// The e-mail address to verify.
        #[arg(long)]
        email: String,
        /// A file whose first line is the password.
        #[arg(long)]
        password_file: PathBuf,
    },
    /// Verify the e-mail address with the e-mailed link (or just its token).
    Verify {
        /// The link from the e-mail, or the token.
        #[arg(long)]
        link: String,
    },
}

/// Reads the first line of a secret file (without its line break).
pub fn read_secret_file(path: &Path) -> Result<Zeroizing<String>, String> {
    let data = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    let line = data.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Zeroizing::new(line.to_owned()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Read the local UTC offset while the process has one thread (the `time`
    // crate refuses to afterwards).
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chat: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match &cli.command {
        Some(Command::Register {
            username,
            email,
            password_file,
        }) => rt.block_on(register(&cli.relay, username, email, password_file)),
        Some(Command::Verify { link }) => rt.block_on(verify(&cli.relay, link)),
        None => run_ui(&cli, offset, &rt),
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn register(
    relay: &str,
    username: &str,
    email: &str,
    password_file: &Path,
) -> Result<(), String> {
    let password = read_secret_file(password_file)?;
    let client = Client::new(relay).map_err(|e| e.to_string())?;
    let user = client
        .register(username, email, &password)
        .await
        .map_err(|e| format!("registration failed: {e}"))?;
    println!(
        "Registered {} <{}>. Open the link in the verification e-mail, or run: chat verify --link '<link>'",
        user.username, user.email
    );
    Ok(())
}

async fn verify(relay: &str, link: &str) -> Result<(), String> {
    let client = Client::new(relay).map_err(|e| e.to_string())?;
    let user = client
        .verify_email(link)
        .await
        .map_err(|e| format!("verification failed: {e}"))?;
    println!(
        "E-mail verified for {}. Log in with: chat --login {}",
        user.username, user.username
    );
    Ok(())
}

/// The terminal in raw mode on the alternate screen; restored when dropped
/// (and by the panic hook, on a panic).
struct Tui {
    terminal: ratatui::DefaultTerminal,
}

impl Tui {
    fn enter() -> Result<Self, String> {
        let terminal =
            ratatui::try_init().map_err(|e| format!("cannot set the terminal up: {e}"))?;
        // ratatui's hook restores raw mode and the screen; this one also turns
        // bracketed paste off.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(std::io::stdout(), DisableBracketedPaste);
            hook(info);
        }));
        let _ = execute!(std::io::stdout(), EnableBracketedPaste);
        Ok(Self { terminal })
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = execute!(std::io::stdout(), DisableBracketedPaste);
        ratatui::restore();
    }
}

fn run_ui(cli: &Cli, offset: time::UtcOffset, rt: &tokio::runtime::Runtime) -> Result<(), String> {
    let mut tui = Tui::enter()?;
    let (tx, mut input) = tokio::sync::mpsc::unbounded_channel();
    // Keys are read on their own thread (crossterm's `read` blocks) and handed over.
    std::thread::spawn(move || {
        while let Ok(ev) = ratatui::crossterm::event::read() {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    rt.block_on(async {
        let Some(opened) = start::run(&mut tui.terminal, cli, &mut input).await? else {
            return Ok(());
        };
        let (session, _store) = opened;
        app::run(&mut tui.terminal, session, &mut input, offset).await
    })
}
