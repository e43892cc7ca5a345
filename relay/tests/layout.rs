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
