//! The `sotto` command-line tool, run as a real process: keygen → seal → open
//! round trips for both suites, and every refusal exits non-zero with a clear message.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "correct horse\n").unwrap();
        std::fs::write(dir.path().join("wrong"), "wrong horse\n").unwrap();
        Self { dir }
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sotto"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("SOTTO_PASSPHRASE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }
    /// keygen with test-sized KDF parameters; writes NAME.key and NAME.json.
    fn keygen(&self, name: &str, extra: &[&str]) {
        let key = format!("{name}.key");
        let mut args = vec![
            "keygen",
            "--out",
            &key,
            "--passphrase-file",
            "pw",
            "--kdf-memory-kib",
            "8192",
        ];
        args.extend_from_slice(extra);
        let out = self.run(&args, b"");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(self.p(&format!("{name}.json")), &out.stdout).unwrap();
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> &[u8] {
    assert!(o.status.success(), "failed: {}", stderr(o));
    &o.stdout
}

fn refused(o: &Output, needle: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected refusal, got {:?}: {}",
        o.status,
        stderr(o)
    );
    assert!(
        stderr(o).contains(needle),
        "stderr {:?} lacks {needle:?}",
        stderr(o)
    );
    assert!(o.stdout.is_empty(), "nothing may reach stdout on failure");
}

#[test]
fn keygen_seal_open_round_trip_both_suites_and_json() {
    let e = Env::new();
    e.keygen("alice", &[]);
    e.keygen("bob", &["--rsa", "2048"]);
    let msg = b"meet me at the usual place\n\x00\xff binary too";
    for args in [&["--suite", "x25519"][..], &["--suite", "rsa"], &["--json"]] {
        let mut seal = vec![
            "seal",
            "--key",
            "alice.key",
            "--passphrase-file",
            "pw",
            "--to",
            "bob.json",
        ];
        seal.extend_from_slice(args);
        let sealed = ok(&e.run(&seal, msg)).to_vec();
        assert!(
            !sealed.windows(8).any(|w| w == b"meet me "),
            "plaintext visible in envelope"
        );
        let opened = e.run(
            &[
                "open",
                "--key",
                "bob.key",
                "--passphrase-file",
                "pw",
                "--from",
                "alice.json",
            ],
            &sealed,
        );
        assert_eq!(ok(&opened), msg);
        assert!(stderr(&opened).contains("verified message"));
    }
    // The key file is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(e.p("alice.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    // `bundle` reprints the same public bundle.
    let again = e.run(
        &["bundle", "--key", "bob.key", "--passphrase-file", "pw"],
        b"",
    );
    assert_eq!(ok(&again), std::fs::read(e.p("bob.json")).unwrap());
}

#[test]
fn failures_exit_non_zero_with_clear_messages() {
    let e = Env::new();
    e.keygen("alice", &[]);
    e.keygen("bob", &[]);
    e.keygen("carol", &[]);
    let sealed = ok(&e.run(
        &[
            "seal",
            "--key",
            "alice.key",
            "--passphrase-file",
            "pw",
            "--to",
            "bob.json",
            "--room",
            "00000000-0000-0000-0000-000000000007",
        ],
        b"secret",
    ))
    .to_vec();
    let open = |key: &str, pw: &str, from: &str, room: &str, input: &[u8]| {
        e.run(
            &[
                "open",
                "--key",
                key,
                "--passphrase-file",
                pw,
                "--from",
                from,
                "--room",
                room,
            ],
            input,
        )
    };
    let room = "00000000-0000-0000-0000-000000000007";
    assert_eq!(
        ok(&open("bob.key", "pw", "alice.json", room, &sealed)),
        b"secret"
    );
    // Wrong passphrase.
    refused(
        &open("bob.key", "wrong", "alice.json", room, &sealed),
        "wrong passphrase",
    );
    // Wrong recipient.
    refused(
        &open("carol.key", "pw", "alice.json", room, &sealed),
        "not a recipient",
    );
    // Wrong sender key.
    refused(
        &open("bob.key", "pw", "carol.json", room, &sealed),
        "signature verification failed",
    );
    // Another room.
    refused(
        &open(
            "bob.key",
            "pw",
            "alice.json",
            "00000000-0000-0000-0000-000000000008",
            &sealed,
        ),
        "context",
    );
    // Tampered envelope.
    let mut t = sealed.clone();
    let mid = t.len() / 2;
    t[mid] ^= 1;
    refused(
        &open("bob.key", "pw", "alice.json", room, &t),
        "cannot open",
    );
    refused(
        &open("bob.key", "pw", "alice.json", room, b"garbage"),
        "unsupported envelope version",
    );
    refused(
        &open("bob.key", "pw", "alice.json", room, b"\x01garbage"),
        "malformed",
    );
    refused(
        &open("bob.key", "pw", "alice.json", room, b"{\"version\":1}"),
        "malformed",
    );
    // A tampered bundle file is refused before anything is sealed.
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.p("bob.json")).unwrap()).unwrap();
    bundle["user_id"] = "00000000-0000-0000-0000-0000000000ff".into();
    std::fs::write(e.p("forged.json"), bundle.to_string()).unwrap();
    refused(
        &e.run(
            &[
                "seal",
                "--key",
                "alice.key",
                "--passphrase-file",
                "pw",
                "--to",
                "forged.json",
            ],
            b"x",
        ),
        "invalid bundle",
    );
    // RSA requested for a device without an RSA key.
    refused(
        &e.run(
            &[
                "seal",
                "--key",
                "alice.key",
                "--passphrase-file",
                "pw",
                "--to",
                "bob.json",
                "--suite",
                "rsa",
            ],
            b"x",
        ),
        "RSA",
    );
    // Usage errors exit 2: missing passphrase, existing output file, bad RSA size.
    let o = e.run(&["bundle", "--key", "alice.key"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = e.run(
        &["keygen", "--out", "alice.key", "--passphrase-file", "pw"],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    let o = e.run(
        &[
            "keygen",
            "--out",
            "x.key",
            "--passphrase-file",
            "pw",
            "--rsa",
            "1024",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!Path::new(&e.p("x.key")).exists());
}

#[test]
fn safety_number_is_symmetric() {
    let e = Env::new();
    e.keygen("alice", &[]);
    e.keygen("bob", &[]);
    let ab = ok(&e.run(&["safety-number", "alice.json", "bob.json"], b"")).to_vec();
    let ba = ok(&e.run(&["safety-number", "bob.json", "alice.json"], b"")).to_vec();
    assert_eq!(ab, ba);
    let text = String::from_utf8(ab).unwrap();
    assert_eq!(text.trim().split(' ').count(), 12);
    assert!(text.trim().chars().all(|c| c.is_ascii_digit() || c == ' '));
}
