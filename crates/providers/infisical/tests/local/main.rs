//! Tests against a local Infisical server (`eso-testserver-infisical`, whose fidelity is
//! checked with Infisical's own Python SDK), one per test, on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod errors;
mod find;
mod push;
mod reads;
