//! Certificates and keys made at test time with the `openssl` command line tool: the server's
//! CA and TLS certificate, client certificates for service principals, keys and PKCS#12
//! bundles to push, and the PKCS#12 reading the certificate import needs. Using `openssl`
//! (not the provider's own parser) keeps the server an independent check of the provider.

use std::path::Path;

use base64::Engine;

use crate::Error;

/// Runs `openssl` in `dir` with `args`, feeding `stdin`; returns stdout.
pub(crate) fn openssl(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    eso_testserver_kit::pki::openssl(dir, args, stdin).map_err(|e| Error::Openssl(e.to_string()))
}

/// The server's trust: a CA and a certificate for `127.0.0.1` and `localhost` signed by it.
pub(crate) fn server_pki(dir: &Path) -> Result<ServerPki, Error> {
    eso_testserver_kit::pki::server_pki(dir, "srv", "IP:127.0.0.1,DNS:localhost")
        .map_err(|e| Error::Openssl(e.to_string()))
}

pub(crate) use eso_testserver_kit::pki::ServerPki;

fn read(dir: &Path, file: &str) -> Result<String, Error> {
    std::fs::read_to_string(dir.join(file)).map_err(|e| Error::Openssl(format!("{file}: {e}")))
}

/// A self-signed certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct CertAndKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl CertAndKey {
    /// The certificate's DER bytes.
    pub fn cert_der(&self) -> Result<Vec<u8>, Error> {
        pem_blocks(&self.cert_pem, "CERTIFICATE")
            .into_iter()
            .next()
            .ok_or_else(|| Error::Openssl("no CERTIFICATE block".into()))
    }

    /// Certificate then key, as a service principal's `clientCertificate` Secret holds them.
    #[must_use]
    pub fn combined_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }

    /// A PKCS#12 bundle of both with an empty password, as `openssl pkcs12 -export` writes it
    /// by default (PBES2, AES-256-CBC, PBKDF2), or with `legacy` PBE-SHA1-3DES bags.
    pub fn pkcs12(&self, legacy: bool) -> Result<Vec<u8>, Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::Openssl(e.to_string()))?;
        let d = dir.path();
        std::fs::write(d.join("c.pem"), &self.cert_pem)
            .map_err(|e| Error::Openssl(e.to_string()))?;
        std::fs::write(d.join("k.pem"), &self.key_pem)
            .map_err(|e| Error::Openssl(e.to_string()))?;
        let mut args = vec![
            "pkcs12", "-export", "-in", "c.pem", "-inkey", "k.pem", "-passout", "pass:", "-out",
            "b.p12",
        ];
        if legacy {
            args.extend([
                "-certpbe",
                "PBE-SHA1-3DES",
                "-keypbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ]);
        }
        openssl(d, &args, None)?;
        std::fs::read(d.join("b.p12")).map_err(|e| Error::Openssl(e.to_string()))
    }
}

/// A new self-signed certificate with an RSA-2048 key (`rsa`) or a P-256 key.
pub fn self_signed(common_name: &str, rsa: bool) -> Result<CertAndKey, Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Openssl(e.to_string()))?;
    let d = dir.path();
    let subj = format!("/CN={common_name}");
    let mut args = vec!["req", "-x509"];
    if rsa {
        args.extend(["-newkey", "rsa:2048"]);
    } else {
        args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]);
    }
    args.extend([
        "-nodes", "-keyout", "k.pem", "-out", "c.pem", "-days", "2", "-subj", &subj,
    ]);
    openssl(d, &args, None)?;
    Ok(CertAndKey {
        cert_pem: read(d, "c.pem")?,
        key_pem: read(d, "k.pem")?,
    })
}

/// A new private key as PEM: `rsa` (PKCS#1 `RSA PRIVATE KEY` when `traditional`, else PKCS#8)
/// or P-256 (SEC1 `EC PRIVATE KEY` when `traditional`, else PKCS#8).
pub fn private_key(rsa: bool, traditional: bool) -> Result<String, Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Openssl(e.to_string()))?;
    let d = dir.path();
    if rsa {
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "k.pem",
            ],
            None,
        )?;
        if traditional {
            openssl(
                d,
                &["rsa", "-in", "k.pem", "-traditional", "-out", "t.pem"],
                None,
            )?;
            return read(d, "t.pem");
        }
    } else {
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "k.pem",
            ],
            None,
        )?;
        if traditional {
            openssl(d, &["ec", "-in", "k.pem", "-out", "t.pem"], None)?;
            return read(d, "t.pem");
        }
    }
    read(d, "k.pem")
}

/// The DER contents of every PEM block of `label` in `pem`.
pub(crate) fn pem_blocks(pem: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
            out.push(der);
        }
        rest = &after[stop + end.len()..];
    }
    out
}

/// The certificates of a PKCS#12 bundle, read by `openssl` with `password`.
pub(crate) fn pkcs12_certificates(pfx: &[u8], password: &str) -> Result<Vec<Vec<u8>>, Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Openssl(e.to_string()))?;
    let pass = format!("pass:{password}");
    let pem = openssl(
        dir.path(),
        &["pkcs12", "-nokeys", "-passin", &pass],
        Some(pfx),
    )?;
    Ok(pem_blocks(&String::from_utf8_lossy(&pem), "CERTIFICATE"))
}
