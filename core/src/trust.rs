//! Trust on first use (TOFU): pin each contact's identity key the first time
//! it is seen, and flag any different key the relay later serves — the visible
//! sign of a key substitution by a malicious relay, or of a re-installed device.
//!
//! Sans-I/O: [`TrustStore`] is a serialisable snapshot the caller persists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::IdentityPublicKey;

/// How a served identity key relates to the pinned one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustDecision {
    /// No key was pinned for this user; the served key is now pinned.
    FirstSeen,
    /// The served key equals the pinned key.
    Unchanged,
    /// The served key differs from the pinned one. The pin is kept until the user
    /// accepts the new key with [`TrustStore::accept`]; warn them.
    Changed {
        /// The key that stays pinned.
        pinned: IdentityPublicKey,
        /// Whether the pinned key had been verified by safety number.
        was_verified: bool,
    },
}

/// Classifies a served key against an optional pinned key, without storing anything.
pub fn classify(pinned: Option<&IdentityPublicKey>, served: &IdentityPublicKey) -> TrustDecision {
    match pinned {
        None => TrustDecision::FirstSeen,
        Some(p) if p == served => TrustDecision::Unchanged,
        Some(p) => TrustDecision::Changed {
            pinned: *p,
            was_verified: false,
        },
    }
}

/// A pinned identity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The pinned key.
    pub key: IdentityPublicKey,
    /// Whether the user compared safety numbers for this key.
    pub verified: bool,
}

/// The pins of all contacts, keyed by user id. Serialise it to persist it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustStore {
    pins: BTreeMap<Uuid, Pin>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the relay served `served` for `user_id`: pins it if this is the
    /// first key seen, and reports whether it changed. A changed key is not pinned.
    pub fn observe(&mut self, user_id: Uuid, served: &IdentityPublicKey) -> TrustDecision {
        match self.pins.get(&user_id) {
            None => {
                self.pins.insert(
                    user_id,
                    Pin {
                        key: *served,
                        verified: false,
                    },
                );
                TrustDecision::FirstSeen
            }
            Some(pin) if pin.key == *served => TrustDecision::Unchanged,
            Some(pin) => TrustDecision::Changed {
                pinned: pin.key,
                was_verified: pin.verified,
            },
        }
    }

    /// The user accepts `key` as `user_id`'s identity (after a change warning); it
    /// replaces the pin, unverified.
    pub fn accept(&mut self, user_id: Uuid, key: IdentityPublicKey) {
        self.pins.insert(
            user_id,
            Pin {
                key,
                verified: false,
            },
        );
    }

    /// Marks the pinned key as verified by safety number; `false` if `key` is not the pinned key.
    pub fn mark_verified(&mut self, user_id: Uuid, key: &IdentityPublicKey) -> bool {
        match self.pins.get_mut(&user_id) {
            Some(pin) if pin.key == *key => {
                pin.verified = true;
                true
            }
            _ => false,
        }
    }

    /// The pin for `user_id`, if any.
    pub fn pin(&self, user_id: &Uuid) -> Option<&Pin> {
        self.pins.get(user_id)
    }
}
