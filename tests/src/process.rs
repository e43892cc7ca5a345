//! The relay as a real process (the `sotto-relay` binary) on a port the OS
//! chose, and a TCP proxy in front of it whose connections a test can cut.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::{Backend, Mail, fresh_postgres_database};

/// The `sotto-relay` binary next to this test binary (`target/<profile>/`).
pub fn relay_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("sotto-relay");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p sotto-relay`; `cargo nextest run --workspace` does)",
        bin.display()
    );
    bin
}

/// A relay process with its own data directory (and PostgreSQL database).
/// Killed when dropped.
pub struct RelayProcess {
    child: Option<Child>,
    /// The data directory (SQLite file, outbox, attachments, logs).
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database, if the backend is PostgreSQL.
    pub database_url: Option<String>,
    /// The port it listens on (kept across restarts).
    pub port: u16,
    /// Extra environment (configuration) of the process.
    env: Vec<(String, String)>,
}

impl RelayProcess {
    /// Starts a relay on `backend`, on a port the OS picks.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// Starts a relay with extra configuration (`SOTTO_*` variables).
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> Self {
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres_database().await),
        };
        let mut relay = Self {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            database_url,
            port: 0,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        relay.spawn();
        relay
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("relay.log")
    }

    fn spawn(&mut self) {
        let log_path = self.log_path();
        let start_len = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut cmd = Command::new(relay_binary());
        cmd.env_clear();
        if let Some(url) = &self.database_url {
            cmd.env("SOTTO_DATABASE_URL", url);
        }
        let child = cmd
            .current_dir(self.dir.path())
            .env("SOTTO_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("SOTTO_DATA_DIR", self.data_dir())
            .env("SOTTO_POST_RATE", "1000000")
            .env("SOTTO_WS_FRAME_RATE", "1000000")
            .env("SOTTO_WS_TYPING_RATE", "1000")
            .env("SOTTO_AUTH_RATE_PER_IP", "100000")
            .env("SOTTO_AUTH_RATE_PER_ACCOUNT", "100000")
            .env("SOTTO_METRICS_LISTEN", "")
            .env("SOTTO_ROOM_CREATE_RATE", "1000000")
            .env("SOTTO_INVITE_RATE", "1000000")
            .env("SOTTO_RECEIPT_RATE", "1000000")
            .env("SOTTO_DEVICE_UPDATE_RATE", "1000000")
            .env("SOTTO_CONTACT_RATE", "1000000")
            .env("SOTTO_REFRESH_RATE", "1000000")
            .env("SOTTO_CHECK_USERNAME_RATE", "1000000")
            .env("SOTTO_PUSH_TEST_RATE", "1000000")
            .env("RUST_LOG", "warn,sotto_relay=info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Wait for "listening on http://ADDR" in the new part of the log.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read(&log_path).unwrap_or_default();
            let new = String::from_utf8_lossy(text.get(start_len as usize..).unwrap_or_default());
            if let Some(i) = new.find("listening on http://") {
                let rest = &new[i + "listening on http://".len()..];
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                let addr: SocketAddr = addr.parse().unwrap();
                self.port = addr.port();
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the relay exited ({status}) before listening:\n{new}");
            }
            assert!(Instant::now() < deadline, "the relay did not start:\n{new}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the relay (SIGKILL: no graceful shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs statements on the relay's SQLite database, as a hostile operator
    /// could (stop the relay first); each must change exactly one row.
    pub async fn tamper_sqlite(&self, statements: &[(&str, Vec<String>)]) {
        let path = self.data_dir().join("sotto.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        for (sql, binds) in statements {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
            for b in binds {
                q = q.bind(b.clone());
            }
            assert_eq!(q.execute(&pool).await.unwrap().rows_affected(), 1, "{sql}");
        }
        pool.close().await;
    }

    /// The relay's log so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.log_path()).unwrap_or_default()).into_owned()
    }

    /// Registers `name` (e-mail `name@example.org`) through `url` with the SDK's
    /// client and verifies the address with the link from the outbox.
    pub async fn register_verified(&self, url: &str, name: &str, password: &str) {
        let client = sotto_client::Client::new(url).unwrap();
        let email = format!("{name}@example.org");
        client.register(name, &email, password).await.unwrap();
        let mail = self.mail_to(&email).await;
        let link = mail.link("verify-email").expect("a verification link");
        client.verify_email(&link).await.unwrap();
    }

    /// The newest e-mail to `to` in the development outbox, waiting for it.
    pub async fn mail_to(&self, to: &str) -> Mail {
        let dir = self.data_dir().join("outbox");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut found: Vec<(std::time::SystemTime, String)> = Vec::new();
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let data = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let head = data
                        .split("\r\n\r\n")
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if head.contains(&format!("to: {}", to.to_ascii_lowercase())) {
                        let t = e.metadata().and_then(|m| m.modified()).unwrap();
                        found.push((t, data));
                    }
                }
            }
            found.sort();
            if let Some((_, data)) = found.pop() {
                return Mail {
                    from: String::new(),
                    to: vec![to.to_string()],
                    data,
                };
            }
            assert!(
                Instant::now() < deadline,
                "no e-mail to {to} in {}",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy on loopback in front of `upstream`; [`TcpProxy::cut`] drops every
/// connection through it at once (both directions), as a network failure would.
pub struct TcpProxy {
    /// The port clients connect to.
    pub port: u16,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy to `127.0.0.1:upstream_port`.
    pub async fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let list = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", upstream_port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut l = list.lock().unwrap();
                l.retain(|h| !h.is_finished());
                l.push(task);
            }
        });
        Self {
            port,
            conns,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Drops every open connection (new ones are accepted again).
    pub fn cut(&self) -> usize {
        let mut l = self.conns.lock().unwrap();
        let n = l.iter().filter(|h| !h.is_finished()).count();
        for h in l.drain(..) {
            h.abort();
        }
        n
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
