//! The live connection's driver: the engine's [`Link`] decides (when to
//! connect, `resume`, ping, send receipts, give up on an `ack`, back off); this
//! task does its I/O: the HTTP calls that prepare a connection, the
//! WebSocket, the store transaction of each step, the device-list fetches the
//! engine's open pipeline ([`Opening`]) asks for, and the app's events.
//!
//! The link hands out a step's messages one at a time ([`Output::Receive`]),
//! then the step's [`sotto_engine::Changes`] ([`Output::Store`], applied in one
//! transaction off the runtime's threads), and only after that its events and
//! frames. A message that cannot be checked now (the sender's keys did not
//! load) ends the connection without moving the cursor; the next connection
//! resumes there. Each socket has a reader task that reads and parses frames
//! ahead of the link (up to [`READ_AHEAD`]), so the relay's delivery of the
//! next frames overlaps with opening the current ones.

use futures_util::{SinkExt, StreamExt};
use sotto_core::api::{ClientFrame, ServerFrame};
use sotto_engine::feed::Seen;
use sotto_engine::link::{BURST, Conn, Incoming, Link, LinkState, Output, PrepareFailed, Settle};
use sotto_engine::open::{Opening, Outcome};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::events::{Connection, Event, ReceivedMessage};
use crate::session::{Session, lock};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Sink = futures_util::stream::SplitSink<Ws, WsMessage>;
type Stream = futures_util::stream::SplitStream<Ws>;

/// The back-off jitter, from the OS RNG (a v4 UUID's random bits).
fn jitter() -> u32 {
    (Uuid::new_v4().as_u128() >> 64) as u32
}

/// A socket read, parsed by the socket's reader task.
enum Read {
    Frame(ServerFrame),
    /// Not a frame this client reads (a newer relay's): still a sign of life.
    Other,
    End(String),
}

/// How many parsed frames the reader task may run ahead of the link...
const READ_AHEAD: usize = 4 * BURST;
/// ...and how many bytes of frame text they may weigh together (a catch-up of
/// large envelopes must not fill memory: the socket's own buffers hold the
/// rest, and the relay's slow-consumer rules apply as before).
const READ_AHEAD_BYTES: usize = 16 << 20;
/// The largest frame this client reads: a message frame carries at most a
/// 1 MiB envelope in base64 (the relay refuses larger); the rest is refused as
/// a protocol error instead of being buffered (tungstenite's default: 64 MiB).
const MAX_FRAME_BYTES: usize = 2 * sotto_core::envelope::MAX_ENVELOPE_BYTES + (64 << 10);

/// The open socket of one attempt. Its reader task reads and parses frames
/// while the link's step opens the ones before them (the relay's delivery
/// overlaps with opening); dropping it stops the reader.
struct Socket {
    conn: Conn,
    sink: Sink,
    /// Each read with its share of [`READ_AHEAD_BYTES`], given back when the
    /// link takes it.
    reads: mpsc::Receiver<(Read, Option<OwnedSemaphorePermit>)>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn reader(
    mut stream: Stream,
    tx: mpsc::Sender<(Read, Option<OwnedSemaphorePermit>)>,
) -> tokio::task::JoinHandle<()> {
    let budget = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    tokio::spawn(async move {
        loop {
            let (read, permit) = match stream.next().await {
                Some(Ok(WsMessage::Text(t))) => {
                    let weight = u32::try_from(t.len().clamp(1, READ_AHEAD_BYTES)).unwrap_or(1);
                    let Ok(permit) = budget.clone().acquire_many_owned(weight).await else {
                        break;
                    };
                    let read =
                        serde_json::from_str::<ServerFrame>(&t).map_or(Read::Other, Read::Frame);
                    (read, Some(permit))
                }
                Some(Ok(WsMessage::Close(c))) => {
                    (Read::End(format!("closed by the relay: {c:?}")), None)
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => (Read::End(format!("socket: {e}")), None),
                None => (Read::End("socket closed".into()), None),
            };
            let end = matches!(read, Read::End(_));
            if tx.send((read, permit)).await.is_err() || end {
                break;
            }
        }
    })
}

/// The I/O of one connection task.
#[derive(Default)]
struct Io {
    /// The open socket.
    socket: Option<Socket>,
    /// The access token got at `Prepare`, until `Authenticate` sends it.
    token: Option<Zeroizing<String>>,
}

/// The link of one connection task: the session's link while this task is
/// the one driving it (a task still winding down after a `disconnect`, when
/// `connect` already started the next, finds `None` and ends).
#[derive(Clone)]
struct Task {
    session: Session,
    id: u64,
}

impl Task {
    fn with_link<R>(&self, f: impl FnOnce(&mut Link<Event>) -> R) -> Option<R> {
        lock(&self.session.inner.link)
            .as_mut()
            .filter(|(id, _)| *id == self.id)
            .map(|(_, link)| f(link))
    }

    fn now(&self) -> u64 {
        self.session.now_ms()
    }
}

/// The connection task (one per [`Session::connect`]): does the link's
/// outputs until it is stopped (`stop` set: disconnect, or the app dropped
/// its last handle) and wound down, or the session is logged out.
pub(crate) async fn run(session: Session, mut stop: watch::Receiver<bool>) {
    let inner = &session.inner;
    let timeout_ms =
        u64::try_from(inner.client.options().connect_timeout.as_millis()).unwrap_or(u64::MAX);
    let id = inner
        .link_tasks
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let task = Task {
        session: session.clone(),
        id,
    };
    let mut link = Link::new(inner.user.id, inner.device_id, timeout_ms, Box::new(jitter));
    link.start(task.now());
    {
        let mut slot = lock(&inner.link);
        // Waits on an earlier task's link end here (their senders drop): they
        // go over HTTP.
        lock(&inner.acks).clear();
        *slot = Some((id, link));
    }
    let mut io = Io::default();
    let mut stopping = false;
    loop {
        while let Some(out) = task.with_link(|l| l.poll(task.now())).flatten() {
            // Preparing and opening wait on the network: a stop cuts them short
            // (the link ignores their late answers). The other outputs finish a
            // step the link waits for, or are quick.
            if !stopping && matches!(out, Output::Prepare(_) | Output::Open(_)) {
                tokio::select! {
                    () = perform(&task, &mut io, out) => {}
                    _ = stop.changed() => {
                        stopping = true;
                        task.with_link(|l| l.stop(task.now()));
                    }
                }
            } else {
                perform(&task, &mut io, out).await;
            }
        }
        let Some((true, deadline)) = task.with_link(|l| (l.is_active(), l.deadline())) else {
            break;
        };
        let sleep = deadline.map(|d| {
            tokio::time::Instant::from_std(inner.epoch) + std::time::Duration::from_millis(d)
        });
        tokio::select! {
            _ = stop.changed(), if !stopping => {
                stopping = true;
                task.with_link(|l| l.stop(task.now()));
            }
            read = read(&mut io) => {
                let Some(socket) = io.socket.as_mut() else { continue };
                let conn = socket.conn;
                // This frame and every frame already read: one step.
                let mut ended = take(&task, conn, read);
                let mut n = 1;
                while !ended && n < BURST {
                    match socket.reads.try_recv() {
                        Ok((read, _permit)) => ended = take(&task, conn, Some(read)),
                        Err(_) => break,
                    }
                    n += 1;
                }
            }
            () = inner.link_wake.notified() => {}
            () = async {
                match sleep {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
    {
        let mut slot = lock(&inner.link);
        if slot.as_ref().is_some_and(|(owner, _)| *owner == id) {
            *slot = None;
            // Sends still waiting fall back to HTTP.
            lock(&inner.acks).clear();
        }
    }
    if let Some(socket) = io.socket.take() {
        close(socket).await;
    }
}

/// Closes a socket cleanly (at most a second) and stops its reader.
async fn close(mut socket: Socket) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.sink.close()).await;
}

/// The next read of the open socket (never, while there is none; `None`: its
/// reader ended). Its share of the read-ahead budget is given back here.
async fn read(io: &mut Io) -> Option<Read> {
    match io.socket.as_mut() {
        Some(socket) => socket.reads.recv().await.map(|(read, _permit)| read),
        None => std::future::pending().await,
    }
}

/// Gives a socket read to the link; true when the socket ended.
fn take(task: &Task, conn: Conn, read: Option<Read>) -> bool {
    let now = task.now();
    let ended = match read {
        Some(Read::Frame(frame)) => {
            task.with_link(|l| l.received_frame(conn, now, frame));
            return false;
        }
        // An empty text is unreadable: the link only notes the sign of life.
        Some(Read::Other) => {
            task.with_link(|l| l.received(conn, now, ""));
            return false;
        }
        Some(Read::End(reason)) => reason,
        None => "socket closed".into(),
    };
    task.with_link(|l| l.closed(conn, now, ended));
    true
}

async fn send_frame(sink: &mut Sink, frame: &ClientFrame) -> Result<(), String> {
    let text = serde_json::to_string(frame).map_err(|e| e.to_string())?;
    sink.send(WsMessage::text(text))
        .await
        .map_err(|e| e.to_string())
}

/// Does one output of the link.
async fn perform(task: &Task, io: &mut Io, out: Output<Event>) {
    let session = &task.session;
    let inner = &session.inner;
    match out {
        Output::Prepare(conn) => {
            let prepared = async {
                let rooms = inner.client.all_rooms().await?;
                let stored = inner.store.cursors()?;
                let token = inner.client.access_token().await?;
                Ok::<_, Error>((rooms, stored, token))
            }
            .await;
            let answer = match prepared {
                Ok((rooms, stored, token)) => {
                    io.token = Some(token);
                    Ok((
                        rooms.iter().map(|r| r.id).collect(),
                        stored.into_iter().collect(),
                    ))
                }
                Err(Error::NotLoggedIn) => Err(PrepareFailed::LoggedOut),
                Err(e) => Err(PrepareFailed::Retry(e.to_string())),
            };
            task.with_link(|l| l.prepared(conn, task.now(), answer));
        }
        Output::Open(conn) => {
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_FRAME_BYTES))
                .max_frame_size(Some(MAX_FRAME_BYTES));
            let opened = tokio::time::timeout(
                inner.client.options().connect_timeout,
                // No Nagle delay: frames are small and interactive.
                tokio_tungstenite::connect_async_with_config(
                    inner.client.ws_url(),
                    Some(config),
                    true,
                ),
            )
            .await;
            let now = task.now();
            match opened {
                Ok(Ok((ws, _))) => {
                    let (sink, stream) = ws.split();
                    let (tx, reads) = mpsc::channel(READ_AHEAD);
                    io.socket = Some(Socket {
                        conn,
                        sink,
                        reads,
                        reader: reader(stream, tx),
                    });
                    task.with_link(|l| l.opened(conn, now));
                }
                Ok(Err(e)) => {
                    task.with_link(|l| l.closed(conn, now, format!("connect: {e}")));
                }
                Err(_) => {
                    task.with_link(|l| l.closed(conn, now, "connect: timed out".into()));
                }
            }
        }
        Output::Authenticate(conn) => {
            let sent = match (io.token.take(), io.socket.as_mut()) {
                (Some(token), Some(socket)) if socket.conn == conn => {
                    let auth = ClientFrame::Auth {
                        token: token.to_string(),
                    };
                    send_frame(&mut socket.sink, &auth).await
                }
                _ => Err("no token".into()),
            };
            if let Err(e) = sent {
                task.with_link(|l| l.closed(conn, task.now(), format!("auth: {e}")));
            }
        }
        Output::Online(_) => {
            // Announcements missed while offline: refetch keys and members on demand.
            session.forget_all_caches();
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
        Output::Send(frame) => {
            if let Some(socket) = io.socket.as_mut()
                && let Err(e) = send_frame(&mut socket.sink, &frame).await
            {
                let conn = socket.conn;
                task.with_link(|l| l.closed(conn, task.now(), format!("send: {e}")));
            }
        }
        Output::Close(conn) => {
            if io.socket.as_ref().is_some_and(|s| s.conn == conn)
                && let Some(socket) = io.socket.take()
            {
                close(socket).await;
            }
        }
        Output::State(LinkState::Online) => {
            session.emit(Event::Connection(Connection::Online)).await;
        }
        Output::State(LinkState::Offline {
            reason,
            retry_in_ms: Some(retry_in_ms),
        }) => {
            tracing::debug!(%reason, retry_in_ms, "live connection ended");
            session
                .emit(Event::Connection(Connection::Offline {
                    reason,
                    retry_in_ms,
                }))
                .await;
        }
        // The native SDK's events name no attempt under way, and a stopped
        // connection is the app's own doing.
        Output::State(LinkState::Connecting | LinkState::Offline { .. }) => {}
        Output::Acked { client_id, ack } => {
            if let Some(tx) = lock(&inner.acks).remove(&client_id) {
                let _ = tx.send(ack);
            }
        }
        Output::Receive(m) => {
            let (room_id, seq) = (m.room_id, m.seq);
            let settle = receive(task, m).await;
            task.with_link(|l| l.settle(room_id, seq, settle));
        }
        Output::RoomChanged { room_id, change } => {
            // The engine decides (`Rooms::room_changed`): the view is dropped
            // now, before the step's next message; then it looks at the new
            // member list (warning about anyone the owner did not sign) and,
            // as the owner, signs or re-posts the membership statement. In a
            // task of its own: posting waits for an ack this task reads.
            if lock(&session.inner.rooms).room_changed(room_id, change) {
                let s = session.detached();
                tokio::spawn(async move { maintain(&s, room_id).await });
            }
        }
        Output::KeysChanged(user_id) => {
            // Dropped now, before the step's next message is checked against
            // it; refetched in the background (and on demand meanwhile).
            session.forget_devices(user_id);
            let s = session.detached();
            tokio::spawn(async move {
                if let Err(e) = s.refresh_devices(user_id).await {
                    tracing::debug!(error = %e, "refetching keys failed; retried on next use");
                    s.forget_devices(user_id);
                }
            });
        }
        Output::Store(changes) => {
            let store = inner.store.clone();
            let applied = match tokio::task::spawn_blocking(move || store.apply(&changes)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("store worker: {e}")),
            };
            task.with_link(|l| l.stored(task.now(), applied));
        }
        Output::Show(frame) => {
            if let Some(event) = shown(frame) {
                session.emit(event).await;
            }
        }
        Output::App(event) => session.emit(event).await,
        Output::LoggedOut => session.emit(Event::LoggedOut).await,
    }
}

/// The app's event for a frame the link shows.
fn shown(frame: ServerFrame) -> Option<Event> {
    Some(match frame {
        ServerFrame::MessageDeleted { room_id, id, seq } => {
            Event::MessageDeleted { room_id, id, seq }
        }
        ServerFrame::Typing {
            room_id,
            user_id,
            active,
        } => Event::Typing {
            room_id,
            user_id,
            active,
        },
        ServerFrame::Presence { user_id, online } => Event::Presence { user_id, online },
        ServerFrame::Receipt {
            room_id,
            user_id,
            kind,
            seq,
        } => Event::Receipt {
            room_id,
            user_id,
            kind,
            seq,
        },
        ServerFrame::Room { room_id, change } => Event::Room { room_id, change },
        ServerFrame::KeysChanged { user_id } => Event::DevicesChanged { user_id },
        ServerFrame::Invitation {
            invitation_id,
            room_id,
            change,
        } => Event::Invitation {
            invitation_id,
            room_id,
            change,
        },
        ServerFrame::Error { code, detail, .. } => Event::RelayError { code, detail },
        ServerFrame::Ready { .. }
        | ServerFrame::Ack { .. }
        | ServerFrame::Message { .. }
        | ServerFrame::HistoryStart { .. }
        | ServerFrame::Pong => return None,
    })
}

/// After a room event the engine wants looked at: the room's view fetched
/// fresh, then the addressing's `Maintain` (the owner signs or forwards its
/// statement; anyone the owner did not sign is warned about). Best effort:
/// done again on next use.
async fn maintain(session: &Session, room_id: Uuid) {
    // (The addressing fetches the view the room event dropped.)
    let result = session
        .address(room_id, sotto_engine::address::Purpose::Maintain)
        .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, %room_id, "room check failed; done again on next use");
    }
}

/// Opens the room's messages this device has not handled yet (after its stored
/// cursor, up to the policy's read-ahead limit) so the membership statements among them reach the engine
/// before it decides whom to warn about or seal to: a statement naming a new
/// member may still be queued behind the live stream. Content messages are
/// left to the live stream (the engine's [`Opening::statements_only`]).
/// Best effort: a failure leaves the decision to what the engine holds.
pub(crate) async fn catch_up_statements(session: &Session, room_id: Uuid) {
    let inner = &session.inner;
    let after = match inner.store.cursors() {
        Ok(c) => c.get(&room_id).copied().unwrap_or(0),
        Err(_) => return,
    };
    let query = sotto_core::api::MessageListQuery {
        after_seq: Some(after),
        limit: Some(sotto_engine::policy::READ_AHEAD_LIMIT),
    };
    let Ok(page) = inner.client.list_messages(room_id, &query).await else {
        return;
    };
    for m in page.items {
        // (A deleted message has none. This device's own: the engine skips them.)
        let Some(envelope) = m.envelope else { continue };
        let incoming = Incoming {
            room_id,
            id: m.id,
            seq: m.seq,
            sender_id: m.sender_id,
            device_id: m.device_id,
            created_at: m.created_at,
            envelope: envelope.0,
        };
        let mut op = Opening::statements_only(incoming);
        if let Outcome::Control(_) = session.open_message(&mut op, |_, _| Ok(Seen::New)).await {
            let _ = session.save_rooms();
        }
    }
}

/// Receives the room's next message (the link said [`Output::Receive`]):
/// the engine's open pipeline, with the feed's replay verdict; says how it
/// settles (with its sealed history item and the event to show once the step
/// is stored).
async fn receive(task: &Task, m: Incoming) -> Settle<Event> {
    match receive_opened(task, m).await {
        Ok((kept, event)) => Settle::Handled { kept, event },
        Err(reason) => Settle::Later(reason),
    }
}

type Handled = (Option<Vec<u8>>, Option<Event>);

async fn receive_opened(task: &Task, m: Incoming) -> Result<Handled, String> {
    let session = &task.session;
    let inner = &session.inner;
    let (room_id, seq, sender_id) = (m.room_id, m.seq, m.sender_id);
    let mut op = Opening::new(m);
    let seen = |sender, client_id| {
        let stored = inner
            .store
            .seen_at(sender, client_id)
            .map_err(|e| format!("store: {e}"))?;
        // (No link: this task was replaced; its step is never stored.)
        Ok(task
            .with_link(|l| l.seen(sender, client_id, room_id, seq, stored))
            .unwrap_or(Seen::New))
    };
    match session.open_message(&mut op, seen).await {
        Outcome::Message(item) => {
            let message = ReceivedMessage::from(*item);
            // Kept in the same step as the cursor: stored before the app hears of it.
            let sealed = session
                .seal_kept(&message, &mut *lock(&inner.nonces))
                .map_err(|e| format!("store: {e}"))?;
            Ok((Some(sealed), Some(Event::Message(message))))
        }
        Outcome::Control(warning) => {
            session.save_rooms().map_err(|e| format!("store: {e}"))?;
            Ok((None, warning.map(Event::Membership)))
        }
        Outcome::Undecryptable(reason) => Ok((
            None,
            Some(Event::Undecryptable {
                room_id,
                seq,
                sender_id,
                reason,
            }),
        )),
        Outcome::Again => Ok((None, None)),
        Outcome::Later(why) => Err(why),
    }
}
