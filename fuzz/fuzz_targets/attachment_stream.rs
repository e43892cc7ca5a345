#![no_main]
//! See `sotto_fuzz_targets::attachment_stream`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sotto_fuzz_targets::attachment_stream(data));
