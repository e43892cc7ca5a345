//! The relay end to end over real sockets, on SQLite and on a real PostgreSQL,
//! with e-mail through a real SMTP server on loopback: one test binary (one link)
//! with a module per feature. Each test body runs once per backend
//! (`<feature>::sqlite::<test>` and `<feature>::postgres::<test>`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod access;
mod accounts;
mod at_rest;
mod attachments;
mod consent;
mod contacts;
mod devices;
mod limits;
mod messages;
mod openapi;
mod proxy;
mod push;
mod realtime;
mod rooms;
mod support;
mod upgrade;
mod web;
