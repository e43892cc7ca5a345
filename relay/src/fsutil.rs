//! Files the relay writes are its own: the data directory and every directory
//! under it are created 0700, and every file (the SQLite database and its
//! WAL and shared-memory files, keys, attachments, outbox messages) 0600, so
//! other local users can read none of it. SQLite creates its `-wal` and `-shm`
//! files with the permissions of the database file, which is why the database
//! is created here, empty and 0600, before SQLite opens it.

use std::io::Write;
use std::path::Path;

/// Creates `dir` (and its parents) with mode 0700 where it creates them. An
/// existing directory keeps its mode; [`warn_if_shared`] says when it lets
/// others in.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options that create a file 0600 (the mode applies when the file is created).
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts
}

/// The same, for tokio's file type.
pub fn private_tokio_options() -> tokio::fs::OpenOptions {
    let mut opts = tokio::fs::OpenOptions::new();
    #[cfg(unix)]
    opts.mode(0o600);
    opts
}

/// Writes a new file, 0600.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = private_file_options()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes an existing file 0600 (files of an older relay, or copied in).
pub fn restrict_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            tracing::info!(path = %path.display(), "made a data file private (0600)");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The SQLite database file at `path`, created empty and 0600 when missing, and
/// it and its `-wal` / `-shm` files made 0600 when they exist.
pub fn prepare_sqlite_file(path: &Path) -> std::io::Result<()> {
    match private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        restrict_file(Path::new(&name))?;
    }
    Ok(())
}

/// Logs a warning when `dir` can be read or entered by other users.
pub fn warn_if_shared(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the data directory is open to other users; `chmod 700` it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[cfg(unix)]
    #[test]
    fn directories_0700_files_0600() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("sotto-fsutil-{}", uuid::Uuid::new_v4()));
        let dir = base.join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let file = dir.join("f");
        write_private_file(&file, b"x").unwrap();
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let open = dir.join("open");
        std::fs::write(&open, b"x").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict_file(&open).unwrap();
        assert_eq!(
            std::fs::metadata(&open).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let db = dir.join("sotto.db");
        prepare_sqlite_file(&db).unwrap();
        assert_eq!(
            std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
