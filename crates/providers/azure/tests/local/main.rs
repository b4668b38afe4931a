//! The provider against the local Key Vault, Entra ID and IMDS server of
//! `eso-testserver-azure` (itself checked with Microsoft's Python clients): logins and their
//! token economy, reads of secrets, keys and certificates, find, push, delete, exists, errors
//! by cause and metrics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod auth;
mod common;
mod push;
mod reads;
