//! The browser chat served by the relay (`--web-root`): files under `/app/` with
//! the page's own content security policy, the e-mailed links and `/` sending a
//! browser to the chat, nothing outside the directory reachable, and the page
//! off when no directory is configured.

use std::path::Path;

use sotto_tests::{AppOptions, Backend, spawn_app_with};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn write(dir: &Path, name: &str, body: &[u8]) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

#[tokio::test]
async fn serves_the_chat_under_app_with_its_policy() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "index.html",
        b"<!doctype html><title>chat</title>",
    );
    write(root.path(), "app.js", b"export const x = 1;");
    write(root.path(), "pkg/sotto_wasm_bg.wasm", b"\0asm\x01\0\0\0");
    // A secret next to (outside) the web root must stay out of reach.
    std::fs::write(root.path().parent().unwrap().join("secret.txt"), b"no").ok();
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            web_root: Some(root.path().to_path_buf()),
            ..AppOptions::default()
        },
    )
    .await;
    let http = no_redirects();
    let get = |path: &str| http.get(format!("{}{path}", app.base)).send();

    let index = get("/app/").await.unwrap();
    assert_eq!(index.status(), 200);
    let csp = index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("'wasm-unsafe-eval'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(index.headers()["x-frame-options"], "DENY");
    assert!(index.text().await.unwrap().contains("<title>chat</title>"));

    let js = get("/app/app.js").await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let wasm = get("/app/pkg/sotto_wasm_bg.wasm").await.unwrap();
    assert_eq!(wasm.headers()["content-type"], "application/wasm");

    // `/app` → `/app/` so the page's relative URLs resolve.
    // A directory without its slash is redirected inside /app/.
    let dir = get("/app/pkg").await.unwrap();
    assert!(dir.status().is_redirection(), "{}", dir.status());
    assert_eq!(dir.headers()["location"], "/app/pkg/");
    let bare = get("/app").await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/app/");

    // Missing files and escapes are problem+json 404s.
    for path in [
        "/app/nope.js",
        "/app/../secret.txt",
        "/app/%2e%2e/secret.txt",
        "/app/pkg/../../secret.txt",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }

    // The e-mailed links open the chat; the browser keeps the `#token=` fragment.
    for (link, to) in [
        ("/verify-email", "/app/?action=verify-email"),
        ("/reset-password", "/app/?action=reset-password"),
    ] {
        let r = get(link).await.unwrap();
        assert_eq!(r.status(), 303, "{link}");
        assert_eq!(r.headers()["location"], to);
    }

    // `/` is the API's JSON for programs and the chat for browsers.
    let api = get("/").await.unwrap();
    assert_eq!(api.status(), 200);
    assert_eq!(
        api.json::<serde_json::Value>().await.unwrap()["name"],
        "sotto-relay"
    );
    let browser = http
        .get(format!("{}/", app.base))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), 303);
    assert_eq!(browser.headers()["location"], "/app/");
    // Other responses keep the relay's strict policy.
    let health = get("/health").await.unwrap();
    assert!(
        !health.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("wasm")
    );
}

#[tokio::test]
async fn without_a_web_root_the_pages_are_the_relays_own() {
    let app = spawn_app_with(Backend::Sqlite, AppOptions::default()).await;
    let http = no_redirects();
    let r = http.get(format!("{}/app/", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let verify = http
        .get(format!("{}/verify-email", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(verify.status(), 200);
    assert!(verify.text().await.unwrap().contains("<html"));
    let root = http
        .get(format!("{}/", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 200);
}
