#![no_main]
//! See `sotto_fuzz_targets::backup_blob`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sotto_fuzz_targets::backup_blob(data));
