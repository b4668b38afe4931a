//! ESO's PKCS#12 writers: `pemToPkcs12`, `fullPemToPkcs12`, `pemTruststoreToPKCS12` and their
//! `Pass` forms, returning the archive as standard base64.
//!
//! Upstream encodes with go-pkcs12's `Modern` encoder, and so does this module, structure for
//! structure: certificates in an encrypted SafeContents, the key as a PKCS#8 shrouded key bag
//! in a plain one, both encrypted with PBES2 (PBKDF2-HMAC-SHA256, 2048 iterations, 16-byte
//! salt, AES-256-CBC), a SHA-256 MAC over the authenticated safe (2048 iterations, 16-byte
//! salt), the SHA-1 of the leaf certificate as `localKeyId`, and for trust stores Java's
//! trusted-usage attribute plus the subject as `friendlyName`. That is also what OpenSSL 3
//! writes by default, so `openssl pkcs12` reads the result without `-legacy` (checked by
//! `tests/openssl.rs`). Byte-for-byte agreement with Go is not verified here (no Go toolchain
//! on these machines). The empty password encrypts with the empty password, as Go does: it is
//! not an unencrypted archive.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::Digest as _;

use super::crypto::{
    Hash, OID_CERT_BAG, OID_DATA, OID_ENCRYPTED_DATA, OID_PBES2, OID_PBKDF2, OID_SHROUDED_KEY_BAG,
    OID_X509_CERT, normalize_pkcs8, pkcs12_kdf,
};
use super::der::{self, Tlv};
use super::pem::{self, parse_cert};
use super::{Ctx, FnError, FnResult, Func, bytes, table};
use crate::value::Value;

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "pemToPkcs12" => (Str, Str) => pem_to_pkcs12;
    "pemToPkcs12Pass" => (Str, Str, Str) => pem_to_pkcs12_pass;
    "fullPemToPkcs12" => (Str, Str) => full_pem_to_pkcs12;
    "fullPemToPkcs12Pass" => (Str, Str, Str) => full_pem_to_pkcs12_pass;
    "pemTruststoreToPKCS12" => (Str) => truststore_to_pkcs12;
    "pemTruststoreToPKCS12Pass" => (Str, Str) => truststore_to_pkcs12_pass;
};

/// go-pkcs12 `Modern`: iterations for PBKDF2 and for the MAC key.
const ITERATIONS: u32 = 2048;
/// go-pkcs12 `Modern`: salt length for PBKDF2 and for the MAC key.
const SALT_LEN: usize = 16;

const OID_LOCAL_KEY_ID: &str = "1.2.840.113549.1.9.21";
const OID_FRIENDLY_NAME: &str = "1.2.840.113549.1.9.20";
/// Oracle's "trusted key usage" bag attribute, which Java's keystore reads.
const OID_JAVA_TRUST_STORE: &str = "2.16.840.1.113894.746875.1.1";
const OID_ANY_EXTENDED_KEY_USAGE: &str = "2.5.29.37.0";
const OID_HMAC_SHA256: &str = "1.2.840.113549.2.9";
const OID_AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";

/// Source of salts and IVs (the context's random source; a fixed one in tests).
type Fill<'a> = &'a mut dyn FnMut(&mut [u8]) -> Result<(), FnError>;

/// Go's nil-pointer panic, which text/template reports as the function's error: upstream
/// dereferences the result of `pem.Decode` without checking it.
const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

fn pem_to_pkcs12(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    key_archive(ctx, bytes(&a[0]), bytes(&a[1]), b"", false)
}

fn pem_to_pkcs12_pass(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    key_archive(ctx, bytes(&a[0]), bytes(&a[1]), bytes(&a[2]), false)
}

fn full_pem_to_pkcs12(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    key_archive(ctx, bytes(&a[0]), bytes(&a[1]), b"", true)
}

fn full_pem_to_pkcs12_pass(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    key_archive(ctx, bytes(&a[0]), bytes(&a[1]), bytes(&a[2]), true)
}

fn truststore_to_pkcs12(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    trust_archive(ctx, bytes(&a[0]), b"")
}

fn truststore_to_pkcs12_pass(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    trust_archive(ctx, bytes(&a[0]), bytes(&a[1]))
}

fn key_archive(ctx: &mut Ctx, cert: &[u8], key: &[u8], pass: &[u8], chain: bool) -> FnResult {
    let (Some(leaf), rest) = pem::decode(cert) else {
        return Err(NIL_DEREF.into());
    };
    parse_cert(&leaf.bytes)?;
    // `pemToPkcs12` ignores whatever follows the first certificate.
    let ca = if chain {
        parse_certs(rest)?
    } else {
        Vec::new()
    };
    let (Some(key_block), _) = pem::decode(key) else {
        return Err(NIL_DEREF.into());
    };
    let pkcs8 = private_key_pkcs8(&key_block.bytes)?;
    let mut fill = |buf: &mut [u8]| ctx.rng.fill(buf);
    let pfx = encode_key_archive(&mut fill, &pkcs8, &leaf.bytes, &ca, pass)?;
    Ok(Value::str(STANDARD.encode(pfx)))
}

fn trust_archive(ctx: &mut Ctx, certs: &[u8], pass: &[u8]) -> FnResult {
    let certs = parse_certs(certs)?;
    let mut fill = |buf: &mut [u8]| ctx.rng.fill(buf);
    let pfx = encode_trust_store(&mut fill, &certs, pass)?;
    Ok(Value::str(STANDARD.encode(pfx)))
}

/// Upstream's `parseCaCerts`: every PEM block until the input is used up. A tail that holds
/// no block (even a blank line after the last one) is Go's nil-pointer panic.
fn parse_certs(mut rest: &[u8]) -> Result<Vec<Vec<u8>>, FnError> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (Some(block), r) = pem::decode(rest) else {
            return Err(NIL_DEREF.into());
        };
        parse_cert(&block.bytes)?;
        out.push(block.bytes);
        rest = r;
    }
    Ok(out)
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_X25519: &str = "1.3.101.110";
const EC_CURVES: [&str; 4] = [
    "1.3.132.0.33",        // P-224
    "1.2.840.10045.3.1.7", // P-256
    "1.3.132.0.34",        // P-384
    "1.3.132.0.35",        // P-521
];

/// Upstream's `parsePrivateKey` (PKCS#1, then PKCS#8, then SEC 1) followed by Go's
/// `MarshalPKCS8PrivateKey`, which is what go-pkcs12 stores.
fn private_key_pkcs8(d: &[u8]) -> Result<Vec<u8>, FnError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    const UNPARSABLE: &str = "unable to parse private key type";
    if let Ok(k) = rsa::RsaPrivateKey::from_pkcs1_der(d) {
        return k
            .to_pkcs8_der()
            .map(|doc| doc.as_bytes().to_vec())
            .map_err(|e| FnError::Msg(e.to_string()));
    }
    if let Ok((top, _)) = der::expect(d, der::SEQ)
        && let Ok(fields) = der::items(top.body)
        && let Some(alg) = fields.get(1).filter(|t| t.tag == der::SEQ)
        && let Ok(alg_parts) = der::items(alg.body)
        && let Some(oid) = alg_parts.first()
    {
        let known = if der::is_oid(oid, OID_RSA) {
            rsa::RsaPrivateKey::from_pkcs8_der(d).is_ok()
        } else if der::is_oid(oid, OID_EC) {
            alg_parts
                .get(1)
                .is_some_and(|c| EC_CURVES.iter().any(|o| der::is_oid(c, o)))
        } else {
            der::is_oid(oid, OID_ED25519) || der::is_oid(oid, OID_X25519)
        };
        if known && let Ok(k) = normalize_pkcs8(d) {
            return Ok(k);
        }
    }
    sec1_to_pkcs8(d).ok_or_else(|| FnError::Msg(UNPARSABLE.into()))
}

/// An SEC 1 `EC PRIVATE KEY` as Go re-encodes it in PKCS#8: the curve moves to the algorithm
/// identifier, the private scalar is padded to the curve size, the public key stays.
fn sec1_to_pkcs8(d: &[u8]) -> Option<Vec<u8>> {
    let (top, _) = der::expect(d, der::SEQ).ok()?;
    let f = der::items(top.body).ok()?;
    if f.first().map(der::small_uint) != Some(Ok(1)) {
        return None;
    }
    let scalar = f.get(1).filter(|t| t.tag == der::OCTET)?;
    let curve_param = f.iter().find(|t| t.tag == 0xa0)?;
    let (curve, _) = der::expect(curve_param.body, der::OID).ok()?;
    let size = match EC_CURVES.iter().position(|o| der::is_oid(&curve, o))? {
        0 => 28,
        1 => 32,
        2 => 48,
        _ => 66,
    };
    if scalar.body.len() > size {
        return None;
    }
    // The public key is required here; Go would compute a missing one from the scalar.
    let public = f.iter().find(|t| t.tag == 0xa1)?;
    let mut padded = vec![0u8; size - scalar.body.len()];
    padded.extend_from_slice(scalar.body);
    let inner = der::seq(&[&der::uint(&[1]), &der::tlv(der::OCTET, &padded), public.raw]);
    Some(der::seq(&[
        &der::uint(&[0]),
        &der::seq(&[&der::oid(OID_EC), curve.raw]),
        &der::tlv(der::OCTET, &inner),
    ]))
}

// ---- the encoder (go-pkcs12 `Modern`) ----

/// The password in its two encodings: BMPString with a zero terminator for the MAC key,
/// UTF-8 for PBKDF2 (RFC 8018), as go-pkcs12 derives them.
struct Password {
    bmp: Vec<u8>,
    utf8: Vec<u8>,
}

fn password(p: &[u8]) -> Result<Password, FnError> {
    let s = String::from_utf8_lossy(p);
    let bmp = bmp_string(&s)?;
    let mut terminated = bmp;
    terminated.extend_from_slice(&[0, 0]);
    Ok(Password {
        bmp: terminated,
        utf8: s.as_bytes().to_vec(),
    })
}

fn bmp_string(s: &str) -> Result<Vec<u8>, FnError> {
    let mut out = Vec::with_capacity(s.len() * 2);
    for c in s.chars() {
        let u = u16::try_from(u32::from(c)).map_err(|_| {
            FnError::Msg(
                "pkcs12: string contains characters that cannot be encoded in UCS-2".into(),
            )
        })?;
        out.extend_from_slice(&u.to_be_bytes());
    }
    Ok(out)
}

fn int(v: u32) -> Vec<u8> {
    der::uint(&v.to_be_bytes())
}

fn octets(b: &[u8]) -> Vec<u8> {
    der::tlv(der::OCTET, b)
}

fn explicit0(b: &[u8]) -> Vec<u8> {
    der::tlv(0xa0, b)
}

/// A DER `SET OF`: elements sorted by their encoding, as Go's `asn1.Marshal` does.
fn set_of(mut items: Vec<Vec<u8>>) -> Vec<u8> {
    items.sort();
    der::tlv(0x31, &items.concat())
}

fn attribute(oid: &str, value: &[u8]) -> Vec<u8> {
    der::seq(&[&der::oid(oid), &set_of(vec![value.to_vec()])])
}

/// A SafeBag. The attribute set is written even when empty (go-pkcs12 passes an empty,
/// non-nil slice for CA certificates, which Go's `asn1` encodes as `SET {}`).
fn safe_bag(oid: &str, value: &[u8], attrs: Vec<Vec<u8>>) -> Vec<u8> {
    der::seq(&[&der::oid(oid), &explicit0(value), &set_of(attrs)])
}

fn cert_bag(cert: &[u8], attrs: Vec<Vec<u8>>) -> Vec<u8> {
    let inner = der::seq(&[&der::oid(OID_X509_CERT), &explicit0(&octets(cert))]);
    safe_bag(OID_CERT_BAG, &inner, attrs)
}

/// Encrypts `data` with PBES2; returns the algorithm identifier and the ciphertext.
fn pbes2_encrypt(
    fill: Fill<'_>,
    pw: &Password,
    data: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), FnError> {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    let mut salt = [0u8; SALT_LEN];
    fill(&mut salt)?;
    let mut iv = [0u8; 16];
    fill(&mut iv)?;
    let kdf = der::seq(&[
        &octets(&salt),
        &int(ITERATIONS),
        &der::seq(&[&der::oid(OID_HMAC_SHA256)]),
    ]);
    let params = der::seq(&[
        &der::seq(&[&der::oid(OID_PBKDF2), &kdf]),
        &der::seq(&[&der::oid(OID_AES256_CBC), &octets(&iv)]),
    ]);
    let alg = der::seq(&[&der::oid(OID_PBES2), &params]);
    let mut key = [0u8; 32];
    Hash::Sha256.pbkdf2(&pw.utf8, &salt, ITERATIONS, &mut key);
    let enc = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into());
    Ok((alg, enc.encrypt_padded_vec_mut::<Pkcs7>(data)))
}

/// A ContentInfo of type `data` holding the bags.
fn plain_safe(bags: &[Vec<u8>]) -> Vec<u8> {
    let contents = der::tlv(der::SEQ, &bags.concat());
    der::seq(&[&der::oid(OID_DATA), &explicit0(&octets(&contents))])
}

/// A ContentInfo of type `encryptedData` holding the bags.
fn encrypted_safe(fill: Fill<'_>, pw: &Password, bags: &[Vec<u8>]) -> Result<Vec<u8>, FnError> {
    let contents = der::tlv(der::SEQ, &bags.concat());
    let (alg, ct) = pbes2_encrypt(fill, pw, &contents)?;
    let info = der::seq(&[&der::oid(OID_DATA), &alg, &der::tlv(0x80, &ct)]);
    let data = der::seq(&[&int(0), &info]);
    Ok(der::seq(&[
        &der::oid(OID_ENCRYPTED_DATA),
        &explicit0(&data),
    ]))
}

/// The PFX around the authenticated safe, with its SHA-256 MAC.
fn pfx(fill: Fill<'_>, pw: &Password, safes: &[Vec<u8>]) -> Result<Vec<u8>, FnError> {
    let auth_safe = der::tlv(der::SEQ, &safes.concat());
    let mut salt = [0u8; SALT_LEN];
    fill(&mut salt)?;
    let key = pkcs12_kdf(Hash::Sha256, &pw.bmp, &salt, 3, u64::from(ITERATIONS), 32);
    let mac = Hash::Sha256.hmac(&key, &auth_safe);
    let mac_data = der::seq(&[
        &der::seq(&[&der::seq(&[&der::oid(OID_SHA256)]), &octets(&mac)]),
        &octets(&salt),
        &int(ITERATIONS),
    ]);
    Ok(der::seq(&[
        &int(3),
        &der::seq(&[&der::oid(OID_DATA), &explicit0(&octets(&auth_safe))]),
        &mac_data,
    ]))
}

/// go-pkcs12 `Modern.Encode`: the leaf and CA certificates, and the key (PKCS#8 DER).
fn encode_key_archive(
    fill: Fill<'_>,
    pkcs8: &[u8],
    leaf: &[u8],
    ca: &[Vec<u8>],
    pass: &[u8],
) -> Result<Vec<u8>, FnError> {
    let pw = password(pass)?;
    let local_key_id = attribute(OID_LOCAL_KEY_ID, &octets(&sha1::Sha1::digest(leaf)));
    let mut certs = vec![cert_bag(leaf, vec![local_key_id.clone()])];
    certs.extend(ca.iter().map(|c| cert_bag(c, Vec::new())));
    // Same order of random reads as Go: key salt and IV, certificate salt and IV, MAC salt.
    let (alg, ct) = pbes2_encrypt(&mut *fill, &pw, pkcs8)?;
    let shrouded = der::seq(&[&alg, &octets(&ct)]);
    let key_bag = safe_bag(OID_SHROUDED_KEY_BAG, &shrouded, vec![local_key_id]);
    let safes = [
        encrypted_safe(&mut *fill, &pw, &certs)?,
        plain_safe(&[key_bag]),
    ];
    pfx(fill, &pw, &safes)
}

/// go-pkcs12 `Modern.EncodeTrustStore`: one trusted certificate bag per certificate, named
/// by its subject.
fn encode_trust_store(fill: Fill<'_>, certs: &[Vec<u8>], pass: &[u8]) -> Result<Vec<u8>, FnError> {
    let pw = password(pass)?;
    let trusted = attribute(OID_JAVA_TRUST_STORE, &der::oid(OID_ANY_EXTENDED_KEY_USAGE));
    let mut bags = Vec::with_capacity(certs.len());
    for c in certs {
        let name = subject_string(c)?;
        let friendly = attribute(OID_FRIENDLY_NAME, &der::tlv(0x1e, &bmp_string(&name)?));
        bags.push(cert_bag(c, vec![trusted.clone(), friendly]));
    }
    let safes = [encrypted_safe(&mut *fill, &pw, &bags)?];
    pfx(fill, &pw, &safes)
}

// ---- Go's pkix.Name.String() of a certificate's subject ----

/// The subject of a DER certificate as Go's `cert.Subject.String()` prints it.
fn subject_string(cert: &[u8]) -> Result<String, String> {
    let (c, _) = der::expect(cert, der::SEQ)?;
    let (tbs, _) = der::expect(c.body, der::SEQ)?;
    let fields: Vec<Tlv<'_>> = der::items(tbs.body)?
        .into_iter()
        .skip_while(|t| t.tag == 0xa0)
        .collect();
    // serialNumber, signature, issuer, validity, subject
    let subject = fields
        .get(4)
        .filter(|t| t.tag == der::SEQ)
        .ok_or("x509: malformed certificate")?;
    let mut extra: Vec<(String, String)> = Vec::new();
    let mut named: Vec<(&str, Vec<String>)> = [
        "2.5.4.6", "2.5.4.8", "2.5.4.7", "2.5.4.9", "2.5.4.17", "2.5.4.10", "2.5.4.11", "2.5.4.3",
        "2.5.4.5",
    ]
    .iter()
    .map(|o| (*o, Vec::new()))
    .collect();
    for rdn in der::items(subject.body)? {
        for atv in der::items(rdn.body)? {
            let p = der::items(atv.body)?;
            let (Some(oid), Some(val)) = (p.first(), p.get(1)) else {
                return Err("x509: malformed subject".into());
            };
            let dotted = oid_string(oid.body);
            let text = asn1_string(val);
            if let Some((_, values)) = named.iter_mut().find(|(o, _)| *o == dotted) {
                // Go keeps only the last common name and serial number.
                if let Some(t) = text {
                    if dotted == "2.5.4.3" || dotted == "2.5.4.5" {
                        values.clear();
                    }
                    values.push(t);
                }
            } else {
                let raw = match &text {
                    Some(t) => remarshal_string(t),
                    None => val.raw.to_vec(),
                };
                let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                extra.push((dotted.clone(), format!("{dotted}=#{hex}")));
            }
        }
    }
    // Go's order: the other attributes first, then C, ST, L, STREET, POSTALCODE, O, OU, CN,
    // SERIALNUMBER, each field one (multi-valued) RDN; printed last RDN first.
    let mut rdns: Vec<String> = extra.into_iter().map(|(_, s)| s).collect();
    for (oid, values) in &named {
        if values.is_empty() {
            continue;
        }
        let label = attribute_label(oid);
        let parts: Vec<String> = values
            .iter()
            .map(|v| format!("{label}={}", escape_dn_value(v)))
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

fn attribute_label(oid: &str) -> &'static str {
    match oid {
        "2.5.4.6" => "C",
        "2.5.4.8" => "ST",
        "2.5.4.7" => "L",
        "2.5.4.9" => "STREET",
        "2.5.4.17" => "POSTALCODE",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.3" => "CN",
        _ => "SERIALNUMBER",
    }
}

fn escape_dn_value(v: &str) -> String {
    let last = v.len().saturating_sub(1);
    let mut out = String::with_capacity(v.len());
    for (k, c) in v.char_indices() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The string types Go's `asn1.Unmarshal` into `interface{}` turns into a Go string.
fn asn1_string(v: &Tlv<'_>) -> Option<String> {
    match v.tag {
        0x0c | 0x12 | 0x13 | 0x16 | 0x14 => Some(String::from_utf8_lossy(v.body).into_owned()),
        0x1e => {
            let units: Vec<u16> = v
                .body
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// Go's `asn1.Marshal` of a string: PrintableString when every character allows it,
/// otherwise UTF8String.
fn remarshal_string(s: &str) -> Vec<u8> {
    let printable = s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    });
    der::tlv(if printable { 0x13 } else { 0x0c }, s.as_bytes())
}

fn oid_string(body: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for b in body {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_values_are_escaped_like_go() {
        assert_eq!(escape_dn_value(" a,b#"), "\\ a\\,b#");
        assert_eq!(escape_dn_value("#x "), "\\#x\\ ");
    }

    #[test]
    fn passwords_outside_ucs2_are_rejected_like_go() {
        assert!(password("😀".as_bytes()).is_err());
        assert_eq!(password(b"").unwrap().bmp, vec![0, 0]);
    }
}
