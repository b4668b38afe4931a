//! sprig's string, conversion, math, default, reflection, path, regex, URL and list functions.

use std::sync::Arc;

use super::{
    Ctx, FnError, FnResult, Func, bytes, int, is_empty, list_items, strval, table, text, to_f64,
    to_i64,
};
use crate::gofmt;
use crate::value::{Elem, Value, deep_equal};

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "hello" => () => hello;
    "abbrev" => (Int, Str) => abbrev;
    "abbrevboth" => (Int, Int, Str) => abbrevboth;
    "trunc" => (Int, Str) => trunc;
    "trim" => (Str) => trim;
    "upper" => (Str) => upper;
    "lower" => (Str) => lower;
    "title" => (Str) => title;
    "untitle" => (Str) => untitle;
    "substr" => (Int, Int, Str) => substr;
    "repeat" => (Int, Str) => repeat;
    "trimall" => (Str, Str) => trim_all;
    "trimAll" => (Str, Str) => trim_all;
    "trimSuffix" => (Str, Str) => trim_suffix;
    "trimPrefix" => (Str, Str) => trim_prefix;
    "nospace" => (Str) => nospace;
    "initials" => (Str) => initials;
    "randAlphaNum" => (Int) => rand_alnum;
    "randAlpha" => (Int) => rand_alpha;
    "randAscii" => (Int) => rand_ascii;
    "randNumeric" => (Int) => rand_numeric;
    "swapcase" => (Str) => swapcase;
    "shuffle" => (Str) => shuffle;
    "wrap" => (Int, Str) => wrap;
    "wrapWith" => (Int, Str, Str) => wrap_with;
    "contains" => (Str, Str) => contains;
    "hasPrefix" => (Str, Str) => has_prefix;
    "hasSuffix" => (Str, Str) => has_suffix;
    "quote" => (), ...Any => quote;
    "squote" => (), ...Any => squote;
    "cat" => (), ...Any => cat;
    "indent" => (Int, Str) => indent;
    "nindent" => (Int, Str) => nindent;
    "replace" => (Str, Str, Str) => replace;
    "plural" => (Str, Str, Int) => plural;
    "toString" => (Any) => to_string;
    "atoi" => (Str) => atoi;
    "int64" => (Any) => to_int64;
    "int" => (Any) => to_int;
    "float64" => (Any) => to_float64;
    "seq" => (), ...Int => seq;
    "toDecimal" => (Any) => to_decimal;
    "split" => (Str, Str) => split;
    "splitList" => (Str, Str) => split_list;
    "splitn" => (Str, Int, Str) => splitn;
    "toStrings" => (Any) => to_strings;
    "until" => (Int) => until;
    "untilStep" => (Int, Int, Int) => until_step;
    "add1" => (Any) => add1;
    "add" => (), ...Any => add;
    "sub" => (Any, Any) => sub;
    "div" => (Any, Any) => div;
    "mod" => (Any, Any) => modulo;
    "mul" => (Any), ...Any => mul;
    "randInt" => (Int, Int) => rand_int;
    "add1f" => (Any) => add1f;
    "addf" => (), ...Any => addf;
    "subf" => (Any), ...Any => subf;
    "divf" => (Any), ...Any => divf;
    "mulf" => (Any), ...Any => mulf;
    "biggest" => (Any), ...Any => max;
    "max" => (Any), ...Any => max;
    "min" => (Any), ...Any => min;
    "maxf" => (Any), ...Any => maxf;
    "minf" => (Any), ...Any => minf;
    "ceil" => (Any) => ceil;
    "floor" => (Any) => floor;
    "round" => (Any, Int), ...Float => round;
    "join" => (Str, Any) => join;
    "sortAlpha" => (Any) => sort_alpha;
    "default" => (Any), ...Any => default;
    "empty" => (Any) => empty;
    "coalesce" => (), ...Any => coalesce;
    "all" => (), ...Any => all;
    "any" => (), ...Any => any;
    "compact" => (Any) => compact;
    "mustCompact" => (Any) => compact;
    "ternary" => (Any, Any, Bool) => ternary;
    "fail" => (Str) => fail;
    "typeOf" => (Any) => type_of;
    "typeIs" => (Str, Any) => type_is;
    "typeIsLike" => (Str, Any) => type_is_like;
    "kindOf" => (Any) => kind_of;
    "kindIs" => (Str, Any) => kind_is;
    "deepEqual" => (Any, Any) => deep_eq;
    "base" => (Str) => base;
    "dir" => (Str) => dir;
    "clean" => (Str) => clean;
    "ext" => (Str) => ext;
    "isAbs" => (Str) => is_abs;
    "osBase" => (Str) => base;
    "osDir" => (Str) => dir;
    "osClean" => (Str) => clean;
    "osExt" => (Str) => ext;
    "osIsAbs" => (Str) => is_abs;
    "regexMatch" => (Str, Str) => regex_match;
    "mustRegexMatch" => (Str, Str) => regex_match;
    "regexFindAll" => (Str, Str, Int) => regex_find_all;
    "mustRegexFindAll" => (Str, Str, Int) => regex_find_all;
    "regexFind" => (Str, Str) => regex_find;
    "mustRegexFind" => (Str, Str) => regex_find;
    "regexReplaceAll" => (Str, Str, Str) => regex_replace_all;
    "mustRegexReplaceAll" => (Str, Str, Str) => regex_replace_all;
    "regexReplaceAllLiteral" => (Str, Str, Str) => regex_replace_all_literal;
    "mustRegexReplaceAllLiteral" => (Str, Str, Str) => regex_replace_all_literal;
    "regexSplit" => (Str, Str, Int) => regex_split;
    "mustRegexSplit" => (Str, Str, Int) => regex_split;
    "regexQuoteMeta" => (Str) => regex_quote_meta;
    "list" => (), ...Any => list;
    "tuple" => (), ...Any => list;
    "append" => (Any, Any) => push;
    "push" => (Any, Any) => push;
    "mustAppend" => (Any, Any) => push;
    "mustPush" => (Any, Any) => push;
    "prepend" => (Any, Any) => prepend;
    "mustPrepend" => (Any, Any) => prepend;
    "first" => (Any) => first;
    "mustFirst" => (Any) => first;
    "rest" => (Any) => rest;
    "mustRest" => (Any) => rest;
    "last" => (Any) => last;
    "mustLast" => (Any) => last;
    "initial" => (Any) => initial;
    "mustInitial" => (Any) => initial;
    "reverse" => (Any) => reverse;
    "mustReverse" => (Any) => reverse;
    "uniq" => (Any) => uniq;
    "mustUniq" => (Any) => uniq;
    "without" => (Any), ...Any => without;
    "mustWithout" => (Any), ...Any => without;
    "has" => (Any, Any) => has;
    "mustHas" => (Any, Any) => has;
    "slice" => (Any), ...Any => slice;
    "mustSlice" => (Any), ...Any => slice;
    "concat" => (), ...Any => concat;
    "chunk" => (Int, Any) => chunk;
    "mustChunk" => (Int, Any) => chunk;
    "urlParse" => (Str) => url_parse;
    "urlJoin" => (Dict) => url_join;
};

fn s(v: impl AsRef<[u8]>) -> FnResult {
    Ok(Value::str(v))
}

fn hello(_: &mut Ctx, _: Vec<Value>) -> FnResult {
    s("Hello!")
}

/// goutils.AbbreviateFull.
fn abbreviate_full(st: &[u8], offset: i64, max_width: i64) -> Vec<u8> {
    let len = st.len() as i64;
    if st.is_empty() || max_width < 4 || len <= max_width {
        return st.to_vec();
    }
    let mut offset = offset.min(len);
    if len - offset < max_width - 3 {
        offset = len - (max_width - 3);
    }
    let marker = b"...";
    if offset <= 4 {
        let mut v = st[..(max_width - 3) as usize].to_vec();
        v.extend_from_slice(marker);
        return v;
    }
    if max_width < 7 {
        return st.to_vec();
    }
    if offset + max_width - 3 < len {
        let mut v = marker.to_vec();
        v.extend(abbreviate_full(&st[offset as usize..], 0, max_width - 3));
        return v;
    }
    let mut v = marker.to_vec();
    v.extend_from_slice(&st[(len - (max_width - 3)) as usize..]);
    v
}

fn abbrev(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let w = int(&a[0]);
    if w < 4 {
        return Ok(a[1].clone());
    }
    s(abbreviate_full(bytes(&a[1]), 0, w))
}

fn abbrevboth(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (l, r) = (int(&a[0]), int(&a[1]));
    if r < 4 || (l > 0 && r < 7) {
        return Ok(a[2].clone());
    }
    s(abbreviate_full(bytes(&a[2]), l, r))
}

fn trunc(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let c = int(&a[0]);
    let st = bytes(&a[1]);
    let len = st.len() as i64;
    if c < 0 && len + c > 0 {
        return s(&st[(len + c) as usize..]);
    }
    if c >= 0 && len > c {
        return s(&st[..c as usize]);
    }
    Ok(a[1].clone())
}

fn is_go_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ' | '\u{85}' | '\u{A0}'
    ) || (c as u32 > 0xff && c.is_whitespace())
}

fn trim(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let b = bytes(&a[0]);
    match std::str::from_utf8(b) {
        Ok(t) => s(t.trim_matches(is_go_space)),
        Err(_) => {
            let start = b
                .iter()
                .position(|c| !c.is_ascii_whitespace())
                .unwrap_or(b.len());
            let end = b
                .iter()
                .rposition(|c| !c.is_ascii_whitespace())
                .map_or(start, |p| p + 1);
            s(&b[start..end.max(start)])
        }
    }
}

/// Maps each rune one to one, as Go's `unicode.ToUpper`/`ToLower` do (no `ß` -> `SS`).
fn map_runes(st: &str, f: impl Fn(char) -> char) -> String {
    st.chars().map(f).collect()
}

fn one_upper(c: char) -> char {
    let mut u = c.to_uppercase();
    match (u.next(), u.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

fn one_lower(c: char) -> char {
    let mut u = c.to_lowercase();
    match (u.next(), u.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

fn upper(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let b = bytes(&a[0]);
    if b.is_ascii() {
        return s(b.to_ascii_uppercase());
    }
    s(map_runes(&text(&a[0]), one_upper))
}

fn lower(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let b = bytes(&a[0]);
    if b.is_ascii() {
        return s(b.to_ascii_lowercase());
    }
    s(map_runes(&text(&a[0]), one_lower))
}

/// Go's deprecated `strings.Title` separator rule.
fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

fn title(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut prev = ' ';
    let out: String = text(&a[0])
        .chars()
        .map(|c| {
            let r = if is_separator(prev) { one_upper(c) } else { c };
            prev = c;
            r
        })
        .collect();
    s(out)
}

fn untitle(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut gap = true;
    let out: String = text(&a[0])
        .chars()
        .map(|c| {
            if c.is_whitespace() {
                gap = true;
                c
            } else if gap {
                gap = false;
                one_lower(c)
            } else {
                c
            }
        })
        .collect();
    s(out)
}

fn substr(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (start, end) = (int(&a[0]), int(&a[1]));
    let st = bytes(&a[2]);
    let len = st.len() as i64;
    let oob = |x: i64, y: i64| {
        FnError::Msg(format!(
            "runtime error: slice bounds out of range [{x}:{y}]"
        ))
    };
    if start < 0 {
        if end < 0 || end > len {
            return Err(oob(0, end));
        }
        return s(&st[..end as usize]);
    }
    if end < 0 || end > len {
        if start > len {
            return Err(oob(start, len));
        }
        return s(&st[start as usize..]);
    }
    if start > end {
        return Err(oob(start, end));
    }
    s(&st[start as usize..end as usize])
}

fn repeat(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let n = int(&a[0]);
    if n < 0 {
        return Err("strings: negative Repeat count".into());
    }
    let b = bytes(&a[1]);
    ctx.check_size(b.len().saturating_mul(n as usize))?;
    s(b.repeat(n as usize))
}

/// Go's `strings.Trim(s, cutset)`.
fn trim_all(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let cut: Vec<char> = text(&a[0]).chars().collect();
    let st = text(&a[1]);
    if std::str::from_utf8(bytes(&a[1])).is_err() {
        let set = bytes(&a[0]);
        let b = bytes(&a[1]);
        let start = b.iter().position(|c| !set.contains(c)).unwrap_or(b.len());
        let end = b
            .iter()
            .rposition(|c| !set.contains(c))
            .map_or(start, |p| p + 1);
        return s(&b[start..end.max(start)]);
    }
    s(st.trim_matches(|c| cut.contains(&c)))
}

fn trim_suffix(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let b = bytes(&a[1]);
    s(b.strip_suffix(bytes(&a[0])).unwrap_or(b))
}

fn trim_prefix(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let b = bytes(&a[1]);
    s(b.strip_prefix(bytes(&a[0])).unwrap_or(b))
}

fn nospace(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    s(text(&a[0])
        .chars()
        .filter(|c| !is_go_space(*c))
        .collect::<String>())
}

fn initials(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut gap = true;
    let mut out = String::new();
    for c in text(&a[0]).chars() {
        if c.is_whitespace() {
            gap = true;
        } else if gap {
            out.push(c);
            gap = false;
        }
    }
    s(out)
}

fn rand_from(ctx: &mut Ctx, n: i64, alphabet: &[u8]) -> FnResult {
    if n < 0 {
        return Err(format!("Requested random length {n} is less than 0.").into());
    }
    ctx.check_size(n as usize)?;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let i = ctx.rng.below(alphabet.len() as u64)?;
        out.push(alphabet[i as usize]);
    }
    s(out)
}

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn rand_alnum(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    rand_from(ctx, int(&a[0]), ALNUM)
}

fn rand_alpha(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    rand_from(ctx, int(&a[0]), &ALNUM[..52])
}

fn rand_numeric(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    rand_from(ctx, int(&a[0]), &ALNUM[52..])
}

fn rand_ascii(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let printable: Vec<u8> = (32u8..=126).collect();
    rand_from(ctx, int(&a[0]), &printable)
}

fn swapcase(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    s(map_runes(&text(&a[0]), |c| {
        if c.is_uppercase() {
            one_lower(c)
        } else if c.is_lowercase() {
            one_upper(c)
        } else {
            c
        }
    }))
}

fn shuffle(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut chars: Vec<char> = text(&a[0]).chars().collect();
    for i in (1..chars.len()).rev() {
        let j = ctx.rng.below(i as u64 + 1)? as usize;
        chars.swap(i, j);
    }
    s(chars.into_iter().collect::<String>())
}

/// goutils.WrapCustom on bytes.
fn wrap_custom(st: &[u8], width: i64, nl: &[u8], long_words: bool) -> Vec<u8> {
    if st.is_empty() {
        return Vec::new();
    }
    let nl: &[u8] = if nl.is_empty() { b"\n" } else { nl };
    let w = width.max(1) as usize;
    let len = st.len();
    let mut off = 0usize;
    let mut out = Vec::new();
    while len - off > w {
        if st[off] == b' ' {
            off += 1;
            continue;
        }
        let end = (w + off + 1).min(len);
        let space = st[off..end].iter().rposition(|c| *c == b' ');
        if let Some(sp) = space {
            let at = off + sp;
            out.extend_from_slice(&st[off..at]);
            out.extend_from_slice(nl);
            off = at + 1;
        } else if long_words {
            out.extend_from_slice(&st[off..off + w]);
            out.extend_from_slice(nl);
            off += w;
        } else {
            let end = w + off;
            match st[end..].iter().position(|c| *c == b' ') {
                None => {
                    out.extend_from_slice(&st[off..]);
                    off = len;
                }
                Some(i) => {
                    let at = i + end;
                    out.extend_from_slice(&st[off..at]);
                    out.extend_from_slice(nl);
                    off = at + 1;
                }
            }
        }
    }
    out.extend_from_slice(&st[off..]);
    out
}

fn wrap(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    s(wrap_custom(bytes(&a[1]), int(&a[0]), b"", false))
}

fn wrap_with(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    s(wrap_custom(bytes(&a[2]), int(&a[0]), bytes(&a[1]), true))
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    if n.is_empty() {
        return Some(0);
    }
    h.windows(n.len()).position(|w| w == n)
}

fn contains(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(find(bytes(&a[1]), bytes(&a[0])).is_some()))
}

fn has_prefix(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(bytes(&a[1]).starts_with(bytes(&a[0]))))
}

fn has_suffix(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(bytes(&a[1]).ends_with(bytes(&a[0]))))
}

fn quote(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts: Vec<String> = a
        .iter()
        .filter(|v| !matches!(v, Value::Nil))
        .map(|v| gofmt::quote(&strval(v)))
        .collect();
    s(parts.join(" "))
}

fn squote(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = Vec::new();
    for (i, v) in a.iter().filter(|v| !matches!(v, Value::Nil)).enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.push(b'\'');
        out.extend(v.to_go_string());
        out.push(b'\'');
    }
    s(out)
}

fn cat(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = Vec::new();
    for (i, v) in a.iter().filter(|v| !matches!(v, Value::Nil)).enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend(v.to_go_string());
    }
    s(out)
}

fn indent_bytes(ctx: &Ctx, n: i64, st: &[u8]) -> Result<Vec<u8>, FnError> {
    if n < 0 {
        return Err("strings: negative Repeat count".into());
    }
    let lines = st.iter().filter(|c| **c == b'\n').count() + 1;
    ctx.check_size(st.len().saturating_add(lines.saturating_mul(n as usize)))?;
    let pad = vec![b' '; n as usize];
    let mut out = pad.clone();
    for &c in st {
        out.push(c);
        if c == b'\n' {
            out.extend_from_slice(&pad);
        }
    }
    Ok(out)
}

fn indent(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    s(indent_bytes(ctx, int(&a[0]), bytes(&a[1]))?)
}

fn nindent(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = vec![b'\n'];
    out.extend(indent_bytes(ctx, int(&a[0]), bytes(&a[1]))?);
    s(out)
}

/// Go's `strings.Replace(s, old, new, -1)`, including the empty-`old` rule (insert between
/// every rune).
pub(crate) fn replace_all(st: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if old.is_empty() {
        let t = String::from_utf8_lossy(st);
        out.extend_from_slice(new);
        for c in t.chars() {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            out.extend_from_slice(new);
        }
        return out;
    }
    let mut i = 0;
    while i < st.len() {
        if st[i..].starts_with(old) {
            out.extend_from_slice(new);
            i += old.len();
        } else {
            out.push(st[i]);
            i += 1;
        }
    }
    out
}

fn replace(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (old, new, st) = (bytes(&a[0]), bytes(&a[1]), bytes(&a[2]));
    if new.len() > old.len() {
        let n = if old.is_empty() {
            st.len() + 1
        } else {
            st.windows(old.len()).filter(|w| *w == old).count()
        };
        ctx.check_size(st.len() + n.saturating_mul(new.len()))?;
    }
    s(replace_all(st, old, new))
}

fn plural(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(if int(&a[2]) == 1 {
        a[0].clone()
    } else {
        a[1].clone()
    })
}

fn to_string(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    s(strval(&a[0]))
}

fn atoi(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = text(&a[0]);
    let t2 = t.strip_prefix('+').unwrap_or(&t);
    let ok = !t2.is_empty()
        && t2
            .trim_start_matches('-')
            .bytes()
            .all(|c| c.is_ascii_digit())
        && t2.matches('-').count() <= 1
        && !t2[1..].contains('-');
    Ok(Value::Int(if ok {
        t.parse::<i64>().unwrap_or(0)
    } else {
        0
    }))
}

fn to_int64(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Int64(to_i64(&a[0])))
}

fn to_int(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Int(to_i64(&a[0])))
}

fn to_float64(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(to_f64(&a[0])))
}

fn until_step_vec(ctx: &Ctx, start: i64, stop: i64, step: i64) -> Result<Vec<i64>, FnError> {
    let n: u64 = if stop < start {
        if step >= 0 {
            0
        } else {
            ((start - stop) as u64).div_ceil(step.unsigned_abs())
        }
    } else if step <= 0 {
        0
    } else {
        ((stop - start) as u64).div_ceil(step as u64)
    };
    ctx.check_items(n)?;
    let mut v = Vec::with_capacity(n as usize);
    let mut i = start;
    for _ in 0..n {
        v.push(i);
        i += step;
    }
    Ok(v)
}

fn int_list(v: Vec<i64>) -> Value {
    Value::List(Arc::new(v.into_iter().map(Value::Int).collect()), Elem::Int)
}

fn seq(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let p: Vec<i64> = a.iter().map(int).collect();
    let v = match p.len() {
        1 => {
            let (start, end) = (1, p[0]);
            let inc = if end < start { -1 } else { 1 };
            until_step_vec(ctx, start, end + inc, inc)?
        }
        2 => {
            let (start, end) = (p[0], p[1]);
            let step = if end < start { -1 } else { 1 };
            until_step_vec(ctx, start, end + step, step)?
        }
        3 => {
            let (start, step, end) = (p[0], p[1], p[2]);
            let mut inc = 1;
            if end < start {
                inc = -1;
                if step > 0 {
                    return s("");
                }
            }
            until_step_vec(ctx, start, end + inc, step)?
        }
        _ => return s(""),
    };
    s(v.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
}

fn to_decimal(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = String::from_utf8_lossy(&a[0].to_go_string()).into_owned();
    Ok(Value::Int64(i64::from_str_radix(&t, 8).unwrap_or(0)))
}

fn split_bytes<'a>(st: &'a [u8], sep: &[u8], n: i64) -> Vec<&'a [u8]> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        // Go splits into UTF-8 sequences
        let mut parts = Vec::new();
        let mut i = 0;
        while i < st.len() {
            if n > 0 && parts.len() as i64 == n - 1 {
                parts.push(&st[i..]);
                return parts;
            }
            let w = utf8_width(&st[i..]);
            parts.push(&st[i..i + w]);
            i += w;
        }
        return parts;
    }
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + sep.len() <= st.len() {
        if n > 0 && parts.len() as i64 == n - 1 {
            break;
        }
        if &st[i..i + sep.len()] == sep {
            parts.push(&st[start..i]);
            i += sep.len();
            start = i;
        } else {
            i += 1;
        }
    }
    parts.push(&st[start..]);
    parts
}

fn utf8_width(b: &[u8]) -> usize {
    for n in 1..=b.len().min(4) {
        if std::str::from_utf8(&b[..n]).is_ok() {
            return n;
        }
    }
    1
}

fn split(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = split_bytes(bytes(&a[1]), bytes(&a[0]), -1);
    let m = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("_{i}"), Value::str(p)))
        .collect();
    Ok(Value::Map(crate::value::Map::new(Elem::Str, m)))
}

fn splitn(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = split_bytes(bytes(&a[2]), bytes(&a[0]), int(&a[1]));
    let m = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("_{i}"), Value::str(p)))
        .collect();
    Ok(Value::Map(crate::value::Map::new(Elem::Str, m)))
}

fn split_list(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str_list(split_bytes(bytes(&a[1]), bytes(&a[0]), -1)))
}

/// sprig's `strslice`.
pub(crate) fn strslice(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::List(items, _) => items
            .iter()
            .filter(|x| !matches!(x, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

fn to_strings(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str_list(strslice(&a[0])))
}

fn until(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let n = int(&a[0]);
    let step = if n < 0 { -1 } else { 1 };
    Ok(int_list(until_step_vec(ctx, 0, n, step)?))
}

fn until_step(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(int_list(until_step_vec(
        ctx,
        int(&a[0]),
        int(&a[1]),
        int(&a[2]),
    )?))
}

fn add1(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Int64(to_i64(&a[0]).wrapping_add(1)))
}

fn add(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Int64(
        a.iter().fold(0i64, |acc, v| acc.wrapping_add(to_i64(v))),
    ))
}

fn sub(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Int64(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
}

fn div(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let b = to_i64(&a[1]);
    if b == 0 {
        return Err("runtime error: integer divide by zero".into());
    }
    Ok(Value::Int64(to_i64(&a[0]).wrapping_div(b)))
}

fn modulo(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let b = to_i64(&a[1]);
    if b == 0 {
        return Err("runtime error: integer divide by zero".into());
    }
    Ok(Value::Int64(to_i64(&a[0]).wrapping_rem(b)))
}

fn mul(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Int64(
        a.iter()
            .skip(1)
            .fold(to_i64(&a[0]), |acc, v| acc.wrapping_mul(to_i64(v))),
    ))
}

fn rand_int(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (lo, hi) = (int(&a[0]), int(&a[1]));
    if hi <= lo {
        return Err("invalid argument to Intn".into());
    }
    let r = ctx.rng.below((hi - lo) as u64)?;
    Ok(Value::Int(lo + r as i64))
}

/// A decimal number as shopspring/decimal holds one: `mant * 10^exp`.
#[derive(Clone, Copy)]
struct Dec {
    mant: i128,
    exp: i32,
}

impl Dec {
    /// `decimal.NewFromFloat`: the shortest decimal that reads back as `f`.
    fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() {
            return None;
        }
        let st = format!("{f:e}");
        let (m, e) = st.split_once('e')?;
        let e: i32 = e.parse().ok()?;
        let neg = m.starts_with('-');
        let digits: String = m.chars().filter(char::is_ascii_digit).collect();
        let frac = digits.len() as i32 - 1;
        let mant: i128 = digits.parse().ok()?;
        Some(Dec {
            mant: if neg { -mant } else { mant },
            exp: e - frac,
        })
    }

    fn align(a: Dec, b: Dec) -> Option<(i128, i128, i32)> {
        let exp = a.exp.min(b.exp);
        let sa = a
            .mant
            .checked_mul(10i128.checked_pow((a.exp - exp) as u32)?)?;
        let sb = b
            .mant
            .checked_mul(10i128.checked_pow((b.exp - exp) as u32)?)?;
        Some((sa, sb, exp))
    }

    fn to_f64(self) -> f64 {
        format!("{}e{}", self.mant, self.exp)
            .parse()
            .unwrap_or(f64::NAN)
    }
}

/// sprig's `execDecimalOp`: exact decimal arithmetic, then back to float64. Falls back to
/// float arithmetic when the exact value does not fit 128 bits.
fn decimal_op(a: &Value, rest: &[Value], op: char) -> f64 {
    let mut acc_f = to_f64(a);
    let mut acc = Dec::from_f64(acc_f);
    for v in rest {
        let x = to_f64(v);
        let exact = match (acc, Dec::from_f64(x)) {
            (Some(p), Some(q)) => match op {
                '+' | '-' => Dec::align(p, q).and_then(|(sa, sb, exp)| {
                    let m = if op == '+' {
                        sa.checked_add(sb)?
                    } else {
                        sa.checked_sub(sb)?
                    };
                    Some(Dec { mant: m, exp })
                }),
                '*' => p.mant.checked_mul(q.mant).map(|m| Dec {
                    mant: m,
                    exp: p.exp + q.exp,
                }),
                _ => None,
            },
            _ => None,
        };
        acc_f = match exact {
            Some(d) => d.to_f64(),
            None => match op {
                '+' => acc_f + x,
                '-' => acc_f - x,
                '*' => acc_f * x,
                _ => {
                    // decimal.Div rounds the quotient to 16 decimal places
                    let q = acc_f / x;
                    if q.is_finite() {
                        format!("{q:.16}").parse().unwrap_or(q)
                    } else {
                        q
                    }
                }
            },
        };
        acc = exact.or_else(|| Dec::from_f64(acc_f));
    }
    acc_f
}

fn add1f(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(decimal_op(&a[0], &[Value::Int(1)], '+')))
}

fn addf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(decimal_op(&Value::Float(0.0), &a, '+')))
}

fn subf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(decimal_op(&a[0], &a[1..], '-')))
}

fn divf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    if a[1..].iter().any(|v| to_f64(v) == 0.0) {
        return Err("decimal division by 0".into());
    }
    Ok(Value::Float(decimal_op(&a[0], &a[1..], '/')))
}

fn mulf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(decimal_op(&a[0], &a[1..], '*')))
}

fn max(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Int64(a.iter().map(to_i64).max().unwrap_or(0)))
}

fn min(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Int64(a.iter().map(to_i64).min().unwrap_or(0)))
}

fn maxf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(
        a.iter().map(to_f64).fold(f64::NEG_INFINITY, go_max),
    ))
}

fn minf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(
        a.iter().map(to_f64).fold(f64::INFINITY, go_min),
    ))
}

fn go_max(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else {
        x.max(y)
    }
}

fn go_min(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else {
        x.min(y)
    }
}

fn ceil(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(to_f64(&a[0]).ceil()))
}

fn floor(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Float(to_f64(&a[0]).floor()))
}

fn round(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let round_on = a.get(2).map_or(0.5, to_f64);
    let val = to_f64(&a[0]);
    let pow = 10f64.powf(int(&a[1]) as f64);
    let digit = pow * val;
    let frac = digit.fract();
    let r = if frac >= round_on {
        digit.ceil()
    } else {
        digit.floor()
    };
    Ok(Value::Float(r / pow))
}

fn join(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let parts = strslice(&a[1]);
    s(parts.join(bytes(&a[0])))
}

fn sort_alpha(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    match &a[0] {
        Value::List(..) => {
            let mut v = strslice(&a[0]);
            v.sort();
            Ok(Value::str_list(v))
        }
        other => Ok(Value::str_list([strval(other)])),
    }
}

fn default(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    match a.get(1) {
        Some(g) if !is_empty(g) => Ok(g.clone()),
        _ => Ok(a[0].clone()),
    }
}

fn empty(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(is_empty(&a[0])))
}

fn coalesce(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(a.into_iter().find(|v| !is_empty(v)).unwrap_or(Value::Nil))
}

fn all(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(a.iter().all(|v| !is_empty(v))))
}

fn any(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(a.iter().any(|v| !is_empty(v))))
}

fn compact(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let items = list_items(&a[0], "compact")?;
    Ok(Value::list(
        items.into_iter().filter(|v| !is_empty(v)).collect(),
    ))
}

fn ternary(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(if a[2].truth() {
        a[0].clone()
    } else {
        a[1].clone()
    })
}

fn fail(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Err(FnError::Msg(text(&a[0])))
}

fn type_of(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    s(a[0].type_name())
}

fn type_is(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(bytes(&a[0]) == a[1].type_name().as_bytes()))
}

fn type_is_like(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = a[1].type_name();
    let target = bytes(&a[0]);
    Ok(Value::Bool(
        target == t.as_bytes() || [b"*".as_slice(), target].concat() == t.as_bytes(),
    ))
}

fn kind_of(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    s(a[0].kind_name())
}

fn kind_is(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(bytes(&a[0]) == a[1].kind_name().as_bytes()))
}

fn deep_eq(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(deep_equal(&a[0], &a[1], 0)))
}

/// Go's `path.Clean`.
pub(crate) fn path_clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in p.split(|c| *c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(seg);
                }
            }
            _ => parts.push(seg),
        }
    }
    let mut out = Vec::new();
    if rooted {
        out.push(b'/');
    }
    out.extend(parts.join(&b'/'));
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

fn base(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let p = bytes(&a[0]);
    if p.is_empty() {
        return s(".");
    }
    let mut p = p;
    while p.len() > 1 && p.ends_with(b"/") {
        p = &p[..p.len() - 1];
    }
    if p == b"/" {
        return s("/");
    }
    let p = match p.iter().rposition(|c| *c == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    };
    if p.is_empty() { s("/") } else { s(p) }
}

fn dir(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let p = bytes(&a[0]);
    let d = match p.iter().rposition(|c| *c == b'/') {
        Some(i) => &p[..=i],
        None => b"".as_slice(),
    };
    s(path_clean(d))
}

fn clean(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    s(path_clean(bytes(&a[0])))
}

fn ext(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let p = bytes(&a[0]);
    for i in (0..p.len()).rev() {
        if p[i] == b'/' {
            break;
        }
        if p[i] == b'.' {
            return s(&p[i..]);
        }
    }
    s("")
}

fn is_abs(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(bytes(&a[0]).starts_with(b"/")))
}

fn re(pat: &Value) -> Result<regex::bytes::Regex, FnError> {
    regex::bytes::RegexBuilder::new(&text(pat))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| FnError::Msg(format!("error parsing regexp: {e}")))
}

fn regex_match(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(re(&a[0])?.is_match(bytes(&a[1]))))
}

fn regex_find_all(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let r = re(&a[0])?;
    let n = int(&a[2]);
    let it = r.find_iter(bytes(&a[1])).map(|m| m.as_bytes().to_vec());
    let v: Vec<Vec<u8>> = if n < 0 {
        it.collect()
    } else {
        it.take(n as usize).collect()
    };
    Ok(Value::str_list(v))
}

fn regex_find(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let r = re(&a[0])?;
    s(r.find(bytes(&a[1]))
        .map(|m| m.as_bytes().to_vec())
        .unwrap_or_default())
}

fn regex_replace_all(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let r = re(&a[0])?;
    s(r.replace_all(bytes(&a[1]), bytes(&a[2])))
}

fn regex_replace_all_literal(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let r = re(&a[0])?;
    s(r.replace_all(bytes(&a[1]), regex::bytes::NoExpand(bytes(&a[2]))))
}

fn regex_split(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let r = re(&a[0])?;
    let n = int(&a[2]);
    let st = bytes(&a[1]);
    if n == 0 {
        return Ok(Value::str_list(Vec::<Vec<u8>>::new()));
    }
    if a[0].as_bytes().is_some_and(<[u8]>::is_empty) || st.is_empty() {
        // Go: an empty expression splits into characters; an empty input gives [""]
        if st.is_empty() {
            return Ok(Value::str_list([b"".to_vec()]));
        }
    }
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut beg = 0;
    for m in r.find_iter(st) {
        if n > 0 && parts.len() as i64 == n - 1 {
            break;
        }
        let end = m.start();
        if m.end() == 0 {
            continue;
        }
        parts.push(st[beg..end].to_vec());
        beg = m.end();
    }
    parts.push(st[beg..].to_vec());
    Ok(Value::str_list(parts))
}

fn regex_quote_meta(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = Vec::new();
    for &c in bytes(&a[0]) {
        if b"\\.+*?()|[]{}^$".contains(&c) {
            out.push(b'\\');
        }
        out.push(c);
    }
    s(out)
}

fn list(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::list(a))
}

fn push(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut items = list_items(&a[0], "push")?;
    items.push(a[1].clone());
    Ok(Value::list(items))
}

fn prepend(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut items = list_items(&a[0], "prepend")?;
    items.insert(0, a[1].clone());
    Ok(Value::list(items))
}

fn first(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(list_items(&a[0], "find first")?
        .into_iter()
        .next()
        .unwrap_or(Value::Nil))
}

fn last(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(list_items(&a[0], "find last")?.pop().unwrap_or(Value::Nil))
}

fn rest(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let items = list_items(&a[0], "find rest")?;
    if items.is_empty() {
        return Ok(Value::Nil);
    }
    Ok(Value::list(items[1..].to_vec()))
}

fn initial(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let items = list_items(&a[0], "find initial")?;
    if items.is_empty() {
        return Ok(Value::Nil);
    }
    Ok(Value::list(items[..items.len() - 1].to_vec()))
}

fn reverse(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut items = list_items(&a[0], "find reverse")?;
    items.reverse();
    Ok(Value::list(items))
}

fn uniq(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let items = list_items(&a[0], "find uniq")?;
    let mut out: Vec<Value> = Vec::new();
    for it in items {
        if !out.iter().any(|o| deep_equal(o, &it, 0)) {
            out.push(it);
        }
    }
    Ok(Value::list(out))
}

fn without(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let items = list_items(&a[0], "find without")?;
    let omit = &a[1..];
    Ok(Value::list(
        items
            .into_iter()
            .filter(|it| !omit.iter().any(|o| deep_equal(o, it, 0)))
            .collect(),
    ))
}

fn has(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    match &a[1] {
        Value::Nil => Ok(Value::Bool(false)),
        hay => {
            let items = list_items(hay, "find has")?;
            Ok(Value::Bool(items.iter().any(|it| deep_equal(it, &a[0], 0))))
        }
    }
}

fn slice(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let items = list_items(&a[0], "slice")?;
    let len = items.len() as i64;
    let (lo, hi) = match a.len() {
        1 => (0, len),
        2 => (to_i64(&a[1]), len),
        _ => (to_i64(&a[1]), to_i64(&a[2])),
    };
    if lo < 0 || hi > len || lo > hi {
        return Err(format!(
            "runtime error: slice bounds out of range [{lo}:{hi}] with capacity {len}"
        )
        .into());
    }
    Ok(Value::list(items[lo as usize..hi as usize].to_vec()))
}

fn concat(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = Vec::new();
    for l in &a {
        out.extend(list_items(l, "concat")?);
    }
    Ok(Value::list(out))
}

fn chunk(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let size = int(&a[0]);
    let items = list_items(&a[1], "chunk")?;
    if size <= 0 {
        return Err("runtime error: integer divide by zero".into());
    }
    Ok(Value::list(
        items
            .chunks(size as usize)
            .map(|c| Value::list(c.to_vec()))
            .collect(),
    ))
}

fn pct_decode(b: &[u8], plus_space: bool) -> Result<Vec<u8>, FnError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(v) = h else {
                    let end = (i + 3).min(b.len());
                    return Err(format!(
                        "invalid URL escape {:?}",
                        String::from_utf8_lossy(&b[i..end])
                    )
                    .into());
                };
                out.push(v);
                i += 3;
            }
            b'+' if plus_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn url_parse(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let raw = bytes(&a[0]);
    let (rest, fragment) = match raw.iter().position(|c| *c == b'#') {
        Some(i) => (&raw[..i], pct_decode(&raw[i + 1..], false)?),
        None => (raw, Vec::new()),
    };
    let mut scheme = Vec::new();
    let mut rest = rest;
    if let Some(i) = rest.iter().position(|c| *c == b':')
        && i > 0
        && rest[0].is_ascii_alphabetic()
        && rest[..i]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
    {
        scheme = rest[..i].to_ascii_lowercase();
        rest = &rest[i + 1..];
    }
    let (rest, query) = match rest.iter().position(|c| *c == b'?') {
        Some(i) => (&rest[..i], rest[i + 1..].to_vec()),
        None => (rest, Vec::new()),
    };
    let mut host = Vec::new();
    let mut userinfo = Vec::new();
    let mut opaque = Vec::new();
    let path;
    if let Some(after) = rest.strip_prefix(b"//") {
        let end = after.iter().position(|c| *c == b'/').unwrap_or(after.len());
        let auth = &after[..end];
        match auth.iter().rposition(|c| *c == b'@') {
            Some(i) => {
                userinfo = auth[..i].to_vec();
                host = auth[i + 1..].to_vec();
            }
            None => host = auth.to_vec(),
        }
        path = pct_decode(&after[end..], false)?;
    } else if !scheme.is_empty() && !rest.starts_with(b"/") {
        opaque = rest.to_vec();
        path = Vec::new();
    } else {
        path = pct_decode(rest, false)?;
    }
    let hostname = if host.starts_with(b"[") {
        host.iter()
            .position(|c| *c == b']')
            .map_or(host.clone(), |i| host[1..i].to_vec())
    } else {
        match host.iter().rposition(|c| *c == b':') {
            Some(i) => host[..i].to_vec(),
            None => host.clone(),
        }
    };
    let mut m = std::collections::BTreeMap::new();
    m.insert("scheme".to_string(), Value::str(scheme));
    m.insert("host".to_string(), Value::str(host));
    m.insert("hostname".to_string(), Value::str(hostname));
    m.insert("path".to_string(), Value::str(path));
    m.insert("query".to_string(), Value::str(query));
    m.insert("opaque".to_string(), Value::str(opaque));
    m.insert("fragment".to_string(), Value::str(fragment));
    m.insert("userinfo".to_string(), Value::str(userinfo));
    Ok(Value::dict(m))
}

fn escape_path(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &c in p {
        if c.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@!*'()".contains(&c) {
            out.push(c);
        } else {
            out.extend_from_slice(format!("%{c:02X}").as_bytes());
        }
    }
    out
}

fn url_join(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let Value::Map(m) = &a[0] else { return s("") };
    let get = |k: &str| -> Vec<u8> {
        match m.get(k) {
            Some(Value::Str(v)) => v.to_vec(),
            Some(Value::Nil) | None => Vec::new(),
            Some(other) => strval(&other),
        }
    };
    let mut out = Vec::new();
    let scheme = get("scheme");
    if !scheme.is_empty() {
        out.extend(&scheme);
        out.push(b':');
    }
    let opaque = get("opaque");
    if !opaque.is_empty() {
        out.extend(opaque);
    } else {
        let host = get("host");
        let user = get("userinfo");
        let path = get("path");
        if !scheme.is_empty() || !host.is_empty() || !user.is_empty() {
            if !host.is_empty() || !path.is_empty() || !user.is_empty() {
                out.extend_from_slice(b"//");
            }
            if !user.is_empty() {
                out.extend(user);
                out.push(b'@');
            }
            out.extend(host);
        }
        let ep = escape_path(&path);
        if !ep.is_empty() && ep[0] != b'/' && !out.is_empty() {
            out.push(b'/');
        }
        out.extend(ep);
    }
    let q = get("query");
    if !q.is_empty() {
        out.push(b'?');
        out.extend(q);
    }
    let f = get("fragment");
    if !f.is_empty() {
        out.push(b'#');
        out.extend(escape_path(&f));
    }
    s(out)
}
