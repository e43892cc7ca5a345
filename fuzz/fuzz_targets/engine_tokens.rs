#![no_main]
//! See `sotto_fuzz_targets::engine_tokens`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sotto_fuzz_targets::engine_tokens(data));
