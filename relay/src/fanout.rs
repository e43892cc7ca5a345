//! Scale-out on PostgreSQL: several relays share one database and deliver each
//! other's events through PostgreSQL's `LISTEN`/`NOTIFY` (no cluster protocol
//! of our own).
//!
//! Every event published in this process (`crate::events`) is also handed to a
//! forwarder task, which sends it as `NOTIFY sotto_events` with a small JSON
//! payload ([`crate::events::Remote`]: a frame with its audience; a frame for a
//! room's members; or a stored message as its ids, since an envelope can be
//! larger than a notification may be). A listener task (`sqlx::PgListener`)
//! receives the other relays' notifications and publishes them to the local
//! subscribers, reading message rows and room members from the database.
//!
//! Delivery stays best effort, as within one process: the sockets' gap filling
//! repairs order and holes at a room's next message, and when the listener's
//! connection is lost (notifications sent meanwhile are gone) every local
//! socket is closed so its client reconnects and resumes from its cursors.

use std::time::Duration;

use sotto_core::api::ServerFrame;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::db::{Db, Pool};
use crate::events::{Events, Remote};

/// The notification channel.
pub const CHANNEL: &str = "sotto_events";

/// Largest payload sent (PostgreSQL's limit is 8000 bytes).
const MAX_PAYLOAD: usize = 7900;

/// Events queued for the forwarder before new ones are dropped.
const QUEUE: usize = 4096;

#[derive(serde::Serialize, serde::Deserialize)]
struct Note {
    /// The relay that sent it (each ignores its own).
    o: Uuid,
    #[serde(flatten)]
    e: Remote,
}

/// Starts forwarding and listening when the database is PostgreSQL; returns
/// the tasks (aborted when the relay stops).
pub fn start(db: &Db, events: &Events) -> Vec<tokio::task::JoinHandle<()>> {
    #[allow(irrefutable_let_patterns)]
    let Pool::Postgres(pool) = db.write_pool().clone() else {
        return Vec::new();
    };
    let origin = Uuid::new_v4();
    let (tx, rx) = mpsc::channel(QUEUE);
    events.forward_to(tx);
    vec![
        tokio::spawn(forward(db.clone(), origin, rx)),
        tokio::spawn(listen(db.clone(), events.clone(), pool, origin)),
    ]
}

/// The payloads of one event: one, or several when a long audience must be
/// split to fit.
fn payloads(origin: Uuid, event: Remote) -> Vec<String> {
    let Ok(one) = serde_json::to_string(&Note {
        o: origin,
        e: event.clone(),
    }) else {
        return Vec::new();
    };
    if one.len() <= MAX_PAYLOAD {
        return vec![one];
    }
    match event {
        Remote::Frame { a, f } if a.len() > 1 => {
            let half = a.len() / 2;
            let (x, y) = a.split_at(half);
            let mut out = payloads(
                origin,
                Remote::Frame {
                    a: x.to_vec(),
                    f: f.clone(),
                },
            );
            out.extend(payloads(origin, Remote::Frame { a: y.to_vec(), f }));
            out
        }
        _ => {
            metrics::counter!("sotto_fanout_too_large_total").increment(1);
            Vec::new()
        }
    }
}

async fn forward(db: Db, origin: Uuid, mut rx: mpsc::Receiver<Remote>) {
    while let Some(event) = rx.recv().await {
        for payload in payloads(origin, event) {
            match crate::store::fanout::notify(db.writer(), CHANNEL, &payload).await {
                Ok(()) => metrics::counter!("sotto_fanout_sent_total").increment(1),
                Err(e) => {
                    metrics::counter!("sotto_fanout_dropped_total").increment(1);
                    tracing::warn!(code = e.code, "cannot forward an event to the other relays");
                }
            }
        }
    }
}

async fn listen(db: Db, events: Events, pool: sqlx::PgPool, origin: Uuid) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for the other relays' events; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cannot listen for the other relays' events; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => deliver(&db, &events, origin, n.payload()).await,
                Ok(None) => {
                    // The connection was lost and is being re-established:
                    // whatever was sent meanwhile is gone, so the local
                    // sockets close and their clients resume.
                    metrics::counter!("sotto_fanout_listener_reconnects_total").increment(1);
                    tracing::warn!(
                        "lost the connection that brings the other relays' events; sockets resume"
                    );
                    events.reset_all();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for the other relays' events failed; reconnecting");
                    events.reset_all();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

async fn deliver(db: &Db, events: &Events, origin: Uuid, payload: &str) {
    let note: Note = match serde_json::from_str(payload) {
        Ok(n) => n,
        Err(_) => {
            metrics::counter!("sotto_fanout_invalid_total").increment(1);
            return;
        }
    };
    if note.o == origin {
        return;
    }
    metrics::counter!("sotto_fanout_received_total").increment(1);
    match note.e {
        Remote::Frame { a, f } => events.publish_local(&a, f),
        Remote::Room { room, f } => events.publish_room_local(db, room, f).await,
        Remote::Message { room, id } => {
            if !events.has_subscribers() {
                return;
            }
            match crate::store::messages::one(db, room, id).await {
                Ok(Some(m)) => {
                    if let Some(envelope) = m.envelope {
                        let frame = ServerFrame::Message {
                            room_id: m.room_id,
                            id: m.id,
                            seq: m.seq,
                            sender_id: m.sender_id,
                            device_id: m.device_id,
                            envelope,
                            created_at: m.created_at,
                        };
                        events.publish_room_local(db, room, frame).await;
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%room, code = e.code, "cannot read a forwarded message"),
            }
        }
    }
}
