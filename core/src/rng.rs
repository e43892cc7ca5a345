//! The one source of randomness: the operating system's CSPRNG (`getrandom`;
//! `crypto.getRandomValues` in browsers). Production entry points never take a seed.

use getrandom::SysRng;
use rand_core::{CryptoRng, UnwrapErr};

/// Returns the system RNG as an infallible [`CryptoRng`], after checking that the
/// operating system can deliver randomness, so that the infallible adapter
/// cannot fail later in normal operation.
pub(crate) fn system() -> Result<impl CryptoRng, getrandom::Error> {
    let mut probe = [0u8; 1];
    getrandom::fill(&mut probe)?;
    Ok(UnwrapErr(SysRng))
}

/// Fills a fixed-size array from `rng`.
pub(crate) fn array<const N: usize>(rng: &mut impl CryptoRng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}
