//! Trust: safety numbers and trust-on-first-use classification.

use sotto_core::safety;
use sotto_core::trust::{self, TrustDecision};
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::Result;
use crate::js::{self, Obj};
use crate::peer::identity_key;
use crate::types;

/// The 60-digit safety number of two identity keys (order does not matter) and
/// its QR payload.
#[wasm_bindgen(js_name = safetyNumber)]
pub fn safety_number(
    #[wasm_bindgen(js_name = ourIdentityKey)] our_identity_key: &[u8],
    #[wasm_bindgen(js_name = theirIdentityKey)] their_identity_key: &[u8],
) -> Result<types::SafetyNumber> {
    let sn = safety::SafetyNumber::new(
        &identity_key(our_identity_key)?,
        &identity_key(their_identity_key)?,
    );
    Ok(Obj::new()
        .set("digits", sn.digits())
        .set("display", sn.display())
        .set("qrPayload", js::bytes(sn.qr_payload()))
        .into_typed())
}

/// Whether a scanned QR payload matches the safety number of the two keys
/// (constant-time comparison).
#[wasm_bindgen(js_name = safetyNumberMatchesQr)]
pub fn safety_number_matches_qr(
    #[wasm_bindgen(js_name = ourIdentityKey)] our_identity_key: &[u8],
    #[wasm_bindgen(js_name = theirIdentityKey)] their_identity_key: &[u8],
    scanned: &[u8],
) -> Result<bool> {
    let sn = safety::SafetyNumber::new(
        &identity_key(our_identity_key)?,
        &identity_key(their_identity_key)?,
    );
    Ok(sn.matches_qr(scanned))
}

/// TOFU: `"first_seen"` (pin it), `"unchanged"`, or `"changed"` (warn; keep the
/// old pin until the user accepts the new key).
#[wasm_bindgen(js_name = classifyIdentity)]
pub fn classify_identity(pinned: Option<Vec<u8>>, served: &[u8]) -> Result<types::TrustDecision> {
    let name = classify(pinned.as_deref(), served)?;
    Ok(wasm_bindgen::JsValue::from_str(name).into())
}

/// [`classify_identity`] without JavaScript values.
pub(crate) fn classify(pinned: Option<&[u8]>, served: &[u8]) -> Result<&'static str> {
    let served = identity_key(served)?;
    let pinned = pinned.map(identity_key).transpose()?;
    Ok(match trust::classify(pinned.as_ref(), &served) {
        TrustDecision::FirstSeen => "first_seen",
        TrustDecision::Unchanged => "unchanged",
        // `Changed`, and any decision a later core adds: never silently trusted.
        _ => "changed",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_core::keys::IdentityKeyPair;

    #[test]
    fn classification() {
        let a = IdentityKeyPair::from_seed(&[1; 32]).public_key().to_bytes();
        let b = IdentityKeyPair::from_seed(&[2; 32]).public_key().to_bytes();
        assert_eq!(classify(None, &a), Ok("first_seen"));
        assert_eq!(classify(Some(&a), &a), Ok("unchanged"));
        assert_eq!(classify(Some(&a), &b), Ok("changed"));
        assert_eq!(
            classify(Some(&a), &[0; 31]).map_err(|e| e.code().as_str()),
            Err("invalid_key")
        );
    }
}

/// Whether a message's sending device is trusted (the engine's rule, the
/// native SDK's code): `"own"` (this user's devices), `"verified"`,
/// `"unverified"`, or the refusal `"untrusted_sender"` (not the pinned key) /
/// `"unknown_device"` (revoked before the relay stored the message). `pinKey`
/// undefined: no pin. Times are the relay's RFC 3339.
#[wasm_bindgen(
    js_name = checkSender,
    unchecked_return_type = "\"own\" | \"verified\" | \"unverified\" | \"untrusted_sender\" | \"unknown_device\""
)]
#[allow(clippy::too_many_arguments)]
pub fn check_sender(
    me: &str,
    sender: &str,
    pin_key: Option<Vec<u8>>,
    pin_verified: bool,
    device_key: &[u8],
    revoked_at: Option<String>,
    stored_at: &str,
) -> Result<String> {
    use sotto_engine::trust::{PinnedKey, SenderRefused, SenderTrust};
    let key32 = |b: &[u8], what: &str| -> Result<[u8; 32]> {
        <[u8; 32]>::try_from(b)
            .map_err(|_| crate::Error::invalid_argument(format!("{what} must be 32 bytes")))
    };
    let pin = pin_key
        .map(|k| {
            key32(&k, "pinKey").map(|key| PinnedKey {
                key,
                verified: pin_verified,
            })
        })
        .transpose()?;
    let answer = sotto_engine::trust::check_sender(
        js::parse_uuid(me, "me")?,
        js::parse_uuid(sender, "sender")?,
        pin,
        key32(device_key, "deviceKey")?,
        revoked_at.as_deref(),
        stored_at,
    );
    Ok(match answer {
        Ok(SenderTrust::Own) => "own",
        Ok(SenderTrust::Verified) => "verified",
        Ok(SenderTrust::Unverified) => "unverified",
        Err(SenderRefused::UntrustedSender) => "untrusted_sender",
        Err(SenderRefused::UnknownDevice) => "unknown_device",
    }
    .to_owned())
}

/// Whether the relay's timestamp `storedAt` is before `revokedAt` (the
/// engine's comparison; anything not in the relay's UTC form is not before).
#[wasm_bindgen(js_name = storedBefore)]
pub fn stored_before(
    #[wasm_bindgen(js_name = storedAt)] stored_at: &str,
    #[wasm_bindgen(js_name = revokedAt)] revoked_at: &str,
) -> bool {
    sotto_engine::trust::stored_before(stored_at, revoked_at)
}
