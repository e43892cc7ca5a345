//! The `sotto-relay` binary as a process, the way a self-hoster runs it: one
//! test binary with a module per concern (start-up and administration; hostile
//! connection patterns and memory under login bursts).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod connections;
mod crash;
mod startup;

/// The relay binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_sotto-relay");

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
