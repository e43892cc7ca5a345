//! The storage rule of `docs/architecture.md`: every SQL statement lives in
//! `relay/src/store/` (plus `db.rs`, which owns the pools and migrations);
//! handlers and shared modules call typed store functions and never see SQL.

use std::path::Path;

#[test]
fn sql_lives_only_in_the_store() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "db.rs" {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        for (n, line) in text.lines().enumerate() {
            if [
                "sqlx::query",
                "query_as",
                "query_scalar",
                "SELECT ",
                "INSERT INTO",
                "UPDATE ",
                "DELETE FROM",
            ]
            .iter()
            .any(|needle| line.contains(needle))
            {
                offenders.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(checked > 20, "only {checked} files checked");
    assert!(
        offenders.is_empty(),
        "SQL outside relay/src/store:\n{}",
        offenders.join("\n")
    );
}

/// `relay/.sqlx` (the offline data of the compile-time checked statements)
/// holds no entry for a statement that no longer exists: each file's text is
/// in the store's sources. (A statement without an entry fails the build.)
#[test]
fn offline_query_data_has_no_stale_entries() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    for entry in std::fs::read_dir(root.join("src/store")).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        sources.push_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")));
    }
    let mut stale = Vec::new();
    let mut files = 0;
    let mut backends = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root.join(".sqlx")).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let data: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        files += 1;
        backends.insert(data["db_name"].as_str().unwrap_or("").to_string());
        let query = data["query"].as_str().unwrap_or("");
        let text = query.strip_prefix("/* sqlite */ ").unwrap_or(query);
        if !sources.contains(text) {
            stale.push(path.display().to_string());
        }
    }
    assert!(files > 100, "only {files} statements");
    assert_eq!(
        backends.into_iter().collect::<Vec<_>>(),
        ["PostgreSQL", "SQLite"],
        "both backends' data"
    );
    assert!(
        stale.is_empty(),
        "stale offline data (run scripts/sqlx-prepare):\n{}",
        stale.join("\n")
    );
}
