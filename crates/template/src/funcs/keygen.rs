//! sprig's password hashing and key and certificate generation (`crypto.go`): `bcrypt`,
//! `htpasswd`, `derivePassword`, `genPrivateKey`, `buildCustomCert`, `genCA*`,
//! `genSelfSignedCert*`, `genSignedCert*`.
//!
//! Certificates are built as Go's `x509.CreateCertificate` builds them from sprig's template:
//! random 128-bit serial, subject `CN=<cn>`, validity from now for `days` days, key usage
//! digital signature + key encipherment (+ cert sign for a CA), extended key usage server and
//! client auth, basic constraints, a SHA-1 subject key identifier on CAs, the issuer's key
//! identifier as authority key identifier, and DNS and IP subject alternative names.
//! Keys: RSA (PKCS#1 v1.5 with SHA-256), ECDSA P-256 (SHA-256) and Ed25519. DSA keys and other
//! elliptic curves are not supported and give an error.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::Digest as _;

use super::der::{self, Tlv};
use super::pem::{self, pem_encode};
use super::{Ctx, FnError, FnResult, Func, Rng, bytes, int, table, text};
use crate::gotime::{self, GoTime};
use crate::value::Value;

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "bcrypt" => (Str) => bcrypt_fn;
    "htpasswd" => (Str, Str) => htpasswd;
    "derivePassword" => (Int, Str, Str, Str, Str) => derive_password;
    "genPrivateKey" => (Str) => gen_private_key;
    "buildCustomCert" => (Str, Str) => build_custom_cert;
    "genCA" => (Str, Int) => gen_ca;
    "genCAWithKey" => (Str, Int, Str) => gen_ca_with_key;
    "genSelfSignedCert" => (Str, Any, Any, Int) => gen_self_signed;
    "genSelfSignedCertWithKey" => (Str, Any, Any, Int, Str) => gen_self_signed_with_key;
    "genSignedCert" => (Str, Any, Any, Int, Cert) => gen_signed;
    "genSignedCertWithKey" => (Str, Any, Any, Int, Cert, Str) => gen_signed_with_key;
};

// ---- randomness for the RustCrypto key generators ----

/// `rand_core` 0.6 adapter over the execution's [`Rng`]; remembers a failure of the source.
struct CryptoRng<'a> {
    rng: &'a mut Rng,
    failed: Option<String>,
}

impl rsa::rand_core::RngCore for CryptoRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if let Err(FnError::Msg(e) | FnError::Plain(e) | FnError::Limit(e)) = self.rng.fill(dest) {
            self.failed = Some(e);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for CryptoRng<'_> {}

fn random<const N: usize>(ctx: &mut Ctx) -> Result<[u8; N], FnError> {
    let mut b = [0u8; N];
    ctx.rng.fill(&mut b)?;
    Ok(b)
}

// ---- bcrypt, htpasswd ----

/// sprig's `bcrypt`: `$2a$`, cost 10; errors are returned as the text, as sprig does.
fn bcrypt_hash(ctx: &mut Ctx, pw: &[u8]) -> Result<String, FnError> {
    if pw.len() > 72 {
        return Ok(
            "failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes".into(),
        );
    }
    let salt = random::<16>(ctx)?;
    match bcrypt::hash_with_salt(pw, 10, salt) {
        Ok(h) => Ok(h.format_for_version(bcrypt::Version::TwoA)),
        Err(e) => Ok(format!("failed to encrypt string with bcrypt: {e}")),
    }
}

fn bcrypt_fn(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(bcrypt_hash(ctx, bytes(&a[0]))?))
}

fn htpasswd(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let user = bytes(&a[0]);
    if user.contains(&b':') {
        let mut out = b"invalid username: ".to_vec();
        out.extend_from_slice(user);
        return Ok(Value::str(out));
    }
    let mut out = user.to_vec();
    out.push(b':');
    out.extend_from_slice(bcrypt_hash(ctx, bytes(&a[1]))?.as_bytes());
    Ok(Value::str(out))
}

// ---- derivePassword (Master Password algorithm) ----

const MASTER_PASSWORD_SEED: &[u8] = b"com.lyndir.masterpassword";

fn password_templates(kind: &[u8]) -> Option<&'static [&'static str]> {
    Some(match kind {
        b"maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        b"long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        b"medium" => &["CvcnoCvc", "CvcCvcno"],
        b"short" => &["Cvcn"],
        b"basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        b"pin" => &["nnnn"],
        _ => return None,
    })
}

fn template_chars(c: u8) -> &'static [u8] {
    match c {
        b'V' => b"AEIOU",
        b'C' => b"BCDFGHJKLMNPQRSTVWXYZ",
        b'v' => b"aeiou",
        b'c' => b"bcdfghjklmnpqrstvwxyz",
        b'A' => b"AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        b'a' => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        b'n' => b"0123456789",
        b'o' => b"@&%?,=[]_:-+*$#!'^~;()/.",
        _ => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

fn derive_password(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let counter = int(&a[0]);
    let counter = u32::try_from(counter).map_err(|_| {
        FnError::Plain(format!(
            "wrong type for value; expected uint32; got int (value {counter} overflows)"
        ))
    })?;
    let kind = bytes(&a[1]);
    let Some(templates) = password_templates(kind) else {
        let mut out = b"cannot find password template ".to_vec();
        out.extend_from_slice(kind);
        return Ok(Value::str(out));
    };
    let (password, user, site) = (bytes(&a[2]), bytes(&a[3]), bytes(&a[4]));
    let mut salt = MASTER_PASSWORD_SEED.to_vec();
    salt.extend_from_slice(&(user.len() as u32).to_be_bytes());
    salt.extend_from_slice(user);
    let params = scrypt::Params::new(15, 8, 2, 64).map_err(|e| e.to_string())?;
    let mut key = [0u8; 64];
    scrypt::scrypt(password, &salt, &params, &mut key)
        .map_err(|e| format!("failed to derive password: {e}"))?;
    let mut msg = MASTER_PASSWORD_SEED.to_vec();
    msg.extend_from_slice(&(site.len() as u32).to_be_bytes());
    msg.extend_from_slice(site);
    msg.extend_from_slice(&counter.to_be_bytes());
    let seed = {
        use hmac::Mac as _;
        let mut m = <hmac::Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(&key)
            .map_err(|e| e.to_string())?;
        m.update(&msg);
        m.finalize().into_bytes()
    };
    let temp = templates[usize::from(seed[0]) % templates.len()];
    let out: Vec<u8> = temp
        .bytes()
        .enumerate()
        .map(|(i, c)| {
            let chars = template_chars(c);
            chars[usize::from(seed[i + 1]) % chars.len()]
        })
        .collect();
    Ok(Value::str(out))
}

// ---- keys ----

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_ED25519: &str = "1.3.101.112";

enum PrivKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl PrivKey {
    fn generate_rsa(ctx: &mut Ctx, bits: usize) -> Result<PrivKey, FnError> {
        let mut rng = CryptoRng {
            rng: &mut ctx.rng,
            failed: None,
        };
        let k = rsa::RsaPrivateKey::new(&mut rng, bits)
            .map_err(|e| format!("error generating rsa key: {e}"))?;
        if let Some(e) = rng.failed {
            return Err(FnError::Msg(format!("error generating rsa key: {e}")));
        }
        Ok(PrivKey::Rsa(Box::new(k)))
    }

    fn generate_p256(ctx: &mut Ctx) -> Result<PrivKey, FnError> {
        loop {
            let d = random::<32>(ctx)?;
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&d) {
                return Ok(PrivKey::P256(k));
            }
        }
    }

    fn generate_ed25519(ctx: &mut Ctx) -> Result<PrivKey, FnError> {
        Ok(PrivKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
            &random::<32>(ctx)?,
        )))
    }

    /// sprig's `pemBlockForKey`.
    fn to_pem(&self) -> Result<Vec<u8>, FnError> {
        Ok(match self {
            PrivKey::Rsa(k) => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let d = k.to_pkcs1_der().map_err(|e| e.to_string())?;
                pem_encode("RSA PRIVATE KEY", d.as_bytes())
            }
            PrivKey::P256(k) => pem_encode("EC PRIVATE KEY", &sec1_der(k)),
            PrivKey::Ed25519(k) => pem_encode(
                "PRIVATE KEY",
                &der::seq(&[
                    &der::uint(&[0]),
                    &der::seq(&[&der::oid(OID_ED25519)]),
                    &der::tlv(der::OCTET, &der::tlv(der::OCTET, &k.to_bytes())),
                ]),
            ),
        })
    }

    /// The SubjectPublicKeyInfo DER.
    fn spki(&self) -> Result<Vec<u8>, FnError> {
        Ok(match self {
            PrivKey::Rsa(k) => {
                use rsa::pkcs8::EncodePublicKey;
                k.to_public_key()
                    .to_public_key_der()
                    .map_err(|e| e.to_string())?
                    .as_bytes()
                    .to_vec()
            }
            PrivKey::P256(k) => {
                let mut bits = vec![0u8];
                bits.extend_from_slice(k.verifying_key().to_encoded_point(false).as_bytes());
                der::seq(&[
                    &der::seq(&[&der::oid(OID_EC), &der::oid(OID_P256)]),
                    &der::tlv(der::BITS, &bits),
                ])
            }
            PrivKey::Ed25519(k) => {
                let mut bits = vec![0u8];
                bits.extend_from_slice(k.verifying_key().as_bytes());
                der::seq(&[
                    &der::seq(&[&der::oid(OID_ED25519)]),
                    &der::tlv(der::BITS, &bits),
                ])
            }
        })
    }

    /// The signature AlgorithmIdentifier Go picks for this key.
    fn sig_alg(&self) -> Vec<u8> {
        match self {
            PrivKey::Rsa(_) => der::seq(&[&der::oid("1.2.840.113549.1.1.11"), &[0x05, 0x00]]),
            PrivKey::P256(_) => der::seq(&[&der::oid("1.2.840.10045.4.3.2")]),
            PrivKey::Ed25519(_) => der::seq(&[&der::oid(OID_ED25519)]),
        }
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, FnError> {
        Ok(match self {
            PrivKey::Rsa(k) => k
                .sign(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &sha2::Sha256::digest(msg),
                )
                .map_err(|e| format!("error creating certificate: {e}"))?,
            PrivKey::P256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let s: p256::ecdsa::Signature = k.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
            PrivKey::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(msg).to_bytes().to_vec()
            }
        })
    }
}

/// Go's `x509.MarshalECPrivateKey` for P-256.
fn sec1_der(k: &p256::ecdsa::SigningKey) -> Vec<u8> {
    let mut point = vec![0u8];
    point.extend_from_slice(k.verifying_key().to_encoded_point(false).as_bytes());
    der::seq(&[
        &der::uint(&[1]),
        &der::tlv(der::OCTET, &k.to_bytes()),
        &der::tlv(0xa0, &der::oid(OID_P256)),
        &der::tlv(0xa1, &der::tlv(der::BITS, &point)),
    ])
}

fn p256_from_sec1(d: &[u8], curve_from_alg: Option<&Tlv<'_>>) -> Result<PrivKey, String> {
    let (top, _) = der::expect(d, der::SEQ)?;
    let f = der::items(top.body)?;
    let priv_octets = f
        .get(1)
        .filter(|t| t.tag == der::OCTET)
        .ok_or("x509: failed to parse EC private key")?;
    let curve = f
        .iter()
        .find(|t| t.tag == 0xa0)
        .and_then(|t| der::read(t.body).ok().map(|(o, _)| o))
        .or(curve_from_alg.copied());
    if !curve.is_some_and(|c| der::is_oid(&c, OID_P256)) {
        return Err("unsupported elliptic curve (only P-256 is supported)".into());
    }
    p256::ecdsa::SigningKey::from_slice(priv_octets.body)
        .map(PrivKey::P256)
        .map_err(|_| "x509: invalid elliptic curve private key value".into())
}

/// sprig's `parsePrivateKeyPEM`.
fn parse_private_key_pem(input: &[u8]) -> Result<PrivKey, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let (Some(block), _) = pem::decode(input) else {
        return Err("no PEM data in input".into());
    };
    let kind = String::from_utf8_lossy(&block.kind).into_owned();
    if kind == "PRIVATE KEY" {
        let parse = || -> Result<PrivKey, String> {
            let (top, _) = der::expect(&block.bytes, der::SEQ)?;
            let f = der::items(top.body)?;
            let alg = der::items(f.get(1).ok_or("malformed PKCS#8 key")?.body)?;
            let oid = alg.first().ok_or("malformed PKCS#8 key")?;
            let inner = f
                .get(2)
                .filter(|t| t.tag == der::OCTET)
                .ok_or("malformed PKCS#8 key")?;
            if der::is_oid(oid, OID_RSA) {
                rsa::RsaPrivateKey::from_pkcs8_der(&block.bytes)
                    .map(|k| PrivKey::Rsa(Box::new(k)))
                    .map_err(|e| e.to_string())
            } else if der::is_oid(oid, OID_EC) {
                p256_from_sec1(inner.body, alg.get(1))
            } else if der::is_oid(oid, OID_ED25519) {
                let (seed, _) = der::expect(inner.body, der::OCTET)?;
                let seed: [u8; 32] = seed
                    .body
                    .try_into()
                    .map_err(|_| "x509: invalid Ed25519 private key length")?;
                Ok(PrivKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                    &seed,
                )))
            } else {
                Err("x509: PKCS#8 wrapping contained private key with unknown algorithm".into())
            }
        };
        return parse().map_err(|e| format!("decoding PEM as PKCS#8: {e}"));
    }
    let Some(prefix) = kind.strip_suffix(" PRIVATE KEY") else {
        return Err(format!("no private key data in PEM block of type {kind}"));
    };
    match prefix {
        "RSA" => rsa::RsaPrivateKey::from_pkcs1_der(&block.bytes)
            .map(|k| PrivKey::Rsa(Box::new(k)))
            .map_err(|e| format!("parsing RSA private key from PEM: {e}")),
        "EC" => p256_from_sec1(&block.bytes, None)
            .map_err(|e| format!("parsing EC private key from PEM: {e}")),
        "DSA" => Err("DSA private keys are not supported".into()),
        _ => Err(format!("invalid private key type {kind}")),
    }
}

fn gen_private_key(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let typ = text(&a[0]);
    let key = match typ.as_str() {
        "" | "rsa" => PrivKey::generate_rsa(ctx, 4096)?,
        "ecdsa" => PrivKey::generate_p256(ctx)?,
        "ed25519" => PrivKey::generate_ed25519(ctx)?,
        "dsa" => return Err("DSA key generation is not supported".into()),
        other => return Ok(Value::str(format!("Unknown type {other}"))),
    };
    Ok(Value::str(key.to_pem()?))
}

// ---- certificates ----

/// The parts of a parsed certificate that signing needs.
struct ParsedCert<'a> {
    subject: &'a [u8],
    spki: &'a [u8],
    subject_key_id: Option<&'a [u8]>,
}

fn parse_cert(d: &[u8]) -> Result<ParsedCert<'_>, String> {
    let (top, _) = der::expect(d, der::SEQ)?;
    let f = der::items(top.body)?;
    if f.len() != 3 {
        return Err("x509: malformed certificate".into());
    }
    let tbs = der::items(f[0].body)?;
    let off = usize::from(tbs.first().is_some_and(|t| t.tag == 0xa0));
    let get = |i: usize| tbs.get(off + i).ok_or("x509: malformed tbs certificate");
    let subject = get(4)?;
    let spki = get(5)?;
    if subject.tag != der::SEQ || spki.tag != der::SEQ {
        return Err("x509: malformed tbs certificate".into());
    }
    let mut ski = None;
    if let Some(ext) = tbs.iter().find(|t| t.tag == 0xa3) {
        let (exts, _) = der::expect(ext.body, der::SEQ)?;
        for e in der::items(exts.body)? {
            let p = der::items(e.body)?;
            if p.first().is_some_and(|o| der::is_oid(o, "2.5.29.14"))
                && let Some(v) = p.last()
            {
                let (o, _) = der::expect(v.body, der::OCTET)?;
                ski = Some(o.body);
            }
        }
    }
    Ok(ParsedCert {
        subject: subject.raw,
        spki: spki.raw,
        subject_key_id: ski,
    })
}

/// Go's `encoding/asn1` string choice: PrintableString when possible, else UTF8String.
fn name_der(cn: &[u8]) -> Vec<u8> {
    if cn.is_empty() {
        return der::seq(&[]);
    }
    let printable = cn
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(c));
    let tag = if printable { 0x13 } else { 0x0c };
    let atv = der::seq(&[&der::oid("2.5.4.3"), &der::tlv(tag, cn)]);
    der::seq(&[&der::tlv(0x31, &atv)])
}

/// UTCTime for 1950..2049, GeneralizedTime otherwise.
fn time_der(t: &GoTime) -> Vec<u8> {
    let utc = t.in_loc(gotime::Loc::Utc);
    let year: i64 = utc.format("2006").parse().unwrap_or(0);
    if (1950..2050).contains(&year) {
        der::tlv(0x17, utc.format("060102150405Z").as_bytes())
    } else {
        der::tlv(0x18, utc.format("20060102150405Z").as_bytes())
    }
}

fn ext(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    if critical {
        der::seq(&[
            &der::oid(oid),
            &[0x01, 0x01, 0xff],
            &der::tlv(der::OCTET, value),
        ])
    } else {
        der::seq(&[&der::oid(oid), &der::tlv(der::OCTET, value)])
    }
}

/// sprig's `getNetIPs`: each entry a string that `net.ParseIP` accepts.
fn ip_list(v: &Value) -> Result<Vec<Vec<u8>>, FnError> {
    let items = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::List(items, _) => items.clone(),
        other => {
            return Err(FnError::Plain(format!(
                "wrong type for value; expected []interface {{}}; got {}",
                other.type_name()
            )));
        }
    };
    let mut out = Vec::new();
    for it in items.iter() {
        let Value::Str(s) = it else {
            return Err(FnError::Msg(format!(
                "error parsing ip: {} is not a string",
                String::from_utf8_lossy(&it.to_go_string())
            )));
        };
        let st = String::from_utf8_lossy(s);
        let ip: std::net::IpAddr =
            parse_go_ip(&st).ok_or_else(|| FnError::Msg(format!("error parsing ip: {st}")))?;
        out.push(match ip {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => v4.octets().to_vec(),
                None => a.octets().to_vec(),
            },
        });
    }
    Ok(out)
}

/// `net.ParseIP`: dotted IPv4 (no leading zeros) or IPv6 without a zone.
fn parse_go_ip(s: &str) -> Option<std::net::IpAddr> {
    if s.contains(':') {
        return s
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(std::net::IpAddr::V6);
    }
    s.parse::<std::net::Ipv4Addr>()
        .ok()
        .map(std::net::IpAddr::V4)
}

fn dns_list(v: &Value) -> Result<Vec<Vec<u8>>, FnError> {
    let items = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::List(items, _) => items.clone(),
        other => {
            return Err(FnError::Plain(format!(
                "wrong type for value; expected []interface {{}}; got {}",
                other.type_name()
            )));
        }
    };
    items
        .iter()
        .map(|it| match it {
            Value::Str(s) => Ok(s.to_vec()),
            other => Err(FnError::Msg(format!(
                "error processing alternate dns name: {} is not a string",
                String::from_utf8_lossy(&other.to_go_string())
            ))),
        })
        .collect()
}

struct Template {
    cn: Vec<u8>,
    ips: Vec<Vec<u8>>,
    dns: Vec<Vec<u8>>,
    days: i64,
    is_ca: bool,
}

/// `x509.CreateCertificate` of sprig's template; `parent` is `None` for self-signed.
fn create_cert(
    ctx: &mut Ctx,
    t: &Template,
    signee: &PrivKey,
    parent: Option<(&ParsedCert<'_>, &PrivKey)>,
) -> FnResult {
    let spki = signee.spki()?;
    let subject = name_der(&t.cn);
    let (issuer, signer) = match parent {
        Some((p, k)) => {
            if k.spki()? != p.spki {
                return Err(FnError::Msg(
                    "error creating certificate: x509: provided PrivateKey doesn't match parent's PublicKey".into(),
                ));
            }
            (p.subject.to_vec(), k)
        }
        None => (subject.clone(), signee),
    };
    let mut serial = random::<16>(ctx)?.to_vec();
    serial.insert(0, 0);
    let now = GoTime {
        nanos: ctx.now_nanos(),
        loc: gotime::Loc::Utc,
        mono: None,
    };
    let not_after = now.add(t.days.saturating_mul(86_400_000_000_000));
    let mut exts = Vec::new();
    // Key usage: digital signature, key encipherment (+ cert sign), bits reversed.
    let ku: &[u8] = if t.is_ca {
        &[0x03, 0x02, 0x02, 0xa4]
    } else {
        &[0x03, 0x02, 0x05, 0xa0]
    };
    exts.push(ext("2.5.29.15", true, ku));
    exts.push(ext(
        "2.5.29.37",
        false,
        &der::seq(&[
            &der::oid("1.3.6.1.5.5.7.3.1"),
            &der::oid("1.3.6.1.5.5.7.3.2"),
        ]),
    ));
    let bc = if t.is_ca {
        der::seq(&[&[0x01, 0x01, 0xff]])
    } else {
        der::seq(&[])
    };
    exts.push(ext("2.5.29.19", true, &bc));
    if t.is_ca {
        let (bits, _) = der::items(der::expect(&spki, der::SEQ)?.0.body)?
            .get(1)
            .map(|b| (b.body.get(1..).unwrap_or(&[]).to_vec(), ()))
            .ok_or("x509: bad public key")?;
        let ski = sha1::Sha1::digest(&bits);
        exts.push(ext("2.5.29.14", false, &der::tlv(der::OCTET, &ski)));
    }
    if let Some((p, _)) = parent
        && p.subject != subject.as_slice()
        && let Some(aki) = p.subject_key_id
        && !aki.is_empty()
    {
        exts.push(ext("2.5.29.35", false, &der::seq(&[&der::tlv(0x80, aki)])));
    }
    if !t.dns.is_empty() || !t.ips.is_empty() {
        let mut names = Vec::new();
        for d in &t.dns {
            names.extend(der::tlv(0x82, d));
        }
        for ip in &t.ips {
            names.extend(der::tlv(0x87, ip));
        }
        exts.push(ext(
            "2.5.29.17",
            t.cn.is_empty(),
            &der::tlv(der::SEQ, &names),
        ));
    }
    let ext_refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
    let sig_alg = signer.sig_alg();
    let tbs = der::seq(&[
        &der::tlv(0xa0, &der::uint(&[2])),
        &der::uint(&serial),
        &sig_alg,
        &issuer,
        &der::seq(&[&time_der(&now), &time_der(&not_after)]),
        &subject,
        &spki,
        &der::tlv(0xa3, &der::seq(&ext_refs)),
    ]);
    let sig = signer.sign(&tbs)?;
    let mut bits = vec![0u8];
    bits.extend(sig);
    let cert = der::seq(&[&tbs, &sig_alg, &der::tlv(der::BITS, &bits)]);
    Ok(Value::Cert {
        cert: pem_encode("CERTIFICATE", &cert).into(),
        key: signee.to_pem()?.into(),
    })
}

fn key_arg(v: &Value) -> Result<PrivKey, FnError> {
    parse_private_key_pem(bytes(v)).map_err(|e| FnError::Msg(format!("parsing private key: {e}")))
}

fn template(
    cn: &Value,
    ips: Option<&Value>,
    dns: Option<&Value>,
    days: &Value,
) -> Result<Template, FnError> {
    Ok(Template {
        cn: bytes(cn).to_vec(),
        ips: ips.map(ip_list).transpose()?.unwrap_or_default(),
        dns: dns.map(dns_list).transpose()?.unwrap_or_default(),
        days: int(days),
        is_ca: false,
    })
}

fn gen_ca(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = PrivKey::generate_rsa(ctx, 2048)?;
    let mut t = template(&a[0], None, None, &a[1])?;
    t.is_ca = true;
    create_cert(ctx, &t, &key, None)
}

fn gen_ca_with_key(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = key_arg(&a[2])?;
    let mut t = template(&a[0], None, None, &a[1])?;
    t.is_ca = true;
    create_cert(ctx, &t, &key, None)
}

fn gen_self_signed(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = template(&a[0], Some(&a[1]), Some(&a[2]), &a[3])?;
    let key = PrivKey::generate_rsa(ctx, 2048)?;
    create_cert(ctx, &t, &key, None)
}

fn gen_self_signed_with_key(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = key_arg(&a[4])?;
    let t = template(&a[0], Some(&a[1]), Some(&a[2]), &a[3])?;
    create_cert(ctx, &t, &key, None)
}

fn signed(ctx: &mut Ctx, a: &[Value], key: PrivKey) -> FnResult {
    let Value::Cert { cert, key: ca_key } = &a[4] else {
        return Err("unable to decode certificate".into());
    };
    let (Some(block), _) = pem::decode(cert) else {
        return Err("unable to decode certificate".into());
    };
    let parent = parse_cert(&block.bytes).map_err(|e| {
        FnError::Msg(format!(
            "error parsing certificate: decodedSignerCert.Bytes: {e}"
        ))
    })?;
    let signer = parse_private_key_pem(ca_key)
        .map_err(|e| FnError::Msg(format!("error parsing private key: {e}")))?;
    let t = template(&a[0], Some(&a[1]), Some(&a[2]), &a[3])?;
    create_cert(ctx, &t, &key, Some((&parent, &signer)))
}

fn gen_signed(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    // sprig checks the IP and DNS lists before generating the key.
    template(&a[0], Some(&a[1]), Some(&a[2]), &a[3])?;
    let key = PrivKey::generate_rsa(ctx, 2048)?;
    signed(ctx, &a, key)
}

fn gen_signed_with_key(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let key = key_arg(&a[5])?;
    signed(ctx, &a, key)
}

fn build_custom_cert(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let cert = STANDARD
        .decode(bytes(&a[0]))
        .map_err(|_| "unable to decode base64 certificate")?;
    let key = STANDARD
        .decode(bytes(&a[1]))
        .map_err(|_| "unable to decode base64 private key")?;
    let (Some(block), _) = pem::decode(&cert) else {
        return Err("unable to decode certificate".into());
    };
    parse_cert(&block.bytes)
        .map_err(|e| FnError::Msg(format!("error parsing certificate: decodedCert.Bytes: {e}")))?;
    parse_private_key_pem(&key)
        .map_err(|e| FnError::Msg(format!("error parsing private key: {e}")))?;
    Ok(Value::Cert {
        cert: cert.into(),
        key: key.into(),
    })
}
