//! The vector suite (`common/mod.rs`) in a real browser (headless Chromium
//! through chromedriver): `cargo test -p sotto-wasm --target
//! wasm32-unknown-unknown --test browser` with `wasm-bindgen-test-runner` as
//! the runner and `CHROMEDRIVER` set (scripts/test-wasm sets it up).
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;
