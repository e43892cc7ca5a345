//! WebSocket load (`GET /api/v1/ws`):
//!
//! - `ws-idle URL N SECONDS LOGIN PASSWORD`: N authenticated idle sockets (as
//!   N / 50 sockets per user of 50 users), held for SECONDS. Prints
//!   `{"endpoint":"ws_idle","connected":N,...}` once all are ready, and again
//!   when it lets go; the caller measures the relay's RSS in between.
//! - `ws-ingest URL SENDERS ROOM_SIZE SECONDS LOGIN PASSWORD`: SENDERS users,
//!   one socket each, in rooms of ROOM_SIZE; each sends pre-sealed ~1 KiB
//!   envelopes as fast as the relay acks them (at most 16 unacked per socket)
//!   for SECONDS. Reports sends, acks (durable) and deliveries per second, the
//!   send-to-ack latency and the send-to-receive latency (the sender's own
//!   socket receives its message as every member does).
//! - `ws-rate URL SENDERS ROOM_SIZE RATE SECONDS LOGIN PASSWORD`: the same users
//!   and rooms, but an open loop: together the senders offer RATE messages per
//!   second, each on its own fixed schedule whether or not earlier ones were
//!   acked. Latencies run from each message's scheduled send time (so a stall
//!   is not hidden by sending less during it), and send-to-receive is measured
//!   at every *other* member's socket.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sotto_core::envelope::{self, Header, Recipient};
use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, VerifiedDevice,
};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct User {
    pub id: Uuid,
    pub token: String,
    pub device: Uuid,
    pub keys: DeviceKeys,
    pub verified: VerifiedDevice,
}

async fn post(client: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    post_as(client, url, token, body, None).await
}

/// `post` as client `i` (its `X-Forwarded-For`, see `forwarded_for`).
async fn post_as(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
    i: Option<usize>,
) -> Value {
    let mut rb = client.post(url).json(&body);
    if let Some(v) = i.and_then(crate::forwarded_for) {
        rb = rb.header("x-forwarded-for", v);
    }
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {v}");
    v
}

/// `n` users created by the master, each with one device.
pub async fn users(
    client: &reqwest::Client,
    base: &str,
    login: &str,
    password: &str,
    n: usize,
) -> Vec<User> {
    let master = post(
        client,
        format!("{base}/api/v1/auth/login"),
        None,
        json!({"login": login, "password": password}),
    )
    .await;
    let master = master["access_token"].as_str().unwrap().to_string();
    let run = Uuid::new_v4().simple().to_string();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let username = format!("ws{}{i}", &run[..8]);
        let pw = "load test passphrase";
        post(
            client,
            format!("{base}/api/v1/users"),
            Some(&master),
            json!({"username": username, "email": format!("{username}@example.org"), "password": pw}),
        )
        .await;
        // Each user signs in from an address of their own (with
        // SOTTO_LOAD_FORWARDED_FOR), as people do, within the default limits.
        let r = post_as(
            client,
            format!("{base}/api/v1/auth/login"),
            None,
            json!({"login": username, "password": pw}),
            Some(i),
        )
        .await;
        let id: Uuid = r["user"]["id"].as_str().unwrap().parse().unwrap();
        let token = r["access_token"].as_str().unwrap().to_string();
        let identity = IdentityKeyPair::generate().unwrap();
        let keys = DeviceKeys::generate(DeviceKeyOptions::default()).unwrap();
        let device = Uuid::new_v4();
        let bundle = DeviceBundle::create(&identity, &keys, id, device).unwrap();
        let r = client
            .put(format!("{base}/api/v1/devices/{device}"))
            .bearer_auth(&token)
            .json(&json!({"bundle": bundle}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        out.push(User {
            id,
            token,
            device,
            keys,
            verified: bundle.verify().unwrap(),
        });
    }
    out
}

fn ws_url(base: &str) -> String {
    format!("{}/api/v1/ws", base.replacen("http://", "ws://", 1))
}

/// Client `i`'s authenticated socket, after its `ready`.
async fn connect(base: &str, token: &str, i: usize) -> Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = ws_url(base).into_client_request().unwrap();
    if let Some(v) = crate::forwarded_for(i) {
        req.headers_mut()
            .insert("x-forwarded-for", v.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "auth", "token": token}).to_string().into(),
    ))
    .await
    .unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "ready" {
                    return ws;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("no ready: {other:?}"),
        }
    }
}

fn raise_nofile() {
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
}

pub async fn idle(base: String, n: usize, secs: u64, login: String, password: String) {
    raise_nofile();
    let client = reqwest::Client::new();
    let users = users(&client, &base, &login, &password, 50.min(n.max(1))).await;
    let tokens: Arc<Vec<String>> = Arc::new(users.iter().map(|u| u.token.clone()).collect());
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (base, tokens, sem) = (base.clone(), tokens.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await.unwrap();
            let ws = connect(&base, &tokens[i % tokens.len()], i).await;
            drop(permit);
            ws
        }));
    }
    let mut sockets = Vec::with_capacity(n);
    for t in tasks {
        sockets.push(t.await.unwrap());
    }
    println!(
        "{}",
        json!({"endpoint": "ws_idle", "state": "connected", "connected": sockets.len(),
               "seconds_to_connect": start.elapsed().as_secs_f64()})
    );
    // Idle, but answering the relay's pings (a client library does).
    let hold = Duration::from_secs(secs);
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let until = tokio::time::Instant::now() + hold;
                while let Ok(Some(Ok(_))) = tokio::time::timeout_at(until, ws.next()).await {}
                let _ = ws.close(None).await;
            })
        })
        .collect();
    for r in readers {
        let _ = r.await;
    }
    println!(
        "{}",
        json!({"endpoint": "ws_idle", "state": "released", "connected": n})
    );
}

/// Users, one per sender, in rooms of `room_size` consecutive users, and for
/// each sender `per_sender` pre-sealed `(client_id, envelope, send frame)`.
async fn prepare(
    base: &str,
    senders: usize,
    room_size: usize,
    per_sender: usize,
    login: &str,
    password: &str,
) -> (Vec<User>, Vec<Vec<(Uuid, String, String)>>) {
    raise_nofile();
    let client = reqwest::Client::new();
    let users = users(&client, base, login, password, senders).await;
    // Rooms of `room_size` consecutive users.
    let mut room_of = vec![Uuid::nil(); senders];
    for chunk in (0..senders).collect::<Vec<_>>().chunks(room_size.max(1)) {
        let owner = &users[chunk[0]];
        let others: Vec<Uuid> = chunk[1..].iter().map(|&i| users[i].id).collect();
        // Each has the owner in their contacts, so the owner adds them
        // without an invitation (the relay's consent rule).
        for &i in &chunk[1..] {
            post(
                &client,
                format!("{base}/api/v1/contacts"),
                Some(&users[i].token),
                json!({"user_id": owner.id}),
            )
            .await;
        }
        let r = post(
            &client,
            format!("{base}/api/v1/rooms"),
            Some(&owner.token),
            json!({"name": "ws load", "member_ids": others}),
        )
        .await;
        let room: Uuid = r["id"].as_str().unwrap().parse().unwrap();
        for &i in chunk {
            room_of[i] = room;
        }
    }
    // Seal ahead of time (the client's crypto is not what is measured), on
    // every core.
    let plaintext = vec![b'x'; 900];
    let seal_for = |s: usize| {
        let members: Vec<usize> = (0..senders).filter(|&j| room_of[j] == room_of[s]).collect();
        let mut q = Vec::with_capacity(per_sender);
        for _ in 0..per_sender {
            let cid = Uuid::new_v4();
            let u = &users[s];
            let header = Header {
                room_id: room_of[s],
                sender_user_id: u.id,
                sender_device_id: u.device,
                client_message_id: cid,
                timestamp_ms: 0,
            };
            let to: Vec<Recipient<'_>> = members
                .iter()
                .map(|&j| Recipient::x25519(&users[j].verified))
                .collect();
            let env = envelope::seal(&plaintext, &header, &to, &u.keys)
                .unwrap()
                .to_bytes();
            let b64 = sotto_core::encoding::b64_encode(&env);
            let frame =
                json!({"type": "send", "room_id": room_of[s], "client_id": cid, "envelope": b64})
                    .to_string();
            q.push((cid, b64, frame));
        }
        q
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut queues: Vec<Vec<(Uuid, String, String)>> = vec![Vec::new(); senders];
    std::thread::scope(|scope| {
        let seal_for = &seal_for;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..senders)
                        .step_by(threads)
                        .map(|s| (s, seal_for(s)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (s, q) in h.join().unwrap() {
                queues[s] = q;
            }
        }
    });
    (users, queues)
}

pub async fn ingest(
    base: String,
    senders: usize,
    room_size: usize,
    secs: u64,
    login: String,
    password: String,
) {
    let per_sender = (30_000 / senders.max(1)).clamp(100, 2_000);
    let (users, queues) = prepare(&base, senders, room_size, per_sender, &login, &password).await;
    let mut sockets = Vec::with_capacity(senders);
    for (i, u) in users.iter().enumerate() {
        sockets.push(connect(&base, &u.token, i).await);
    }
    // Let the sockets start (the relay holds events until a first frame or 0.5 s).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::with_capacity(senders);
    for (ws, queue) in sockets.into_iter().zip(queues) {
        tasks.push(tokio::spawn(run_sender(ws, queue, deadline)));
    }
    let SenderResult {
        sent,
        acked,
        delivered,
        errors,
        mut ack_lat,
        mut recv_lat,
    } = SenderResult::sum(tasks).await;
    let elapsed = start.elapsed().as_secs_f64();
    let pct = |v: &mut Vec<Duration>, p: f64| percentile(v, p);
    println!(
        "{}",
        json!({
            "endpoint": "ws_ingest", "senders": senders, "room_size": room_size,
            "seconds": elapsed, "sent": sent, "acked": acked, "delivered": delivered, "errors": errors,
            "acked_per_s": acked as f64 / elapsed, "delivered_per_s": delivered as f64 / elapsed,
            "ack_p50_ms": pct(&mut ack_lat, 0.5), "ack_p99_ms": pct(&mut ack_lat, 0.99),
            "recv_p50_ms": pct(&mut recv_lat, 0.5), "recv_p99_ms": pct(&mut recv_lat, 0.99),
            "recv_max_ms": pct(&mut recv_lat, 1.0),
        })
    );
}

/// What all the senders' tasks did together.
impl SenderResult {
    async fn sum(tasks: Vec<tokio::task::JoinHandle<SenderResult>>) -> SenderResult {
        let mut all = SenderResult::default();
        for t in tasks {
            let r = t.await.unwrap();
            all.sent += r.sent;
            all.acked += r.acked;
            all.delivered += r.delivered;
            all.errors += r.errors;
            all.ack_lat.extend(r.ack_lat);
            all.recv_lat.extend(r.recv_lat);
        }
        all
    }
}

#[derive(Default)]
struct SenderResult {
    sent: u64,
    acked: u64,
    delivered: u64,
    errors: u64,
    ack_lat: Vec<Duration>,
    recv_lat: Vec<Duration>,
}

async fn run_sender(
    mut ws: Socket,
    queue: Vec<(Uuid, String, String)>,
    deadline: Instant,
) -> SenderResult {
    const WINDOW: usize = 16;
    let mut out = SenderResult::default();
    let mut by_cid: HashMap<Uuid, Instant> = HashMap::new();
    let mut by_env: HashMap<String, Instant> = HashMap::new();
    let mut next = queue.into_iter();
    let mut in_flight = 0usize;
    let mut done_sending = false;
    loop {
        while !done_sending && in_flight < WINDOW {
            if Instant::now() >= deadline {
                done_sending = true;
                break;
            }
            let Some((cid, env, frame)) = next.next() else {
                done_sending = true;
                break;
            };
            let now = Instant::now();
            by_cid.insert(cid, now);
            by_env.insert(env, now);
            if ws.send(Message::Text(frame.into())).await.is_err() {
                out.errors += 1;
                return out;
            }
            out.sent += 1;
            in_flight += 1;
        }
        if done_sending && in_flight == 0 {
            break;
        }
        let msg = match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(_))) => continue,
            _ => {
                out.errors += 1;
                break;
            }
        };
        let v: Value = serde_json::from_str(&msg).unwrap_or_default();
        match v["type"].as_str() {
            Some("ack") => {
                in_flight = in_flight.saturating_sub(1);
                out.acked += 1;
                if let Some(t) = v["client_id"]
                    .as_str()
                    .and_then(|c| c.parse().ok())
                    .and_then(|c: Uuid| by_cid.remove(&c))
                {
                    out.ack_lat.push(t.elapsed());
                }
            }
            Some("message") => {
                out.delivered += 1;
                if let Some(t) = v["envelope"].as_str().and_then(|e| by_env.remove(e)) {
                    out.recv_lat.push(t.elapsed());
                }
            }
            Some("error") => {
                in_flight = in_flight.saturating_sub(1);
                out.errors += 1;
            }
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    out
}

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Where a message was sent from and when it was scheduled, by the start of
/// its envelope (which holds its client id).
type Schedule = Arc<std::sync::Mutex<HashMap<String, Instant>>>;

fn key(env: &str) -> String {
    env.chars().take(120).collect()
}

pub async fn rate(
    base: String,
    senders: usize,
    room_size: usize,
    rate: f64,
    secs: u64,
    login: String,
    password: String,
) {
    let per_sender = ((rate / senders.max(1) as f64) * secs as f64).ceil() as usize + 1;
    let (users, queues) = prepare(&base, senders, room_size, per_sender, &login, &password).await;
    let mut sockets = Vec::with_capacity(senders);
    for (i, u) in users.iter().enumerate() {
        sockets.push(connect(&base, &u.token, i).await);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let schedule: Schedule = Arc::default();
    let interval = Duration::from_secs_f64(senders as f64 / rate);
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(senders);
    for (i, (ws, queue)) in sockets.into_iter().zip(queues).enumerate() {
        // Spread the senders' schedules over one interval.
        let first = start + interval.mul_f64(i as f64 / senders as f64);
        tasks.push(tokio::spawn(run_paced(
            users[i].id.to_string(),
            ws,
            queue,
            first,
            interval,
            Duration::from_secs(secs),
            Arc::clone(&schedule),
        )));
    }
    let SenderResult {
        sent,
        acked,
        delivered,
        errors,
        mut ack_lat,
        mut recv_lat,
    } = SenderResult::sum(tasks).await;
    let secs = secs as f64;
    println!(
        "{}",
        json!({
            "endpoint": "ws_rate", "senders": senders, "room_size": room_size,
            "offered_per_s": rate, "seconds": secs, "sent": sent, "acked": acked,
            "delivered_to_others": delivered, "errors": errors,
            "acked_per_s": acked as f64 / secs, "delivered_per_s": delivered as f64 / secs,
            "ack_p50_ms": percentile(&mut ack_lat, 0.5), "ack_p99_ms": percentile(&mut ack_lat, 0.99),
            "recv_p50_ms": percentile(&mut recv_lat, 0.5), "recv_p99_ms": percentile(&mut recv_lat, 0.99),
            "recv_max_ms": percentile(&mut recv_lat, 1.0),
        })
    );
}

/// Sends `queue` on a fixed schedule (`first`, then every `interval`, for
/// `length`), reading acks and other members' messages all along; then waits
/// 2 s for what is still owed.
async fn run_paced(
    me: String,
    ws: Socket,
    queue: Vec<(Uuid, String, String)>,
    first: Instant,
    interval: Duration,
    length: Duration,
    schedule: Schedule,
) -> SenderResult {
    let (mut tx, mut rx) = ws.split();
    let mut out = SenderResult::default();
    let acks: Arc<std::sync::Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let end = first + length;
    let sender = {
        let acks = Arc::clone(&acks);
        let schedule = Arc::clone(&schedule);
        tokio::spawn(async move {
            let mut sent = 0u64;
            for (k, (cid, env, frame)) in queue.into_iter().enumerate() {
                let at = first + interval.mul_f64(k as f64);
                if at >= end {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                acks.lock().unwrap().insert(cid, at);
                schedule.lock().unwrap().insert(key(&env), at);
                if tx.send(Message::Text(frame.into())).await.is_err() {
                    break;
                }
                sent += 1;
            }
            (sent, tx)
        })
    };
    let drain_until = end + Duration::from_secs(2);
    loop {
        let msg = match tokio::time::timeout_at(drain_until.into(), rx.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(_))) => continue,
            Ok(_) => {
                out.errors += 1;
                break;
            }
            Err(_) => break,
        };
        let v: Value = serde_json::from_str(&msg).unwrap_or_default();
        match v["type"].as_str() {
            Some("ack") => {
                out.acked += 1;
                let at = v["client_id"]
                    .as_str()
                    .and_then(|c| c.parse().ok())
                    .and_then(|c: Uuid| acks.lock().unwrap().remove(&c));
                if let Some(at) = at {
                    out.ack_lat.push(at.elapsed());
                }
            }
            Some("message") => {
                // Only other members' messages: the sender's own echo is not a
                // delivery to someone else.
                let at = v["envelope"]
                    .as_str()
                    .and_then(|e| schedule.lock().unwrap().get(&key(e)).copied());
                let own = v["sender_id"].as_str() == Some(me.as_str());
                if let Some(at) = at
                    && !own
                {
                    out.delivered += 1;
                    out.recv_lat.push(at.elapsed());
                }
            }
            Some("error") => out.errors += 1,
            _ => {}
        }
    }
    let (sent, mut tx) = sender.await.unwrap();
    out.sent = sent;
    let _ = tx.close().await;
    out
}
