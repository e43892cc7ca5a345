//! The ingest path shared by REST and WebSocket posts: group commit.
//!
//! A post is validated (parsed, matched against the route and the caller, its
//! signature verified) by the request's own task, in parallel with every other
//! post; only then does it queue here for the writer. A worker takes whatever
//! has queued, up to [`MAX_BATCH`], stores it in one write transaction
//! ([`crate::store::messages::store_batch`]) and answers each post after the
//! commit: a post is acknowledged only once durable, and many posts share one
//! commit. Nothing waits to fill a batch: while one batch commits, the next one
//! queues, so the batch size follows the load (1 when idle).
//!
//! `seq` and idempotency are the store's (one statement per message takes the
//! room's next seq and skips a `client_id` already stored), so they are the same
//! whether a message is stored alone or in a batch. When a batch fails as a
//! whole (PostgreSQL refuses a statement, e.g. two relays storing the same
//! `client_id` at once, or a deadlock with another writer), it is rolled back and
//! its messages are stored one at a time, so each post gets its own answer.
//!
//! SQLite has one writer, so one worker; PostgreSQL gets a few, whose batches
//! overlap their round trips (each batch orders its rooms, see `store_batch`).

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::db::{Backend, Db};
use crate::error::{ApiError, ApiResult};
use crate::store::messages::{NewMessage, Stored, store_batch, store_one};

/// Most messages stored in one transaction.
pub const MAX_BATCH: usize = 256;

/// Posts waiting for a worker at most; a post beyond it waits to queue.
const QUEUE: usize = 4096;

struct Job {
    message: NewMessage,
    reply: oneshot::Sender<(NewMessage, Result<Stored, sqlx::Error>)>,
}

/// The queue of validated posts and its workers (which end with the last handle).
pub struct Ingest {
    tx: mpsc::Sender<Job>,
}

impl Ingest {
    /// Starts the workers on the current Tokio runtime.
    pub fn start(db: &Db) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let workers = match db.backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        for _ in 0..workers {
            tokio::spawn(worker(db.clone(), Arc::clone(&rx)));
        }
        Self { tx }
    }

    /// Stores `message` (in the next batch) and hands it back with the result,
    /// once the result is durable.
    pub async fn store(&self, message: NewMessage) -> ApiResult<(NewMessage, Stored)> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { message, reply })
            .await
            .map_err(|_| stopped())?;
        let (message, stored) = answer.await.map_err(|_| stopped())?;
        Ok((message, stored?))
    }
}

fn stopped() -> ApiError {
    ApiError::unavailable("the relay is shutting down; retry")
}

async fn worker(db: Db, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        metrics::histogram!("sotto_ingest_batch_size").record(batch.len() as f64);
        run(&db, batch).await;
    }
}

async fn run(db: &Db, mut batch: Vec<Job>) {
    batch.sort_by_key(|job| job.message.room);
    let messages: Vec<&NewMessage> = batch.iter().map(|job| &job.message).collect();
    // One message needs no transaction of its own: a single statement commits
    // by itself, one round trip instead of three (BEGIN, insert, COMMIT).
    if let [one] = messages.as_slice() {
        let result = store_one(db.writer(), one).await;
        drop(messages);
        if let Some(job) = batch.pop() {
            answer(job, result);
        }
        return;
    }
    let results = match store_batch(db, &messages).await {
        Ok(stored) => stored.into_iter().map(Ok).collect(),
        Err(e) => {
            tracing::debug!(error = %e, size = batch.len(), "a batch failed; storing its messages one at a time");
            metrics::counter!("sotto_ingest_batch_fallbacks_total").increment(1);
            let mut out = Vec::with_capacity(batch.len());
            for m in messages {
                out.push(store_one(db.writer(), m).await);
            }
            out
        }
    };
    for (job, result) in batch.into_iter().zip(results) {
        answer(job, result);
    }
}

fn answer(job: Job, result: Result<Stored, sqlx::Error>) {
    // The same (sender, client_id) stored by another transaction meanwhile
    // (a concurrent retry): not stored here; the poster finds the other.
    let result = match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Stored::NotStored),
        other => other,
    };
    // The poster may have gone (a closed socket); its message is stored anyway.
    let _ = job.reply.send((job.message, result));
}
