//! Helpers shared by the feature modules.

use serde_json::Value;
use sotto_core::api::ServerFrame;
use sotto_relay::events::Subscription;
use sotto_tests::TestApp;
use uuid::Uuid;

/// The next event delivered to a user's subscription, or a failure after 10 s (a
/// missing event must fail the test, not hang it).
pub async fn next_event(rx: &mut Subscription) -> std::sync::Arc<ServerFrame> {
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("no event within 10 s")
        .unwrap();
    std::sync::Arc::new((**event).clone())
}

/// Drops what a subscription has queued so far.
pub fn drain(rx: &mut Subscription) {
    while let Ok(Some(_)) = rx.try_recv() {}
}

pub fn subscribe(app: &TestApp, user: Uuid) -> Subscription {
    app.state.events.subscribe(user, 256)
}

pub async fn put_device(app: &TestApp, token: &str, body: Value) -> sotto_tests::Res {
    let id = body["bundle"]["device_id"].as_str().unwrap().to_string();
    app.req(
        "PUT",
        &format!("/api/v1/devices/{id}"),
        Some(token),
        Some(body),
    )
    .await
}
