//! The served OpenAPI document is exact enough for a generated client to rely on:
//! every status and content type the relay answers on a documented operation is
//! declared there, and the constraints it declares (lengths, patterns, ranges) are
//! refused when violated. Driven from the document itself, so a new route is
//! covered without touching this file.

use serde_json::{Value, json};
use sotto_tests::{Backend, PASSWORD, TestApp, both_backends, spawn_app};

both_backends!(every_answer_is_declared, declared_constraints_are_refused,);

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

struct Op {
    method: String,
    path: String,
    op: Value,
}

fn operations(doc: &Value) -> Vec<Op> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push(Op {
                    method: m.to_uppercase(),
                    path: path.clone(),
                    op: op.clone(),
                });
            }
        }
    }
    out
}

/// `path` with every `{param}` replaced by `value`.
fn fill(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Resolves a `$ref` to a component schema.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling {r}")),
        None => schema,
    }
}

/// Checks one answer against the operation's declared responses.
fn check_declared(op: &Op, what: &str, status: u16, content_type: Option<&str>) {
    let declared = &op.op["responses"];
    let res = declared.get(status.to_string()).unwrap_or_else(|| {
        panic!(
            "{} {} ({what}) answered {status}, which is not declared (declared: {:?})",
            op.method,
            op.path,
            declared.as_object().unwrap().keys().collect::<Vec<_>>()
        )
    });
    assert!(
        res.get("description").and_then(Value::as_str).is_some(),
        "{} {} {status}: no description",
        op.method,
        op.path
    );
    let essence = content_type.map(|c| c.split(';').next().unwrap().trim().to_string());
    match (res.get("content").and_then(Value::as_object), essence) {
        (Some(content), Some(ct)) => assert!(
            content.contains_key(&ct)
                || (ct.starts_with("text/") && content.keys().any(|k| k.starts_with("text/"))),
            "{} {} ({what}) answered {status} as {ct}, declared {:?}",
            op.method,
            op.path,
            content.keys().collect::<Vec<_>>()
        ),
        (None, Some(ct)) => panic!(
            "{} {} ({what}) answered {status} with a {ct} body, declared none",
            op.method, op.path
        ),
        _ => {}
    }
    if status >= 400 && !(op.path == "/health" && status == 503) {
        assert_eq!(
            content_type.map(|c| c.split(';').next().unwrap().trim()),
            Some("application/problem+json"),
            "{} {} ({what}) {status}",
            op.method,
            op.path
        );
    }
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, Option<String>) {
    let (status, headers, _) = app
        .req_bytes(method, path, token, content_type, body.unwrap_or_default())
        .await;
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, ct)
}

/// Status and content type of a request whose `Content-Length` announces 16 MiB
/// (only the head is sent: the relay refuses it from the header).
async fn oversized(app: &TestApp, method: &str, path: &str, token: &str) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        app.addr,
        16 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ct = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-type:")
            .map(|v| v.trim().to_string())
    });
    (status, ct)
}

type Case<'a> = (
    &'a str,
    String,
    Option<&'a str>,
    Option<&'a str>,
    Option<Vec<u8>>,
);

async fn every_answer_is_declared(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = app.get("/openapi.json", None).await.body;
    let user = app.register_verified("oscar").await;
    // Every error body is problem+json in the document itself.
    for op in operations(&doc) {
        for (code, res) in op.op["responses"].as_object().unwrap() {
            if code.parse::<u16>().unwrap() >= 400 && !(op.path == "/health" && code == "503") {
                let keys: Vec<&String> = res["content"].as_object().unwrap().keys().collect();
                assert_eq!(
                    keys,
                    ["application/problem+json"],
                    "{} {} {code}",
                    op.method,
                    op.path
                );
            }
        }
    }
    let mut probes = 0;
    for op in operations(&doc) {
        let json_body = op
            .op
            .pointer("/requestBody/content/application~1json")
            .is_some();
        let octets = op
            .op
            .pointer("/requestBody/content/application~1octet-stream")
            .is_some();
        let has_path_params = op.path.contains('{');
        let random = uuid::Uuid::new_v4().to_string();
        let concrete = fill(&op.path, &random);
        let (ct, body): (Option<&str>, Option<Vec<u8>>) = if json_body {
            (Some("application/json"), Some(b"{}".to_vec()))
        } else if octets {
            (Some("application/octet-stream"), Some(b"abc".to_vec()))
        } else {
            (None, None)
        };
        let mut cases: Vec<Case> = vec![
            ("anonymous", concrete.clone(), None, ct, body.clone()),
            (
                "authenticated",
                concrete.clone(),
                Some(user.access.as_str()),
                ct,
                body.clone(),
            ),
            (
                "bad token",
                concrete.clone(),
                Some("not.a.token"),
                ct,
                body.clone(),
            ),
        ];
        if has_path_params {
            cases.push((
                "non-UUID id",
                fill(&op.path, "not-a-uuid"),
                Some(user.access.as_str()),
                ct,
                body.clone(),
            ));
        }
        if json_body {
            for (what, ct, b) in [
                ("no content type", None, b"{}".to_vec()),
                ("text/plain", Some("text/plain"), b"{}".to_vec()),
                ("array body", Some("application/json"), b"[]".to_vec()),
                ("malformed", Some("application/json"), b"{".to_vec()),
            ] {
                cases.push((
                    what,
                    concrete.clone(),
                    Some(user.access.as_str()),
                    ct,
                    Some(b),
                ));
            }
        }
        for p in op.op["parameters"].as_array().into_iter().flatten() {
            if p["in"] != "query" {
                continue;
            }
            let name = p["name"].as_str().unwrap();
            for bad in ["", "-1", "99999999999999999999", "%00"] {
                let sep = if concrete.contains('?') { '&' } else { '?' };
                cases.push((
                    "odd query value",
                    format!("{concrete}{sep}{name}={bad}"),
                    Some(user.access.as_str()),
                    ct,
                    body.clone(),
                ));
            }
        }
        if json_body {
            // A body announced larger than the limit.
            let (status, ct) = oversized(&app, &op.method, &concrete, &user.access).await;
            check_declared(&op, "oversized", status, ct.as_deref());
        }
        for (what, path, token, ct, body) in cases {
            let (status, content_type) = send(&app, &op.method, &path, token, ct, body).await;
            assert!(
                status < 500 || status == 503,
                "{} {path} ({what}): {status}",
                op.method
            );
            check_declared(&op, what, status, content_type.as_deref());
            probes += 1;
        }
    }
    assert!(probes > 200, "only {probes} probes");
    // The document is still the relay's own: a request to an undocumented method is 405.
    let (status, ct) = send(&app, "PUT", "/api/v1/auth/me", None, None, None).await;
    assert_eq!(status, 405);
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    let _ = PASSWORD;
}

/// A value of `schema` that violates one of its declared constraints, with the
/// constraint's name; `None` when it declares none.
fn violations(schema: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        out.push((
            format!("maxLength {max}"),
            json!("a".repeat(max as usize + 1)),
        ));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && min > 0
    {
        out.push((
            format!("minLength {min}"),
            json!("a".repeat(min as usize - 1)),
        ));
    }
    if schema.get("pattern").is_some() && schema.get("format").is_none() {
        out.push(("pattern".into(), json!("!!!!")));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_u64) {
        out.push((format!("maximum {max}"), json!(max + 1)));
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
        out.push((format!("minimum {min}"), json!(min - 1)));
    }
    out
}

async fn declared_constraints_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = app.get("/openapi.json", None).await.body;
    let master = app.master().await;
    let user = app.register_verified("petra").await;
    let friend = app.register_verified("quinn").await;
    let room = app
        .post(
            "/api/v1/rooms",
            Some(&user.access),
            json!({"name": "constraints"}),
        )
        .await;
    assert_eq!(room.status, 201, "{room:?}");
    let room_id = room.body["id"].as_str().unwrap().to_string();
    let contact = app
        .post(
            "/api/v1/contacts",
            Some(&user.access),
            json!({"user_id": friend.id}),
        )
        .await;
    assert_eq!(contact.status, 201, "{contact:?}");
    let contact_id = contact.body["id"].as_str().unwrap().to_string();
    // A valid body per operation (and who sends it); each must succeed as is, and
    // fail once any one property violates a constraint the document declares.
    let n = std::sync::atomic::AtomicUsize::new(0);
    let fresh = || n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut checked = 0;
    for op in operations(&doc) {
        let Some(schema) = op
            .op
            .pointer("/requestBody/content/application~1json/schema")
        else {
            continue;
        };
        let schema = resolve(&doc, schema);
        let (path, token, base): (String, &str, Value) = match (
            op.method.as_str(),
            op.path.as_str(),
        ) {
            ("POST", "/api/v1/auth/register") => {
                let i = fresh();
                (
                    "/api/v1/auth/register".into(),
                    "",
                    json!({"username": format!("reg{i}"), "email": format!("reg{i}@example.org"), "password": PASSWORD}),
                )
            }
            ("POST", "/api/v1/users") => {
                let i = fresh();
                (
                    "/api/v1/users".into(),
                    master.access.as_str(),
                    json!({"username": format!("made{i}"), "email": format!("made{i}@example.org"), "password": PASSWORD, "display_name": "Made"}),
                )
            }
            ("PATCH", "/api/v1/users/{id}") => (
                format!("/api/v1/users/{}", user.id),
                master.access.as_str(),
                json!({"display_name": "Petra"}),
            ),
            ("POST", "/api/v1/rooms") => (
                "/api/v1/rooms".into(),
                user.access.as_str(),
                json!({"name": "room"}),
            ),
            ("PATCH", "/api/v1/rooms/{id}") => (
                format!("/api/v1/rooms/{room_id}"),
                user.access.as_str(),
                json!({"name": "renamed"}),
            ),
            ("PATCH", "/api/v1/contacts/{id}") => (
                format!("/api/v1/contacts/{contact_id}"),
                user.access.as_str(),
                json!({"nickname": "Q"}),
            ),
            _ => {
                // Not driven with a valid body: at least its violations are refused.
                let props = schema["properties"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                for (name, prop) in props {
                    let prop = resolve(&doc, &prop);
                    for (what, value) in violations(prop) {
                        let path = fill(&op.path, &uuid::Uuid::new_v4().to_string());
                        let body = json!({ name.clone(): value });
                        let r = app
                            .req(&op.method, &path, Some(&user.access), Some(body))
                            .await;
                        assert!(
                            (400..500).contains(&r.status),
                            "{} {}: {name} violating {what} answered {}",
                            op.method,
                            op.path,
                            r.status
                        );
                        checked += 1;
                    }
                }
                continue;
            }
        };
        let token = (!token.is_empty()).then_some(token);
        let ok = app.req(&op.method, &path, token, Some(base.clone())).await;
        assert!(
            (200..300).contains(&ok.status),
            "{} {path} with {base}: {ok:?}",
            op.method
        );
        for (name, prop) in schema["properties"].as_object().unwrap() {
            let prop = resolve(&doc, prop);
            for (what, value) in violations(prop) {
                // A fresh base (new username and address) so only this property is wrong.
                let mut body = match op.path.as_str() {
                    "/api/v1/auth/register" | "/api/v1/users" => {
                        let i = fresh();
                        let mut b = base.clone();
                        b["username"] = json!(format!("v{i}x"));
                        b["email"] = json!(format!("v{i}@example.org"));
                        b
                    }
                    _ => base.clone(),
                };
                body[name] = value.clone();
                let r = app.req(&op.method, &path, token, Some(body.clone())).await;
                assert!(
                    r.status == 400 || r.status == 413,
                    "{} {path}: {name} = {value} violates {what} but answered {}: {:?}",
                    op.method,
                    r.status,
                    r.body
                );
                r.problem(r.status, r.body["code"].as_str().unwrap());
                checked += 1;
            }
        }
    }
    // Query parameters.
    for op in operations(&doc) {
        for p in op.op["parameters"].as_array().into_iter().flatten() {
            if p["in"] != "query" {
                continue;
            }
            let name = p["name"].as_str().unwrap();
            for (what, value) in violations(&p["schema"]) {
                let value = match value {
                    Value::String(s) => s,
                    v => v.to_string(),
                };
                let mut path = fill(&op.path, &room_id);
                path.push_str(&format!("?{name}={value}"));
                // Required companions (search needs `q`).
                if name != "q" && op.path == "/api/v1/users/search" {
                    path.push_str("&q=pe");
                }
                let r = app.req(&op.method, &path, Some(&master.access), None).await;
                assert_eq!(
                    r.status, 400,
                    "{} {path}: {name} violating {what}: {:?}",
                    op.method, r.body
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} constraint checks");
}
