//! The session's local state, behind the [`Store`] trait so apps can plug their
//! own; [`SqliteStore`] is the file-backed default.
//!
//! What is kept, and why:
//! - the account: user and device ids, the store key wrapped under the store
//!   passphrase (`sotto_engine::vault`, Argon2id + AES-256-GCM), and the
//!   device's secrets as a key backup blob under the store key, so keys are
//!   never on disk in the clear and changing the passphrase re-wraps 32 bytes;
//! - local history: every opened message sealed under the store key
//!   (`sotto_engine::vault::HistoryKey`), bound to its room and `seq`;
//! - identity pins (trust on first use, verified marks) and the verified device
//!   bundles of each user, dropped when the relay announces `keys_changed`;
//! - per-room cursors (the last `seq` handled), so a restart resumes, not replays;
//! - the outbox: sealed envelopes not yet acknowledged, re-posted with the same
//!   `client_id` after a crash or restart (the relay stores a `client_id` once);
//! - the `(sender, client id)` pairs already delivered, so a replayed envelope
//!   is not shown twice;
//! - each room's membership record (`sotto_engine::RoomRecord`: a direct room's
//!   pinned peer, a group room's newest accepted membership statement), so the
//!   relay cannot add readers across restarts (`docs/protocol.md` §12.4).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use sotto_core::trust::Pin;
use sotto_engine::{Changes, RoomRecord};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The account a store belongs to.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAccount {
    /// The relay the account lives on.
    pub relay: String,
    /// The user.
    pub user_id: Uuid,
    /// This device.
    pub device_id: Uuid,
    /// The device's secrets: a key backup blob, under the store key when
    /// `store_key` is set (a recovery-key blob), else under the store
    /// passphrase (a store made before the store key; upgraded on unlock).
    pub secrets: Vec<u8>,
    /// The store key wrapped under the store passphrase
    /// (`sotto_engine::vault::StoreKey::wrap`).
    pub store_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for StoredAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAccount")
            .field("relay", &self.relay)
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// A sealed message waiting for the relay's acknowledgement (the engine's).
pub use sotto_engine::post::OutboxEntry;

/// Local persistence of a session. Every method is short (no network); a
/// failure is reported as [`Error::Store`].
pub trait Store: Send + Sync + 'static {
    /// The account, if the store has one.
    fn account(&self) -> Result<Option<StoredAccount>>;
    /// Sets (replaces) the account.
    fn set_account(&self, account: &StoredAccount) -> Result<()>;

    /// All identity pins.
    fn pins(&self) -> Result<BTreeMap<Uuid, Pin>>;
    /// Sets one user's pin.
    fn set_pin(&self, user_id: Uuid, pin: &Pin) -> Result<()>;

    /// Every room's cursor.
    fn cursors(&self) -> Result<BTreeMap<Uuid, u64>>;
    /// Applies what one step of the engine's feed decided
    /// ([`sotto_engine::Changes`]), all or none: cursors move forward (never
    /// back), seen message ids are recorded (a known one keeps its first
    /// place), history items are kept, then deleted ones dropped.
    fn apply(&self, changes: &Changes) -> Result<()>;
    /// Where `(sender, client_id)` was first delivered (`(room, seq)`), if
    /// it was ([`Store::apply`] records it).
    fn seen_at(&self, sender: Uuid, client_id: Uuid) -> Result<Option<(Uuid, u64)>>;

    /// Adds a message to the outbox.
    fn outbox_push(&self, entry: &OutboxEntry) -> Result<()>;
    /// Removes an acknowledged message.
    fn outbox_remove(&self, client_id: Uuid) -> Result<()>;
    /// Every message still waiting, oldest first.
    fn outbox(&self) -> Result<Vec<OutboxEntry>>;
    /// Whether the message `client_id` is still waiting (a flush checks each
    /// entry before posting it). The default reads the whole outbox; a store
    /// that can look one entry up should.
    fn outbox_contains(&self, client_id: Uuid) -> Result<bool> {
        Ok(self.outbox()?.iter().any(|e| e.client_id == client_id))
    }

    /// Every room's membership record; `None` when this store never saved any
    /// (made by a version without signed membership: its rooms are then
    /// adopted as legacy rooms, `sotto_engine::Rooms::adopt_legacy`).
    fn rooms(&self) -> Result<Option<BTreeMap<Uuid, RoomRecord>>>;
    /// Saves (`Some`) or deletes (`None`) membership records, all or none, and
    /// remembers that records are kept (even when `changes` is empty).
    fn save_rooms(&self, changes: &[(Uuid, Option<RoomRecord>)]) -> Result<()>;

    /// Keeps sealed history items (`(room, seq, sealed)`; replaces one at the
    /// same place), all or none.
    fn history_put(&self, items: &[(Uuid, u64, Vec<u8>)]) -> Result<()>;
    /// Up to `limit` sealed items of a room with `seq < before` (all when
    /// `None`), newest first.
    fn history_page(
        &self,
        room_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, Vec<u8>)>>;
}

/// The default [`Store`]: one SQLite file (WAL), mode 0600 (its WAL files too).
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Copies the WAL back into the database file on a thread of its own
    /// once [`Store::apply`] wrote about [`CHECKPOINT_EVERY`] bytes since the
    /// last time (a file store only), so that a catch-up's steps do not wait
    /// for SQLite's checkpoints (about half of `apply`'s time,
    /// `BENCHMARKS.md`). SQLite's own automatic checkpoint (at 1,000 pages)
    /// stays as the fallback.
    checkpoints: Option<Checkpoints>,
    /// Per sender, the greatest client id in `seen` (read once, then kept up
    /// to date by `apply`), so that `seen_at` of a newer id (every message of
    /// a catch-up, as senders' ids are UUIDv7) answers without a lookup.
    /// Locked inside the connection's lock. Dropped when another connection
    /// (another process) committed, as `PRAGMA data_version` says: checked
    /// at the first `seen_at` after each `apply` and after each read of the
    /// cursors (every connection starts with one), then again after
    /// [`SEEN_CHECK_EVERY`] answers or [`SEEN_CHECK_AFTER`], whichever
    /// comes first (the check costs what a lookup does: a read
    /// transaction). So an id another process stored is seen here within
    /// that bound; before, within one lookup (a lookup that came before the
    /// other's commit missed it all the same until its step was applied).
    seen_max: Mutex<SeenMax>,
}

/// At most this many `seen_at` answers from memory between two checks for
/// another connection's commits (about a quarter of a catch-up step).
const SEEN_CHECK_EVERY: u32 = 64;
/// At most this long between two such checks.
const SEEN_CHECK_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Default)]
struct SeenMax {
    /// The `data_version` the entries hold for.
    version: i64,
    /// `seen_at` answers before `version` is checked again (0: at the next).
    until_check: u32,
    /// When `version` was last checked.
    checked_at: Option<std::time::Instant>,
    by_sender: std::collections::HashMap<Uuid, Option<Uuid>>,
}

/// A history item in, replacing the one at its place (`history_put`, `apply`).
const HISTORY_PUT: &str = "INSERT INTO history (room_id, seq, sealed) VALUES (?1, ?2, ?3)
     ON CONFLICT (room_id, seq) DO UPDATE SET sealed = ?3";

/// Prepared statements kept per connection (rusqlite's default is 16; the
/// store has about 20 it runs again and again).
const STATEMENT_CACHE: usize = 48;

/// About how many bytes `apply` writes before the checkpoint thread is woken
/// (256 pages: a live message at a time does not cost a checkpoint each).
const CHECKPOINT_EVERY: u64 = 1 << 20;

/// The checkpoint thread, and the signal that wakes it (dropped: it ends,
/// and the store's drop waits for it).
struct Checkpoints {
    wake: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Held around each of the thread's checkpoints: an account write takes
    /// it to empty the WAL with no checkpoint of this process in its way.
    gate: std::sync::Arc<Mutex<()>>,
    /// Bytes `apply` wrote since the thread was last woken (about).
    written: std::sync::atomic::AtomicU64,
}

impl Checkpoints {
    /// A thread with its own connection to `path`, running a passive
    /// checkpoint (it never blocks the writer, nor waits for readers) each
    /// time it is woken; `None` if it cannot start (SQLite's automatic
    /// checkpoint then does the work, as before).
    fn start(path: &Path) -> Option<Self> {
        let conn = Connection::open(path).ok()?;
        // Never waits for a lock (the store's drop joins this thread).
        conn.busy_timeout(std::time::Duration::ZERO).ok()?;
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        let gate = std::sync::Arc::new(Mutex::new(()));
        let held = gate.clone();
        let thread = std::thread::Builder::new()
            .name("sotto-store-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    let _g = held
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    // Best effort: a checkpoint that cannot finish now is done by
                    // the next one (or SQLite's own).
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok()?;
        Some(Self {
            wake: Some(wake),
            thread: Some(thread),
            gate,
            written: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// `apply` wrote about `bytes`: wakes the thread once enough piled up.
    fn wrote(&self, bytes: u64) {
        use std::sync::atomic::Ordering;
        let total = self.written.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if total >= CHECKPOINT_EVERY
            && let Some(w) = &self.wake
        {
            self.written.store(0, Ordering::Relaxed);
            // Full: a wake-up is pending already.
            let _ = w.try_send(());
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    relay TEXT NOT NULL, user_id TEXT NOT NULL, device_id TEXT NOT NULL, secrets BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pins (user_id TEXT PRIMARY KEY, pin TEXT NOT NULL);
-- Device lists are cached in memory only (the engine's devices); stores made
-- before that kept them here.
DROP TABLE IF EXISTS devices;
CREATE TABLE IF NOT EXISTS cursors (room_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    n INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL, envelope BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (room_id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history (room_id TEXT NOT NULL, seq INTEGER NOT NULL,
    sealed BLOB NOT NULL, PRIMARY KEY (room_id, seq));
CREATE TABLE IF NOT EXISTS seen (sender TEXT NOT NULL, client_id TEXT NOT NULL,
    room_id TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (sender, client_id)) WITHOUT ROWID;
";

/// Adds a column a store made by an older version lacks. Two processes opening
/// the same old file at once may both try: the loser finds it added.
fn add_column(conn: &Connection, table: &str, column: &str, ddl: &str) -> rusqlite::Result<()> {
    let has = |conn: &Connection| -> rusqlite::Result<bool> {
        conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
            .exists(params![table, column])
    };
    if has(conn)? {
        return Ok(());
    }
    match conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ddl}")) {
        Err(_) if has(conn)? => Ok(()),
        other => other,
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // Create the file owner-only before SQLite opens it: SQLite gives its
        // -wal and -shm files the database file's permissions.
        let mut create = std::fs::OpenOptions::new();
        create.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            create.mode(0o600);
        }
        create.open(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        let mut store = Self::init(Connection::open(path)?)?;
        store.checkpoints = Checkpoints::start(path);
        Ok(store)
    }

    /// A store in memory (tests, throw-away sessions).
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Deleted content is overwritten, not left in free pages: a replaced
        // wrapped store key (a passphrase change) or a deleted history item
        // does not linger in the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement of a message's way (outbox, history, `apply`, the
        // replay lookup) stays prepared: parsing SQL again was a visible part
        // of a send in a profile (`BENCHMARKS.md`).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.execute_batch(SCHEMA)?;
        // Stores made before the store key: add its column.
        add_column(&conn, "account", "store_key", "BLOB")?;
        // Stores made before the outbox marked control messages.
        add_column(&conn, "outbox", "control", "INTEGER NOT NULL DEFAULT 0")?;
        Ok(Self {
            conn: Mutex::new(conn),
            checkpoints: None,
            seen_max: Mutex::new(SeenMax::default()),
        })
    }

    fn with_mut<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| Error::store("store lock poisoned"))?;
        f(&mut conn).map_err(Error::from)
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| Error::store("store lock poisoned"))?;
        f(&conn).map_err(Error::from)
    }
}

fn uuid_of(text: &str) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A UUID as the store keeps it (text: hyphenated, lower case, as
/// `Uuid::to_string`), encoded on the stack: `apply` writes several a message.
struct UuidText([u8; uuid::fmt::Hyphenated::LENGTH]);

impl UuidText {
    fn new(id: &Uuid) -> Self {
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        id.hyphenated().encode_lower(&mut text);
        Self(text)
    }
}

impl rusqlite::ToSql for UuidText {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            rusqlite::types::ValueRef::Text(&self.0),
        ))
    }
}

/// A `seq` as SQLite's integer (the relay's `seq`s fit; a larger one is refused).
fn seq_sql(seq: u64) -> rusqlite::Result<i64> {
    i64::try_from(seq).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

impl Store for SqliteStore {
    fn rooms(&self) -> Result<Option<BTreeMap<Uuid, RoomRecord>>> {
        self.with(|c| {
            let kept: Option<String> = c
                .query_row("SELECT value FROM meta WHERE key = 'rooms'", [], |r| {
                    r.get(0)
                })
                .optional()?;
            if kept.is_none() {
                return Ok(None);
            }
            let mut st = c.prepare("SELECT room_id, record FROM rooms")?;
            let rows = st.query_map([], |r| {
                let room = uuid_of(&r.get::<_, String>(0)?)?;
                let record: RoomRecord =
                    serde_json::from_str(&r.get::<_, String>(1)?).map_err(json_err)?;
                Ok((room, record))
            })?;
            rows.collect::<rusqlite::Result<BTreeMap<_, _>>>().map(Some)
        })
    }

    fn save_rooms(&self, changes: &[(Uuid, Option<RoomRecord>)]) -> Result<()> {
        let mut rows = Vec::with_capacity(changes.len());
        for (room, record) in changes {
            let text = record
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(Error::store)?;
            rows.push((room.to_string(), text));
        }
        self.with_mut(|c| {
            let tx = c.transaction()?;
            for (room, text) in &rows {
                match text {
                    Some(t) => tx.execute(
                        "INSERT INTO rooms (room_id, record) VALUES (?1, ?2)
                         ON CONFLICT (room_id) DO UPDATE SET record = ?2",
                        params![room, t],
                    )?,
                    None => tx.execute("DELETE FROM rooms WHERE room_id = ?1", [room])?,
                };
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('rooms', '1') ON CONFLICT (key) DO NOTHING",
                [],
            )?;
            tx.commit()
        })
    }

    fn history_put(&self, items: &[(Uuid, u64, Vec<u8>)]) -> Result<()> {
        self.with_mut(|c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(HISTORY_PUT)?;
                for (room, seq, sealed) in items {
                    st.execute(params![UuidText::new(room), seq_sql(*seq)?, sealed])?;
                }
            }
            tx.commit()
        })
    }

    fn history_page(
        &self,
        room_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let before = match before {
            Some(b) => seq_sql(b)?,
            None => i64::MAX,
        };
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, sealed FROM history WHERE room_id = ?1 AND seq < ?2
                 ORDER BY seq DESC LIMIT ?3",
            )?;
            let rows = st.query_map(params![room_id.to_string(), before, limit], |r| {
                Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get(1)?))
            })?;
            rows.collect()
        })
    }

    fn account(&self) -> Result<Option<StoredAccount>> {
        self.with(|c| {
            c.query_row(
                "SELECT relay, user_id, device_id, secrets, store_key FROM account WHERE id = 1",
                [],
                |r| {
                    Ok(StoredAccount {
                        relay: r.get(0)?,
                        user_id: uuid_of(&r.get::<_, String>(1)?)?,
                        device_id: uuid_of(&r.get::<_, String>(2)?)?,
                        secrets: r.get(3)?,
                        store_key: r.get(4)?,
                    })
                },
            )
            .optional()
        })
    }

    fn set_account(&self, a: &StoredAccount) -> Result<()> {
        let gate = self.checkpoints.as_ref().map(|k| k.gate.clone());
        self.with(|c| {
            c.execute(
                "INSERT INTO account (id, relay, user_id, device_id, secrets, store_key)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET relay = ?1, user_id = ?2, device_id = ?3,
                   secrets = ?4, store_key = ?5",
                params![
                    a.relay,
                    a.user_id.to_string(),
                    a.device_id.to_string(),
                    a.secrets,
                    a.store_key
                ],
            )
            .map(drop)?;
            // Rare (set-up, upgrade, passphrase change): move the new row into
            // the database file now and empty the WAL, so that no copy of the
            // replaced wrapped key stays in the WAL. The checkpoint thread's
            // gate keeps this process's own checkpoint out of the way; the
            // busy flag is then set only by another process on the same file.
            let _gate = gate
                .as_ref()
                .map(|g| g.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            let busy: i64 = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy != 0 {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("another process holds the store: its log could not be emptied".into()),
                ));
            }
            Ok(())
        })
    }

    fn pins(&self) -> Result<BTreeMap<Uuid, Pin>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT user_id, pin FROM pins")?;
            let rows = st.query_map([], |r| {
                let user = uuid_of(&r.get::<_, String>(0)?)?;
                let pin: Pin = serde_json::from_str(&r.get::<_, String>(1)?).map_err(json_err)?;
                Ok((user, pin))
            })?;
            rows.collect()
        })
    }

    fn set_pin(&self, user_id: Uuid, pin: &Pin) -> Result<()> {
        let text = serde_json::to_string(pin).map_err(Error::store)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO pins (user_id, pin) VALUES (?1, ?2) ON CONFLICT (user_id) DO UPDATE SET pin = ?2",
                params![user_id.to_string(), text],
            )
            .map(drop)
        })
    }

    fn cursors(&self) -> Result<BTreeMap<Uuid, u64>> {
        // (A connection starts here: the next `seen_at` checks for others' commits.)
        if let Ok(mut max) = self.seen_max.lock() {
            max.until_check = 0;
        }
        self.with(|c| {
            let mut st = c.prepare_cached("SELECT room_id, seq FROM cursors")?;
            let rows = st.query_map([], |r| {
                Ok((
                    uuid_of(&r.get::<_, String>(0)?)?,
                    r.get::<_, i64>(1)?.max(0) as u64,
                ))
            })?;
            rows.collect()
        })
    }

    fn apply(&self, changes: &Changes) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.with_mut(|c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO cursors (room_id, seq) VALUES (?1, ?2)
                     ON CONFLICT (room_id) DO UPDATE SET seq = max(seq, ?2)",
                )?;
                for (room, seq) in &changes.cursors {
                    st.execute(params![UuidText::new(room), seq_sql(*seq)?])?;
                }
                let mut st = tx.prepare_cached(
                    "INSERT OR IGNORE INTO seen (sender, client_id, room_id, seq) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (sender, client_id, room, seq) in &changes.seen {
                    st.execute(params![
                        UuidText::new(sender),
                        UuidText::new(client_id),
                        UuidText::new(room),
                        seq_sql(*seq)?
                    ])?;
                }
                let mut st = tx.prepare_cached(HISTORY_PUT)?;
                for (room, seq, sealed) in &changes.history_put {
                    st.execute(params![UuidText::new(room), seq_sql(*seq)?, sealed])?;
                }
                let mut st =
                    tx.prepare_cached("DELETE FROM history WHERE room_id = ?1 AND seq = ?2")?;
                for (room, seq) in &changes.history_delete {
                    st.execute(params![UuidText::new(room), seq_sql(*seq)?])?;
                }
            }
            tx.commit()?;
            // Still under the connection's lock: no `seen_at` in between.
            if let Ok(mut max) = self.seen_max.lock() {
                max.until_check = 0;
                for (sender, client_id, _, _) in &changes.seen {
                    if let Some(m) = max.by_sender.get_mut(sender) {
                        *m = (*m).max(Some(*client_id));
                    }
                }
            }
            Ok(())
        })?;
        if let Some(c) = &self.checkpoints {
            // (About: the history items, and ~100 bytes a row for the rest.)
            let rows = changes.cursors.len() + changes.seen.len() + changes.history_delete.len();
            let items: usize = changes
                .history_put
                .iter()
                .map(|(_, _, b)| b.len() + 100)
                .sum();
            c.wrote(u64::try_from(rows * 100 + items).unwrap_or(u64::MAX));
        }
        Ok(())
    }

    fn seen_at(&self, sender: Uuid, client_id: Uuid) -> Result<Option<(Uuid, u64)>> {
        self.with(|c| {
            let mut max = self
                .seen_max
                .lock()
                .map_err(|_| rusqlite::Error::InvalidQuery)?;
            if max.until_check == 0
                || max
                    .checked_at
                    .is_none_or(|at| at.elapsed() >= SEEN_CHECK_AFTER)
            {
                let version: i64 = c
                    .prepare_cached("PRAGMA data_version")?
                    .query_row([], |r| r.get(0))?;
                if max.version != version {
                    // Another connection committed: what it wrote is not known here.
                    max.by_sender.clear();
                    max.version = version;
                }
                max.until_check = SEEN_CHECK_EVERY;
                max.checked_at = Some(std::time::Instant::now());
            }
            max.until_check -= 1;
            let greatest = match max.by_sender.get(&sender) {
                Some(m) => *m,
                None => {
                    let m: Option<String> = c
                        .prepare_cached("SELECT max(client_id) FROM seen WHERE sender = ?1")?
                        .query_row([UuidText::new(&sender)], |r| r.get(0))?;
                    let m = m.as_deref().map(uuid_of).transpose()?;
                    max.by_sender.insert(sender, m);
                    m
                }
            };
            // (Ids are stored as canonical lowercase text: text order is the
            // ids' byte order.)
            if greatest.is_none_or(|g| client_id > g) {
                return Ok(None);
            }
            c.prepare_cached("SELECT room_id, seq FROM seen WHERE sender = ?1 AND client_id = ?2")?
                .query_row([UuidText::new(&sender), UuidText::new(&client_id)], |r| {
                    Ok((
                        uuid_of(&r.get::<_, String>(0)?)?,
                        r.get::<_, i64>(1)?.max(0) as u64,
                    ))
                })
                .optional()
        })
    }

    fn outbox_push(&self, e: &OutboxEntry) -> Result<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT OR IGNORE INTO outbox (client_id, room_id, envelope, control) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                UuidText::new(&e.client_id),
                UuidText::new(&e.room_id),
                e.envelope,
                e.control
            ])
            .map(drop)
        })
    }

    fn outbox_remove(&self, client_id: Uuid) -> Result<()> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM outbox WHERE client_id = ?1")?
                .execute([UuidText::new(&client_id)])
                .map(drop)
        })
    }

    fn outbox_contains(&self, client_id: Uuid) -> Result<bool> {
        self.with(|c| {
            c.prepare_cached("SELECT 1 FROM outbox WHERE client_id = ?1")?
                .exists([UuidText::new(&client_id)])
        })
    }

    fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        self.with(|c| {
            let mut st =
                c.prepare("SELECT client_id, room_id, envelope, control FROM outbox ORDER BY n")?;
            let rows = st.query_map([], |r| {
                Ok(OutboxEntry {
                    client_id: uuid_of(&r.get::<_, String>(0)?)?,
                    room_id: uuid_of(&r.get::<_, String>(1)?)?,
                    envelope: r.get(2)?,
                    control: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ROOM: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(3);

    fn changes(cursor: u64, seen: &[(u128, u64)], put: &[u64], delete: &[u64]) -> Changes {
        Changes {
            cursors: vec![(ROOM, cursor)],
            seen: seen
                .iter()
                .map(|(id, seq)| (BOB, Uuid::from_u128(*id), ROOM, *seq))
                .collect(),
            history_put: put.iter().map(|s| (ROOM, *s, vec![*s as u8])).collect(),
            history_delete: delete.iter().map(|s| (ROOM, *s)).collect(),
        }
    }

    #[test]
    fn seen_at_answers_newer_ids_from_memory_and_what_another_connection_wrote() {
        let dir = std::env::temp_dir().join(format!("sotto-store-{}", Uuid::new_v4()));
        let path = dir.join("store.db");
        let s = SqliteStore::open(&path).unwrap();
        let other = SqliteStore::open(&path).unwrap();
        let at = |s: &SqliteStore, id: u128| s.seen_at(BOB, Uuid::from_u128(id)).unwrap();
        assert_eq!(at(&s, 50), None);
        s.apply(&changes(2, &[(50, 1), (20, 2)], &[], &[])).unwrap();
        assert_eq!(at(&s, 50), Some((ROOM, 1)));
        assert_eq!(at(&s, 20), Some((ROOM, 2)), "below the greatest: looked up");
        assert_eq!(at(&s, 30), None);
        assert_eq!(at(&s, 60), None, "above the greatest");
        // This connection's own apply keeps the greatest id up to date.
        s.apply(&changes(3, &[(70, 3)], &[], &[])).unwrap();
        assert_eq!(at(&s, 70), Some((ROOM, 3)));
        assert_eq!(at(&s, 60), None);
        // Another connection (another process) stores a newer id: seen from
        // the next check on (within 64 answers; at once after an `apply`).
        other.apply(&changes(4, &[(90, 4)], &[], &[])).unwrap();
        let answers: Vec<_> = (0..SEEN_CHECK_EVERY).map(|_| at(&s, 90)).collect();
        assert_eq!(answers.last(), Some(&Some((ROOM, 4))));
        other.apply(&changes(5, &[(95, 5)], &[], &[])).unwrap();
        s.apply(&changes(6, &[(10, 6)], &[], &[])).unwrap();
        assert_eq!(at(&s, 95), Some((ROOM, 5)));
        assert_eq!(at(&s, 80), None);
        drop((s, other));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_store_checkpoints_its_applies_on_a_thread_of_its_own() {
        let dir = std::env::temp_dir().join(format!("sotto-store-{}", Uuid::new_v4()));
        let path = dir.join("store.db");
        let s = SqliteStore::open(&path).unwrap();
        let marker = vec![0xa5u8; 2048];
        let step = Changes {
            cursors: vec![(ROOM, 1)],
            history_put: vec![(ROOM, 1, marker.clone())],
            ..Changes::default()
        };
        s.apply(&step).unwrap();
        // Then 1.2 MB more (the thread wakes after about 1 MiB): about 300
        // pages in the WAL, far below SQLite's own 1,000-page checkpoint, so
        // only the checkpoint thread moves them into the file.
        for seq in 2..600u64 {
            let filler = Changes {
                cursors: vec![(ROOM, seq)],
                history_put: vec![(ROOM, seq, vec![seq as u8; 2048])],
                ..Changes::default()
            };
            s.apply(&filler).unwrap();
        }
        let in_file = || {
            std::fs::read(&path)
                .unwrap()
                .windows(marker.len())
                .any(|w| w == marker)
        };
        let mut moved = false;
        for _ in 0..300 {
            if in_file() {
                moved = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(s); // (joins the thread)
        let _ = std::fs::remove_dir_all(&dir);
        assert!(moved, "the step stayed in the WAL");
    }

    #[test]
    fn apply_moves_cursors_forward_records_seen_once_and_keeps_history() {
        let s = SqliteStore::in_memory().unwrap();
        s.apply(&changes(5, &[(100, 4)], &[4, 5], &[])).unwrap();
        s.apply(&changes(3, &[(100, 9)], &[], &[5])).unwrap();
        assert_eq!(s.cursors().unwrap()[&ROOM], 5, "never back");
        assert_eq!(
            s.seen_at(BOB, Uuid::from_u128(100)).unwrap(),
            Some((ROOM, 4)),
            "the first place stays"
        );
        assert_eq!(s.seen_at(BOB, Uuid::from_u128(101)).unwrap(), None);
        assert_eq!(s.history_page(ROOM, None, 10).unwrap(), vec![(4, vec![4])]);
        s.apply(&Changes::default()).unwrap();
    }

    #[test]
    fn apply_is_all_or_none() {
        let s = SqliteStore::in_memory().unwrap();
        s.apply(&changes(2, &[], &[2], &[])).unwrap();
        // A seq the store cannot hold fails the apply after the cursor row.
        let mut bad = changes(7, &[(100, 7)], &[7], &[2]);
        bad.history_put.push((ROOM, u64::MAX, vec![0]));
        assert!(s.apply(&bad).is_err());
        assert_eq!(s.cursors().unwrap()[&ROOM], 2);
        assert_eq!(s.seen_at(BOB, Uuid::from_u128(100)).unwrap(), None);
        assert_eq!(s.history_page(ROOM, None, 10).unwrap(), vec![(2, vec![2])]);
    }

    /// A crash between the feed's step and the apply: the store still holds
    /// the old cursor, the relay replays from it, and the replayed messages
    /// are new again (not replays), so each is shown once.
    #[test]
    fn a_crash_before_apply_replays_from_the_stored_cursor() {
        use sotto_engine::feed::{Arrival, Feed, Seen};
        let dir = std::env::temp_dir().join(format!("sotto-store-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.db");
        let (me, mine, bob_device) = (Uuid::from_u128(7), Uuid::from_u128(8), Uuid::from_u128(9));
        let step = |store: &SqliteStore, seqs: std::ops::RangeInclusive<u64>| {
            let mut feed = Feed::new(me, mine);
            feed.connect([ROOM], store.cursors().unwrap());
            let mut shown = Vec::new();
            for seq in seqs {
                assert_eq!(feed.message(ROOM, seq, BOB, bob_device), Arrival::Open);
                let id = Uuid::from_u128(1000 + u128::from(seq));
                let stored = store.seen_at(BOB, id).unwrap();
                assert_eq!(feed.seen(BOB, id, ROOM, seq, stored), Seen::New);
                feed.settle(ROOM, seq, Some(vec![seq as u8]));
                shown.push(seq);
            }
            (feed.take_changes(), shown)
        };
        {
            let store = SqliteStore::open(&path).unwrap();
            let (c, _) = step(&store, 1..=3);
            store.apply(&c).unwrap();
            let (_lost, _) = step(&store, 4..=6);
            // crash: the process dies before the apply (and before any event)
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.cursors().unwrap()[&ROOM], 3);
        let (c, shown) = step(&store, 4..=6);
        store.apply(&c).unwrap();
        assert_eq!(shown, vec![4, 5, 6]);
        assert_eq!(store.history_page(ROOM, None, 10).unwrap().len(), 6);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_store_from_before_the_control_mark_opens_with_its_outbox() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE outbox (n INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL UNIQUE,
                room_id TEXT NOT NULL, envelope BLOB NOT NULL);
             INSERT INTO outbox (client_id, room_id, envelope)
                VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001', x'0102');",
        )
        .unwrap();
        let s = SqliteStore::init(conn).unwrap();
        let out = s.outbox().unwrap();
        assert_eq!(out.len(), 1);
        assert!(!out[0].control);
        // Opening it again finds the columns added.
        let conn = s.conn.into_inner().unwrap();
        let s = SqliteStore::init(conn).unwrap();
        assert_eq!(s.outbox().unwrap().len(), 1);
    }

    #[test]
    fn the_outbox_keeps_one_entry_per_client_id() {
        let s = SqliteStore::in_memory().unwrap();
        let room = ROOM;
        let e = OutboxEntry {
            client_id: Uuid::from_u128(2),
            room_id: room,
            envelope: vec![1, 2],
            control: false,
        };
        let statement = OutboxEntry {
            client_id: Uuid::from_u128(4),
            control: true,
            ..e.clone()
        };
        s.outbox_push(&e).unwrap();
        s.outbox_push(&e).unwrap();
        s.outbox_push(&statement).unwrap();
        assert_eq!(s.outbox().unwrap(), vec![e.clone(), statement.clone()]);
        s.outbox_remove(statement.client_id).unwrap();
        assert_eq!(s.outbox().unwrap(), vec![e.clone()]);
        assert!(s.outbox_contains(e.client_id).unwrap());
        assert!(!s.outbox_contains(statement.client_id).unwrap());
        s.outbox_remove(e.client_id).unwrap();
        assert!(s.outbox().unwrap().is_empty());
    }
}
