//! Contacts and user search.

use serde_json::json;
use sotto_core::api::contacts::Contact;
use sotto_core::api::pagination::Page;
use sotto_tests::{Backend, both_backends, spawn_app};
use uuid::Uuid;

both_backends!(contacts_and_search,);

async fn contacts_and_search(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("con", 3).await;
    let (alice, bob, carol) = (&u[0], &u[1], &u[2]);
    let r = app
        .post(
            "/api/v1/contacts",
            Some(&alice.access),
            json!({"user_id": bob.id, "nickname": "Bobby"}),
        )
        .await;
    let added: Contact = r.typed(201);
    assert_eq!(added.user.username, "con1");
    assert_eq!(added.nickname.as_deref(), Some("Bobby"));
    assert!(
        r.body["user"].get("email").is_none(),
        "contacts carry public profiles only"
    );
    let cid = added.id;
    app.post(
        "/api/v1/contacts",
        Some(&alice.access),
        json!({"user_id": bob.id}),
    )
    .await
    .problem(409, "contact_exists");
    app.post(
        "/api/v1/contacts",
        Some(&alice.access),
        json!({"user_id": alice.id}),
    )
    .await
    .problem(400, "cannot_target_self");
    app.post(
        "/api/v1/contacts",
        Some(&alice.access),
        json!({"user_id": Uuid::new_v4()}),
    )
    .await
    .problem(404, "not_found");
    app.post(
        "/api/v1/contacts",
        Some(&alice.access),
        json!({"user_id": carol.id}),
    )
    .await;
    let first: Page<Contact> = app
        .get("/api/v1/contacts?limit=1", Some(&alice.access))
        .await
        .typed(200);
    assert_eq!(first.items.len(), 1);
    let next = first.next_cursor.unwrap();
    let second: Page<Contact> = app
        .get(
            &format!("/api/v1/contacts?limit=1&cursor={next}"),
            Some(&alice.access),
        )
        .await
        .typed(200);
    assert_eq!(second.items[0].user.id, carol.id);
    assert!(second.next_cursor.is_none());
    app.get("/api/v1/contacts?cursor=nope", Some(&alice.access))
        .await
        .problem(400, "invalid_cursor");
    let of_bob: Page<Contact> = app
        .get("/api/v1/contacts", Some(&bob.access))
        .await
        .typed(200);
    assert!(of_bob.items.is_empty());

    let r = app
        .req(
            "PATCH",
            &format!("/api/v1/contacts/{cid}"),
            Some(&alice.access),
            Some(json!({"nickname": "B"})),
        )
        .await;
    assert_eq!(r.typed::<Contact>(200).nickname.as_deref(), Some("B"));
    let r = app
        .req(
            "PATCH",
            &format!("/api/v1/contacts/{cid}"),
            Some(&alice.access),
            Some(json!({"nickname": null})),
        )
        .await;
    assert_eq!(r.typed::<Contact>(200).nickname, None);
    app.req(
        "PATCH",
        &format!("/api/v1/contacts/{cid}"),
        Some(&bob.access),
        Some(json!({"nickname": "x"})),
    )
    .await
    .problem(404, "not_found");
    app.req(
        "PATCH",
        &format!("/api/v1/contacts/{cid}"),
        Some(&alice.access),
        Some(json!({"nickname": "a\u{0}b"})),
    )
    .await
    .problem(400, "validation_failed");
    app.req(
        "DELETE",
        &format!("/api/v1/contacts/{cid}"),
        Some(&bob.access),
        None,
    )
    .await
    .problem(404, "not_found");
    assert_eq!(
        app.req(
            "DELETE",
            &format!("/api/v1/contacts/{cid}"),
            Some(&alice.access),
            None
        )
        .await
        .status,
        204
    );
    app.req(
        "DELETE",
        &format!("/api/v1/contacts/{cid}"),
        Some(&alice.access),
        None,
    )
    .await
    .problem(404, "not_found");

    // Search: verified users by username prefix, public profiles only.
    let r = app
        .get("/api/v1/users/search?q=con", Some(&alice.access))
        .await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["con0", "con1", "con2"]);
    assert!(r.body["items"][0].get("email").is_none());
    assert!(r.body["next_cursor"].is_null());
    let r = app
        .get("/api/v1/users/search?q=con&limit=2", Some(&alice.access))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["next_cursor"], "con1");
    let r = app
        .get(
            "/api/v1/users/search?q=con&limit=2&cursor=con1",
            Some(&alice.access),
        )
        .await;
    assert_eq!(r.body["items"][0]["username"], "con2");
    assert!(r.body["next_cursor"].is_null());
    app.get(
        "/api/v1/users/search?q=con&cursor=%20%21",
        Some(&alice.access),
    )
    .await
    .problem(400, "invalid_cursor");
    assert_eq!(
        app.get("/api/v1/users/search?q=con", None).await.status,
        401
    );
}
