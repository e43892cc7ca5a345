#![no_main]
//! See `sotto_fuzz_targets::envelope_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sotto_fuzz_targets::envelope_json(data));
