//! Tests against a local Google Cloud server (`eso-testserver-gcp`, whose fidelity is checked
//! with Google's own clients), one per test, on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod errors;
mod find;
mod push;
mod reads;
