//! The relay binary under hostile connection patterns and login bursts, as the
//! outside test found them: slow and idle clients, more connections than the
//! inherited open-files limit, one address opening hundreds of connections, and
//! the memory a burst of Argon2id logins leaves behind.

use super::{BIN, free_port};

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The relay started through `sh` with a lowered soft open-files limit, logs to
/// a file (a full pipe would block it).
struct Relay {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Relay {
    fn start(soft_nofile: u32, envs: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("relay.log")).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -Sn {soft_nofile} && exec \"$0\""))
            .arg(BIN)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SOTTO_LISTEN", format!("127.0.0.1:{port}"))
            .env("SOTTO_METRICS_LISTEN", "")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let relay = Self {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if health(port, Duration::from_secs(1)) {
                return relay;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("relay did not become healthy");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn health(port: u16, timeout: Duration) -> bool {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .is_ok_and(|r| r.status() == 200)
}

/// Soft and hard "Max open files" of a process.
fn nofile_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].to_string(), f[4].to_string())
}

/// A connection from `from` that sends part of a request head and stops.
async fn slow_client(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let mut s = socket.connect(to).await?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: relay\r\nX-Slow: ")
        .await?;
    Ok(s)
}

/// Whether the peer closes `s` within `within` (EOF or reset).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[test]
fn open_files_soft_limit_is_raised_to_the_hard_limit() {
    let relay = Relay::start(256, &[]);
    let (soft, hard) = nofile_limits(relay.pid());
    assert_eq!(soft, hard, "soft open-files limit not raised");
    if let Ok(h) = hard.parse::<u64>() {
        assert!(h > 256);
    }
}

#[test]
fn slow_idle_and_crowding_clients_do_not_starve_health() {
    // The test itself holds ~1,300 sockets.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let relay = Relay::start(
        512,
        &[
            ("SOTTO_HEADER_READ_TIMEOUT", "2"),
            ("SOTTO_IDLE_TIMEOUT", "3"),
            ("SOTTO_MAX_CONNECTIONS_PER_IP", "40"),
        ],
    );
    let port = relay.port;
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // 1. One address opens 300 connections: 40 are served, the rest closed at once.
        let crowd: IpAddr = "127.0.0.2".parse().unwrap();
        let mut one_ip = Vec::new();
        for _ in 0..300 {
            if let Ok(s) = slow_client(crowd, to).await {
                one_ip.push(s);
            }
        }
        let mut refused = 0;
        for s in &mut one_ip {
            if closed_within(s, Duration::from_millis(300)).await {
                refused += 1;
            }
        }
        assert!(
            refused >= 250,
            "per-IP cap: only {refused} of 300 closed at once"
        );

        // 2. Many addresses, each under the cap, together beyond the relay's
        //    inherited soft limit of 512 descriptors: 25 × 38 = 950 slow clients.
        let mut many = Vec::new();
        for i in 1..=25u8 {
            let from: IpAddr = format!("127.0.1.{i}").parse().unwrap();
            for _ in 0..38 {
                many.push(slow_client(from, to).await.unwrap());
            }
        }
        // While they hold their sockets, /health answers.
        for _ in 0..3 {
            let ok = tokio::task::spawn_blocking(move || health(port, Duration::from_secs(5)))
                .await
                .unwrap();
            assert!(ok, "/health unanswered under slow clients");
        }
        // A request head must arrive within the header-read timeout (2 s): the slow
        // clients are closed.
        let mut closed = 0;
        for s in many.iter_mut().step_by(19) {
            if closed_within(s, Duration::from_secs(8)).await {
                closed += 1;
            }
        }
        assert_eq!(closed, 50, "slow clients kept past the header-read timeout");
        drop(many);
        drop(one_ip);

        // 3. A kept-alive connection that goes quiet after its request is closed.
        let mut s = TcpStream::connect(to).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: relay\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        assert!(
            closed_within(&mut s, Duration::from_secs(8)).await,
            "idle kept-alive connection not closed"
        );

        // 4. A client that sends nothing at all is closed too.
        let mut silent = TcpStream::connect(to).await.unwrap();
        assert!(closed_within(&mut silent, Duration::from_secs(8)).await);
    });
    assert!(health(port, Duration::from_secs(5)));
}

#[test]
fn a_burst_of_logins_leaves_memory_bounded_and_returns_it() {
    let secret = "bootstrap passphrase for tests";
    let relay = Relay::start(
        4096,
        &[
            ("SOTTO_BOOTSTRAP_MASTER_USERNAME", "first"),
            ("SOTTO_BOOTSTRAP_MASTER_EMAIL", "first@example.org"),
            ("SOTTO_BOOTSTRAP_MASTER_PASSWORD", secret),
            ("SOTTO_AUTH_RATE_PER_IP", "100000"),
            ("SOTTO_AUTH_RATE_PER_ACCOUNT", "100000"),
        ],
    );
    let port = relay.port;
    let login = move || {
        let client = reqwest::blocking::Client::new();
        let status = client
            .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
            .json(&serde_json::json!({"login": "first", "password": secret}))
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 200);
    };
    login();
    std::thread::sleep(Duration::from_secs(1));
    let idle = relay.rss_kib();
    // 96 logins, 8 at a time, while the peak RSS is sampled.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        let pid = relay.pid();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    && let Some(kb) = s.lines().find_map(|l| l.strip_prefix("VmRSS:"))
                {
                    let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap();
                    peak = peak.max(kb);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let workers: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..12 {
                    login();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    // Argon2id runs at most 2 × cores at once, 19 MiB each.
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get) as u64;
    let bound = idle + cores * 2 * 19 * 1024 + 48 * 1024;
    assert!(
        peak <= bound,
        "peak RSS {peak} KiB over idle {idle} KiB + {} × 19 MiB + 48 MiB",
        cores * 2
    );
    // And it goes back near idle once the burst is over.
    let start = Instant::now();
    let mut after = relay.rss_kib();
    while after > idle + 24 * 1024 && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(250));
        after = relay.rss_kib();
    }
    assert!(
        after <= idle + 24 * 1024,
        "RSS after the burst {after} KiB, idle was {idle} KiB (peak {peak} KiB)"
    );
}
