//! Attachments: files are encrypted chunk by chunk while they stream to the
//! relay, and decrypted chunk by chunk while they stream back. Neither side
//! holds a whole file in memory; a download is written to a temporary file and
//! renamed into place only after the last chunk and the digest check passed.

use std::path::Path;
use std::sync::{Arc, Mutex};

use sotto_core::attachment::{
    AttachmentDecryptor, AttachmentEncryptor, AttachmentPointer, DEFAULT_CHUNK_SIZE, Finished,
    encrypted_len,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::content::Content;
use crate::error::{Error, Result};
use crate::session::{Sent, Session, lock};

/// Progress of a transfer, in plaintext bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes done.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

/// A progress callback (called from the transfer's task).
pub type OnProgress = Arc<dyn Fn(Progress) + Send + Sync>;

const READ_SIZE: usize = DEFAULT_CHUNK_SIZE as usize;

struct Upload<R> {
    reader: R,
    header: Option<Vec<u8>>,
    encryptor: Option<AttachmentEncryptor>,
    read: u64,
    size: u64,
    finished: Arc<Mutex<Option<Finished>>>,
    on_progress: Option<OnProgress>,
}

async fn next_piece<R: AsyncRead + Unpin>(
    mut up: Upload<R>,
) -> Option<(std::io::Result<Vec<u8>>, Upload<R>)> {
    if let Some(h) = up.header.take() {
        return Some((Ok(h), up));
    }
    up.encryptor.as_ref()?;
    let mut buf = vec![0u8; READ_SIZE];
    let n = match up.reader.read(&mut buf).await {
        Ok(n) => n,
        Err(e) => {
            up.encryptor = None;
            return Some((Err(e), up));
        }
    };
    let over = up.read.saturating_add(n as u64) > up.size;
    if n == 0 || over {
        let enc = up.encryptor.take()?;
        if over || up.read != up.size {
            return Some((
                Err(std::io::Error::other(
                    "the file changed size while it was sent",
                )),
                up,
            ));
        }
        return match enc.finish() {
            Ok(f) => {
                let tail = f.tail.clone();
                *lock(&up.finished) = Some(f);
                Some((Ok(tail), up))
            }
            Err(e) => Some((Err(std::io::Error::other(e)), up)),
        };
    }
    buf.truncate(n);
    up.read += n as u64;
    if let Some(p) = &up.on_progress {
        p(Progress {
            done: up.read,
            total: up.size,
        });
    }
    let enc = up.encryptor.as_mut()?;
    match enc.update(&buf) {
        Ok(out) => Some((Ok(out), up)),
        Err(e) => {
            up.encryptor = None;
            Some((Err(std::io::Error::other(e)), up))
        }
    }
}

impl Session {
    /// Encrypts the file at `path` while uploading it to the room, then sends a
    /// message that carries its pointer (id, key, digest, name, media type).
    /// `on_progress` is called as plaintext bytes are read and sent.
    pub async fn send_file(
        &self,
        room_id: Uuid,
        path: &Path,
        content_type: Option<&str>,
        on_progress: Option<OnProgress>,
    ) -> Result<Sent> {
        let file = tokio::fs::File::open(path).await?;
        let size = file.metadata().await?.len();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        self.send_reader(room_id, file, size, name, content_type, on_progress)
            .await
    }

    /// [`Session::send_file`] from any reader of exactly `size` bytes.
    pub async fn send_reader<R: AsyncRead + Unpin + Send + Sync + 'static>(
        &self,
        room_id: Uuid,
        reader: R,
        size: u64,
        name: Option<String>,
        content_type: Option<&str>,
        on_progress: Option<OnProgress>,
    ) -> Result<Sent> {
        let (encryptor, header) = AttachmentEncryptor::new(DEFAULT_CHUNK_SIZE)?;
        let total = encrypted_len(size, DEFAULT_CHUNK_SIZE).ok_or(Error::TooLarge)?;
        let finished = Arc::new(Mutex::new(None));
        let up = Upload {
            reader,
            header: Some(header),
            encryptor: Some(encryptor),
            read: 0,
            size,
            finished: finished.clone(),
            on_progress,
        };
        let stream = futures_util::stream::unfold(up, next_piece);
        let id = self
            .client()
            .upload_attachment(room_id, total, reqwest::Body::wrap_stream(stream))
            .await?;
        let Some(done) = lock(&finished).take() else {
            return Err(Error::Network(
                "the upload ended before the file did".into(),
            ));
        };
        let mut pointer = AttachmentPointer::new(id, &done.key, &done.info);
        pointer.name = name;
        pointer.content_type = content_type.map(Into::into);
        self.send(room_id, &Content::File { file: pointer }).await
    }

    /// Downloads and decrypts the file a message pointed to into `dest`. The
    /// plaintext goes to `dest` only if every chunk authenticated and the blob's
    /// digest and sizes matched the pointer; otherwise nothing is left behind.
    /// Returns the file's size.
    pub async fn download_file(
        &self,
        pointer: &AttachmentPointer,
        dest: &Path,
        on_progress: Option<OnProgress>,
    ) -> Result<u64> {
        let mut decryptor = AttachmentDecryptor::for_pointer(pointer)?;
        let mut res = self.client().download_attachment(pointer.id).await?;
        let tmp = dest.with_extension(format!("part-{}", Uuid::new_v4().simple()));
        let result = async {
            let mut out = tokio::fs::File::create(&tmp).await?;
            let mut done = 0u64;
            while let Some(chunk) = res
                .chunk()
                .await
                .map_err(|e| Error::Network(e.to_string()))?
            {
                let plain = decryptor.update(&chunk)?;
                out.write_all(&plain).await?;
                done += plain.len() as u64;
                if let Some(p) = &on_progress {
                    p(Progress {
                        done,
                        total: pointer.size,
                    });
                }
            }
            let tail = decryptor.finish()?;
            out.write_all(&tail).await?;
            done += tail.len() as u64;
            out.sync_all().await?;
            if let Some(p) = &on_progress {
                p(Progress {
                    done,
                    total: pointer.size,
                });
            }
            Ok::<u64, Error>(done)
        }
        .await;
        match result {
            Ok(n) => {
                tokio::fs::rename(&tmp, dest).await?;
                Ok(n)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }
}
