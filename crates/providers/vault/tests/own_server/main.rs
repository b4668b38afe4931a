//! Tests that need a server of their own: TLS with a custom CA and cert login, and a server
//! that stops, restarts, seals and unseals under a live client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod outage;
mod tls;
