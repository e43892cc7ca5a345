//! Self-hosters upgrade in place: the current relay starts on a database made
//! by the previous migration set (a fixture kept in `tests/fixtures/upgrade/`,
//! see `sotto_tests::upgrade`), migrates it, and shows every account, room,
//! message, receipt, contact, device and attachment exactly as before; sessions
//! live on, and new writes continue where the old ones stopped.

use serde_json::{Value, json};
use sotto_tests::upgrade::{Manifest, member_with_new_device, observe};
use sotto_tests::{AppOptions, Backend, TestApp, both_backends, spawn_app_with};

both_backends!(upgrade_from_migration_set_0002_keeps_everything);

fn fixture(set: &str, backend: Backend) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/upgrade")
        .join(set)
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
}

fn read_json(path: std::path::PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

async fn start_on(set: &str, backend: Backend) -> (TestApp, Manifest, Value) {
    let dir = fixture(set, backend);
    let mut opts = AppOptions {
        attachment_quota_bytes: 1 << 20,
        ..AppOptions::default()
    };
    let data = tempfile::tempdir().unwrap();
    if dir.join("attachments").exists() {
        sotto_tests::copy_dir(&dir.join("attachments"), &data.path().join("attachments"));
    }
    match backend {
        Backend::Sqlite => {
            std::fs::copy(dir.join("sotto.db"), data.path().join("sotto.db")).unwrap();
        }
        Backend::Postgres => {
            opts.postgres_sql = Some(std::fs::read_to_string(dir.join("dump.sql")).unwrap());
        }
    }
    opts.data_from = Some(data.path().to_path_buf());
    let app = spawn_app_with(backend, opts).await;
    let manifest: Manifest = serde_json::from_value(read_json(dir.join("manifest.json"))).unwrap();
    (app, manifest, read_json(dir.join("observed.json")))
}

/// Fields the API gained after the fixture was made, removed from an
/// observation (each must hold its empty value there): `invited` of a room's
/// details (0005, invitations); `member_epoch` of a room (a number: the
/// column is older than the field).
fn strip_added_fields(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.contains_key("owner_id") && map.contains_key("kind") {
                let epoch = map.remove("member_epoch");
                assert!(
                    epoch.as_ref().is_some_and(Value::is_u64),
                    "a room without its member_epoch: {epoch:?}"
                );
            }
            if map.contains_key("members") && map.contains_key("kind") {
                let invited = map.remove("invited");
                assert_eq!(
                    invited,
                    Some(json!([])),
                    "a room of the fixture has invitations"
                );
            }
            for child in map.values_mut() {
                strip_added_fields(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_added_fields),
        _ => {}
    }
}

async fn upgrade_from_migration_set_0002_keeps_everything(backend: Backend) {
    let (app, manifest, before) = start_on("0002", backend).await;

    // Everything reads back as it did before the upgrade, but for what later
    // relays add to the answers (listed, and checked to be what a fixture of
    // that time can only have: no pending invitations).
    let mut after = observe(&app, &manifest).await;
    strip_added_fields(&mut after);
    assert_eq!(after, before, "the API shows the upgraded data differently");

    // Sessions made before the upgrade live on: the refresh token rotates.
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": manifest.alice_refresh}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // Writes continue where the old relay stopped: the next seq, new rows of
    // every kind, and the old rows change.
    let room = manifest.group_room;
    let bob = member_with_new_device(&app, "bob").await;
    let alice = member_with_new_device(&app, "alice").await;
    let to = [alice.verified(), bob.verified()];
    let last = before["alice"]["rooms"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room.to_string())
        .unwrap()["last_seq"]
        .as_u64()
        .unwrap();
    let (cid, env) = bob.seal(room, b"after the upgrade", &to);
    let posted = app.post_message(&bob, room, cid, &env, 201).await;
    assert_eq!(posted.seq, last + 1);
    let page = app.history(&alice.account, room, last, 10).await;
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].envelope.as_ref().unwrap().0, env);
    // An old message is deleted, the old room renamed, a new room made.
    let old = before["alice"]["room_details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["room"]["id"] == room.to_string())
        .unwrap()["history"]["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let del = app
        .req(
            "DELETE",
            &format!("/api/v1/rooms/{room}/messages/{old}"),
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(del.status, 204, "{del:?}");
    let renamed = app
        .req(
            "PATCH",
            &format!("/api/v1/rooms/{room}"),
            Some(alice.token()),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    app.room(&bob.account, "new room", &[alice.id()]).await;
    let unread = app.get("/api/v1/unread", Some(alice.token())).await;
    assert_eq!(unread.status, 200);
    assert_eq!(unread.body[room.to_string()], 1, "{unread:?}");
}
