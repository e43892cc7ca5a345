//! Verified device bundles, cached: posting checks each envelope's signature
//! under the sender device's key, and this keeps the bundle's own verification
//! (two more signatures) off that path.

use sotto_core::api::problem::codes;
use sotto_core::keys::{DeviceBundle, VerifiedDevice};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Verified bundles by device id, with the bundle text they were verified
/// from: posting checks each envelope's signature under the sender device's
/// key, and re-verifying its bundle (two more signatures) every time would
/// triple the cost. A hit needs the stored text to be identical.
#[derive(Default)]
pub struct DeviceCache(std::sync::Mutex<std::collections::HashMap<Uuid, (String, VerifiedDevice)>>);

const DEVICE_CACHE_MAX: usize = 50_000;

impl DeviceCache {
    fn get(&self, device: Uuid, bundle: &str) -> Option<VerifiedDevice> {
        let map = self.0.lock().ok()?;
        map.get(&device)
            .filter(|(text, _)| text == bundle)
            .map(|(_, d)| d.clone())
    }
    fn put(&self, device: Uuid, bundle: &str, verified: VerifiedDevice) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= DEVICE_CACHE_MAX {
                map.clear();
            }
            map.insert(device, (bundle.to_string(), verified));
        }
    }
}

/// The verified form of a stored bundle, from the cache or verified now.
pub fn verify_stored(cache: &DeviceCache, device: Uuid, bundle: &str) -> ApiResult<VerifiedDevice> {
    if let Some(v) = cache.get(device, bundle) {
        return Ok(v);
    }
    let parsed: DeviceBundle = serde_json::from_str(bundle)
        .map_err(|e| ApiError::internal(format!("stored bundle of {device}: {e}")))?;
    let verified = parsed.verify().map_err(|e| {
        tracing::warn!(%device, error = %e, "a stored bundle no longer verifies");
        ApiError::bad_request(
            codes::INVALID_BUNDLE,
            "the stored bundle no longer verifies",
        )
    })?;
    cache.put(device, bundle, verified.clone());
    Ok(verified)
}
