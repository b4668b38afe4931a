//! Certificates made at test time with the `openssl` command line tool (an independent check:
//! not the code under test): a CA and a server certificate it signed.

use std::io::{Error, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs `openssl` in `dir` with `args`, feeding `stdin`; returns its stdout.
///
/// # Errors
/// `NotFound` (with the command that installs it) when `openssl` cannot be run; `Other` with
/// its stderr when it fails.
pub fn openssl(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::new(
                ErrorKind::NotFound,
                format!("cannot run `openssl` (install it: apt-get install openssl): {e}"),
            )
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input)
            .map_err(|e| Error::other(format!("openssl {args:?}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::other(format!("openssl {args:?}: {e}")))?;
    if !out.status.success() {
        return Err(Error::other(format!(
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// A CA and a server certificate it signed, PEM, and where their files are.
#[derive(Debug, Clone)]
pub struct ServerPki {
    /// The CA certificate.
    pub ca_pem: String,
    /// The server certificate.
    pub cert_pem: String,
    /// The server's private key (P-256, PKCS#8).
    pub key_pem: String,
    /// The CA certificate's file.
    pub ca_file: PathBuf,
    /// The CA's private key file.
    pub ca_key_file: PathBuf,
    /// The server certificate's file.
    pub cert_file: PathBuf,
    /// The server key's file.
    pub key_file: PathBuf,
}

/// Makes, in `dir`, a CA (`CN=eso-test-ca`) and a server certificate it signed for
/// `subject_alt_names` (`IP:127.0.0.1,DNS:localhost`), both on P-256 and valid for two days.
/// The files are `<name>-ca.pem`, `<name>-ca.key`, `<name>.pem` and `<name>.key`, so that
/// several can share a directory.
///
/// # Errors
/// When `openssl` is missing or fails, or a file cannot be written or read.
pub fn server_pki(dir: &Path, name: &str, subject_alt_names: &str) -> Result<ServerPki, Error> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let (ca_key, ca) = (format!("{name}-ca.key"), format!("{name}-ca.pem"));
    let (key, csr, cert) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let ext = format!("{name}.cnf");
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        "/CN=eso-test-ca",
    ]);
    openssl(dir, &args, None)?;
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
    openssl(dir, &args, None)?;
    std::fs::write(
        dir.join(&ext),
        format!(
            "subjectAltName={subject_alt_names}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        ),
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
        None,
    )?;
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .map_err(|e| Error::new(e.kind(), format!("{}: {e}", dir.join(f).display())))
    };
    Ok(ServerPki {
        ca_pem: read(&ca)?,
        cert_pem: read(&cert)?,
        key_pem: read(&key)?,
        ca_file: dir.join(&ca),
        ca_key_file: dir.join(&ca_key),
        cert_file: dir.join(&cert),
        key_file: dir.join(&key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_certificate_verifies_against_its_ca_for_its_names() {
        let dir = tempfile::tempdir().unwrap();
        let pki = server_pki(dir.path(), "srv", "IP:127.0.0.1,DNS:localhost").unwrap();
        assert!(pki.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.key_pem.contains("PRIVATE KEY"));
        let ok = |host_flag: &str, host: &str| {
            openssl(
                dir.path(),
                &[
                    "verify",
                    "-CAfile",
                    "srv-ca.pem",
                    host_flag,
                    host,
                    "srv.pem",
                ],
                None,
            )
            .is_ok()
        };
        assert!(ok("-verify_ip", "127.0.0.1"));
        assert!(ok("-verify_hostname", "localhost"));
        assert!(!ok("-verify_hostname", "example.com"));
        let other = server_pki(dir.path(), "other", "IP:127.0.0.1").unwrap();
        assert_ne!(other.ca_pem, pki.ca_pem);
    }
}
