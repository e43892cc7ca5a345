//! Relay accounts and authentication against a real relay, on SQLite and on a
//! real PostgreSQL: the authorization matrix of api.md, tokens, e-mail flows
//! through a real SMTP server, enumeration resistance and bad input.

use serde_json::{Value, json};
use sotto_tests::{
    Account, AppOptions, Backend, PASSWORD, TestApp, both_backends, spawn_app, spawn_app_with,
};

both_backends!(
    authorization_matrix,
    tokens_are_rejected_when_forged_expired_or_revoked,
    refresh_rotation_and_reuse_revokes_the_family,
    email_verification_and_password_reset_end_to_end,
    answers_do_not_reveal_whether_an_address_exists,
    bad_input_is_a_problem_never_a_500,
    role_rules_and_last_master,
    rate_limits_answer_429_with_retry_after,
    audit_log_records_security_events,
    operations_endpoints,
    cors_allows_only_configured_origins,
    bodies_must_be_json_objects_and_limits_in_range,
    login_budget_is_the_accounts_and_known_addresses_keep_their_own,
    corrupt_rows_are_errors_not_defaults,
    writes_are_refused_on_the_read_pool,
);

#[derive(Clone, Copy, Debug)]
enum Actor {
    Anonymous,
    User,
    Admin,
    Master,
}

#[derive(Clone, Copy, Debug)]
enum Target {
    None,
    Myself,
    OtherUser,
    OtherAdmin,
    OtherMaster,
}

struct Case {
    method: &'static str,
    /// `{id}` is replaced by the target's id.
    path: &'static str,
    target: Target,
    body: fn(&str) -> Option<Value>,
    /// Expected status for anonymous, user, admin, master.
    expect: [u16; 4],
}

fn none(_: &str) -> Option<Value> {
    None
}

async fn fresh(app: &TestApp, role: &str, tag: &str) -> Account {
    let name = format!(
        "{role}{tag}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    app.account_with_role(&name, role).await
}

/// Every route of the accounts/users/operations sections × anonymous / user / admin /
/// master × self / other → exactly the codes of api.md. Each request runs against
/// fresh accounts so destructive rows cannot influence each other.
async fn authorization_matrix(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        Case {
            method: "POST",
            path: "/api/v1/auth/register",
            target: Target::None,
            expect: [201, 201, 201, 201],
            body: |n| {
                Some(
                    json!({"username": format!("reg{n}"), "email": format!("reg{n}@example.org"), "password": PASSWORD}),
                )
            },
        },
        Case {
            method: "POST",
            path: "/api/v1/auth/verify-email",
            target: Target::None,
            body: |_| Some(json!({"token": "nope"})),
            expect: [400; 4],
        },
        Case {
            method: "POST",
            path: "/api/v1/auth/resend-verification",
            target: Target::None,
            body: |_| Some(json!({"email": "x@example.org"})),
            expect: [202; 4],
        },
        Case {
            method: "POST",
            path: "/api/v1/auth/refresh",
            target: Target::None,
            body: |_| Some(json!({"refresh_token": "nope"})),
            expect: [401; 4],
        },
        Case {
            method: "POST",
            path: "/api/v1/auth/logout",
            target: Target::None,
            body: |_| Some(json!({"refresh_token": "nope"})),
            expect: [401, 204, 204, 204],
        },
        Case {
            method: "POST",
            path: "/api/v1/auth/password/forgot",
            target: Target::None,
            body: |_| Some(json!({"email": "x@example.org"})),
            expect: [202; 4],
        },
        Case {
            method: "POST",
            path: "/api/v1/auth/password/reset",
            target: Target::None,
            body: |_| Some(json!({"token": "nope", "new_password": "a fine new passphrase"})),
            expect: [400; 4],
        },
        Case {
            method: "GET",
            path: "/api/v1/auth/me",
            target: Target::None,
            body: none,
            expect: [401, 200, 200, 200],
        },
        Case {
            method: "GET",
            path: "/api/v1/users/check-username?username=someone",
            target: Target::None,
            body: none,
            expect: [200; 4],
        },
        Case {
            method: "GET",
            path: "/api/v1/users",
            target: Target::None,
            body: none,
            expect: [401, 403, 200, 200],
        },
        Case {
            method: "GET",
            path: "/api/v1/users/search?q=us",
            target: Target::None,
            body: none,
            expect: [401, 200, 200, 200],
        },
        Case {
            method: "GET",
            path: "/api/v1/users/{id}",
            target: Target::Myself,
            body: none,
            expect: [401, 200, 200, 200],
        },
        Case {
            method: "GET",
            path: "/api/v1/users/{id}",
            target: Target::OtherUser,
            body: none,
            expect: [401, 404, 200, 200],
        },
        Case {
            method: "GET",
            path: "/api/v1/users/{id}",
            target: Target::OtherMaster,
            body: none,
            expect: [401, 404, 200, 200],
        },
        Case {
            method: "POST",
            path: "/api/v1/users",
            target: Target::None,
            expect: [401, 403, 201, 201],
            body: |n| {
                Some(
                    json!({"username": format!("new{n}"), "email": format!("new{n}@example.org"), "password": PASSWORD}),
                )
            },
        },
        Case {
            method: "POST",
            path: "/api/v1/users",
            target: Target::None,
            expect: [401, 403, 403, 201],
            body: |n| {
                Some(
                    json!({"username": format!("adm{n}"), "email": format!("adm{n}@example.org"), "password": PASSWORD, "role": "admin"}),
                )
            },
        },
        Case {
            method: "PATCH",
            path: "/api/v1/users/{id}",
            target: Target::Myself,
            body: |_| Some(json!({"display_name": "Me"})),
            expect: [401, 200, 200, 200],
        },
        Case {
            method: "PATCH",
            path: "/api/v1/users/{id}",
            target: Target::OtherUser,
            body: |_| Some(json!({"display_name": "You"})),
            expect: [401, 404, 200, 200],
        },
        Case {
            method: "PATCH",
            path: "/api/v1/users/{id}",
            target: Target::OtherAdmin,
            body: |_| Some(json!({"display_name": "You"})),
            expect: [401, 404, 403, 200],
        },
        Case {
            method: "PATCH",
            path: "/api/v1/users/{id}",
            target: Target::Myself,
            body: |_| Some(json!({"username": "renamed"})),
            expect: [401, 400, 400, 400],
        },
        Case {
            method: "PATCH",
            path: "/api/v1/users/{id}",
            target: Target::OtherUser,
            body: |_| Some(json!({"role": "admin"})),
            expect: [401, 404, 403, 200],
        },
        Case {
            method: "PATCH",
            path: "/api/v1/users/{id}",
            target: Target::Myself,
            body: |_| Some(json!({"role": "master"})),
            expect: [401, 403, 403, 200],
        },
        Case {
            method: "DELETE",
            path: "/api/v1/users/{id}",
            target: Target::Myself,
            body: none,
            expect: [401, 403, 400, 400],
        },
        Case {
            method: "DELETE",
            path: "/api/v1/users/{id}",
            target: Target::OtherUser,
            body: none,
            expect: [401, 403, 204, 204],
        },
        Case {
            method: "DELETE",
            path: "/api/v1/users/{id}",
            target: Target::OtherAdmin,
            body: none,
            expect: [401, 403, 403, 204],
        },
        Case {
            method: "DELETE",
            path: "/api/v1/users/{id}",
            target: Target::OtherMaster,
            body: none,
            expect: [401, 403, 403, 204],
        },
        Case {
            method: "GET",
            path: "/api/v1/admin/audit",
            target: Target::None,
            body: none,
            expect: [401, 403, 200, 200],
        },
    ];
    let mut failures = vec![];
    for (i, case) in cases.iter().enumerate() {
        for (a, actor) in [Actor::Anonymous, Actor::User, Actor::Admin, Actor::Master]
            .into_iter()
            .enumerate()
        {
            let tag = format!("{i}x{a}");
            let me = match actor {
                Actor::Anonymous => None,
                Actor::User => Some(fresh(&app, "user", &tag).await),
                Actor::Admin => Some(fresh(&app, "admin", &tag).await),
                Actor::Master => Some(fresh(&app, "master", &tag).await),
            };
            let target_id = match case.target {
                Target::None => None,
                Target::Myself => Some(me.as_ref().map_or(uuid::Uuid::nil(), |m| m.id)),
                Target::OtherUser => Some(fresh(&app, "user", &format!("t{tag}")).await.id),
                Target::OtherAdmin => Some(fresh(&app, "admin", &format!("t{tag}")).await.id),
                Target::OtherMaster => Some(fresh(&app, "master", &format!("t{tag}")).await.id),
            };
            let path = match target_id {
                Some(id) => case.path.replace("{id}", &id.to_string()),
                None => case.path.to_string(),
            };
            let res = app
                .req(
                    case.method,
                    &path,
                    me.as_ref().map(|m| m.access.as_str()),
                    (case.body)(&tag),
                )
                .await;
            let want = case.expect[a];
            if res.status != want {
                failures.push(format!(
                    "{} {} ({:?}) as {actor:?}: want {want}, got {} {}",
                    case.method, case.path, case.target, res.status, res.body
                ));
            }
            if res.status >= 400 {
                assert_eq!(
                    res.headers["content-type"], "application/problem+json",
                    "{res:?}"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix mismatches:\n{}",
        failures.join("\n")
    );
}

fn forge(claims: &Value, key: &[u8], alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

async fn tokens_are_rejected_when_forged_expired_or_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register_verified("alice").await;
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&alice.access)).await.status,
        200
    );

    // The real claims, for forging variants.
    let payload = alice.access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &<base64ct::Base64UrlUnpadded as base64ct::Encoding>::decode_vec(payload).unwrap(),
    )
    .unwrap();

    // alg: none (unsigned).
    let b64 = |v: &Value| {
        <base64ct::Base64UrlUnpadded as base64ct::Encoding>::encode_string(v.to_string().as_bytes())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    app.get("/api/v1/auth/me", Some(&none))
        .await
        .problem(401, "invalid_token");
    // Wrong key.
    let wrong = forge(
        &claims,
        b"an entirely different secret key of 32+ bytes",
        jsonwebtoken::Algorithm::HS256,
    );
    app.get("/api/v1/auth/me", Some(&wrong))
        .await
        .problem(401, "invalid_token");
    // Another algorithm with the right key is refused too.
    let jwt_key = std::fs::read(app.data_dir.path().join("jwt.key")).unwrap();
    let hs512 = forge(&claims, &jwt_key, jsonwebtoken::Algorithm::HS512);
    app.get("/api/v1/auth/me", Some(&hs512))
        .await
        .problem(401, "invalid_token");
    // Expired (validly signed).
    let mut old = claims.clone();
    old["exp"] = json!(claims["iat"].as_i64().unwrap() - 3600);
    let expired = forge(&old, &jwt_key, jsonwebtoken::Algorithm::HS256);
    app.get("/api/v1/auth/me", Some(&expired))
        .await
        .problem(401, "token_expired");
    // Sanity: the same forging path with valid claims works, so the cases above fail for their reason.
    assert_eq!(
        app.get(
            "/api/v1/auth/me",
            Some(&forge(&claims, &jwt_key, jsonwebtoken::Algorithm::HS256))
        )
        .await
        .status,
        200
    );
    // Tampered payload (user id swapped) with the original signature.
    let mut parts: Vec<String> = alice.access.split('.').map(str::to_string).collect();
    let mut evil = claims.clone();
    evil["sub"] = json!(uuid::Uuid::new_v4());
    parts[1] = b64(&evil);
    app.get("/api/v1/auth/me", Some(&parts.join(".")))
        .await
        .problem(401, "invalid_token");
    // Garbage and wrong scheme.
    app.get("/api/v1/auth/me", Some("not.a.jwt"))
        .await
        .problem(401, "invalid_token");
    let r = app
        .http
        .get(app.url("/api/v1/auth/me"))
        .header("authorization", format!("Basic {}", alice.access))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");

    // After logout, the access token's session is over and refresh fails.
    let r = app
        .post(
            "/api/v1/auth/logout",
            Some(&alice.access),
            json!({"refresh_token": alice.refresh}),
        )
        .await;
    assert_eq!(r.status, 204);
    app.get("/api/v1/auth/me", Some(&alice.access))
        .await
        .problem(401, "invalid_token");
    assert_eq!(
        app.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": alice.refresh})
        )
        .await
        .status,
        401
    );

    // After a password reset, every session ends.
    let s1 = app.login("alice", PASSWORD).await;
    let s2 = app.login("alice", PASSWORD).await;
    assert_eq!(
        app.post(
            "/api/v1/auth/password/forgot",
            None,
            json!({"email": "alice@example.org"})
        )
        .await
        .status,
        202
    );
    let token = app
        .smtp
        .wait_for("alice@example.org", "reset-password")
        .await
        .token("reset-password")
        .unwrap();
    let r = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            json!({"token": token, "new_password": "another long passphrase"}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    for s in [&s1, &s2] {
        app.get(
            "/api/v1/auth/me",
            Some(s.body["access_token"].as_str().unwrap()),
        )
        .await
        .problem(401, "invalid_token");
        let r = app
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": s.body["refresh_token"]}),
            )
            .await;
        assert_eq!(r.status, 401, "{r:?}");
    }
}

async fn refresh_rotation_and_reuse_revokes_the_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.register_verified("bob").await;
    let r1 = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": bob.refresh}),
        )
        .await;
    assert_eq!(r1.status, 200, "{r1:?}");
    let rt2 = r1.body["refresh_token"].as_str().unwrap().to_string();
    let at2 = r1.body["access_token"].as_str().unwrap().to_string();
    assert_ne!(rt2, bob.refresh);
    assert_eq!(app.get("/api/v1/auth/me", Some(&at2)).await.status, 200);
    // Replaying the spent token: 401 and the whole family is revoked...
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": bob.refresh}),
    )
    .await
    .problem(401, "refresh_reused");
    // ...including the newest refresh token and its access token.
    assert_eq!(
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": rt2}))
            .await
            .status,
        401
    );
    app.get("/api/v1/auth/me", Some(&at2))
        .await
        .problem(401, "invalid_token");
    // Another session of the same user is unaffected.
    let other = app.login("bob", PASSWORD).await;
    assert_eq!(
        app.get(
            "/api/v1/auth/me",
            Some(other.body["access_token"].as_str().unwrap())
        )
        .await
        .status,
        200
    );
    // Concurrent use of one refresh token: never two winners. (If the loser's reuse
    // check lands first, the family is revoked and even the winner is refused.)
    let rt = other.body["refresh_token"].as_str().unwrap().to_string();
    let (a, b) = tokio::join!(
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": rt})),
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": rt}))
    );
    assert!(
        [a.status, b.status].iter().filter(|s| **s == 200).count() <= 1,
        "{a:?} {b:?}"
    );
    assert!([a.status, b.status].contains(&401), "{a:?} {b:?}");
}

async fn email_verification_and_password_reset_end_to_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "Carol", "email": "Carol@Example.org", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["username"], "carol");
    assert_eq!(r.body["email_verified"], false);
    app.login("carol", PASSWORD)
        .await
        .problem(403, "email_not_verified");

    // The mail went through the real SMTP server, from the configured sender.
    let mail = app.smtp.wait_for("carol@example.org", "verify-email").await;
    assert!(mail.from.contains("relay@sotto.test"), "{mail:?}");
    let link = mail.link("verify-email").unwrap();
    assert!(
        link.starts_with(&format!("{}/verify-email#token=", app.base)),
        "{link}"
    );
    // The link opens a relay page that calls the API.
    let page = app
        .http
        .get(link.split('#').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("verify-email.js"));
    // Resend produces a second, independent token.
    assert_eq!(
        app.post(
            "/api/v1/auth/resend-verification",
            None,
            json!({"email": "carol@example.org"})
        )
        .await
        .status,
        202
    );
    let token = mail.token("verify-email").unwrap();
    let v = app
        .post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await;
    assert_eq!(v.status, 200, "{v:?}");
    assert_eq!(v.body["email_verified"], true);
    // Single use.
    app.post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await
        .problem(400, "invalid_token");
    assert_eq!(app.login("carol@example.org", PASSWORD).await.status, 200);

    // Password reset through the e-mailed link.
    assert_eq!(
        app.post(
            "/api/v1/auth/password/forgot",
            None,
            json!({"email": "CAROL@example.org"})
        )
        .await
        .status,
        202
    );
    let mail = app
        .smtp
        .wait_for("carol@example.org", "reset-password")
        .await;
    let token = mail.token("reset-password").unwrap();
    // A weak password is refused without spending the token.
    app.post(
        "/api/v1/auth/password/reset",
        None,
        json!({"token": token, "new_password": "password"}),
    )
    .await
    .problem(400, "weak_password");
    let r = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            json!({"token": token, "new_password": "brand new passphrase"}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    app.post(
        "/api/v1/auth/password/reset",
        None,
        json!({"token": token, "new_password": "yet another passphrase"}),
    )
    .await
    .problem(400, "invalid_token");
    app.login("carol", PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    assert_eq!(app.login("carol", "brand new passphrase").await.status, 200);

    // Expired tokens are refused: age one in the database.
    assert_eq!(
        app.post(
            "/api/v1/auth/password/forgot",
            None,
            json!({"email": "carol@example.org"})
        )
        .await
        .status,
        202
    );
    let mail = app
        .smtp
        .wait_for("carol@example.org", "reset-password")
        .await;
    let token = mail.token("reset-password").unwrap();
    // Expired (the moment it was made) on either backend.
    app.exec(
        "UPDATE email_tokens SET expires_at = created_at WHERE used_at IS NULL",
        &[],
    )
    .await;
    app.post(
        "/api/v1/auth/password/reset",
        None,
        json!({"token": token, "new_password": "late passphrase here"}),
    )
    .await
    .problem(400, "invalid_token");
    // Tokens are stored hashed: the token text is nowhere in the table.
    let stored = app.texts("SELECT token_hash FROM email_tokens").await;
    assert!(!stored.is_empty() && stored.iter().all(|h| h.len() == 64 && *h != token));
}

async fn answers_do_not_reveal_whether_an_address_exists(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_verified("dave").await;
    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in ["id", "created_at", "updated_at", "username", "email"] {
            v.as_object_mut().map(|o| o.remove(k));
        }
        v
    };
    for route in [
        "/api/v1/auth/password/forgot",
        "/api/v1/auth/resend-verification",
    ] {
        let known = app
            .post(route, None, json!({"email": "dave@example.org"}))
            .await;
        let unknown = app
            .post(route, None, json!({"email": "nobody@example.org"}))
            .await;
        assert_eq!(
            (known.status, &known.body),
            (unknown.status, &unknown.body),
            "{route}"
        );
        assert_eq!(known.status, 202);
    }
    // Registering an address that exists looks exactly like registering a new one.
    let existing = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "dave2", "email": "dave@example.org", "password": PASSWORD}),
        )
        .await;
    let new = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "erin", "email": "erin@example.org", "password": PASSWORD}),
        )
        .await;
    assert_eq!(existing.status, 201);
    assert_eq!(new.status, 201);
    assert_eq!(strip(&existing.body), strip(&new.body));
    assert_eq!(
        existing
            .body
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        new.body.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    // The owner of the address is told, and no account was created for the second attempt.
    app.smtp
        .wait_for("dave@example.org", "tried to create")
        .await;
    app.login("dave2", PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    // Login failures look the same for an unknown account and a wrong password.
    let a = app.login("dave", "wrong password here").await;
    let b = app.login("nobody", "wrong password here").await;
    assert_eq!((a.status, &a.body), (b.status, &b.body));
}

async fn bad_input_is_a_problem_never_a_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let master = app.master().await;
    let before = app.user_count().await;
    let url = app.url("/api/v1/auth/register");
    let send = |body: Vec<u8>, ct: &'static str| {
        let req = app.http.post(&url).header("content-type", ct).body(body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, ct, body)
        }
    };
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (b"{".to_vec(), "application/json", 400, "invalid_json"),
        (b"[1,2]".to_vec(), "application/json", 400, "validation_failed"),
        (b"{\"username\":\"x\"}".to_vec(), "application/json", 400, "validation_failed"),
        (br#"{"username":"frank","email":"f@example.org","password":"a long passphrase","admin":true}"#.to_vec(), "application/json", 400, "unknown_field"),
        (br#"{"username":5,"email":"f@example.org","password":"a long passphrase"}"#.to_vec(), "application/json", 400, "validation_failed"),
        (b"{\"username\":\"\xff\xfe\",\"email\":\"f@example.org\",\"password\":\"a long passphrase\"}".to_vec(), "application/json", 400, "invalid_json"),
        (br#"{"username":"frank","email":"f@example.org","password":"a long passphrase"}"#.to_vec(), "text/plain", 415, "unsupported_media_type"),
        (format!(r#"{{"username":"frank","email":"f@example.org","password":"{}"}}"#, "p".repeat(200_000)).into_bytes(), "application/json", 413, "payload_too_large"),
        (br#"{"username":"ab","email":"f@example.org","password":"a long passphrase"}"#.to_vec(), "application/json", 400, "invalid_username"),
        (format!(r#"{{"username":"{}","email":"f@example.org","password":"a long passphrase"}}"#, "a".repeat(5000)).into_bytes(), "application/json", 400, "invalid_username"),
        (br#"{"username":"fr ank","email":"f@example.org","password":"a long passphrase"}"#.to_vec(), "application/json", 400, "invalid_username"),
        (br#"{"username":"frank\u0000","email":"f@example.org","password":"a long passphrase"}"#.to_vec(), "application/json", 400, "invalid_username"),
        ("{\"username\":\"fr\u{202e}ank\",\"email\":\"f@example.org\",\"password\":\"a long passphrase\"}".as_bytes().to_vec(), "application/json", 400, "invalid_username"),
        (br#"{"username":"frank","email":"not-an-address","password":"a long passphrase"}"#.to_vec(), "application/json", 400, "invalid_email"),
        (br#"{"username":"frank","email":"f@example.org","password":"short"}"#.to_vec(), "application/json", 400, "weak_password"),
        (br#"{"username":"frank","email":"f@example.org","password":"password123"}"#.to_vec(), "application/json", 400, "weak_password"),
        (format!(r#"{{"username":"frank","email":"f@example.org","password":"{}"}}"#, "p".repeat(1025)).into_bytes(), "application/json", 400, "weak_password"),
    ];
    for (body, ct, status, code) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).to_string();
        let (s, got_ct, b) = send(body, ct).await;
        assert_eq!(
            (s, b["code"].as_str().unwrap_or("")),
            (status, code),
            "{shown}: {b}"
        );
        assert_eq!(
            got_ct.as_deref(),
            Some("application/problem+json"),
            "{shown}"
        );
    }
    assert_eq!(
        app.user_count().await,
        before,
        "a rejected request wrote something"
    );
    // Bad ids, cursors and queries on authenticated routes.
    app.get("/api/v1/users/not-a-uuid", Some(&master.access))
        .await;
    let r = app
        .get("/api/v1/users/not-a-uuid", Some(&master.access))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    app.get("/api/v1/users?cursor=zzz", Some(&master.access))
        .await
        .problem(400, "invalid_cursor");
    let r = app
        .get("/api/v1/users?limit=-1", Some(&master.access))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    app.get("/api/v1/users?q=%25_%5C", Some(&master.access))
        .await;
    assert_eq!(
        app.get("/api/v1/users?q=%25_%5C", Some(&master.access))
            .await
            .status,
        200
    );
    app.get("/api/v1/users/search?q=", Some(&master.access))
        .await
        .problem(400, "validation_failed");
    // NUL and control characters never reach the database (PostgreSQL refuses NUL in text).
    app.login("ro\u{0}ot", PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    app.get("/api/v1/users/search?q=a%00b", Some(&master.access))
        .await
        .problem(400, "validation_failed");
    app.get("/api/v1/users?q=a%00b", Some(&master.access))
        .await
        .problem(400, "validation_failed");
    app.get("/api/v1/admin/audit?event=a%00b", Some(&master.access))
        .await
        .problem(400, "validation_failed");
    app.get("/api/v1/nope", None)
        .await
        .problem(404, "not_found");
    app.req("PUT", "/api/v1/auth/login", None, None)
        .await
        .problem(405, "method_not_allowed");
    // A PATCH with a bad field changes nothing, even when other fields were fine.
    let r = app
        .req(
            "PATCH",
            &format!("/api/v1/users/{}", master.id),
            Some(&master.access),
            Some(json!({"display_name": "X", "email": "bad"})),
        )
        .await;
    r.problem(400, "invalid_email");
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&master.access)).await.body["display_name"],
        Value::Null
    );
}

async fn role_rules_and_last_master(backend: Backend) {
    let app = spawn_app(backend).await;
    let root = app.master().await;
    // The only master can neither demote nor delete themself.
    app.req(
        "PATCH",
        &format!("/api/v1/users/{}", root.id),
        Some(&root.access),
        Some(json!({"role": "admin"})),
    )
    .await
    .problem(409, "last_master");
    app.req(
        "DELETE",
        &format!("/api/v1/users/{}", root.id),
        Some(&root.access),
        None,
    )
    .await
    .problem(400, "cannot_delete_self");
    // With a second master, demotion works; then the second one is the last.
    let second = app.account_with_role("second", "master").await;
    let r = app
        .req(
            "PATCH",
            &format!("/api/v1/users/{}", root.id),
            Some(&second.access),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["role"], "admin");
    // Role change takes effect at once for existing tokens.
    app.get("/api/v1/users", Some(&root.access)).await;
    let r = app.req("POST", "/api/v1/users", Some(&root.access), Some(json!({"username": "newadm", "email": "na@example.org", "password": PASSWORD, "role": "admin"}))).await;
    r.problem(403, "forbidden");
    app.req(
        "PATCH",
        &format!("/api/v1/users/{}", second.id),
        Some(&second.access),
        Some(json!({"role": "user"})),
    )
    .await
    .problem(409, "last_master");
    // Self-service: password change needs the current one and ends other sessions.
    let u = app.register_verified("grace").await;
    let other = app.login("grace", PASSWORD).await;
    let path = format!("/api/v1/users/{}", u.id);
    app.req(
        "PATCH",
        &path,
        Some(&u.access),
        Some(json!({"password": "new passphrase 1"})),
    )
    .await
    .problem(400, "current_password_required");
    app.req(
        "PATCH",
        &path,
        Some(&u.access),
        Some(json!({"password": "new passphrase 1", "current_password": "wrong one"})),
    )
    .await
    .problem(403, "invalid_credentials");
    let r = app
        .req(
            "PATCH",
            &path,
            Some(&u.access),
            Some(json!({"password": "new passphrase 1", "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&u.access)).await.status,
        200,
        "the caller's session survives"
    );
    app.get(
        "/api/v1/auth/me",
        Some(other.body["access_token"].as_str().unwrap()),
    )
    .await
    .problem(401, "invalid_token");
    // Changing your e-mail needs your password, then re-verification; a reset link
    // sent to the old address stops working once the address changes.
    app.req(
        "PATCH",
        &path,
        Some(&u.access),
        Some(json!({"email": "grace2@example.org"})),
    )
    .await
    .problem(400, "current_password_required");
    assert_eq!(
        app.post(
            "/api/v1/auth/password/forgot",
            None,
            json!({"email": "grace@example.org"})
        )
        .await
        .status,
        202
    );
    let old_link = app
        .smtp
        .wait_for("grace@example.org", "reset-password")
        .await
        .token("reset-password")
        .unwrap();
    let r = app
        .req(
            "PATCH",
            &path,
            Some(&u.access),
            Some(json!({"email": "grace2@example.org", "current_password": "new passphrase 1"})),
        )
        .await;
    assert_eq!(r.body["email_verified"], false, "{r:?}");
    app.smtp
        .wait_for("grace2@example.org", "verify-email")
        .await;
    app.post(
        "/api/v1/auth/password/reset",
        None,
        json!({"token": old_link, "new_password": "hijacked passphrase"}),
    )
    .await
    .problem(400, "invalid_token");
    // Deleting a user ends their access.
    let victim = app.register_verified("heidi").await;
    assert_eq!(
        app.req(
            "DELETE",
            &format!("/api/v1/users/{}", victim.id),
            Some(&second.access),
            None
        )
        .await
        .status,
        204
    );
    app.get("/api/v1/auth/me", Some(&victim.access))
        .await
        .problem(401, "invalid_token");
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            rate_per_ip: 1000,
            rate_per_account: 3,
            ..AppOptions::default()
        },
    )
    .await;
    app.register_verified("ivan").await; // one login used
    for _ in 0..2 {
        assert_eq!(app.login("ivan", "wrong password!").await.status, 401);
    }
    let r = app.login("IVAN", PASSWORD).await;
    r.problem(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another account is not affected.
    app.register_verified("judy").await;

    let app = spawn_app_with(
        backend,
        AppOptions {
            rate_per_ip: 2,
            ..AppOptions::default()
        },
    )
    .await;
    for _ in 0..2 {
        assert_eq!(
            app.post(
                "/api/v1/auth/password/forgot",
                None,
                json!({"email": "a@example.org"})
            )
            .await
            .status,
            202
        );
    }
    app.post(
        "/api/v1/auth/password/forgot",
        None,
        json!({"email": "b@example.org"}),
    )
    .await
    .problem(429, "rate_limited");
}

async fn audit_log_records_security_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let root = app.master().await;
    let u = app.register_verified("kim").await;
    app.login("kim", "wrong password!").await;
    app.req(
        "PATCH",
        &format!("/api/v1/users/{}", u.id),
        Some(&root.access),
        Some(json!({"role": "admin"})),
    )
    .await;
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": u.refresh}),
        )
        .await;
    assert_eq!(r.status, 200);
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": u.refresh}),
    )
    .await;
    let log = app
        .get("/api/v1/admin/audit?limit=200", Some(&root.access))
        .await;
    assert_eq!(log.status, 200, "{log:?}");
    let events: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for e in [
        "master_created",
        "register",
        "email_verified",
        "login_ok",
        "login_failed",
        "role_changed",
        "refresh_reuse",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    // Newest first, paginated.
    let page = app
        .get("/api/v1/admin/audit?limit=2", Some(&root.access))
        .await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = app
        .get(
            &format!("/api/v1/admin/audit?limit=2&cursor={cursor}"),
            Some(&root.access),
        )
        .await;
    assert_ne!(next.body["items"][0]["id"], page.body["items"][0]["id"]);
    let filtered = app
        .get("/api/v1/admin/audit?event=login_failed", Some(&root.access))
        .await;
    assert!(
        filtered.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"] == "login_failed")
    );
}

async fn operations_endpoints(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.get("/", None).await;
    assert_eq!(r.body["name"], "sotto-relay");
    let r = app.get("/health", None).await;
    assert_eq!((r.status, r.body["database"].as_str()), (200, Some("ok")));
    // `/metrics` is not on the public listener, only on the metrics listener.
    let public = app.get("/metrics", None).await;
    public.problem(404, "not_found");
    let m = app.metrics_text().await;
    assert!(m.contains("sotto_http_requests_total"), "{m}");
    // Invented methods (no login needed) add no series: every label value is
    // one of a fixed set.
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("sotto_http_request"))
            .count()
    };
    let client = reqwest::Client::new();
    let invent = |i: usize, path: String| {
        let client = client.clone();
        async move {
            let r = client
                .request(
                    reqwest::Method::from_bytes(format!("INVENT{i}").as_bytes()).unwrap(),
                    path,
                )
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error());
        }
    };
    // A first invented method on a route and off the routes: the `other`
    // series exist from then on.
    invent(0, app.url("/health")).await;
    invent(1, app.url("/nowhere/1")).await;
    let before = series(&app.metrics_text().await);
    for i in 2..900 {
        let path = if i % 2 == 0 {
            app.url("/health")
        } else {
            app.url(&format!("/nowhere/{i}"))
        };
        invent(i, path).await;
    }
    let after = app.metrics_text().await;
    assert_eq!(series(&after), before, "new series from invented methods");
    assert!(after.contains(r#"method="other""#), "{after}");
    assert!(!after.contains("INVENT"));
    let doc = app.get("/openapi.json", None).await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/auth/verify-email",
        "/api/v1/auth/resend-verification",
        "/api/v1/auth/password/forgot",
        "/api/v1/auth/password/reset",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/search",
        "/api/v1/users/check-username",
        "/api/v1/admin/audit",
        "/health",
        "/",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(doc.body["components"]["schemas"]["Problem"].is_object());
    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(
        docs.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(
        app.http
            .get(app.url("/assets/docs.js"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.get("/assets/nope.js", None)
        .await
        .problem(404, "not_found");
}

async fn cors_allows_only_configured_origins(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            cors_origins: vec!["https://app.example.org".into()],
            ..AppOptions::default()
        },
    )
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://app.example.org").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    let bad = preflight("https://evil.example").await.unwrap();
    assert!(bad.headers().get("access-control-allow-origin").is_none());
    // Without configuration, no origin is allowed.
    let app2 = spawn_app(backend).await;
    let r = app2
        .http
        .get(app2.url("/health"))
        .header("origin", "https://app.example.org")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

async fn bodies_must_be_json_objects_and_limits_in_range(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register_verified("alice").await;
    // Serde's sequence form of a struct (and any other non-object) is refused.
    for body in [
        json!(["alice", PASSWORD]),
        json!("alice"),
        json!(5),
        json!(null),
        json!(true),
    ] {
        app.post("/api/v1/auth/login", None, body)
            .await
            .problem(400, "validation_failed");
    }
    app.post("/api/v1/rooms", Some(&alice.access), json!(["x"]))
        .await
        .problem(400, "validation_failed");
    let rooms = app.get("/api/v1/rooms", Some(&alice.access)).await;
    assert_eq!(
        rooms.body["items"].as_array().unwrap().len(),
        0,
        "{rooms:?}"
    );
    // Whitespace before the object is still JSON.
    let r = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(format!(
            " \r\n\t{}",
            json!({"login": "alice", "password": PASSWORD})
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // `limit` is 1..=200 (documented); outside it is refused, not silently clamped.
    for route in [
        "/api/v1/contacts",
        "/api/v1/rooms",
        "/api/v1/users/search?q=al",
    ] {
        let sep = if route.contains('?') { '&' } else { '?' };
        for bad in ["0", "201", "2147483648", "4294967296", "-1", "1e3"] {
            app.get(&format!("{route}{sep}limit={bad}"), Some(&alice.access))
                .await
                .problem(400, "validation_failed");
        }
        for good in ["1", "200"] {
            let r = app
                .get(&format!("{route}{sep}limit={good}"), Some(&alice.access))
                .await;
            assert_eq!(r.status, 200, "{route} limit={good}: {r:?}");
        }
    }
}

async fn login_budget_is_the_accounts_and_known_addresses_keep_their_own(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            rate_per_ip: 1000,
            rate_per_account: 4,
            ..AppOptions::default()
        },
    )
    .await;
    // The owner signs in once from 127.0.0.1, which makes that address known.
    app.register_verified("olga").await;
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let login = |client: reqwest::Client, login: &'static str, password: &'static str| {
        let url = app.url("/api/v1/auth/login");
        async move {
            client
                .post(url)
                .json(&json!({"login": login, "password": password}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // A stranger alternates the account's spellings: one budget for all of them
    // (4 attempts a minute, one already spent by the owner).
    let stranger = from("127.0.0.2");
    for spelling in ["olga", "olga@example.org", "OLGA"] {
        assert_eq!(
            login(stranger.clone(), spelling, "wrong password!").await,
            401
        );
    }
    assert_eq!(
        login(stranger.clone(), "olga@example.org", "wrong password!").await,
        429
    );
    // Any other unknown address is refused as well, even with the right password...
    assert_eq!(login(from("127.0.0.3"), "olga", PASSWORD).await, 429);
    // ...but the owner, from the address they signed in from, is not locked out.
    let r = app.login("olga", PASSWORD).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// A stored value that cannot be what its column holds is an error (500 with a
/// logged id), never a default: an unknown role must not become `user`, a flag
/// of 7 must not become "verified".
async fn corrupt_rows_are_errors_not_defaults(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.register_verified("rita").await;
    let internal = |r: &sotto_tests::Res, what: &str| {
        r.problem(500, "internal");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .starts_with("internal error (id "),
            "{what}: {r:?}"
        );
    };
    // A verification flag of 7 (the role column has a CHECK constraint).
    let flag = "UPDATE users SET email_verified = 7 WHERE id = $1";
    match backend {
        Backend::Sqlite => {
            assert_eq!(app.exec(flag, &[rita.id]).await, 1);
            internal(
                &app.get("/api/v1/auth/me", Some(&rita.access)).await,
                "flag",
            );
            app.exec(
                "UPDATE users SET email_verified = 1 WHERE id = $1",
                &[rita.id],
            )
            .await;
        }
        // The column's type (BOOLEAN) refuses it.
        Backend::Postgres => assert!(app.try_exec(flag, &[rita.id]).await.is_err()),
    }
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&rita.access)).await.status,
        200
    );
    // A room whose counter went negative is not listed with `last_seq: 0`.
    let room = app
        .post("/api/v1/rooms", Some(&rita.access), json!({"name": "r"}))
        .await;
    let room_id = room.body["id"].as_str().unwrap().to_string();
    app.exec(
        "UPDATE rooms SET last_seq = -5 WHERE id = $1",
        &[room_id.parse().unwrap()],
    )
    .await;
    internal(
        &app.get("/api/v1/rooms", Some(&rita.access)).await,
        "last_seq",
    );
    internal(
        &app.get(&format!("/api/v1/rooms/{room_id}"), Some(&rita.access))
            .await,
        "last_seq",
    );
}

/// The rule for writes (see `sotto_relay::db::Db`): the read pool's connections
/// are read-only, so a write sent there fails instead of bypassing the writer.
async fn writes_are_refused_on_the_read_pool(backend: Backend) {
    let app = spawn_app(backend).await;
    let sam = app.register_verified("sam").await;
    let update = "UPDATE users SET display_name = 'x' WHERE id = $1";
    let on_read = sotto_tests::raw_exec(app.state.db.read_pool(), update, &[sam.id]).await;
    assert!(on_read.is_err(), "a write went through the read pool");
    let mut tx = app.state.db.begin_write().await.unwrap();
    assert_eq!(sotto_tests::tx_exec(&mut tx, update, &[sam.id]).await, 1);
    tx.commit().await.unwrap();
    assert_eq!(app.exec(update, &[sam.id]).await, 1);
}
