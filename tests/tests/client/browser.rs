//! The browser chat (`examples/web`, served by the relay under `/app/`) driven in
//! Debian's Chromium by `examples/web/tests/chat.spec.mjs` (playwright-core):
//! Alice and Bob register, verify and log in through the page, make their keys in
//! the browser, and chat both ways (typing, unread counts, read marks, a file,
//! safety numbers, a reload that unlocks the keys from IndexedDB). Then a native
//! client (the SDK on sotto-core, here) joins Alice's group: it opens the
//! browser's message and the browser opens its answer; when its identity key is
//! replaced, the browser shows the red warning and holds its sends until Alice
//! accepts the new key. Last, the relay's files are
//! searched for every plaintext typed in the browser and by the native client.
//!
//! Needs `scripts/build-web` (the page in `examples/web/dist`, playwright-core in
//! `examples/web/node_modules`), Node.js, and Chromium at `/usr/bin/chromium`
//! (`apt-get install chromium`). Screenshots and logs go to
//! `target/test-artifacts/browser/`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sotto_client::sotto_core::api::PutDeviceRequest;
use sotto_client::sotto_core::keys::{DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair};
use sotto_tests::Backend;
use sotto_tests::process::RelayProcess;
use uuid::Uuid;

use crate::membership::{Intruder, sealed_to, write_member_into};
use crate::support::{Person, assert_no_plaintext_at_rest, text};

/// The whole browser script, at most (it waits at most 30 s for any one thing).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(420);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

/// `target/test-artifacts/browser/` (the test binary is in `target/<profile>/deps/`).
fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let dir = target.join("test-artifacts").join("browser");
    // Only this run's screenshots and logs.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    dir
}

/// Everything the browser test needs, or a loud failure saying how to get it.
fn prerequisites(web: &Path) -> PathBuf {
    let build = "run scripts/build-web (it builds the WASM package, installs the page's npm \
                 packages and compiles the page into examples/web/dist)";
    for (path, what) in [
        (web.join("dist/index.html"), "the built page"),
        (web.join("dist/main.js"), "the page's compiled scripts"),
        (web.join("dist/pkg/sotto_wasm_bg.wasm"), "the WASM package"),
        (web.join("dist/pkg/client.js"), "the TypeScript client"),
        (
            web.join("node_modules/playwright-core/package.json"),
            "playwright-core",
        ),
    ] {
        assert!(
            path.exists(),
            "browser test: {what} is missing ({}): {build}",
            path.display()
        );
    }
    let chromium = std::env::var_os("SOTTO_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.exists(),
        "browser test: Chromium is missing ({}): apt-get install chromium (never `npx playwright install`)",
        chromium.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "browser test: Node.js is missing (apt-get install nodejs npm): {node:?}"
    );
    chromium
}

/// The node script, killed if the test ends first.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_chat_works_end_to_end_and_with_a_native_client() {
    let root = repo_root();
    let web = root.join("examples/web");
    let chromium = prerequisites(&web);
    let artifacts = artifacts_dir();
    let dist = web.join("dist");

    let mut relay = RelayProcess::start_with(
        Backend::Sqlite,
        &[("SOTTO_WEB_ROOT", dist.to_str().expect("a UTF-8 path"))],
    )
    .await;
    let url = relay.url();

    // The relay serves the page with its content security policy.
    let page = reqwest::get(format!("{url}/app/")).await.unwrap();
    assert_eq!(page.status(), 200, "GET /app/");
    let csp = page
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        csp.contains("wasm-unsafe-eval") && csp.contains("connect-src 'self'"),
        "the page's CSP: {csp:?}"
    );
    assert!(page.text().await.unwrap().contains("main.js"));

    // The native client's account and device (sotto-core through the SDK).
    let mut carol = Person::register(&relay, &url, "carol", None).await;

    let mut child = Command::new("node")
        .arg("tests/chat.spec.mjs")
        .current_dir(&web)
        .env("SOTTO_URL", &url)
        .env("SOTTO_DATA_DIR", relay.data_dir())
        .env("SOTTO_ARTIFACTS", &artifacts)
        .env("SOTTO_NATIVE_USER", "carol")
        .env("SOTTO_CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn node tests/chat.spec.mjs");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut script = Script(child);

    // The script's stdout, line by line, on a thread (its protocol lines).
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut plaintexts: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + SCRIPT_TIMEOUT;
    let mut mallory: Option<Intruder> = None;
    loop {
        let line = match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => {
                let status = script.0.wait().unwrap();
                let _ = std::fs::write(artifacts.join("relay.log"), relay.log());
                panic!(
                    "the browser script ended ({status}) before it was done: see its log above \
                     and the screenshots in {}",
                    artifacts.display()
                );
            }
            Err(_) => panic!("the browser script took longer than {SCRIPT_TIMEOUT:?}"),
        };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            eprintln!("[browser stdout] {line}");
            continue;
        };
        match msg["step"].as_str() {
            Some("invited") => {
                // Carol accepts Alice's invitation through the SDK.
                let room: Uuid = msg["room_id"].as_str().unwrap().parse().unwrap();
                let invitations = carol.session.invitations().await.unwrap();
                let inv = invitations
                    .iter()
                    .find(|i| i.room_id == room)
                    .unwrap_or_else(|| panic!("no invitation to {room}: {invitations:?}"));
                let details = carol.session.accept_invitation(inv).await.unwrap();
                assert!(details.members.iter().any(|m| m.user_id == carol.id()));
                writeln!(stdin, "{}", serde_json::json!({ "step": "joined" })).unwrap();
                stdin.flush().unwrap();
            }
            Some("group") => {
                let room: Uuid = msg["room_id"].as_str().unwrap().parse().unwrap();
                let alice: Uuid = msg["alice_id"].as_str().unwrap().parse().unwrap();
                let said = msg["text"].as_str().unwrap();
                // The native client opens the browser's message...
                let m = carol.expect_text(said).await;
                assert_eq!(m.room_id, room, "the browser's message in another room");
                assert_eq!(
                    m.sender_id, alice,
                    "the browser's message from someone else"
                );
                // ...and answers; the browser must open that.
                let answer = text("carol, from the native client");
                carol.session.send_text(room, &answer).await.unwrap();
                plaintexts.push(answer.clone());
                let reply = serde_json::json!({ "step": "reply", "text": answer });
                writeln!(stdin, "{reply}").unwrap();
                stdin.flush().unwrap();
            }
            Some("replace_identity") => {
                // A new identity key for the native user (as after losing every device):
                // the browser must warn and hold its sends until Alice accepts it.
                let identity = IdentityKeyPair::generate().unwrap();
                let keys = DeviceKeys::generate(DeviceKeyOptions::default()).unwrap();
                let bundle =
                    DeviceBundle::create(&identity, &keys, carol.id(), Uuid::new_v4()).unwrap();
                carol
                    .session
                    .client()
                    .put_device(&PutDeviceRequest {
                        bundle,
                        display_name: None,
                        replace_identity: true,
                        current_password: Some(crate::support::PASSWORD.into()),
                    })
                    .await
                    .unwrap();
                let line = serde_json::json!({ "step": "replaced", "user_id": carol.id() });
                writeln!(stdin, "{line}").unwrap();
                stdin.flush().unwrap();
            }
            Some("intrude") => {
                // A hostile operator writes a stranger with a real device into
                // the group's members, straight into the database.
                let room: Uuid = msg["room_id"].as_str().unwrap().parse().unwrap();
                let intruder = Intruder::register(&relay, &url).await;
                write_member_into(&mut relay, room, intruder.id).await;
                let line = serde_json::json!({ "step": "intruded", "user_id": intruder.id, "username": "mallory" });
                writeln!(stdin, "{line}").unwrap();
                stdin.flush().unwrap();
                mallory = Some(intruder);
            }
            Some("sealed_around") => {
                // The native member still reads the browser; the stored
                // envelopes carry no key for the intruder's device.
                let room: Uuid = msg["room_id"].as_str().unwrap().parse().unwrap();
                let said = msg["text"].as_str().unwrap();
                carol.expect_text(said).await;
                let intruder = mallory.as_ref().expect("the intrude step came first");
                assert!(
                    !sealed_to(&carol, room).await.contains(&intruder.device),
                    "a key for the intruder's device"
                );
                writeln!(stdin, "{}", serde_json::json!({ "step": "checked" })).unwrap();
                stdin.flush().unwrap();
            }
            Some("done") => {
                for p in msg["plaintexts"].as_array().unwrap() {
                    plaintexts.push(p.as_str().unwrap().to_owned());
                }
                break;
            }
            other => panic!("unexpected line from the browser script ({other:?}): {line}"),
        }
    }
    let status = script.0.wait().unwrap();
    let _ = std::fs::write(artifacts.join("relay.log"), relay.log());
    assert!(status.success(), "the browser script failed: {status}");
    assert!(
        plaintexts.len() >= 8,
        "too few plaintexts from the browser: {plaintexts:?}"
    );

    // Nothing typed in the browser or by the native client is in the relay's files.
    assert_no_plaintext_at_rest(&relay, &plaintexts, "alice");
}
