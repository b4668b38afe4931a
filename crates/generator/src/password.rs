//! `Password`: random passwords with the semantics of sethvargo/go-password as upstream calls
//! it: `length - digits - symbols` letters (lowercase, plus uppercase unless `noUpper`), then
//! `digits` digits, then `symbols` symbols from `symbolCharacters`, in a random order; without
//! `allowRepeat` no character appears twice. Each output key gets its own password, encoded as
//! `encoding` says.

use async_trait::async_trait;
use base64::Engine as _;
use eso_api::generators::{GeneratorKind, PasswordEncoding, PasswordSpec, validate_password};

use crate::random::below;
use crate::{Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject, parse_spec};

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

/// The longest password eso-rs generates (upstream has no limit; a typo like `length: 10000000`
/// should fail rather than put 10 MB into a Secret, which the API server refuses anyway).
pub const MAX_PASSWORD_LENGTH: i64 = 65_536;

/// The `Password` generator. Output: one key per `secretKeys` entry (default `password`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Password;

/// The checked parameters of one password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordParams {
    letters: Vec<char>,
    digits: usize,
    symbols: usize,
    symbol_set: Vec<char>,
    length: usize,
    allow_repeat: bool,
    encoding: PasswordEncoding,
    keys: Vec<String>,
}

impl PasswordParams {
    /// Checks a spec as upstream's generator (and go-password) would, and a little more: the
    /// counts must be possible, so generation always ends.
    pub fn from_spec(spec: &PasswordSpec) -> Result<Self, String> {
        if let Some(e) = validate_password(spec).into_iter().next() {
            return Err(e.to_string());
        }
        let length = spec.length();
        if length > MAX_PASSWORD_LENGTH {
            return Err(format!(
                "spec.length: {length} is more than the {MAX_PASSWORD_LENGTH} characters eso-rs generates"
            ));
        }
        // Checked non-negative and at most `length` above.
        let count = |v: i64| usize::try_from(v).unwrap_or(0);
        let (length, digits, symbols) =
            (count(length), count(spec.digits()), count(spec.symbols()));
        let mut letters: Vec<char> = LOWER.chars().collect();
        if !spec.no_upper() {
            letters.extend(UPPER.chars());
        }
        let mut symbol_set: Vec<char> = Vec::new();
        for c in spec.symbol_characters().chars() {
            if !symbol_set.contains(&c) {
                symbol_set.push(c);
            }
        }
        let allow_repeat = spec.allow_repeat();
        let n_letters = length - digits - symbols;
        if !allow_repeat {
            // go-password's checks, with its wording.
            if n_letters > letters.len() {
                return Err(format!(
                    "spec: number of letters ({n_letters}) exceeds available letters ({}) and repeats are not allowed",
                    letters.len()
                ));
            }
            if digits > DIGITS.len() {
                return Err(format!(
                    "spec.digits: number of digits ({digits}) exceeds available digits (10) and repeats are not allowed"
                ));
            }
            if symbols > symbol_set.len() {
                return Err(format!(
                    "spec.symbols: number of symbols ({symbols}) exceeds available symbols ({}) and repeats are not allowed",
                    symbol_set.len()
                ));
            }
            // Symbols may overlap letters and digits, which are drawn first; in the worst case
            // they used up every overlapping symbol (go-password would then loop forever).
            let overlap_letters = symbol_set.iter().filter(|c| letters.contains(c)).count();
            let overlap_digits = symbol_set.iter().filter(|c| c.is_ascii_digit()).count();
            let usable =
                symbol_set.len() - overlap_letters.min(n_letters) - overlap_digits.min(digits);
            if symbols > usable {
                return Err(format!(
                    "spec.symbolCharacters: {symbols} distinct symbols are needed and only {usable} are left when letters and digits are drawn from the same characters"
                ));
            }
        } else if symbols > 0 && symbol_set.is_empty() {
            return Err("spec.symbolCharacters: no symbol characters to draw from".to_owned());
        }
        Ok(Self {
            letters,
            digits,
            symbols,
            symbol_set,
            length,
            allow_repeat,
            encoding: spec.encoding(),
            keys: spec.secret_keys().into_iter().map(str::to_owned).collect(),
        })
    }

    /// One password, not yet encoded.
    pub fn generate_raw(&self) -> Result<String, GeneratorError> {
        let mut chars: Vec<char> = Vec::with_capacity(self.length);
        let digits: Vec<char> = DIGITS.chars().collect();
        let n_letters = self.length - self.digits - self.symbols;
        for (class, count) in [
            (&self.letters, n_letters),
            (&digits, self.digits),
            (&self.symbol_set, self.symbols),
        ] {
            for _ in 0..count {
                let c = if self.allow_repeat {
                    class[below(class.len())?]
                } else {
                    // Drawing from the unused characters is go-password's "draw again when
                    // already used", without the unbounded loop.
                    let unused: Vec<char> = class
                        .iter()
                        .copied()
                        .filter(|c| !chars.contains(c))
                        .collect();
                    if unused.is_empty() {
                        // from_spec rules this out; kept so a mistake there cannot loop.
                        return Err(GeneratorError::invalid_spec(
                            "not enough distinct characters for a password without repeats",
                        ));
                    }
                    unused[below(unused.len())?]
                };
                chars.push(c);
            }
        }
        // go-password inserts each character at a random position, which makes the order a
        // uniformly random permutation; Fisher-Yates gives the same distribution in O(n).
        for i in (1..chars.len()).rev() {
            let j = below(i + 1)?;
            chars.swap(i, j);
        }
        Ok(chars.into_iter().collect())
    }

    /// One password, encoded.
    pub fn generate(&self) -> Result<Vec<u8>, GeneratorError> {
        Ok(encode(self.generate_raw()?.as_bytes(), self.encoding))
    }
}

/// Encodes as upstream: padded standard base64 and base64url, padded base32, lowercase hex.
fn encode(raw: &[u8], encoding: PasswordEncoding) -> Vec<u8> {
    match encoding {
        PasswordEncoding::Raw => raw.to_vec(),
        PasswordEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .encode(raw)
            .into_bytes(),
        PasswordEncoding::Base64url => base64::engine::general_purpose::URL_SAFE
            .encode(raw)
            .into_bytes(),
        PasswordEncoding::Base32 => base32(raw).into_bytes(),
        PasswordEncoding::Hex => raw
            .iter()
            .flat_map(|b| {
                let hex = b"0123456789abcdef";
                [hex[usize::from(b >> 4)], hex[usize::from(b & 0x0f)]]
            })
            .collect(),
    }
}

/// RFC 4648 base32 with padding (Go's `base32.StdEncoding`).
fn base32(raw: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(raw.len().div_ceil(5) * 8);
    for chunk in raw.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let symbols = match chunk.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for i in 0..8 {
            if i < symbols {
                let idx = (bits >> (35 - i * 5)) & 0x1f;
                out.push(char::from(ALPHABET[usize::try_from(idx).unwrap_or(0)]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn params(
    object: &GeneratorObject<'_>,
    spec: &serde_json::Value,
) -> Result<PasswordParams, GeneratorError> {
    let spec: PasswordSpec = parse_spec(object, spec)?;
    PasswordParams::from_spec(&spec).map_err(|reason| {
        let path = object.spec_path();
        let reason = reason.replacen("spec", &path, 1);
        GeneratorError::invalid_spec(format!("{}: {reason}", object.describe()))
    })
}

#[async_trait]
impl Generator for Password {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::Password
    }

    fn validate(
        &self,
        object: GeneratorObject<'_>,
        spec: &serde_json::Value,
    ) -> Result<(), GeneratorError> {
        params(&object, spec).map(|_| ())
    }

    async fn generate(
        &self,
        ctx: GeneratorContext<'_>,
        spec: &serde_json::Value,
    ) -> Result<Generated, GeneratorError> {
        let params = params(&ctx.object, spec)?;
        let mut data = eso_provider::SecretData::new();
        for key in &params.keys {
            data.insert(key.clone(), params.generate()?);
        }
        Ok(Generated::data(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "MY======"),
            ("fo", "MZXQ===="),
            ("foo", "MZXW6==="),
            ("foob", "MZXW6YQ="),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI======"),
        ] {
            assert_eq!(base32(raw.as_bytes()), encoded, "{raw:?}");
        }
    }

    #[test]
    fn hex_and_base64_variants_match_go() {
        assert_eq!(encode(b"\xff\x00a", PasswordEncoding::Hex), b"ff0061");
        // `?>` encodes to `Pz4=` in standard and `Pz4=` in URL-safe; `~~~` shows the difference.
        assert_eq!(encode(b"~~~", PasswordEncoding::Base64), b"fn5+");
        assert_eq!(encode(b"~~~", PasswordEncoding::Base64url), b"fn5-");
        assert_eq!(
            encode(b"a", PasswordEncoding::Base64url),
            b"YQ==",
            "padded, as Go's URLEncoding"
        );
    }
}
