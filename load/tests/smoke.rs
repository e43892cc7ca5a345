//! The load generator runs and reports JSON (its benchmark runs are in
//! `scripts/bench-relay`; this only keeps it working, and makes the test build
//! produce the binary the bench-cleanup check runs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn argon2_mode_reports_a_rate() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_relay-load"))
        .args(["argon2", "1", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["argon2id_threads"], 1);
    assert!(v["hashes"].as_u64().unwrap() >= 1, "{v}");
}

#[test]
fn refuses_targets_off_loopback() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_relay-load"))
        .args(["http://192.0.2.1:80", "health", "1", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback targets only"));
}
