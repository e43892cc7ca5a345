//! Whether a message's sending device is trusted, once for both clients: the
//! sender's pinned identity key (trust on first use, verified by safety
//! number), and the revoked-device rule (`docs/protocol.md`): a revoked
//! device is accepted only for messages the relay stored before its
//! revocation, and never as verified. This user's own devices are `Own`.

use uuid::Uuid;

pub use crate::vault::HistoryTrust as SenderTrust;

/// Why a sending device is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderRefused {
    /// The device's identity key is not the sender's pinned one.
    UntrustedSender,
    /// Revoked before the relay stored the message.
    UnknownDevice,
}

/// The sender's pin as this device holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedKey {
    /// The pinned identity key.
    pub key: [u8; 32],
    /// Verified by safety number.
    pub verified: bool,
}

/// Decides the trust in the sending device of a message: `me` is this user,
/// `sender` the message's sender, `pin` the sender's pin (none: refused),
/// `device_key` the identity key the device's bundle verified under,
/// `revoked_at` the device's revocation time (RFC 3339, from the relay) and
/// `stored_at` when the relay stored the message.
pub fn check_sender(
    me: Uuid,
    sender: Uuid,
    pin: Option<PinnedKey>,
    device_key: [u8; 32],
    revoked_at: Option<&str>,
    stored_at: &str,
) -> Result<SenderTrust, SenderRefused> {
    let pin = match pin {
        Some(p) if p.key == device_key => p,
        _ => return Err(SenderRefused::UntrustedSender),
    };
    let verified = match revoked_at {
        None => pin.verified,
        Some(r) if stored_before(stored_at, r) => false,
        Some(_) => return Err(SenderRefused::UnknownDevice),
    };
    Ok(if sender == me {
        SenderTrust::Own
    } else if verified {
        SenderTrust::Verified
    } else {
        SenderTrust::Unverified
    })
}

/// Whether the relay's RFC 3339 UTC timestamp `stored_at` is before
/// `revoked_at`. The relay writes fractions of a second with as few digits as
/// needed (`…:01.5Z`, `…:01Z`), so both are brought to nine digits first;
/// anything not in the relay's form is not "before" (refused).
pub fn stored_before(stored_at: &str, revoked_at: &str) -> bool {
    fn sortable(ts: &str) -> Option<String> {
        let body = ts.strip_suffix('Z')?;
        let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
        let well_formed =
            secs.len() == 19 && frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit());
        well_formed.then(|| format!("{secs}.{frac:0<9}Z"))
    }
    matches!((sortable(stored_at), sortable(revoked_at)), (Some(a), Some(b)) if a < b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);
    const KEY: [u8; 32] = [7; 32];

    fn pin(verified: bool) -> Option<PinnedKey> {
        Some(PinnedKey { key: KEY, verified })
    }

    #[test]
    fn pins_decide_and_own_devices_are_own() {
        let t = |sender, pin, key: [u8; 32]| check_sender(ME, sender, pin, key, None, "");
        assert_eq!(t(BOB, pin(true), KEY), Ok(SenderTrust::Verified));
        assert_eq!(t(BOB, pin(false), KEY), Ok(SenderTrust::Unverified));
        assert_eq!(t(ME, pin(false), KEY), Ok(SenderTrust::Own));
        assert_eq!(
            t(BOB, pin(true), [8; 32]),
            Err(SenderRefused::UntrustedSender)
        );
        assert_eq!(t(BOB, None, KEY), Err(SenderRefused::UntrustedSender));
    }

    #[test]
    fn revoked_devices_count_only_before_their_revocation_and_never_as_verified() {
        let r = "2026-12-06T12:00:01.5Z";
        let t = |sender, stored| check_sender(ME, sender, pin(true), KEY, Some(r), stored);
        assert_eq!(
            t(BOB, "2026-12-06T12:00:01.49Z"),
            Ok(SenderTrust::Unverified)
        );
        assert_eq!(t(ME, "2026-12-06T12:00:01Z"), Ok(SenderTrust::Own));
        assert_eq!(
            t(BOB, "2026-12-06T12:00:01.5Z"),
            Err(SenderRefused::UnknownDevice)
        );
        assert_eq!(t(BOB, "garbage"), Err(SenderRefused::UnknownDevice));
    }

    #[test]
    fn relay_timestamps_compare_whatever_their_precision() {
        assert!(stored_before(
            "2026-01-01T00:00:01Z",
            "2026-01-01T00:00:01.5Z"
        ));
        assert!(stored_before(
            "2026-01-01T00:00:01.123456789Z",
            "2026-01-01T00:00:02Z"
        ));
        assert!(!stored_before(
            "2026-01-01T00:00:01.5Z",
            "2026-01-01T00:00:01.5Z"
        ));
        assert!(!stored_before(
            "2026-01-01T00:00:01.5",
            "2026-01-01T00:00:02Z"
        ));
        assert!(!stored_before(
            "2026-01-01T00:00:01.x5Z",
            "2026-01-01T00:00:02Z"
        ));
        assert!(!stored_before(
            "2026-01-01T00:00:01.1234567891Z",
            "2026-01-01T00:00:02Z"
        ));
    }
}
