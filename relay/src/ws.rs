//! Real time: `GET /api/v1/ws` (api.md "Real time"), the WebSocket gateway.
//!
//! One task per socket. The first frame must be `auth` within
//! [`AUTH_TIMEOUT_SECS`] (else close 4401); the socket then subscribes to its
//! user's events (`crate::events`) *before* answering `ready`, so live delivery
//! of every room starts at `ready` with nothing lost in between.
//!
//! Ordering and resume, per room and per socket: the socket remembers the next
//! `seq` it owes the client (`next`). A `message` event with that seq is sent;
//! one below it is a duplicate and dropped; one above it means a gap (events of
//! concurrent posts can be published out of order, or the room was named in
//! `resume`), so the socket holds the room's live messages and *fills* from the
//! database, a page at a time, until it has caught up, then releases what it
//! held, skipping what the fill already sent. `resume {cursors}` sets `next` to
//! each cursor + 1 and starts that fill. So on one socket every message of a
//! room arrives once, in `seq` order, live or replayed, with no gap at the seam.
//! A deleted message is replayed as `message_deleted` (its seq still counts).
//! A member's history starts at their join point: a fill that would start at or
//! below it first sends `history_start {room_id, seq}` (their `joined_seq`), so
//! the client moves its cursor there instead of seeing a gap it can never fill.
//!
//! Back-pressure: the subscription's queue is bounded (`--ws-queue`); a socket
//! that cannot keep up is marked lagged by the registry (publishing never
//! waits) and closed with 4408, and a send to a client that stops reading
//! times out and closes the same way. Replays are paged, and what a filling
//! room holds counts against the same bound.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sotto_core::api::ServerFrame;
use sotto_core::api::messages::Message;
use sotto_core::api::problem::codes;
use sotto_core::api::ws::{AUTH_TIMEOUT_SECS, ClientFrame, close_code};
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::events::{Event, RecvError, Subscription};
use crate::state::AppState;

/// Messages per page of a replay or gap fill.
const FILL_PAGE: u32 = 100;

/// How long after `ready` events wait for the client's first frame (a client
/// that resumes sends `resume` at once; see [`Conn::started`]).
const START_GRACE: Duration = Duration::from_millis(500);

/// Seconds a send to the client may take before the socket is closed as too slow.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest text frame accepted: the envelope limit in base64 plus the JSON
/// around it. Larger frames close the socket with 1009.
fn frame_limit(state: &AppState) -> usize {
    state.config.max_message_bytes.div_ceil(3) * 4 + 4096
}

#[utoipa::path(get, path = "/api/v1/ws", tag = "realtime",
    responses(
        (status = 101, description = "switching to the WebSocket protocol: frames as in `sotto_core::api::ws` (first `auth` within 10 s, then `ready`)"),
        (status = 400, description = "not a WebSocket upgrade request", body = sotto_core::api::problem::Problem),
        (status = 426, description = "upgrade required", body = sotto_core::api::problem::Problem)))]
/// Real time: a WebSocket carrying JSON frames (`ClientFrame`, `ServerFrame`).
/// Authenticate with the first frame `{"type":"auth","token":...}`; no
/// `Authorization` header is needed (browsers cannot set one on sockets).
pub async fn ws(
    State(state): State<AppState>,
    slot: Option<axum::Extension<crate::server::ConnectionSlot>>,
    budget: Option<axum::Extension<crate::server::ReadBudget>>,
    client: Option<axum::Extension<crate::server::ClientAddr>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Through a trusted proxy the connection layer could not count the client's
    // sockets (the peer is the proxy): count them here, per client address.
    let client_slot = match client {
        Some(axum::Extension(c)) if c.via_proxy => {
            match state
                .ws_clients
                .try_acquire(c.ip, state.config.max_connections_per_ip)
            {
                Some(s) => Some(s),
                None => {
                    metrics::counter!("sotto_connections_refused_total", "reason" => "per_ip")
                        .increment(1);
                    return ApiError::rate_limited(Duration::from_secs(5)).into_response();
                }
            }
        }
        _ => None,
    };
    let limit = frame_limit(&state);
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        // Small buffers: an idle socket should cost little (they grow when used).
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            // The connection keeps its place in the per-IP count while it lives.
            let _slot = slot;
            let _client_slot = client_slot;
            // Until `auth` is accepted, at most this much may be read.
            let budget = budget.map(|axum::Extension(b)| b);
            if let Some(b) = &budget {
                b.limit(crate::server::PREAUTH_BYTES);
            }
            run(state, socket, budget).await;
        })
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ws))
}

struct Gauge(&'static str);

impl Gauge {
    fn up(name: &'static str) -> Self {
        metrics::gauge!(name).increment(1.0);
        Self(name)
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

fn count_frame(direction: &'static str, kind: &'static str) {
    metrics::counter!("sotto_ws_frames_total", "direction" => direction, "type" => kind)
        .increment(1);
}

fn client_kind(f: &ClientFrame) -> &'static str {
    match f {
        ClientFrame::Auth { .. } => "auth",
        ClientFrame::Send { .. } => "send",
        ClientFrame::Typing { .. } => "typing",
        ClientFrame::Receipt { .. } => "receipt",
        ClientFrame::Resume { .. } => "resume",
        ClientFrame::Ping => "ping",
    }
}

fn server_kind(f: &ServerFrame) -> &'static str {
    match f {
        ServerFrame::Ready { .. } => "ready",
        ServerFrame::Ack { .. } => "ack",
        ServerFrame::Message { .. } => "message",
        ServerFrame::Typing { .. } => "typing",
        ServerFrame::Presence { .. } => "presence",
        ServerFrame::Receipt { .. } => "receipt",
        ServerFrame::Room { .. } => "room",
        ServerFrame::MessageDeleted { .. } => "message_deleted",
        ServerFrame::HistoryStart { .. } => "history_start",
        ServerFrame::KeysChanged { .. } => "keys_changed",
        ServerFrame::Error { .. } => "error",
        ServerFrame::Invitation { .. } => "invitation",
        ServerFrame::Pong => "pong",
    }
}

/// Why a socket ends.
enum End {
    /// The client closed or the connection broke.
    Gone,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        socket.send(WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))),
    )
    .await;
}

/// The `auth` frame: the authenticated user, or why not.
async fn authenticate(state: &AppState, socket: &mut WebSocket) -> Result<AuthUser, End> {
    let deadline = Duration::from_secs(AUTH_TIMEOUT_SECS);
    let refused = End::Close(close_code::AUTH_TIMEOUT_OR_FAILED, "authentication failed");
    let text = match tokio::time::timeout(deadline, socket.recv()).await {
        Err(_) => {
            return Err(End::Close(
                close_code::AUTH_TIMEOUT_OR_FAILED,
                "no auth frame in time",
            ));
        }
        Ok(None | Some(Err(_))) => return Err(End::Gone),
        Ok(Some(Ok(WsMessage::Text(t)))) => t,
        Ok(Some(Ok(WsMessage::Close(_)))) => return Err(End::Gone),
        Ok(Some(Ok(_))) => return Err(refused),
    };
    count_frame("in", "auth");
    let Ok(ClientFrame::Auth { token }) = ClientFrame::from_json_str(&text) else {
        return Err(refused);
    };
    crate::auth::authenticate(&state.jwt, &state.db, &token)
        .await
        .map_err(|_| refused)
}

async fn run(state: AppState, mut socket: WebSocket, budget: Option<crate::server::ReadBudget>) {
    let _sockets = Gauge::up("sotto_ws_connections");
    let user = match Box::pin(authenticate(&state, &mut socket)).await {
        Ok(u) => u,
        Err(End::Close(code, reason)) => return close(&mut socket, code, reason).await,
        Err(End::Gone) => return,
    };
    if let Some(b) = &budget {
        b.lift();
    }
    let _online = Gauge::up("sotto_ws_authenticated");
    let sub = state
        .events
        .subscribe(user.id(), state.config.ws_queue as usize);
    // Where each room's live stream starts: after its latest message now (the
    // subscription exists already, so nothing after this read is missed).
    let rooms = match Box::pin(crate::store::membership::last_seqs(&state.db, user.id())).await {
        Ok(rooms) => rooms,
        Err(_) => return close(&mut socket, 1011, "the database is unavailable").await,
    };
    let came_online = state.presence.connected(user.id());
    let mut conn = Conn::new(&state, user, sub);
    for (room, last, _joined) in rooms {
        let next = u64::try_from(last).unwrap_or(0).saturating_add(1);
        conn.rooms.insert(
            room,
            RoomStream {
                next: Some(next),
                ..RoomStream::default()
            },
        );
    }
    let end = conn.serve(&mut socket, came_online).await;
    drop(conn);
    state.presence.drop_session_check(user.id());
    if let Some(generation) = state.presence.disconnected(user.id()) {
        schedule_offline(state.clone(), user.id(), generation);
    }
    match end {
        End::Close(code, reason) => {
            if code == close_code::SLOW_CONSUMER {
                metrics::counter!("sotto_ws_slow_consumer_closes_total").increment(1);
            }
            close(&mut socket, code, reason).await;
        }
        End::Gone => {}
    }
}

/// Announces `user` offline to their peers after the debounce, unless a socket
/// of theirs came back meanwhile.
fn schedule_offline(state: AppState, user: Uuid, generation: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(state.config.ws_presence_debounce)).await;
        if state.presence.settle_offline(user, generation) {
            announce_presence(&state, user, false).await;
        }
    });
}

async fn announce_presence(state: &AppState, user: Uuid, online: bool) {
    if !state.config.ws_presence || !state.events.has_subscribers() {
        return;
    }
    match crate::store::membership::presence_peers_of(&state.db, user).await {
        Ok(peers) => state.events.publish(
            &peers,
            ServerFrame::Presence {
                user_id: user,
                online,
            },
        ),
        Err(e) => tracing::warn!(%user, code = e.code, "cannot announce presence"),
    }
}

/// Sends of one socket being stored at most at once (more wait, which stops
/// reading that socket's frames: back-pressure on the client).
const SENDS_IN_FLIGHT: usize = 32;

type PostResult = (Uuid, Result<crate::messages::Posted, ApiError>);

/// A socket's posts in progress and where their results come back.
struct Posts {
    slots: Arc<tokio::sync::Semaphore>,
    tx: tokio::sync::mpsc::Sender<PostResult>,
    rx: tokio::sync::mpsc::Receiver<PostResult>,
}

impl Posts {
    fn new() -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(SENDS_IN_FLIGHT);
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(SENDS_IN_FLIGHT)),
            tx,
            rx,
        }
    }

    async fn next(posts: &mut Option<Posts>) -> Option<PostResult> {
        match posts {
            Some(p) => p.rx.recv().await,
            None => std::future::pending().await,
        }
    }
}

/// Per-room delivery state of one socket (see the module docs).
#[derive(Default)]
struct RoomStream {
    /// The next seq owed to the client: after the room's latest message when
    /// the socket authenticated, or after a `resume` cursor; `None` for a room
    /// joined since (its first event fills from where the user joined).
    next: Option<u64>,
    /// Live messages held while the room fills from the database.
    held: Vec<Arc<Event>>,
    filling: bool,
}

struct Conn<'a> {
    state: &'a AppState,
    user: AuthUser,
    sub: Subscription,
    rooms: HashMap<Uuid, RoomStream>,
    /// Frames held over all filling rooms (bounded by the queue size).
    held: usize,
    frame_rate: DefaultDirectRateLimiter,
    /// Database reads of replays and gap fills (`--ws-replay-rate`).
    replay_rate: DefaultDirectRateLimiter,
    last_heard: Instant,
    /// Events taken off the queue during a fill, to deliver after it, in order.
    pending: std::collections::VecDeque<Arc<Event>>,
    /// This socket's posts in progress (made on its first `send`).
    posts: Option<Posts>,
    /// Whether events flow yet: not before the client's first frame after
    /// `ready` (or [`START_GRACE`]), so that a `resume` sent at once takes effect
    /// before any live message of its rooms is sent.
    started: bool,
}

impl<'a> Conn<'a> {
    fn new(state: &'a AppState, user: AuthUser, sub: Subscription) -> Self {
        let rate = NonZeroU32::new(state.config.ws_frame_rate).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Self {
            state,
            user,
            sub,
            rooms: HashMap::new(),
            held: 0,
            frame_rate: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            replay_rate: {
                let r = NonZeroU32::new(state.config.ws_replay_rate).unwrap_or(NonZeroU32::MIN);
                let b = r.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
                RateLimiter::direct(Quota::per_second(r).allow_burst(b))
            },
            last_heard: Instant::now(),
            pending: std::collections::VecDeque::new(),
            posts: None,
            started: false,
        }
    }

    async fn send(&mut self, socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), End> {
        let text =
            serde_json::to_string(frame).map_err(|_| End::Close(1011, "cannot encode a frame"))?;
        self.send_text(socket, frame, text.into()).await
    }

    /// Sends a published event, in the JSON text its other sockets share.
    async fn send_event(&mut self, socket: &mut WebSocket, event: &Event) -> Result<(), End> {
        let text = event
            .text()
            .ok_or(End::Close(1011, "cannot encode a frame"))?;
        self.send_text(socket, event, text).await
    }

    async fn send_text(
        &mut self,
        socket: &mut WebSocket,
        frame: &ServerFrame,
        text: axum::extract::ws::Utf8Bytes,
    ) -> Result<(), End> {
        count_frame("out", server_kind(frame));
        match tokio::time::timeout(SEND_TIMEOUT, socket.send(WsMessage::Text(text))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Close(close_code::SLOW_CONSUMER, "too slow")),
        }
    }

    async fn error(
        &mut self,
        socket: &mut WebSocket,
        code: &str,
        detail: impl Into<String>,
        client_id: Option<Uuid>,
    ) -> Result<(), End> {
        self.error_retry(socket, code, detail, client_id, None)
            .await
    }

    async fn error_retry(
        &mut self,
        socket: &mut WebSocket,
        code: &str,
        detail: impl Into<String>,
        client_id: Option<Uuid>,
        retry_after_ms: Option<u64>,
    ) -> Result<(), End> {
        self.send(
            socket,
            &ServerFrame::Error {
                code: code.to_string(),
                detail: Some(detail.into()),
                client_id,
                retry_after_ms,
            },
        )
        .await
    }

    async fn api_error(
        &mut self,
        socket: &mut WebSocket,
        e: ApiError,
        client_id: Option<Uuid>,
    ) -> Result<(), End> {
        let detail = e.detail.clone().unwrap_or_else(|| e.code.replace('_', " "));
        let retry = e.retry_after_ms();
        self.error_retry(socket, e.code, detail, client_id, retry)
            .await
    }

    async fn serve(&mut self, socket: &mut WebSocket, came_online: bool) -> End {
        match self.serve_inner(socket, came_online).await {
            Ok(()) => End::Gone,
            Err(end) => end,
        }
    }

    /// (Database calls and other rarely taken paths are boxed, so that the
    /// state an idle socket's task keeps stays small.)
    async fn serve_inner(&mut self, socket: &mut WebSocket, came_online: bool) -> Result<(), End> {
        let me = self.user.id();
        // Watch for session changes from before `ready`; the first iteration
        // checks once, so a logout that raced the authentication is seen too.
        let mut session_check = self.state.presence.session_check(me);
        session_check.mark_changed();
        self.send(
            socket,
            &ServerFrame::Ready {
                user_id: me,
                device_id: None,
            },
        )
        .await?;
        if self.state.config.ws_presence {
            if came_online {
                Box::pin(announce_presence(self.state, me, true)).await;
            }
            // Who of the user's peers is online now (later changes arrive live).
            let peers = Box::pin(crate::store::membership::presence_peers_of(
                &self.state.db,
                me,
            ))
            .await
            .unwrap_or_default();
            for peer in peers {
                if self.state.presence.is_online(peer) {
                    self.send(
                        socket,
                        &ServerFrame::Presence {
                            user_id: peer,
                            online: true,
                        },
                    )
                    .await?;
                }
            }
        }
        let beat = Duration::from_secs(self.state.config.ws_heartbeat);
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        let start = tokio::time::Instant::now() + START_GRACE;
        loop {
            // Events taken off the queue during a fill go first, in order.
            if let Some(frame) = self.pending.pop_front() {
                self.on_event(socket, frame).await?;
                continue;
            }
            // A room that is filling goes on with its next page before anything
            // else is read, so a replay never waits on the client's next frame,
            // as fast as the socket's replay budget allows; while it waits for
            // the budget, the socket goes on reading and delivering (the
            // filling rooms' live messages are held, within the queue bound).
            let mut replay_at = None;
            if let Some(room) = self.filling_room() {
                match self.replay_rate.check() {
                    Ok(()) => {
                        Box::pin(self.fill_page(socket, room)).await?;
                        self.drain_events(socket)?;
                        continue;
                    }
                    Err(nu) => {
                        metrics::counter!("sotto_ws_replay_throttled_total").increment(1);
                        let wait = nu.wait_time_from(DefaultClock::default().now());
                        replay_at = Some(tokio::time::Instant::now() + wait);
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep_until(replay_at.unwrap_or_else(tokio::time::Instant::now)), if replay_at.is_some() => {}
                incoming = socket.recv() => {
                    match incoming {
                        None | Some(Err(_)) => return Err(self.read_failed(incoming)),
                        Some(Ok(msg)) => {
                            self.last_heard = Instant::now();
                            Box::pin(self.on_client(socket, msg)).await?;
                            self.started = true;
                        }
                    }
                }
                done = Posts::next(&mut self.posts) => {
                    if let Some((client_id, result)) = done {
                        self.answer_post(socket, client_id, result).await?;
                    }
                }
                _ = tokio::time::sleep_until(start), if !self.started => {
                    self.started = true;
                }
                event = self.sub.recv(), if self.started => {
                    match event {
                        Ok(frame) => self.on_event(socket, frame).await?,
                        Err(RecvError::Lagged) => return Err(End::Close(close_code::SLOW_CONSUMER, "too slow: resume")),
                        Err(RecvError::Closed) => return Err(End::Close(1012, "reconnect and resume")),
                    }
                }
                changed = session_check.changed() => {
                    if changed.is_ok() {
                        Box::pin(self.check_session()).await?;
                    }
                }
                _ = heartbeat.tick() => {
                    if self.last_heard.elapsed() > beat * 2 {
                        return Err(End::Close(1001, "no answer to pings"));
                    }
                    Box::pin(self.check_session()).await?;
                    if tokio::time::timeout(SEND_TIMEOUT, socket.send(WsMessage::Ping(Vec::new().into()))).await.is_err() {
                        return Err(End::Close(close_code::SLOW_CONSUMER, "too slow"));
                    }
                }
            }
        }
    }

    /// `ack` for a stored post, `error` (naming its `client_id`) for a refused one.
    async fn answer_post(
        &mut self,
        socket: &mut WebSocket,
        client_id: Uuid,
        result: Result<crate::messages::Posted, ApiError>,
    ) -> Result<(), End> {
        match result {
            Ok(posted) => {
                self.send(
                    socket,
                    &ServerFrame::Ack {
                        client_id,
                        id: posted.response.id,
                        seq: posted.response.seq,
                    },
                )
                .await
            }
            Err(e) => self.api_error(socket, e, Some(client_id)).await,
        }
    }

    /// The session must still be live (a logout, a password reset, the
    /// account's deletion end it): else close with 4401.
    async fn check_session(&self) -> Result<(), End> {
        let me = self.user.id();
        match crate::store::sessions::live_session_role(&self.state.db, self.user.session_id, me)
            .await
        {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(End::Close(
                close_code::AUTH_TIMEOUT_OR_FAILED,
                "the session has ended",
            )),
            // The database is briefly unavailable: check again later.
            Err(_) => Ok(()),
        }
    }

    fn read_failed(&self, incoming: Option<Result<WsMessage, axum::Error>>) -> End {
        match incoming {
            // A frame above the limit: "message too big".
            Some(Err(e))
                if {
                    let e = e.to_string().to_ascii_lowercase();
                    e.contains("too long") || e.contains("limit exceeded")
                } =>
            {
                End::Close(1009, "frame too large")
            }
            _ => End::Gone,
        }
    }

    /// Moves queued events into the filling rooms' holds (so the queue keeps
    /// room while a replay runs); anything else waits in the queue.
    fn drain_events(&mut self, _socket: &mut WebSocket) -> Result<(), End> {
        let cap = self.state.config.ws_queue as usize;
        let mut deferred = Vec::new();
        loop {
            match self.sub.try_recv() {
                Ok(Some(frame)) => {
                    if let ServerFrame::Message { room_id, .. } = &**frame
                        && let Some(stream) = self.rooms.get_mut(room_id)
                        && stream.filling
                    {
                        stream.held.push(frame);
                        self.held += 1;
                        if self.held > cap {
                            return Err(End::Close(close_code::SLOW_CONSUMER, "too slow: resume"));
                        }
                        continue;
                    }
                    deferred.push(frame);
                    if deferred.len() >= 64 {
                        break;
                    }
                }
                Ok(None) => break,
                Err(RecvError::Lagged) => {
                    return Err(End::Close(close_code::SLOW_CONSUMER, "too slow: resume"));
                }
                Err(RecvError::Closed) => {
                    return Err(End::Close(1001, "the relay is shutting down"));
                }
            }
        }
        // Other events are delivered after the current page, in order.
        self.pending.extend(deferred);
        if self.held + self.pending.len() > cap {
            return Err(End::Close(close_code::SLOW_CONSUMER, "too slow: resume"));
        }
        Ok(())
    }

    fn filling_room(&self) -> Option<Uuid> {
        self.rooms
            .iter()
            .find(|(_, s)| s.filling)
            .map(|(room, _)| *room)
    }

    async fn on_event(&mut self, socket: &mut WebSocket, frame: Arc<Event>) -> Result<(), End> {
        match &**frame {
            ServerFrame::Message { room_id, seq, .. } => {
                let (room, seq) = (*room_id, *seq);
                self.on_message(socket, room, seq, frame).await
            }
            _ => self.send_event(socket, &frame).await,
        }
    }

    /// A live message of `room` with `seq`: sent, dropped as a duplicate, or held
    /// while the room fills (see the module docs).
    async fn on_message(
        &mut self,
        socket: &mut WebSocket,
        room: Uuid,
        seq: u64,
        frame: Arc<Event>,
    ) -> Result<(), End> {
        let cap = self.state.config.ws_queue as usize;
        let stream = self.rooms.entry(room).or_default();
        let send = if stream.filling {
            stream.held.push(frame.clone());
            self.held += 1;
            false
        } else {
            match *stream.next.get_or_insert(1) {
                n if seq < n => false,
                n if seq > n => {
                    // A gap: fill it from the database, holding this one.
                    stream.filling = true;
                    stream.held.push(frame.clone());
                    self.held += 1;
                    false
                }
                _ => {
                    stream.next = Some(seq + 1);
                    true
                }
            }
        };
        if self.held > cap {
            return Err(End::Close(close_code::SLOW_CONSUMER, "too slow: resume"));
        }
        if send {
            self.send_event(socket, &frame).await?;
        }
        Ok(())
    }

    /// Sends the next page of `room` from the database; after the last page,
    /// releases what the room held.
    async fn fill_page(&mut self, socket: &mut WebSocket, room: Uuid) -> Result<(), End> {
        let me = self.user.id();
        let next = self
            .rooms
            .get(&room)
            .and_then(|s| s.next)
            .unwrap_or(1)
            .max(1);
        let mut joined = None;
        let page = match crate::membership::require_member(&self.state.db, room, me).await {
            Ok(m) => {
                joined = u64::try_from(m.joined_seq).ok();
                crate::store::messages::page_after(
                    &self.state.db,
                    room,
                    m.joined_seq,
                    next - 1,
                    FILL_PAGE,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                // Not (or no longer) a member, or the database failed: stop
                // filling this room and say so.
                if let Some(stream) = self.rooms.remove(&room) {
                    self.held -= stream.held.len();
                }
                let detail = format!("room {room}: {}", e.detail.clone().unwrap_or_default());
                return self.error(socket, e.code, detail, None).await;
            }
        };
        let mut next = next;
        if let Some(joined) = joined.filter(|j| *j >= next) {
            // The member's history starts after their join point: say so, so the
            // client does not take the first visible seq for a gap.
            self.send(
                socket,
                &ServerFrame::HistoryStart {
                    room_id: room,
                    seq: joined,
                },
            )
            .await?;
            next = joined + 1;
        }
        let mut sent_to = next;
        for m in &page.items {
            self.send(socket, &replayed(m)).await?;
            sent_to = m.seq + 1;
        }
        metrics::counter!("sotto_ws_replayed_total").increment(page.items.len() as u64);
        let Some(stream) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        stream.next = Some(sent_to.max(next));
        if page.next_cursor.is_some() {
            return Ok(());
        }
        // Caught up with the database: release the held live messages in seq
        // order (duplicates of what the fill sent are dropped, a later gap fills
        // again).
        stream.filling = false;
        let mut held = std::mem::take(&mut stream.held);
        self.held -= held.len();
        held.sort_by_key(|f| match &***f {
            ServerFrame::Message { seq, .. } => *seq,
            _ => 0,
        });
        for frame in held {
            if let ServerFrame::Message { seq, .. } = &**frame {
                let seq = *seq;
                self.on_message(socket, room, seq, frame).await?;
            }
        }
        Ok(())
    }

    async fn on_client(&mut self, socket: &mut WebSocket, msg: WsMessage) -> Result<(), End> {
        let text = match msg {
            WsMessage::Text(t) => t,
            WsMessage::Binary(_) => {
                return self
                    .error(socket, codes::INVALID_FRAME, "frames are JSON text", None)
                    .await;
            }
            WsMessage::Close(_) => return Err(End::Gone),
            WsMessage::Ping(_) | WsMessage::Pong(_) => return Ok(()),
        };
        if let Err(nu) = self.frame_rate.check() {
            metrics::counter!("sotto_ws_rate_limited_total").increment(1);
            // A refused `send` names its `client_id` (read cheaply, the frame
            // unchecked), so the client knows which message to send again.
            let wait = nu.wait_time_from(DefaultClock::default().now());
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            return self
                .error_retry(
                    socket,
                    codes::RATE_LIMITED,
                    "too many frames; slow down",
                    ClientFrame::probe_send(&text),
                    Some(ms),
                )
                .await;
        }
        // The one parser of client frames (fuzzed by `fuzz/`, target `ws_frame`).
        let frame = match ClientFrame::from_json_str(&text) {
            Ok(f) => f,
            Err(e) => {
                count_frame("in", "invalid");
                return self
                    .error(
                        socket,
                        codes::INVALID_FRAME,
                        e.to_string(),
                        ClientFrame::probe_send(&text),
                    )
                    .await;
            }
        };
        count_frame("in", client_kind(&frame));
        let me = self.user.id();
        match frame {
            ClientFrame::Auth { .. } => {
                self.error(socket, codes::INVALID_FRAME, "already authenticated", None)
                    .await
            }
            ClientFrame::Ping => self.send(socket, &ServerFrame::Pong).await,
            ClientFrame::Send {
                room_id,
                client_id,
                envelope,
            } => {
                // Stored off this task, so the socket keeps delivering while its
                // own posts wait for the writer; the answer comes back through
                // `posts` (at most SENDS_IN_FLIGHT at a time per socket).
                let permit = loop {
                    let posts = self.posts.get_or_insert_with(Posts::new);
                    if let Ok(p) = Arc::clone(&posts.slots).try_acquire_owned() {
                        break p;
                    }
                    // All slots busy: answer finished posts while waiting (a
                    // post frees its slot before it hands in its answer).
                    if let Some((cid, result)) = posts.rx.recv().await {
                        self.answer_post(socket, cid, result).await?;
                    }
                };
                let Some(posts) = self.posts.as_ref() else {
                    return Ok(());
                };
                let (state, tx) = (self.state.clone(), posts.tx.clone());
                tokio::spawn(async move {
                    let result =
                        crate::messages::post_envelope(&state, me, room_id, client_id, envelope.0)
                            .await;
                    drop(permit);
                    let _ = tx.send((client_id, result)).await;
                });
                Ok(())
            }
            ClientFrame::Receipt { room_id, kind, seq } => {
                match crate::messages::record_receipt(self.state, me, room_id, kind, seq).await {
                    Ok(_) => Ok(()),
                    Err(e) => self.api_error(socket, e, None).await,
                }
            }
            ClientFrame::Typing { room_id, active } => {
                if !self.state.config.ws_typing {
                    return self
                        .error(
                            socket,
                            codes::INVALID_FRAME,
                            "typing indicators are off on this relay",
                            None,
                        )
                        .await;
                }
                if self.state.presence.typing.check_key(&me).is_err() {
                    return self
                        .error(socket, codes::RATE_LIMITED, "too many typing frames", None)
                        .await;
                }
                match crate::store::membership::typing_audience(&self.state.db, room_id, me).await {
                    Ok(Some(others)) => {
                        self.state.events.publish(
                            &others,
                            ServerFrame::Typing {
                                room_id,
                                user_id: me,
                                active,
                            },
                        );
                        Ok(())
                    }
                    Ok(None) => {
                        self.api_error(socket, crate::membership::not_a_member(), None)
                            .await
                    }
                    Err(e) => self.api_error(socket, e, None).await,
                }
            }
            ClientFrame::Resume { cursors } => Box::pin(self.resume(socket, cursors)).await,
        }
    }

    /// `resume`: each named room of the user's replays after its cursor. One
    /// read for the whole frame (the user's rooms with their latest `seq` and
    /// the user's join point); rooms with nothing after the cursor cost no
    /// more, the others fill page by page at `--ws-replay-rate` (see
    /// [`Conn::serve_inner`]). Rooms the user is not in are named in one error.
    async fn resume(
        &mut self,
        socket: &mut WebSocket,
        cursors: std::collections::BTreeMap<Uuid, u64>,
    ) -> Result<(), End> {
        let me = self.user.id();
        let mine: HashMap<Uuid, (u64, u64)> =
            match crate::store::membership::last_seqs(&self.state.db, me).await {
                Ok(rows) => rows
                    .into_iter()
                    .map(|(room, last, joined)| {
                        (
                            room,
                            (
                                u64::try_from(last).unwrap_or(0),
                                u64::try_from(joined).unwrap_or(0),
                            ),
                        )
                    })
                    .collect(),
                Err(e) => return self.api_error(socket, e, None).await,
            };
        let mut unknown = 0usize;
        for (room, cursor) in cursors {
            let Some(&(last, joined)) = mine.get(&room) else {
                unknown += 1;
                continue;
            };
            let stream = self.rooms.entry(room).or_default();
            stream.next = Some(cursor.saturating_add(1));
            // Nothing to send: no message after the cursor, and no
            // `history_start` owed (the cursor is at or past the join point).
            stream.filling = !(cursor >= last && cursor >= joined);
        }
        if unknown > 0 {
            return self
                .error(
                    socket,
                    codes::NOT_A_MEMBER,
                    format!("{unknown} rooms of `resume` are not yours (or do not exist); they are not replayed"),
                    None,
                )
                .await;
        }
        Ok(())
    }
}

/// A stored message as the frame a replay sends: `message`, or
/// `message_deleted` for a tombstone (its seq still counts).
fn replayed(m: &Message) -> ServerFrame {
    match &m.envelope {
        Some(envelope) if !m.deleted => ServerFrame::Message {
            room_id: m.room_id,
            id: m.id,
            seq: m.seq,
            sender_id: m.sender_id,
            device_id: m.device_id,
            envelope: envelope.clone(),
            created_at: m.created_at.clone(),
        },
        _ => ServerFrame::MessageDeleted {
            room_id: m.room_id,
            id: m.id,
            seq: m.seq,
        },
    }
}
