//! Dicts, deep copies, JSON and YAML.

use std::collections::BTreeMap;

use super::{Ctx, FnError, FnResult, Func, bytes, strval, table, text};
use crate::gofmt;
use crate::value::{Elem, Map, Value};

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "dict" => (), ...Any => dict;
    "get" => (Dict, Str) => get;
    "set" => (Dict, Str, Any) => set;
    "unset" => (Dict, Str) => unset;
    "hasKey" => (Dict, Str) => has_key;
    "pluck" => (Str), ...Dict => pluck;
    "keys" => (), ...Dict => keys;
    "pick" => (Dict), ...Str => pick;
    "omit" => (Dict), ...Str => omit;
    "merge" => (Dict), ...Dict => merge;
    "mustMerge" => (Dict), ...Dict => merge;
    "mergeOverwrite" => (Dict), ...Dict => merge_overwrite;
    "mustMergeOverwrite" => (Dict), ...Dict => merge_overwrite;
    "values" => (Dict) => values;
    "dig" => (), ...Any => dig;
    "deepCopy" => (Any) => deep_copy;
    "mustDeepCopy" => (Any) => must_deep_copy;
    "fromJson" => (Str) => from_json;
    "mustFromJson" => (Str) => must_from_json;
    "toJson" => (Any) => to_json;
    "mustToJson" => (Any) => must_to_json;
    "toPrettyJson" => (Any) => to_pretty_json;
    "mustToPrettyJson" => (Any) => must_to_pretty_json;
    "toRawJson" => (Any) => to_raw_json;
    "mustToRawJson" => (Any) => must_to_raw_json;
    "toYaml" => (Any) => to_yaml;
    "fromYaml" => (Str) => from_yaml;
};

fn map_of(v: &Value) -> Option<&Map> {
    match v {
        Value::Map(m) => Some(m),
        _ => None,
    }
}

fn dict(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut m = BTreeMap::new();
    let mut i = 0;
    while i < a.len() {
        let k = String::from_utf8_lossy(&strval(&a[i])).into_owned();
        let v = a.get(i + 1).cloned().unwrap_or_else(|| Value::str(""));
        m.insert(k, v);
        i += 2;
    }
    Ok(Value::dict(m))
}

fn get(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(map_of(&a[0])
        .and_then(|m| m.get(&text(&a[1])))
        .unwrap_or_else(|| Value::str("")))
}

fn new_map_if_nil(v: &Value) -> Map {
    match v {
        Value::Map(m) => m.clone(),
        _ => Map::new(Elem::Any, BTreeMap::new()),
    }
}

fn set(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let Some(m) = map_of(&a[0]) else {
        return Err("assignment to entry in nil map".into());
    };
    m.lock().insert(text(&a[1]), a[2].clone());
    Ok(a[0].clone())
}

fn unset(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    if let Some(m) = map_of(&a[0]) {
        m.lock().remove(&text(&a[1]));
    }
    Ok(a[0].clone())
}

fn has_key(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(
        map_of(&a[0]).is_some_and(|m| m.get(&text(&a[1])).is_some()),
    ))
}

fn pluck(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let k = text(&a[0]);
    Ok(Value::list(
        a[1..]
            .iter()
            .filter_map(|d| map_of(d).and_then(|m| m.get(&k)))
            .collect(),
    ))
}

fn keys(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut out = Vec::new();
    for d in &a {
        if let Some(m) = map_of(d) {
            out.extend(m.entries().into_iter().map(|(k, _)| k));
        }
    }
    Ok(Value::str_list(out))
}

fn pick(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let src = map_of(&a[0]).map(Map::entries).unwrap_or_default();
    let want: Vec<String> = a[1..].iter().map(text).collect();
    Ok(Value::dict(
        src.into_iter().filter(|(k, _)| want.contains(k)).collect(),
    ))
}

fn omit(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let src = map_of(&a[0]).map(Map::entries).unwrap_or_default();
    let drop: Vec<String> = a[1..].iter().map(text).collect();
    Ok(Value::dict(
        src.into_iter().filter(|(k, _)| !drop.contains(k)).collect(),
    ))
}

/// mergo's merge of `src` into `dst`, in place: nested maps merge recursively; other values
/// are taken from `src` when `overwrite` is set or `dst` lacks the key or holds an empty value.
fn merge_into(dst: &Map, src: &Map, overwrite: bool, depth: usize, budget: &mut usize) {
    if depth > 64 || dst.same(src) || *budget == 0 {
        return;
    }
    *budget -= 1;
    for (k, sv) in src.entries() {
        let dv = dst.get(&k);
        if let (Some(Value::Map(dm)), Value::Map(sm)) = (&dv, &sv) {
            merge_into(dm, sm, overwrite, depth + 1, budget);
            continue;
        }
        if matches!(sv, Value::Nil) && !overwrite {
            continue;
        }
        let dst_empty = dv.as_ref().is_none_or(|d| !d.truth());
        if overwrite || dst_empty {
            dst.lock().insert(k, sv);
        }
    }
}

fn merge(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let dst = new_map_if_nil(&a[0]);
    for s in &a[1..] {
        if let Some(sm) = map_of(s) {
            merge_into(&dst, sm, false, 0, &mut 100_000);
        }
    }
    Ok(Value::Map(dst))
}

fn merge_overwrite(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let dst = new_map_if_nil(&a[0]);
    for s in &a[1..] {
        if let Some(sm) = map_of(s) {
            merge_into(&dst, sm, true, 0, &mut 100_000);
        }
    }
    Ok(Value::Map(dst))
}

fn values(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::list(
        map_of(&a[0])
            .map(Map::entries)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, v)| v)
            .collect(),
    ))
}

fn dig(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    if a.len() < 3 {
        return Err("dig needs at least three arguments".into());
    }
    let Some(Value::Map(mut cur)) = a.last().cloned() else {
        return Err(format!(
            "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
            a[a.len() - 1].type_name()
        )
        .into());
    };
    let def = a[a.len() - 2].clone();
    let ks = &a[..a.len() - 2];
    for (i, k) in ks.iter().enumerate() {
        let Value::Str(k) = k else {
            return Err(format!(
                "interface conversion: interface {{}} is {}, not string",
                k.type_name()
            )
            .into());
        };
        let Some(step) = cur.get(&String::from_utf8_lossy(k)) else {
            return Ok(def);
        };
        if i + 1 == ks.len() {
            return Ok(step);
        }
        match step {
            Value::Map(m) => cur = m,
            other => {
                return Err(format!(
                    "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                    other.type_name()
                )
                .into());
            }
        }
    }
    Ok(def)
}

fn copy_value(v: &Value, depth: usize, budget: &mut usize) -> Result<Value, FnError> {
    if depth > 100 || *budget == 0 {
        return Err(FnError::Limit("value too deep or too large to copy".into()));
    }
    *budget -= 1;
    Ok(match v {
        Value::List(items, e) => Value::List(
            std::sync::Arc::new(
                items
                    .iter()
                    .map(|x| copy_value(x, depth + 1, budget))
                    .collect::<Result<_, _>>()?,
            ),
            *e,
        ),
        Value::Map(m) => {
            let mut out = BTreeMap::new();
            for (k, x) in m.entries() {
                out.insert(k, copy_value(&x, depth + 1, budget)?);
            }
            Value::Map(Map::new(m.elem, out))
        }
        other => other.clone(),
    })
}

fn deep_copy(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    copy_value(&a[0], 0, &mut 1_000_000)
}

fn must_deep_copy(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    if matches!(a[0], Value::Nil) {
        return Err("copy: cannot copy nil".into());
    }
    copy_value(&a[0], 0, &mut 1_000_000)
}

// ---- JSON ----

fn parse_json(b: &[u8]) -> Result<Value, String> {
    let v: serde_json::Value = serde_json::from_slice(b).map_err(|e| e.to_string())?;
    Ok(Value::from_json(&v))
}

fn from_json(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(parse_json(bytes(&a[0])).unwrap_or(Value::Nil))
}

fn must_from_json(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    parse_json(bytes(&a[0])).map_err(FnError::Msg)
}

/// Go's `encoding/json` float text.
pub(crate) fn json_float(f: f64) -> Result<String, String> {
    if !f.is_finite() {
        return Err(format!(
            "json: unsupported value: {}",
            gofmt::format_float(f, 'g', None)
        ));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let mut s = gofmt::format_float(f, 'e', None);
        // e-07 -> e-7
        if let Some(p) = s.find("e-0") {
            s.remove(p + 2);
        }
        return Ok(s);
    }
    Ok(gofmt::format_float(f, 'f', None))
}

fn json_string(out: &mut Vec<u8>, s: &[u8], escape_html: bool) {
    out.push(b'"');
    let t = String::from_utf8_lossy(s);
    for c in t.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' if escape_html => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Go's `json.Marshal` (`indent` Some for `MarshalIndent(v, "", indent)`).
pub(crate) fn to_json_bytes(
    v: &Value,
    escape_html: bool,
    indent: Option<&str>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    write_json(&mut out, v, escape_html, indent, 0)?;
    Ok(out)
}

fn newline(out: &mut Vec<u8>, indent: Option<&str>, level: usize) {
    if let Some(ind) = indent {
        out.push(b'\n');
        for _ in 0..level {
            out.extend_from_slice(ind.as_bytes());
        }
    }
}

fn write_json(
    out: &mut Vec<u8>,
    v: &Value,
    esc: bool,
    indent: Option<&str>,
    level: usize,
) -> Result<(), String> {
    if level > 1000 || out.len() > 64 << 20 {
        return Err("json: unsupported value: encountered a cycle".into());
    }
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) | Value::Int64(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(json_float(*f)?.as_bytes()),
        Value::Str(s) => json_string(out, s, esc),
        // time.Time's MarshalJSON: RFC 3339 with nanoseconds.
        Value::Time(t) => json_string(
            out,
            t.format("2006-01-02T15:04:05.999999999Z07:00").as_bytes(),
            esc,
        ),
        // Version's MarshalJSON: its canonical string.
        Value::Semver(v) => json_string(out, v.canonical().as_bytes(), esc),
        Value::Cert { cert, key } => {
            let m = Value::dict(
                [
                    ("Cert".to_string(), Value::Str(cert.clone())),
                    ("Key".to_string(), Value::Str(key.clone())),
                ]
                .into_iter()
                .collect(),
            );
            write_json(out, &m, esc, indent, level)?;
        }
        Value::List(items, _) => {
            out.push(b'[');
            if items.is_empty() {
                out.push(b']');
                return Ok(());
            }
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, indent, level + 1);
                write_json(out, it, esc, indent, level + 1)?;
            }
            newline(out, indent, level);
            out.push(b']');
        }
        Value::Map(m) => {
            let entries = m.entries();
            out.push(b'{');
            if entries.is_empty() {
                out.push(b'}');
                return Ok(());
            }
            for (i, (k, it)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, indent, level + 1);
                json_string(out, k.as_bytes(), esc);
                out.push(b':');
                if indent.is_some() {
                    out.push(b' ');
                }
                write_json(out, it, esc, indent, level + 1)?;
            }
            newline(out, indent, level);
            out.push(b'}');
        }
    }
    Ok(())
}

fn to_json(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(
        to_json_bytes(&a[0], true, None).unwrap_or_default(),
    ))
}

fn must_to_json(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(to_json_bytes(&a[0], true, None)?))
}

fn to_pretty_json(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(
        to_json_bytes(&a[0], true, Some("  ")).unwrap_or_default(),
    ))
}

fn must_to_pretty_json(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(to_json_bytes(&a[0], true, Some("  "))?))
}

fn to_raw_json(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(
        to_json_bytes(&a[0], false, None).unwrap_or_default(),
    ))
}

fn must_to_raw_json(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(to_json_bytes(&a[0], false, None)?))
}

// ---- YAML ----

fn from_yaml(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = text(&a[0]);
    let parsed: Result<serde_json::Value, String> = if t.trim().is_empty() {
        Ok(serde_json::Value::Null)
    } else {
        serde_saphyr::from_str(&t).map_err(|e| e.to_string())
    };
    let mut m = BTreeMap::new();
    match parsed {
        Ok(serde_json::Value::Object(o)) => {
            for (k, v) in o {
                m.insert(k, Value::from_json(&v));
            }
        }
        Ok(serde_json::Value::Null) => {}
        Ok(other) => {
            let kind = match other {
                serde_json::Value::Array(_) => "array",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                _ => "bool",
            };
            m.insert("Error".into(), Value::str(format!("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}")));
        }
        Err(e) => {
            m.insert(
                "Error".into(),
                Value::str(format!("error converting YAML to JSON: {e}")),
            );
        }
    }
    Ok(Value::dict(m))
}

/// A node after the JSON round trip `sigs.k8s.io/yaml` makes.
enum Y {
    Null,
    Bool(bool),
    /// A number with its JSON text (ints stay ints, floats print with `%g`).
    Num(String),
    Str(String),
    Seq(Vec<Y>),
    Map(Vec<(String, Y)>),
}

fn to_y(v: &Value, depth: usize, budget: &mut usize) -> Result<Y, String> {
    if depth > 200 || *budget == 0 {
        return Err("too deep".into());
    }
    *budget -= 1;
    Ok(match v {
        Value::Nil => Y::Null,
        Value::Bool(b) => Y::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Y::Num(i.to_string()),
        Value::Float(f) => {
            let j = json_float(*f)?;
            // YAML reads the JSON text back: integral texts become ints, others floats.
            if j.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
                Y::Num(j)
            } else {
                Y::Num(gofmt::format_float(*f, 'g', None))
            }
        }
        Value::Str(s) => Y::Str(String::from_utf8_lossy(s).into_owned()),
        Value::Time(t) => Y::Str(t.format("2006-01-02T15:04:05.999999999Z07:00")),
        Value::Semver(v) => Y::Str(v.canonical()),
        Value::Cert { cert, key } => Y::Map(vec![
            (
                "Cert".into(),
                Y::Str(String::from_utf8_lossy(cert).into_owned()),
            ),
            (
                "Key".into(),
                Y::Str(String::from_utf8_lossy(key).into_owned()),
            ),
        ]),
        Value::List(items, _) => Y::Seq(
            items
                .iter()
                .map(|x| to_y(x, depth + 1, budget))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => Y::Map(
            m.entries()
                .into_iter()
                .map(|(k, x)| Ok((k, to_y(&x, depth + 1, budget)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// Whether YAML 1.1 (go-yaml v2) would read `s` as something other than a string.
fn resolves_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y",
        "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
        ".nan", ".NaN", ".NAN", "<<",
    ];
    if SPECIAL.contains(&s) {
        return true;
    }
    let t = s.replace('_', "");
    let body = t.strip_prefix(['+', '-']).unwrap_or(&t);
    if body.is_empty() {
        return false;
    }
    if let Some(h) = body.strip_prefix("0x") {
        return !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(b) = body.strip_prefix("0b") {
        return !b.is_empty() && b.bytes().all(|c| c == b'0' || c == b'1');
    }
    if body.bytes().all(|c| c.is_ascii_digit()) {
        return true;
    }
    // floats: digits with one dot and an optional exponent, or sexagesimal
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mant_ok = mant.bytes().filter(|c| *c == b'.').count() <= 1
        && mant.bytes().any(|c| c.is_ascii_digit())
        && mant.bytes().all(|c| c.is_ascii_digit() || c == b'.');
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    if mant_ok && exp_ok && (mant.contains('.') || exp.is_some()) {
        return true;
    }
    // base 60: 1:20 etc.
    body.contains(':')
        && body
            .split(':')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
}

/// Whether the libyaml emitter allows `s` as a plain scalar in block context.
fn plain_allowed(s: &str) -> bool {
    if s.is_empty()
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.starts_with("---")
        || s.starts_with("...")
    {
        return false;
    }
    let b = s.as_bytes();
    let first = b[0];
    if b"#,[]{}&*!|>'\"%@`".contains(&first) {
        return false;
    }
    if b"-?:".contains(&first) && (b.len() == 1 || b[1] == b' ') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    s.chars()
        .all(|c| c == ' ' || (!c.is_control() && c != '\u{FEFF}'))
}

fn yaml_scalar_str(s: &str) -> String {
    if resolves_non_string(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return double_quoted(s);
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn literal_block(s: &str, indent: usize) -> String {
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if s.ends_with("\n\n") || s == "\n" {
        "+"
    } else {
        ""
    };
    let ind_ind = if s.starts_with(' ') || s.starts_with('\n') {
        "2"
    } else {
        ""
    };
    let mut out = format!("|{ind_ind}{chomp}\n");
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn emit_scalar(y: &Y, indent: usize) -> Option<String> {
    Some(match y {
        Y::Null => "null".into(),
        Y::Bool(b) => b.to_string(),
        Y::Num(n) => n.clone(),
        Y::Str(s) if s.contains('\n') => return Some(literal_block(s, indent)),
        Y::Str(s) => yaml_scalar_str(s),
        Y::Seq(v) if v.is_empty() => "[]".into(),
        Y::Map(m) if m.is_empty() => "{}".into(),
        _ => return None,
    })
}

fn emit(out: &mut String, y: &Y, indent: usize) {
    match y {
        Y::Map(entries) if !entries.is_empty() => {
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str(&yaml_scalar_str(k));
                out.push(':');
                match emit_scalar(v, indent + 2) {
                    Some(sc) if sc.starts_with('|') => {
                        out.push(' ');
                        out.push_str(&sc);
                    }
                    Some(sc) => {
                        out.push(' ');
                        out.push_str(&sc);
                        out.push('\n');
                    }
                    None => {
                        out.push('\n');
                        match v {
                            Y::Seq(_) => {
                                out.push_str(&" ".repeat(indent));
                                emit(out, v, indent);
                            }
                            _ => {
                                out.push_str(&" ".repeat(indent + 2));
                                emit(out, v, indent + 2);
                            }
                        }
                    }
                }
            }
        }
        Y::Seq(items) if !items.is_empty() => {
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str("- ");
                match emit_scalar(it, indent + 2) {
                    Some(sc) if sc.starts_with('|') => out.push_str(&sc),
                    Some(sc) => {
                        out.push_str(&sc);
                        out.push('\n');
                    }
                    None => emit(out, it, indent + 2),
                }
            }
        }
        other => {
            if let Some(sc) = emit_scalar(other, indent) {
                out.push_str(&sc);
                if !sc.starts_with('|') {
                    out.push('\n');
                }
            }
        }
    }
}

fn to_yaml(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let Ok(y) = to_y(&a[0], 0, &mut 1_000_000) else {
        return Ok(Value::str(""));
    };
    let mut out = String::new();
    emit(&mut out, &y, 0);
    Ok(Value::str(out.strip_suffix('\n').unwrap_or(&out)))
}
