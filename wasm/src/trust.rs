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

/// Whether the relay's timestamp `storedAt` is before `revokedAt` (the
/// engine's comparison; anything not in the relay's UTC form is not before).
#[wasm_bindgen(js_name = storedBefore)]
pub fn stored_before(
    #[wasm_bindgen(js_name = storedAt)] stored_at: &str,
    #[wasm_bindgen(js_name = revokedAt)] revoked_at: &str,
) -> bool {
    sotto_engine::trust::stored_before(stored_at, revoked_at)
}
