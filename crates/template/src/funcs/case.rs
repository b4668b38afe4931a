//! sprig's `snakecase`, `kebabcase` and `camelcase`: a port of huandu/xstrings v1.5
//! (`ToSnakeCase`, `ToKebabCase`, `ToPascalCase`).
//!
//! Character classes follow Go's `unicode` package: `IsUpper` is Rust's `is_uppercase`,
//! `IsLetter` is `is_alphabetic`, `IsNumber` is `is_numeric`, `IsSpace` is `is_whitespace`;
//! `IsPunct` is exact for ASCII and covers the common Unicode punctuation blocks.

use super::{Ctx, FnResult, Func, table, text};
use crate::value::Value;

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "snakecase" => (Str) => snakecase;
    "kebabcase" => (Str) => kebabcase;
    "camelcase" => (Str) => camelcase;
};

fn snakecase(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(camel_to_lower(&text(&a[0]), '_')))
}

fn kebabcase(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(camel_to_lower(&text(&a[0]), '-')))
}

fn camelcase(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(to_camel(&text(&a[0]), true)))
}

const RUNE_ERROR: char = '\u{FFFD}';

fn is_connector(r: char) -> bool {
    r == '-' || r == '_' || r.is_whitespace()
}

fn is_upper(r: char) -> bool {
    r.is_uppercase()
}

fn is_alphabet(r: char) -> bool {
    if r.is_ascii() {
        r.is_ascii_alphabetic()
    } else {
        r.is_alphabetic()
    }
}

fn is_number(r: char) -> bool {
    r.is_numeric()
}

/// Go's `unicode.IsPunct` (category P).
fn is_punct(r: char) -> bool {
    if r.is_ascii() {
        return matches!(
            r,
            '!' | '"'
                | '#'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | ','
                | '-'
                | '.'
                | '/'
                | ':'
                | ';'
                | '?'
                | '@'
                | '['
                | '\\'
                | ']'
                | '_'
                | '{'
                | '}'
        );
    }
    matches!(r as u32,
        0xA1 | 0xA7 | 0xAB | 0xB6 | 0xB7 | 0xBB | 0xBF
        | 0x2010..=0x2027 | 0x2030..=0x2043 | 0x2045..=0x2051 | 0x2053..=0x205E
        | 0x3001..=0x3003 | 0x3008..=0x3011 | 0x3014..=0x301F
        | 0xFF01..=0xFF03 | 0xFF05..=0xFF0A | 0xFF0C..=0xFF0F | 0xFF1A | 0xFF1B
        | 0xFF1F | 0xFF20 | 0xFF3B..=0xFF3D | 0xFF3F | 0xFF5B | 0xFF5D)
}

fn lower(r: char) -> char {
    let mut it = r.to_lowercase();
    match (it.next(), it.next()) {
        (Some(c), None) => c,
        _ => r,
    }
}

fn upper(r: char) -> char {
    let mut it = r.to_uppercase();
    match (it.next(), it.next()) {
        (Some(c), None) => c,
        _ => r,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wt {
    Invalid,
    Number,
    Upper,
    Alphabet,
    Connector,
    Punct,
    Other,
}

/// xstrings' `nextValidRune`: the first rune that is not an encoding error, and the bytes
/// consumed up to and including it; `prev` when there is none.
fn next_valid_rune(s: &str, prev: char) -> (char, usize) {
    let mut size = 0;
    for c in s.chars() {
        size += c.len_utf8();
        if c != RUNE_ERROR {
            return (c, size);
        }
    }
    (prev, size)
}

fn next_word(s: &str) -> (Wt, &str, &str) {
    if s.is_empty() {
        return (Wt::Invalid, "", "");
    }
    let (mut r, size) = next_valid_rune(s, RUNE_ERROR);
    let mut offset = size;
    if r == RUNE_ERROR {
        return (Wt::Invalid, &s[..offset], &s[offset..]);
    }
    // Extends the word while `keep` holds for the next valid rune.
    let extend = |offset: &mut usize, r: &mut char, keep: &dyn Fn(char) -> bool| {
        while *offset < s.len() {
            let (nr, sz) = next_valid_rune(&s[*offset..], *r);
            *r = nr;
            if !keep(nr) {
                break;
            }
            *offset += sz;
        }
    };
    let wt = if is_connector(r) {
        extend(&mut offset, &mut r, &is_connector);
        Wt::Connector
    } else if is_punct(r) {
        extend(&mut offset, &mut r, &is_punct);
        Wt::Punct
    } else if is_upper(r) {
        if offset < s.len() {
            let (nr, sz) = next_valid_rune(&s[offset..], r);
            r = nr;
            if is_upper(r) {
                let mut prev_size = sz;
                offset += sz;
                while offset < s.len() {
                    let (nr, sz) = next_valid_rune(&s[offset..], r);
                    r = nr;
                    if !is_upper(r) {
                        break;
                    }
                    prev_size = sz;
                    offset += sz;
                }
                // "HTTPStatus": the "S" starts the next word.
                if offset < s.len() && is_alphabet(r) {
                    offset -= prev_size;
                }
            } else if is_alphabet(r) {
                offset += sz;
                extend(&mut offset, &mut r, &|c| is_alphabet(c) && !is_upper(c));
            }
        }
        Wt::Upper
    } else if is_alphabet(r) {
        extend(&mut offset, &mut r, &|c| is_alphabet(c) && !is_upper(c));
        Wt::Alphabet
    } else if is_number(r) {
        extend(&mut offset, &mut r, &is_number);
        Wt::Number
    } else {
        extend(&mut offset, &mut r, &|c| {
            !(is_connector(c) || is_alphabet(c) || is_number(c) || is_punct(c))
        });
        Wt::Other
    };
    (wt, &s[..offset], &s[offset..])
}

fn to_lower(buf: &mut String, wt: Wt, s: &str, connector: char) {
    if wt != Wt::Upper && wt != Wt::Connector {
        buf.push_str(s);
        return;
    }
    for r in s.chars() {
        if is_connector(r) {
            buf.push(connector);
        } else if is_upper(r) {
            buf.push(lower(r));
        } else {
            buf.push(r);
        }
    }
}

fn camel_to_lower(s: &str, connector: char) -> String {
    let mut buf = String::new();
    if s.is_empty() {
        return buf;
    }
    let (mut wt, mut word, mut remaining) = next_word(s);
    while !remaining.is_empty() {
        if wt != Wt::Connector {
            to_lower(&mut buf, wt, word, connector);
        }
        let prev = wt;
        let last = word;
        (wt, word, remaining) = next_word(remaining);
        match prev {
            Wt::Number => {
                while wt == Wt::Alphabet || wt == Wt::Number {
                    to_lower(&mut buf, wt, word, connector);
                    (wt, word, remaining) = next_word(remaining);
                }
                if wt != Wt::Invalid && wt != Wt::Punct && wt != Wt::Connector {
                    buf.push(connector);
                }
            }
            Wt::Connector => to_lower(&mut buf, prev, last, connector),
            Wt::Punct => {}
            _ => {
                if wt != Wt::Number {
                    if wt != Wt::Connector && wt != Wt::Punct {
                        buf.push(connector);
                    }
                    continue;
                }
                if remaining.is_empty() {
                    continue;
                }
                let last = word;
                (wt, word, remaining) = next_word(remaining);
                // A number is part of the previous word: "Bld4Floor" => "bld4_floor".
                if wt != Wt::Alphabet {
                    to_lower(&mut buf, Wt::Number, last, connector);
                    if wt != Wt::Connector && wt != Wt::Punct {
                        buf.push(connector);
                    }
                    continue;
                }
                // Lower case letters after a number: "HTTP2xx" => "http_2xx".
                buf.push(connector);
                to_lower(&mut buf, Wt::Number, last, connector);
                while wt == Wt::Alphabet || wt == Wt::Number {
                    to_lower(&mut buf, wt, word, connector);
                    (wt, word, remaining) = next_word(remaining);
                }
                if wt != Wt::Invalid && wt != Wt::Connector && wt != Wt::Punct {
                    buf.push(connector);
                }
            }
        }
    }
    to_lower(&mut buf, wt, word, connector);
    buf
}

fn to_camel(s: &str, is_big: bool) -> String {
    let mut buf = String::new();
    if s.is_empty() {
        return buf;
    }
    let mut chars = s.chars().peekable();
    let mut first_upper = false;
    let mut r0 = '\0';
    let mut got = false;
    // Leading connectors stay in the output.
    for c in chars.by_ref() {
        r0 = c;
        got = true;
        if !is_connector(c) {
            first_upper = is_upper(c);
            r0 = if is_big { upper(c) } else { lower(c) };
            break;
        }
        buf.push(c);
    }
    if chars.peek().is_none() {
        // Only one rune after the leading connectors (or only connectors).
        if got {
            buf.push(r0);
        }
        return buf;
    }
    for c in chars {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            buf.push(r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = is_upper(r0);
            r0 = upper(r0);
        } else {
            if first_upper {
                if is_upper(r0) {
                    r0 = lower(r0);
                } else {
                    first_upper = false;
                }
            }
            buf.push(r1);
        }
    }
    if first_upper && !is_big {
        r0 = lower(r0);
    }
    buf.push(r0);
    buf
}
