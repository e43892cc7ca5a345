//! The device lists of the users this device talks to, decided once for both
//! clients: what is cached and for how long, when an answer is too old to
//! keep, which devices a message may be sealed to, and whether a sending
//! device is known and trusted.
//!
//! The cache lives in memory only (both clients): it is dropped on every
//! connection (announcements may have been missed while away) and for a user
//! on `keys_changed`. An answer fetched before such a drop is *overtaken*: it
//! is not cached ([`Devices::fetch_again`] says so), and both drivers fetch
//! again before using it. A served list is verified here
//! ([`Devices::served_list`]: each bundle's signatures, and that it is the
//! listed user's and device's); the driver only makes its handle of each
//! verified device (`D`: the native SDK's `VerifiedDevice`, the browser's JS
//! object), and gets handles back.

use sotto_core::api::devices::{Device, MAX_KEYS_QUERY_USERS};
use sotto_core::keys::{DeviceBundle, VerifiedDevice};
use uuid::Uuid;

use crate::ids::IdMap;
use crate::pins::{Observed, Pins, ServedDevice};
use crate::trust::{PinnedKey, SenderRefused, SenderTrust, check_sender};

/// One entry of a device list as the relay served it: what
/// [`Devices::served_list`] reads (a driver that does not parse the whole
/// `Device` fills it from the fields).
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    /// The device the relay lists.
    pub device_id: Uuid,
    /// The user the relay lists it under.
    pub user_id: Uuid,
    /// Its signed bundle.
    pub bundle: &'a DeviceBundle,
    /// When the relay says it was revoked (RFC 3339), if it was.
    pub revoked_at: Option<&'a str>,
}

impl<'a> From<&'a Device> for Listed<'a> {
    fn from(d: &'a Device) -> Self {
        Self {
            device_id: d.device_id,
            user_id: d.user_id,
            bundle: &d.bundle,
            revoked_at: d.revoked_at.as_deref(),
        }
    }
}

/// One served device whose bundle verified, with the driver's handle.
#[derive(Debug, Clone)]
pub struct Known<D> {
    /// The device.
    pub device_id: Uuid,
    /// The identity key its bundle is signed under.
    pub identity_key: [u8; 32],
    /// When the relay says it was revoked (RFC 3339), if it was.
    pub revoked_at: Option<String>,
    /// The driver's verified device (what it seals to, opens with).
    pub handle: D,
}

/// A fetch of device lists the driver is about to make (see
/// [`Devices::fetching`]): answers are cached only if nothing dropped the
/// cache meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch(u64);

impl Fetch {
    /// The fetch's number (the bindings pass it through JavaScript).
    pub fn number(self) -> u64 {
        self.0
    }

    /// A fetch from [`Fetch::number`].
    pub fn from_number(n: u64) -> Self {
        Self(n)
    }
}

/// Why nothing may be sealed to these users now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsealable {
    /// These users serve active devices only under another identity key than
    /// the pin (or have no pin): nothing is sent until the user accepts or
    /// verifies.
    IdentityChanged(Vec<Uuid>),
    /// None of the users has an active, trusted device.
    NoDevices,
    /// These users' lists are not cached (never fetched, or dropped since):
    /// fetch them, then ask again.
    Unfetched(Vec<Uuid>),
}

/// The next device-list query of a fetch ([`Devices::query`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Ask the relay for these users' lists (`POST /api/v1/keys/query`, with
    /// revoked devices; at most [`MAX_KEYS_QUERY_USERS`]), hand each user's
    /// answer to [`Devices::served_list`] under `fetch`, then ask again.
    Keys {
        /// The users to ask for.
        users: Vec<Uuid>,
        /// The fetch the answers are taken under.
        fetch: Fetch,
    },
    /// Every list asked for is cached.
    Done,
    /// The lists kept changing under the fetches (each answer was overtaken
    /// by a `keys_changed` or a new connection): try again later.
    KeepsChanging,
}

/// Rounds of queries a fetch may take for each chunk of
/// [`MAX_KEYS_QUERY_USERS`] users before it gives up.
const QUERY_ROUNDS: usize = 4;

/// What is known of a sending device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender<D> {
    /// Not in the cached list (or the list is not cached): refetch once.
    Unknown,
    /// Known and refused.
    Refused(SenderRefused),
    /// Known and trusted this much.
    Trusted(D, SenderTrust),
}

/// The device-list cache (see the module docs).
#[derive(Debug, Clone)]
pub struct Devices<D> {
    lists: IdMap<Vec<Known<D>>>,
    generation: u64,
}

impl<D> Default for Devices<D> {
    fn default() -> Self {
        Self {
            lists: IdMap::default(),
            generation: 0,
        }
    }
}

impl<D: Clone> Devices<D> {
    /// Of these users, those whose list is not cached (to fetch).
    pub fn missing(&self, users: &[Uuid]) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = Vec::new();
        for u in users {
            if !self.lists.contains_key(u) && !out.contains(u) {
                out.push(*u);
            }
        }
        out
    }

    /// The next query of a fetch of `users`' lists, after `asked` queries
    /// of it: the missing users (the first [`MAX_KEYS_QUERY_USERS`] of them),
    /// until all are cached. An overtaken answer is not cached, so its users
    /// are asked for again; the rounds are bounded. Both drivers fetch
    /// device lists only this way.
    pub fn query(&self, users: &[Uuid], asked: usize) -> Query {
        let missing = self.missing(users);
        if missing.is_empty() {
            return Query::Done;
        }
        let chunks = users.len().div_ceil(MAX_KEYS_QUERY_USERS).max(1);
        if asked >= QUERY_ROUNDS.saturating_mul(chunks) {
            return Query::KeepsChanging;
        }
        Query::Keys {
            users: missing.into_iter().take(MAX_KEYS_QUERY_USERS).collect(),
            fetch: self.fetching(),
        }
    }

    /// A user's cached list (trusted devices first, in the order served).
    pub fn list(&self, user: Uuid) -> Option<&[Known<D>]> {
        self.lists.get(&user).map(Vec::as_slice)
    }

    /// The driver is about to fetch lists: the token to hand back with them.
    pub fn fetching(&self) -> Fetch {
        Fetch(self.generation)
    }

    /// Whether lists fetched under `fetch` were overtaken (the cache was
    /// dropped since): the driver fetches them again before relying on them.
    pub fn fetch_again(&self, fetch: Fetch) -> bool {
        fetch.0 != self.generation
    }

    /// Takes `user`'s served list, fetched under `fetch`: `verified` the
    /// devices whose bundle verified (with the driver's handles), `invalid`
    /// those whose bundle did not or named another user or device. The pins
    /// decide first contact, identity changes and rejections (the driver
    /// persists [`Observed::pinned`] and emits the events); the list is cached,
    /// trusted devices first, unless the fetch was overtaken.
    pub fn served(
        &mut self,
        pins: &mut Pins,
        user: Uuid,
        verified: Vec<Known<D>>,
        invalid: &[Uuid],
        fetch: Fetch,
    ) -> Observed {
        let served: Vec<ServedDevice> = verified
            .iter()
            .map(|k| ServedDevice {
                device_id: k.device_id,
                identity_key: k.identity_key,
                revoked: k.revoked_at.is_some(),
            })
            .collect();
        let observed = pins.observe(user, &served, invalid);
        let (mut kept, others): (Vec<Known<D>>, Vec<Known<D>>) = verified
            .into_iter()
            .partition(|k| observed.trusted.contains(&k.device_id));
        kept.extend(others);
        if !self.fetch_again(fetch) {
            self.lists.insert(user, kept);
        }
        observed
    }

    /// Takes `user`'s device list as the relay served it, fetched under
    /// `fetch`: every bundle is verified (its signatures, and that it is
    /// `user`'s and the listed device's; any other is invalid and reported as
    /// rejected), then [`Devices::served`] decides. `unreadable`: the ids of
    /// entries the driver could not even parse (rejected too). `handle` makes
    /// the driver's handle of a verified device (with the relay's entry, e.g.
    /// for its revocation time).
    pub fn served_list(
        &mut self,
        pins: &mut Pins,
        user: Uuid,
        list: &[Listed<'_>],
        unreadable: &[Uuid],
        fetch: Fetch,
        mut handle: impl FnMut(VerifiedDevice, &Listed<'_>) -> D,
    ) -> Observed {
        let mut verified = Vec::new();
        let mut invalid = unreadable.to_vec();
        for d in list {
            let theirs =
                d.user_id == user && d.bundle.user_id == user && d.bundle.device_id == d.device_id;
            match d.bundle.verify() {
                Ok(v) if theirs => verified.push(Known {
                    device_id: v.device_id(),
                    identity_key: v.identity_key().to_bytes(),
                    revoked_at: d.revoked_at.map(str::to_owned),
                    handle: handle(v, d),
                }),
                _ => invalid.push(d.device_id),
            }
        }
        self.served(pins, user, verified, &invalid, fetch)
    }

    /// The identity key `user`'s active devices in the cached list all agree
    /// on: what accepting their identity change pins ([`Pins::accept`]).
    /// `None` when the list is not cached, has no active device, or its active
    /// devices are under more than one key (nothing to accept).
    pub fn agreed_key(&self, user: Uuid) -> Option<[u8; 32]> {
        let mut keys = self
            .lists
            .get(&user)?
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|k| k.identity_key);
        let first = keys.next()?;
        keys.all(|k| k == first).then_some(first)
    }

    /// Drops one user's list (`keys_changed`, a sender device not in it) or
    /// all (a new connection): fetches already under way are overtaken.
    pub fn forget(&mut self, user: Option<Uuid>) {
        self.generation = self.generation.wrapping_add(1);
        match user {
            Some(u) => {
                self.lists.remove(&u);
            }
            None => self.lists.clear(),
        }
    }

    /// The devices a message to these users is sealed to: every active device
    /// under each user's pinned key. A user whose active devices are all
    /// under another key (an identity change not accepted) stops the send,
    /// and so does a user whose list is not cached: a message is never
    /// sealed around a member because their list was dropped meanwhile.
    pub fn sealable(&self, pins: &Pins, users: &[Uuid]) -> Result<Vec<(Uuid, D)>, Unsealable> {
        let missing = self.missing(users);
        if !missing.is_empty() {
            return Err(Unsealable::Unfetched(missing));
        }
        let mut out = Vec::new();
        let mut changed = Vec::new();
        for user in users {
            let Some(list) = self.lists.get(user) else {
                continue;
            };
            let pin = pins.pin(*user).map(|p| p.key);
            let before = out.len();
            let mut other_identity = false;
            for k in list.iter().filter(|k| k.revoked_at.is_none()) {
                if Some(k.identity_key) == pin {
                    out.push((*user, k.handle.clone()));
                } else {
                    other_identity = true;
                }
            }
            if out.len() == before && other_identity && !changed.contains(user) {
                changed.push(*user);
            }
        }
        if !changed.is_empty() {
            return Err(Unsealable::IdentityChanged(changed));
        }
        if out.is_empty() {
            return Err(Unsealable::NoDevices);
        }
        Ok(out)
    }

    /// The sending device `device` of `user` for a message the relay stored
    /// at `stored_at` (RFC 3339), as seen by `me`: [`check_sender`] on the
    /// cached list.
    pub fn sender(
        &self,
        pins: &Pins,
        me: Uuid,
        user: Uuid,
        device: Uuid,
        stored_at: &str,
    ) -> Sender<&D> {
        let Some(k) = self
            .lists
            .get(&user)
            .and_then(|l| l.iter().find(|k| k.device_id == device))
        else {
            return Sender::Unknown;
        };
        let pin = pins.pin(user).map(|p| PinnedKey {
            key: p.key,
            verified: p.verified,
        });
        match check_sender(
            me,
            user,
            pin,
            k.identity_key,
            k.revoked_at.as_deref(),
            stored_at,
        ) {
            Ok(trust) => Sender::Trusted(&k.handle, trust),
            Err(e) => Sender::Refused(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const ME: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);
    const CAROL: Uuid = Uuid::from_u128(3);
    const D1: Uuid = Uuid::from_u128(11);
    const D2: Uuid = Uuid::from_u128(12);
    const D3: Uuid = Uuid::from_u128(13);

    fn known(id: Uuid, key: u8, revoked: Option<&str>) -> Known<Uuid> {
        Known {
            device_id: id,
            identity_key: [key; 32],
            revoked_at: revoked.map(str::to_owned),
            handle: id,
        }
    }

    fn setup() -> (Devices<Uuid>, Pins) {
        (Devices::default(), Pins::load(ME, [1; 32], []))
    }

    #[test]
    fn a_served_list_is_cached_trusted_first_and_sealed_to_its_active_devices() {
        let (mut d, mut pins) = setup();
        assert_eq!(d.missing(&[BOB, BOB, CAROL]), vec![BOB, CAROL]);
        let f = d.fetching();
        let o = d.served(
            &mut pins,
            BOB,
            vec![
                known(D1, 7, Some("2026-01-01T00:00:00Z")),
                known(D2, 7, None),
            ],
            &[D3],
            f,
        );
        assert!(o.pinned.is_some(), "first contact pins");
        assert_eq!(o.rejected, vec![D3]);
        assert_eq!(d.missing(&[BOB]), Vec::<Uuid>::new());
        assert_eq!(
            d.sealable(&pins, &[BOB]),
            Ok(vec![(BOB, D2)]),
            "not the revoked one"
        );
        assert_eq!(
            d.sealable(&pins, &[BOB, CAROL]),
            Err(Unsealable::Unfetched(vec![CAROL]))
        );
        let _ = d.served(&mut pins, CAROL, vec![], &[], d.fetching());
        assert_eq!(d.sealable(&pins, &[CAROL]), Err(Unsealable::NoDevices));
    }

    #[test]
    fn an_answer_overtaken_by_keys_changed_is_not_cached() {
        let (mut d, mut pins) = setup();
        let f = d.fetching();
        d.forget(Some(BOB)); // keys_changed while the fetch was out
        assert!(d.fetch_again(f));
        let _ = d.served(&mut pins, BOB, vec![known(D1, 7, None)], &[], f);
        assert!(d.list(BOB).is_none(), "stale answer not cached");
        let f = d.fetching();
        let _ = d.served(&mut pins, BOB, vec![known(D2, 7, None)], &[], f);
        assert_eq!(d.list(BOB).map(<[_]>::len), Some(1));
        d.forget(None); // a new connection
        assert_eq!(d.missing(&[BOB]), vec![BOB]);
    }

    #[test]
    fn a_changed_identity_stops_the_send_and_its_devices_never_send() {
        let (mut d, mut pins) = setup();
        let f = d.fetching();
        let _ = d.served(&mut pins, BOB, vec![known(D1, 7, None)], &[], f);
        d.forget(Some(BOB));
        let f = d.fetching();
        let o = d.served(&mut pins, BOB, vec![known(D2, 9, None)], &[], f);
        assert_eq!(o.identity_changed, vec![false]);
        let _ = d.served(&mut pins, ME, vec![known(D3, 1, None)], &[], d.fetching());
        assert_eq!(
            d.sealable(&pins, &[ME, BOB]),
            Err(Unsealable::IdentityChanged(vec![BOB]))
        );
        let stamp = "2026-06-01T00:00:00Z";
        assert_eq!(
            d.sender(&pins, ME, BOB, D2, stamp),
            Sender::Refused(SenderRefused::UntrustedSender)
        );
        assert_eq!(d.sender(&pins, ME, BOB, D1, stamp), Sender::Unknown);
        // Accepted: the new key is pinned, the device sends and receives.
        pins.accept(BOB, [9; 32]);
        assert_eq!(d.sealable(&pins, &[BOB]), Ok(vec![(BOB, D2)]));
        assert_eq!(
            d.sender(&pins, ME, BOB, D2, stamp),
            Sender::Trusted(&D2, SenderTrust::Unverified)
        );
    }

    #[test]
    fn a_revoked_device_sends_only_what_was_stored_before_its_revocation() {
        let (mut d, mut pins) = setup();
        let f = d.fetching();
        let _ = d.served(
            &mut pins,
            BOB,
            vec![
                known(D1, 7, None),
                known(D2, 7, Some("2026-06-01T00:00:00Z")),
            ],
            &[],
            f,
        );
        assert_eq!(
            d.sender(&pins, ME, BOB, D2, "2026-05-01T00:00:00Z"),
            Sender::Trusted(&D2, SenderTrust::Unverified)
        );
        assert_eq!(
            d.sender(&pins, ME, BOB, D2, "2026-07-01T00:00:00Z"),
            Sender::Refused(SenderRefused::UnknownDevice)
        );
    }

    #[test]
    fn a_fetch_asks_for_the_missing_in_chunks_again_when_overtaken_and_gives_up() {
        let (mut d, mut pins) = setup();
        let many: Vec<Uuid> = (0..450u128).map(|i| Uuid::from_u128(1000 + i)).collect();
        // First the first 200 missing users, then the next ones.
        let Query::Keys { users, fetch } = d.query(&many, 0) else {
            panic!("a query")
        };
        assert_eq!(users.len(), MAX_KEYS_QUERY_USERS);
        assert_eq!(users.first(), many.first());
        for u in &users {
            d.served(&mut pins, *u, vec![], &[], fetch);
        }
        let Query::Keys { users, .. } = d.query(&many, 1) else {
            panic!("a query")
        };
        assert_eq!(users.first(), many.get(200));
        // An overtaken answer is not cached: its users are asked for again.
        let (mut d, mut pins) = setup();
        let mut asked = 0;
        while let Query::Keys { users, fetch } = d.query(&[BOB], asked) {
            asked += 1;
            d.forget(None); // a new connection overtakes every answer
            for u in &users {
                d.served(&mut pins, *u, vec![known(D1, 7, None)], &[], fetch);
            }
        }
        assert_eq!(d.query(&[BOB], asked), Query::KeepsChanging);
        assert_eq!(asked, QUERY_ROUNDS, "bounded");
        let f = d.fetching();
        d.served(&mut pins, BOB, vec![known(D1, 7, None)], &[], f);
        assert_eq!(d.query(&[BOB], asked), Query::Done, "done once cached");
    }
}
