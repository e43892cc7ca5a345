//! Makes the upgrade fixture of the current migration set (see
//! `sotto_tests::upgrade`): `make-upgrade-fixture <dir>` writes `<dir>/sqlite/`
//! (the data directory: database and attachment files) and `<dir>/postgres/`
//! (a `pg_dump --inserts` of the database and the attachment files), each with
//! the manifest and what the API showed (`observed.json`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use sotto_tests::{AppOptions, Backend, spawn_app_with, upgrade};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: make-upgrade-fixture <dir>"),
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dir = out.join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        });
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        let opts = AppOptions {
            attachment_quota_bytes: 1 << 20,
            ..AppOptions::default()
        };
        let app = spawn_app_with(backend, opts).await;
        let manifest = upgrade::make(&app).await;
        let observed = upgrade::observe(&app, &manifest).await;
        write_json(
            &dir.join("manifest.json"),
            &serde_json::to_value(&manifest).unwrap(),
        );
        write_json(&dir.join("observed.json"), &observed);
        // Copied while the (idle) relay runs: its data directory goes with it.
        let data = app.data_dir.path().to_path_buf();
        let url = app.database_url.clone();
        if data.join("attachments").exists() {
            sotto_tests::copy_dir(&data.join("attachments"), &dir.join("attachments"));
        }
        match backend {
            Backend::Sqlite => {
                // One self-contained file (no WAL): a consistent online copy.
                let db = dir.join("sotto.db");
                let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
                    "sqlite://{}",
                    data.join("sotto.db").display()
                ))
                .await
                .unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "VACUUM INTO '{}'",
                    db.display()
                )))
                .execute(&mut conn)
                .await
                .unwrap();
            }
            Backend::Postgres => {
                let url = url.unwrap();
                let bin = pg_bin();
                let dump = std::process::Command::new(bin.join("pg_dump"))
                    .args([
                        "--inserts",
                        "--no-owner",
                        "--no-privileges",
                        "--dbname",
                        &url,
                    ])
                    .output()
                    .unwrap();
                assert!(
                    dump.status.success(),
                    "{}",
                    String::from_utf8_lossy(&dump.stderr)
                );
                std::fs::write(dir.join("dump.sql"), dump.stdout).unwrap();
            }
        }
        drop(app);
        println!("wrote {}", dir.display());
    }
}

fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap() + "\n").unwrap();
}

fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .map(|e| e.unwrap().path().join("bin"))
        .collect();
    dirs.sort();
    dirs.pop().expect("a PostgreSQL installation")
}
