//! Who may do what on keys, rooms, messages, attachments and contacts (the authorization matrix), and bad input on those routes (a problem, never a 500).

use serde_json::{Value, json};
use sotto_tests::{Backend, Member, PASSWORD, TestApp, b64, both_backends, spawn_app};
use uuid::Uuid;

both_backends!(authorization_matrix, bad_input_is_a_problem_never_a_500,);

type MatrixRow = (
    &'static str,
    String,
    Box<dyn Fn(&Member) -> Option<Value>>,
    [u16; 5],
);

/// Who may do what, for every route of this issue: anonymous, an outsider
/// (authenticated, not a member), a member, the room's owner, and an admin who
/// is not a member (admins get no access to rooms they are not in).
async fn authorization_matrix(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("az", 3).await;
    let (owner, member, outsider) = (&m[0], &m[1], &m[2]);
    let admin = app
        .with_device(app.account_with_role("azadmin", "admin").await, None)
        .await;
    let room = app.room(&owner.account, "r", &[member.id()]).await;
    let to = [owner.verified(), member.verified()];
    let (cid, env) = member.seal(room, b"m", &to);
    let r = app.send(member, room, cid, &env).await;
    let msg = r.body["id"].as_str().unwrap().to_string();
    let (st, _, body) = app
        .req_bytes(
            "POST",
            &format!("/api/v1/rooms/{room}/attachments"),
            Some(member.token()),
            Some("application/octet-stream"),
            vec![9; 10],
        )
        .await;
    assert_eq!(st, 201);
    let att = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    #[derive(Clone, Copy, Debug)]
    enum Who {
        Anon,
        Outsider,
        Member,
        Owner,
        Admin,
    }
    let who_all = [
        Who::Anon,
        Who::Outsider,
        Who::Member,
        Who::Owner,
        Who::Admin,
    ];
    let actor = |w: Who| -> Option<&Member> {
        match w {
            Who::Anon => None,
            Who::Outsider => Some(outsider),
            Who::Member => Some(member),
            Who::Owner => Some(owner),
            Who::Admin => Some(&admin),
        }
    };
    // (method, path, body builder, expected codes for anon/outsider/member/owner/admin).
    // Bodies that would change the fixture for later rows are built to be harmless.
    let rp = format!("/api/v1/rooms/{room}");
    let rows: Vec<MatrixRow> = vec![
        (
            "GET",
            rp.clone(),
            Box::new(|_| None),
            [401, 404, 200, 200, 404],
        ),
        (
            "PATCH",
            rp.clone(),
            Box::new(|_| Some(json!({"name": "n"}))),
            [401, 404, 403, 200, 404],
        ),
        (
            "GET",
            format!("{rp}/messages"),
            Box::new(|_| None),
            [401, 404, 200, 200, 404],
        ),
        (
            "POST",
            format!("{rp}/messages"),
            Box::new(move |a: &Member| {
                let (cid, env) = a.seal(room, b"matrix", &[a.verified()]);
                Some(json!({"client_id": cid, "envelope": b64(&env)}))
            }),
            [401, 404, 201, 201, 404],
        ),
        (
            "POST",
            format!("{rp}/receipts"),
            Box::new(|_| Some(json!({"kind": "read", "seq": 1}))),
            [401, 404, 200, 200, 404],
        ),
        (
            "POST",
            format!("{rp}/members"),
            Box::new(|_| Some(json!({"user_id": Uuid::nil()}))),
            [401, 404, 403, 404, 404],
        ),
        (
            "DELETE",
            format!("{rp}/members/{}", Uuid::nil()),
            Box::new(|_| None),
            [401, 404, 403, 404, 404],
        ),
        (
            "DELETE",
            format!("{rp}/messages/{}", Uuid::nil()),
            Box::new(|_| None),
            [401, 404, 404, 404, 404],
        ),
        (
            "GET",
            format!("/api/v1/attachments/{att}"),
            Box::new(|_| None),
            [401, 404, 200, 200, 404],
        ),
        (
            "GET",
            "/api/v1/rooms".into(),
            Box::new(|_| None),
            [401, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Box::new(|_| Some(json!({"name": "x"}))),
            [401, 201, 201, 201, 201],
        ),
        (
            "GET",
            "/api/v1/unread".into(),
            Box::new(|_| None),
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/devices".into(),
            Box::new(|_| None),
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            format!("/api/v1/users/{}/devices", member.id()),
            Box::new(|_| None),
            [401, 404, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/keys/query".into(),
            Box::new(|_| Some(json!({"user_ids": []}))),
            [401, 200, 200, 200, 200],
        ),
        (
            "DELETE",
            format!("/api/v1/devices/{}", Uuid::nil()),
            Box::new(|_| Some(json!({"current_password": PASSWORD}))),
            [401, 404, 404, 404, 404],
        ),
        (
            "GET",
            "/api/v1/contacts".into(),
            Box::new(|_| None),
            [401, 200, 200, 200, 200],
        ),
        (
            "PATCH",
            format!("/api/v1/contacts/{}", Uuid::nil()),
            Box::new(|_| Some(json!({"nickname": "n"}))),
            [401, 404, 404, 404, 404],
        ),
        (
            "DELETE",
            format!("/api/v1/contacts/{}", Uuid::nil()),
            Box::new(|_| None),
            [401, 404, 404, 404, 404],
        ),
        (
            "POST",
            "/api/v1/rooms/direct".into(),
            Box::new(|_| Some(json!({"user_id": Uuid::nil()}))),
            [401, 404, 404, 404, 404],
        ),
        (
            "POST",
            "/api/v1/contacts".into(),
            Box::new(|_| Some(json!({"user_id": Uuid::nil()}))),
            [401, 404, 404, 404, 404],
        ),
        (
            "GET",
            "/api/v1/users/search?q=az".into(),
            Box::new(|_| None),
            [401, 200, 200, 200, 200],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expected) in &rows {
        for (i, w) in who_all.iter().enumerate() {
            let a = actor(*w);
            let b = a.and_then(body).or_else(|| body(owner));
            let r = app.req(method, path, a.map(Member::token), b).await;
            if r.status != expected[i] {
                failures.push(format!(
                    "{method} {path} as {w:?}: {} (expected {}) {}",
                    r.status, expected[i], r.body
                ));
            }
            if r.status >= 400 {
                assert_eq!(
                    r.headers["content-type"], "application/problem+json",
                    "{method} {path}"
                );
            }
        }
    }
    // The mutating rows the matrix cannot repeat: delete a message, a member, the room.
    let mp = format!("{rp}/messages/{msg}");
    for (w, exp) in [(Who::Anon, 401), (Who::Outsider, 404), (Who::Admin, 404)] {
        let r = app
            .req("DELETE", &mp, actor(w).map(Member::token), None)
            .await;
        if r.status != exp {
            failures.push(format!("DELETE message as {w:?}: {}", r.status));
        }
    }
    assert_eq!(
        app.req("DELETE", &mp, Some(owner.token()), None)
            .await
            .status,
        204
    );
    for (w, exp) in [
        (Who::Anon, 401),
        (Who::Outsider, 404),
        (Who::Admin, 404),
        (Who::Member, 403),
    ] {
        let r = app
            .req("DELETE", &rp, actor(w).map(Member::token), None)
            .await;
        if r.status != exp {
            failures.push(format!("DELETE room as {w:?}: {}", r.status));
        }
        let r = app
            .req(
                "DELETE",
                &format!("{rp}/members/{}", owner.id()),
                actor(w).map(Member::token),
                None,
            )
            .await;
        if r.status != exp {
            failures.push(format!("DELETE owner's membership as {w:?}: {}", r.status));
        }
    }
    for (w, exp) in [(Who::Anon, 401), (Who::Outsider, 404), (Who::Admin, 404)] {
        let (st, _, _) = app
            .req_bytes(
                "POST",
                &format!("{rp}/attachments"),
                actor(w).map(Member::token),
                Some("application/octet-stream"),
                vec![1],
            )
            .await;
        if st != exp {
            failures.push(format!("POST attachment as {w:?}: {st}"));
        }
    }
    assert_eq!(
        app.req("DELETE", &rp, Some(owner.token()), None)
            .await
            .status,
        204
    );
    assert!(
        failures.is_empty(),
        "authorization failures:\n{}",
        failures.join("\n")
    );

    // Every route of this issue is in the OpenAPI document.
    let doc = app.get("/openapi.json", None).await.body;
    for (path, method) in [
        ("/api/v1/devices", "get"),
        ("/api/v1/devices/{device_id}", "put"),
        ("/api/v1/devices/{device_id}", "delete"),
        ("/api/v1/users/{id}/devices", "get"),
        ("/api/v1/keys/query", "post"),
        ("/api/v1/rooms", "post"),
        ("/api/v1/rooms", "get"),
        ("/api/v1/rooms/direct", "post"),
        ("/api/v1/rooms/{id}", "get"),
        ("/api/v1/rooms/{id}", "patch"),
        ("/api/v1/rooms/{id}", "delete"),
        ("/api/v1/rooms/{id}/members", "post"),
        ("/api/v1/rooms/{id}/members/{user_id}", "delete"),
        ("/api/v1/rooms/{id}/messages", "post"),
        ("/api/v1/rooms/{id}/messages", "get"),
        ("/api/v1/rooms/{id}/messages/{msg_id}", "delete"),
        ("/api/v1/rooms/{id}/receipts", "post"),
        ("/api/v1/unread", "get"),
        ("/api/v1/rooms/{id}/attachments", "post"),
        ("/api/v1/attachments/{id}", "get"),
        ("/api/v1/contacts", "get"),
        ("/api/v1/contacts", "post"),
        ("/api/v1/contacts/{id}", "patch"),
        ("/api/v1/contacts/{id}", "delete"),
        ("/api/v1/users/search", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from /openapi.json"
        );
    }
}

async fn bad_input_is_a_problem_never_a_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("bad", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[bob.id()]).await;
    let contacts = app.count("SELECT COUNT(*) FROM contacts", &[]).await;
    let t = Some(alice.token());
    let rp = format!("/api/v1/rooms/{room}");
    let cases: Vec<(&str, String, Option<Value>, u16)> = vec![
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": ""})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": "x".repeat(129)})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": "a\u{202e}b"})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": "x", "extra": 1})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": "x", "member_ids": ["nope"]})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": "x", "member_ids": [Uuid::new_v4()]})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": 5})),
            400,
        ),
        ("POST", "/api/v1/rooms".into(), Some(json!([1, 2])), 400),
        ("GET", "/api/v1/rooms/not-a-uuid".into(), None, 400),
        ("GET", "/api/v1/rooms?limit=-1".into(), None, 400),
        ("GET", "/api/v1/rooms?cursor=%00".into(), None, 400),
        ("GET", format!("{rp}/messages?after_seq=-1"), None, 400),
        (
            "GET",
            format!("{rp}/messages?after_seq=99999999999999999999999"),
            None,
            400,
        ),
        (
            "GET",
            format!("{rp}/messages?after_seq=18446744073709551615"),
            None,
            400,
        ),
        ("GET", format!("{rp}/messages?limit=abc"), None, 400),
        (
            "POST",
            format!("{rp}/messages"),
            Some(json!({"client_id": Uuid::new_v4(), "envelope": "!!"})),
            400,
        ),
        (
            "POST",
            format!("{rp}/messages"),
            Some(json!({"client_id": Uuid::new_v4(), "envelope": "AAAA"})),
            400,
        ),
        (
            "POST",
            format!("{rp}/messages"),
            Some(json!({"client_id": Uuid::new_v4(), "envelope": ""})),
            400,
        ),
        (
            "POST",
            format!("{rp}/messages"),
            Some(json!({"client_id": "x", "envelope": "AAAA"})),
            400,
        ),
        (
            "POST",
            format!("{rp}/messages"),
            Some(json!({"envelope": "AAAA"})),
            400,
        ),
        (
            "POST",
            format!("{rp}/receipts"),
            Some(json!({"kind": "read", "seq": -1})),
            400,
        ),
        (
            "POST",
            format!("{rp}/receipts"),
            Some(json!({"kind": "read", "seq": u64::MAX})),
            400,
        ),
        (
            "POST",
            format!("{rp}/receipts"),
            Some(json!({"kind": "read"})),
            400,
        ),
        ("PATCH", rp.clone(), Some(json!({"name": "\u{0}"})), 400),
        ("PATCH", rp.clone(), Some(json!({})), 400),
        (
            "POST",
            format!("{rp}/members"),
            Some(json!({"user_id": 1})),
            400,
        ),
        ("DELETE", format!("{rp}/members/zzz"), None, 400),
        ("DELETE", format!("{rp}/messages/zzz"), None, 400),
        (
            "PUT",
            format!("/api/v1/devices/{}", Uuid::new_v4()),
            Some(json!({"bundle": {}})),
            400,
        ),
        (
            "PUT",
            format!("/api/v1/devices/{}", Uuid::new_v4()),
            Some(json!({"bundle": {"version": 9}})),
            400,
        ),
        ("PUT", "/api/v1/devices/x".into(), Some(json!({})), 400),
        (
            "POST",
            "/api/v1/keys/query".into(),
            Some(json!({"user_ids": "x"})),
            400,
        ),
        (
            "POST",
            "/api/v1/keys/query".into(),
            Some(json!({"user_ids": ["x"]})),
            400,
        ),
        (
            "POST",
            "/api/v1/contacts".into(),
            Some(json!({"user_id": bob.id(), "nickname": "x".repeat(65)})),
            400,
        ),
        (
            "POST",
            "/api/v1/contacts".into(),
            Some(json!({"user_id": "../../etc"})),
            400,
        ),
        (
            "GET",
            "/api/v1/contacts?limit=1000000000000".into(),
            None,
            400,
        ),
        ("POST", "/api/v1/rooms/direct".into(), Some(json!({})), 400),
        (
            "GET",
            "/api/v1/attachments/..%2F..%2Fjwt.key".into(),
            None,
            400,
        ),
        ("GET", "/api/v1/users/search?q=%00".into(), None, 400),
        ("GET", "/api/v1/users/search?q=".into(), None, 400),
    ];
    for (method, path, body, expected) in cases {
        let r = app.req(method, &path, t, body.clone()).await;
        assert_eq!(r.status, expected, "{method} {path} {body:?}: {r:?}");
        assert_eq!(
            r.headers["content-type"], "application/problem+json",
            "{method} {path}"
        );
        assert!(r.body["code"].is_string(), "{r:?}");
    }
    // Not JSON; wrong media type; invalid UTF-8.
    let (st, h, _) = app
        .req_bytes(
            "POST",
            &format!("{rp}/messages"),
            t,
            Some("application/json"),
            b"{".to_vec(),
        )
        .await;
    assert_eq!(
        (st, h["content-type"].to_str().unwrap()),
        (400, "application/problem+json")
    );
    let (st, _, _) = app
        .req_bytes(
            "POST",
            &format!("{rp}/messages"),
            t,
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(st, 415);
    let (st, _, _) = app
        .req_bytes(
            "POST",
            "/api/v1/rooms",
            t,
            Some("application/json"),
            b"{\"name\": \"\xff\"}".to_vec(),
        )
        .await;
    assert_eq!(st, 400);
    // A body over the JSON limit.
    let huge = "A".repeat(crate_json_limit(&app) + 10);
    let (st, _, _) = app
        .req_bytes(
            "POST",
            &format!("{rp}/messages"),
            t,
            Some("application/json"),
            format!(
                "{{\"client_id\":\"{}\",\"envelope\":\"{huge}\"}}",
                Uuid::new_v4()
            )
            .into_bytes(),
        )
        .await;
    assert_eq!(st, 413);
    // Nothing was stored by any of it.
    assert_eq!(app.count("SELECT COUNT(*) FROM messages", &[]).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM rooms", &[]).await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM contacts", &[]).await,
        contacts
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM devices", &[]).await, 2);
}

fn crate_json_limit(app: &TestApp) -> usize {
    sotto_relay::app::json_body_limit(&app.state.config)
}
