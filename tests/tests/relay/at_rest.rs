//! The relay never holds plaintext or a private key: messages and attachments
//! sealed with sotto-core go through the relay, recipients open them, and then
//! every byte the relay wrote is searched for the plaintexts and for every
//! private key byte string. On SQLite that is every file of the data directory
//! (database, `-wal`, `-shm`, attachment files) without a checkpoint, so the WAL
//! holds the writes; on PostgreSQL it is a `pg_dump` of the database (raw and
//! hex-encoded, as `bytea` is dumped) and the server's own files: the
//! database's directory and the WAL segments written during the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use memchr::memmem;
use sotto_core::attachment::{self, AttachmentKey, AttachmentPointer};
use sotto_core::envelope::{self, OpenContext};
use sotto_core::keys::RsaBits;
use sotto_tests::pg_dump;
use sotto_tests::{Backend, Member, TestApp, both_backends, spawn_app};
use uuid::Uuid;

both_backends!(no_plaintext_or_private_key_at_rest);

/// 16-byte windows of `bytes`, every `step` bytes (and the last one): any
/// stored copy of `bytes` contains at least one of them whole, even if a page
/// boundary splits the copy.
fn windows(bytes: &[u8], step: usize) -> Vec<Vec<u8>> {
    assert!(bytes.len() >= 16);
    let mut out: Vec<Vec<u8>> = (0..=bytes.len() - 16)
        .step_by(step)
        .map(|i| bytes[i..i + 16].to_vec())
        .collect();
    out.push(bytes[bytes.len() - 16..].to_vec());
    out
}

fn hex(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// (where, which needle) for every needle found in any of `blobs`.
fn hits(blobs: &[(String, Vec<u8>)], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for (label, needle) in needles {
        let finder = memmem::Finder::new(needle);
        for (name, data) in blobs {
            if finder.find(data).is_some() {
                found.push(format!("{label} in {name}"));
            }
        }
    }
    found
}

struct Sent {
    /// Every plaintext that went through the relay (messages and files).
    plaintexts: Vec<Vec<u8>>,
    /// The attachment keys (inside sealed pointers only).
    attachment_keys: Vec<Vec<u8>>,
    /// A small stored envelope: the positive control of the byte search.
    small_envelope: Vec<u8>,
}

async fn exchange(app: &TestApp, alice: &Member, bob: &Member, carol: &Member) -> Sent {
    let room = app
        .room(&alice.account, "secret plans", &[bob.id(), carol.id()])
        .await;
    let all = [alice.verified(), bob.verified(), carol.verified()];
    let mut plaintexts = Vec::new();
    let mut attachment_keys = Vec::new();

    // Text messages, both suites (Alice's own device has an RSA key).
    let marker = format!(
        "Meet at the old mill at midnight, bring the documents. {}",
        Uuid::new_v4()
    );
    let mut small_envelope = Vec::new();
    for (i, sender) in [alice, bob, carol, alice].into_iter().enumerate() {
        let text = format!("{marker} #{i}").into_bytes();
        let cid = Uuid::new_v4();
        let env = sender.seal_with(room, cid, &text, &all, i % 2 == 0);
        let r = app.send(sender, room, cid, &env).await;
        assert_eq!(r.status, 201, "{r:?}");
        if i == 1 {
            small_envelope = env;
        }
        plaintexts.push(text);
    }

    // Two attachments: one small enough to be stored in the database, one
    // stored as a file. Their pointers (with the keys) travel sealed.
    for (len, name) in [(3_000usize, "small.txt"), (300_000, "large.bin")] {
        let line = format!("CONFIDENTIAL {name} {marker}\n");
        let file: Vec<u8> = line.as_bytes().iter().copied().cycle().take(len).collect();
        let enc = attachment::encrypt(&file).unwrap();
        let (st, _, body) = app
            .req_bytes(
                "POST",
                &format!("/api/v1/rooms/{room}/attachments"),
                Some(alice.token()),
                Some("application/octet-stream"),
                enc.blob.clone(),
            )
            .await;
        assert_eq!(st, 201);
        let id: Uuid = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let mut pointer = AttachmentPointer::new(id, &enc.key, &enc.info);
        pointer.name = Some(name.into());
        let pointer_json = serde_json::to_vec(&pointer).unwrap();
        let cid = Uuid::new_v4();
        let env = alice.seal_with(room, cid, &pointer_json, &all, false);
        assert_eq!(app.send(alice, room, cid, &env).await.status, 201);
        attachment_keys.push(enc.key.to_bytes().to_vec());
        plaintexts.push(line.into_bytes());
        // The pointer's secret part, as it appears in the sealed JSON (its id
        // is the relay's own and rightly stored in the clear).
        plaintexts.push(sotto_tests::b64(&enc.key.to_bytes()[..]).into_bytes());
    }

    // Bob receives everything: the relay served what was sealed, untouched.
    let r = app
        .get(&format!("/api/v1/rooms/{room}/messages"), Some(bob.token()))
        .await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    let senders = [alice, bob, carol];
    let mut files_opened = 0;
    for it in items {
        let sender = senders
            .iter()
            .find(|m| it["sender_id"] == m.id().to_string())
            .unwrap();
        let sv = sender.verified();
        let bytes = sotto_core::encoding::b64_decode(it["envelope"].as_str().unwrap()).unwrap();
        let opened = envelope::open(
            &bytes,
            bob.device_id,
            &bob.keys,
            &OpenContext {
                room_id: room,
                sender: &sv,
            },
        )
        .unwrap();
        if let Ok(pointer) = serde_json::from_slice::<AttachmentPointer>(&opened.plaintext) {
            let (st, _, blob) = app
                .req_bytes(
                    "GET",
                    &format!("/api/v1/attachments/{}", pointer.id),
                    Some(bob.token()),
                    None,
                    vec![],
                )
                .await;
            assert_eq!(st, 200);
            let key = AttachmentKey::from_slice(pointer.key.as_bytes()).unwrap();
            let file = attachment::decrypt(&key, &blob, &pointer.digest().unwrap()).unwrap();
            assert!(file.starts_with(b"CONFIDENTIAL"));
            assert_eq!(file.len() as u64, pointer.size);
            files_opened += 1;
        } else {
            assert!(opened.plaintext.starts_with(marker.as_bytes()));
        }
    }
    assert_eq!(files_opened, 2);
    Sent {
        plaintexts,
        attachment_keys,
        small_envelope,
    }
}

async fn no_plaintext_or_private_key_at_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    let pg_start_lsn = match backend {
        Backend::Postgres => Some(pg_scalar(&app, "SELECT pg_current_wal_lsn()::text").await),
        Backend::Sqlite => None,
    };
    let accounts = app.users("rest", 3).await;
    let alice = app
        .with_device(accounts[0].clone(), Some(RsaBits::Rsa2048))
        .await;
    let bob = app.with_device(accounts[1].clone(), None).await;
    let carol = app.with_device(accounts[2].clone(), None).await;
    let sent = exchange(&app, &alice, &bob, &carol).await;

    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, p) in sent.plaintexts.iter().enumerate() {
        for w in windows(p, 16) {
            needles.push((format!("plaintext {i}"), w));
        }
    }
    for (who, m) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
        for (k, secret) in m.secrets().iter().enumerate() {
            for w in windows(secret, 8) {
                needles.push((format!("{who}'s private key {k}"), w));
            }
        }
    }
    for (i, k) in sent.attachment_keys.iter().enumerate() {
        for w in windows(k, 8) {
            needles.push((format!("attachment key {i}"), w));
        }
    }
    // Dumps show bytea as hex: search that form too.
    let hex_needles: Vec<(String, Vec<u8>)> = needles
        .iter()
        .map(|(l, n)| (format!("{l} (hex)"), hex(n)))
        .collect();
    // Positive controls: bytes the relay did store must be found by the same search.
    let control = (
        "stored envelope".to_string(),
        sent.small_envelope[envelope::HEADER_LEN..envelope::HEADER_LEN + 16].to_vec(),
    );
    let username = ("username".to_string(), b"rest1".to_vec());

    let mut stored: Vec<(String, Vec<u8>)> = Vec::new();
    match backend {
        Backend::Sqlite => {
            let files = files_under(app.data_dir.path());
            for f in &files {
                stored.push((f.display().to_string(), std::fs::read(f).unwrap()));
            }
            let names: Vec<&str> = stored.iter().map(|(n, _)| n.as_str()).collect();
            assert!(
                names.iter().any(|n| n.ends_with("sotto.db-wal")),
                "the WAL is searched: {names:?}"
            );
            assert!(
                names.iter().any(|n| n.contains("/attachments/")),
                "attachment files are searched: {names:?}"
            );
        }
        Backend::Postgres => {
            app.exec("CHECKPOINT", &[]).await;
            let end_lsn = pg_scalar(&app, "SELECT pg_current_wal_lsn()::text").await;
            let dump = pg_dump(app.database_url.as_deref().unwrap());
            stored.push(("pg_dump".into(), dump));
            let data = pg_data_dir();
            let oid = pg_scalar(
                &app,
                "SELECT oid::text FROM pg_database WHERE datname = current_database()",
            )
            .await;
            for f in files_under(&data.join("base").join(&oid)) {
                stored.push((f.display().to_string(), std::fs::read(&f).unwrap()));
            }
            let first = pg_scalar(
                &app,
                &format!("SELECT pg_walfile_name('{}')", pg_start_lsn.unwrap()),
            )
            .await;
            let last = pg_scalar(&app, &format!("SELECT pg_walfile_name('{end_lsn}')")).await;
            let mut segments = 0;
            for f in files_under(&data.join("pg_wal")) {
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                if name.len() == 24 && name >= first && name <= last {
                    // Another test's checkpoint may recycle a segment meanwhile.
                    if let Ok(bytes) = std::fs::read(&f) {
                        stored.push((f.display().to_string(), bytes));
                        segments += 1;
                    }
                }
            }
            assert!(segments >= 1, "WAL segments {first}..{last} searched");
            // And everything the relay itself wrote (attachment files, keys).
            for f in files_under(app.data_dir.path()) {
                stored.push((f.display().to_string(), std::fs::read(&f).unwrap()));
            }
        }
    }
    let total: usize = stored.iter().map(|(_, d)| d.len()).sum();
    assert!(total > 0);

    let mut controls = vec![control.clone(), username];
    if backend == Backend::Postgres {
        controls.push(("stored envelope (hex)".into(), hex(&control.1)));
    }
    for c in &controls {
        assert!(
            !hits(&stored, std::slice::from_ref(c)).is_empty(),
            "positive control {} not found: the search would not see stored bytes",
            c.0
        );
    }
    let mut found = hits(&stored, &needles);
    found.extend(hits(&stored, &hex_needles));
    assert!(
        found.is_empty(),
        "secrets found at rest:\n{}",
        found.join("\n")
    );
    eprintln!(
        "searched {} files, {total} bytes, for {} needles (and their hex forms): none found",
        stored.len(),
        needles.len()
    );
}

async fn pg_scalar(app: &TestApp, sql: &str) -> String {
    app.texts(sql).await.remove(0)
}

fn pg_data_dir() -> PathBuf {
    let dir = std::env::var("SOTTO_TEST_PG_DIR").unwrap_or_else(|_| "/tmp/sotto-test-pg".into());
    PathBuf::from(dir).join("data")
}
