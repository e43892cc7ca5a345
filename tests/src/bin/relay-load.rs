//! Load generator for the relay (loopback only): N concurrent clients hammer one
//! endpoint for a fixed time; prints requests/s and latency percentiles as JSON.
//!
//!   relay-load URL health|login|me CONCURRENCY SECONDS [LOGIN PASSWORD]
//!   relay-load argon2 THREADS SECONDS        (Argon2id hashes/s with the relay's parameters)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("argon2") {
        let threads: usize = args[2].parse().unwrap();
        let secs: u64 = args[3].parse().unwrap();
        return argon2_rate(threads, secs);
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
    for _ in 0..conc {
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
                match req.send().await {
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
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        json!({
            "endpoint": kind, "concurrency": conc, "seconds": dur.as_secs(),
            "requests": all.len(), "errors": errors,
            "rps": all.len() as f64 / dur.as_secs_f64(),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
        })
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
