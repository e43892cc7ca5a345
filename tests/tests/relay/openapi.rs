//! The served OpenAPI document is exact enough for a generated client to rely on:
//! every status and content type the relay answers on a documented operation is
//! declared there, and the constraints it declares (lengths, patterns, ranges) are
//! refused when violated. Driven from the document itself, so a new route is
//! covered without touching this file.

use serde_json::{Value, json};
use sotto_tests::fuzz::Rng;
use sotto_tests::{Backend, PASSWORD, TestApp, both_backends, spawn_app};

both_backends!(
    every_answer_is_declared,
    declared_constraints_are_refused,
    conforming_requests_never_fail,
    a_refusal_before_the_body_is_read_closes_the_connection,
    nul_in_any_text_field_is_never_a_500,
);

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

/// What the generator draws ids and tokens from: real ones of the running
/// relay (so requests reach the handlers' deeper paths), and strangers.
struct Pool {
    ids: Vec<String>,
    envelopes: Vec<String>,
    tokens: Vec<String>,
}

/// Strings that have broken servers before: empty, huge, control and bidi
/// characters, NUL, astral planes, SQL and path syntax, URLs of every kind.
const NASTY: &[&str] = &[
    "",
    " ",
    "a",
    "\u{0}",
    "\u{202e}evil",
    "\u{feff}",
    "💬🔒",
    "' OR 1=1 --",
    "\"; DROP TABLE users; --",
    "../../etc/passwd",
    "%00%ff",
    "\\u0000",
    "https://127.0.0.1/push",
    "https://[::1]:443/x",
    "https://10.0.0.1/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://[64:ff9b::a00:1]/x",
    "http://169.254.169.254/latest/meta-data",
    "https://user:pw@192.168.1.1:8443/x",
    "mailto:x@example.org",
    "x@example.org",
    "ADMIN",
    "null",
    "-1",
    "1e309",
];

/// A value that `schema` accepts (resolving `$ref`s against `doc`), drawn from
/// the pool and the nasty strings where a string is wanted.
fn conforming(doc: &Value, schema: &Value, rng: &mut Rng, pool: &Pool, depth: u32) -> Value {
    let schema = resolve(doc, schema);
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = serde_json::Map::new();
        for part in all {
            if let Value::Object(o) = conforming(doc, part, rng, pool, depth) {
                merged.extend(o);
            }
        }
        return Value::Object(merged);
    }
    if let Some(one) = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
    {
        return conforming(doc, rng.pick(one), rng, pool, depth);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return rng.pick(values).clone();
    }
    let ty = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => {
            let non_null: Vec<&Value> = ts.iter().filter(|t| *t != "null").collect();
            if non_null.is_empty() || rng.chance(15) {
                return Value::Null;
            }
            rng.pick(&non_null).as_str().unwrap().to_string()
        }
        _ if schema.get("properties").is_some() => "object".into(),
        _ => return json!({}),
    };
    match ty.as_str() {
        "object" => {
            let mut out = serde_json::Map::new();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if depth < 6 {
                for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
                    if required.contains(&name.as_str()) || rng.chance(60) {
                        out.insert(name.clone(), conforming(doc, prop, rng, pool, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let n = rng.below(4);
            let items = &schema["items"];
            Value::Array(
                (0..n)
                    .map(|_| conforming(doc, items, rng, pool, depth + 1))
                    .collect(),
            )
        }
        "integer" => {
            let min = schema.get("minimum").and_then(Value::as_i64);
            let max = schema.get("maximum").and_then(Value::as_i64);
            let lo = min.unwrap_or(if rng.chance(20) { i64::MIN } else { 0 });
            let hi = max.unwrap_or(if rng.chance(20) { i64::MAX } else { 1_000 });
            let v = match rng.below(4) {
                0 => lo,
                1 => hi,
                _ => lo.saturating_add((rng.next_u64() % (hi.abs_diff(lo).max(1))) as i64),
            };
            json!(v.clamp(lo, hi))
        }
        "number" => json!((rng.next_u64() % 1_000_000) as f64 / 7.0),
        "boolean" => json!(rng.chance(50)),
        _ => Value::String(conforming_string(schema, rng, pool)),
    }
}

fn conforming_string(schema: &Value, rng: &mut Rng, pool: &Pool) -> String {
    let format = schema.get("format").and_then(Value::as_str);
    let encoded = schema.get("contentEncoding").is_some() || format == Some("base64url");
    if format == Some("uuid") {
        return if rng.chance(80) {
            rng.pick(&pool.ids).clone()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
    }
    if format == Some("date-time") {
        return rng
            .pick(&[
                "2026-01-01T00:00:00Z",
                "1970-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
            ])
            .to_string();
    }
    if encoded || schema.get("pattern").and_then(Value::as_str) == Some("^[A-Za-z0-9_-]*$") {
        if rng.chance(40) && !pool.envelopes.is_empty() {
            return rng.pick(&pool.envelopes).clone();
        }
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let n = rng.below(300);
        return (0..n).map(|_| *rng.pick(ALPHABET) as char).collect();
    }
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map_or(4096, |m| m as usize);
    if schema.get("pattern").is_some() {
        // The one other pattern: usernames.
        const HEAD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        const TAIL: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_.-";
        let n = 2 + rng.below(30);
        let mut s = String::from(*rng.pick(HEAD) as char);
        s.extend((0..n).map(|_| *rng.pick(TAIL) as char));
        return s;
    }
    let mut s = match rng.below(4) {
        0 => rng.pick(NASTY).to_string(),
        1 => rng.pick(&pool.tokens).clone(),
        2 => "x".repeat(max.min(100_000)),
        _ => format!("{} {}", rng.pick(NASTY), rng.next_u64()),
    };
    while s.chars().count() < min {
        s.push('z');
    }
    s.chars().take(max).collect()
}

/// One way to break a conforming body the way a buggy or hostile client would.
fn mutate(body: &mut Value, rng: &mut Rng) {
    let Value::Object(o) = body else {
        *body = json!(rng.pick(NASTY));
        return;
    };
    let keys: Vec<String> = o.keys().cloned().collect();
    match (rng.below(4), keys.is_empty()) {
        (0, false) => {
            o.remove(rng.pick(&keys));
        }
        (1, false) => {
            let k = rng.pick(&keys).clone();
            let wrong = rng
                .pick(&[
                    json!(null),
                    json!(-1),
                    json!([]),
                    json!({}),
                    json!(true),
                    json!(1e300),
                ])
                .clone();
            o.insert(k, wrong);
        }
        (2, false) => {
            let k = rng.pick(&keys).clone();
            o.insert(k, json!("\u{0}".repeat(10_000)));
        }
        _ => {
            o.insert("unexpected".into(), json!(rng.pick(NASTY)));
        }
    }
}

/// Schemathesis-style: requests that conform to the served document (and, one in
/// five, a broken variant of one), with ids of real users, rooms, invitations,
/// devices, contacts, messages and attachments, from anonymous callers, members,
/// strangers and an administrator, for every operation: no answer is a 5xx, every
/// answer is declared, and the relay is healthy afterwards.
async fn conforming_requests_never_fail(backend: Backend) {
    use sotto_tests::{AppOptions, spawn_app_with};
    let app = spawn_app_with(
        backend,
        AppOptions::default().with_config(|c| {
            c.auth_rate_per_ip = 1_000_000;
            c.auth_rate_per_account = 1_000_000;
            c.post_rate = 1_000_000;
        }),
    )
    .await;
    let doc = app.get("/openapi.json", None).await.body;
    let mut rng = Rng::from_env("conforming_requests_never_fail");

    // The world the requests act on.
    let master = app.master().await;
    let people = app.members("fz", 3).await;
    // Accounts the administrator may delete or disable, and whose refresh
    // token may be spent (a reused refresh token ends its session).
    let victims = app.users("victim", 3).await;
    let (owner, friend, stranger) = (&people[0], &people[1], &people[2]);
    let room = app.room(&owner.account, "fuzzed", &[friend.id()]).await;
    let (cid, env) = owner.seal(room, b"fuzz", &[owner.verified(), friend.verified()]);
    let posted = app.send(owner, room, cid, &env).await;
    assert_eq!(posted.status, 201, "{posted:?}");
    let invite = app
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(owner.token()),
            json!({"user_id": stranger.id()}),
        )
        .await;
    assert_eq!(invite.status, 202, "{invite:?}");
    let contact = app
        .post(
            "/api/v1/contacts",
            Some(owner.token()),
            json!({"user_id": stranger.id()}),
        )
        .await;
    assert_eq!(contact.status, 201, "{contact:?}");
    let (status, _, body) = app
        .req_bytes(
            "POST",
            &format!("/api/v1/rooms/{room}/attachments"),
            Some(owner.token()),
            Some("application/octet-stream"),
            b"opaque bytes".to_vec(),
        )
        .await;
    assert_eq!(status, 201);
    let attachment: Value = serde_json::from_slice(&body).unwrap();
    let mut ids: Vec<String> = vec![
        master.id.to_string(),
        room.to_string(),
        posted.body["id"].as_str().unwrap().into(),
        app.get("/api/v1/invitations", Some(stranger.token()))
            .await
            .body["items"][0]["id"]
            .as_str()
            .unwrap()
            .into(),
        contact.body["id"].as_str().unwrap().into(),
        attachment["id"].as_str().unwrap().into(),
    ];
    for p in &people {
        ids.push(p.id().to_string());
        ids.push(p.device_id.to_string());
    }
    let victim_ids: Vec<String> = victims.iter().map(|v| v.id.to_string()).collect();
    ids.extend(victim_ids.iter().cloned());
    let pool = Pool {
        ids,
        envelopes: vec![sotto_tests::b64(&env)],
        tokens: vec![
            victims[0].refresh.clone(),
            victims[1].refresh.clone(),
            friend.account.access.clone(),
            "not.a.token".into(),
        ],
    };
    let principals: Vec<Option<&str>> = vec![
        None,
        Some(owner.token()),
        Some(owner.token()),
        Some(friend.token()),
        Some(stranger.token()),
        Some(master.access.as_str()),
    ];

    let ops = operations(&doc);
    let rounds = 150;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    let mut previous = String::new();
    for _ in 0..rounds {
        for op in &ops {
            if op.path == "/api/v1/ws" {
                continue; // frames are fuzzed in realtime.rs
            }
            let mut path = String::new();
            let mut rest = op.path.as_str();
            while let Some(start) = rest.find('{') {
                path.push_str(&rest[..start]);
                let end = rest[start..].find('}').unwrap() + start;
                // Deleting or changing users: only the victims (the others
                // act in the rest of the run).
                let targets_user = op.path.starts_with("/api/v1/users/{id}")
                    && matches!(op.method.as_str(), "DELETE" | "PATCH");
                let id = if targets_user {
                    rng.pick(&victim_ids).clone()
                } else if rng.chance(90) {
                    rng.pick(&pool.ids).clone()
                } else {
                    "not-a-uuid".to_string()
                };
                path.push_str(&id);
                rest = &rest[end + 1..];
            }
            path.push_str(rest);
            let mut sep = '?';
            for p in op.op["parameters"].as_array().into_iter().flatten() {
                if p["in"] != "query" || !rng.chance(60) {
                    continue;
                }
                let v = conforming(&doc, &p["schema"], &mut rng, &pool, 0);
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let enc: String = v
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                path.push_str(&format!("{sep}{}={enc}", p["name"].as_str().unwrap()));
                sep = '&';
            }
            let (ct, body) = if let Some(schema) = op
                .op
                .pointer("/requestBody/content/application~1json/schema")
            {
                let mut b = conforming(&doc, schema, &mut rng, &pool, 0);
                if rng.chance(20) {
                    mutate(&mut b, &mut rng);
                }
                (
                    Some("application/json"),
                    Some(serde_json::to_vec(&b).unwrap()),
                )
            } else if op
                .op
                .pointer("/requestBody/content/application~1octet-stream")
                .is_some()
            {
                let n = rng.below(70_000);
                (Some("application/octet-stream"), Some(vec![0x5a; n]))
            } else {
                (None, None)
            };
            // Logging out ends the caller's session: only a victim does.
            let token = if op.path == "/api/v1/auth/logout" {
                Some(rng.pick(&victims).access.as_str())
            } else {
                *rng.pick(&principals)
            };
            let shown = body
                .as_ref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned());
            let mut rb = app
                .http
                .request(op.method.parse().unwrap(), app.url(&path))
                .body(body.unwrap_or_default());
            if let Some(t) = token {
                rb = rb.bearer_auth(t);
            }
            if let Some(ct) = ct {
                rb = rb.header("content-type", ct);
            }
            let r = rb.send().await.unwrap_or_else(|e| {
                panic!(
                    "{} {path}: no answer (see SOTTO_FUZZ_SEED above): {e:?}, body {shown:?}; before it: {previous}",
                    op.method
                )
            });
            let status = r.status().as_u16();
            let content_type = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let headers = format!("{:?}", r.headers());
            r.bytes().await.unwrap();
            previous = format!(
                "{} {path} as {token:?} with {} bytes: {status} {headers}",
                op.method,
                shown.as_ref().map_or(0, String::len)
            );
            assert!(
                status < 500 || (op.path == "/health" && status == 503),
                "{} {path} answered {status} (see SOTTO_FUZZ_SEED above), body {shown:?}",
                op.method
            );
            check_declared(op, "fuzzed", status, content_type.as_deref());
            *by_status.entry(status).or_default() += 1;
        }
    }
    eprintln!("answers by status: {by_status:?}");
    // Deep paths were reached, not only refusals.
    let ok: usize = by_status.range(200..300).map(|(_, n)| n).sum();
    assert!(ok > 100, "only {ok} successful answers: {by_status:?}");
    let health = app.get("/health", None).await;
    assert_eq!(health.status, 200, "{health:?}");
}

/// A request refused before its body was read (here 401 on an upload) leaves
/// the body's rest on the connection: the answer says `Connection: close`, so a
/// client does not reuse the connection and its next requests all succeed.
async fn a_refusal_before_the_body_is_read_closes_the_connection(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.register_verified("ursula").await;
    let room = app
        .post("/api/v1/rooms", Some(&user.access), json!({"name": "r"}))
        .await;
    let room = room.body["id"].as_str().unwrap().to_string();
    // One pooled connection, reused for every request.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .http1_only()
        .build()
        .unwrap();
    for i in 0..20 {
        let r = client
            .post(app.url(&format!("/api/v1/rooms/{room}/attachments")))
            .bearer_auth("not.a.token")
            .header("content-type", "application/octet-stream")
            .body(vec![0u8; 200_000])
            .send()
            .await
            .unwrap_or_else(|e| panic!("refused upload {i}: {e:?}"));
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers().get("connection").map(|v| v.to_str().unwrap()),
            Some("close")
        );
        r.bytes().await.unwrap();
        let r = client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(&user.access)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i} after a refused upload: {e:?}"));
        assert_eq!(r.status(), 200);
        // A request whose body was read keeps its connection.
        assert!(r.headers().get("connection").is_none());
    }
}

/// U+0000 in each string field of each operation's body in turn (PostgreSQL's
/// `text` cannot hold it): never a 5xx, on both backends (a refusal, or the
/// uniform answer of `password/forgot`).
async fn nul_in_any_text_field_is_never_a_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = app.get("/openapi.json", None).await.body;
    let user = app.register_verified("nul").await;
    let pool = Pool {
        ids: vec![user.id.to_string()],
        envelopes: vec![],
        tokens: vec![user.refresh.clone()],
    };
    let mut rng = Rng::seed(1);
    let mut probes = 0;
    for op in operations(&doc) {
        let Some(schema) = op
            .op
            .pointer("/requestBody/content/application~1json/schema")
        else {
            continue;
        };
        let body = conforming(&doc, schema, &mut rng, &pool, 0);
        let Value::Object(fields) = &body else {
            continue;
        };
        let path = fill(&op.path, &user.id.to_string());
        for (name, value) in fields {
            if !value.is_string() || name.contains("password") || name == "refresh_token" {
                continue;
            }
            let mut b = body.clone();
            b[name.as_str()] = json!(format!("x\u{0}y{}", value.as_str().unwrap()));
            let (status, ct) = send(
                &app,
                &op.method,
                &path,
                Some(&user.access),
                Some("application/json"),
                Some(serde_json::to_vec(&b).unwrap()),
            )
            .await;
            assert!(
                status < 500,
                "{} {path} with NUL in {name}: {status}",
                op.method
            );
            check_declared(&op, "NUL", status, ct.as_deref());
            probes += 1;
        }
    }
    // Signing in with a NUL in the login, as an anonymous caller.
    let r = app.login("nul\u{0}", PASSWORD).await;
    assert!((400..500).contains(&r.status), "{r:?}");
    assert!(probes > 20, "only {probes} probes");
}
