//! People using the SDK, and what the tests wait for.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto_client::sotto_core::keys::RsaBits;
use sotto_client::{
    BackupSecret, Client, Connection, Content, DeviceSetup, Event, EventStream, ReceivedMessage,
    Session, SessionOptions, SqliteStore,
};
use sotto_tests::process::RelayProcess;
use uuid::Uuid;
use zeroize::Zeroizing;

pub const PASSWORD: &str = "a long enough test passphrase";
pub const WAIT: Duration = Duration::from_secs(30);

/// One device of one person: a session, its events, and its store file.
pub struct Person {
    pub name: String,
    pub session: Session,
    pub events: EventStream,
    pub store_dir: tempfile::TempDir,
    /// How often each text message arrived, over every event read so far.
    pub texts: HashMap<String, usize>,
}

impl Person {
    /// Registers `name`, verifies the e-mail through the relay's outbox link,
    /// logs in, sets up a first device and connects.
    pub async fn register(
        relay: &RelayProcess,
        url: &str,
        name: &str,
        rsa: Option<RsaBits>,
    ) -> Self {
        let client = Client::new(url).unwrap();
        let email = format!("{name}@example.org");
        client.register(name, &email, PASSWORD).await.unwrap();
        let mail = relay.mail_to(&email).await;
        let link = mail.link("verify-email").expect("a verification link");
        client.verify_email(&link).await.unwrap();
        Self::login(url, name, DeviceSetup::New { rsa }).await
    }

    /// Logs `name` in on a new device (fresh store) set up as `setup`, and connects.
    pub async fn login(url: &str, name: &str, setup: DeviceSetup) -> Self {
        let store_dir = tempfile::tempdir().unwrap();
        let session = Self::open(url, name, setup, &store_dir.path().join("store.db")).await;
        Self::connected(name, session, store_dir).await
    }

    pub async fn open(url: &str, name: &str, setup: DeviceSetup, store: &Path) -> Session {
        let client = Client::new(url).unwrap();
        client.login(name, PASSWORD).await.unwrap();
        let store = Arc::new(SqliteStore::open(store).unwrap());
        Session::open(
            client,
            store,
            SessionOptions {
                store_passphrase: Zeroizing::new(PASSWORD.into()),
                setup,
                device_name: Some(format!("{name}'s test device")),
            },
        )
        .await
        .unwrap()
    }

    pub async fn connected(name: &str, session: Session, store_dir: tempfile::TempDir) -> Self {
        let events = session.events().unwrap();
        session.connect();
        let mut p = Self {
            name: name.into(),
            session,
            events,
            store_dir,
            texts: HashMap::new(),
        };
        p.wait_for(|e| matches!(e, Event::Connection(Connection::Online)))
            .await;
        p
    }

    /// Reopens this person's session from its store (as after an app restart).
    pub async fn restart(self, url: &str) -> Self {
        self.session.disconnect().await;
        let Person {
            name, store_dir, ..
        } = self;
        let session = Self::open(
            url,
            &name,
            DeviceSetup::New { rsa: None },
            &store_dir.path().join("store.db"),
        )
        .await;
        Self::connected(&name, session, store_dir).await
    }

    pub fn id(&self) -> Uuid {
        self.session.user_id()
    }

    /// A key backup of this device, and the secret that opens it.
    pub async fn backup(&self) -> (Vec<u8>, BackupSecret) {
        let blob = self
            .session
            .export_backup("backup passphrase")
            .await
            .unwrap();
        (
            blob,
            BackupSecret::Passphrase(Zeroizing::new("backup passphrase".into())),
        )
    }

    /// The next event within `wait` (`None` on timeout); counts text messages.
    async fn recv(&mut self, wait: Duration) -> Option<Event> {
        match tokio::time::timeout(wait, self.events.next()).await {
            Ok(Some(e)) => {
                if std::env::var_os("SOTTO_TEST_EVENTS").is_some() {
                    eprintln!("{}: {e:?}", self.name);
                }
                if let Event::Message(m) = &e
                    && let Content::Text { body } = &m.content
                {
                    *self.texts.entry(body.clone()).or_default() += 1;
                }
                Some(e)
            }
            Ok(None) => panic!("{}: event stream ended", self.name),
            Err(_) => None,
        }
    }

    /// The next event that `want` accepts (others are skipped), within [`WAIT`].
    pub async fn wait_for(&mut self, want: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + WAIT;
        // What went by instead, to tell a lost message from a late one.
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Some(e) if want(&e) => return e,
                Some(e) => skipped.push(format!("{e:?}").chars().take(300).collect::<String>()),
                None => panic!(
                    "{}: no matching event within {WAIT:?}; skipped:\n{}",
                    self.name,
                    skipped.join("\n")
                ),
            }
        }
    }

    /// Waits for the text message `text`, skipping other messages.
    pub async fn expect_text(&mut self, text: &str) -> ReceivedMessage {
        let want = Content::text(text);
        match self
            .wait_for(|e| matches!(e, Event::Message(m) if m.content == want))
            .await
        {
            Event::Message(m) => m,
            _ => unreachable!(),
        }
    }

    /// Reads events until every one of `texts` arrived (counting those read
    /// earlier), then for `linger` more; returns how often each text arrived.
    pub async fn collect_texts(
        &mut self,
        texts: &[String],
        linger: Duration,
    ) -> HashMap<String, usize> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !texts.iter().all(|t| self.texts.contains_key(t)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.recv(left).await.is_none() {
                let missing: Vec<&String> = texts
                    .iter()
                    .filter(|t| !self.texts.contains_key(*t))
                    .collect();
                panic!(
                    "{}: {} messages never arrived: {missing:?}",
                    self.name,
                    missing.len()
                );
            }
        }
        let until = Instant::now() + linger;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if self.recv(left).await.is_none() {
                break;
            }
        }
        self.texts.clone()
    }
}

/// Alice (an X25519 device) and Bob (`bob_rsa`: an RSA device too), registered
/// through `url`, connected, and a group room `name` of the two (Bob has Alice
/// in his contacts, so he is a member at once).
pub async fn alice_and_bob(
    relay: &RelayProcess,
    url: &str,
    bob_rsa: Option<RsaBits>,
    name: &str,
) -> (Person, Person, Uuid) {
    let alice = Person::register(relay, url, "alice", None).await;
    let bob = Person::register(relay, url, "bob", bob_rsa).await;
    // Bob knows Alice: her room takes him in without an invitation.
    bob.session
        .client()
        .add_contact(alice.id(), None)
        .await
        .unwrap();
    let room = alice
        .session
        .create_room(name, &[bob.id()])
        .await
        .unwrap()
        .room
        .id;
    (alice, bob, room)
}

/// Registers `name` and verifies the e-mail through the relay's outbox link
/// (no device yet).
pub async fn register_account(relay: &RelayProcess, url: &str, name: &str) {
    relay.register_verified(url, name, PASSWORD).await;
}

/// A message text that is long and unique enough to be searched for at rest.
pub fn text(label: &str) -> String {
    format!("{label} -- secret words {}", Uuid::new_v4().simple())
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Asserts that no plaintext is anywhere in the relay's data: every file of
/// its data directory (SQLite database, WAL, attachments), and a dump of its
/// PostgreSQL database. The bytes it does store (a username) are found by the
/// same search, so the search itself works.
pub fn assert_no_plaintext_at_rest(relay: &RelayProcess, plaintexts: &[String], control: &str) {
    let mut blobs: Vec<(String, Vec<u8>)> = files_under(&relay.data_dir())
        .into_iter()
        .filter_map(|f| Some((f.display().to_string(), std::fs::read(&f).ok()?)))
        .collect();
    if let Some(url) = &relay.database_url {
        blobs.push(("pg_dump".into(), sotto_tests::pg_dump(url)));
    }
    let find = |needle: &[u8]| -> Vec<String> {
        let f = memchr::memmem::Finder::new(needle);
        blobs
            .iter()
            .filter(|(_, b)| f.find(b).is_some())
            .map(|(n, _)| n.clone())
            .collect()
    };
    assert!(
        !find(control.as_bytes()).is_empty(),
        "control {control:?} not found: the search is broken"
    );
    for p in plaintexts {
        let hits = find(p.as_bytes());
        assert!(hits.is_empty(), "plaintext {p:?} found at rest in {hits:?}");
    }
}
