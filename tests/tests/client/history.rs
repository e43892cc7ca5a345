//! Local history (`docs/client.md`, "Local history"): opened and sent
//! messages are kept in the client store sealed under the store key; they show
//! after a restart and page back from the store; the store file holds no
//! plaintext; the passphrase wraps only the store key; a store made before the
//! store key is upgraded on unlock.

use std::sync::Arc;

use sotto_client::sotto_core::backup::{self, BackupParams};
use sotto_client::{
    Client, Content, DeviceSetup, Error, Event, Session, SessionOptions, SqliteStore, Store,
};
use sotto_tests::Backend;
use sotto_tests::process::RelayProcess;
use zeroize::Zeroizing;

use crate::support::{PASSWORD, Person, alice_and_bob, text};

async fn open_with(
    url: &str,
    name: &str,
    store: &std::path::Path,
    pass: &str,
) -> Result<Session, Error> {
    let client = Client::new(url).unwrap();
    client.login(name, PASSWORD).await.unwrap();
    Session::open(
        client,
        Arc::new(SqliteStore::open(store).unwrap()),
        SessionOptions {
            store_passphrase: Zeroizing::new(pass.into()),
            setup: DeviceSetup::New { rsa: None },
            device_name: None,
        },
    )
    .await
}

fn texts(messages: &[sotto_client::ReceivedMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match &m.content {
            Content::Text { body } => body.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_kept_sealed_and_shows_after_a_restart() {
    let relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let (alice, mut bob, room) = alice_and_bob(&relay, &url, None, "history").await;
    let mut sent = Vec::new();
    for i in 0..5 {
        let from_alice = text(&format!("alice {i}"));
        alice.session.send_text(room, &from_alice).await.unwrap();
        bob.expect_text(&from_alice).await;
        let from_bob = text(&format!("bob {i}"));
        bob.session.send_text(room, &from_bob).await.unwrap();
        sent.push(from_alice);
        sent.push(from_bob);
    }

    // Bob's history: what he received and what he sent, in order, from his store.
    let all = bob.session.history(room, None, 100).unwrap();
    assert_eq!(texts(&all), sent);
    assert!(all.iter().all(|m| m.own == (m.sender_id == bob.id())));
    // Paging back: the newest 4, then the 4 before them.
    let newest = bob.session.history(room, None, 4).unwrap();
    assert_eq!(texts(&newest), sent[6..]);
    let before = bob.session.history(room, Some(newest[0].seq), 4).unwrap();
    assert_eq!(texts(&before), sent[2..6]);

    // No plaintext in Bob's store files (database, WAL).
    let bob = bob.restart(&url).await;
    let mut files = 0;
    for entry in std::fs::read_dir(bob.store_dir.path()).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        files += 1;
        for t in &sent {
            assert!(
                memchr::memmem::find(&bytes, t.as_bytes()).is_none(),
                "{t:?} in {}",
                entry.path().display()
            );
        }
    }
    assert!(files >= 1);
    // After the restart, the same history, with no relay call needed.
    assert_eq!(texts(&bob.session.history(room, None, 100).unwrap()), sent);

    // A deleted message leaves local history.
    let victim = &all[0];
    alice
        .session
        .client()
        .delete_message(room, victim.id)
        .await
        .unwrap();
    let mut bob = bob;
    bob.wait_for(|e| matches!(e, Event::MessageDeleted { id, .. } if *id == victim.id))
        .await;
    assert_eq!(
        texts(&bob.session.history(room, None, 100).unwrap()),
        sent[1..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_passphrase_wraps_only_the_store_key_and_old_stores_upgrade() {
    let relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let (alice, mut bob, room) = alice_and_bob(&relay, &url, None, "passphrase").await;
    let t = text("kept across a passphrase change");
    alice.session.send_text(room, &t).await.unwrap();
    bob.expect_text(&t).await;
    let store = bob.store_dir.path().join("store.db");

    // A new store passphrase (not the login password): only the key is re-wrapped.
    assert!(matches!(
        bob.session
            .change_store_passphrase("wrong", "new store pass")
            .await,
        Err(Error::Locked)
    ));
    bob.session
        .change_store_passphrase(PASSWORD, "new store pass")
        .await
        .unwrap();
    bob.session.disconnect().await;
    let Person { session, .. } = bob;
    drop(session);
    assert!(matches!(
        open_with(&url, "bob", &store, PASSWORD).await,
        Err(Error::Locked)
    ));
    let again = open_with(&url, "bob", &store, "new store pass")
        .await
        .unwrap();
    assert_eq!(texts(&again.history(room, None, 10).unwrap()), [t]);
    drop(again);

    // A store made before the store key: the device's secrets under the
    // passphrase, no store key. Unlocking upgrades it, and history starts.
    let sqlite = SqliteStore::open(&store).unwrap();
    let acct = sqlite.account().unwrap().unwrap();
    let key = sotto_client::sotto_engine::vault::StoreKey::unwrap(
        acct.store_key.as_deref().unwrap(),
        b"new store pass",
    )
    .unwrap();
    let secrets = backup::import_with_recovery_key(&acct.secrets, &key.device_key()).unwrap();
    let legacy =
        backup::export_with_passphrase(&secrets, b"legacy pass", &BackupParams::MINIMUM).unwrap();
    sqlite
        .set_account(&sotto_client::store::StoredAccount {
            secrets: legacy,
            store_key: None,
            ..acct
        })
        .unwrap();
    drop(sqlite);
    let upgraded = open_with(&url, "bob", &store, "legacy pass").await.unwrap();
    let acct = SqliteStore::open(&store)
        .unwrap()
        .account()
        .unwrap()
        .unwrap();
    assert!(acct.store_key.is_some(), "the store key was set up");
    assert!(backup::import_with_passphrase(&acct.secrets, b"legacy pass").is_err());
    // Items sealed under the old store's key do not open under the new one
    // (left out, not shown wrong); new messages are kept.
    assert!(upgraded.history(room, None, 10).unwrap().is_empty());
    drop(upgraded);
    let reopened = open_with(&url, "bob", &store, "legacy pass").await.unwrap();
    assert!(reopened.history(room, None, 10).unwrap().is_empty());
}
