//! Safety numbers: a 60-digit number (12 groups of 5) that two users compare
//! out of band to verify each other's identity keys, plus a QR payload.
//!
//! Each side's fingerprint is SHA-512 iterated 5200 times over
//! `"SOTTO-v1 safety-number\0" ‖ identity key`, then `h = SHA-512(h ‖ identity key)`.
//! Its first 30 bytes give 30 digits (six 5-byte big-endian chunks, each mod 100000).
//! The two 30-digit halves are sorted, so both users see the same number.

use sha2::{Digest, Sha512};

use crate::keys::IdentityPublicKey;

const CONTEXT: &[u8] = b"SOTTO-v1 safety-number\0";
const ITERATIONS: usize = 5200;
/// QR payload format version.
pub const QR_VERSION: u8 = 1;

/// The safety number of two identity keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    digits: String,
    qr: Vec<u8>,
}

impl SafetyNumber {
    /// Computes the number for two identity keys; the order of the arguments does not matter.
    pub fn new(a: &IdentityPublicKey, b: &IdentityPublicKey) -> Self {
        let (fa, fb) = (fingerprint(a), fingerprint(b));
        let (da, db) = (digits(&fa), digits(&fb));
        let ((d1, f1), (d2, f2)) = if da <= db {
            ((da, fa), (db, fb))
        } else {
            ((db, fb), (da, fa))
        };
        let mut qr = Vec::with_capacity(1 + 64);
        qr.push(QR_VERSION);
        qr.extend_from_slice(f1.get(..32).unwrap_or_default());
        qr.extend_from_slice(f2.get(..32).unwrap_or_default());
        Self {
            digits: d1 + &d2,
            qr,
        }
    }

    /// The 60 digits without separators.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The 60 digits in 12 space-separated groups of 5.
    pub fn display(&self) -> String {
        let groups: Vec<&str> = (0..12)
            .filter_map(|i| self.digits.get(i * 5..i * 5 + 5))
            .collect();
        groups.join(" ")
    }

    /// The QR payload: `version (1) ‖ fingerprint₁[..32] ‖ fingerprint₂[..32]`, in the digits' order.
    pub fn qr_payload(&self) -> &[u8] {
        &self.qr
    }

    /// Compares a scanned QR payload with this number (constant time).
    pub fn matches_qr(&self, scanned: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.qr.len() == scanned.len() && bool::from(self.qr.as_slice().ct_eq(scanned))
    }
}

fn fingerprint(key: &IdentityPublicKey) -> [u8; 64] {
    let key = key.to_bytes();
    let mut h: [u8; 64] = Sha512::new()
        .chain_update(CONTEXT)
        .chain_update(key)
        .finalize()
        .into();
    for _ in 0..ITERATIONS {
        h = Sha512::new()
            .chain_update(h)
            .chain_update(key)
            .finalize()
            .into();
    }
    h
}

fn digits(fp: &[u8; 64]) -> String {
    let mut out = String::with_capacity(30);
    for chunk in fp.chunks(5).take(6) {
        let n = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        out.push_str(&format!("{:05}", n % 100_000));
    }
    out
}
