//! ESO's PEM helpers: `filterPEM`, `filterCertChain`, `certSANs`, with Go's `encoding/pem`
//! parsing rules and the small part of X.509 they need.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::der::{self, Tlv};
use super::{Ctx, FnError, FnResult, Func, bytes, table, text};
use crate::value::Value;

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "filterPEM" => (Str, Str) => filter_pem;
    "filterCertChain" => (Str, Str) => filter_cert_chain;
    "certSANs" => (Str) => cert_sans;
};

/// A decoded PEM block.
pub(crate) struct Block {
    pub(crate) kind: Vec<u8>,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) bytes: Vec<u8>,
}

fn get_line(data: &[u8]) -> (&[u8], &[u8]) {
    let (mut i, j) = match data.iter().position(|c| *c == b'\n') {
        Some(i) => (i, i + 1),
        None => (data.len(), data.len()),
    };
    if i > 0 && i < data.len() && data[i - 1] == b'\r' {
        i -= 1;
    }
    let mut line = &data[..i];
    while let [rest @ .., b' ' | b'\t'] = line {
        line = rest;
    }
    (line, &data[j..])
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Go's `pem.Decode`: the next block and the rest, or `None` and the input unchanged.
pub(crate) fn decode(data: &[u8]) -> (Option<Block>, &[u8]) {
    const START: &[u8] = b"\n-----BEGIN ";
    const END: &[u8] = b"\n-----END ";
    let mut rest = data;
    loop {
        if rest.starts_with(&START[1..]) {
            rest = &rest[START.len() - 1..];
        } else if let Some(i) = find(rest, START) {
            rest = &rest[i + START.len()..];
        } else {
            return (None, data);
        }
        let (type_line, r) = get_line(rest);
        rest = r;
        let Some(kind) = type_line.strip_suffix(b"-----") else {
            continue;
        };
        let mut headers = BTreeMap::new();
        let mut truncated = false;
        loop {
            if rest.is_empty() {
                truncated = true;
                break;
            }
            let (line, next) = get_line(rest);
            let Some(c) = line.iter().position(|x| *x == b':') else {
                break;
            };
            let key = String::from_utf8_lossy(&line[..c]).trim().to_string();
            let val = String::from_utf8_lossy(&line[c + 1..]).trim().to_string();
            headers.insert(key, val);
            rest = next;
        }
        if truncated {
            return (None, data);
        }
        let (end_index, trailer_index) = if headers.is_empty() && rest.starts_with(&END[1..]) {
            (0, END.len() - 1)
        } else {
            match find(rest, END) {
                Some(i) => (i, i + END.len()),
                None => continue,
            }
        };
        let trailer = &rest[trailer_index..];
        let tlen = kind.len() + 5;
        if trailer.len() < tlen {
            continue;
        }
        let (t, rest_of_end) = trailer.split_at(tlen);
        if !t.starts_with(kind) || !t.ends_with(b"-----") {
            continue;
        }
        if !get_line(rest_of_end).0.is_empty() {
            continue;
        }
        let b64: Vec<u8> = rest[..end_index]
            .iter()
            .copied()
            .filter(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
            .collect();
        let Ok(decoded) = STANDARD.decode(&b64) else {
            continue;
        };
        let after = &rest[(end_index + END.len() - 1).min(rest.len())..];
        let (_, after) = get_line(after);
        return (
            Some(Block {
                kind: kind.to_vec(),
                headers,
                bytes: decoded,
            }),
            after,
        );
    }
}

/// Go's `pem.Encode` of a block without headers.
pub(crate) fn pem_encode(kind: &str, der: &[u8]) -> Vec<u8> {
    encode_block(kind.as_bytes(), &BTreeMap::new(), der)
}

fn encode_block(kind: &[u8], headers: &BTreeMap<String, String>, der: &[u8]) -> Vec<u8> {
    let mut out = b"-----BEGIN ".to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(b"-----\n");
    if !headers.is_empty() {
        if let Some(v) = headers.get("Proc-Type") {
            out.extend_from_slice(format!("Proc-Type: {v}\n").as_bytes());
        }
        for (k, v) in headers {
            if k != "Proc-Type" {
                out.extend_from_slice(format!("{k}: {v}\n").as_bytes());
            }
        }
        out.push(b'\n');
    }
    let b64 = STANDARD.encode(der);
    for chunk in b64.as_bytes().chunks(64) {
        out.extend_from_slice(chunk);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END ");
    out.extend_from_slice(kind);
    out.extend_from_slice(b"-----\n");
    out
}

fn trim_junk(input: &[u8]) -> &[u8] {
    match find(input, b"-----BEGIN") {
        Some(i) => &input[i..],
        None => input,
    }
}

fn filter_pem(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let want = text(&a[0]).to_lowercase();
    let mut data = trim_junk(bytes(&a[1]));
    let mut out = Vec::new();
    let rest;
    loop {
        let (block, r) = decode(data);
        data = r;
        let Some(b) = block else {
            rest = r;
            break;
        };
        if String::from_utf8_lossy(&b.kind).to_lowercase() != want {
            continue;
        }
        out.extend(encode_block(&b.kind, &b.headers, &b.bytes));
    }
    if out.is_empty() && !rest.is_empty() {
        return Err("error filtering pem: found junk".into());
    }
    Ok(Value::str(out))
}

/// The parts of a certificate ESO's helpers look at.
pub(crate) struct Cert {
    pub(crate) raw: Vec<u8>,
    pub(crate) skid: Option<Vec<u8>>,
    pub(crate) akid: Option<Vec<u8>>,
    dns: Vec<String>,
    ips: Vec<String>,
    emails: Vec<String>,
    uris: Vec<String>,
}

const OID_SKID: &str = "2.5.29.14";
const OID_AKID: &str = "2.5.29.35";
const OID_SAN: &str = "2.5.29.17";

pub(crate) fn parse_cert(raw: &[u8]) -> Result<Cert, String> {
    let err = |e: String| format!("x509: malformed certificate: {e}");
    let (cert, _) = der::expect(raw, der::SEQ).map_err(err)?;
    let parts = der::items(cert.body).map_err(err)?;
    let tbs = parts
        .first()
        .filter(|t| t.tag == der::SEQ)
        .ok_or_else(|| err("missing tbsCertificate".into()))?;
    if parts.len() != 3 {
        return Err(err("wrong number of fields".into()));
    }
    let mut c = Cert {
        raw: cert.raw.to_vec(),
        skid: None,
        akid: None,
        dns: vec![],
        ips: vec![],
        emails: vec![],
        uris: vec![],
    };
    for field in der::items(tbs.body).map_err(err)? {
        if field.tag != 0xa3 {
            continue;
        }
        let (exts, _) = der::expect(field.body, der::SEQ).map_err(err)?;
        for ext in der::items(exts.body).map_err(err)? {
            let e = der::items(ext.body).map_err(err)?;
            let (Some(id), Some(val)) = (e.first(), e.last()) else {
                continue;
            };
            if val.tag != der::OCTET {
                continue;
            }
            if der::is_oid(id, OID_SKID) {
                let (k, _) = der::expect(val.body, der::OCTET).map_err(err)?;
                c.skid = Some(k.body.to_vec());
            } else if der::is_oid(id, OID_AKID) {
                let (s, _) = der::expect(val.body, der::SEQ).map_err(err)?;
                for it in der::items(s.body).map_err(err)? {
                    if it.tag == 0x80 {
                        c.akid = Some(it.body.to_vec());
                    }
                }
            } else if der::is_oid(id, OID_SAN) {
                let (s, _) = der::expect(val.body, der::SEQ).map_err(err)?;
                for n in der::items(s.body).map_err(err)? {
                    push_name(&mut c, &n);
                }
            }
        }
    }
    Ok(c)
}

fn push_name(c: &mut Cert, n: &Tlv<'_>) {
    let s = || String::from_utf8_lossy(n.body).into_owned();
    match n.tag {
        0x81 => c.emails.push(s()),
        0x82 => c.dns.push(s()),
        0x86 => c.uris.push(s()),
        0x87 => {
            let b = n.body;
            if b.len() == 4 {
                c.ips.push(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]));
            } else if let Ok(a) = <[u8; 16]>::try_from(b) {
                let ip = std::net::Ipv6Addr::from(a);
                match ip.to_ipv4_mapped() {
                    Some(v4) => c.ips.push(v4.to_string()),
                    None => c.ips.push(ip.to_string()),
                }
            }
        }
        _ => {}
    }
}

/// ESO's `fetchX509CertChains`: orders certificates leaf first by key-identifier links.
pub(crate) fn order_chain(data: &[u8]) -> Result<Vec<Cert>, String> {
    let mut certs = Vec::new();
    let mut rest = data;
    loop {
        let (b, r) = decode(rest);
        rest = r;
        let Some(b) = b else { break };
        certs.push(parse_cert(&b.bytes)?);
    }
    let n = certs.len();
    let empty: Vec<u8> = Vec::new();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut is_parent = vec![false; n];
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            if certs[i].akid.as_ref().unwrap_or(&empty) == certs[j].skid.as_ref().unwrap_or(&empty)
            {
                is_parent[j] = true;
                parent[i] = Some(j);
                break;
            }
        }
    }
    let mut leaf = None;
    for (i, parent_of_some) in is_parent.iter().enumerate() {
        if !parent_of_some {
            if leaf.is_some() {
                return Err("found multiple leaf or disjunct certificates".into());
            }
            leaf = Some(i);
        }
    }
    let Some(mut cur) = leaf else {
        return Err("no leaf certificate found".into());
    };
    let mut order = Vec::new();
    loop {
        if order.len() >= n {
            return Err("constructing chain resulted in cycle".into());
        }
        order.push(cur);
        match parent[cur] {
            Some(p) => cur = p,
            None => break,
        }
    }
    let mut slots: Vec<Option<Cert>> = certs.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

fn is_root(c: &Cert) -> bool {
    match &c.akid {
        None => true,
        Some(a) => a == c.skid.as_ref().unwrap_or(&Vec::new()),
    }
}

fn filter_cert_chain(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let ordered = order_chain(bytes(&a[1])).map_err(FnError::Msg)?;
    let kind = text(&a[0]);
    let out = match kind.as_str() {
        "leaf" => {
            let c = &ordered[0];
            match &c.akid {
                Some(ak) if ak != c.skid.as_ref().unwrap_or(&Vec::new()) => {
                    pem_encode("CERTIFICATE", &c.raw)
                }
                _ => Vec::new(),
            }
        }
        "intermediate" => {
            let mut out = Vec::new();
            for c in ordered.iter().skip(1) {
                if is_root(c) {
                    break;
                }
                out.extend(pem_encode("CERTIFICATE", &c.raw));
            }
            out
        }
        "root" => match ordered.last() {
            Some(c) if is_root(c) => pem_encode("CERTIFICATE", &c.raw),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    Ok(Value::str(out))
}

fn cert_sans(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let input = trim_junk(bytes(&a[0]));
    let (Some(b), _) = decode(input) else {
        return Err("failed to decode PEM block".into());
    };
    let c = parse_cert(&b.bytes)
        .map_err(|e| FnError::Msg(format!("failed to parse certificate: {e}")))?;
    let mut v = c.dns.clone();
    v.extend(c.ips.iter().cloned());
    v.extend(c.emails.iter().cloned());
    v.extend(c.uris.iter().cloned());
    Ok(Value::str_list(v))
}
