//! The live connection: one WebSocket at a time, resumed from the stored
//! cursors, reconnected with back-off. Messages are opened, verified and
//! de-duplicated here before they become [`Event`]s.
//!
//! Cursors: a room's cursor is the last `seq` handled (shown, reported
//! undecryptable, or deleted). It moves one step at a time: a message that
//! skips ahead (a gap: live delivery that overtook the replay) is dropped and
//! the room is resumed from the cursor, so nothing is ever skipped. A message
//! that cannot be checked now (the sender's keys did not load) ends the
//! connection without moving the cursor; the next connection resumes there.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sotto_core::OpenError;
use sotto_core::api::{ClientFrame, ReceiptKind, RoomChange, ServerFrame};
use sotto_core::envelope::{self, OpenContext};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use crate::error::Error;
use crate::events::{Connection, Event, ReceivedMessage, UndecryptableReason};
use crate::session::{SenderCheck, Session, lock};
use crate::store::Seen;
use sotto_engine::{Plaintext, policy};

// The engine's policy (`sotto_engine::policy`), the same numbers the npm
// package's client uses.
const PING_EVERY: Duration = Duration::from_millis(policy::PING_EVERY_MS);
const RECEIPT_EVERY: Duration = Duration::from_millis(policy::RECEIPT_EVERY_MS);
const STABLE_AFTER: Duration = Duration::from_millis(policy::STABLE_AFTER_MS);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(policy::HANDSHAKE_TIMEOUT_MS);

fn backoff(failures: u32) -> Duration {
    // The jitter from the OS RNG (a v4 UUID's random bits).
    let jitter = (Uuid::new_v4().as_u128() >> 64) as u32;
    Duration::from_millis(policy::reconnect_delay_ms(failures, jitter))
}

/// How a connection ended.
enum End {
    /// Try again after a back-off.
    Retry(String),
    /// The app stopped it.
    Stopped,
    /// The session is over (logged out, refresh token revoked): stop for good.
    LoggedOut,
}

/// The reconnect loop (one per [`Session::connect`]); ends when `stop` is set
/// (disconnect, or the app dropped its last handle) or the session is logged out.
pub(crate) async fn run(session: Session, mut stop: watch::Receiver<bool>) {
    let mut failures = 0u32;
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        let started = Instant::now();
        let end = connection(&session, stop.clone()).await;
        went_offline(&session);
        let reason = match end {
            End::Stopped => break,
            End::LoggedOut => {
                session.emit(Event::LoggedOut).await;
                break;
            }
            End::Retry(reason) => reason,
        };
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
            _ = stop.changed() => break,
        }
    }
    went_offline(&session);
}

/// Forgets the socket; `send`s waiting for an ack fall back to HTTP at once.
fn went_offline(session: &Session) {
    *lock(&session.inner.live) = None;
    lock(&session.inner.acks).clear();
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Sink = futures_util::stream::SplitSink<Socket, WsMessage>;
type Stream = futures_util::stream::SplitStream<Socket>;

async fn send_frame(sink: &mut Sink, frame: &ClientFrame) -> Result<(), String> {
    let text = serde_json::to_string(frame).map_err(|e| e.to_string())?;
    sink.send(WsMessage::text(text))
        .await
        .map_err(|e| e.to_string())
}

/// The live state of one connection.
struct Live {
    /// Last seq handled per room (persisted as it moves).
    cursors: BTreeMap<Uuid, u64>,
    /// Rooms resumed after a gap, whose replay has not reached the cursor yet.
    resuming: HashSet<Uuid>,
    /// Highest seq per room to confirm with a `delivered` receipt.
    delivered: HashMap<Uuid, u64>,
}

/// What handling a frame asks of the connection.
enum Next {
    Continue,
    /// Send `resume` for this room from its cursor.
    Resume(Uuid),
    /// End the connection (and resume on the next one).
    Reconnect(String),
}

/// One connection, from connect to its end. On stop it sends the frames
/// still queued (a last receipt) and closes cleanly.
async fn connection(session: &Session, mut stop: watch::Receiver<bool>) -> End {
    let (mut sink, mut stream, cursors) = tokio::select! {
        r = open(session) => match r {
            Ok(parts) => parts,
            Err(Error::NotLoggedIn) => return End::LoggedOut,
            Err(e) => return End::Retry(e.to_string()),
        },
        _ = stop.changed() => return End::Stopped,
    };
    let inner = &session.inner;
    let (tx, mut rx) = mpsc::unbounded_channel();
    *lock(&inner.live) = Some(tx);
    session.emit(Event::Connection(Connection::Online)).await;
    {
        let s = session.detached();
        tokio::spawn(async move {
            match s.flush_outbox().await {
                Ok(refused) => {
                    for (client_id, e) in refused {
                        s.emit(Event::RelayError {
                            code: e.code().unwrap_or("refused").to_owned(),
                            detail: Some(format!("message {client_id} was refused: {e}")),
                        })
                        .await;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "outbox flush stopped; retried on the next connection");
                }
            }
        });
    }

    let mut live = Live {
        cursors,
        resuming: HashSet::new(),
        delivered: HashMap::new(),
    };
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut receipts = tokio::time::interval(RECEIPT_EVERY);
    let mut last_rx = Instant::now();
    let retry = |e: String| End::Retry(e);
    loop {
        tokio::select! {
            _ = stop.changed() => {
                *lock(&inner.live) = None;
                while let Ok(frame) = rx.try_recv() {
                    let _ = send_frame(&mut sink, &frame).await;
                }
                let _ = sink.close().await;
                return End::Stopped;
            }
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(c))) => return retry(format!("closed by the relay: {c:?}")),
                    Some(Ok(_)) => { last_rx = Instant::now(); continue; }
                    Some(Err(e)) => return retry(format!("socket: {e}")),
                    None => return retry("socket closed".into()),
                };
                last_rx = Instant::now();
                let frame = match serde_json::from_str::<ServerFrame>(&text) {
                    Ok(f) => f,
                    Err(e) => { tracing::debug!(error = %e, "unreadable frame ignored"); continue; }
                };
                match handle(session, frame, &mut live).await {
                    Next::Continue => {}
                    Next::Resume(room) => {
                        let c = BTreeMap::from([(room, live.cursors.get(&room).copied().unwrap_or(0))]);
                        if let Err(e) = send_frame(&mut sink, &ClientFrame::Resume { cursors: c }).await {
                            return retry(e);
                        }
                    }
                    Next::Reconnect(reason) => return retry(reason),
                }
            }
            out = rx.recv() => {
                let Some(frame) = out else { return End::Stopped };
                if let Err(e) = send_frame(&mut sink, &frame).await {
                    return retry(e);
                }
            }
            _ = ping.tick() => {
                if last_rx.elapsed() > PING_EVERY * 3 {
                    return retry("no answer from the relay".into());
                }
                if let Err(e) = send_frame(&mut sink, &ClientFrame::Ping).await {
                    return retry(e);
                }
            }
            _ = receipts.tick() => {
                for (room_id, seq) in live.delivered.drain() {
                    let frame = ClientFrame::Receipt { room_id, kind: ReceiptKind::Delivered, seq };
                    if let Err(e) = send_frame(&mut sink, &frame).await {
                        return retry(e);
                    }
                }
            }
        }
    }
}

/// Lists the rooms and their cursors, then connects, authenticates and sends
/// `resume` as the very first frame after `ready` (before the relay starts
/// live delivery), so the replay and the live stream join without a gap.
async fn open(session: &Session) -> Result<(Sink, Stream, BTreeMap<Uuid, u64>), Error> {
    let inner = &session.inner;
    let net = Error::Network;
    let rooms = inner.client.all_rooms().await?;
    let stored = inner.store.cursors()?;
    let cursors: BTreeMap<Uuid, u64> = rooms
        .iter()
        .map(|r| (r.id, stored.get(&r.id).copied().unwrap_or(0)))
        .collect();
    let token = inner.client.access_token().await?;
    let ws = match tokio::time::timeout(
        inner.client.options().connect_timeout,
        tokio_tungstenite::connect_async(inner.client.ws_url()),
    )
    .await
    {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return Err(net(format!("connect: {e}"))),
        Err(_) => return Err(net("connect: timed out".into())),
    };
    let (mut sink, mut stream) = ws.split();
    let auth = ClientFrame::Auth {
        token: token.to_string(),
    };
    send_frame(&mut sink, &auth).await.map_err(net)?;
    drop(auth);
    drop(token);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(WsMessage::Text(t)))) => match serde_json::from_str::<ServerFrame>(&t) {
            Ok(ServerFrame::Ready { user_id, .. }) if user_id == inner.user.id => {}
            Ok(other) => return Err(Error::Protocol(format!("expected ready, got {other:?}"))),
            Err(e) => return Err(Error::Protocol(format!("bad frame: {e}"))),
        },
        Ok(Some(Ok(WsMessage::Close(c)))) => return Err(net(format!("closed: {c:?}"))),
        Ok(other) => return Err(net(format!("no ready: {other:?}"))),
        Err(_) => return Err(net("no ready within 10 s".into())),
    }
    send_frame(
        &mut sink,
        &ClientFrame::Resume {
            cursors: cursors.clone(),
        },
    )
    .await
    .map_err(net)?;
    // Announcements missed while offline: refetch keys and members on demand.
    session.forget_all_caches();
    Ok((sink, stream, cursors))
}

/// Where a message or deletion with `seq` stands against the room's cursor.
enum Place {
    /// Already handled.
    Old,
    /// The next one.
    Next,
    /// Skips ahead: resume (once) and drop it; the replay brings it back.
    Gap,
}

fn place(live: &mut Live, room_id: Uuid, seq: u64) -> Place {
    let cursor = live.cursors.get(&room_id).copied().unwrap_or(0);
    if seq <= cursor {
        Place::Old
    } else if seq == cursor + 1 {
        live.resuming.remove(&room_id);
        Place::Next
    } else {
        Place::Gap
    }
}

fn gap(live: &mut Live, room_id: Uuid) -> Next {
    live.cursors.entry(room_id).or_insert(0);
    if live.resuming.insert(room_id) {
        Next::Resume(room_id)
    } else {
        Next::Continue
    }
}

fn advance(session: &Session, live: &mut Live, room_id: Uuid, seq: u64) {
    live.cursors.insert(room_id, seq);
    if let Err(e) = session.inner.store.advance_cursor(room_id, seq) {
        tracing::warn!(error = %e, "cursor not saved");
    }
}

/// Handles one frame.
async fn handle(session: &Session, frame: ServerFrame, live: &mut Live) -> Next {
    let inner = &session.inner;
    match frame {
        ServerFrame::Ack { client_id, id, seq } => {
            if let Some(tx) = lock(&inner.acks).remove(&client_id) {
                let _ = tx.send(Ok((id, seq)));
            }
        }
        ServerFrame::Error {
            code,
            detail,
            client_id,
            ..
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
            match place(live, room_id, seq) {
                Place::Old => return Next::Continue,
                Place::Gap => return gap(live, room_id),
                Place::Next => {}
            }
            let own_device = sender_id == inner.user.id && device_id == inner.device_id;
            if !own_device {
                let m = Incoming {
                    room_id,
                    id,
                    seq,
                    sender_id,
                    device_id,
                    created_at,
                };
                match open_message(session, m, envelope.as_bytes()).await {
                    Ok(Some(event)) => session.emit(event).await,
                    Ok(None) => {}
                    Err(reason) => return Next::Reconnect(reason),
                }
                live.delivered.insert(room_id, seq);
            }
            advance(session, live, room_id, seq);
        }
        ServerFrame::MessageDeleted { room_id, id, seq } => {
            let next = match place(live, room_id, seq) {
                Place::Old => false,
                Place::Gap => return gap(live, room_id),
                Place::Next => true,
            };
            // Out of local history before the cursor moves past it (a failure
            // is retried: the replay brings the tombstone again).
            if let Err(e) = inner.store.history_delete(room_id, seq) {
                return Next::Reconnect(format!("store: {e}"));
            }
            if next {
                advance(session, live, room_id, seq);
            }
            session
                .emit(Event::MessageDeleted { room_id, id, seq })
                .await;
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
            session.emit(Event::Presence { user_id, online }).await;
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
            session.forget_room(room_id);
            session.emit(Event::Room { room_id, change }).await;
            // The engine looks at the new member list (warning about anyone the
            // owner did not sign) and, as the owner, signs or re-posts the
            // membership statement. In a task of its own: posting waits for an
            // ack this loop reads.
            let s = session.detached();
            tokio::spawn(async move { room_changed(&s, room_id, change).await });
            if matches!(change, RoomChange::Created | RoomChange::MemberAdded)
                && !live.cursors.contains_key(&room_id)
            {
                let stored = inner.store.cursors().unwrap_or_default();
                live.cursors
                    .insert(room_id, stored.get(&room_id).copied().unwrap_or(0));
                return Next::Resume(room_id);
            }
        }
        ServerFrame::HistoryStart { room_id, seq } => {
            // Messages up to `seq` predate this user's membership: the room's
            // history starts after it, so the next visible message is `seq + 1`.
            let cursor = live.cursors.get(&room_id).copied().unwrap_or(0);
            if seq > cursor {
                advance(session, live, room_id, seq);
            }
            live.resuming.remove(&room_id);
        }
        ServerFrame::KeysChanged { user_id } => {
            if let Err(e) = session.refresh_devices(user_id).await {
                tracing::debug!(error = %e, "refetching keys failed; retried on next use");
                session.forget_devices(user_id);
            }
            session.emit(Event::DevicesChanged { user_id }).await;
        }
        ServerFrame::Invitation {
            invitation_id,
            room_id,
            change,
        } => {
            session
                .emit(Event::Invitation {
                    invitation_id,
                    room_id,
                    change,
                })
                .await;
        }
        ServerFrame::Ready { .. } | ServerFrame::Pong => {}
    }
    Next::Continue
}

/// After a room event: the engine takes the relay's new view of the room, and
/// the owner's device keeps its membership statement right. A room the relay
/// says is deleted, or no longer shows, keeps its record (the pinned peer, the
/// held statement): a relay that could make a client forget them could then
/// pin someone else, or replay an older statement as a first one.
async fn room_changed(session: &Session, room_id: Uuid, change: RoomChange) {
    if change == RoomChange::Deleted {
        lock(&session.inner.rooms).forget_relay_view(Some(room_id));
        return;
    }
    let result = async {
        session.observe_room(room_id).await?;
        session.maintain_room(room_id).await?;
        session.check_unconfirmed(room_id).await
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, %room_id, "room check failed; done again on next use");
    }
}

/// Opens the room's messages this device has not handled yet (after its stored
/// cursor, up to 200) so the membership statements among them reach the engine
/// before it decides whom to warn about or seal to: a statement naming a new
/// member may still be queued behind the live stream. Content messages opened
/// here are delivered by the live stream as usual (a redelivery at the same
/// place is shown once, by it). Best effort: a failure leaves the decision to
/// what the engine holds.
pub(crate) async fn catch_up_statements(session: &Session, room_id: Uuid) {
    let inner = &session.inner;
    let after = match inner.store.cursors() {
        Ok(c) => c.get(&room_id).copied().unwrap_or(0),
        Err(_) => return,
    };
    let query = sotto_core::api::MessageListQuery {
        after_seq: Some(after),
        limit: Some(200),
    };
    let Ok(page) = inner.client.list_messages(room_id, &query).await else {
        return;
    };
    for m in page.items {
        let Some(envelope) = m.envelope else { continue };
        if m.sender_id == inner.user.id && m.device_id == inner.device_id {
            continue;
        }
        let incoming = Incoming {
            room_id,
            id: m.id,
            seq: m.seq,
            sender_id: m.sender_id,
            device_id: m.device_id,
            created_at: m.created_at,
        };
        // Its events (a refusal too) come from the live stream when it gets there.
        let _ = open_message(session, incoming, envelope.as_bytes()).await;
    }
}

/// A message frame's routing fields (relay-asserted; the envelope's signed
/// header must agree, which `open` checks).
struct Incoming {
    room_id: Uuid,
    id: Uuid,
    seq: u64,
    sender_id: Uuid,
    device_id: Uuid,
    created_at: String,
}

/// Checks and opens one message. `Err` means "cannot tell now" (the sender's
/// keys did not load): the cursor must not move.
async fn open_message(
    session: &Session,
    m: Incoming,
    envelope: &[u8],
) -> Result<Option<Event>, String> {
    let inner = &session.inner;
    let undecryptable = |reason| {
        Some(Event::Undecryptable {
            room_id: m.room_id,
            seq: m.seq,
            sender_id: m.sender_id,
            reason,
        })
    };
    // Cheap checks first: is it for this device at all?
    let Ok(parsed) = envelope::Envelope::from_bytes(envelope) else {
        return Ok(undecryptable(UndecryptableReason::Invalid));
    };
    if !parsed.recipient_devices().any(|d| d == inner.device_id) {
        return Ok(undecryptable(UndecryptableReason::NotForThisDevice));
    }
    let (sender, trust) = match session
        .sender_device(m.sender_id, m.device_id, &m.created_at)
        .await
    {
        SenderCheck::Trusted(device, trust) => (device, trust),
        SenderCheck::Refused(reason) => return Ok(undecryptable(reason)),
        SenderCheck::Transient(e) => return Err(format!("checking a sender: {e}")),
    };
    let ctx = OpenContext {
        room_id: m.room_id,
        sender: &sender,
    };
    let opened = match envelope::open(envelope, inner.device_id, &inner.keys, &ctx) {
        Ok(o) => o,
        Err(OpenError::NotARecipient) => {
            return Ok(undecryptable(UndecryptableReason::NotForThisDevice));
        }
        Err(_) => return Ok(undecryptable(UndecryptableReason::Invalid)),
    };
    match inner
        .store
        .mark_seen(m.sender_id, opened.replay_id(), m.room_id, m.seq)
    {
        Ok(Seen::New | Seen::Again) => {}
        Ok(Seen::Replay) => return Ok(undecryptable(UndecryptableReason::Replayed)),
        Err(e) => return Err(format!("store: {e}")),
    }
    let content = match Plaintext::decode(&opened.plaintext) {
        Plaintext::Content(c) => c,
        Plaintext::Membership(statement) => {
            let reached: Vec<Uuid> = parsed.recipient_devices().collect();
            return membership_message(session, &m, &statement, &reached).await;
        }
    };
    let message = ReceivedMessage {
        room_id: m.room_id,
        id: m.id,
        seq: m.seq,
        sender_id: m.sender_id,
        sender_device: m.device_id,
        client_id: opened.replay_id(),
        sent_at_ms: opened.header.timestamp_ms,
        received_at: m.created_at,
        own: m.sender_id == inner.user.id,
        trust,
        content,
    };
    // Kept before the app hears of it (a failure is retried like any store
    // failure: the message is not acknowledged past).
    session
        .keep(&[&message])
        .map_err(|e| format!("store: {e}"))?;
    Ok(Some(Event::Message(message)))
}

/// A membership statement in a message (a control message the app does not
/// see): the engine takes it if its signer is a trusted device of the user it
/// names, not revoked before the message was stored; a refusal is a warning.
async fn membership_message(
    session: &Session,
    m: &Incoming,
    statement: &[u8],
    reached: &[Uuid],
) -> Result<Option<Event>, String> {
    let signer = match sotto_core::membership::MembershipStatement::from_bytes(statement) {
        Ok(s) => match session
            .sender_device(s.signer_user(), s.signer_device(), &m.created_at)
            .await
        {
            SenderCheck::Trusted(device, _) => Some(device),
            SenderCheck::Refused(_) => None,
            SenderCheck::Transient(e) => return Err(format!("checking a statement's signer: {e}")),
        },
        Err(_) => None,
    };
    let received =
        lock(&session.inner.rooms).receive(m.room_id, statement, signer.as_deref(), reached);
    if let Err(e) = session.save_rooms() {
        return Err(format!("store: {e}"));
    }
    Ok(received.err().map(Event::Membership))
}
