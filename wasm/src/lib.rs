//! # sotto-wasm
//!
//! WebAssembly bindings of [`sotto_core`] for browsers and Node: the npm package
//! `sotto-wasm` that `scripts/build-wasm` writes to `wasm/pkg/`. The JavaScript
//! API is the contract in `wasm/API.md`; every name, shape and error code there
//! is implemented here, one module per area:
//!
//! | module | API.md section |
//! |---|---|
//! | [`device`] | identity + device (secrets inside) |
//! | [`peer`] | peers (`VerifiedDevice`, `verifyBundle`) |
//! | [`envelope`] | envelopes without keys |
//! | [`trust`] | safety numbers, TOFU |
//! | [`attachment`] | attachments |
//! | [`rooms`] | room membership (the engine's) |
//! | [`wire`] | relay wire types |
//! | [`error`] | error codes |
//!
//! Private keys never leave WASM memory except inside an encrypted backup
//! blob; a `Device`'s keys are zeroized when JavaScript calls `free()` (the core
//! key types zeroize on drop).
//!
//! Everything here compiles on every target (so the workspace's host clippy and
//! tests cover it), but the functions that build JavaScript values only work on
//! `wasm32`; the pure parts (error mapping, argument checks) are tested on the host.

pub mod address;
pub mod attachment;
pub mod auth;
pub mod device;
pub mod envelope;
pub mod error;
mod js;
pub mod link;
pub mod open;
pub mod outbox;
pub mod peer;
pub mod pins;
pub mod room_ops;
pub mod rooms;
pub mod setup;
pub mod trust;
mod types;
pub mod vault;
pub mod wire;

use wasm_bindgen::prelude::wasm_bindgen;

pub use error::{Code, Error};

/// The `wasm-bindgen` version this crate is pinned to (and the CLI must match).
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";

/// This crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Versions of the package, the core, the protocol and the supported suites.
#[wasm_bindgen(js_name = getVersions)]
pub fn get_versions() -> types::Versions {
    let suites = js_sys::Array::new();
    suites.push(&"x25519".into());
    suites.push(&"rsa".into());
    js::Obj::new()
        .set("package", VERSION)
        .set("core", sotto_core::VERSION)
        .set(
            "protocol",
            f64::from(sotto_core::envelope::ENVELOPE_VERSION),
        )
        .set("suites", suites)
        .set("wasmBindgen", WASM_BINDGEN_VERSION)
        .into_typed()
}

#[cfg(test)]
mod tests {
    #[test]
    fn pinned_version_matches_the_manifest() {
        let manifest = include_str!("../Cargo.toml");
        let pin = format!(
            "wasm-bindgen = {{ version = \"={}\"",
            super::WASM_BINDGEN_VERSION
        );
        assert!(manifest.contains(&pin), "Cargo.toml must pin {pin}");
    }
}
