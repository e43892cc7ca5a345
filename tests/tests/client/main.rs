//! The native SDK (`sotto-client`) against the real relay process: people
//! register, set keys up and talk; a malicious relay is caught; the network
//! fails and nothing is lost or doubled. Every test also searches the relay's
//! database for the plaintexts it sent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod browser;
mod conversation;
mod faults;
mod history;
mod malicious;
mod membership;
mod quickstart;
mod support;
mod transport;
