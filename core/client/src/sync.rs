//! The live connection: one WebSocket at a time, resumed from the stored
//! cursors, reconnected with back-off. Messages are opened, verified and
//! de-duplicated here before they become [`Event`]s.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sotto_core::OpenError;
use sotto_core::api::{ClientFrame, ReceiptKind, RoomChange, ServerFrame};
use sotto_core::envelope::{self, OpenContext};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use crate::content::Content;
use crate::events::{Connection, Event, ReceivedMessage, UndecryptableReason};
use crate::session::{Session, lock};

/// Keep-alive period; the connection is declared dead after three silent periods.
const PING_EVERY: Duration = Duration::from_secs(20);
/// How often `delivered` receipts are sent (the highest seq per room since the last).
const RECEIPT_EVERY: Duration = Duration::from_millis(300);
/// A connection that stayed up this long resets the back-off.
const STABLE_AFTER: Duration = Duration::from_secs(30);

fn backoff(failures: u32) -> Duration {
    let base = Duration::from_millis(250).saturating_mul(1u32 << failures.min(7));
    let capped = base.min(Duration::from_secs(30));
    let r = (Uuid::new_v4().as_u128() % 1000) as u32;
    capped / 2 + capped / 2 * r / 1000
}

/// The reconnect loop (one per session, spawned by [`Session::connect`]); ends
/// when the app disconnects or drops its last handle of the session.
pub(crate) async fn run(session: Session) {
    let mut shutdown = session.inner.shutdown.subscribe();
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow_and_update() {
            break;
        }
        let started = Instant::now();
        let reason = connection(&session, shutdown.clone()).await;
        went_offline(&session);
        if *shutdown.borrow() {
            break;
        }
        if started.elapsed() > STABLE_AFTER {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        let delay = backoff(failures);
        tracing::debug!(%reason, ?delay, "live connection ended");
        session
            .emit(Event::Connection(Connection::Offline {
                reason,
                retry_in_ms: delay.as_millis() as u64,
            }))
            .await;
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => break,
        }
    }
    went_offline(&session);
}

/// Forgets the socket; `send`s waiting for an ack fall back to HTTP at once.
fn went_offline(session: &Session) {
    *lock(&session.inner.live) = None;
    lock(&session.inner.acks).clear();
}

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    WsMessage,
>;

async fn send_frame(sink: &mut Sink, frame: &ClientFrame) -> Result<(), String> {
    let text = serde_json::to_string(frame).map_err(|e| e.to_string())?;
    sink.send(WsMessage::text(text))
        .await
        .map_err(|e| e.to_string())
}

type Stream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// One connection, from connect to its end; returns why it ended. On shutdown
/// it sends the frames still queued (a last receipt) and closes cleanly.
async fn connection(session: &Session, mut shutdown: tokio::sync::watch::Receiver<bool>) -> String {
    let (mut sink, mut stream, mut cursors) = tokio::select! {
        r = open(session) => match r {
            Ok(parts) => parts,
            Err(reason) => return reason,
        },
        _ = shutdown.changed() => return "closed by the app".into(),
    };
    let inner = &session.inner;
    let (tx, mut rx) = mpsc::unbounded_channel();
    *lock(&inner.live) = Some(tx);
    session.emit(Event::Connection(Connection::Online)).await;
    {
        let s = session.detached();
        tokio::spawn(async move {
            if let Err(e) = s.flush_outbox().await {
                tracing::debug!(error = %e, "outbox flush stopped; retried on the next connection");
            }
        });
    }

    let mut delivered: HashMap<Uuid, u64> = HashMap::new();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut receipts = tokio::time::interval(RECEIPT_EVERY);
    let mut last_rx = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                *lock(&inner.live) = None;
                while let Ok(frame) = rx.try_recv() {
                    let _ = send_frame(&mut sink, &frame).await;
                }
                let _ = sink.close().await;
                return "closed by the app".into();
            }
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(c))) => return format!("closed by relay: {c:?}"),
                    Some(Ok(_)) => { last_rx = Instant::now(); continue; }
                    Some(Err(e)) => return format!("socket: {e}"),
                    None => return "socket closed".into(),
                };
                last_rx = Instant::now();
                let frame = match serde_json::from_str::<ServerFrame>(&text) {
                    Ok(f) => f,
                    Err(e) => { tracing::debug!(error = %e, "unreadable frame ignored"); continue; }
                };
                let resume = handle(session, frame, &mut cursors, &mut delivered).await;
                if let Some(room) = resume {
                    let c = BTreeMap::from([(room, cursors.get(&room).copied().unwrap_or(0))]);
                    if let Err(e) = send_frame(&mut sink, &ClientFrame::Resume { cursors: c }).await {
                        return e;
                    }
                }
            }
            out = rx.recv() => {
                let Some(frame) = out else { return "session closed".into() };
                if let Err(e) = send_frame(&mut sink, &frame).await {
                    return e;
                }
            }
            _ = ping.tick() => {
                if last_rx.elapsed() > PING_EVERY * 3 {
                    return "no answer from the relay".into();
                }
                if let Err(e) = send_frame(&mut sink, &ClientFrame::Ping).await {
                    return e;
                }
            }
            _ = receipts.tick() => {
                for (room_id, seq) in delivered.drain() {
                    if let Err(e) = send_frame(&mut sink, &ClientFrame::Receipt { room_id, kind: ReceiptKind::Delivered, seq }).await {
                        return e;
                    }
                }
            }
        }
    }
}

/// Connects, authenticates and resumes every room; the live parts.
async fn open(session: &Session) -> Result<(Sink, Stream, BTreeMap<Uuid, u64>), String> {
    let inner = &session.inner;
    let token = match inner.client.access_token().await {
        Ok(t) => t,
        Err(e) => return Err(e.to_string()),
    };
    let ws = match tokio::time::timeout(
        inner.client.options().connect_timeout,
        tokio_tungstenite::connect_async(inner.client.ws_url()),
    )
    .await
    {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => return Err("connect: timed out".into()),
    };
    let (mut sink, mut stream) = ws.split();
    send_frame(
        &mut sink,
        &ClientFrame::Auth {
            token: token.to_string(),
        },
    )
    .await?;
    drop(token);
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Ok(WsMessage::Text(t)))) => match serde_json::from_str::<ServerFrame>(&t) {
            Ok(ServerFrame::Ready { .. }) => {}
            Ok(other) => return Err(format!("expected ready, got {other:?}")),
            Err(e) => return Err(format!("bad frame: {e}")),
        },
        Ok(Some(Ok(WsMessage::Close(c)))) => return Err(format!("closed: {c:?}")),
        Ok(other) => return Err(format!("no ready: {other:?}")),
        Err(_) => return Err("no ready within 10 s".into()),
    }

    // Resume every room from its cursor (0 for a room never read: all of it).
    let rooms = match inner.client.all_rooms().await {
        Ok(r) => r,
        Err(e) => return Err(format!("listing rooms: {e}")),
    };
    let stored = inner.store.cursors().unwrap_or_default();
    let cursors: BTreeMap<Uuid, u64> = rooms
        .iter()
        .map(|r| (r.id, stored.get(&r.id).copied().unwrap_or(0)))
        .collect();
    session.forget_all_caches();
    send_frame(
        &mut sink,
        &ClientFrame::Resume {
            cursors: cursors.clone(),
        },
    )
    .await?;
    Ok((sink, stream, cursors))
}

/// Handles one frame; returns a room to `resume` (one the user just joined).
async fn handle(
    session: &Session,
    frame: ServerFrame,
    cursors: &mut BTreeMap<Uuid, u64>,
    delivered: &mut HashMap<Uuid, u64>,
) -> Option<Uuid> {
    let inner = &session.inner;
    match frame {
        ServerFrame::Ack { client_id, seq, .. } => {
            if let Some(tx) = lock(&inner.acks).remove(&client_id) {
                let _ = tx.send(Ok(seq));
            }
        }
        ServerFrame::Error {
            code,
            detail,
            client_id,
        } => match client_id.and_then(|c| lock(&inner.acks).remove(&c)) {
            Some(tx) => {
                let _ = tx.send(Err((code, detail)));
            }
            None => session.emit(Event::RelayError { code, detail }).await,
        },
        ServerFrame::Message {
            room_id,
            id,
            seq,
            sender_id,
            device_id,
            envelope,
            created_at,
        } => {
            let cursor = cursors.get(&room_id).copied().unwrap_or(0);
            if seq <= cursor {
                return None;
            }
            let own_device = sender_id == inner.user.id && device_id == inner.device_id;
            if !own_device {
                let event = open_message(
                    session,
                    room_id,
                    id,
                    seq,
                    sender_id,
                    device_id,
                    envelope.as_bytes(),
                    created_at,
                )
                .await;
                if let Some(event) = event {
                    session.emit(event).await;
                }
                delivered.insert(room_id, seq);
            }
            cursors.insert(room_id, seq);
            if let Err(e) = inner.store.advance_cursor(room_id, seq) {
                tracing::warn!(error = %e, "cursor not saved");
            }
        }
        ServerFrame::MessageDeleted { room_id, id, seq } => {
            session
                .emit(Event::MessageDeleted { room_id, id, seq })
                .await
        }
        ServerFrame::Typing {
            room_id,
            user_id,
            active,
        } => {
            if user_id != inner.user.id {
                session
                    .emit(Event::Typing {
                        room_id,
                        user_id,
                        active,
                    })
                    .await;
            }
        }
        ServerFrame::Presence { user_id, online } => {
            session.emit(Event::Presence { user_id, online }).await
        }
        ServerFrame::Receipt {
            room_id,
            user_id,
            kind,
            seq,
        } => {
            session
                .emit(Event::Receipt {
                    room_id,
                    user_id,
                    kind,
                    seq,
                })
                .await;
        }
        ServerFrame::Room { room_id, change } => {
            lock(&inner.members).remove(&room_id);
            session.emit(Event::Room { room_id, change }).await;
            if matches!(change, RoomChange::Created | RoomChange::MemberAdded)
                && !cursors.contains_key(&room_id)
            {
                let stored = inner.store.cursors().unwrap_or_default();
                cursors.insert(room_id, stored.get(&room_id).copied().unwrap_or(0));
                return Some(room_id);
            }
        }
        ServerFrame::KeysChanged { user_id } => {
            if let Err(e) = session.refresh_devices(user_id).await {
                tracing::debug!(error = %e, "refetching keys failed; retried on next use");
                session.forget_devices(user_id);
            }
            session.emit(Event::DevicesChanged { user_id }).await;
        }
        ServerFrame::Ready { .. } | ServerFrame::Pong => {}
    }
    None
}

#[allow(clippy::too_many_arguments)]
async fn open_message(
    session: &Session,
    room_id: Uuid,
    id: Uuid,
    seq: u64,
    sender_id: Uuid,
    device_id: Uuid,
    envelope: &[u8],
    received_at: String,
) -> Option<Event> {
    let inner = &session.inner;
    let undecryptable = |reason| Event::Undecryptable {
        room_id,
        seq,
        sender_id,
        reason,
    };
    // Cheap checks first: is it for this device at all?
    let parsed = match envelope::Envelope::from_bytes(envelope) {
        Ok(p) => p,
        Err(_) => return Some(undecryptable(UndecryptableReason::Invalid)),
    };
    if !parsed.recipient_devices().any(|d| d == inner.device_id) {
        return Some(undecryptable(UndecryptableReason::NotForThisDevice));
    }
    let (sender, trust) = match session.sender_device(sender_id, device_id).await {
        Ok(s) => s,
        Err(reason) => return Some(undecryptable(reason)),
    };
    let ctx = OpenContext {
        room_id,
        sender: &sender,
    };
    let opened = match envelope::open(envelope, inner.device_id, &inner.keys, &ctx) {
        Ok(o) => o,
        Err(OpenError::NotARecipient) => {
            return Some(undecryptable(UndecryptableReason::NotForThisDevice));
        }
        Err(_) => return Some(undecryptable(UndecryptableReason::Invalid)),
    };
    match inner.store.mark_seen(sender_id, opened.replay_id()) {
        Ok(true) => {}
        Ok(false) => return Some(undecryptable(UndecryptableReason::Replayed)),
        Err(e) => tracing::warn!(error = %e, "seen id not saved"),
    }
    Some(Event::Message(ReceivedMessage {
        room_id,
        id,
        seq,
        sender_id,
        sender_device: device_id,
        client_id: opened.replay_id(),
        sent_at_ms: opened.header.timestamp_ms,
        received_at,
        own: sender_id == inner.user.id,
        trust,
        content: Content::decode(&opened.plaintext),
    }))
}
