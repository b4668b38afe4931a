//! What the tests of this workspace share, so that each test file holds only its checks:
//!
//! - [`bao`]: `bao server -dev`, the OpenBao server, started and waited for, and its API.
//! - [`tools`]: finding a tool (`$ESO_*_BIN`, `PATH`, the workspace's `.venv-emu`) and a free
//!   port; a missing tool fails the test with the command that installs it, never skips it.
//! - [`process`]: a real server (OpenBao, moto, goiardi) run under a watchdog that stops it
//!   when the test process exits, its log, and the wait until it is ready.
//! - [`moto`]: `moto_server`, the AWS emulator, started and waited for.
//! - [`python`]: the interpreter of a Python oracle (`$ESO_PYTHON`, `.venv-emu`), checked
//!   to import what the oracle needs.
//! - [`tls`]: a CA and a server certificate made with `openssl` at test time.
//! - [`metrics`]: a recorder that captures `externalsecret_provider_api_calls_count`.
//! - [`chart`]: the Helm chart rendered by `deploy/charts/render.py`.
//!
//! A dev-dependency only: no library of the workspace depends on it. It is test code: a missing
//! tool or a broken fixture fails the calling test with a message (a panic), as a test would.

#![allow(clippy::panic, clippy::unwrap_used)]

pub mod bao;
pub mod chart;
pub mod metrics;
pub mod moto;
pub mod process;
pub mod python;
pub mod tls;
pub mod tools;
