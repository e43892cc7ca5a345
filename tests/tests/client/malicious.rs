//! A malicious relay: the test rewrites the relay's database the way a hostile
//! operator could. Alice's client notices and does not encrypt to the impostor.

use sotto_client::sotto_core::api::MessageListQuery;
use sotto_client::sotto_core::envelope::Envelope;
use sotto_client::sotto_core::keys::{DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair};
use sotto_client::{Error, Event};
use sotto_tests::Backend;
use sotto_tests::process::RelayProcess;
use uuid::Uuid;

use crate::support::{Person, alice_and_bob, assert_no_plaintext_at_rest, text};

/// Runs `sql` on the (stopped) relay's SQLite database.
async fn tamper(relay: &RelayProcess, sql: &str, binds: &[String]) {
    let path = relay.data_dir().join("sotto.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
    for b in binds {
        q = q.bind(b.clone());
    }
    assert_eq!(q.execute(&pool).await.unwrap().rows_affected(), 1);
    pool.close().await;
}

/// An impostor's bundle for `user`/`device`: valid signatures, another identity.
fn forged(user: Uuid, device: Uuid) -> (IdentityKeyPair, DeviceBundle) {
    let identity = IdentityKeyPair::generate().unwrap();
    let keys = DeviceKeys::generate(DeviceKeyOptions::default()).unwrap();
    let bundle = DeviceBundle::create(&identity, &keys, user, device).unwrap();
    (identity, bundle)
}

async fn setup() -> (RelayProcess, Person, Person, Uuid, Vec<String>) {
    let relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let (alice, mut bob, room) = alice_and_bob(&relay, &url, None, "r").await;
    let t = text("before the attack");
    alice.session.send_text(room, &t).await.unwrap();
    bob.expect_text(&t).await;
    (relay, alice, bob, room, vec![t])
}

async fn message_count(p: &Person, room: Uuid) -> usize {
    p.session
        .client()
        .list_messages(room, &MessageListQuery::default())
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_identity_key_is_refused_and_announced() {
    let (mut relay, mut alice, _bob, room, mut sent) = setup().await;
    let bob_id = _bob.id();
    let bob_device = _bob.session.device_id();
    _bob.session.disconnect().await;
    let (evil, bundle) = forged(bob_id, bob_device);
    assert_eq!(alice.session.trust(bob_id), sotto_client::Trust::Unverified);

    relay.kill();
    tamper(
        &relay,
        "UPDATE devices SET identity_key = ?1, bundle = ?2 WHERE id = ?3",
        &[
            evil.public_key().to_base64(),
            serde_json::to_string(&bundle).unwrap(),
            bob_device.to_string(),
        ],
    )
    .await;
    tamper(
        &relay,
        "UPDATE identities SET identity_key = ?1 WHERE user_id = ?2",
        &[evil.public_key().to_base64(), bob_id.to_string()],
    )
    .await;
    relay.restart();
    // Alice's client reconnects by itself (and refetches keys after a reconnect).
    alice
        .wait_for(|e| matches!(e, Event::Connection(sotto_client::Connection::Online)))
        .await;

    let t = text("must not reach the impostor");
    let before = message_count(&alice, room).await;
    let err = alice.session.send_text(room, &t).await.unwrap_err();
    assert!(
        matches!(&err, Error::IdentityChanged(users) if users == &vec![bob_id]),
        "{err:?}"
    );
    let ev = alice
        .wait_for(|e| matches!(e, Event::IdentityKeyChanged { .. }))
        .await;
    assert!(
        matches!(ev, Event::IdentityKeyChanged { user_id, was_verified: false } if user_id == bob_id)
    );
    assert_eq!(
        message_count(&alice, room).await,
        before,
        "nothing was posted"
    );
    // The pin is unchanged until the app accepts the new key; the user's
    // trust state says why nothing flows (the npm package's `trust(user)`).
    assert_ne!(alice.session.pin(bob_id).unwrap().key, evil.public_key());
    assert_eq!(alice.session.trust(bob_id), sotto_client::Trust::Changed);
    sent.push(t);

    // Once the person accepts it (after comparing safety numbers), it flows.
    alice.session.accept_identity(bob_id).await.unwrap();
    assert_eq!(alice.session.pin(bob_id).unwrap().key, evil.public_key());
    assert_eq!(alice.session.trust(bob_id), sotto_client::Trust::Unverified);
    assert!(alice.session.mark_verified(bob_id).unwrap());
    assert_eq!(alice.session.trust(bob_id), sotto_client::Trust::Verified);
    alice.session.send_text(room, "accepted").await.unwrap();
    assert_no_plaintext_at_rest(&relay, &sent, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_device_of_another_identity_is_rejected() {
    let (mut relay, mut alice, mut bob, room, mut sent) = setup().await;
    let fake_device = Uuid::now_v7();
    let (_evil, bundle) = forged(bob.id(), fake_device);

    relay.kill();
    tamper(
        &relay,
        "INSERT INTO devices (id, user_id, display_name, identity_key, bundle, created_at, updated_at)
         VALUES (?1, ?2, 'totally bob', ?3, ?4, 0, 0)",
        &[fake_device.to_string(), bob.id().to_string(), _evil.public_key().to_base64(), serde_json::to_string(&bundle).unwrap()],
    )
    .await;
    relay.restart();
    alice
        .wait_for(|e| matches!(e, Event::Connection(sotto_client::Connection::Online)))
        .await;
    bob.wait_for(|e| matches!(e, Event::Connection(sotto_client::Connection::Online)))
        .await;

    let t = text("only for bob's real device");
    let s = alice.session.send_text(room, &t).await.unwrap();
    let ev = alice
        .wait_for(|e| matches!(e, Event::DeviceRejected { .. }))
        .await;
    assert!(
        matches!(ev, Event::DeviceRejected { user_id, device_id } if user_id == bob.id() && device_id == fake_device)
    );
    bob.expect_text(&t).await;
    let page = alice
        .session
        .client()
        .list_messages(
            room,
            &MessageListQuery {
                after_seq: Some(s.seq - 1),
                limit: Some(1),
            },
        )
        .await
        .unwrap();
    let env = Envelope::from_bytes(page.items[0].envelope.as_ref().unwrap().as_bytes()).unwrap();
    let recipients: Vec<Uuid> = env.recipient_devices().collect();
    assert!(recipients.contains(&bob.session.device_id()));
    assert!(
        !recipients.contains(&fake_device),
        "sealed to the injected device"
    );
    sent.push(t);
    assert_no_plaintext_at_rest(&relay, &sent, "alice");
}
