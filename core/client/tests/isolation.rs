#![allow(clippy::panic)]
//! The SDK's I/O stays out of the sans-I/O core: neither `sotto-core` (with its
//! default features) nor the WASM package depends on tokio, reqwest, a WebSocket
//! client or SQLite, whatever else the workspace builds.

use std::process::Command;

fn deps(package: &str, target: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "tree",
        "--offline",
        "--locked",
        "-p",
        package,
        "--edges",
        "normal",
        "--prefix",
        "none",
    ]);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    let out = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cargo tree: {e}"));
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_core_and_the_wasm_package_have_no_io_dependencies() {
    for (package, target) in [
        ("sotto-core", None),
        ("sotto-wasm", Some("wasm32-unknown-unknown")),
    ] {
        let tree = deps(package, target);
        assert!(
            tree.lines().any(|l| l.starts_with(&format!("{package} "))),
            "{package}: {tree}"
        );
        for io in [
            "tokio ",
            "reqwest ",
            "tokio-tungstenite ",
            "rusqlite ",
            "sotto-client ",
        ] {
            assert!(
                !tree.lines().any(|l| l.starts_with(io)),
                "{package} depends on {io}:\n{tree}"
            );
        }
    }
    // And the SDK does have them (the check above can see them).
    let sdk = deps("sotto-client", None);
    assert!(sdk.lines().any(|l| l.starts_with("tokio ")), "{sdk}");
}
