//! A small deterministic generator for the fuzzing tests (SplitMix64). Each test
//! prints its seed; `SOTTO_FUZZ_SEED` replays a run.

pub struct Rng(u64);

impl Rng {
    /// Seeded from `SOTTO_FUZZ_SEED`, or from the OS; prints the seed under `name`.
    pub fn from_env(name: &str) -> Self {
        let seed = std::env::var("SOTTO_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let mut b = [0u8; 8];
                getrandom::fill(&mut b).unwrap();
                u64::from_le_bytes(b)
            });
        eprintln!("{name}: SOTTO_FUZZ_SEED={seed}");
        Self(seed)
    }

    pub fn seed(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
