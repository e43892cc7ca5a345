//! Padmé padding (Nikitin et al., PETS 2019): the padded length leaks
//! O(log log L) bits of the plaintext length L, with at most ~12 % overhead.
//!
//! Encoding: `plaintext ‖ 0x80 ‖ 0x00*` up to `padme(len + 1)` bytes
//! (ISO/IEC 7816-4 style, so the original length is unambiguous).

use zeroize::Zeroizing;

/// The Padmé length for `len` (`len` itself for `len < 2`).
pub fn padme_len(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1usize << last_bits) - 1;
    (len + mask) & !mask
}

/// Pads `plaintext` (copying it into a zeroizing buffer).
pub(crate) fn pad(plaintext: &[u8]) -> Zeroizing<Vec<u8>> {
    let target = padme_len(plaintext.len() + 1);
    let mut out = Zeroizing::new(Vec::with_capacity(target));
    out.extend_from_slice(plaintext);
    out.push(0x80);
    out.resize(target, 0);
    out
}

/// Removes the padding in place; `None` if the marker is missing or the length
/// is not the Padmé length of the content.
pub(crate) fn unpad(padded: &mut Zeroizing<Vec<u8>>) -> Option<()> {
    let marker = padded.iter().rposition(|b| *b != 0)?;
    if padded.get(marker) != Some(&0x80) || padme_len(marker + 1) != padded.len() {
        return None;
    }
    padded.truncate(marker);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_known_values() {
        // From the Padmé paper's definition.
        assert_eq!(padme_len(0), 0);
        assert_eq!(padme_len(1), 1);
        assert_eq!(padme_len(9), 10);
        assert_eq!(padme_len(100), 104);
        assert_eq!(padme_len(1000), 1024);
        assert_eq!(padme_len(1025), 1088);
        for len in 0..5000 {
            let p = padme_len(len);
            assert!(p >= len && p * 100 <= len * 112 + 200, "{len} -> {p}");
        }
    }

    #[test]
    fn pad_round_trip_and_rejects() {
        for len in 0..600 {
            let pt: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut p = pad(&pt);
            assert_eq!(p.len(), padme_len(len + 1));
            unpad(&mut p).unwrap();
            assert_eq!(&p[..], &pt[..]);
        }
        assert!(unpad(&mut Zeroizing::new(vec![0, 0, 0])).is_none());
        assert!(unpad(&mut Zeroizing::new(vec![1, 0x81])).is_none());
        // Extra zero byte beyond the Padmé length is rejected.
        let mut p = pad(b"hello");
        p.push(0);
        assert!(unpad(&mut p).is_none());
    }
}
