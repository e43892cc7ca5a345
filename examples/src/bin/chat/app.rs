//! The chat's state, and how it reacts to keys, SDK events and the results of
//! the calls it started in the background.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use sotto_client::sotto_core::api::{
    Contact, Invitation, InvitationChange, PublicUser, ReceiptKind, RoomChange, RoomDetails,
    RoomKind,
};
use sotto_client::sotto_core::attachment::AttachmentPointer;
use sotto_client::{
    Connection, Content, Event, EventStream, ReceivedMessage, SenderTrust, Sent, Session,
    UndecryptableReason,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use uuid::Uuid;

use crate::input::Input;
use crate::{commands, ui};

/// Messages of local history shown per room at start (older ones stay in the store).
const HISTORY_SHOWN: u32 = 200;
/// Stop showing a peer as typing after this long without news.
const TYPING_SHOWN_FOR: Duration = Duration::from_secs(6);
/// Say "not typing" after this long without a keystroke.
const TYPING_IDLE: Duration = Duration::from_secs(3);
/// Repeat "typing" this often while typing goes on.
const TYPING_REPEAT: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    /// Received from someone (or from another device of mine).
    Received,
    Sending,
    /// Offline: waiting in the SDK's outbox, sent when the connection is back.
    Queued,
    Sent,
    Failed,
}

#[derive(Debug, Clone)]
pub enum LineBody {
    Msg {
        sender: Uuid,
        own: bool,
        text: String,
        /// The number of a received file (for /save).
        file: Option<usize>,
        seq: Option<u64>,
        client_id: Option<Uuid>,
        /// Id of a message sent from here (to match its result).
        local: Option<u64>,
        state: SendState,
        trust: Option<SenderTrust>,
    },
    System {
        text: String,
        level: Level,
    },
    /// Messages sealed before this device existed (cannot be read here).
    Hidden {
        count: u64,
    },
}

#[derive(Debug, Clone)]
pub struct ChatLine {
    pub at_ms: u64,
    pub body: LineBody,
}

impl ChatLine {
    pub fn system(text: impl Into<String>, level: Level) -> Self {
        Self {
            at_ms: now_ms(),
            body: LineBody::System {
                text: text.into(),
                level,
            },
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Debug)]
pub struct RoomView {
    pub id: Uuid,
    pub name: String,
    pub kind: RoomKind,
    pub members: Vec<Uuid>,
    /// Invited, not answered yet (not members: nothing is sealed for them).
    pub invited: Vec<Uuid>,
    pub unread: u64,
    pub last_seq: u64,
    /// Highest seq this device sent a read receipt for.
    pub read_sent: u64,
    pub lines: Vec<ChatLine>,
    /// Who is typing, until when.
    pub typing: HashMap<Uuid, Instant>,
    /// Other members' delivered and read marks.
    pub delivered: HashMap<Uuid, u64>,
    pub read: HashMap<Uuid, u64>,
    /// Rows scrolled up from the bottom.
    pub scroll: usize,
}

impl RoomView {
    fn new(id: Uuid) -> Self {
        Self {
            id,
            name: String::new(),
            kind: RoomKind::Group,
            members: Vec::new(),
            invited: Vec::new(),
            unread: 0,
            last_seq: 0,
            read_sent: 0,
            lines: Vec::new(),
            typing: HashMap::new(),
            delivered: HashMap::new(),
            read: HashMap::new(),
            scroll: 0,
        }
    }

    /// The other member of a direct room.
    pub fn peer(&self, me: Uuid) -> Option<Uuid> {
        if self.kind == RoomKind::Direct {
            self.members.iter().copied().find(|m| *m != me)
        } else {
            None
        }
    }

    /// The mark of one of my messages: read by someone else, delivered, or just stored.
    pub fn mark(&self, seq: u64) -> SendMark {
        if self.read.values().any(|s| *s >= seq) {
            SendMark::Read
        } else if self.delivered.values().any(|s| *s >= seq) {
            SendMark::Delivered
        } else {
            SendMark::Stored
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMark {
    Stored,
    Delivered,
    Read,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    Connecting,
    Online,
    Offline { reason: String, retry_at: Instant },
}

#[derive(Debug)]
pub struct Transfer {
    pub id: u64,
    pub label: String,
    pub upload: bool,
    pub done: u64,
    pub total: u64,
    pub finished: Option<(Instant, bool)>,
}

/// A question the input line is answering instead of sending a message.
#[derive(Debug)]
pub struct Prompt {
    pub label: String,
    pub masked: bool,
    pub action: PromptAction,
}

#[derive(Debug)]
pub enum PromptAction {
    BackupPassphrase {
        file: String,
    },
    BackupRepeat {
        file: String,
        first: zeroize::Zeroizing<String>,
    },
}

/// Where command output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Home,
    Room(Uuid),
}

/// Results of background calls, back on the UI task.
#[derive(Debug)]
pub enum AppMsg {
    Status(String, Level),
    /// A membership warning, with the room's details to name the users in it.
    MembershipNamed(Option<RoomDetails>, sotto_client::sotto_engine::Warning),
    Lines(Target, Vec<(String, Level)>),
    RoomLoaded {
        details: RoomDetails,
        select: bool,
    },
    RoomGone(Uuid),
    Contacts(Vec<Contact>),
    Users(Vec<PublicUser>),
    SendResult {
        room: Uuid,
        local: u64,
        result: Result<Sent, String>,
        changed: Vec<Uuid>,
        /// The send failed but the message waits in the outbox under this id.
        queued: Option<Uuid>,
    },
    Progress {
        id: u64,
        done: u64,
        total: u64,
    },
    TransferDone {
        id: u64,
        target: Target,
        result: Result<String, String>,
    },
    Accepted(Uuid),
    /// The pending invitations, fresh from the relay; `announce` says the new
    /// ones on the home screen.
    Invitations {
        list: Vec<Invitation>,
        announce: bool,
    },
}

struct TypingOut {
    room: Uuid,
    last_sent: Instant,
    last_key: Instant,
}

pub struct App {
    pub session: Session,
    pub me: Uuid,
    pub my_name: String,
    pub rooms: Vec<RoomView>,
    /// 0 is home; `i` is `rooms[i - 1]`.
    pub selected: usize,
    pub home: Vec<ChatLine>,
    pub home_scroll: usize,
    pub users: HashMap<Uuid, String>,
    pub presence: HashMap<Uuid, bool>,
    pub contacts: Vec<Contact>,
    /// Invitations to rooms this user is not in (`/invites`, `/join`, `/decline`).
    pub invitations: Vec<Invitation>,
    /// Users whose identity key changed and was not accepted (and whether the
    /// old one was verified).
    pub alerts: BTreeMap<Uuid, bool>,
    pub input: Input,
    history: Vec<String>,
    history_pos: Option<usize>,
    pub prompt: Option<Prompt>,
    pub status: Option<(String, Level)>,
    status_at: Instant,
    pub connection: ConnState,
    pub transfers: Vec<Transfer>,
    next_transfer: u64,
    pub files: Vec<AttachmentPointer>,
    typing_out: Option<TypingOut>,
    next_local: u64,
    pub tx: UnboundedSender<AppMsg>,
    pub quit: bool,
    pub offset: time::UtcOffset,
    /// Rows of the message pane at the last draw (for paging).
    pub page_rows: usize,
}

impl App {
    fn new(session: Session, tx: UnboundedSender<AppMsg>, offset: time::UtcOffset) -> Self {
        let me = session.user_id();
        let my_name = session.user().username.clone();
        let mut users = HashMap::new();
        users.insert(me, my_name.clone());
        Self {
            session,
            me,
            my_name,
            rooms: Vec::new(),
            selected: 0,
            home: Vec::new(),
            home_scroll: 0,
            users,
            presence: HashMap::new(),
            contacts: Vec::new(),
            invitations: Vec::new(),
            alerts: BTreeMap::new(),
            input: Input::default(),
            history: Vec::new(),
            history_pos: None,
            prompt: None,
            status: None,
            status_at: Instant::now(),
            connection: ConnState::Connecting,
            transfers: Vec::new(),
            next_transfer: 1,
            files: Vec::new(),
            typing_out: None,
            next_local: 1,
            tx,
            quit: false,
            offset,
            page_rows: 10,
        }
    }

    // ---- Lookups -------------------------------------------------------------

    pub fn name_of(&self, user: Uuid) -> String {
        self.users.get(&user).cloned().unwrap_or_else(|| {
            let s = user.simple().to_string();
            format!("user-{}", s.get(..8).unwrap_or(&s))
        })
    }

    pub fn room_title(&self, room: &RoomView) -> String {
        match room.kind {
            RoomKind::Direct => room
                .peer(self.me)
                .or_else(|| room.invited.iter().copied().find(|u| *u != self.me))
                .map_or_else(|| "(direct)".into(), |p| self.name_of(p)),
            RoomKind::Group if room.name.is_empty() => "(loading…)".into(),
            RoomKind::Group => room.name.clone(),
        }
    }

    pub fn current_room(&self) -> Option<&RoomView> {
        self.selected.checked_sub(1).and_then(|i| self.rooms.get(i))
    }

    fn current_room_mut(&mut self) -> Option<&mut RoomView> {
        self.selected
            .checked_sub(1)
            .and_then(|i| self.rooms.get_mut(i))
    }

    pub fn current_target(&self) -> Target {
        self.current_room()
            .map_or(Target::Home, |r| Target::Room(r.id))
    }

    fn room_index(&self, id: Uuid) -> Option<usize> {
        self.rooms.iter().position(|r| r.id == id)
    }

    fn room_mut(&mut self, id: Uuid) -> Option<&mut RoomView> {
        self.rooms.iter_mut().find(|r| r.id == id)
    }

    /// The room, created empty (and its details fetched) if unknown.
    fn ensure_room(&mut self, id: Uuid) -> &mut RoomView {
        let i = match self.room_index(id) {
            Some(i) => i,
            None => {
                self.rooms.push(RoomView::new(id));
                self.load_room(id, false);
                self.rooms.len() - 1
            }
        };
        // In bounds: the room was just found or pushed.
        &mut self.rooms[i]
    }

    pub fn find_user(&self, name: &str) -> Option<Uuid> {
        let name = name.trim_start_matches('@');
        self.users
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(id, _)| *id)
    }

    // ---- Output --------------------------------------------------------------

    pub fn push_line(&mut self, target: Target, line: ChatLine) {
        match target {
            Target::Room(id) if self.room_index(id).is_some() => {
                if let Some(r) = self.room_mut(id) {
                    r.lines.push(line);
                }
            }
            _ => self.home.push(line),
        }
    }

    pub fn say(&mut self, target: Target, text: impl Into<String>, level: Level) {
        self.push_line(target, ChatLine::system(text, level));
    }

    pub fn status(&mut self, text: impl Into<String>, level: Level) {
        self.status = Some((text.into(), level));
        self.status_at = Instant::now();
    }

    // ---- Background calls ----------------------------------------------------

    pub fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = Option<AppMsg>> + Send + 'static,
    {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if let Some(m) = fut.await {
                let _ = tx.send(m);
            }
        });
    }

    pub fn load_room(&self, id: Uuid, select: bool) {
        let client = self.session.client().clone();
        self.spawn(async move {
            Some(match client.get_room(id).await {
                Ok(details) => AppMsg::RoomLoaded { details, select },
                Err(e) if e.status() == Some(404) || e.status() == Some(403) => {
                    AppMsg::RoomGone(id)
                }
                Err(e) => AppMsg::Status(format!("Cannot load a room: {e}"), Level::Error),
            })
        });
    }

    pub fn load_contacts(&self) {
        let client = self.session.client().clone();
        self.spawn(async move {
            Some(match client.list_contacts(&Default::default()).await {
                Ok(page) => AppMsg::Contacts(page.items),
                Err(e) => AppMsg::Status(format!("Cannot list contacts: {e}"), Level::Error),
            })
        });
    }

    /// Marks the room read up to its latest message, if not done yet.
    fn mark_read(&mut self, idx: usize) {
        let Some(room) = self.rooms.get_mut(idx) else {
            return;
        };
        room.unread = 0;
        if room.last_seq > room.read_sent {
            room.read_sent = room.last_seq;
            let (id, seq) = (room.id, room.last_seq);
            let session = self.session.clone();
            self.spawn(async move {
                session
                    .mark_read(id, seq)
                    .await
                    .err()
                    .map(|e| AppMsg::Status(format!("Read receipt not sent: {e}"), Level::Warn))
            });
        }
    }

    pub fn select(&mut self, view: usize) {
        let view = view.min(self.rooms.len());
        if view != self.selected {
            self.stop_typing();
        }
        self.selected = view;
        if let Some(i) = view.checked_sub(1) {
            self.mark_read(i);
        }
    }

    pub fn select_room(&mut self, id: Uuid) {
        if let Some(i) = self.room_index(id) {
            self.select(i + 1);
        }
    }

    // ---- Typing ----------------------------------------------------------------

    fn typing_activity(&mut self) {
        let Some(room) = self.current_room().map(|r| r.id) else {
            return;
        };
        let text = self.input.text();
        if self.prompt.is_some() || text.is_empty() || text.starts_with('/') {
            self.stop_typing();
            return;
        }
        let now = Instant::now();
        match &mut self.typing_out {
            Some(t) if t.room == room && t.last_sent.elapsed() < TYPING_REPEAT => t.last_key = now,
            _ => {
                self.session.set_typing(room, true);
                self.typing_out = Some(TypingOut {
                    room,
                    last_sent: now,
                    last_key: now,
                });
            }
        }
    }

    fn stop_typing(&mut self) {
        if let Some(t) = self.typing_out.take() {
            self.session.set_typing(t.room, false);
        }
    }

    // ---- Keys ------------------------------------------------------------------

    fn on_term(&mut self, ev: TermEvent) {
        match ev {
            TermEvent::Key(k) if k.kind != KeyEventKind::Release => self.on_key(k),
            TermEvent::Paste(s) => {
                self.input.insert_str(&s);
                self.typing_activity();
            }
            _ => {}
        }
    }

    fn scroll(&mut self, up: bool, rows: usize) {
        let s = match self.current_room_mut() {
            Some(r) => &mut r.scroll,
            None => &mut self.home_scroll,
        };
        *s = if up {
            s.saturating_add(rows)
        } else {
            s.saturating_sub(rows)
        };
    }

    fn on_key(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let views = self.rooms.len() + 1;
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('d') if ctrl && self.input.is_empty() => self.quit = true,
            KeyCode::Esc => {
                if self.prompt.take().is_some() {
                    self.input.take();
                    self.status("Cancelled.", Level::Info);
                } else {
                    self.quit = true;
                }
            }
            KeyCode::Tab => self.select((self.selected + 1) % views),
            KeyCode::Char('n') if ctrl => self.select((self.selected + 1) % views),
            KeyCode::BackTab => self.select((self.selected + views - 1) % views),
            KeyCode::Char('p') if ctrl => self.select((self.selected + views - 1) % views),
            KeyCode::Char(c @ '0'..='9') if alt => self.select(c as usize - '0' as usize),
            KeyCode::PageUp => self.scroll(true, self.page_rows.saturating_sub(2).max(1)),
            KeyCode::PageDown => self.scroll(false, self.page_rows.saturating_sub(2).max(1)),
            KeyCode::Up if self.prompt.is_none() => self.history_move(true),
            KeyCode::Down if self.prompt.is_none() => self.history_move(false),
            KeyCode::Enter => self.submit(),
            code => {
                crate::start::edit(&mut self.input, code, key.modifiers);
                self.typing_activity();
            }
        }
    }

    fn history_move(&mut self, back: bool) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() - 1;
        let pos = match (self.history_pos, back) {
            (None, true) => Some(last),
            (None, false) => None,
            (Some(p), true) => Some(p.saturating_sub(1)),
            (Some(p), false) if p < last => Some(p + 1),
            (Some(_), false) => None,
        };
        self.history_pos = pos;
        let text = pos
            .and_then(|p| self.history.get(p))
            .cloned()
            .unwrap_or_default();
        self.input.set(&text);
    }

    fn submit(&mut self) {
        if let Some(prompt) = self.prompt.take() {
            let answer = zeroize::Zeroizing::new(self.input.take());
            commands::answer_prompt(self, prompt, answer);
            return;
        }
        let text = self.input.take();
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        self.history_pos = None;
        if self.history.last().map(String::as_str) != Some(text) {
            self.history.push(text.to_owned());
        }
        if let Some(rest) = text.strip_prefix("//") {
            // "//" sends a message that starts with "/".
            self.send_text(format!("/{rest}"));
        } else if text.starts_with('/') {
            self.stop_typing();
            commands::run(self, text);
        } else {
            self.send_text(text.to_owned());
        }
    }

    pub fn send_text(&mut self, text: String) {
        self.stop_typing();
        let Some(room) = self.current_room().map(|r| r.id) else {
            self.status(
                "Open a room first: Tab switches rooms, /dm <user> starts a chat.",
                Level::Warn,
            );
            return;
        };
        let local = self.push_own_line(room, text.clone());
        let session = self.session.clone();
        self.spawn(async move {
            let result = session.send_text(room, &text).await;
            Some(send_result(room, local, result))
        });
    }

    /// A line for a file being sent from here; returns its local id.
    pub fn push_outgoing_file(&mut self, room: Uuid, name: &str) -> u64 {
        self.push_own_line(room, format!("[file] {name}"))
    }

    /// A line of mine being sent to `room`; returns its local id (to match
    /// the send's result).
    fn push_own_line(&mut self, room: Uuid, text: String) -> u64 {
        let local = self.next_local;
        self.next_local += 1;
        let me = self.me;
        if let Some(r) = self.room_mut(room) {
            r.scroll = 0;
            r.lines.push(ChatLine {
                at_ms: now_ms(),
                body: LineBody::Msg {
                    sender: me,
                    own: true,
                    text,
                    file: None,
                    seq: None,
                    client_id: None,
                    local: Some(local),
                    state: SendState::Sending,
                    trust: None,
                },
            });
        }
        local
    }

    /// A progress callback that reports transfer `id` to the UI.
    pub fn progress_to_ui(&self, id: u64) -> sotto_client::OnProgress {
        let tx = self.tx.clone();
        std::sync::Arc::new(move |p: sotto_client::Progress| {
            let _ = tx.send(AppMsg::Progress {
                id,
                done: p.done,
                total: p.total,
            });
        })
    }

    pub fn new_transfer(&mut self, label: String, upload: bool, total: u64) -> u64 {
        let id = self.next_transfer;
        self.next_transfer += 1;
        self.transfers.push(Transfer {
            id,
            label,
            upload,
            done: 0,
            total,
            finished: None,
        });
        id
    }

    // ---- SDK events ----------------------------------------------------------

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Connection(Connection::Online) => {
                self.connection = ConnState::Online;
                // Catch up on receipts missed while offline.
                if let Some(i) = self.selected.checked_sub(1) {
                    self.mark_read(i);
                }
            }
            Event::Connection(Connection::Offline {
                reason,
                retry_in_ms,
            }) => {
                self.presence.clear();
                self.connection = ConnState::Offline {
                    reason,
                    retry_at: Instant::now() + Duration::from_millis(retry_in_ms),
                };
            }
            Event::Message(m) => self.on_message(m),
            Event::Sent {
                room_id,
                client_id,
                seq,
                ..
            } => {
                if let Some(r) = self.room_mut(room_id) {
                    r.last_seq = r.last_seq.max(seq);
                    let known = r.lines.iter().rposition(|l| {
                        matches!(&l.body, LineBody::Msg { client_id: Some(c), .. } if *c == client_id)
                    });
                    let idx = known;
                    if let Some(LineBody::Msg {
                        client_id: c,
                        seq: s,
                        state,
                        ..
                    }) = idx.and_then(|i| r.lines.get_mut(i)).map(|l| &mut l.body)
                    {
                        *c = Some(client_id);
                        *s = Some(seq);
                        *state = SendState::Sent;
                    }
                }
            }
            Event::Undecryptable {
                room_id,
                seq,
                sender_id,
                reason,
            } => {
                let selected = self.current_room().is_some_and(|r| r.id == room_id);
                let who = self.name_of(sender_id);
                let room = self.ensure_room(room_id);
                room.last_seq = room.last_seq.max(seq);
                if reason == UndecryptableReason::NotForThisDevice {
                    if let Some(ChatLine {
                        body: LineBody::Hidden { count },
                        ..
                    }) = room.lines.last_mut()
                    {
                        *count += 1;
                    } else {
                        room.lines.push(ChatLine {
                            at_ms: now_ms(),
                            body: LineBody::Hidden { count: 1 },
                        });
                    }
                } else {
                    let why = match reason {
                        UndecryptableReason::UnknownDevice => {
                            "from a device that could not be verified"
                        }
                        UndecryptableReason::UntrustedSender => {
                            "signed by a key that is not the pinned identity (see the warning)"
                        }
                        UndecryptableReason::Replayed => "a replay of an earlier message",
                        _ => "malformed or tampered with",
                    };
                    room.lines.push(ChatLine::system(
                        format!("⚠ A message from {who} (#{seq}) could not be shown: {why}."),
                        Level::Warn,
                    ));
                }
                if selected {
                    self.select(self.selected);
                }
            }
            Event::MessageDeleted { room_id, seq, .. } => {
                if let Some(r) = self.room_mut(room_id) {
                    for l in &mut r.lines {
                        if let LineBody::Msg {
                            seq: Some(s),
                            text,
                            file,
                            ..
                        } = &mut l.body
                            && *s == seq
                        {
                            *text = "(message deleted)".into();
                            *file = None;
                        }
                    }
                }
            }
            Event::Typing {
                room_id,
                user_id,
                active,
            } => {
                // Only a live socket sends typing: they are online (the relay
                // announces presence only to those who shared a room when the
                // user connected).
                self.presence.insert(user_id, true);
                if let Some(r) = self.room_mut(room_id) {
                    if active {
                        r.typing.insert(user_id, Instant::now() + TYPING_SHOWN_FOR);
                    } else {
                        r.typing.remove(&user_id);
                    }
                }
            }
            Event::Presence { user_id, online } => {
                self.presence.insert(user_id, online);
            }
            Event::Receipt {
                room_id,
                user_id,
                kind,
                seq,
            } => {
                if user_id == self.me {
                    // My other device read it: nothing unread here either.
                    if kind == ReceiptKind::Read
                        && let Some(r) = self.room_mut(room_id)
                        && seq >= r.last_seq
                    {
                        r.unread = 0;
                        r.read_sent = r.read_sent.max(seq);
                    }
                    return;
                }
                if kind == ReceiptKind::Delivered {
                    // Delivered receipts come from a live socket: they are online.
                    self.presence.insert(user_id, true);
                }
                if let Some(r) = self.room_mut(room_id) {
                    let map = match kind {
                        ReceiptKind::Read => &mut r.read,
                        ReceiptKind::Delivered => &mut r.delivered,
                    };
                    let e = map.entry(user_id).or_insert(0);
                    *e = (*e).max(seq);
                }
            }
            Event::Room { room_id, change } => match change {
                RoomChange::Deleted => self.remove_room(room_id, "was deleted"),
                RoomChange::Created => {
                    if self.room_index(room_id).is_none() {
                        self.rooms.push(RoomView::new(room_id));
                    }
                    self.load_room(room_id, false);
                }
                _ => {
                    if self.room_index(room_id).is_some() {
                        self.load_room(room_id, false);
                    } else if change == RoomChange::MemberAdded {
                        self.ensure_room(room_id);
                    }
                }
            },
            Event::Invitation { change, .. } => {
                self.refresh_invitations(change == InvitationChange::Received);
            }
            Event::IdentityKeyChanged {
                user_id,
                was_verified,
            } => {
                self.alerts.insert(user_id, was_verified);
                let who = self.name_of(user_id);
                let text = format!(
                    "⚠ {who}'s identity key CHANGED{}. Nothing is sent to or shown from {who} until you accept it: compare safety numbers (/verify {who}), then /accept {who}.",
                    if was_verified {
                        " (it was VERIFIED)"
                    } else {
                        ""
                    }
                );
                self.say(Target::Home, text.clone(), Level::Error);
                let rooms: Vec<Uuid> = self
                    .rooms
                    .iter()
                    .filter(|r| r.members.contains(&user_id))
                    .map(|r| r.id)
                    .collect();
                for r in rooms {
                    self.say(Target::Room(r), text.clone(), Level::Error);
                }
                self.status(
                    format!("SECURITY: {who}'s identity key changed"),
                    Level::Error,
                );
            }
            Event::DeviceRejected { user_id, device_id } => {
                let who = self.name_of(user_id);
                let d = device_id.simple().to_string();
                self.say(
                    Target::Home,
                    format!(
                        "⚠ A device ({}) served as {who}'s is not signed by {who}'s identity key: it is ignored.",
                        d.get(..8).unwrap_or(&d)
                    ),
                    Level::Warn,
                );
            }
            Event::Membership(w) => {
                use sotto_client::sotto_engine::Warning;
                let (room, users) = match &w {
                    Warning::Unconfirmed { room_id, users }
                    | Warning::DirectRoomTampered { room_id, users } => (*room_id, users.clone()),
                    Warning::StatementRefused { room_id, .. } | Warning::Unsigned { room_id } => {
                        (*room_id, Vec::new())
                    }
                };
                if users.iter().all(|u| self.users.contains_key(u)) {
                    self.membership_warning(w);
                } else {
                    // Name the strangers first: the room's details list them.
                    let client = self.session.client().clone();
                    self.spawn(async move {
                        Some(AppMsg::MembershipNamed(client.get_room(room).await.ok(), w))
                    });
                }
            }
            Event::RelayError { code, detail } => {
                self.status(
                    format!(
                        "The relay refused a request: {code}{}",
                        detail.map(|d| format!(" ({d})")).unwrap_or_default()
                    ),
                    Level::Warn,
                );
            }
            _ => {}
        }
    }

    fn membership_warning(&mut self, w: sotto_client::sotto_engine::Warning) {
        use sotto_client::sotto_engine::Warning;
        let names = |users: &[Uuid]| {
            users
                .iter()
                .map(|u| self.name_of(*u))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (room, text, level) = match &w {
            Warning::Unconfirmed { room_id, users } => (
                *room_id,
                format!(
                    "⚠ The relay lists {} in this room, but its owner did not sign them in: nothing is encrypted to them.",
                    names(users)
                ),
                Level::Error,
            ),
            Warning::DirectRoomTampered { room_id, users } => (
                *room_id,
                format!(
                    "⚠ The relay lists {} in this direct room, which only has its two people: nothing is sent here.",
                    names(users)
                ),
                Level::Error,
            ),
            Warning::StatementRefused { room_id, reason } => (
                *room_id,
                format!("⚠ A membership change for this room was refused: {reason}."),
                Level::Error,
            ),
            Warning::Unsigned { room_id } => (
                *room_id,
                "This room's membership is not signed by its owner yet: its members are pinned as first seen.".to_owned(),
                Level::Warn,
            ),
        };
        self.say(Target::Room(room), text.clone(), level);
        if level == Level::Error {
            self.say(Target::Home, text, level);
            self.status(
                "SECURITY: a room's membership was tampered with",
                Level::Error,
            );
        }
    }

    fn remove_room(&mut self, id: Uuid, why: &str) {
        self.invitations.retain(|i| i.room_id != id);
        let Some(i) = self.room_index(id) else { return };
        let title = self
            .rooms
            .get(i)
            .map(|r| self.room_title(r))
            .unwrap_or_default();
        self.rooms.remove(i);
        if self.selected == i + 1 {
            self.selected = 0;
        } else if self.selected > i + 1 {
            self.selected -= 1;
        }
        self.say(
            Target::Home,
            format!("The room {title} {why}."),
            Level::Warn,
        );
    }

    fn on_message(&mut self, m: ReceivedMessage) {
        // Shown already (from local history at start, then replayed live after
        // a crash before the cursor moved): once is enough.
        let shown = self.rooms.iter().any(|r| {
            r.id == m.room_id
                && r.lines
                    .iter()
                    .rev()
                    .any(|l| matches!(&l.body, LineBody::Msg { seq: Some(s), .. } if *s == m.seq))
        });
        if shown {
            return;
        }
        let selected = self.current_room().is_some_and(|r| r.id == m.room_id);
        let file = match &m.content {
            Content::File { file } => {
                self.files.push(file.clone());
                Some(self.files.len())
            }
            _ => None,
        };
        let text = match &m.content {
            Content::Text { body } => body.clone(),
            Content::File { file } => format!(
                "[file #{}] {} ({})  — /save {} [dir]",
                self.files.len(),
                file.name.as_deref().unwrap_or("unnamed"),
                human_size(file.size),
                self.files.len()
            ),
            other => other.preview(),
        };
        let own = m.own;
        let room = self.ensure_room(m.room_id);
        room.typing.remove(&m.sender_id);
        if m.seq > room.last_seq {
            room.last_seq = m.seq;
            if !own && !selected {
                room.unread += 1;
            }
        }
        room.lines.push(ChatLine {
            at_ms: m.sent_at_ms.min(now_ms()),
            body: LineBody::Msg {
                sender: m.sender_id,
                own,
                text,
                file,
                seq: Some(m.seq),
                client_id: Some(m.client_id),
                local: None,
                state: if own {
                    SendState::Sent
                } else {
                    SendState::Received
                },
                trust: Some(m.trust),
            },
        });
        if selected {
            self.select(self.selected);
        }
    }

    // ---- Background results ----------------------------------------------------

    fn on_msg(&mut self, msg: AppMsg) {
        match msg {
            AppMsg::Status(text, level) => self.status(text, level),
            AppMsg::Lines(target, lines) => {
                for (t, l) in lines {
                    self.say(target, t, l);
                }
            }
            AppMsg::MembershipNamed(details, warning) => {
                for m in details.iter().flat_map(|d| &d.members) {
                    self.users.insert(m.user_id, m.username.clone());
                }
                self.membership_warning(warning);
            }
            AppMsg::RoomLoaded { details, select } => {
                for m in &details.members {
                    self.users.insert(m.user_id, m.username.clone());
                }
                for i in &details.invited {
                    self.users.insert(i.user_id, i.username.clone());
                }
                let id = details.room.id;
                let fresh = self.room_index(id).is_none();
                let room = self.ensure_room(id);
                room.name = details.room.name.clone();
                room.kind = details.room.kind;
                room.members = details.members.iter().map(|m| m.user_id).collect();
                room.invited = details.invited.iter().map(|i| i.user_id).collect();
                if fresh && select {
                    // Opened from here: what it holds arrives as messages.
                    room.read_sent = details.room.last_seq;
                }
                if select {
                    self.select_room(id);
                    self.status = None;
                }
            }
            AppMsg::RoomGone(id) => self.remove_room(id, "is no longer yours (removed or deleted)"),
            AppMsg::Invitations { list, announce } => {
                let known: Vec<Uuid> = self.invitations.iter().map(|i| i.id).collect();
                for inv in &list {
                    self.users
                        .insert(inv.inviter.id, inv.inviter.username.clone());
                }
                if announce {
                    for (n, inv) in list.iter().enumerate() {
                        if known.contains(&inv.id) {
                            continue;
                        }
                        let what = describe_invitation(inv);
                        self.say(
                            Target::Home,
                            format!(
                                "{what}: /join {} to accept, /decline {} to refuse.",
                                n + 1,
                                n + 1
                            ),
                            Level::Warn,
                        );
                        self.status(format!("{what} (/join {})", n + 1), Level::Warn);
                    }
                }
                self.invitations = list;
            }
            AppMsg::Contacts(list) => {
                for c in &list {
                    self.users.insert(c.user.id, c.user.username.clone());
                }
                self.contacts = list;
            }
            AppMsg::Users(list) => {
                for u in list {
                    self.users.insert(u.id, u.username);
                }
            }
            AppMsg::SendResult {
                room,
                local,
                result,
                changed,
                queued,
            } => {
                for u in changed {
                    let verified = self.session.pin(u).is_some_and(|p| p.verified);
                    self.alerts.entry(u).or_insert(verified);
                }
                let mut failure = None;
                if let Some(r) = self.room_mut(room) {
                    for l in r.lines.iter_mut().rev() {
                        if let LineBody::Msg {
                            local: Some(lid),
                            seq,
                            client_id,
                            state,
                            ..
                        } = &mut l.body
                            && *lid == local
                        {
                            match &result {
                                Ok(s) => {
                                    *seq = Some(s.seq);
                                    *client_id = Some(s.client_id);
                                    *state = SendState::Sent;
                                }
                                Err(e) => {
                                    *state = if queued.is_some() {
                                        SendState::Queued
                                    } else {
                                        SendState::Failed
                                    };
                                    *client_id = queued;
                                    failure = Some(e.clone());
                                }
                            }
                            break;
                        }
                    }
                    if let Ok(s) = &result {
                        r.last_seq = r.last_seq.max(s.seq);
                    }
                }
                match failure {
                    Some(e) if queued.is_some() => self.status(format!("Offline: the message waits and goes out when the connection is back ({e})."), Level::Warn),
                    Some(e) => self.status(format!("Not sent: {e}"), Level::Error),
                    None => {}
                }
            }
            AppMsg::Progress { id, done, total } => {
                if let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) {
                    t.done = done;
                    t.total = total;
                }
            }
            AppMsg::TransferDone { id, target, result } => {
                if let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) {
                    t.finished = Some((Instant::now(), result.is_ok()));
                    if result.is_ok() {
                        t.done = t.total;
                    }
                }
                match result {
                    Ok(text) => self.say(target, text, Level::Good),
                    Err(text) => {
                        self.say(target, text.clone(), Level::Error);
                        self.status(text, Level::Error);
                    }
                }
            }
            AppMsg::Accepted(user) => {
                self.alerts.remove(&user);
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let keep = match &self.status {
            Some((_, Level::Error)) => Duration::from_secs(20),
            _ => Duration::from_secs(8),
        };
        if self.status.is_some() && self.status_at.elapsed() > keep {
            self.status = None;
        }
        if let Some(t) = &self.typing_out
            && t.last_key.elapsed() >= TYPING_IDLE
        {
            self.stop_typing();
        }
        for r in &mut self.rooms {
            r.typing.retain(|_, until| *until > now);
        }
        self.transfers.retain(|t| {
            t.finished
                .is_none_or(|(at, _)| at.elapsed() < Duration::from_secs(5))
        });
    }

    /// Fetches the pending invitations (and says the new ones when `announce`).
    pub fn refresh_invitations(&self, announce: bool) {
        let client = self.session.client().clone();
        self.spawn(async move {
            Some(match client.all_invitations().await {
                Ok(list) => AppMsg::Invitations { list, announce },
                Err(e) => AppMsg::Status(format!("Cannot list invitations: {e}"), Level::Error),
            })
        });
    }

    /// Everything the app knows before going live: who I am, contacts, rooms.
    async fn load(&mut self) {
        let client = self.session.client().clone();
        match client.list_contacts(&Default::default()).await {
            Ok(page) => self.on_msg(AppMsg::Contacts(page.items)),
            Err(e) => self.status(format!("Cannot list contacts: {e}"), Level::Error),
        }
        let rooms = match client.all_rooms().await {
            Ok(r) => r,
            Err(e) => {
                self.status(format!("Cannot list rooms: {e}"), Level::Error);
                Vec::new()
            }
        };
        for room in rooms {
            let mut v = RoomView::new(room.id);
            v.name = room.name.clone();
            v.kind = room.kind;
            v.unread = room.unread;
            v.last_seq = room.last_seq;
            v.read_sent = if room.unread == 0 { room.last_seq } else { 0 };
            match client.get_room(room.id).await {
                Ok(d) => {
                    for m in &d.members {
                        self.users.insert(m.user_id, m.username.clone());
                    }
                    v.members = d.members.iter().map(|m| m.user_id).collect();
                }
                Err(e) => self.status(format!("Cannot load a room: {e}"), Level::Error),
            }
            self.rooms.push(v);
            // What this device kept of the room (its local history, sealed in
            // the store): shown at once, without the relay.
            match self.session.history(room.id, None, HISTORY_SHOWN) {
                Ok(kept) => {
                    for m in kept {
                        self.on_message(m);
                    }
                }
                Err(e) => self.status(format!("Cannot read local history: {e}"), Level::Error),
            }
        }
        match client.all_invitations().await {
            Ok(list) => self.on_msg(AppMsg::Invitations {
                list,
                announce: true,
            }),
            Err(e) => self.status(format!("Cannot list invitations: {e}"), Level::Error),
        }
        let unread: u64 = self.rooms.iter().map(|r| r.unread).sum();
        let name = self.my_name.clone();
        self.say(Target::Home, format!("Welcome, {name}. Messages are end-to-end encrypted: the relay only sees sealed envelopes."), Level::Good);
        if unread > 0 {
            let n = self.rooms.iter().filter(|r| r.unread > 0).count();
            self.say(
                Target::Home,
                format!("{unread} unread message(s) in {n} room(s): Tab to open them."),
                Level::Info,
            );
        }
        if self.rooms.is_empty() {
            self.say(
                Target::Home,
                "No rooms yet. Start one with /dm <username>, or find people with /search <name>.",
                Level::Info,
            );
        }
        self.say(
            Target::Home,
            "Type /help for commands. Tab/Shift-Tab switch rooms, Esc quits.",
            Level::Info,
        );
    }
}

/// The result of a send as a message to the UI; `queued`: the id under which
/// it waits in the outbox after a failure.
pub fn send_result(room: Uuid, local: u64, result: sotto_client::Result<Sent>) -> AppMsg {
    // Sealed but not yet posted: the SDK sends it when the connection is back
    // (Event::Sent names it). Other errors queued nothing.
    let queued = match &result {
        Err(sotto_client::Error::Queued { client_id, .. }) => Some(*client_id),
        _ => None,
    };
    let mut changed = Vec::new();
    let result = result.map_err(|e| match e {
        sotto_client::Error::IdentityChanged(users) => {
            changed = users;
            "a member's identity key changed; see the warning (/verify, then /accept)".to_owned()
        }
        sotto_client::Error::NoDevices(_) => {
            "nobody in this room has a device to encrypt to yet".to_owned()
        }
        other => other.to_string(),
    });
    AppMsg::SendResult {
        room,
        local,
        result,
        changed,
        queued,
    }
}

pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// Takes whatever is ready on the event stream without waiting.
async fn ready_event(events: &mut EventStream) -> Option<Option<Event>> {
    tokio::time::timeout(Duration::ZERO, events.next())
        .await
        .ok()
}

/// The chat, until the user quits.
pub async fn run(
    term: &mut DefaultTerminal,
    session: Session,
    input: &mut UnboundedReceiver<TermEvent>,
    offset: time::UtcOffset,
) -> Result<(), String> {
    let (tx, mut rx) = unbounded_channel();
    let mut app = App::new(session.clone(), tx, offset);
    app.status("Loading your rooms…", Level::Info);
    draw(term, &mut app)?;
    app.load().await;
    app.status = None;
    let mut events = session
        .events()
        .ok_or("the session's events were already taken")?;
    session.connect();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut events_open = true;
    while !app.quit {
        draw(term, &mut app)?;
        tokio::select! {
            ev = input.recv() => match ev {
                Some(ev) => app.on_term(ev),
                None => app.quit = true,
            },
            ev = events.next(), if events_open => match ev {
                Some(ev) => app.on_event(ev),
                None => events_open = false,
            },
            Some(m) = rx.recv() => app.on_msg(m),
            _ = tick.tick() => app.on_tick(),
        }
        // Take what else is ready before drawing again (a replay comes in bursts).
        for _ in 0..512 {
            let mut any = false;
            if events_open && let Some(ev) = ready_event(&mut events).await {
                match ev {
                    Some(ev) => app.on_event(ev),
                    None => events_open = false,
                }
                any = true;
            }
            if let Ok(m) = rx.try_recv() {
                app.on_msg(m);
                any = true;
            }
            if let Ok(ev) = input.try_recv() {
                app.on_term(ev);
                any = true;
            }
            if !any || app.quit {
                break;
            }
        }
    }
    app.stop_typing();
    app.status("Bye!", Level::Info);
    draw(term, &mut app)?;
    let _ = tokio::time::timeout(Duration::from_secs(2), session.disconnect()).await;
    Ok(())
}

fn draw(term: &mut DefaultTerminal, app: &mut App) -> Result<(), String> {
    term.draw(|f| ui::draw(f, app))
        .map(drop)
        .map_err(|e| format!("cannot draw: {e}"))
}

/// One line about an invitation: who asks, into what.
pub fn describe_invitation(inv: &Invitation) -> String {
    match inv.room_kind {
        RoomKind::Direct => format!("{} wants to chat with you", inv.inviter.username),
        RoomKind::Group => format!(
            "{} invites you to the group {}",
            inv.inviter.username, inv.room_name
        ),
    }
}
