//! Encodings, checksums, UUIDs, random bytes and sprig's AES helpers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::Digest as _;

use super::{Ctx, FnError, FnResult, Func, bytes, int, table};
use crate::value::Value;

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "b64enc" => (Str) => b64enc;
    "b64dec" => (Str) => b64dec;
    "b32enc" => (Str) => b32enc;
    "b32dec" => (Str) => b32dec;
    "hexdec" => (Str) => hexdec;
    "sha1sum" => (Str) => sha1sum;
    "sha256sum" => (Str) => sha256sum;
    "sha512sum" => (Str) => sha512sum;
    "adler32sum" => (Str) => adler32sum;
    "uuidv4" => () => uuidv4;
    "randBytes" => (Int) => rand_bytes;
    "encryptAES" => (Str, Str) => encrypt_aes;
    "decryptAES" => (Str, Str) => decrypt_aes;
};

fn b64enc(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(STANDARD.encode(bytes(&a[0]))))
}

/// Go's `base64.StdEncoding.DecodeString`: strict padding, but `\r` and `\n` are skipped.
/// Errors are returned as the output text, as sprig does.
pub(crate) fn go_b64_decode(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut quad = [0u8; 4];
    let mut n = 0;
    let mut pos_of = [0usize; 4];
    let mut i = 0;
    let val = |c: u8| -> Option<u8> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    while i < input.len() {
        let c = input[i];
        if c == b'\r' || c == b'\n' {
            i += 1;
            continue;
        }
        if c == b'=' {
            // padding: need 2 or 3 symbols collected
            let start = i;
            let need = match n {
                2 => 2,
                3 => 1,
                _ => return Err(format!("illegal base64 data at input byte {start}")),
            };
            let mut got = 0;
            while got < need {
                while i < input.len() && (input[i] == b'\r' || input[i] == b'\n') {
                    i += 1;
                }
                if i >= input.len() {
                    return Err(format!("illegal base64 data at input byte {}", input.len()));
                }
                if input[i] != b'=' {
                    return Err(format!(
                        "illegal base64 data at input byte {}",
                        if got == 0 { i } else { i - 1 }
                    ));
                }
                got += 1;
                i += 1;
            }
            while i < input.len() && (input[i] == b'\r' || input[i] == b'\n') {
                i += 1;
            }
            if i < input.len() {
                return Err(format!("illegal base64 data at input byte {i}"));
            }
            let v = (u32::from(quad[0]) << 18)
                | (u32::from(quad[1]) << 12)
                | if n == 3 { u32::from(quad[2]) << 6 } else { 0 };
            out.push((v >> 16) as u8);
            if n == 3 {
                out.push((v >> 8) as u8);
            }
            return Ok(out);
        }
        let Some(v) = val(c) else {
            return Err(format!("illegal base64 data at input byte {i}"));
        };
        quad[n] = v;
        pos_of[n] = i;
        n += 1;
        if n == 4 {
            let v = (u32::from(quad[0]) << 18)
                | (u32::from(quad[1]) << 12)
                | (u32::from(quad[2]) << 6)
                | u32::from(quad[3]);
            out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
            n = 0;
        }
        i += 1;
    }
    if n != 0 {
        return Err(format!("illegal base64 data at input byte {}", pos_of[0]));
    }
    Ok(out)
}

fn b64dec(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(match go_b64_decode(bytes(&a[0])) {
        Ok(v) => Value::str(v),
        Err(e) => Value::str(e),
    })
}

const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn b32enc(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let input = bytes(&a[0]);
    let mut out = Vec::new();
    for chunk in input.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let v = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let symbols = match chunk.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for k in 0..8 {
            if k < symbols {
                out.push(B32[((v >> (35 - 5 * k)) & 31) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    Ok(Value::str(out))
}

fn b32dec(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let input: Vec<u8> = bytes(&a[0])
        .iter()
        .copied()
        .filter(|c| *c != b'\r' && *c != b'\n')
        .collect();
    if !input.len().is_multiple_of(8) {
        return Ok(Value::str(format!(
            "illegal base32 data at input byte {}",
            input.len() / 8 * 8
        )));
    }
    let mut out = Vec::new();
    for (ci, chunk) in input.chunks(8).enumerate() {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        let data = &chunk[..8 - pad];
        let nbytes = match data.len() {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            2 => 1,
            _ => {
                return Ok(Value::str(format!(
                    "illegal base32 data at input byte {}",
                    ci * 8 + data.len()
                )));
            }
        };
        if pad > 0 && ci + 1 != input.len() / 8 {
            return Ok(Value::str(format!(
                "illegal base32 data at input byte {}",
                ci * 8 + data.len()
            )));
        }
        let mut v: u64 = 0;
        for (k, c) in data.iter().enumerate() {
            let Some(d) = B32.iter().position(|x| x == c) else {
                return Ok(Value::str(format!(
                    "illegal base32 data at input byte {}",
                    ci * 8 + k
                )));
            };
            v |= (d as u64) << (35 - 5 * k);
        }
        for k in 0..nbytes {
            out.push((v >> (32 - 8 * k)) as u8);
        }
    }
    Ok(Value::str(out))
}

fn hexdec(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let s = bytes(&a[0]);
    let mut out = Vec::with_capacity(s.len() / 2);
    let nib = |c: u8| -> Option<u8> { (c as char).to_digit(16).map(|d| d as u8) };
    let mut i = 0;
    while i + 1 < s.len() {
        let (Some(h), Some(l)) = (nib(s[i]), nib(s[i + 1])) else {
            let bad = if nib(s[i]).is_none() { s[i] } else { s[i + 1] };
            return Err(format!("encoding/hex: invalid byte: {}", gofmt_rune(bad)).into());
        };
        out.push(h << 4 | l);
        i += 2;
    }
    if s.len() % 2 == 1 {
        if nib(s[s.len() - 1]).is_none() {
            return Err(
                format!("encoding/hex: invalid byte: {}", gofmt_rune(s[s.len() - 1])).into(),
            );
        }
        return Err("encoding/hex: odd length hex string".into());
    }
    Ok(Value::str(out))
}

fn gofmt_rune(b: u8) -> String {
    format!("U+{:04X} {:?}", b, char::from(b)).replace('"', "'")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha1sum(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(hex(&sha1::Sha1::digest(bytes(&a[0])))))
}

fn sha256sum(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(hex(&sha2::Sha256::digest(bytes(&a[0])))))
}

fn sha512sum(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(hex(&sha2::Sha512::digest(bytes(&a[0])))))
}

fn adler32sum(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (mut x, mut y) = (1u32, 0u32);
    for &c in bytes(&a[0]) {
        x = (x + u32::from(c)) % 65521;
        y = (y + x) % 65521;
    }
    Ok(Value::str(((y << 16) | x).to_string()))
}

fn uuidv4(ctx: &mut Ctx, _: Vec<Value>) -> FnResult {
    let mut b = [0u8; 16];
    ctx.rng.fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    Ok(Value::str(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )))
}

fn rand_bytes(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let n = int(&a[0]);
    if n < 0 {
        return Err("runtime error: makeslice: len out of range".into());
    }
    ctx.check_size(n as usize * 4 / 3 + 4)?;
    let mut b = vec![0u8; n as usize];
    ctx.rng.fill(&mut b)?;
    Ok(Value::str(STANDARD.encode(b)))
}

fn aes_key(password: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    let n = password.len().min(32);
    key[..n].copy_from_slice(&password[..n]);
    key
}

fn encrypt_aes(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    let plain = bytes(&a[1]);
    if plain.is_empty() {
        return Ok(Value::str(""));
    }
    ctx.check_size(plain.len() * 2 + 64)?;
    let key = aes_key(bytes(&a[0]));
    let mut iv = [0u8; 16];
    ctx.rng.fill(&mut iv)?;
    let enc = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into());
    let ct = enc.encrypt_padded_vec_mut::<Pkcs7>(plain);
    let mut out = iv.to_vec();
    out.extend(ct);
    Ok(Value::str(STANDARD.encode(out)))
}

fn decrypt_aes(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
    let c64 = bytes(&a[1]);
    if c64.is_empty() {
        return Ok(Value::str(""));
    }
    let crypt = go_b64_decode(c64).map_err(FnError::Msg)?;
    if crypt.len() < 16 {
        return Err("runtime error: slice bounds out of range".into());
    }
    let (iv, body) = crypt.split_at(16);
    if body.len() % 16 != 0 {
        return Err("crypto/cipher: input not full blocks".into());
    }
    if body.is_empty() {
        return Err("runtime error: index out of range [-1]".into());
    }
    let key = aes_key(bytes(&a[0]));
    let iv: [u8; 16] = iv.try_into().map_err(|_| FnError::Msg("bad iv".into()))?;
    let dec = cbc::Decryptor::<aes::Aes256>::new(&key.into(), &iv.into());
    let plain = dec
        .decrypt_padded_vec_mut::<NoPadding>(body)
        .map_err(|e| FnError::Msg(e.to_string()))?;
    let pad = usize::from(plain[plain.len() - 1]);
    if pad > plain.len() {
        return Err(format!(
            "runtime error: slice bounds out of range [:{}]",
            plain.len() as i64 - pad as i64
        )
        .into());
    }
    Ok(Value::str(&plain[..plain.len() - pad]))
}
