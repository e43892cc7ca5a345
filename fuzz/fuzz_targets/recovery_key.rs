#![no_main]
//! See `sotto_fuzz_targets::recovery_key`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sotto_fuzz_targets::recovery_key(data));
