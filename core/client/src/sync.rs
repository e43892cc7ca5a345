//! The live connection: one WebSocket at a time, resumed from the stored
//! cursors, reconnected with back-off. Messages are opened and verified here;
//! the engine's [`Feed`] decides their order (cursors, gaps and `resume`),
//! de-duplication and receipts.
//!
//! Frames are handled in bursts: every frame already received (up to
//! [`BURST`]) is one step. The step's [`sotto_engine::Changes`] (cursors, seen
//! ids, history) go to the store in one transaction, and only then are the
//! step's events emitted and its frames sent. A message that cannot be checked
//! now (the sender's keys did not load) ends the connection without moving the
//! cursor; the next connection resumes there.

use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use sotto_core::OpenError;
use sotto_core::api::{ClientFrame, RoomChange, ServerFrame};
use sotto_core::envelope::{self, OpenContext};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use crate::error::Error;
use crate::events::{Connection, Event, ReceivedMessage, UndecryptableReason};
use crate::session::{SenderCheck, Session, lock, os_rng};
use sotto_engine::feed::{Arrival, Deletion, Feed, Seen, receipt_frame};
use sotto_engine::{Plaintext, policy};

/// At most this many frames make one step (one store transaction).
const BURST: usize = 256;

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

/// What one step produced, acted on after its changes are stored.
#[derive(Default)]
struct Step {
    events: Vec<Event>,
    frames: Vec<ClientFrame>,
}

/// A socket read, sorted.
enum Read {
    Frame(ServerFrame),
    Nothing,
    End(String),
}

fn read(msg: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>) -> Read {
    match msg {
        Some(Ok(WsMessage::Text(t))) => match serde_json::from_str::<ServerFrame>(&t) {
            Ok(f) => Read::Frame(f),
            Err(e) => {
                tracing::debug!(error = %e, "unreadable frame ignored");
                Read::Nothing
            }
        },
        Some(Ok(WsMessage::Close(c))) => Read::End(format!("closed by the relay: {c:?}")),
        Some(Ok(_)) => Read::Nothing,
        Some(Err(e)) => Read::End(format!("socket: {e}")),
        None => Read::End("socket closed".into()),
    }
}

/// One connection, from connect to its end. On stop it sends the frames
/// still queued (a last receipt) and closes cleanly.
async fn connection(session: &Session, mut stop: watch::Receiver<bool>) -> End {
    let (mut sink, mut stream, mut feed) = tokio::select! {
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
                last_rx = Instant::now();
                // One step: this frame and every frame already received.
                let mut frames = Vec::new();
                let mut ended = match read(msg) {
                    Read::Frame(f) => { frames.push(f); None }
                    Read::Nothing => None,
                    Read::End(e) => Some(e),
                };
                while ended.is_none() && frames.len() < BURST {
                    match stream.next().now_or_never() {
                        None => break,
                        Some(msg) => match read(msg) {
                            Read::Frame(f) => frames.push(f),
                            Read::Nothing => {}
                            Read::End(e) => ended = Some(e),
                        },
                    }
                }
                let mut step = Step::default();
                let mut failed = None;
                for frame in frames {
                    if let Err(reason) = handle(session, frame, &mut feed, &mut step).await {
                        failed = Some(reason);
                        break;
                    }
                }
                // The step's changes are stored before anything is shown or sent.
                let changes = feed.take_changes();
                if !changes.is_empty() {
                    let store = inner.store.clone();
                    let applied = tokio::task::spawn_blocking(move || store.apply(&changes)).await;
                    match applied {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return retry(format!("store: {e}")),
                        Err(e) => return retry(format!("store worker: {e}")),
                    }
                }
                for event in step.events {
                    session.emit(event).await;
                }
                for frame in &step.frames {
                    if let Err(e) = send_frame(&mut sink, frame).await {
                        return retry(e);
                    }
                }
                if let Some(reason) = failed.or(ended) {
                    return retry(reason);
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
                for receipt in feed.receipts() {
                    if let Err(e) = send_frame(&mut sink, &receipt_frame(receipt)).await {
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
async fn open(session: &Session) -> Result<(Sink, Stream, Feed), Error> {
    let inner = &session.inner;
    let net = Error::Network;
    let rooms = inner.client.all_rooms().await?;
    let stored = inner.store.cursors()?;
    let mut feed = Feed::new(inner.user.id, inner.device_id);
    let resume = feed.connect(rooms.iter().map(|r| r.id), stored);
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
    send_frame(&mut sink, &resume.frame()).await.map_err(net)?;
    // Announcements missed while offline: refetch keys and members on demand.
    session.forget_all_caches();
    Ok((sink, stream, feed))
}

/// Handles one frame of a step. `Err`: end the connection after the step
/// (what was handled before it is stored and shown).
async fn handle(
    session: &Session,
    frame: ServerFrame,
    feed: &mut Feed,
    step: &mut Step,
) -> Result<(), String> {
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
            retry_after_ms,
        } => match client_id.and_then(|c| lock(&inner.acks).remove(&c)) {
            Some(tx) => {
                let _ = tx.send(Err((code, detail, retry_after_ms)));
            }
            None => step.events.push(Event::RelayError { code, detail }),
        },
        ServerFrame::Message {
            room_id,
            id,
            seq,
            sender_id,
            device_id,
            envelope,
            created_at,
        } => match feed.message(room_id, seq, sender_id, device_id) {
            Arrival::Skip | Arrival::Handled => {}
            Arrival::Resume(resume) => step.frames.push(resume.frame()),
            Arrival::Open => {
                let m = Incoming {
                    room_id,
                    id,
                    seq,
                    sender_id,
                    device_id,
                    created_at,
                };
                if let Some(event) = receive(session, feed, m, envelope.as_bytes()).await? {
                    step.events.push(event);
                }
            }
        },
        ServerFrame::MessageDeleted { room_id, id, seq } => match feed.deletion(room_id, seq) {
            Deletion::Deleted => step.events.push(Event::MessageDeleted { room_id, id, seq }),
            Deletion::Skip => {}
            Deletion::Resume(resume) => step.frames.push(resume.frame()),
        },
        ServerFrame::Typing {
            room_id,
            user_id,
            active,
        } => {
            if user_id != inner.user.id {
                step.events.push(Event::Typing {
                    room_id,
                    user_id,
                    active,
                });
            }
        }
        ServerFrame::Presence { user_id, online } => {
            step.events.push(Event::Presence { user_id, online });
        }
        ServerFrame::Receipt {
            room_id,
            user_id,
            kind,
            seq,
        } => step.events.push(Event::Receipt {
            room_id,
            user_id,
            kind,
            seq,
        }),
        ServerFrame::Room { room_id, change } => {
            session.forget_room(room_id);
            step.events.push(Event::Room { room_id, change });
            // The engine looks at the new member list (warning about anyone the
            // owner did not sign) and, as the owner, signs or re-posts the
            // membership statement. In a task of its own: posting waits for an
            // ack this loop reads.
            let s = session.detached();
            tokio::spawn(async move { room_changed(&s, room_id, change).await });
            if matches!(change, RoomChange::Created | RoomChange::MemberAdded)
                && let Some(resume) = feed.joined(room_id)
            {
                step.frames.push(resume.frame());
            }
        }
        ServerFrame::HistoryStart { room_id, seq } => feed.history_start(room_id, seq),
        ServerFrame::KeysChanged { user_id } => {
            if let Err(e) = session.refresh_devices(user_id).await {
                tracing::debug!(error = %e, "refetching keys failed; retried on next use");
                session.forget_devices(user_id);
            }
            step.events.push(Event::DevicesChanged { user_id });
        }
        ServerFrame::Invitation {
            invitation_id,
            room_id,
            change,
        } => step.events.push(Event::Invitation {
            invitation_id,
            room_id,
            change,
        }),
        ServerFrame::Ready { .. } | ServerFrame::Pong => {}
    }
    Ok(())
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
    if change == RoomChange::MemberAdded {
        // Whoever joined (or rejoined) may not hold the owner's statement.
        lock(&session.inner.rooms).member_added(room_id);
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
        // Only statements: messages are shown (and statements again, which
        // the engine takes once) when the live stream gets there.
        if let Ok(Checked::Opened {
            plaintext, reached, ..
        }) = open_checked(session, &incoming, envelope.as_bytes()).await
            && let Plaintext::Membership(statement) = Plaintext::decode(&plaintext.plaintext)
        {
            let _ = membership_message(session, &incoming, &statement, &reached).await;
        }
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

/// What the checks before the content made of a message.
enum Checked {
    /// Opened: authenticated by a trusted device of its sender.
    Opened {
        plaintext: sotto_core::envelope::Opened,
        trust: crate::events::SenderTrust,
        /// The devices the envelope is sealed to.
        reached: Vec<Uuid>,
    },
    /// Refused, for this reason (shown as undecryptable).
    Refused(UndecryptableReason),
}

/// The open pipeline up to the plaintext: is it for this device, is the
/// sender's device trusted (and not revoked before the message was stored),
/// does it open and authenticate. `Err` means "cannot tell now" (the sender's
/// keys did not load): the cursor must not move.
async fn open_checked(session: &Session, m: &Incoming, envelope: &[u8]) -> Result<Checked, String> {
    let inner = &session.inner;
    // Cheap checks first: is it for this device at all?
    let Ok(parsed) = envelope::Envelope::from_bytes(envelope) else {
        return Ok(Checked::Refused(UndecryptableReason::Invalid));
    };
    if !parsed.recipient_devices().any(|d| d == inner.device_id) {
        return Ok(Checked::Refused(UndecryptableReason::NotForThisDevice));
    }
    let (sender, trust) = match session
        .sender_device(m.sender_id, m.device_id, &m.created_at)
        .await
    {
        SenderCheck::Trusted(device, trust) => (device, trust),
        SenderCheck::Refused(reason) => return Ok(Checked::Refused(reason)),
        SenderCheck::Transient(e) => return Err(format!("checking a sender: {e}")),
    };
    let ctx = OpenContext {
        room_id: m.room_id,
        sender: &sender,
    };
    match envelope::open(envelope, inner.device_id, &inner.keys, &ctx) {
        Ok(plaintext) => Ok(Checked::Opened {
            plaintext,
            trust,
            reached: parsed.recipient_devices().collect(),
        }),
        Err(OpenError::NotARecipient) => {
            Ok(Checked::Refused(UndecryptableReason::NotForThisDevice))
        }
        Err(_) => Ok(Checked::Refused(UndecryptableReason::Invalid)),
    }
}

/// Receives the room's next message (the feed said [`Arrival::Open`]): opens
/// it, checks its id against replays, and settles it in the feed (with its
/// sealed history item). Returns the event to show once the step is stored.
async fn receive(
    session: &Session,
    feed: &mut Feed,
    m: Incoming,
    envelope: &[u8],
) -> Result<Option<Event>, String> {
    let inner = &session.inner;
    let undecryptable = |feed: &mut Feed, reason| {
        feed.settle(m.room_id, m.seq, None);
        Ok(Some(Event::Undecryptable {
            room_id: m.room_id,
            seq: m.seq,
            sender_id: m.sender_id,
            reason,
        }))
    };
    let (opened, trust, reached) = match open_checked(session, &m, envelope).await? {
        Checked::Opened {
            plaintext,
            trust,
            reached,
        } => (plaintext, trust, reached),
        Checked::Refused(reason) => return undecryptable(feed, reason),
    };
    let stored = inner
        .store
        .seen_at(m.sender_id, opened.replay_id())
        .map_err(|e| format!("store: {e}"))?;
    match feed.seen(m.sender_id, opened.replay_id(), m.room_id, m.seq, stored) {
        Seen::New => {}
        // Handled in a stored step already (a replay from an old cursor): not shown again.
        Seen::Again => {
            feed.settle(m.room_id, m.seq, None);
            return Ok(None);
        }
        Seen::Replay => return undecryptable(feed, UndecryptableReason::Replayed),
    }
    let content = match Plaintext::decode(&opened.plaintext) {
        Plaintext::Content(c) => c,
        Plaintext::Membership(statement) => {
            let warning = membership_message(session, &m, &statement, &reached).await?;
            feed.settle(m.room_id, m.seq, None);
            return Ok(warning);
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
    // Kept in the same step as the cursor: stored before the app hears of it.
    let sealed = os_rng()
        .and_then(|mut rng| session.seal_kept(&message, &mut rng))
        .map_err(|e| format!("store: {e}"))?;
    feed.settle(m.room_id, m.seq, Some(sealed));
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
