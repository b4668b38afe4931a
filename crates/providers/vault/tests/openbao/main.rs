//! Tests against one real OpenBao dev server shared by the whole binary (started on first use,
//! stopped when the binary exits).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod economy;
mod kv;
