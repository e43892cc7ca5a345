//! Network faults: the relay is killed mid-conversation and restarted; a
//! socket is cut during a burst. Clients reconnect by themselves, resume, and
//! every message arrives exactly once.

use std::time::Duration;

use sotto_client::{Connection, Event};
use sotto_tests::Backend;
use sotto_tests::process::{RelayProcess, TcpProxy};

use crate::support::{Person, alice_and_bob, assert_no_plaintext_at_rest, text};

fn exactly_once(seen: &std::collections::HashMap<String, usize>, texts: &[String]) {
    for t in texts {
        assert_eq!(
            seen.get(t),
            Some(&1),
            "{t:?} arrived {:?} times",
            seen.get(t)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_relay_loses_and_doubles_nothing() {
    let mut relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let (alice, mut bob, room) = alice_and_bob(&relay, &url, None, "r").await;

    let texts: Vec<String> = (0..30).map(|i| text(&format!("message {i}"))).collect();
    for t in &texts[..10] {
        alice.session.send_text(room, t).await.unwrap();
    }
    relay.kill();
    // Alice keeps writing while the relay is down: the posts fail after their
    // retries, and the sealed messages wait in her outbox.
    let mut queued = 0;
    for t in &texts[10..20] {
        match alice.session.send_text(room, t).await {
            Err(sotto_client::Error::Queued { .. }) => queued += 1,
            other => panic!("the relay is down: {other:?}"),
        }
    }
    assert_eq!(queued, 10);
    relay.restart();
    // Her client reconnects by itself and flushes the outbox; Bob's resumes.
    for t in &texts[20..] {
        alice.session.send_text(room, t).await.unwrap();
    }
    let seen = bob.collect_texts(&texts, Duration::from_secs(2)).await;
    exactly_once(&seen, &texts);
    assert!(bob.session.is_online() && alice.session.is_online());

    // An app restart (new session from the same store) resumes from the cursor:
    // nothing is delivered again.
    let mut bob = bob.restart(&url).await;
    let t = text("after bob's restart");
    alice.session.send_text(room, &t).await.unwrap();
    let seen = bob
        .collect_texts(std::slice::from_ref(&t), Duration::from_secs(1))
        .await;
    assert_eq!(
        seen.len(),
        1,
        "only the new message after a restart: {seen:?}"
    );
    assert_eq!(seen[&t], 1);

    let mut all = texts.clone();
    all.push(t);
    assert_no_plaintext_at_rest(&relay, &all, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_messages_survive_an_app_restart_before_the_relay_acked_them() {
    let mut relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let (alice, mut bob, room) = alice_and_bob(&relay, &url, None, "r").await;
    let texts: Vec<String> = (0..5).map(|i| text(&format!("queued {i}"))).collect();
    // Sealing needs the room's members and their keys: one message while the
    // relay is up loads them (offline, the session seals from what it knows).
    alice.session.send_text(room, &texts[0]).await.unwrap();
    relay.kill();
    for t in &texts[1..] {
        assert!(matches!(
            alice.session.send_text(room, t).await,
            Err(sotto_client::Error::Queued { .. })
        ));
    }
    // The app quits with the messages sealed but never acknowledged...
    alice.session.disconnect().await;
    let store_dir = alice.store_dir;
    drop(alice.session);
    relay.restart();
    // ...and starts again on the same store: the outbox goes out, once.
    let session = Person::open(
        &url,
        "alice",
        sotto_client::DeviceSetup::New { rsa: None },
        &store_dir.path().join("store.db"),
    )
    .await;
    let _alice = Person::connected("alice", session, store_dir).await;
    let seen = bob.collect_texts(&texts, Duration::from_secs(2)).await;
    exactly_once(&seen, &texts);
    assert_no_plaintext_at_rest(&relay, &texts, "alice");
}

/// Single-flight posting (the engine's `Outbox`): while the reconnecting
/// session flushes its outbox, the app flushes it too, three times at once.
/// Each waiting message is posted by one of them; the others wait for that
/// post, so each is `Sent` once (a second post would be answered by the relay
/// with the same id and announced twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_entry_is_posted_once_however_many_flush_it() {
    let mut relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let (mut alice, mut bob, room) = alice_and_bob(&relay, &url, None, "r").await;
    let texts: Vec<String> = (0..6).map(|i| text(&format!("flushed {i}"))).collect();
    alice.session.send_text(room, &texts[0]).await.unwrap();
    relay.kill();
    let mut queued = Vec::new();
    for t in &texts[1..] {
        match alice.session.send_text(room, t).await {
            Err(sotto_client::Error::Queued { client_id, .. }) => queued.push(client_id),
            other => panic!("the relay is down: {other:?}"),
        }
    }
    // Neither the socket nor HTTP reaches the relay: marking read fails, loudly
    // (the npm package's `markRead` rejects the same way).
    assert!(alice.session.mark_read(room, 1).await.is_err());
    relay.restart();
    let s = &alice.session;
    let (a, b, c) = tokio::join!(s.flush_outbox(), s.flush_outbox(), s.flush_outbox());
    for r in [a, b, c] {
        match r {
            Ok(refused) => assert!(refused.is_empty(), "{refused:?}"),
            // Still reconnecting: a flush that found its message waiting stops.
            Err(sotto_client::Error::Queued { .. }) => {}
            Err(e) => panic!("flush failed: {e}"),
        }
    }
    let seen = bob.collect_texts(&texts, Duration::from_secs(2)).await;
    exactly_once(&seen, &texts);
    // Every queued message was announced once (and nothing else was).
    let mut sent = std::collections::HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(e)) =
        tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut alice.events)).await
    {
        if let Event::Sent { client_id, .. } = e {
            *sent.entry(client_id).or_insert(0) += 1;
        }
    }
    for id in &queued {
        assert_eq!(
            sent.get(id),
            Some(&1),
            "{id} was announced {:?} times",
            sent.get(id)
        );
    }
    assert!(sent.values().all(|n| *n == 1), "{sent:?}");

    // Offline, a read receipt goes over HTTP: the relay moves the mark (asking
    // again answers the mark as it stands) and tells the room: Alice, online,
    // hears of it. (A member's mark starts at their join point, and the relay
    // announces only a move: so the mark is the room's newest message, past
    // where Bob joined.)
    let newest = bob.session.history(room, None, 1).unwrap();
    let last = newest.last().map(|m| m.seq).unwrap();
    let read = sotto_client::sotto_core::api::ReceiptKind::Read;
    let held = |s: &sotto_client::Session| {
        let c = s.client().clone();
        async move { c.post_receipt(room, read, 0).await.unwrap().seq }
    };
    assert!(held(&bob.session).await < last, "the mark moves");
    bob.session.disconnect().await;
    assert!(!bob.session.is_online());
    let online = tokio::time::Instant::now() + Duration::from_secs(10);
    while !alice.session.is_online() {
        assert!(
            tokio::time::Instant::now() < online,
            "alice is not back online"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bob.session.mark_read(room, last).await.unwrap();
    assert_eq!(held(&bob.session).await, last);
    let bob_id = bob.session.user().id;
    alice
        .wait_for(|e| {
            matches!(e, Event::Receipt { user_id, kind, seq, .. }
                if *user_id == bob_id && *kind == read && *seq == last)
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_cut_during_a_burst_loses_and_doubles_nothing() {
    let relay = RelayProcess::start(Backend::Sqlite).await;
    let proxy = TcpProxy::start(relay.port).await;
    let url = proxy.url();
    let (mut alice, mut bob, room) = alice_and_bob(&relay, &url, None, "r").await;

    let texts: Vec<String> = (0..120).map(|i| text(&format!("burst {i}"))).collect();
    let session = alice.session.clone();
    let burst = texts.clone();
    let sender = tokio::spawn(async move {
        for t in &burst {
            session.send_text(room, t).await.unwrap();
        }
    });
    // Cut every connection (both clients' sockets, and HTTP) mid-burst, twice.
    for _ in 0..2 {
        bob.wait_for(|e| matches!(e, Event::Message(_))).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(proxy.cut() > 0);
        bob.wait_for(|e| matches!(e, Event::Connection(Connection::Offline { .. })))
            .await;
    }
    sender.await.unwrap();
    let seen = bob.collect_texts(&texts, Duration::from_secs(2)).await;
    exactly_once(&seen, &texts);
    alice
        .wait_for(|e| matches!(e, Event::Connection(Connection::Online)))
        .await;
    assert_no_plaintext_at_rest(&relay, &texts, "alice");
}
