//! The vector suite (`common/mod.rs`) under Node: `cargo test -p sotto-wasm
//! --target wasm32-unknown-unknown --test node` with `wasm-bindgen-test-runner`
//! as the runner (scripts/test-wasm sets it up).
#![cfg(target_arch = "wasm32")]

mod common;
