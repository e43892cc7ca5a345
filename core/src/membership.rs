//! Signed membership statements: who is in a group room, said by its owner so
//! that a relay cannot add readers (`docs/protocol.md` §12).
//!
//! A statement lists every member of one room at one **epoch** (a number that
//! only grows) and names the room's **owner**. It is signed by a device of the
//! user entitled to sign it: the owner itself for a room's first statement, and
//! for every later one the owner *as the previous statement says*, so ownership
//! passes only by a statement the previous owner signed. Clients seal a room's
//! messages only to devices of users in the newest statement they have
//! verified; a member the relay lists without one gets nothing.
//!
//! This module parses, signs and verifies statements and decides whether one
//! may follow another ([`check_successor`]). Which statement a client holds,
//! which devices may sign (verified against the pinned identity, not revoked
//! before the statement was posted) and how statements travel (a control
//! message in the room) belong to the client engine.
//!
//! ```
//! use sotto_core::keys::{DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair};
//! use sotto_core::membership::{self, MembershipStatement, Signer, Successor};
//! use uuid::Uuid;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (room, alice, bob, laptop) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3), Uuid::from_u128(4));
//! let identity = IdentityKeyPair::generate()?;
//! let keys = DeviceKeys::generate(DeviceKeyOptions::default())?;
//! let device = DeviceBundle::create(&identity, &keys, alice, laptop)?.verify()?;
//!
//! // Alice's laptop signs the room's first statement: Alice (owner) and Bob.
//! let signer = Signer { user: alice, device: laptop, keys: &keys };
//! let first = MembershipStatement::sign(room, 1, alice, &[alice, bob], signer)?;
//! let bytes = first.to_bytes();
//!
//! // Another member's client parses it, checks the signature under the signer's
//! // verified device, then whether it may follow what the client held (nothing).
//! let received = MembershipStatement::from_bytes(&bytes)?;
//! received.verify_signature(&device)?;
//! assert_eq!(membership::check_successor(room, None, &received)?, Successor::Newer);
//! assert!(received.members().contains(&bob));
//! # Ok(())
//! # }
//! ```

use uuid::Uuid;

use crate::encoding::{Reader, Writer};
use crate::error::DecodeError;
use crate::keys::{DeviceKeys, VerifiedDevice};
use crate::primitives;

/// The statement format's version byte.
pub const VERSION: u8 = 0x01;
/// Domain separation of the statement signature (`docs/protocol.md` §1).
pub const SIGNATURE_CONTEXT: &[u8] = b"SOTTO-v1 room-membership\0";
/// Most members one statement lists (the relay's room-size ceiling).
pub const MAX_MEMBERS: usize = 1000;
/// Bytes before the member list.
pub const FIXED_LEN: usize = 75;
/// Bytes of the signature at the end.
pub const SIGNATURE_LEN: usize = 64;

/// Why a statement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// Not a well-formed statement (§12.2).
    #[error("malformed membership statement: {0}")]
    Malformed(#[from] DecodeError),
    /// The epoch is 0 (epochs start at 1).
    #[error("a membership statement's epoch starts at 1")]
    ZeroEpoch,
    /// The member list is empty, too long, not strictly ascending, or does not
    /// list the owner.
    #[error("the member list is not a valid set that includes the owner")]
    BadMembers,
    /// The signer named in the statement is not the device given to verify it.
    #[error("the statement names another signer than the device given")]
    SignerMismatch,
    /// The signature does not verify under the signer's device key.
    #[error("the membership statement's signature does not verify")]
    BadSignature,
    /// The statement is for another room.
    #[error("the membership statement is for another room")]
    WrongRoom,
    /// Signed by a user who may not sign it: for a room's first statement,
    /// anyone but its owner; later, anyone but the owner the held statement names.
    #[error("the membership statement is not signed by the room's owner")]
    NotOwner,
    /// An older epoch than the one held (a replay).
    #[error("the membership statement is older than the one held")]
    Stale,
    /// The held epoch with other contents: the owner's devices forked, or a forgery.
    #[error("another membership statement with the same epoch is held")]
    Conflict,
}

/// One room's members at one epoch, signed by a device of its owner.
#[derive(Clone, PartialEq, Eq)]
pub struct MembershipStatement {
    room_id: Uuid,
    epoch: u64,
    owner: Uuid,
    signer_user: Uuid,
    signer_device: Uuid,
    members: Vec<Uuid>,
    signature: [u8; SIGNATURE_LEN],
}

impl core::fmt::Debug for MembershipStatement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MembershipStatement")
            .field("room_id", &self.room_id)
            .field("epoch", &self.epoch)
            .field("owner", &self.owner)
            .field("signer_user", &self.signer_user)
            .field("signer_device", &self.signer_device)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

/// The device that signs a statement: its user, its id and its keys.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The signing user.
    pub user: Uuid,
    /// Their device.
    pub device: Uuid,
    /// That device's keys.
    pub keys: &'a DeviceKeys,
}

/// How a statement relates to the one held ([`check_successor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Successor {
    /// A newer epoch, signed by the right user: it replaces the held one.
    Newer,
    /// The held statement again (same bytes): nothing changes.
    Same,
}

impl MembershipStatement {
    /// Signs the statement "`members` (which must include `owner`) are `room`'s
    /// members at `epoch`" with `signer`'s device.
    ///
    /// `members` may be in any order and hold duplicates; the statement keeps
    /// them sorted and unique.
    pub fn sign(
        room: Uuid,
        epoch: u64,
        owner: Uuid,
        members: &[Uuid],
        signer: Signer<'_>,
    ) -> Result<Self, MembershipError> {
        let Signer {
            user: signer_user,
            device: signer_device,
            keys,
        } = signer;
        let mut members = members.to_vec();
        members.sort_unstable();
        members.dedup();
        let mut statement = Self {
            room_id: room,
            epoch,
            owner,
            signer_user,
            signer_device,
            members,
            signature: [0; SIGNATURE_LEN],
        };
        statement.check_fields()?;
        let body = statement.body();
        statement.signature = keys.sign(&[SIGNATURE_CONTEXT, body.as_slice()].concat());
        Ok(statement)
    }

    /// Parses a statement strictly (§12.2). Does not check the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MembershipError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version).into());
        }
        let room_id = r.uuid()?;
        let epoch = r.u64()?;
        let owner = r.uuid()?;
        let signer_user = r.uuid()?;
        let signer_device = r.uuid()?;
        let n = usize::from(r.u16()?);
        if n == 0 || n > MAX_MEMBERS {
            return Err(MembershipError::BadMembers);
        }
        if r.remaining() != n * 16 + SIGNATURE_LEN {
            return Err(DecodeError::BadLength.into());
        }
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            members.push(r.uuid()?);
        }
        let signature = r.array::<SIGNATURE_LEN>()?;
        r.finish()?;
        let statement = Self {
            room_id,
            epoch,
            owner,
            signer_user,
            signer_device,
            members,
            signature,
        };
        statement.check_fields()?;
        Ok(statement)
    }

    /// The statement's bytes (§12.2): the signed body, then the signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = self.body();
        w.bytes(&self.signature);
        w.into_vec()
    }

    /// Checks that `device` is the signer the statement names and that the
    /// signature verifies under its signing key. The caller has verified
    /// `device` against the signer's pinned identity key.
    pub fn verify_signature(&self, device: &VerifiedDevice) -> Result<(), MembershipError> {
        if device.user_id() != self.signer_user || device.device_id() != self.signer_device {
            return Err(MembershipError::SignerMismatch);
        }
        let signed = [SIGNATURE_CONTEXT, self.body().as_slice()].concat();
        primitives::ed25519_verify(device.signing_key(), &signed, &self.signature)
            .map_err(|_| MembershipError::BadSignature)
    }

    /// The room.
    pub fn room_id(&self) -> Uuid {
        self.room_id
    }
    /// The epoch (≥ 1; only grows from one statement of a room to the next).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// The room's owner as of this statement.
    pub fn owner(&self) -> Uuid {
        self.owner
    }
    /// The user whose device signed it.
    pub fn signer_user(&self) -> Uuid {
        self.signer_user
    }
    /// The device that signed it.
    pub fn signer_device(&self) -> Uuid {
        self.signer_device
    }
    /// The members, strictly ascending in UUID order (the owner among them).
    pub fn members(&self) -> &[Uuid] {
        &self.members
    }
    /// Whether `user` is a member.
    pub fn lists(&self, user: Uuid) -> bool {
        self.members.binary_search(&user).is_ok()
    }

    fn check_fields(&self) -> Result<(), MembershipError> {
        if self.epoch == 0 {
            return Err(MembershipError::ZeroEpoch);
        }
        let ascending = self.members.windows(2).all(|w| match w {
            [a, b] => a < b,
            _ => true,
        });
        if self.members.is_empty()
            || self.members.len() > MAX_MEMBERS
            || !ascending
            || !self.lists(self.owner)
        {
            return Err(MembershipError::BadMembers);
        }
        Ok(())
    }

    fn body(&self) -> Writer {
        let mut w = Writer::with_capacity(FIXED_LEN + 16 * self.members.len() + SIGNATURE_LEN);
        w.u8(VERSION)
            .bytes(self.room_id.as_bytes())
            .u64(self.epoch)
            .bytes(self.owner.as_bytes())
            .bytes(self.signer_user.as_bytes())
            .bytes(self.signer_device.as_bytes());
        // `check_fields` bounds the count by MAX_MEMBERS, which fits a u16.
        w.u16(u16::try_from(self.members.len()).unwrap_or(u16::MAX));
        for m in &self.members {
            w.bytes(m.as_bytes());
        }
        w
    }
}

/// Whether `next` may follow `held` as `room`'s statement (§12.3). The caller
/// has already checked `next`'s signature ([`MembershipStatement::verify_signature`]).
///
/// - `next` must be for `room`;
/// - with nothing held, it must be signed by its own owner;
/// - an older epoch is [`MembershipError::Stale`]; the held epoch is
///   [`Successor::Same`] when the bytes are equal and [`MembershipError::Conflict`]
///   otherwise;
/// - a newer epoch must be signed by the owner the held statement names (who
///   may name another owner in it: ownership passes only that way).
pub fn check_successor(
    room: Uuid,
    held: Option<&MembershipStatement>,
    next: &MembershipStatement,
) -> Result<Successor, MembershipError> {
    if next.room_id != room {
        return Err(MembershipError::WrongRoom);
    }
    let Some(held) = held else {
        return if next.signer_user == next.owner {
            Ok(Successor::Newer)
        } else {
            Err(MembershipError::NotOwner)
        };
    };
    match next.epoch.cmp(&held.epoch) {
        core::cmp::Ordering::Less => Err(MembershipError::Stale),
        core::cmp::Ordering::Equal if next == held => Ok(Successor::Same),
        core::cmp::Ordering::Equal => Err(MembershipError::Conflict),
        core::cmp::Ordering::Greater if next.signer_user == held.owner => Ok(Successor::Newer),
        core::cmp::Ordering::Greater => Err(MembershipError::NotOwner),
    }
}
