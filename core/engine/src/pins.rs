//! Trust on first use, decided once for both clients: which identity key each
//! user is pinned to, when a served device list pins a key (first contact,
//! all active devices agreeing on one), when it is an identity change (a
//! loud event, once per new key), which devices are rejected (a bundle that
//! does not verify, a stray device next to good ones; once each), and a user's
//! trust state (`unknown`, `unverified`, `verified`, `changed`).
//!
//! The driver fetches and verifies the bundles (the core's signature checks),
//! hands the result to [`Pins::observe`], persists the pin it returns, and
//! emits the events. Pins change otherwise only by [`Pins::accept`] (the user
//! accepted a changed key) and [`Pins::mark_verified`] (the safety numbers
//! matched).

use uuid::Uuid;

use crate::ids::{IdMap, IdSet};

/// A user's identity key as this device trusts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// The pinned Ed25519 identity key.
    pub key: [u8; 32],
    /// Verified by safety number.
    pub verified: bool,
}

/// A user's trust state as an app shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// No pin yet (never fetched, or their devices disagree on a first key).
    Unknown,
    /// Pinned on first use.
    Unverified,
    /// Pinned and verified by safety number.
    Verified,
    /// The relay serves an active device under another identity key than the
    /// pin: messages from and to it stop until the user accepts the change.
    Changed,
}

impl Trust {
    /// The state's name (`unknown`, `unverified`, `verified`, `changed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Unverified => "unverified",
            Self::Verified => "verified",
            Self::Changed => "changed",
        }
    }
}

/// One device of a served list whose bundle verified (signatures, ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedDevice {
    /// The device.
    pub device_id: Uuid,
    /// The identity key its bundle is signed under.
    pub identity_key: [u8; 32],
    /// Revoked (the relay gave a revocation time).
    pub revoked: bool,
}

/// What observing a served device list decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// A pin made now (first contact): persist it before using it.
    pub pinned: Option<Pin>,
    /// Identity changes to report (one per new key, once): whether the
    /// replaced pin was verified.
    pub identity_changed: Vec<bool>,
    /// Devices to report as rejected (each once per session).
    pub rejected: Vec<Uuid>,
    /// The served devices under the pinned key (they may be sealed to and
    /// accepted as senders), in the order served.
    pub trusted: Vec<Uuid>,
}

/// Every pin, and what was already reported (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Pins {
    pins: IdMap<Pin>,
    /// Identity changes already reported: (user, new key).
    warned: Vec<(Uuid, [u8; 32])>,
    /// Rejected devices already reported: (user, device).
    rejected: Vec<(Uuid, Uuid)>,
    /// Users whose served list shows another key than the pin.
    changed: IdSet,
}

impl Pins {
    /// The pins a store kept (`me`'s own key pinned, verified, first: a user
    /// trusts their own identity).
    pub fn load(me: Uuid, my_key: [u8; 32], stored: impl IntoIterator<Item = (Uuid, Pin)>) -> Self {
        let mut pins = Self::default();
        for (user, pin) in stored {
            pins.pins.insert(user, pin);
        }
        pins.pins.insert(
            me,
            Pin {
                key: my_key,
                verified: true,
            },
        );
        pins
    }

    /// The pins again from the store (another tab of this device changed
    /// them), keeping what was reported and who is changed; a user whose pin
    /// is now another key was accepted elsewhere and is no longer changed.
    pub fn reload(
        &mut self,
        me: Uuid,
        my_key: [u8; 32],
        stored: impl IntoIterator<Item = (Uuid, Pin)>,
    ) {
        let fresh = Self::load(me, my_key, stored);
        let accepted: Vec<Uuid> = self
            .changed
            .iter()
            .copied()
            .filter(|u| fresh.pin(*u).map(|p| p.key) != self.pin(*u).map(|p| p.key))
            .collect();
        self.changed.retain_not(accepted.iter().copied());
        self.warned.retain(|(u, _)| !accepted.contains(u));
        self.pins = fresh.pins;
    }

    /// Another tab of this device (the one holding the connection) reported
    /// an identity change of `user`: this tab's trust state says so too.
    pub fn changed_elsewhere(&mut self, user: Uuid) {
        if self.pin(user).is_some() {
            self.changed.insert(user);
        }
    }

    /// Every pin, by user id.
    pub fn all(&self) -> impl Iterator<Item = (Uuid, Pin)> + '_ {
        self.pins.iter()
    }

    /// A user's pin.
    pub fn pin(&self, user: Uuid) -> Option<Pin> {
        self.pins.get(&user).copied()
    }

    /// A user's trust state.
    pub fn trust(&self, user: Uuid) -> Trust {
        if self.changed.contains(&user) {
            return Trust::Changed;
        }
        match self.pin(user) {
            None => Trust::Unknown,
            Some(p) if p.verified => Trust::Verified,
            Some(_) => Trust::Unverified,
        }
    }

    /// Takes a served device list of `user`: `served` the devices whose bundle
    /// verified, `invalid` those whose bundle did not (or named another user
    /// or device).
    pub fn observe(&mut self, user: Uuid, served: &[ServedDevice], invalid: &[Uuid]) -> Observed {
        let mut out = Observed::default();
        let mut keys: Vec<[u8; 32]> = Vec::new();
        for d in served.iter().filter(|d| !d.revoked) {
            if !keys.contains(&d.identity_key) {
                keys.push(d.identity_key);
            }
        }
        match self.pin(user) {
            None => {
                // First contact: pin only if all active devices agree on one key.
                if let [key] = keys.as_slice() {
                    let pin = Pin {
                        key: *key,
                        verified: false,
                    };
                    self.pins.insert(user, pin);
                    out.pinned = Some(pin);
                }
            }
            Some(pin) => {
                let mut differs = false;
                for key in keys.iter().filter(|k| **k != pin.key) {
                    differs = true;
                    if !self.warned.contains(&(user, *key)) {
                        self.warned.push((user, *key));
                        out.identity_changed.push(pin.verified);
                    }
                }
                if differs {
                    self.changed.insert(user);
                } else {
                    self.changed.retain_not([user]);
                }
            }
        }
        let pinned = self.pin(user).map(|p| p.key);
        let (good, bad): (Vec<&ServedDevice>, Vec<&ServedDevice>) =
            served.iter().partition(|d| Some(d.identity_key) == pinned);
        out.trusted = good.iter().map(|d| d.device_id).collect();
        let mut rejected: Vec<Uuid> = invalid.to_vec();
        // A device of a changed identity is reported by the identity-change
        // event; a stray device next to good ones is rejected.
        if good.iter().any(|d| !d.revoked) {
            rejected.extend(bad.iter().filter(|d| !d.revoked).map(|d| d.device_id));
        }
        for device in rejected {
            if !self.rejected.contains(&(user, device)) {
                self.rejected.push((user, device));
                out.rejected.push(device);
            }
        }
        out
    }

    /// The user accepted the identity key `key` now served for `user` (their
    /// active devices agree on it): pinned, unverified; the change is no longer
    /// reported. Returns the pin to persist.
    pub fn accept(&mut self, user: Uuid, key: [u8; 32]) -> Pin {
        let pin = Pin {
            key,
            verified: false,
        };
        self.pins.insert(user, pin);
        self.warned.retain(|(u, _)| *u != user);
        self.changed.retain_not([user]);
        pin
    }

    /// Marks `user`'s pin verified (after the safety numbers matched). Returns
    /// the pin to persist, or `None` without a pin.
    pub fn mark_verified(&mut self, user: Uuid) -> Option<Pin> {
        let pin = self.pins.get_mut(&user)?;
        pin.verified = true;
        Some(*pin)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ME: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);
    const D1: Uuid = Uuid::from_u128(11);
    const D2: Uuid = Uuid::from_u128(12);
    const D3: Uuid = Uuid::from_u128(13);

    fn dev(device_id: Uuid, key: u8, revoked: bool) -> ServedDevice {
        ServedDevice {
            device_id,
            identity_key: [key; 32],
            revoked,
        }
    }

    #[test]
    fn first_contact_pins_only_an_agreed_key() {
        let mut p = Pins::load(ME, [1; 32], []);
        assert_eq!(p.trust(ME), Trust::Verified);
        // Two active keys: no pin, nothing trusted.
        let o = p.observe(BOB, &[dev(D1, 7, false), dev(D2, 8, false)], &[]);
        assert_eq!(o.pinned, None);
        assert!(o.trusted.is_empty());
        assert_eq!(p.trust(BOB), Trust::Unknown);
        // One active key (a revoked device under another key does not count).
        let o = p.observe(BOB, &[dev(D1, 7, false), dev(D2, 8, true)], &[D3]);
        let pin = Pin {
            key: [7; 32],
            verified: false,
        };
        assert_eq!(o.pinned, Some(pin));
        assert_eq!(o.trusted, vec![D1]);
        assert_eq!(o.rejected, vec![D3], "an invalid bundle is rejected");
        assert_eq!(p.trust(BOB), Trust::Unverified);
        assert_eq!(
            p.mark_verified(BOB),
            Some(Pin {
                verified: true,
                ..pin
            })
        );
        assert_eq!(p.trust(BOB), Trust::Verified);
        assert_eq!(p.mark_verified(Uuid::nil()), None);
    }

    #[test]
    fn a_changed_key_is_reported_once_until_accepted() {
        let mut p = Pins::load(
            ME,
            [1; 32],
            [(
                BOB,
                Pin {
                    key: [7; 32],
                    verified: true,
                },
            )],
        );
        let o = p.observe(BOB, &[dev(D1, 9, false)], &[]);
        assert_eq!(o.identity_changed, vec![true]);
        assert!(o.trusted.is_empty());
        assert!(
            o.rejected.is_empty(),
            "reported as a change, not a rejection"
        );
        assert_eq!(p.trust(BOB), Trust::Changed);
        let o = p.observe(BOB, &[dev(D1, 9, false)], &[]);
        assert!(o.identity_changed.is_empty(), "once per key");
        let pin = p.accept(BOB, [9; 32]);
        assert_eq!(
            pin,
            Pin {
                key: [9; 32],
                verified: false
            }
        );
        assert_eq!(p.trust(BOB), Trust::Unverified);
        let o = p.observe(BOB, &[dev(D1, 9, false)], &[]);
        assert_eq!(o.trusted, vec![D1]);
        // A change back is reported again (the warnings were cleared).
        let o = p.observe(BOB, &[dev(D1, 7, false)], &[]);
        assert_eq!(o.identity_changed, vec![false]);
    }

    #[test]
    fn a_following_tab_keeps_a_change_reported_elsewhere_until_accepted() {
        let stored = [(
            BOB,
            Pin {
                key: [7; 32],
                verified: true,
            },
        )];
        let mut p = Pins::load(ME, [1; 32], stored);
        p.changed_elsewhere(Uuid::nil());
        assert_eq!(
            p.trust(Uuid::nil()),
            Trust::Unknown,
            "no pin: nothing changed"
        );
        p.changed_elsewhere(BOB);
        assert_eq!(p.trust(BOB), Trust::Changed);
        p.reload(ME, [1; 32], stored);
        assert_eq!(p.trust(BOB), Trust::Changed, "the same pin: still changed");
        p.reload(
            ME,
            [1; 32],
            [(
                BOB,
                Pin {
                    key: [9; 32],
                    verified: false,
                },
            )],
        );
        assert_eq!(p.trust(BOB), Trust::Unverified, "accepted in the other tab");
    }

    #[test]
    fn a_stray_device_next_to_good_ones_is_rejected_once() {
        let mut p = Pins::load(
            ME,
            [1; 32],
            [(
                BOB,
                Pin {
                    key: [7; 32],
                    verified: false,
                },
            )],
        );
        let served = [dev(D1, 7, false), dev(D2, 9, false)];
        let o = p.observe(BOB, &served, &[]);
        assert_eq!(o.trusted, vec![D1]);
        assert_eq!(o.rejected, vec![D2]);
        assert_eq!(
            o.identity_changed,
            vec![false],
            "another active key is also a change"
        );
        let o = p.observe(BOB, &served, &[]);
        assert!(o.rejected.is_empty());
        // The stray device gone: the user is no longer changed.
        p.observe(BOB, &[dev(D1, 7, false)], &[]);
        assert_eq!(p.trust(BOB), Trust::Unverified);
    }
}
