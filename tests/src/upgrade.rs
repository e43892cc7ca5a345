//! Upgrade fixtures: a small relay database made by an earlier migration set,
//! kept in `tests/fixtures/upgrade/<set>/<backend>/`, and what the API showed
//! of it then. `make` fills a relay through the API (accounts of every role, an
//! unverified one, devices in both suites, a group and a direct room, messages
//! with a tombstone, receipts, contacts, inline and file attachments);
//! `observe` reads all of it back through the API. The upgrade test starts the
//! current relay on a copy and checks that `observe` sees the same.
//!
//! Made by `cargo run -p sotto-tests --bin make-upgrade-fixture -- <set>` (see
//! `docs/architecture.md`, "Schema changes").

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sotto_core::keys::RsaBits;
use uuid::Uuid;

use crate::{Account, Member, PASSWORD, TestApp};

/// What a fixture keeps besides the database: what `observe` needs and the API
/// cannot list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub users: Vec<String>,
    pub unverified: String,
    pub attachments: Vec<Uuid>,
    /// A live refresh token of `alice` (sessions survive an upgrade).
    pub alice_refresh: String,
    pub group_room: Uuid,
}

/// Fills `app` through its API.
pub async fn make(app: &TestApp) -> Manifest {
    let root = app.master().await;
    let alice = app.register_verified("alice").await;
    let bob = app.register_verified("bob").await;
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "carol", "email": "carol@example.org", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let admin = app.account_with_role("dora", "admin").await;
    let patch = app
        .req(
            "PATCH",
            &format!("/api/v1/users/{}", alice.id),
            Some(&alice.access),
            Some(json!({"display_name": "Alice A."})),
        )
        .await;
    assert_eq!(patch.status, 200, "{patch:?}");

    let alice = app.with_device(alice, None).await;
    let bob = app.with_device(bob, Some(RsaBits::Rsa2048)).await;
    let to = [alice.verified(), bob.verified()];

    let group = app.room(&alice.account, "upgrade room", &[bob.id()]).await;
    let mut ids = Vec::new();
    for (i, from) in [&alice, &bob, &alice].into_iter().enumerate() {
        let (cid, env) = from.seal(group, format!("message {i}").as_bytes(), &to);
        ids.push(app.post_message(from, group, cid, &env, 201).await.id);
    }
    let del = app
        .req(
            "DELETE",
            &format!("/api/v1/rooms/{group}/messages/{}", ids[1]),
            Some(bob.token()),
            None,
        )
        .await;
    assert_eq!(del.status, 204, "{del:?}");
    let receipt = app
        .post(
            &format!("/api/v1/rooms/{group}/receipts"),
            Some(bob.token()),
            json!({"kind": "read", "seq": 1}),
        )
        .await;
    assert!(receipt.status < 300, "{receipt:?}");

    let direct = app
        .post(
            "/api/v1/rooms/direct",
            Some(alice.token()),
            json!({"user_id": bob.id()}),
        )
        .await;
    assert!(direct.status < 300, "{direct:?}");
    let direct: Uuid = direct.body["id"].as_str().unwrap().parse().unwrap();
    let cid = Uuid::new_v4();
    let env = bob.seal_with(direct, cid, b"rsa suite", &to, true);
    app.post_message(&bob, direct, cid, &env, 201).await;

    let c = app
        .post(
            "/api/v1/contacts",
            Some(alice.token()),
            json!({"user_id": bob.id(), "nickname": "Bobby"}),
        )
        .await;
    assert_eq!(c.status, 201, "{c:?}");

    let up = format!("/api/v1/rooms/{group}/attachments");
    let oct = Some("application/octet-stream");
    let mut attachments = Vec::new();
    for (who, bytes) in [
        (&alice, vec![7u8; 1000]),
        (&bob, (0..100_000u32).map(|i| (i % 251) as u8).collect()),
    ] {
        let (st, _, body) = app
            .req_bytes("POST", &up, Some(who.token()), oct, bytes)
            .await;
        assert_eq!(st, 201);
        let v: Value = serde_json::from_slice(&body).unwrap();
        attachments.push(v["id"].as_str().unwrap().parse().unwrap());
    }
    let _ = (root, admin);
    Manifest {
        users: ["root", "alice", "bob", "dora"].map(String::from).to_vec(),
        unverified: "carol".into(),
        attachments,
        alice_refresh: login(app, "alice").await.refresh,
        group_room: group,
    }
}

async fn login(app: &TestApp, username: &str) -> Account {
    let r = app.login(username, PASSWORD).await;
    let t: sotto_core::api::auth::TokenResponse = r.typed(200);
    Account {
        id: t.user.id,
        username: t.user.username,
        email: t.user.email,
        access: t.access_token,
        refresh: t.refresh_token,
    }
}

async fn get_ok(app: &TestApp, path: &str, who: &Account) -> Value {
    let r = app.get(path, Some(&who.access)).await;
    assert_eq!(r.status, 200, "{path}: {r:?}");
    r.body
}

/// Everything the API shows of the fixture's data, read as its users.
pub async fn observe(app: &TestApp, m: &Manifest) -> Value {
    let mut out = serde_json::Map::new();
    let mut accounts = Vec::new();
    for u in &m.users {
        accounts.push(login(app, u).await);
    }
    let root = &accounts[0];
    out.insert(
        "users".into(),
        get_ok(app, "/api/v1/users?limit=200", root).await,
    );
    let unverified = app.login(&m.unverified, PASSWORD).await;
    out.insert(
        "unverified_login".into(),
        json!([unverified.status, unverified.body["code"]]),
    );
    for a in &accounts {
        let mut mine = serde_json::Map::new();
        mine.insert("me".into(), get_ok(app, "/api/v1/auth/me", a).await);
        mine.insert("devices".into(), get_ok(app, "/api/v1/devices", a).await);
        mine.insert("contacts".into(), get_ok(app, "/api/v1/contacts", a).await);
        mine.insert("unread".into(), get_ok(app, "/api/v1/unread", a).await);
        let rooms = get_ok(app, "/api/v1/rooms?limit=200", a).await;
        let mut details = Vec::new();
        for r in rooms["items"].as_array().unwrap() {
            let id = r["id"].as_str().unwrap();
            details.push(json!({
                "room": get_ok(app, &format!("/api/v1/rooms/{id}"), a).await,
                "history": get_ok(app, &format!("/api/v1/rooms/{id}/messages?after_seq=0&limit=200"), a).await,
            }));
        }
        mine.insert("rooms".into(), rooms);
        mine.insert("room_details".into(), Value::Array(details));
        let peers = accounts
            .iter()
            .filter(|p| p.id != a.id)
            .map(|p| p.id)
            .collect::<Vec<_>>();
        let keys = app
            .post(
                "/api/v1/keys/query",
                Some(&a.access),
                json!({ "user_ids": peers }),
            )
            .await;
        mine.insert("keys".into(), json!([keys.status, keys.body]));
        out.insert(a.username.clone(), Value::Object(mine));
    }
    let alice = &accounts[1];
    let mut files = Vec::new();
    for id in &m.attachments {
        let (st, _, body) = app
            .req_bytes(
                "GET",
                &format!("/api/v1/attachments/{id}"),
                Some(&alice.access),
                None,
                Vec::new(),
            )
            .await;
        files.push(json!([
            st,
            body.len(),
            sotto_core::encoding::b64_encode(&sha256(&body))
        ]));
    }
    out.insert("attachments".into(), Value::Array(files));
    Value::Object(out)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// A member of the fixture with a fresh identity and device (after an upgrade,
/// to post; the fixture keeps no private keys).
pub async fn member_with_new_device(app: &TestApp, username: &str) -> Member {
    let account = login(app, username).await;
    let identity = sotto_core::keys::IdentityKeyPair::generate().unwrap();
    app.register_device(account, identity, None, true).await
}
