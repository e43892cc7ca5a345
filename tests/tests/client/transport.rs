//! The SDK's transport: typed errors with the relay's problem code, and the
//! access token refreshed by itself, one refresh at a time.

use std::time::Duration;

use sotto_client::Error;
use sotto_tests::Backend;
use sotto_tests::process::RelayProcess;
use uuid::Uuid;

use crate::support::Person;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_refresh_and_errors_carry_the_problem_code() {
    // Access tokens live 2 s: the relay refuses them after that, and the client
    // refreshes them after half their life.
    let relay = RelayProcess::start_with(Backend::Sqlite, &[("SOTTO_ACCESS_TOKEN_TTL", "2")]).await;
    let url = relay.url();
    let alice = Person::register(&relay, &url, "alice", None).await;
    let client = alice.session.client().clone();
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        relay.data_dir().join("sotto.db").display()
    ))
    .await
    .unwrap();
    let refreshes = || async {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL")
                .fetch_one(&db)
                .await
                .unwrap();
        n
    };
    for round in 0..3 {
        let before = refreshes().await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        // Refresh tokens are single-use and a reused one revokes the session:
        // were two refreshes to race, one would present a spent token and every
        // later call would fail. All 16 succeed, round after round.
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move { c.me().await })
            })
            .collect();
        for call in calls {
            let me = call
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(me.id, alice.id());
        }
        assert_eq!(
            refreshes().await - before,
            1,
            "round {round}: one refresh for 16 callers"
        );
    }

    // A refusal keeps the relay's problem: status and stable code.
    let err = client.get_room(Uuid::now_v7()).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("not_a_member")),
        "{err:?}"
    );
    let err = client
        .register(
            "alice",
            "alice@example.org",
            "a long enough test passphrase",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Relay { .. }) && err.status() == Some(409),
        "{err:?}"
    );

    // After logout the session is gone: calls say so, they do not loop.
    client.logout().await.unwrap();
    assert!(matches!(client.me().await, Err(Error::NotLoggedIn)));
}
