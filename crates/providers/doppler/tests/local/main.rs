//! Tests against a local Doppler server (`eso-testserver-doppler`, whose fidelity is checked
//! with Doppler's own Python SDK), one per test, on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod errors;
mod reads;
