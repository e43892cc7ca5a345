//! Crash safety of WebSocket posts: the relay is killed (SIGKILL) during a burst
//! of sends over a socket and restarted on the same data (directory, or
//! PostgreSQL database). Every acked message is there with the seq its ack
//! named, nothing is half-stored, and the room's seq stays gapless.

use super::{BIN, free_port};

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sotto_core::envelope::{self, Header, Recipient};
use sotto_core::keys::{DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const PASSWORD: &str = "crash test passphrase";

/// The relay process; killed and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path, port: u16, database_url: Option<&str>) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("relay.log"))
        .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(url) = database_url {
        // Relays sharing a database share the JWT key (docs/deploy.md).
        cmd.env("SOTTO_DATABASE_URL", url).env(
            "SOTTO_JWT_SECRET",
            "a test secret shared by the relays of one database",
        );
    }
    let child = Proc(
        cmd.current_dir(dir)
            .env("SOTTO_LISTEN", format!("127.0.0.1:{port}"))
            .env("SOTTO_METRICS_LISTEN", "")
            .env("SOTTO_DATA_DIR", dir.join("data"))
            .env("SOTTO_POST_RATE", "1000000")
            .env("SOTTO_WS_FRAME_RATE", "1000000")
            .env("SOTTO_BOOTSTRAP_MASTER_USERNAME", "root")
            .env("SOTTO_BOOTSTRAP_MASTER_EMAIL", "root@example.org")
            .env("SOTTO_BOOTSTRAP_MASTER_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let ok = reqwest::blocking::get(format!("http://127.0.0.1:{port}/health"))
            .is_ok_and(|r| r.status() == 200);
        if ok {
            return child;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the relay did not start");
}

fn call(port: u16, method: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let client = reqwest::blocking::Client::new();
    let mut rb = client
        .request(
            method.parse().unwrap(),
            format!("http://127.0.0.1:{port}{path}"),
        )
        .json(&body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().unwrap();
    let status = r.status();
    let v: Value = r.json().unwrap_or_default();
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

fn token(port: u16, login: &str) -> String {
    call(
        port,
        "POST",
        "/api/v1/auth/login",
        None,
        json!({"login": login, "password": PASSWORD}),
    )["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn acked_socket_posts_survive_a_kill_on_sqlite() {
    acked_socket_posts_survive_a_kill(None);
}

#[test]
fn acked_socket_posts_survive_a_kill_on_postgres() {
    let url = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(sotto_tests::fresh_postgres_database());
    acked_socket_posts_survive_a_kill(Some(&url));
}

fn acked_socket_posts_survive_a_kill(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut relay = start(dir.path(), port, database_url);
    let root = token(port, "root");
    let User {
        token: alice,
        id: me,
        device,
        keys,
        bundle,
    } = user(port, &root, "alice");
    let room: Uuid = call(
        port,
        "POST",
        "/api/v1/rooms",
        Some(&alice),
        json!({"name": "crash"}),
    )["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let verified = bundle.verify().unwrap();
    let mut sent: HashMap<Uuid, String> = HashMap::new();
    let mut frames = Vec::new();
    for i in 0..2000 {
        let cid = Uuid::new_v4();
        let header = Header {
            room_id: room,
            sender_user_id: me,
            sender_device_id: device,
            client_message_id: cid,
            timestamp_ms: i,
        };
        let env = envelope::seal(b"burst", &header, &[Recipient::x25519(&verified)], &keys)
            .unwrap()
            .to_bytes();
        let b64 = sotto_core::encoding::b64_encode(&env);
        frames.push(
            json!({"type": "send", "room_id": room, "client_id": cid, "envelope": b64}).to_string(),
        );
        sent.insert(cid, b64);
    }

    // Send the burst over a socket; kill the relay once 300 acks are in.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let acked: HashMap<Uuid, u64> = rt.block_on(async {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/v1/ws"))
            .await
            .unwrap();
        let (mut tx, mut rx) = ws.split();
        tx.send(Message::Text(
            json!({"type": "auth", "token": alice}).to_string().into(),
        ))
        .await
        .unwrap();
        let writer = tokio::spawn(async move {
            for f in frames {
                if tx.send(Message::Text(f.into())).await.is_err() {
                    break;
                }
            }
        });
        let mut acked = HashMap::new();
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(20), rx.next()).await
        {
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "ack" {
                acked.insert(
                    v["client_id"].as_str().unwrap().parse().unwrap(),
                    v["seq"].as_u64().unwrap(),
                );
                if acked.len() == 300 {
                    relay.0.kill().unwrap(); // SIGKILL, mid-burst
                    relay.0.wait().unwrap();
                }
            }
        }
        writer.abort();
        acked
    });
    assert!(acked.len() >= 300, "only {} acks", acked.len());

    // Restart on the same data: every acked message is there with its seq;
    // the seq is gapless; every stored message is one that was sent, whole.
    let relay = start(dir.path(), port, database_url);
    let alice = token(port, "alice");
    let mut stored: Vec<(u64, Uuid, String)> = Vec::new();
    let mut after = 0;
    loop {
        let page = call(
            port,
            "GET",
            &format!("/api/v1/rooms/{room}/messages?after_seq={after}&limit=200"),
            Some(&alice),
            Value::Null,
        );
        for m in page["items"].as_array().unwrap() {
            stored.push((
                m["seq"].as_u64().unwrap(),
                m["client_id"].as_str().unwrap().parse().unwrap(),
                m["envelope"].as_str().unwrap().to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => after = c.parse().unwrap(),
            None => break,
        }
    }
    let seqs: Vec<u64> = stored.iter().map(|s| s.0).collect();
    assert_eq!(
        seqs,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "gapless"
    );
    let by_cid: HashMap<Uuid, (u64, &String)> =
        stored.iter().map(|(s, c, e)| (*c, (*s, e))).collect();
    for (cid, seq) in &acked {
        assert_eq!(
            by_cid.get(cid).map(|x| x.0),
            Some(*seq),
            "acked {cid} lost or moved"
        );
    }
    for (_, cid, env) in &stored {
        assert_eq!(
            sent.get(cid),
            Some(env),
            "a stored message that was not sent whole"
        );
    }
    eprintln!(
        "{} acked before the kill, {} stored after the restart",
        acked.len(),
        stored.len()
    );
    drop(relay);
}

/// A user with a registered device, made through `port`.
struct User {
    token: String,
    id: Uuid,
    device: Uuid,
    keys: DeviceKeys,
    bundle: DeviceBundle,
}

fn user(port: u16, root: &str, name: &str) -> User {
    call(
        port,
        "POST",
        "/api/v1/users",
        Some(root),
        json!({"username": name, "email": format!("{name}@example.org"), "password": PASSWORD}),
    );
    let token = token(port, name);
    let id: Uuid = call(port, "GET", "/api/v1/auth/me", Some(&token), Value::Null)["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let identity = IdentityKeyPair::generate().unwrap();
    let keys = DeviceKeys::generate(DeviceKeyOptions::default()).unwrap();
    let device = Uuid::new_v4();
    let bundle = DeviceBundle::create(&identity, &keys, id, device).unwrap();
    call(
        port,
        "PUT",
        &format!("/api/v1/devices/{device}"),
        Some(&token),
        json!({"bundle": bundle}),
    );
    User {
        token,
        id,
        device,
        keys,
        bundle,
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(port: u16, token: &str, first: Option<Value>) -> Socket {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/v1/ws"))
        .await
        .unwrap();
    ws.send(Message::Text(
        json!({"type": "auth", "token": token}).to_string().into(),
    ))
    .await
    .unwrap();
    if let Some(f) = first {
        ws.send(Message::Text(f.to_string().into())).await.unwrap();
    }
    ws
}

/// Two relay processes on one PostgreSQL database: a receiver on the first,
/// a sender on the second. The first is killed (SIGKILL) in the middle of a
/// 1,000-message burst and restarted; the receiver reconnects to it, resumes
/// from its cursor, and ends with every message exactly once, in seq order,
/// while the sender's relay went on acking.
#[test]
fn a_killed_relay_of_two_loses_its_clients_nothing() {
    let url = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(sotto_tests::fresh_postgres_database());
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let p1 = free_port();
    // free_port releases its port, so the next call can give the same one.
    let p2 = loop {
        let p = free_port();
        if p != p1 {
            break p;
        }
    };
    let mut one = start(d1.path(), p1, Some(&url));
    let two = start(d2.path(), p2, Some(&url));
    let root = token(p1, "root");
    let alice = user(p1, &root, "alice");
    let bob = user(p1, &root, "bob");
    // Bob knows Alice (a contact), so her room takes him in without an invitation.
    call(
        p1,
        "POST",
        "/api/v1/contacts",
        Some(&bob.token),
        json!({"user_id": alice.id}),
    );
    let room: Uuid = call(
        p1,
        "POST",
        "/api/v1/rooms",
        Some(&alice.token),
        json!({"name": "two relays", "member_ids": [bob.id]}),
    )["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let to = [alice.bundle.verify().unwrap(), bob.bundle.verify().unwrap()];
    let recipients: Vec<Recipient<'_>> = to.iter().map(Recipient::x25519).collect();
    const N: u64 = 1000;
    let frames: Vec<String> = (0..N)
        .map(|i| {
            let cid = Uuid::new_v4();
            let header = Header {
                room_id: room,
                sender_user_id: alice.id,
                sender_device_id: alice.device,
                client_message_id: cid,
                timestamp_ms: i,
            };
            let env = envelope::seal(b"across relays", &header, &recipients, &alice.keys)
                .unwrap()
                .to_bytes();
            json!({"type": "send", "room_id": room, "client_id": cid,
                   "envelope": sotto_core::encoding::b64_encode(&env)})
            .to_string()
        })
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (seen, acks, resumed) = rt.block_on(async {
        // Bob listens on relay one; Alice sends on relay two, a few at a time.
        let mut bob_ws = socket(p1, &bob.token, None).await;
        let alice_ws = socket(p2, &alice.token, None).await;
        let sender = tokio::spawn(async move {
            let (mut tx, mut rx) = alice_ws.split();
            let mut acks = 0u64;
            for chunk in frames.chunks(10) {
                for f in chunk {
                    if let Err(e) = tx.send(Message::Text(f.clone().into())).await {
                        panic!("the sender's socket broke: {e}: {:?}", rx.next().await);
                    }
                }
                let mut got = 0;
                while got < chunk.len() {
                    let t = match rx.next().await {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(c))) => {
                            panic!("the sender's socket was closed: {c:?}")
                        }
                        Some(Ok(_)) => continue,
                        other => panic!("the sender's socket ended: {other:?}"),
                    };
                    let v: Value = serde_json::from_str(&t).unwrap();
                    match v["type"].as_str() {
                        Some("ack") => got += 1,
                        Some("error") => panic!("send refused: {v}"),
                        _ => {}
                    }
                }
                acks += chunk.len() as u64;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            acks
        });
        let mut seen: Vec<u64> = Vec::new();
        let mut killed = false;
        let mut resumed = 0;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(20), bob_ws.next()).await;
            let text = match next {
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(_))) => continue,
                // The relay went away: it is restarted on the same port, and
                // Bob resumes from the last seq he saw.
                Ok(Some(Err(_)) | None) if killed => {
                    // (`start` waits with a blocking client.)
                    one = tokio::task::block_in_place(|| start(d1.path(), p1, Some(&url)));
                    let last = seen.last().copied().unwrap_or(0);
                    let cursors = json!({"type": "resume", "cursors": {room.to_string(): last}});
                    bob_ws = socket(p1, &bob.token, Some(cursors)).await;
                    resumed += 1;
                    continue;
                }
                other => panic!(
                    "bob's socket: {other:?}; relay two's log: {}",
                    std::fs::read_to_string(d2.path().join("relay.log")).unwrap_or_default()
                ),
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["type"] == "message" {
                seen.push(v["seq"].as_u64().unwrap());
                if seen.len() == 300 && !killed {
                    one.0.kill().unwrap(); // SIGKILL
                    one.0.wait().unwrap();
                    killed = true;
                }
                if seen.last() == Some(&N) {
                    break;
                }
            }
        }
        (seen, sender.await.unwrap(), resumed)
    });
    assert_eq!(resumed, 1, "the receiver reconnected once, after the kill");
    assert_eq!(acks, N);
    assert_eq!(
        seen,
        (1..=N).collect::<Vec<_>>(),
        "every message once, in seq order"
    );
    drop((one, two));
}
