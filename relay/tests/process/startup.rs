//! The `sotto-relay` binary as a self-hoster runs it: one command starts it on its
//! embedded defaults; `admin create-master` prints a password once; the
//! environment bootstrap creates the first master; SIGTERM shuts it down cleanly.

use super::{BIN, free_port};

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn relay(dir: &std::path::Path, port: u16, envs: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SOTTO_LISTEN", format!("127.0.0.1:{port}"))
        // The default metrics port is left to the one test of the defaults.
        .env("SOTTO_METRICS_LISTEN", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn wait_healthy(port: u16) -> reqwest::blocking::Client {
    let client = reqwest::blocking::Client::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/health")).send()
            && r.status() == 200
        {
            return client;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("relay did not become healthy");
}

fn login(client: &reqwest::blocking::Client, port: u16, login: &str, password: &str) -> u16 {
    client
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
        .json(&serde_json::json!({"login": login, "password": password}))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn sigterm_and_wait(mut child: Child) -> (std::process::ExitStatus, String) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut log = String::new();
            for line in BufReader::new(child.stdout.take().unwrap()).lines() {
                log.push_str(&line.unwrap());
                log.push('\n');
            }
            return (status, log);
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "relay did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn starts_on_defaults_creates_master_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // `admin create-master` before the first start: prints the password once.
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .args([
            "admin",
            "create-master",
            "--username",
            "boss",
            "--email",
            "boss@example.org",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let password = text
        .lines()
        .find_map(|l| l.split_once("once; change it after signing in): "))
        .unwrap()
        .1
        .trim()
        .to_string();
    assert!(password.len() >= 32);
    // A second master with the same name is refused with a clear message.
    let again = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .args([
            "admin",
            "create-master",
            "--username",
            "boss",
            "--email",
            "other@example.org",
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("username is taken"));

    // The defaults, the metrics listener's included (127.0.0.1:9464).
    let child = {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SOTTO_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let client = wait_healthy(port);
    // Embedded defaults: SQLite, outbox and JWT key under ./data; the directory
    // 0700, every file in it 0600 (the database's WAL files too).
    for f in ["data/sotto.db", "data/jwt.key", "data/vapid.key"] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("data")), 0o700);
        let mut files = 0;
        for e in std::fs::read_dir(dir.path().join("data")).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
                files += 1;
            }
        }
        assert!(files >= 4, "only {files} files in the data directory");
    }
    // `/metrics` is on the metrics listener only (loopback by default).
    let public = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .unwrap();
    assert_eq!(public.status(), 404);
    let metrics = client.get("http://127.0.0.1:9464/metrics").send().unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .text()
            .unwrap()
            .contains("sotto_http_requests_total")
    );
    assert_eq!(login(&client, port, "boss", &password), 200);
    assert_eq!(login(&client, port, "boss", "not the password"), 401);
    let (status, log) = sigterm_and_wait(child);
    assert!(status.success(), "exit {status:?}");
    assert!(log.contains("listening on http://127.0.0.1"), "{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains(&password), "the password was logged");
}

#[test]
fn bootstrap_master_from_environment_and_no_default_account() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Without bootstrap variables there is no account at all, and the log says how to make one.
    let child = relay(dir.path(), port, &[]);
    let client = wait_healthy(port);
    assert_eq!(login(&client, port, "admin", "admin"), 401);
    assert_eq!(login(&client, port, "master", "password"), 401);
    let (_, log) = sigterm_and_wait(child);
    assert!(log.contains("admin create-master"), "{log}");

    let secret = "bootstrap passphrase for tests";
    let child = relay(
        dir.path(),
        port,
        &[
            ("SOTTO_BOOTSTRAP_MASTER_USERNAME", "first"),
            ("SOTTO_BOOTSTRAP_MASTER_EMAIL", "first@example.org"),
            ("SOTTO_BOOTSTRAP_MASTER_PASSWORD", secret),
            ("SOTTO_LOG_FORMAT", "json"),
        ],
    );
    let client = wait_healthy(port);
    assert_eq!(login(&client, port, "first", secret), 200);
    let (status, log) = sigterm_and_wait(child);
    assert!(status.success());
    assert!(!log.contains(secret), "the bootstrap password was logged");
    assert!(
        log.lines()
            .filter(|l| !l.is_empty())
            .all(|l| l.starts_with('{')),
        "not JSON logs: {log}"
    );
}

#[test]
fn a_wildcard_cors_origin_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = relay(dir.path(), port, &[("SOTTO_CORS_ORIGINS", "*")])
        .wait_with_output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("`*` is not allowed"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    let out = relay(
        dir.path(),
        port,
        &[("SOTTO_CORS_ORIGINS", "https://ok.example, not an origin")],
    )
    .wait_with_output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an origin"));
}
