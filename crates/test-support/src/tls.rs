//! openssl TLS fixtures: a CA and a server certificate for `127.0.0.1` it signed. A missing
//! or failing `openssl` fails the test.

use std::path::Path;

pub use eso_testserver_kit::pki::ServerPki;

/// Runs `openssl` in `dir` with `args`; fails the test (with stderr) when it fails or is
/// missing. Returns its stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    eso_testserver_kit::pki::openssl(dir, args, None).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `openssl` in `dir` with `args`, feeding it `input`; fails the test when it fails or is
/// missing. Returns its stdout.
pub fn openssl_with_input(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    eso_testserver_kit::pki::openssl(dir, args, Some(input)).unwrap_or_else(|e| panic!("{e}"))
}

/// A CA and a server certificate for `IP:127.0.0.1` it signed, made in `dir` under `name`
/// (`<name>-ca.pem`, `<name>.pem`, `<name>.key`; several can share a directory).
#[must_use]
pub fn server_pki(dir: &Path, name: &str) -> ServerPki {
    server_pki_for(dir, name, "IP:127.0.0.1")
}

/// [`server_pki`] for other names (`IP:127.0.0.1,DNS:localhost`).
#[must_use]
pub fn server_pki_for(dir: &Path, name: &str, subject_alt_names: &str) -> ServerPki {
    eso_testserver_kit::pki::server_pki(dir, name, subject_alt_names)
        .unwrap_or_else(|e| panic!("cannot make the test certificates: {e}"))
}

/// A CA and a server certificate for `127.0.0.1` in a directory of their own:
/// (CA PEM, server certificate PEM, server key PEM).
#[must_use]
pub fn server_certificate() -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
    let pki = server_pki(dir.path(), "srv");
    (pki.ca_pem, pki.cert_pem, pki.key_pem)
}
