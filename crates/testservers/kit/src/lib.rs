//! The scaffolding every local test server of eso-rs (`crates/testservers/*`) shares, so that
//! each server holds only its API: the accept loop over plain TCP or TLS ([`accept_loop`],
//! [`serve`], [`tls_acceptor`]), whole-request parsing ([`Req`], [`percent_decode`],
//! [`parse_pairs`], [`percent_encode`]), responses ([`full`], [`json_response`]), fault
//! injection ([`Fault`], [`Faults`]) and certificates made with `openssl` ([`pki`]).
//!
//! For tests only: the test servers depend on it, and nothing else does.

mod faults;
mod http;
pub mod pki;
mod serve;

pub use faults::{Fault, Faults};
pub use http::{
    Body, MAX_BODY, Req, full, json_response, parse_pairs, percent_decode, percent_encode,
};
pub use serve::{accept_loop, serve, tls_acceptor};
