//! `sotto`: make keys, seal and open messages, and compare safety numbers from
//! the command line, using only `sotto-core` (no relay).
//!
//! ```text
//! sotto keygen --out alice.key --passphrase-file pw > alice.json
//! sotto seal --key alice.key --passphrase-file pw --to bob.json < msg > msg.sotto
//! sotto open --key bob.key --passphrase-file pw --from alice.json < msg.sotto
//! sotto safety-number alice.json bob.json
//! ```
//!
//! Exit codes: 0 success, 1 the operation was refused (wrong passphrase, not a
//! recipient, tampered or forged input), 2 usage or I/O error.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use sotto_core::backup::{self, BackupParams, DeviceSecrets};
use sotto_core::envelope::{self, Envelope, Header, OpenContext, Recipient};
use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, RsaBits, VerifiedDevice,
};
use sotto_core::safety::SafetyNumber;
use uuid::Uuid;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "sotto",
    version,
    about = "Sotto end-to-end encryption from the command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct KeyArgs {
    /// Encrypted key backup written by `sotto keygen`.
    #[arg(long)]
    key: PathBuf,
    /// File whose first line is the backup passphrase (else $SOTTO_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum SuiteArg {
    X25519,
    Rsa,
}

#[derive(Subcommand)]
enum Command {
    /// Generate an identity and a device, write the encrypted backup, print the public bundle JSON.
    Keygen {
        /// Where to write the passphrase-encrypted key backup (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
        /// File whose first line is the passphrase (else $SOTTO_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Also generate an RSA key of this many bits (2048, 3072 or 4096).
        #[arg(long)]
        rsa: Option<usize>,
        /// User id to bind (default: a new random one).
        #[arg(long)]
        user_id: Option<Uuid>,
        /// Device id to bind (default: a new random one).
        #[arg(long)]
        device_id: Option<Uuid>,
        /// Argon2id memory in KiB (default 65536).
        #[arg(long, default_value_t = BackupParams::default().m_cost_kib)]
        kdf_memory_kib: u32,
    },
    /// Print the public bundle JSON of a key backup.
    Bundle {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Seal standard input to the given recipient bundles; the envelope goes to standard output.
    Seal {
        #[command(flatten)]
        key: KeyArgs,
        /// Recipient device bundle JSON (repeat for several devices).
        #[arg(long = "to", required = true)]
        to: Vec<PathBuf>,
        /// Room id bound into the message (default: the nil UUID).
        #[arg(long, default_value_t = Uuid::nil())]
        room: Uuid,
        /// Key-wrap suite for every recipient.
        #[arg(long, value_enum, default_value = "x25519")]
        suite: SuiteArg,
        /// Write the JSON form instead of the binary envelope.
        #[arg(long)]
        json: bool,
    },
    /// Open an envelope from standard input (binary or JSON); the plaintext goes to standard output.
    Open {
        #[command(flatten)]
        key: KeyArgs,
        /// The sender's device bundle JSON (the key you trust for this sender).
        #[arg(long)]
        from: PathBuf,
        /// Room the message must belong to (default: the nil UUID).
        #[arg(long, default_value_t = Uuid::nil())]
        room: Uuid,
    },
    /// Print the safety number of the identities in two bundle files.
    SafetyNumber { a: PathBuf, b: PathBuf },
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    message: String,
}

fn refused(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}
fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("sotto: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Keygen {
            out,
            passphrase_file,
            rsa,
            user_id,
            device_id,
            kdf_memory_kib,
        } => {
            let rsa = match rsa {
                Some(bits) => Some(
                    RsaBits::from_bits(bits)
                        .ok_or_else(|| usage("--rsa must be 2048, 3072 or 4096"))?,
                ),
                None => None,
            };
            let passphrase = read_passphrase(passphrase_file.as_deref())?;
            let secrets = DeviceSecrets {
                user_id: user_id.unwrap_or_else(Uuid::new_v4),
                device_id: device_id.unwrap_or_else(Uuid::new_v4),
                identity: IdentityKeyPair::generate().map_err(|e| usage(e.to_string()))?,
                device: DeviceKeys::generate(DeviceKeyOptions { rsa })
                    .map_err(|e| usage(e.to_string()))?,
            };
            let params = BackupParams {
                m_cost_kib: kdf_memory_kib,
                ..BackupParams::default()
            };
            let blob = backup::export_with_passphrase(&secrets, passphrase.as_bytes(), &params)
                .map_err(|e| usage(e.to_string()))?;
            write_new_file(&out, &blob)?;
            print_bundle(&secrets)
        }
        Command::Bundle { key } => print_bundle(&load(&key)?),
        Command::Seal {
            key,
            to,
            room,
            suite,
            json,
        } => {
            let me = load(&key)?;
            let devices: Vec<VerifiedDevice> = to
                .iter()
                .map(|p| read_bundle(p))
                .collect::<Result<_, _>>()?;
            let recipients: Vec<Recipient<'_>> = devices
                .iter()
                .map(|d| match suite {
                    SuiteArg::X25519 => Recipient::x25519(d),
                    SuiteArg::Rsa => Recipient::rsa(d),
                })
                .collect();
            let plaintext = read_stdin()?;
            let header = Header {
                room_id: room,
                sender_user_id: me.user_id,
                sender_device_id: me.device_id,
                client_message_id: Uuid::now_v7(),
                timestamp_ms: now_ms(),
            };
            let sealed = envelope::seal(&plaintext, &header, &recipients, &me.device)
                .map_err(|e| refused(format!("cannot seal: {e}")))?;
            let out = if json {
                (sealed.to_json_string() + "\n").into_bytes()
            } else {
                sealed.to_bytes()
            };
            write_stdout(&out)
        }
        Command::Open { key, from, room } => {
            let me = load(&key)?;
            let sender = read_bundle(&from)?;
            let input = read_stdin()?;
            let bytes = if input.first() == Some(&b'{') {
                let text = std::str::from_utf8(&input)
                    .map_err(|_| refused("envelope JSON is not UTF-8"))?;
                Envelope::from_json_str(text.trim_end())
                    .map_err(|e| refused(format!("cannot open: malformed envelope: {e}")))?
                    .to_bytes()
            } else {
                input.to_vec()
            };
            let opened = envelope::open(
                &bytes,
                me.device_id,
                &me.device,
                &OpenContext {
                    room_id: room,
                    sender: &sender,
                },
            )
            .map_err(|e| refused(format!("cannot open: {e}")))?;
            eprintln!(
                "sotto: verified message {} from user {} device {}",
                opened.replay_id(),
                opened.header.sender_user_id,
                opened.header.sender_device_id
            );
            write_stdout(&opened.plaintext)
        }
        Command::SafetyNumber { a, b } => {
            let (a, b) = (read_bundle(&a)?, read_bundle(&b)?);
            let sn = SafetyNumber::new(a.identity_key(), b.identity_key());
            println!("{}", sn.display());
            Ok(())
        }
    }
}

fn read_passphrase(file: Option<&Path>) -> Result<Zeroizing<String>, Failure> {
    let text =
        match file {
            Some(path) => Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?,
            ),
            None => Zeroizing::new(std::env::var("SOTTO_PASSPHRASE").map_err(|_| {
                usage("no passphrase: pass --passphrase-file or set SOTTO_PASSPHRASE")
            })?),
        };
    let line = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
    if line.is_empty() {
        return Err(usage("the passphrase is empty"));
    }
    Ok(line)
}

fn load(args: &KeyArgs) -> Result<DeviceSecrets, Failure> {
    let blob = std::fs::read(&args.key)
        .map_err(|e| usage(format!("cannot read {}: {e}", args.key.display())))?;
    let passphrase = read_passphrase(args.passphrase_file.as_deref())?;
    backup::import_with_passphrase(&blob, passphrase.as_bytes())
        .map_err(|e| refused(format!("cannot unlock {}: {e}", args.key.display())))
}

fn read_bundle(path: &Path) -> Result<VerifiedDevice, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    DeviceBundle::from_json_verified(&text)
        .map_err(|e| refused(format!("{}: invalid bundle: {e}", path.display())))
}

fn print_bundle(s: &DeviceSecrets) -> Result<(), Failure> {
    let bundle = DeviceBundle::create(&s.identity, &s.device, s.user_id, s.device_id)
        .map_err(|e| usage(e.to_string()))?;
    let json = serde_json::to_string_pretty(&bundle).map_err(|e| usage(e.to_string()))?;
    write_stdout(format!("{json}\n").as_bytes())
}

fn read_stdin() -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut buf = Zeroizing::new(Vec::new());
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
    Ok(buf)
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| usage(format!("cannot write output: {e}")))
}

fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| usage(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
