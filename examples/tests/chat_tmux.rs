//! The terminal chat driven as a person would, with real processes: a relay
//! (`sotto-relay`, data in a temporary directory, a port the OS picks), two
//! accounts registered and verified with `chat register` / `chat verify` (the
//! links come from the relay's development outbox), and two `chat` instances
//! in one detached tmux session (a window each, 160×45) that we type into with
//! `tmux send-keys` and read with `tmux capture-pane`.
//!
//! The last screen of each is saved to
//! `target/test-artifacts/chat_tmux/{alice,bob}.txt` (also when the test fails).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sotto_tests::Backend;
use sotto_tests::process::RelayProcess;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);

/// `target/` (tests run from `target/<profile>/deps/`).
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf()
}

fn artifacts_dir() -> PathBuf {
    let dir = target_profile_dir()
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("test-artifacts")
        .join("chat_tmux");
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    dir
}

/// The relay process (`sotto_tests::process::RelayProcess`: its own data
/// directory, a port the OS picks, killed when dropped); its log is kept as a
/// test artifact, also when the test fails.
struct Relay {
    process: RelayProcess,
    url: String,
    runtime: tokio::runtime::Runtime,
}

impl Relay {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let process = runtime.block_on(RelayProcess::start(Backend::Sqlite));
        let url = process.url();
        Self {
            process,
            url,
            runtime,
        }
    }

    /// The verification link of the newest e-mail to `to` in the development outbox.
    fn verification_link(&self, to: &str) -> String {
        let mail = self.runtime.block_on(self.process.mail_to(to));
        mail.link("verify-email#token=").unwrap_or_else(|| {
            panic!(
                "no verification link in the e-mail to {to}:\n{}",
                mail.body()
            )
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = std::fs::write(artifacts_dir().join("relay.log"), self.process.log());
    }
}

/// A private tmux server (its own socket); killed when dropped, after the
/// panes' last screens are saved.
struct Tmux {
    sock: String,
    windows: Vec<String>,
    /// The screens were saved on purpose: do not overwrite them when dropped.
    saved: bool,
}

impl Tmux {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "tmux is needed for this test (apt-get install tmux)");
        Self {
            sock: format!("sotto-chat-test-{}-{nanos}", std::process::id()),
            windows: Vec::new(),
            saved: false,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.sock)
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("TERM", "xterm-256color")
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `command` (a shell command line) in a new window `name`.
    fn open(&mut self, name: &str, command: &str) {
        if self.windows.is_empty() {
            self.run(&[
                "new-session",
                "-d",
                "-s",
                "chat",
                "-x",
                "160",
                "-y",
                "45",
                "-n",
                name,
                command,
            ]);
        } else {
            self.run(&["new-window", "-d", "-t", "chat", "-n", name, command]);
        }
        self.windows.push(name.to_owned());
    }

    fn target(name: &str) -> String {
        format!("chat:{name}")
    }

    /// Types text literally (no Enter).
    fn type_text(&self, name: &str, text: &str) {
        self.run(&["send-keys", "-t", &Self::target(name), "-l", text]);
    }

    /// Presses keys by tmux name (`Enter`, `Tab`, ...).
    fn press(&self, name: &str, key: &str) {
        self.run(&["send-keys", "-t", &Self::target(name), key]);
    }

    /// Types a line and presses Enter.
    fn enter(&self, name: &str, text: &str) {
        self.type_text(name, text);
        // A moment between the text and Enter, as a person would (and so the
        // app sees them as separate reads, not a paste).
        std::thread::sleep(Duration::from_millis(100));
        self.press(name, "Enter");
    }

    fn capture(&self, name: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", &Self::target(name)]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the window until its screen contains `needle`; returns that screen.
    fn wait_for(&self, name: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.capture(name);
            if screen.contains(needle) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!(
                    "{name}'s screen never showed {needle:?} within {WAIT:?}; it shows:\n{screen}"
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Saves one window's screen now as `<file>.txt` among the artifacts.
    fn save_as(&self, name: &str, file: &str) {
        let _ = std::fs::write(
            artifacts_dir().join(format!("{file}.txt")),
            self.capture(name),
        );
    }

    fn save(&mut self) {
        self.saved = true;
        let dir = artifacts_dir();
        for w in &self.windows {
            let out = Command::new("tmux")
                .args([
                    "-L",
                    &self.sock,
                    "capture-pane",
                    "-p",
                    "-t",
                    &Self::target(w),
                ])
                .env("LANG", "C.UTF-8")
                .env("LC_ALL", "C.UTF-8")
                .output();
            if let Ok(out) = out {
                let _ = std::fs::write(dir.join(format!("{w}.txt")), &out.stdout);
            }
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if !self.saved {
            self.save();
        }
        let _ = Command::new("tmux")
            .args(["-L", &self.sock, "kill-server"])
            .output();
    }
}

fn chat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run chat")
}

fn register_and_verify(relay: &Relay, dir: &Path, name: &str) {
    let email = format!("{name}@example.com");
    let pw = dir.join("password");
    let out = chat(&[
        "register",
        "--relay",
        &relay.url,
        "--username",
        name,
        "--email",
        &email,
        "--password-file",
        pw.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chat register {name}: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("correct horse"),
        "the password was printed"
    );
    let link = relay.verification_link(&email);
    let out = chat(&["verify", "--relay", &relay.url, "--link", &link]);
    assert!(
        out.status.success(),
        "chat verify {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified"));
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shell command line of one chat window: the chat, then a note of how it
/// ended (kept on screen for the capture).
/// The chat of `name`; with `store_passphrase`, its store is locked with the
/// passphrase in that file instead of the login password.
fn chat_command(relay: &Relay, dir: &Path, name: &str, store_passphrase: Option<&Path>) -> String {
    let exe = env!("CARGO_BIN_EXE_chat");
    let store = dir.join(format!("{name}.db"));
    let pw = dir.join("password");
    let err = dir.join(format!("{name}.stderr"));
    let store_pass = store_passphrase
        .map(|f| {
            format!(
                " --store-passphrase-file {}",
                sh_quote(&f.to_string_lossy())
            )
        })
        .unwrap_or_default();
    format!(
        "{} --relay {} --store {} --login {name} --password-file {}{store_pass} 2>>{}; echo \"[chat exited with status $?]\"; sleep 3600",
        sh_quote(exe),
        sh_quote(&relay.url),
        sh_quote(&store.to_string_lossy()),
        sh_quote(&pw.to_string_lossy()),
        sh_quote(&err.to_string_lossy()),
    )
}

/// The 12 five-digit groups that follow `marker` on a screen.
fn safety_digits(screen: &str, marker: &str) -> String {
    let at = screen.find(marker).expect("the safety number is shown");
    screen[at..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 5)
        .take(12)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn two_people_chat_in_tmux() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("password"),
        "correct horse battery staple\n",
    )
    .expect("write the password");
    let mut relay = Relay::start();

    register_and_verify(&relay, dir.path(), "alice");
    register_and_verify(&relay, dir.path(), "bob");

    let mut tmux = Tmux::new();
    // Bob locks his store with a passphrase of its own, not his password.
    let bob_store_pass = dir.path().join("bob-store-passphrase");
    std::fs::write(&bob_store_pass, "bob's separate store passphrase\n").expect("write");
    tmux.open("alice", &chat_command(&relay, dir.path(), "alice", None));
    tmux.open(
        "bob",
        &chat_command(&relay, dir.path(), "bob", Some(&bob_store_pass)),
    );
    // Both logged in, keys set up, live.
    tmux.wait_for("alice", "● online");
    tmux.wait_for("bob", "● online");

    // Alice opens a direct room with bob.
    tmux.enter("alice", "/dm bob");
    tmux.wait_for("alice", "Message bob");

    // Alice is not in Bob's contacts: he gets an invitation, and joins.
    tmux.wait_for("bob", "alice wants to chat with you");
    tmux.enter("bob", "/invites");
    tmux.wait_for("bob", "#1: alice wants to chat with you");
    tmux.enter("bob", "/join 1");
    tmux.wait_for("bob", "Message alice");

    // Alice types: bob sees her typing, then the message.
    tmux.type_text("alice", "hello bob, this is alice");
    tmux.wait_for("bob", "alice is typing");
    tmux.press("alice", "Enter");
    tmux.wait_for("bob", "hello bob, this is alice");
    // Bob has the room open: alice's message is marked read.
    tmux.wait_for("alice", "✓✓");

    // Bob replies; alice sees it.
    tmux.enter("bob", "hi alice, bob here");
    tmux.wait_for("alice", "hi alice, bob here");
    tmux.wait_for("bob", "✓✓");

    // Safety numbers match on both screens; alice marks bob verified.
    tmux.enter("alice", "/verify bob");
    let a = tmux.wait_for("alice", "Safety number with bob");
    tmux.enter("bob", "/verify alice");
    let b = tmux.wait_for("bob", "Safety number with alice");
    let (na, nb) = (
        safety_digits(&a, "Safety number with bob"),
        safety_digits(&b, "Safety number with alice"),
    );
    assert_eq!(na.len(), 71, "12 groups of 5 digits: {na:?}");
    assert_eq!(na, nb, "both sides see the same safety number");
    tmux.enter("alice", "/verified bob");
    tmux.wait_for("alice", "bob is now verified");
    tmux.wait_for("alice", "verified ✔");

    // A file: alice sends it, bob saves it, the bytes match.
    let file = dir.path().join("notes.txt");
    let content: String = (0..5000)
        .map(|i| format!("line {i} of the notes\n"))
        .collect();
    std::fs::write(&file, &content).expect("write the file");
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("mkdir");
    tmux.enter("alice", &format!("/file {}", file.display()));
    tmux.wait_for("alice", "Sent notes.txt");
    tmux.wait_for("bob", "[file #1] notes.txt");
    tmux.enter("bob", &format!("/save 1 {}", downloads.display()));
    tmux.wait_for("bob", "Saved file #1");
    let saved = std::fs::read_to_string(downloads.join("notes.txt")).expect("the saved file");
    assert_eq!(saved, content, "the file arrived intact");

    // A hostile relay writes a stranger into their direct room, straight into
    // the database: alice's chat sends nothing there and says why, loudly.
    relay.runtime.block_on(relay.process.register_verified(
        &relay.url,
        "mallory",
        "mallory's long password",
    ));
    relay.process.kill();
    tmux.wait_for("alice", "○ offline");
    relay.runtime.block_on(relay.process.tamper_sqlite(&[(
        "INSERT INTO room_members (room_id, user_id, joined_at, joined_seq, delivered_seq, delivered_at, read_seq, read_at)
         SELECT r.id, u.id, r.created_at, r.last_seq, r.last_seq, 0, r.last_seq, 0
         FROM rooms r, users u WHERE r.kind = 'direct' AND u.username = 'mallory'",
        vec![],
    )]));
    relay.process.restart();
    tmux.wait_for("alice", "● online");
    tmux.enter("alice", "the launch code is 4711");
    tmux.wait_for("alice", "⚠ The relay lists mallory in this direct room");
    tmux.wait_for("alice", "✗  alice: the launch code is 4711");
    tmux.save_as("alice", "alice-direct-room-tampered");

    // /help lists the commands.
    tmux.enter("bob", "/help");
    tmux.wait_for("bob", "/backup <file>");

    // Nothing typed or sent is anywhere in the relay's files (database, WAL,
    // attachments); the control shows the search sees what the relay did store.
    let mut stored = Vec::new();
    let mut dirs = vec![relay.process.data_dir()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read the data dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                stored.push(std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    let found = |needle: &str| {
        stored
            .iter()
            .any(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
    };
    assert!(
        found("alice@example.com"),
        "control: the search sees stored bytes"
    );
    for secret in [
        "the launch code is 4711",
        "hello bob, this is alice",
        "hi alice, bob here",
        "line 4999 of the notes",
    ] {
        assert!(!found(secret), "{secret:?} is at rest on the relay");
    }

    // Quit with Esc: the chat ends cleanly (status 0) and gives the terminal back.
    tmux.press("alice", "Escape");
    tmux.wait_for("alice", "[chat exited with status 0]");

    // Bob restarts his chat: the conversation is there again at once, from
    // the history sealed in his store (the relay keeps only envelopes, and the
    // chat never asks it for old messages).
    tmux.press("bob", "Escape");
    tmux.wait_for("bob", "[chat exited with status 0]");
    tmux.open(
        "bob-again",
        &chat_command(&relay, dir.path(), "bob", Some(&bob_store_pass)),
    );
    tmux.wait_for("bob-again", "● online");
    tmux.press("bob-again", "Tab");
    tmux.wait_for("bob-again", "hello bob, this is alice");
    tmux.wait_for("bob-again", "hi alice, bob here");
    tmux.wait_for("bob-again", "[file #1] notes.txt");
    tmux.save_as("bob-again", "bob-history-after-restart");
    // His store file holds none of it in the clear.
    let bob_store = std::fs::read(dir.path().join("bob.db")).unwrap_or_default();
    for secret in ["hello bob, this is alice", "hi alice, bob here"] {
        assert!(
            !bob_store
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret:?} is in the clear in bob's store"
        );
    }
    tmux.save();
    let err = std::fs::read_to_string(dir.path().join("alice.stderr")).unwrap_or_default();
    assert!(!err.contains("panicked"), "alice's chat panicked:\n{err}");
    drop(tmux);
    drop(relay);
}
