//! Load generator for the relay (loopback only): N concurrent clients hammer one
//! endpoint for a fixed time; prints requests/s and latency percentiles as JSON.
//!
//!   relay-load URL health|login|me CONCURRENCY SECONDS [LOGIN PASSWORD]
//!   relay-load URL messages CONCURRENCY SECONDS LOGIN PASSWORD
//!       (as the master LOGIN: creates 8 users with devices and a room, then posts
//!        sealed ~1 KiB envelopes from CONCURRENCY clients for SECONDS, then fetches
//!        history pages of 50 at random positions for SECONDS; two JSON lines)
//!   relay-load argon2 THREADS SECONDS        (Argon2id hashes/s with the relay's parameters)
//!   relay-load URL ws-idle N SECONDS LOGIN PASSWORD
//!   relay-load URL ws-ingest SENDERS ROOM_SIZE SECONDS LOGIN PASSWORD   (see `ws.rs`)
//!   relay-load URL ws-rate SENDERS ROOM_SIZE RATE SECONDS LOGIN PASSWORD
//!
//! With `SOTTO_LOAD_FORWARDED_FOR=1`, every client (each concurrent task, each
//! socket) sends `X-Forwarded-For` with an address of its own, as a reverse
//! proxy would for distinct clients (for a relay run with `--trusted-proxies`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

mod ws;

/// The `X-Forwarded-For` value client `i` sends, when `SOTTO_LOAD_FORWARDED_FOR`
/// is set: a distinct documentation-range address per client.
pub fn forwarded_for(i: usize) -> Option<String> {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *ON.get_or_init(|| std::env::var_os("SOTTO_LOAD_FORWARDED_FOR").is_some());
    on.then(|| {
        format!(
            "2001:db8::{:x}:{:x}, 198.51.100.{}",
            i / 65536,
            i % 65536,
            i % 250 + 1
        )
    })
}

/// `rb` with client `i`'s `X-Forwarded-For`, if any.
fn forwarded(rb: reqwest::RequestBuilder, i: usize) -> reqwest::RequestBuilder {
    match forwarded_for(i) {
        Some(v) => rb.header("x-forwarded-for", v),
        None => rb,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("argon2") {
        let threads: usize = args[2].parse().unwrap();
        let secs: u64 = args[3].parse().unwrap();
        return argon2_rate(threads, secs);
    }
    if args.get(2).map(String::as_str) == Some("ws-idle") {
        assert!(args[1].starts_with("http://127."), "loopback targets only");
        return ws::idle(
            args[1].clone(),
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
            args[5].clone(),
            args[6].clone(),
        )
        .await;
    }
    if args.get(2).map(String::as_str) == Some("ws-rate") {
        assert!(args[1].starts_with("http://127."), "loopback targets only");
        return ws::rate(
            args[1].clone(),
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
            args[5].parse().unwrap(),
            args[6].parse().unwrap(),
            args[7].clone(),
            args[8].clone(),
        )
        .await;
    }
    if args.get(2).map(String::as_str) == Some("ws-ingest") {
        assert!(args[1].starts_with("http://127."), "loopback targets only");
        return ws::ingest(
            args[1].clone(),
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
            args[5].parse().unwrap(),
            args[6].clone(),
            args[7].clone(),
        )
        .await;
    }
    let [_, base, kind, conc, secs, rest @ ..] = args.as_slice() else {
        panic!("usage: relay-load URL health|login|me CONCURRENCY SECONDS [LOGIN PASSWORD]");
    };
    let base = base.clone();
    assert!(
        base.starts_with("http://127.") || base.starts_with("http://localhost"),
        "loopback targets only"
    );
    let conc: usize = conc.parse().unwrap();
    let dur = Duration::from_secs(secs.parse().unwrap());
    let (login, password) = (
        rest.first().cloned().unwrap_or_default(),
        rest.get(1).cloned().unwrap_or_default(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .build()
        .unwrap();
    if kind == "messages" {
        return messages(client, base, conc, dur, login, password).await;
    }
    let token = if kind == "me" {
        let r: serde_json::Value = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"login": login, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"]
            .as_str()
            .expect("login for `me` failed")
            .to_string()
    } else {
        String::new()
    };
    let deadline = Instant::now() + dur;
    let shared = Arc::new((base, kind.clone(), token, login, password));
    let mut tasks = vec![];
    for i in 0..conc {
        let client = client.clone();
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            let (base, kind, token, login, password) = &*s;
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let req = match kind.as_str() {
                    "health" => client.get(format!("{base}/health")),
                    "me" => client
                        .get(format!("{base}/api/v1/auth/me"))
                        .bearer_auth(token),
                    "login" => client
                        .post(format!("{base}/api/v1/auth/login"))
                        .json(&json!({"login": login, "password": password})),
                    other => panic!("unknown endpoint {other}"),
                };
                match forwarded(req, i).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = vec![];
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    report(kind, conc, dur, all, errors, json!({}));
}

fn report(
    kind: &str,
    conc: usize,
    dur: Duration,
    mut all: Vec<Duration>,
    errors: u64,
    extra: serde_json::Value,
) {
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let mut line = json!({
        "endpoint": kind, "concurrency": conc, "seconds": dur.as_secs_f64(),
        "requests": all.len(), "errors": errors,
        "rps": all.len() as f64 / dur.as_secs_f64(),
        "p50_ms": pct(0.50), "p99_ms": pct(0.99),
    });
    if let (Some(l), Some(e)) = (line.as_object_mut(), extra.as_object()) {
        l.extend(e.clone());
    }
    println!("{line}");
}

/// Message post throughput and history fetch latency (see the module docs).
async fn messages(
    client: reqwest::Client,
    base: String,
    conc: usize,
    dur: Duration,
    login: String,
    password: String,
) {
    use sotto_core::envelope::{self, Header, Recipient};
    use uuid::Uuid;

    let post = |path: String, token: Option<String>, body: serde_json::Value| {
        let mut rb = client.post(format!("{base}{path}")).json(&body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        async move {
            let r = rb.send().await.unwrap();
            let status = r.status();
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            assert!(status.is_success(), "{status}: {v}");
            v
        }
    };
    // 8 users, one device each, all in one room.
    let users: Vec<_> = ws::users(&client, &base, &login, &password, 8)
        .await
        .into_iter()
        .map(|u| (u.id, u.token, u.device, u.keys, u.verified))
        .collect();
    let others: Vec<Uuid> = users[1..].iter().map(|u| u.0).collect();
    // Each has the room's owner in their contacts (no invitation then).
    for u in &users[1..] {
        post(
            "/api/v1/contacts".into(),
            Some(u.1.clone()),
            json!({"user_id": users[0].0}),
        )
        .await;
    }
    let room = post(
        "/api/v1/rooms".into(),
        Some(users[0].1.clone()),
        json!({"name": "load", "member_ids": others}),
    )
    .await;
    let room: Uuid = room["id"].as_str().unwrap().parse().unwrap();

    // Seal ahead of time (the client's crypto is not what is measured): each
    // envelope carries a 900-byte plaintext for two devices, about 1 KiB in all.
    let budget = 60_000usize.min(conc * 4_000);
    let plaintext = vec![b'x'; 900];
    let mut queues: Vec<Vec<(Uuid, String)>> = vec![Vec::new(); conc];
    let mut env_len = 0;
    for n in 0..budget {
        let u = &users[n % users.len()];
        let next = &users[(n + 1) % users.len()];
        let cid = Uuid::new_v4();
        let header = Header {
            room_id: room,
            sender_user_id: u.0,
            sender_device_id: u.2,
            client_message_id: cid,
            timestamp_ms: 0,
        };
        let env = envelope::seal(
            &plaintext,
            &header,
            &[Recipient::x25519(&u.4), Recipient::x25519(&next.4)],
            &u.3,
        )
        .unwrap()
        .to_bytes();
        env_len = env.len();
        queues[n % conc].push((cid, sotto_core::encoding::b64_encode(&env)));
    }
    let tokens: Vec<String> = users.iter().map(|u| u.1.clone()).collect();
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = vec![];
    for (i, queue) in queues.into_iter().enumerate() {
        let (client, base) = (client.clone(), base.clone());
        // Envelope n was sealed by user n % 8 and lands in queue n % conc.
        let tokens = tokens.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            for (k, (cid, env)) in queue.into_iter().enumerate() {
                if Instant::now() >= deadline {
                    break;
                }
                let n = i + k * conc;
                let t = Instant::now();
                let r = forwarded(
                    client
                        .post(format!("{base}/api/v1/rooms/{room}/messages"))
                        .bearer_auth(&tokens[n % tokens.len()])
                        .json(&json!({"client_id": cid, "envelope": env})),
                    i,
                )
                .send()
                .await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let (mut all, mut errors) = (vec![], 0);
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    let stored = all.len();
    report(
        "post_message",
        conc,
        elapsed,
        all,
        errors,
        json!({"envelope_bytes": env_len}),
    );

    // History: pages of 50 after random positions of the room.
    let reader = tokens[0].clone();
    let deadline = Instant::now() + dur;
    let mut tasks = vec![];
    for i in 0..conc {
        let (client, base, reader) = (client.clone(), base.clone(), reader.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1);
            while Instant::now() < deadline {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let after = x % (stored.saturating_sub(50).max(1) as u64);
                let t = Instant::now();
                let r = forwarded(
                    client
                        .get(format!(
                            "{base}/api/v1/rooms/{room}/messages?after_seq={after}&limit=50"
                        ))
                        .bearer_auth(&reader),
                    i,
                )
                .send()
                .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let (mut all, mut errors) = (vec![], 0);
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    report(
        "history_page_50",
        conc,
        dur,
        all,
        errors,
        json!({"room_messages": stored}),
    );
}

fn argon2_rate(threads: usize, secs: u64) {
    use argon2::PasswordHasher;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    argon2::Argon2::default()
                        .hash_password(b"correct horse battery staple")
                        .unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!(
        "{}",
        json!({"argon2id_threads": threads, "hashes": total, "hashes_per_s": total as f64 / secs as f64})
    );
}
