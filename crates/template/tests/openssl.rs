//! PKCS#12, PEM, JWK and RSA helpers checked against files `openssl` writes at test time.
//!
//! The expected values come from openssl itself (its PEM output of the same key and
//! certificates), never from this crate.

// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use eso_template::{ParseOptions, Template, Value};

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn read(dir: &Path, f: &str) -> Vec<u8> {
    std::fs::read(dir.join(f)).unwrap()
}

fn render(tpl: &str, data: &[(&str, Vec<u8>)]) -> Result<Vec<u8>, eso_template::TemplateError> {
    let m: BTreeMap<String, Vec<u8>> = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Template::parse("t", tpl, &ParseOptions::default())?.execute(&Value::from_bytes_map(&m))
}

/// root CA -> intermediate CA -> leaf, each with key identifiers, plus SANs on the leaf.
fn make_chain(dir: &Path, key_alg: &[&str]) {
    std::fs::write(dir.join("ca.ext"), "basicConstraints=critical,CA:true\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n").unwrap();
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:false\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\nsubjectAltName=DNS:a.example,DNS:b.example,IP:10.0.0.1,IP:2001:db8::1,email:ops@example.com,URI:spiffe://cluster/ns/x\n",
    )
    .unwrap();
    for k in ["root", "int", "leaf"] {
        let mut args = vec!["genpkey", "-out"];
        let f = format!("{k}.key");
        args.push(&f);
        args.extend_from_slice(key_alg);
        openssl(dir, &args);
    }
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-subj",
            "/CN=root",
            "-days",
            "2",
            "-out",
            "root.pem",
            "-addext",
            "basicConstraints=critical,CA:true",
        ],
    );
    openssl(
        dir,
        &[
            "req", "-new", "-key", "int.key", "-subj", "/CN=int", "-out", "int.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ca.ext",
            "-out",
            "int.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req", "-new", "-key", "leaf.key", "-subj", "/CN=leaf", "-out", "leaf.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "int.pem",
            "-CAkey",
            "int.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
    // Normalise every certificate to openssl's canonical PEM text.
    for c in ["root", "int", "leaf"] {
        let pem = openssl(dir, &["x509", "-in", &format!("{c}.pem")]);
        std::fs::write(dir.join(format!("{c}.pem")), pem).unwrap();
    }
    let pkcs8 = openssl(dir, &["pkey", "-in", "leaf.key"]);
    std::fs::write(dir.join("leaf.pk8"), pkcs8).unwrap();
}

fn chain_pem(dir: &Path) -> Vec<u8> {
    [
        read(dir, "leaf.pem"),
        read(dir, "int.pem"),
        read(dir, "root.pem"),
    ]
    .concat()
}

fn check_pkcs12(dir: &Path, export_args: &[&str], pass: &str) {
    let mut args = vec![
        "pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.pem", "-out", "out.p12",
    ];
    // CA certificates in reverse order, so that the chain must be re-ordered.
    std::fs::write(
        dir.join("cas.pem"),
        [read(dir, "root.pem"), read(dir, "int.pem")].concat(),
    )
    .unwrap();
    args.extend_from_slice(&["-certfile", "cas.pem"]);
    let pw = format!("pass:{pass}");
    args.extend_from_slice(&["-passout", &pw]);
    args.extend_from_slice(export_args);
    openssl(dir, &args);
    let p12 = read(dir, "out.p12");
    let data = [("p12", p12), ("pw", pass.as_bytes().to_vec())];
    let (key_tpl, cert_tpl) = if pass.is_empty() {
        ("{{ .p12 | pkcs12key }}", "{{ .p12 | pkcs12cert }}")
    } else {
        (
            "{{ pkcs12keyPass .pw .p12 }}",
            "{{ pkcs12certPass .pw .p12 }}",
        )
    };
    let key = render(key_tpl, &data).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&key),
        String::from_utf8_lossy(&read(dir, "leaf.pk8")),
        "{export_args:?}"
    );
    let certs = render(cert_tpl, &data).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&certs),
        String::from_utf8_lossy(&chain_pem(dir)),
        "{export_args:?}"
    );
    if !pass.is_empty() {
        let e = render("{{ pkcs12keyPass \"wrong\" .p12 }}", &data).unwrap_err();
        assert!(
            e.to_string()
                .contains("unable to decode pkcs12 with password"),
            "{e}"
        );
    }
}

#[test]
fn pkcs12_rsa_modern_legacy_and_no_password() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_chain(
        dir,
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    // OpenSSL 3 default: PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC, HMAC-SHA256 MAC.
    check_pkcs12(dir, &[], "s3cret");
    // Triple-DES bags with a SHA-1 MAC (what older tools and Java write).
    check_pkcs12(
        dir,
        &[
            "-keypbe",
            "PBE-SHA1-3DES",
            "-certpbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
        ],
        "s3cret",
    );
    // Empty password.
    check_pkcs12(dir, &[], "");
    // Unencrypted certificates, AES key.
    check_pkcs12(dir, &["-certpbe", "NONE"], "pw");
}

#[test]
fn pkcs12_ec_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_chain(
        dir,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    check_pkcs12(dir, &[], "pw");
}

#[test]
fn pem_filters_and_sans() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_chain(
        dir,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let bundle = [
        b"junk before\n".to_vec(),
        read(dir, "leaf.pk8"),
        read(dir, "int.pem"),
        read(dir, "leaf.pem"),
    ]
    .concat();
    let data = [
        ("bundle", bundle),
        (
            "chain",
            [
                read(dir, "root.pem"),
                read(dir, "leaf.pem"),
                read(dir, "int.pem"),
            ]
            .concat(),
        ),
        ("leaf", read(dir, "leaf.pem")),
    ];
    assert_eq!(
        render("{{ filterPEM \"CERTIFICATE\" .bundle }}", &data).unwrap(),
        [read(dir, "int.pem"), read(dir, "leaf.pem")].concat()
    );
    assert_eq!(
        render("{{ filterPEM \"private key\" .bundle }}", &data).unwrap(),
        read(dir, "leaf.pk8")
    );
    assert!(render("{{ filterPEM \"CERTIFICATE\" \"no pem here\" }}", &data).is_err());
    assert_eq!(
        render("{{ filterCertChain \"leaf\" .chain }}", &data).unwrap(),
        read(dir, "leaf.pem")
    );
    assert_eq!(
        render("{{ filterCertChain \"intermediate\" .chain }}", &data).unwrap(),
        read(dir, "int.pem")
    );
    assert_eq!(
        render("{{ filterCertChain \"root\" .chain }}", &data).unwrap(),
        read(dir, "root.pem")
    );
    assert_eq!(
        String::from_utf8(render("{{ certSANs .leaf | toJson }}", &data).unwrap()).unwrap(),
        r#"["a.example","b.example","10.0.0.1","2001:db8::1","ops@example.com","spiffe://cluster/ns/x"]"#
    );
}

fn b64url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn jwk_rsa_matches_openssl() {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "k.pem",
        ],
    );
    let pkcs8 = openssl(dir, &["pkey", "-in", "k.pem"]);
    let public = openssl(dir, &["pkey", "-in", "k.pem", "-pubout"]);
    let der = openssl(dir, &["pkey", "-in", "k.pem", "-outform", "DER"]);
    // openssl writes the DER form as PKCS#1.
    let key = rsa::RsaPrivateKey::from_pkcs8_der(&der)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_der(&der))
        .unwrap();
    let p = key.primes();
    let jwk_public = format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}"}}"#,
        b64url(&key.n().to_bytes_be()),
        b64url(&key.e().to_bytes_be())
    );
    let jwk_private = format!(
        r#"{{"kty":"RSA","kid":"k1","n":"{}","e":"{}","d":"{}","p":"{}","q":"{}"}}"#,
        b64url(&key.n().to_bytes_be()),
        b64url(&key.e().to_bytes_be()),
        b64url(&key.d().to_bytes_be()),
        b64url(&p[0].to_bytes_be()),
        b64url(&p[1].to_bytes_be())
    );
    let data = [
        ("pub", jwk_public.into_bytes()),
        ("priv", jwk_private.into_bytes()),
    ];
    assert_eq!(
        String::from_utf8(render("{{ .pub | jwkPublicKeyPem }}", &data).unwrap()).unwrap(),
        String::from_utf8(public.clone()).unwrap()
    );
    assert_eq!(
        String::from_utf8(render("{{ .priv | jwkPublicKeyPem }}", &data).unwrap()).unwrap(),
        String::from_utf8(public).unwrap()
    );
    assert_eq!(
        String::from_utf8(render("{{ .priv | jwkPrivateKeyPem }}", &data).unwrap()).unwrap(),
        String::from_utf8(pkcs8).unwrap()
    );
    assert!(render("{{ jwkPrivateKeyPem \"{}\" }}", &data).is_err());
}

#[test]
fn jwk_ec_matches_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ],
    );
    let sec1 = openssl(dir, &["ec", "-in", "k.pem", "-outform", "DER"]);
    // SEC1 layout for P-256: 30 77 02 01 01 04 20 <d:32> a0 0a <oid> a1 44 03 42 00 04 <x:32> <y:32>
    assert_eq!(sec1.len(), 121);
    let (d, x, y) = (&sec1[7..39], &sec1[57..89], &sec1[89..121]);
    let public = openssl(dir, &["pkey", "-in", "k.pem", "-pubout"]);
    let jwk = format!(
        r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}","d":"{}"}}"#,
        b64url(x),
        b64url(y),
        b64url(d)
    );
    let data = [("k", jwk.into_bytes())];
    assert_eq!(
        String::from_utf8(render("{{ .k | jwkPublicKeyPem }}", &data).unwrap()).unwrap(),
        String::from_utf8(public).unwrap()
    );
    // openssl reads our PKCS#8 back to the same key.
    let ours = render("{{ .k | jwkPrivateKeyPem }}", &data).unwrap();
    std::fs::write(dir.join("ours.pem"), &ours).unwrap();
    let back = openssl(dir, &["ec", "-in", "ours.pem", "-outform", "DER"]);
    assert_eq!(back, sec1);
}

#[test]
fn rsa_decrypt_oaep_from_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "k.pem",
        ],
    );
    std::fs::write(dir.join("msg"), b"the secret").unwrap();
    for (md, name) in [("sha256", "SHA256"), ("sha1", "SHA1"), ("sha512", "SHA512")] {
        let oaep = format!("rsa_oaep_md:{md}");
        let mgf = format!("rsa_mgf1_md:{md}");
        openssl(
            dir,
            &[
                "pkeyutl",
                "-encrypt",
                "-inkey",
                "k.pem",
                "-in",
                "msg",
                "-out",
                "ct",
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                &oaep,
                "-pkeyopt",
                &mgf,
            ],
        );
        let data = [
            ("ct", read(dir, "ct")),
            ("key", read(dir, "k.pem")),
            ("hash", name.as_bytes().to_vec()),
        ];
        assert_eq!(
            render("{{ rsaDecrypt \"RSA-OAEP\" .hash .ct .key }}", &data).unwrap(),
            b"the secret"
        );
    }
    let data = [("key", read(dir, "k.pem"))];
    assert_eq!(
        render("{{ rsaDecrypt \"None\" \"SHA256\" \"as is\" .key }}", &data).unwrap(),
        b"as is"
    );
    assert!(render("{{ rsaDecrypt \"RSA-PSS\" \"SHA256\" \"x\" .key }}", &data).is_err());
}

/// Renders `tpl` and splits the output at `|`.
fn render_parts(tpl: &str) -> Vec<String> {
    let out = Template::parse("t", tpl, &ParseOptions::default())
        .unwrap()
        .execute(&Value::from_bytes_map(&BTreeMap::new()))
        .unwrap();
    String::from_utf8(out)
        .unwrap()
        .split('|')
        .map(str::to_string)
        .collect()
}

fn public_key_of_cert(dir: &Path, cert: &str) -> Vec<u8> {
    openssl(dir, &["x509", "-in", cert, "-noout", "-pubkey"])
}

fn public_key_of_key(dir: &Path, key: &str) -> Vec<u8> {
    openssl(dir, &["pkey", "-in", key, "-pubout"])
}

/// sprig's certificate generators: openssl parses the PEM, verifies the chain, and finds
/// the extensions and the key pair sprig's template gives.
#[test]
fn generated_certificates_verify_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, tpl) in [
        (
            "rsa",
            "{{ $ca := genCA \"root-ca\" 30 }}{{ $l := genSignedCert \"leaf\" (list \"10.0.0.1\" \"2001:db8::1\") (list \"a.example\") 30 $ca }}{{ $s := genSelfSignedCert \"self\" nil (list \"b.example\") 1 }}{{ $ca.Cert }}|{{ $ca.Key }}|{{ $l.Cert }}|{{ $l.Key }}|{{ $s.Cert }}|{{ $s.Key }}",
        ),
        (
            "ec",
            "{{ $ca := genCAWithKey \"root-ca\" 30 (genPrivateKey \"ecdsa\") }}{{ $l := genSignedCertWithKey \"leaf\" (list \"10.0.0.1\") (list \"a.example\") 30 $ca (genPrivateKey \"ed25519\") }}{{ $s := genSelfSignedCertWithKey \"self\" nil (list \"b.example\") 1 (genPrivateKey \"ecdsa\") }}{{ $ca.Cert }}|{{ $ca.Key }}|{{ $l.Cert }}|{{ $l.Key }}|{{ $s.Cert }}|{{ $s.Key }}",
        ),
        (
            "ed",
            "{{ $ca := genCAWithKey \"root-ca\" 30 (genPrivateKey \"ed25519\") }}{{ $l := genSignedCertWithKey \"leaf\" (list \"10.0.0.1\") (list \"a.example\") 30 $ca (genPrivateKey \"ecdsa\") }}{{ $s := genSelfSignedCertWithKey \"self\" nil (list \"b.example\") 1 (genPrivateKey \"ed25519\") }}{{ $ca.Cert }}|{{ $ca.Key }}|{{ $l.Cert }}|{{ $l.Key }}|{{ $s.Cert }}|{{ $s.Key }}",
        ),
    ] {
        let p = render_parts(tpl);
        assert_eq!(p.len(), 6, "{name}");
        for (i, f) in [
            "ca.pem", "ca.key", "leaf.pem", "leaf.key", "self.pem", "self.key",
        ]
        .iter()
        .enumerate()
        {
            std::fs::write(d.join(f), &p[i]).unwrap();
        }
        let v = openssl(d, &["verify", "-CAfile", "ca.pem", "leaf.pem"]);
        assert!(
            String::from_utf8_lossy(&v).contains("leaf.pem: OK"),
            "{name}"
        );
        let ca_text =
            String::from_utf8(openssl(d, &["x509", "-in", "ca.pem", "-noout", "-text"])).unwrap();
        assert!(ca_text.contains("CA:TRUE"), "{name}: {ca_text}");
        assert!(ca_text.contains("Certificate Sign"), "{name}: {ca_text}");
        assert!(
            ca_text.contains("Subject Key Identifier"),
            "{name}: {ca_text}"
        );
        assert!(
            ca_text.replace(" = ", "=").contains("Subject: CN=root-ca"),
            "{name}: {ca_text}"
        );
        let leaf_text =
            String::from_utf8(openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-text"])).unwrap();
        assert!(leaf_text.contains("CA:FALSE"), "{name}: {leaf_text}");
        assert!(leaf_text.contains("DNS:a.example"), "{name}: {leaf_text}");
        assert!(
            leaf_text.contains("IP Address:10.0.0.1"),
            "{name}: {leaf_text}"
        );
        assert!(
            leaf_text.replace(" = ", "=").contains("Issuer: CN=root-ca"),
            "{name}: {leaf_text}"
        );
        assert!(leaf_text.contains("TLS Web Server Authentication, TLS Web Client Authentication"));
        assert!(
            leaf_text.contains("Authority Key Identifier"),
            "{name}: {leaf_text}"
        );
        let self_text =
            String::from_utf8(openssl(d, &["x509", "-in", "self.pem", "-noout", "-text"])).unwrap();
        assert!(self_text.contains("DNS:b.example"), "{name}: {self_text}");
        for (c, k) in [
            ("ca.pem", "ca.key"),
            ("leaf.pem", "leaf.key"),
            ("self.pem", "self.key"),
        ] {
            assert_eq!(
                public_key_of_cert(d, c),
                public_key_of_key(d, k),
                "{name} {c}"
            );
        }
        // Self-signed: the signature verifies with its own key.
        openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "self.pem",
                "-partial_chain",
                "self.pem",
            ],
        );
    }
}

/// `genPrivateKey` output is a key openssl reads, in sprig's PEM block types.
#[test]
fn generated_private_keys_parse_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = render_parts("{{ genPrivateKey \"ecdsa\" }}|{{ genPrivateKey \"ed25519\" }}");
    std::fs::write(d.join("ec.key"), &p[0]).unwrap();
    std::fs::write(d.join("ed.key"), &p[1]).unwrap();
    assert!(p[0].starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    assert!(p[1].starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let ec = String::from_utf8(openssl(d, &["pkey", "-in", "ec.key", "-noout", "-text"])).unwrap();
    assert!(ec.contains("prime256v1") || ec.contains("P-256"), "{ec}");
    let ed = String::from_utf8(openssl(d, &["pkey", "-in", "ed.key", "-noout", "-text"])).unwrap();
    assert!(ed.contains("ED25519"), "{ed}");
    openssl(d, &["ec", "-in", "ec.key", "-check", "-noout"]);
}

/// The PEM blocks of one type in openssl's output, without its "Bag Attributes" lines.
fn pem_blocks(text: &[u8], kind: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(text);
    let (begin, end) = (
        format!("-----BEGIN {kind}-----"),
        format!("-----END {kind}-----"),
    );
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(i) = rest.find(&begin) {
        let j = rest[i..].find(&end).unwrap() + i + end.len();
        out.push(format!("{}\n", &rest[i..j]));
        rest = &rest[j..];
    }
    out
}

/// Runs openssl, returning stdout on success and stderr as the error.
fn try_openssl(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Renders a PKCS#12 writer template, checks that the output is base64 as upstream returns
/// it, and stores the archive as `name`.
fn write_archive(dir: &Path, name: &str, tpl: &str, data: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = render(tpl, data).unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .expect("writers return standard base64");
    std::fs::write(dir.join(name), &der).unwrap();
    der
}

/// What openssl reads from an archive with `pass`: the key as canonical PKCS#8 PEM (if
/// any), the certificates in bag order, and the whole `-info` listing (stderr and stdout).
fn openssl_read(dir: &Path, name: &str, pass: &str) -> (Option<String>, Vec<String>, String) {
    let pw = format!("pass:{pass}");
    let out = Command::new("openssl")
        .args(["pkcs12", "-in", name, "-passin", &pw, "-nodes", "-info"])
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    let info = String::from_utf8_lossy(&[out.stderr, out.stdout.clone()].concat()).into_owned();
    assert!(out.status.success(), "openssl pkcs12 -in {name}: {info}");
    let key = pem_blocks(&out.stdout, "PRIVATE KEY").first().map(|k| {
        std::fs::write(dir.join("read.key"), k).unwrap();
        text_of(openssl(dir, &["pkey", "-in", "read.key"]))
    });
    (key, pem_blocks(&out.stdout, "CERTIFICATE"), info)
}

fn text_of(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

/// Every key and certificate written by our functions is what openssl reads back, with the
/// PBE openssl 3 and go-pkcs12 `Modern` use, and our own readers agree.
fn check_writers(dir: &Path, key_file: &str) {
    let leaf = text_of(read(dir, "leaf.pem"));
    let chain: Vec<String> = ["leaf.pem", "int.pem", "root.pem"]
        .iter()
        .map(|f| text_of(read(dir, f)))
        .collect();
    let pk8 = text_of(read(dir, "leaf.pk8"));
    let data = [
        ("cert", read(dir, "leaf.pem")),
        ("chain", chain_pem(dir)),
        ("key", read(dir, key_file)),
    ];

    // Leaf only, empty password (encrypted with the empty password, as go-pkcs12 does).
    let der = write_archive(dir, "a.p12", "{{ pemToPkcs12 .cert .key }}", &data);
    let (key, certs, info) = openssl_read(dir, "a.p12", "");
    assert_eq!(key.as_deref(), Some(pk8.as_str()), "{key_file}");
    assert_eq!(certs, vec![leaf.clone()]);
    assert!(info.contains("MAC: sha256, Iteration 2048"), "{info}");
    assert!(
        info.contains("PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256"),
        "{info}"
    );
    let ours = [("p12", der)];
    assert_eq!(text_of(render("{{ pkcs12key .p12 }}", &ours).unwrap()), pk8);
    assert_eq!(
        text_of(render("{{ pkcs12cert .p12 }}", &ours).unwrap()),
        leaf
    );

    // The chain, with a password; openssl refuses a wrong one.
    let der = write_archive(
        dir,
        "b.p12",
        "{{ fullPemToPkcs12Pass .chain .key \"s3cret\" }}",
        &data,
    );
    let (key, certs, _) = openssl_read(dir, "b.p12", "s3cret");
    assert_eq!(key.as_deref(), Some(pk8.as_str()));
    assert_eq!(certs, chain);
    assert!(
        try_openssl(
            dir,
            &["pkcs12", "-in", "b.p12", "-passin", "pass:wrong", "-nodes"]
        )
        .is_err()
    );
    let ours = [("p12", der)];
    assert_eq!(
        text_of(render("{{ pkcs12keyPass \"s3cret\" .p12 }}", &ours).unwrap()),
        pk8
    );
    assert_eq!(
        text_of(render("{{ pkcs12certPass \"s3cret\" .p12 }}", &ours).unwrap()),
        chain.concat()
    );

    // The other two forms.
    write_archive(
        dir,
        "c.p12",
        "{{ pemToPkcs12Pass .chain .key \"pw\" }}",
        &data,
    );
    let (key, certs, _) = openssl_read(dir, "c.p12", "pw");
    assert_eq!(
        (key.as_deref(), certs),
        (Some(pk8.as_str()), vec![leaf.clone()])
    );
    write_archive(dir, "d.p12", "{{ fullPemToPkcs12 .chain .key }}", &data);
    let (key, certs, _) = openssl_read(dir, "d.p12", "");
    assert_eq!((key.as_deref(), certs), (Some(pk8.as_str()), chain.clone()));
}

#[test]
fn pkcs12_writers_rsa_keys_read_back_with_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_chain(
        dir,
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    check_writers(dir, "leaf.pk8");
    // PKCS#1 ("RSA PRIVATE KEY") input.
    let pkcs1 = openssl(dir, &["rsa", "-in", "leaf.key", "-traditional"]);
    assert!(pkcs1.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
    std::fs::write(dir.join("leaf.rsa"), pkcs1).unwrap();
    check_writers(dir, "leaf.rsa");
}

#[test]
fn pkcs12_writers_ec_keys_read_back_with_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_chain(
        dir,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    );
    check_writers(dir, "leaf.pk8");
    // SEC 1 ("EC PRIVATE KEY") input.
    let sec1 = openssl(dir, &["ec", "-in", "leaf.key"]);
    assert!(sec1.starts_with(b"-----BEGIN EC PRIVATE KEY-----"));
    std::fs::write(dir.join("leaf.sec1"), sec1).unwrap();
    check_writers(dir, "leaf.sec1");
}

#[test]
fn pkcs12_trust_store_reads_back_with_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_chain(
        dir,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let chain: Vec<String> = ["leaf.pem", "int.pem", "root.pem"]
        .iter()
        .map(|f| text_of(read(dir, f)))
        .collect();
    let data = [("chain", chain_pem(dir))];
    for (tpl, pass) in [
        ("{{ pemTruststoreToPKCS12 .chain }}", ""),
        ("{{ pemTruststoreToPKCS12Pass .chain \"trust\" }}", "trust"),
    ] {
        write_archive(dir, "t.p12", tpl, &data);
        let (key, certs, info) = openssl_read(dir, "t.p12", pass);
        assert_eq!(key, None);
        assert_eq!(certs, chain);
        // Go's pkix.Name.String() of each subject, and Java's trusted-usage attribute.
        for name in ["CN=leaf", "CN=int", "CN=root"] {
            assert!(info.contains(&format!("friendlyName: {name}\n")), "{info}");
        }
        assert_eq!(
            info.matches("2.16.840.1.113894.746875.1.1").count(),
            3,
            "{info}"
        );
    }
}

#[test]
fn pkcs12_writer_errors_match_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_chain(
        dir,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let data = [
        ("cert", read(dir, "leaf.pem")),
        ("key", read(dir, "leaf.key")),
        ("chain_blank", [chain_pem(dir), b"\n".to_vec()].concat()),
    ];
    let msg = |tpl: &str| render(tpl, &data).unwrap_err().to_string();
    let nil = "runtime error: invalid memory address or nil pointer dereference";
    assert!(msg("{{ pemToPkcs12 \"x\" .key }}").contains(nil));
    assert!(msg("{{ pemToPkcs12 .cert \"x\" }}").contains(nil));
    // upstream's parseCaCerts reads until the input is empty: a trailing blank line fails.
    assert!(msg("{{ fullPemToPkcs12 .chain_blank .key }}").contains(nil));
    assert!(msg("{{ pemTruststoreToPKCS12 .chain_blank }}").contains(nil));
    assert!(
        msg("{{ pemToPkcs12 .cert .cert }}")
            .contains("error calling pemToPkcs12: unable to parse private key type")
    );
}
