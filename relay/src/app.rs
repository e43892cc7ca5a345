//! The router: every route, its OpenAPI description, and the middleware stack
//! (request metrics, tracing, panic → 500 problem, timeout, body limit, CORS,
//! security headers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sotto_core::api::problem::codes;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{attachments, auth_routes, contacts, devices, messages, ops, rooms, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sotto relay", description = "Accounts, keys, rooms and opaque end-to-end-encrypted messages. \
        Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`."),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "users"), (name = "devices"), (name = "rooms"), (name = "messages"), (name = "contacts"), (name = "operations"))
)]
struct ApiDoc;

struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
    }
}

/// The documented routes, and the OpenAPI document describing them: the
/// ordinary routes, the streaming ones (exempt from the whole-request timeout;
/// they time out when the client stalls), and the document.
pub fn api() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (streaming, streaming_doc) = attachments::streaming_routes().split_for_parts();
    let (routes, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ops::routes())
        .merge(auth_routes::routes())
        .merge(users::routes())
        .merge(devices::routes())
        .merge(rooms::routes())
        .merge(messages::routes())
        .merge(attachments::routes())
        .merge(contacts::routes())
        .merge(crate::invitations::routes())
        .merge(crate::blocks::routes())
        .merge(crate::push::routes())
        .merge(crate::ws::routes())
        .split_for_parts();
    doc.merge(streaming_doc);
    (routes, streaming, doc)
}

/// The OpenAPI document as served: what the route annotations say, completed with
/// what every route can answer whatever its handler does, so a generated client can
/// rely on it:
/// - every error body is `application/problem+json` (`Problem`);
/// - 400 where a path or query parameter or a JSON body can be malformed (a
///   non-UUID id, an integer out of range), 413 and 415 for every JSON body (over
///   the body limit; a missing or other `Content-Type`), 401 wherever a bearer token
///   is required, 500 and 503 (database unavailable or busy, request timeout)
///   everywhere, 429 on every write (each is rate limited) and on
///   `check-username`;
/// - `Retry-After` on 429 and 503;
/// - every response has a description (its reason phrase unless the route gives one);
/// - the envelope's `maxLength` from this relay's `--max-message-bytes`.
pub fn served_openapi(
    doc: &utoipa::openapi::OpenApi,
    config: &crate::config::Config,
) -> serde_json::Value {
    use serde_json::{Value, json};
    let mut v = serde_json::to_value(doc).unwrap_or(Value::Null);
    let problem =
        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    let retry_after = json!({"Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1}
    }});
    if let Some(paths) = v.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if !matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                    continue;
                }
                let has_params = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .is_some_and(|p| !p.is_empty());
                let json_body = op
                    .pointer("/requestBody/content/application~1json")
                    .is_some();
                let secured = op
                    .get("security")
                    .and_then(Value::as_array)
                    .is_some_and(|s| !s.is_empty());
                // Every write is rate limited (`docs/config.md`, "Limits and
                // quotas"); of the reads, the username probe.
                let limited = method != "get" || path.ends_with("/check-username");
                let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                    continue;
                };
                let mut add = |code: &str, when: bool| {
                    if when && !responses.contains_key(code) {
                        responses.insert(code.to_string(), json!({}));
                    }
                };
                add("400", has_params || json_body);
                add("413", json_body);
                add("415", json_body);
                add("401", secured);
                add("429", limited);
                add("500", true);
                add("503", true);
                for (code, res) in responses.iter_mut() {
                    let Some(res) = res.as_object_mut() else {
                        continue;
                    };
                    let status = code.parse::<u16>().unwrap_or(0);
                    if !res.contains_key("description") {
                        let reason = StatusCode::from_u16(status)
                            .ok()
                            .and_then(|s| s.canonical_reason())
                            .unwrap_or("Response");
                        res.insert("description".into(), json!(reason));
                    }
                    let is_problem = status >= 400
                        && res
                            .get("content")
                            .is_none_or(|c| c.to_string().contains("#/components/schemas/Problem"));
                    if is_problem {
                        res.insert("content".into(), problem.clone());
                    }
                    if status == 429 || status == 503 {
                        res.insert("headers".into(), retry_after.clone());
                    }
                }
            }
        }
    }
    // Every problem `code` the relay answers, declared on the schema.
    if let Some(code) = v.pointer_mut("/components/schemas/Problem/properties/code") {
        code["enum"] = json!(codes::ALL);
    }
    let envelope_max = config.max_message_bytes.saturating_mul(4).div_ceil(3);
    if let Some(env) = v.pointer_mut("/components/schemas/PostMessageRequest/properties/envelope") {
        *env = json!({
            "type": "string",
            "contentEncoding": "base64url",
            "pattern": "^[A-Za-z0-9_-]*$",
            "maxLength": envelope_max,
            "description": format!(
                "The sealed envelope (binary envelope encoding, base64url), at most {} bytes \
                 before encoding (413 beyond).",
                config.max_message_bytes
            ),
        });
    }
    v
}

/// The content security policy of the browser chat: its own scripts and WebAssembly
/// only, connections to this origin only (REST and WebSocket), decrypted files shown
/// and saved through `blob:` URLs.
const WEB_APP_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
    worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The browser chat (`examples/web`, built by `scripts/dev`), served as static files
/// under `/app/` when a web root is configured or built. Only files inside the
/// directory are served (`ServeDir` refuses `..` and absolute paths); the
/// e-mailed `/verify-email` and `/reset-password` links then open the chat, which
/// reads the token from the URL fragment the browser keeps across the redirect.
fn web_app(root: Option<std::path::PathBuf>) -> Router<AppState> {
    let Some(root) = root else {
        return Router::new()
            .route("/verify-email", get(ops::verify_email_page))
            .route("/reset-password", get(ops::reset_password_page));
    };
    if !root.join("index.html").is_file() {
        tracing::warn!(
            "web root {} has no index.html: the browser chat will answer 404",
            root.display()
        );
    }
    tracing::info!("serving the browser chat from {} at /app/", root.display());
    let files = tower_http::services::ServeDir::new(root).append_index_html_on_directories(true);
    let serve = move |request: Request| {
        let files = files.clone();
        async move { serve_web_file(files, request).await }
    };
    Router::new()
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route("/app/", get(serve.clone()))
        .route("/app/{*path}", get(serve))
        .route(
            "/verify-email",
            get(|| async { Redirect::to("/app/?action=verify-email") }),
        )
        .route(
            "/reset-password",
            get(|| async { Redirect::to("/app/?action=reset-password") }),
        )
}

/// One file of the browser chat: the request's path without `/app`, from the web root.
async fn serve_web_file(files: tower_http::services::ServeDir, request: Request) -> Response {
    use tower::ServiceExt;
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path()
        .strip_prefix("/app")
        .unwrap_or("/")
        .to_owned();
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    match path_and_query.parse() {
        Ok(uri) => parts.uri = uri,
        Err(_) => return ApiError::not_found().into_response(),
    }
    let Ok(response) = files.oneshot(Request::from_parts(parts, body)).await;
    let status = response.status();
    if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
        return ApiError::not_found().into_response();
    }
    let mut response = response.map(axum::body::Body::new);
    let headers = response.headers_mut();
    // ServeDir's "add the trailing slash" redirect names the path it saw (without
    // `/app`): put the prefix back so `/app/dir` goes to `/app/dir/`.
    if status.is_redirection()
        && let Some(to) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok())
        && to.starts_with('/')
        && let Ok(v) = HeaderValue::from_str(&format!("/app{to}"))
    {
        headers.insert(header::LOCATION, v);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(WEB_APP_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub fn router(state: AppState) -> Router {
    let (api_routes, streaming_routes, doc) = api();
    let doc_json =
        serde_json::to_string_pretty(&served_openapi(&doc, &state.config)).unwrap_or_default();
    let config = &state.config;

    let mut app = api_routes
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], doc_json) }),
        )
        .route("/docs", get(ops::docs))
        .route("/assets/{name}", get(ops::assets))
        .merge(web_app(config.web_root()))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::METHOD_NOT_ALLOWED,
                "this method is not allowed here",
            )
        })
        // Inside the timeout: draining an oversized body is bounded by it too.
        .layer(middleware::from_fn_with_state(
            json_body_limit(config),
            refuse_declared_oversize,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(config.request_timeout),
        ))
        .merge(streaming_routes)
        .with_state(state.clone())
        .layer(DefaultBodyLimit::max(json_body_limit(config)))
        .layer(middleware::map_response(problem_for_empty_errors))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(record_metrics))
        .layer(middleware::from_fn(close_when_body_unread));

    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        // `if_not_present`: the browser chat under `/app/` sets its own policy (it needs
        // `'wasm-unsafe-eval'` and blob: URLs); every other response gets this one.
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    if config.public_url().starts_with("https://") {
        app = app.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    if !origins.is_empty() {
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                ])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE])
                .max_age(Duration::from_secs(600)),
        );
    }
    app
}

/// The JSON body limit: the configured one, raised if needed so that a message
/// carrying an envelope of the maximum size (base64url in JSON) fits.
pub fn json_body_limit(config: &crate::config::Config) -> usize {
    let envelope_json = config.max_message_bytes.saturating_mul(4) / 3 + 4096;
    config.max_body_bytes.max(envelope_json)
}

/// A body whose `Content-Length` already exceeds the limit is refused (413) from
/// the header, without handing it to a handler. A body up to 4 × the limit is read
/// and discarded first, so the client finishes sending and reads the answer (an
/// answer sent while the client is still writing often reaches it as a broken
/// pipe); a larger one is answered at once and the connection closed.
async fn refuse_declared_oversize(
    axum::extract::State(limit): axum::extract::State<usize>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = limit as u64;
    match declared {
        Some(n) if n > limit => {
            if n <= limit.saturating_mul(4) {
                use futures_util::StreamExt;
                let mut body = req.into_body().into_data_stream();
                while let Some(Ok(_)) = body.next().await {}
            }
            ApiError::too_large("the request body is too large").into_response()
        }
        _ => next.run(req).await,
    }
}

/// On HTTP/1, answers `Connection: close` when the request's body was not read
/// to its end (a refusal before the body was looked at: 401, 404, 429...). The
/// unread rest is still on the connection, so the server cannot take the next
/// request from it; without the header, a client would put the connection back
/// in its pool and its next request would fail on the closed socket (RFC 9112,
/// 9.6). HTTP/2 streams end on their own.
async fn close_when_body_unread(req: Request, next: Next) -> Response {
    use hyper::body::Body as _;
    if req.version() >= axum::http::Version::HTTP_2 || req.body().is_end_stream() {
        return next.run(req).await;
    }
    let read = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = read.clone();
    let req = req.map(|inner| axum::body::Body::new(WatchedBody { inner, read: seen }));
    let mut res = next.run(req).await;
    if !read.load(std::sync::atomic::Ordering::Acquire) {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// A request body that records when it has been read to its end.
struct WatchedBody {
    inner: axum::body::Body,
    read: Arc<std::sync::atomic::AtomicBool>,
}

impl hyper::body::Body for WatchedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, std::sync::atomic::Ordering::Release);
        }
        polled
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Every error answer is problem+json: errors produced outside our handlers
/// (axum's path and query rejections, the timeout's empty 503) are rewrapped,
/// keeping their status and, bounded, their text.
async fn problem_for_empty_errors(res: Response) -> Response {
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return res;
    }
    let text = match axum::body::to_bytes(res.into_body(), 4096).await {
        Ok(b) => String::from_utf8_lossy(&b)
            .chars()
            .take(300)
            .collect::<String>(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::NOT_FOUND => codes::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED => codes::METHOD_NOT_ALLOWED,
        StatusCode::PAYLOAD_TOO_LARGE => codes::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => codes::UNSUPPORTED_MEDIA_TYPE,
        StatusCode::SERVICE_UNAVAILABLE => codes::UNAVAILABLE,
        s if s.is_client_error() => codes::VALIDATION_FAILED,
        _ => codes::INTERNAL,
    };
    let detail = if status == StatusCode::SERVICE_UNAVAILABLE && text.is_empty() {
        "the request took too long".to_string()
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    ApiError::new(status, code, detail).into_response()
}

/// The `method` label: the standard methods by name, anything else `other`.
/// Nothing a client sends becomes a label value as it is: every label has a
/// fixed set of values (the route is the matched route template or
/// `unmatched`, the status one the relay answered), so no request can add a
/// series to `/metrics`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("sotto_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("sotto_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

/// The metrics listener's router (`--metrics-listen`): `GET /metrics` and
/// nothing else; never merged into the public router.
pub fn metrics_router(handle: metrics_exporter_prometheus::PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        handle.render(),
                    )
                }
            }),
        )
        .fallback(|| async { ApiError::not_found() })
}
