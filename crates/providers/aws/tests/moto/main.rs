//! Tests against one real moto server shared by the whole binary (started on first use,
//! stopped when the binary exits), plus servers of their own for outage and auth tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod parameterstore;
mod secretsmanager;
