//! The in-process event hub: every state change other users should hear about
//! (a message, a receipt, a room change, a user's keys) is published here with
//! its audience, as the WebSocket frame it becomes. The real-time layer
//! subscribes and forwards each event to the sockets of its audience.
//!
//! Delivery through the hub is best effort by design: the database is the
//! source of truth and clients that miss events resume from their cursors.

use std::sync::Arc;

use sotto_core::api::ServerFrame;
use tokio::sync::broadcast;
use uuid::Uuid;

/// One published event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Users whose sockets receive the frame.
    pub audience: Vec<Uuid>,
    /// What they receive.
    pub frame: ServerFrame,
}

#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self { tx }
    }

    /// Publishes `frame` to `audience` (deduplicated). Never blocks; without
    /// subscribers the event is dropped.
    pub fn publish(&self, mut audience: Vec<Uuid>, frame: ServerFrame) {
        audience.sort_unstable();
        audience.dedup();
        if audience.is_empty() {
            return;
        }
        metrics::counter!("sotto_events_published_total").increment(1);
        let _ = self.tx.send(Arc::new(Event { audience, frame }));
    }

    /// Publishes `frame` to the members of `room`. Looks the members up only
    /// when someone listens.
    pub async fn publish_to_room(&self, db: &crate::db::Db, room: Uuid, frame: ServerFrame) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        match crate::rooms::member_ids(db, room).await {
            Ok(members) => self.publish(members, frame),
            Err(_) => tracing::warn!(%room, "cannot publish an event: members unavailable"),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}
