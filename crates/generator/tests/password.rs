//! The Password generator over thousands of draws: every combination of length, digit and
//! symbol counts (set and defaulted), symbol sets, `noUpper`, `allowRepeat` and encoding
//! either yields passwords that meet every constraint or fails with `InvalidSpec` exactly when
//! go-password (upstream's library) refuses the combination.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use eso_api::generators::GeneratorKind;
use eso_generator::{ErrorKind, GeneratorContext, GeneratorObject, builtin};
use eso_provider::{StaticConfigMapReader, StaticSecretReader};
use serde_json::{Value, json};

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const DEFAULT_SYMBOLS: &str = "~!@#$%^&*()_+`-={}|[]\\:\"<>?,./";

async fn generate(
    spec: &Value,
) -> Result<BTreeMap<String, Vec<u8>>, eso_generator::GeneratorError> {
    let (secrets, maps) = (StaticSecretReader::new(), StaticConfigMapReader::new());
    let object = GeneratorObject::namespaced(GeneratorKind::Password, "pw", "test");
    let ctx = GeneratorContext::new("test", object, &secrets, &maps);
    builtin()
        .generate(GeneratorKind::Password, ctx, spec)
        .await
        .map(|g| g.data)
}

fn decode(encoded: &[u8], encoding: &str) -> String {
    let raw = match encoding {
        "raw" => encoded.to_vec(),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
        "base64url" => {
            assert!(
                !encoded.iter().any(|b| *b == b'+' || *b == b'/'),
                "base64url uses - and _"
            );
            base64::engine::general_purpose::URL_SAFE
                .decode(encoded)
                .unwrap()
        }
        "base32" => base32_decode(std::str::from_utf8(encoded).unwrap()),
        "hex" => {
            let s = std::str::from_utf8(encoded).unwrap();
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            );
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        }
        other => panic!("unknown encoding {other}"),
    };
    String::from_utf8(raw).unwrap()
}

/// An independent RFC 4648 base32 decoder (padding required, as Go's StdEncoding writes it).
fn base32_decode(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 8, 0, "padded to 8 characters: {s}");
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').chars() {
        bits = (bits << 5) | alphabet.find(c).unwrap() as u64;
        nbits += 5;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Case {
    length: Option<i64>,
    digits: Option<i64>,
    symbols: Option<i64>,
    symbol_characters: Option<&'static str>,
    no_upper: bool,
    allow_repeat: bool,
    encoding: &'static str,
}

impl Case {
    fn spec(&self, keys: &[String]) -> Value {
        let mut spec = json!({
            "noUpper": self.no_upper,
            "allowRepeat": self.allow_repeat,
            "encoding": self.encoding,
            "secretKeys": keys,
        });
        for (k, v) in [
            ("length", self.length),
            ("digits", self.digits),
            ("symbols", self.symbols),
        ] {
            if let Some(v) = v {
                spec[k] = json!(v);
            }
        }
        if let Some(s) = self.symbol_characters {
            spec["symbolCharacters"] = json!(s);
        }
        spec
    }

    /// (length, digits, symbols) with upstream's defaults: 24, and a quarter of the length.
    fn counts(&self) -> (usize, usize, usize) {
        let length = self.length.filter(|l| *l > 0).unwrap_or(24);
        let digits = self.digits.unwrap_or(length / 4);
        let symbols = self.symbols.unwrap_or(length / 4);
        (length as usize, digits as usize, symbols as usize)
    }

    fn symbol_set(&self) -> BTreeSet<char> {
        self.symbol_characters
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_SYMBOLS)
            .chars()
            .collect()
    }

    fn letter_set(&self) -> BTreeSet<char> {
        let mut set: BTreeSet<char> = LOWER.chars().collect();
        if !self.no_upper {
            set.extend(UPPER.chars());
        }
        set
    }

    /// go-password's refusals (for symbol sets disjoint from letters and digits).
    fn refused(&self) -> bool {
        let (length, digits, symbols) = self.counts();
        if digits + symbols > length {
            return true;
        }
        let letters = length - digits - symbols;
        !self.allow_repeat
            && (letters > self.letter_set().len()
                || digits > 10
                || symbols > self.symbol_set().len())
    }

    fn check(&self, password: &str) {
        let (length, digits, symbols) = self.counts();
        let chars: Vec<char> = password.chars().collect();
        assert_eq!(chars.len(), length, "{self:?}: {password:?}");
        let letter_set = self.letter_set();
        let symbol_set = self.symbol_set();
        let n_digits = chars.iter().filter(|c| c.is_ascii_digit()).count();
        let n_symbols = chars.iter().filter(|c| symbol_set.contains(c)).count();
        let n_letters = chars.iter().filter(|c| letter_set.contains(c)).count();
        assert_eq!(n_digits, digits, "{self:?}: {password:?}");
        assert_eq!(n_symbols, symbols, "{self:?}: {password:?}");
        assert_eq!(
            n_letters,
            length - digits - symbols,
            "{self:?}: {password:?}"
        );
        if self.no_upper {
            assert!(!chars.iter().any(char::is_ascii_uppercase), "{password:?}");
        }
        if !self.allow_repeat {
            let distinct: BTreeSet<&char> = chars.iter().collect();
            assert_eq!(distinct.len(), chars.len(), "repeats in {password:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_constraint_combination_holds_over_thousands_of_draws() {
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let mut generated = 0;
    let mut refused = 0;
    for length in [None, Some(1), Some(8), Some(40), Some(70)] {
        for digits in [None, Some(0), Some(3), Some(11)] {
            for symbols in [None, Some(0), Some(2), Some(5)] {
                for symbol_characters in [None, Some(""), Some("-_$@"), Some("€§")] {
                    for no_upper in [false, true] {
                        for allow_repeat in [false, true] {
                            for encoding in ["raw", "base64", "base64url", "base32", "hex"] {
                                let case = Case {
                                    length,
                                    digits,
                                    symbols,
                                    symbol_characters,
                                    no_upper,
                                    allow_repeat,
                                    encoding,
                                };
                                let result = generate(&case.spec(&keys)).await;
                                if case.refused() {
                                    let err = result.expect_err(&format!("{case:?} must fail"));
                                    assert_eq!(err.kind(), ErrorKind::InvalidSpec, "{case:?}");
                                    assert!(
                                        err.message().starts_with("Password \"test/pw\": spec"),
                                        "{err}"
                                    );
                                    refused += 1;
                                    continue;
                                }
                                let data = result.unwrap_or_else(|e| panic!("{case:?}: {e}"));
                                assert_eq!(data.keys().cloned().collect::<Vec<_>>(), keys);
                                let passwords: BTreeSet<String> = data
                                    .values()
                                    .map(|v| decode(v, encoding))
                                    .inspect(|p| case.check(p))
                                    .collect();
                                generated += data.len();
                                let (length, ..) = case.counts();
                                if length >= 40 {
                                    assert_eq!(
                                        passwords.len(),
                                        keys.len(),
                                        "each key gets its own password"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(generated > 20_000, "only {generated} passwords checked");
    assert!(refused > 100, "only {refused} refusals checked");
}

#[tokio::test(flavor = "multi_thread")]
async fn characters_and_positions_are_drawn_from_the_whole_range() {
    // 3,000 default passwords (24 characters: 12 letters, 6 digits, 6 symbols, no repeats).
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let mut seen: BTreeSet<char> = BTreeSet::new();
    let mut digit_at = [0u32; 24];
    for _ in 0..30 {
        let data = generate(&json!({"secretKeys": keys})).await.unwrap();
        for v in data.values() {
            let p = std::str::from_utf8(v).unwrap();
            seen.extend(p.chars());
            for (i, c) in p.chars().enumerate() {
                if c.is_ascii_digit() {
                    digit_at[i] += 1;
                }
            }
        }
    }
    let all: BTreeSet<char> = LOWER
        .chars()
        .chain(UPPER.chars())
        .chain(DIGITS.chars())
        .chain(DEFAULT_SYMBOLS.chars())
        .collect();
    assert_eq!(
        seen, all,
        "every allowed character shows up, and nothing else"
    );
    // A digit sits at each position with probability 1/4: 750 expected of 3,000; the order is
    // shuffled, not letters first.
    assert!(
        digit_at.iter().all(|&n| (550..950).contains(&n)),
        "{digit_at:?}"
    );
}

#[tokio::test]
async fn the_defaults_are_upstreams() {
    let data = generate(&json!({})).await.unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["password"]);
    let p = std::str::from_utf8(&data["password"]).unwrap();
    assert_eq!(p.chars().count(), 24);
    assert_eq!(p.chars().filter(char::is_ascii_digit).count(), 6);
    assert_eq!(
        p.chars().filter(|c| DEFAULT_SYMBOLS.contains(*c)).count(),
        6
    );
    // Zero or a negative length means the default, as upstream (`if Length > 0`).
    let data = generate(&json!({"length": 0, "digits": 0, "symbols": 0}))
        .await
        .unwrap();
    assert_eq!(data["password"].len(), 24);
}

#[tokio::test]
async fn symbols_that_are_also_letters_never_repeat_and_never_hang() {
    // Symbols drawn from letters and digits: go-password can loop forever here; eso-rs either
    // refuses the spec up front or always succeeds.
    // 8 of the 13 symbols are letters; even when the 20 letters use all 8, 5 symbols remain.
    let spec = json!({"length": 30, "digits": 5, "symbols": 5, "symbolCharacters": "abcdefgh!?@#%", "allowRepeat": false});
    for _ in 0..300 {
        let data = generate(&spec).await.unwrap();
        let p = std::str::from_utf8(&data["password"]).unwrap();
        let distinct: BTreeSet<char> = p.chars().collect();
        assert_eq!(distinct.len(), 30, "{p}");
    }
    // Here the letters and digits may use up 13 of the 15 symbols: refused, whatever the draw.
    for spec in [
        json!({"length": 30, "digits": 5, "symbols": 5, "symbolCharacters": "abcdefgh01234!?"}),
        json!({"length": 52, "digits": 0, "symbols": 2, "symbolCharacters": "ab"}),
    ] {
        let err = generate(&spec).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSpec);
        assert!(err.message().contains("spec.symbolCharacters"), "{err}");
    }
}

#[tokio::test]
async fn invalid_specs_name_the_field() {
    for (spec, expected) in [
        (json!({"length": "long"}), "spec.length is invalid"),
        (json!({"digits": -1}), "spec.digits: must not be negative"),
        (
            json!({"secretKeys": ["a", "a"]}),
            "spec.secretKeys[1]: duplicate key",
        ),
        (json!({"encoding": "rot13"}), "spec.encoding is invalid"),
        (
            json!({"length": 100000}),
            "spec.length: 100000 is more than",
        ),
    ] {
        let err = generate(&spec).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSpec, "{spec}");
        assert!(err.message().contains(expected), "{spec}: {err}");
    }
}
