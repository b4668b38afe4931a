//! Tests against a local 1Password Connect server (`eso-testserver-onepassword`, whose
//! fidelity is checked with 1Password's own Python SDK), one per test, on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod find;
mod push;
mod reads;
