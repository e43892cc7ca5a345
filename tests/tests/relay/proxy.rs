//! `deploy/nginx.conf`, the reverse-proxy example of `docs/deploy.md`, run for
//! real: nginx started with that very file (its `{{…}}` values filled with a
//! throw-away certificate and loopback ports) in front of a relay, and a client
//! speaking to the relay through it over https (HTTP/2) and wss.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sotto_core::api::ServerFrame;
use sotto_core::api::ws::ClientFrame;
use sotto_core::encoding::B64;
use sotto_tests::{AppOptions, Backend, TestApp, Ws, spawn_app, spawn_app_with};

/// nginx, stopped when dropped. It runs as one process (`master_process off`),
/// so killing it leaves no worker behind.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx_binary() -> &'static str {
    for p in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("nginx is not installed (scripts/test installs it)");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx started with `deploy/nginx.conf` in front of `app` (a throw-away CA
/// and certificate for "localhost"): the process, its port, the CA's
/// certificate, and the directory (kept while it runs).
fn start_nginx(app: &TestApp) -> (Nginx, u16, CertificateDer<'static>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A throw-away CA and a server certificate for "localhost" signed by it.
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "openssl {args:?} failed");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-days",
                "1",
                "-subj",
                "/CN=sotto test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"],
            &ec[..],
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        d.join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);

    let port = free_port();
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx.conf"))
            .unwrap();
    let site = example
        .replace("{{server_name}}", "localhost")
        .replace("{{listen}}", &format!("127.0.0.1:{port}"))
        .replace("{{certificate}}", &d.join("cert.pem").display().to_string())
        .replace("{{key}}", &d.join("key.pem").display().to_string())
        .replace("{{relay}}", &app.addr.to_string());
    assert!(
        !site
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("{{")),
        "a placeholder was left: {site}"
    );
    std::fs::write(d.join("sotto.conf"), site).unwrap();
    let p = d.display();
    std::fs::write(
        d.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
               fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
               include {p}/sotto.conf;\n}}\n"
        ),
    )
    .unwrap();
    let _nginx = Nginx(
        Command::new(nginx_binary())
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        up,
        "nginx did not start: {}",
        std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
    );

    let cert = CertificateDer::from_pem_file(d.join("ca.pem")).unwrap();
    (_nginx, port, cert, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nginx_example_carries_https_and_websockets() {
    let app = spawn_app(Backend::Sqlite).await;
    let m = app.members("proxied", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "through nginx", &[bob.id()]).await;

    let (_nginx, port, cert, _dir) = start_nginx(&app);
    let base = format!("https://localhost:{port}");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&cert).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();

    // REST over TLS, HTTP/2.
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.version(), reqwest::Version::HTTP_2);

    // A WebSocket over TLS through the proxy's upgrade.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(tls));
    // The name must match the certificate; the port is nginx's on loopback.
    let mut ws = Ws::connect_to(
        &format!("wss://localhost:{port}/api/v1/ws"),
        Some(connector),
    )
    .await
    .authenticate(bob.token())
    .await;

    // A message posted through the proxy (REST) reaches the socket through it,
    // and a send on the socket is acked through it.
    let to = [alice.verified(), bob.verified()];
    let (cid, env) = alice.seal(room, b"via nginx", &to);
    let r = http
        .post(format!("{base}/api/v1/rooms/{room}/messages"))
        .bearer_auth(alice.token())
        .json(&serde_json::json!({"client_id": cid, "envelope": B64(env.clone())}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    match ws
        .next_where(|f| matches!(f, ServerFrame::Message { .. }))
        .await
    {
        ServerFrame::Message { seq, envelope, .. } => {
            assert_eq!(seq, 1);
            assert_eq!(envelope.0, env);
        }
        other => panic!("{other:?}"),
    }
    let (cid, env) = bob.seal(room, b"back via nginx", &to);
    ws.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: B64(env),
    })
    .await;
    match ws
        .next_where(|f| matches!(f, ServerFrame::Ack { .. }))
        .await
    {
        ServerFrame::Ack { client_id, seq, .. } => assert_eq!((client_id, seq), (cid, 2)),
        other => panic!("{other:?}"),
    }
    // Frames of the protocol's own pass too.
    ws.send(&ClientFrame::Ping).await;
    assert_eq!(
        ws.next_where(|f| matches!(f, ServerFrame::Pong)).await,
        ServerFrame::Pong
    );
}

/// A client of nginx bound to a loopback address of its own (127.0.0.x), so
/// nginx, and the relay through it, see it as that client.
fn client_from(ip: [u8; 4], port: u16, cert: &CertificateDer<'static>) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(cert).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

/// Behind nginx with `--trusted-proxies` set as `deploy/nginx.conf` says,
/// every per-address limit counts each client apart (not one bucket for
/// everyone behind the proxy), a client's own `X-Forwarded-For` changes
/// nothing, and the audit log records the client's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_clients_are_limited_apart_and_cannot_forge_their_address() {
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            rate_per_ip: 3,
            ..AppOptions::default()
        }
        .with_config(|c| {
            c.trusted_proxies = vec![sotto_relay::clientip::parse_net("127.0.0.1").unwrap()];
        }),
    )
    .await;
    let (_nginx, port, cert, _dir) = start_nginx(&app);
    let base = format!("https://localhost:{port}");
    let login = |client: reqwest::Client, forged: Option<&'static str>| {
        let url = format!("{base}/api/v1/auth/login");
        async move {
            let mut rb = client
                .post(url)
                .json(&serde_json::json!({"login": "nobody", "password": "not a password"}));
            if let Some(f) = forged {
                rb = rb.header("X-Forwarded-For", f);
            }
            rb.send().await.unwrap().status().as_u16()
        }
    };
    let a = client_from([127, 0, 0, 2], port, &cert);
    let b = client_from([127, 0, 0, 3], port, &cert);
    let c = client_from([127, 0, 0, 4], port, &cert);
    // A spends its budget of 3 a minute.
    for _ in 0..3 {
        assert_eq!(login(a.clone(), None).await, 401);
    }
    assert_eq!(login(a.clone(), None).await, 429);
    // B is another client: its own budget.
    assert_eq!(login(b.clone(), None).await, 401);
    // A naming another address in its own header is still A.
    assert_eq!(login(a.clone(), Some("198.51.100.7")).await, 429);
    assert_eq!(login(a.clone(), Some("127.0.0.3, 10.0.0.1")).await, 429);
    // C naming A's address does not spend (or get) A's budget.
    assert_eq!(login(c.clone(), Some("127.0.0.2")).await, 401);
    assert_eq!(login(c.clone(), Some("127.0.0.2")).await, 401);
    // The audit log has each failed login under the client's own address.
    let ips = app
        .texts("SELECT ip FROM audit_log WHERE event = 'login_failed' ORDER BY at")
        .await;
    assert_eq!(
        ips,
        [
            "127.0.0.2",
            "127.0.0.2",
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.4",
            "127.0.0.4"
        ],
        "audit addresses"
    );
    // `/metrics` is not reachable through the proxy.
    let r = a.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

/// The attack that `--trusted-proxies` answers: without it, every client
/// behind nginx is nginx, and one client's failures lock everyone out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_without_trusted_proxies_everyone_shares_one_budget() {
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            rate_per_ip: 3,
            ..AppOptions::default()
        },
    )
    .await;
    let (_nginx, port, cert, _dir) = start_nginx(&app);
    let url = format!("https://localhost:{port}/api/v1/auth/login");
    let body = serde_json::json!({"login": "nobody", "password": "not a password"});
    let a = client_from([127, 0, 0, 2], port, &cert);
    for _ in 0..3 {
        let s = a.post(&url).json(&body).send().await.unwrap().status();
        assert_eq!(s, 401);
    }
    let b = client_from([127, 0, 0, 3], port, &cert);
    let s = b.post(&url).json(&body).send().await.unwrap().status();
    assert_eq!(s, 429, "one bucket for everyone behind the proxy");
}
