//! Attachment files: large attachments live as files named by their id under
//! `<data dir>/attachments/` (small ones in the database), uploads in progress
//! as temporary files there, and the per-user cap on concurrent uploads. The
//! upload route (`attachments.rs`) streams into these; room and account
//! deletion remove them; a sweep removes files no row refers to.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use uuid::Uuid;

use crate::db::Db;
use crate::store;

const TMP_PREFIX: &str = "upload-";

/// The attachments directory of a data directory.
pub struct Files {
    dir: PathBuf,
}

impl Files {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("attachments"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where attachment `id` is kept when it is a file.
    pub fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Where an upload in progress for `id` is written.
    pub fn temp_path(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{TMP_PREFIX}{id}"))
    }

    /// Removes attachment files (after their rows are gone). Failures are logged;
    /// the hourly sweep retries.
    pub async fn remove(&self, ids: &[Uuid]) {
        for id in ids {
            match tokio::fs::remove_file(self.path(*id)).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(attachment = %id, error = %e, "cannot remove an attachment file")
                }
            }
        }
    }

    /// Removes files under the attachments directory that no row refers to:
    /// finished files whose row is gone, and temporary uploads older than `grace`.
    pub async fn sweep_orphans(&self, db: &Db, grace: Duration) -> usize {
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return 0;
        };
        let mut removed = 0;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old_enough = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age >= grace);
            let orphan = if name.starts_with(TMP_PREFIX) {
                old_enough
            } else if let Ok(id) = Uuid::parse_str(&name) {
                // Database trouble: keep the file (the next sweep decides).
                let known = store::attachments::exists(db, id).await.unwrap_or(true);
                !known && old_enough
            } else {
                false
            };
            if orphan && tokio::fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed orphaned attachment files");
        }
        removed
    }
}

/// Most uploads one user may run at once (more is 429): each holds a
/// connection, a task and possibly a temporary file of up to the size limit.
pub const MAX_UPLOADS_PER_USER: u32 = 4;

/// Uploads in progress per user.
#[derive(Default)]
pub struct UploadSlots(std::sync::Mutex<std::collections::HashMap<Uuid, u32>>);

/// One upload in progress; frees its slot when dropped.
pub struct Slot<'a> {
    slots: &'a UploadSlots,
    user: Uuid,
}

impl UploadSlots {
    pub fn take(&self, user: Uuid) -> Option<Slot<'_>> {
        let mut map = self.0.lock().ok()?;
        let n = map.entry(user).or_insert(0);
        if *n >= MAX_UPLOADS_PER_USER {
            return None;
        }
        *n += 1;
        Some(Slot { slots: self, user })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.slots.0.lock()
            && let Some(n) = map.get_mut(&self.user)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.user);
            }
        }
    }
}
