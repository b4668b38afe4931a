//! A minimal DER reader and writer: enough for X.509 extensions, PKCS#8 and PKCS#12.

/// One tag-length-value element.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) body: &'a [u8],
    pub(crate) raw: &'a [u8],
}

pub(crate) const SEQ: u8 = 0x30;
pub(crate) const INT: u8 = 0x02;
pub(crate) const OCTET: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const BITS: u8 = 0x03;

/// Reads one element from the front of `input`; returns it and the rest.
pub(crate) fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let tag = *input.first().ok_or("asn1: truncated element")?;
    if tag & 0x1f == 0x1f {
        return Err("asn1: high-tag-number form not supported".into());
    }
    let l0 = *input.get(1).ok_or("asn1: truncated length")?;
    let (len, hdr) = if l0 < 0x80 {
        (usize::from(l0), 2)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return Err("asn1: indefinite or oversized length not supported".into());
        }
        let b = input.get(2..2 + n).ok_or("asn1: truncated length")?;
        (
            b.iter().fold(0usize, |acc, x| (acc << 8) | usize::from(*x)),
            2 + n,
        )
    };
    let end = hdr.checked_add(len).ok_or("asn1: length overflow")?;
    if end > input.len() {
        return Err("asn1: data truncated".into());
    }
    Ok((
        Tlv {
            tag,
            body: &input[hdr..end],
            raw: &input[..end],
        },
        &input[end..],
    ))
}

/// Reads exactly one element with the given tag.
pub(crate) fn expect(input: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8]), String> {
    let (t, rest) = read(input)?;
    if t.tag != tag {
        return Err(format!(
            "asn1: structure error: tags don't match (expected {tag:#04x}, got {:#04x})",
            t.tag
        ));
    }
    Ok((t, rest))
}

/// All elements inside a constructed body.
pub(crate) fn items(mut body: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let mut v = Vec::new();
    while !body.is_empty() {
        let (t, rest) = read(body)?;
        v.push(t);
        body = rest;
    }
    Ok(v)
}

/// A non-negative INTEGER's value as u64 (small integers: versions, iteration counts).
pub(crate) fn small_uint(t: &Tlv<'_>) -> Result<u64, String> {
    if t.tag != INT || t.body.is_empty() || t.body.len() > 8 || t.body[0] & 0x80 != 0 {
        return Err("asn1: bad integer".into());
    }
    Ok(t.body
        .iter()
        .fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
}

/// Encodes one element.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already-encoded elements.
pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(SEQ, &parts.concat())
}

/// An INTEGER from unsigned big-endian bytes.
pub(crate) fn uint(be: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let i = be.iter().position(|b| *b != 0).unwrap_or(be.len());
        &be[i..]
    };
    let mut c = Vec::new();
    if trimmed.is_empty() || trimmed[0] & 0x80 != 0 {
        c.push(0);
    }
    c.extend_from_slice(trimmed);
    tlv(INT, &c)
}

/// An OBJECT IDENTIFIER from its dotted form.
pub(crate) fn oid(dotted: &str) -> Vec<u8> {
    tlv(OID, &oid_body(dotted))
}

pub(crate) fn oid_body(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').filter_map(|x| x.parse().ok()).collect();
    let mut out = Vec::new();
    if arcs.len() < 2 {
        return out;
    }
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        out.extend(tmp);
    };
    push(arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        push(*a);
    }
    out
}

/// Whether an OID element has the given dotted value.
pub(crate) fn is_oid(t: &Tlv<'_>, dotted: &str) -> bool {
    t.tag == OID && t.body == oid_body(dotted).as_slice()
}
