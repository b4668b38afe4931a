//! Value decoding (`decodingStrategy`), key conversion (`conversionStrategy`), key validation
//! and the NUL-byte check, with upstream's exact rules.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use eso_api::{ConversionStrategy, DecodingStrategy, NullBytePolicy};

use crate::{ProviderError, SecretData};

/// Go's `base64.StdEncoding` / `URLEncoding`: padding required, non-zero trailing bits
/// tolerated (Go's decoder is not strict unless asked).
const GO_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
    .with_decode_allow_trailing_bits(true);
const GO_STD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, GO_CONFIG);
const GO_URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, GO_CONFIG);

/// Upstream's longest allowed key.
pub const MAX_KEY_LENGTH: usize = 253;

fn go_decode(engine: &GeneralPurpose, value: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    // Go's decoder skips carriage returns and newlines anywhere in the input.
    if value.iter().any(|b| *b == b'\r' || *b == b'\n') {
        let cleaned: Vec<u8> = value
            .iter()
            .copied()
            .filter(|b| *b != b'\r' && *b != b'\n')
            .collect();
        engine.decode(cleaned)
    } else {
        engine.decode(value)
    }
}

/// Decodes one value. `key` only names the value in errors.
pub fn decode_value(
    strategy: DecodingStrategy,
    key: &str,
    value: Vec<u8>,
) -> Result<Vec<u8>, ProviderError> {
    match strategy {
        DecodingStrategy::None => Ok(value),
        DecodingStrategy::Base64 => go_decode(&GO_STD, &value).map_err(|e| {
            ProviderError::invalid_request(format!("value of {key:?} is not valid base64"))
                .with_source(e)
        }),
        DecodingStrategy::Base64Url => go_decode(&GO_URL, &value).map_err(|e| {
            ProviderError::invalid_request(format!("value of {key:?} is not valid base64url"))
                .with_source(e)
        }),
        DecodingStrategy::Auto => Ok(go_decode(&GO_STD, &value)
            .or_else(|_| go_decode(&GO_URL, &value))
            .unwrap_or(value)),
    }
}

/// Decodes every value of a map.
pub fn decode_map(
    strategy: DecodingStrategy,
    data: SecretData,
) -> Result<SecretData, ProviderError> {
    data.into_iter()
        .map(|(k, v)| decode_value(strategy, &k, v).map(|v| (k, v)))
        .collect()
}

fn is_valid_key_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '.' || c == '_'
}

/// Converts keys that hold characters Secrets do not allow: `Default` replaces each with `_`,
/// `Unicode` with `_UXXXX_` (lowercase hex code point, at least 4 digits). Two keys that
/// convert to the same key are an error.
pub fn convert_keys(
    strategy: ConversionStrategy,
    data: SecretData,
) -> Result<SecretData, ProviderError> {
    let mut out = SecretData::new();
    for (key, value) in data {
        let mut converted = String::with_capacity(key.len());
        for c in key.chars() {
            if is_valid_key_char(c) {
                converted.push(c);
            } else {
                match strategy {
                    ConversionStrategy::Default => converted.push('_'),
                    ConversionStrategy::Unicode => {
                        converted.push_str(&format!("_U{:04x}_", u32::from(c)));
                    }
                }
            }
        }
        if converted.is_empty() {
            converted = key.clone();
        }
        if out.contains_key(&converted) {
            return Err(ProviderError::invalid_request(format!(
                "key {key:?} converts to {converted:?}, which another key already became"
            )));
        }
        out.insert(converted, value);
    }
    Ok(out)
}

/// Drops empty keys and rejects keys that are too long or hold characters other than
/// letters, digits, `-`, `.` and `_`, as upstream does after rewriting and conversion.
pub fn validate_keys(mut data: SecretData) -> Result<SecretData, ProviderError> {
    data.remove("");
    for key in data.keys() {
        if key.len() > MAX_KEY_LENGTH {
            return Err(ProviderError::invalid_request(format!(
                "key {key:?} is longer than {MAX_KEY_LENGTH} characters"
            )));
        }
        if !key.chars().all(is_valid_key_char) {
            return Err(ProviderError::invalid_request(format!(
                "key {key:?} holds characters a Secret key cannot have (allowed: letters, digits, '-', '.', '_')"
            )));
        }
    }
    Ok(data)
}

/// Applies `nullBytePolicy` to one value.
pub fn check_null_bytes(
    policy: NullBytePolicy,
    key: &str,
    value: &[u8],
) -> Result<(), ProviderError> {
    if policy == NullBytePolicy::Fail && value.contains(&0) {
        return Err(ProviderError::invalid_request(format!(
            "value of {key:?} holds a NUL byte and nullBytePolicy is Fail"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> SecretData {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn auto_decoding_tries_std_then_url_then_keeps_value() {
        let d = |v: &str| decode_value(DecodingStrategy::Auto, "k", v.as_bytes().to_vec()).unwrap();
        assert_eq!(d("aGVsbG8="), b"hello");
        assert_eq!(d("-_-_"), vec![0xfb, 0xff, 0xbf]);
        assert_eq!(d("not base64!"), b"not base64!");
        // Go requires padding, so an unpadded value is kept as it is.
        assert_eq!(d("aGVsbG8"), b"aGVsbG8");
    }

    #[test]
    fn strict_decoding_fails_with_the_key_named() {
        let err = decode_value(DecodingStrategy::Base64, "db-pass", b"%%%".to_vec()).unwrap_err();
        assert!(err.to_string().contains("db-pass"), "{err}");
        assert_eq!(
            decode_value(DecodingStrategy::Base64, "k", b"aGVs\nbG8=".to_vec()).unwrap(),
            b"hello"
        );
        assert_eq!(
            decode_value(DecodingStrategy::Base64Url, "k", b"-_-_".to_vec()).unwrap(),
            vec![0xfb, 0xff, 0xbf]
        );
        assert!(decode_value(DecodingStrategy::Base64Url, "k", b"+/+/".to_vec()).is_err());
    }

    #[test]
    fn default_conversion_replaces_invalid_characters() {
        let out = convert_keys(
            ConversionStrategy::Default,
            map(&[("a/b c", "1"), ("ok.key_-1", "2")]),
        )
        .unwrap();
        assert_eq!(out, map(&[("a_b_c", "1"), ("ok.key_-1", "2")]));
    }

    #[test]
    fn unicode_conversion_writes_code_points() {
        let out = convert_keys(
            ConversionStrategy::Unicode,
            map(&[("a/b", "1"), ("x@", "2")]),
        )
        .unwrap();
        assert_eq!(out, map(&[("a_U002f_b", "1"), ("x_U0040_", "2")]));
    }

    #[test]
    fn conversion_collision_is_an_error() {
        let err = convert_keys(
            ConversionStrategy::Default,
            map(&[("a/b", "1"), ("a_b", "2")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("a_b"));
    }

    #[test]
    fn validation_drops_empty_and_rejects_bad_keys() {
        assert_eq!(
            validate_keys(map(&[("", "x"), ("a", "1")])).unwrap(),
            map(&[("a", "1")])
        );
        assert!(validate_keys(map(&[("a/b", "1")])).is_err());
        assert!(validate_keys(map(&[(&"k".repeat(254), "1")])).is_err());
        assert!(validate_keys(map(&[(&"k".repeat(253), "1")])).is_ok());
    }

    #[test]
    fn null_byte_policy() {
        assert!(check_null_bytes(NullBytePolicy::Fail, "k", b"a\0b").is_err());
        assert!(check_null_bytes(NullBytePolicy::Ignore, "k", b"a\0b").is_ok());
        assert!(check_null_bytes(NullBytePolicy::Fail, "k", b"ab").is_ok());
    }
}
