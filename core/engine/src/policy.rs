//! The client's timing and retry policy: one set of numbers and rules for both
//! drivers (the native SDK's timers and the npm package's), so that the two
//! clients back off, ping, batch receipts and give up alike.
//!
//! Sans-I/O like the rest of the engine: nothing here reads a clock or draws
//! randomness. The jitter of a back-off comes from the driver (`jitter`, a
//! uniform `u32` from its RNG: the OS RNG in production, a seeded one in tests).

use sotto_core::api::codes;

/// How long a socket `send` waits for its `ack` before the outbox entry is
/// posted over HTTP instead (same client id, so the relay stores it once).
pub const ACK_TIMEOUT_MS: u64 = 10_000;
/// Keep-alive period of the live connection; three silent periods end it.
pub const PING_EVERY_MS: u64 = 20_000;
/// How often `delivered` receipts go out (the highest `seq` per room since the
/// last batch).
pub const RECEIPT_EVERY_MS: u64 = 300;
/// A connection that stayed up this long resets the reconnect back-off.
pub const STABLE_AFTER_MS: u64 = 30_000;
/// Time to open the socket, and then to get `ready` after `auth`.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Refresh the access token this long before it expires (or after half its
/// life, if that is sooner).
pub const REFRESH_MARGIN_MS: u64 = 30_000;
/// Messages read ahead of the live stream, after the room's stored cursor,
/// for the membership statements among them ([`crate::open::Opening::statements_only`]):
/// one page of the relay's largest size.
pub const READ_AHEAD_LIMIT: u32 = sotto_core::api::MAX_LIMIT;
/// First reconnect delay; it doubles with every failure in a row.
pub const RECONNECT_BASE_MS: u64 = 250;
/// Longest reconnect delay.
pub const RECONNECT_CAP_MS: u64 = 30_000;

/// The delay before reconnect attempt number `failures + 1`:
/// [`RECONNECT_BASE_MS`] × 2^failures up to [`RECONNECT_CAP_MS`], jittered
/// uniformly into `[d/2, d]` by `jitter` (so that clients a relay restart
/// disconnected at once do not all come back at once).
#[must_use]
pub fn reconnect_delay_ms(failures: u32, jitter: u32) -> u64 {
    let ceiling = RECONNECT_BASE_MS
        .saturating_mul(1u64 << failures.min(7))
        .min(RECONNECT_CAP_MS);
    let half = ceiling / 2;
    // `half * jitter / 2^32` without overflow: half < 2^15, jitter < 2^32.
    half + ((half * u64::from(jitter)) >> 32)
}

/// Whether a relay refusal of a message (a socket `error` frame naming the
/// `client_id`, or a problem `code`) may pass if the same entry is posted again
/// later: the entry stays in the outbox and goes over HTTP with back-off.
/// Any other refusal is final: the entry leaves the outbox and the app hears
/// why.
#[must_use]
pub fn transient_refusal(code: &str) -> bool {
    [
        codes::RATE_LIMITED,
        codes::INTERNAL,
        codes::UNAVAILABLE,
        codes::REQUEST_TIMEOUT,
    ]
    .contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_double_up_to_the_cap_within_their_jitter() {
        for failures in 0..12u32 {
            let ceiling = (250u64 << failures.min(7)).min(30_000);
            let low = reconnect_delay_ms(failures, 0);
            let high = reconnect_delay_ms(failures, u32::MAX);
            assert_eq!(low, ceiling / 2, "failures {failures}");
            assert!(
                high < ceiling && high >= ceiling - 1,
                "failures {failures}: {high}"
            );
        }
        assert_eq!(reconnect_delay_ms(u32::MAX, u32::MAX / 2), 22_499);
    }

    #[test]
    fn only_passing_refusals_are_transient() {
        assert!(transient_refusal("rate_limited"));
        assert!(transient_refusal("unavailable"));
        assert!(!transient_refusal("not_a_member"));
        assert!(!transient_refusal("blocked"));
        assert!(!transient_refusal(""));
    }
}
