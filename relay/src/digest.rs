//! Digests: SHA-256 in lower-case hex, for stored token hashes and envelope
//! digests.

use sha2::{Digest, Sha256};

/// What is stored for an opaque token: hex SHA-256. Lookups go by this hash, so
/// the token itself is never compared or stored.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
