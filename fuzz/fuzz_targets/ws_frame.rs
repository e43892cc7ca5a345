#![no_main]
//! See `sotto_fuzz_targets::ws_frame`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sotto_fuzz_targets::ws_frame(data));
