//! JSON text as Go's `encoding/json` writes a value it decoded into `interface{}`: object keys
//! sorted, numbers as `float64` (shortest form, exponent outside [1e-6, 1e21)), and `<`, `>`,
//! `&`, U+2028 and U+2029 escaped. Upstream hands the JSON of a data bag item to the Secret in
//! this form, so the same bytes (and the same `data-hash`) come out of eso-rs.

use std::fmt::Write as _;

use serde_json::Value;

/// The Go JSON text of a value.
#[must_use]
pub(crate) fn marshal(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_value(out, v);
                }
            }
            out.push('}');
        }
    }
}

/// Go's `floatEncoder` for 64-bit floats.
fn write_number(out: &mut String, f: f64) {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust writes `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-07`, then trims a
        // negative exponent's leading zero: `1.5e-7`.
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => {
                let _ = write!(out, "{mantissa}e+{exp:0>2}");
            }
            _ => out.push_str(&text),
        }
    } else {
        // Rust's shortest round-trip form without exponent, as Go's `'f', -1`.
        let _ = write!(out, "{f}");
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn writes_what_go_writes() {
        // Expected texts are what Go 1.26's json.Marshal prints for these values decoded into
        // interface{}.
        let cases = [
            (
                json!({"b": 1, "a": [true, null]}),
                r#"{"a":[true,null],"b":1}"#,
            ),
            (json!(1.0), "1"),
            (json!(1.5), "1.5"),
            (json!(-0.000001), "-0.000001"),
            (json!(0.0000001), "1e-7"),
            (json!(1e21), "1e+21"),
            (json!(123456789012345678_u64), "123456789012345680"),
            (json!(1e20), "100000000000000000000"),
            (json!(2.5e-10), "2.5e-10"),
            (json!("<a&b>"), r#""\u003ca\u0026b\u003e""#),
            (
                json!("tab\tnl\ncr\r\u{1}\u{2028}"),
                r#""tab\tnl\ncr\r\u0001\u2028""#,
            ),
            (json!("quote\"back\\slash/é"), r#""quote\"back\\slash/é""#),
        ];
        for (value, expected) in cases {
            assert_eq!(marshal(&value), expected, "{value}");
        }
    }
}
