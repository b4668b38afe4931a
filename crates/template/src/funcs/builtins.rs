//! Go's `text/template` builtins.

use super::{Ctx, FnError, FnResult, Func, table};
use crate::gofmt;
use crate::value::{Elem, Value};

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "and" => (Val), ...Val => short_circuit;
    "or" => (Val), ...Val => short_circuit;
    "not" => (Val) => not;
    "len" => (Val) => len;
    "index" => (Val), ...Val => index;
    "print" => (), ...Any => print;
    "printf" => (Str), ...Any => printf;
    "println" => (), ...Any => println;
    "html" => (), ...Any => html;
    "js" => (), ...Any => js;
    "urlquery" => (), ...Any => urlquery;
    "call" => (Val), ...Val => call;
    "eq" => (Val), ...Val => eq;
    "ne" => (Val, Val) => ne;
    "lt" => (Val, Val) => lt;
    "le" => (Val, Val) => le;
    "gt" => (Val, Val) => gt;
    "ge" => (Val, Val) => ge;
};

/// `and`/`or` short-circuit in the executor; this is never reached.
fn short_circuit(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(a.into_iter().last().unwrap_or(Value::Nil))
}

fn not(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(!a.first().is_some_and(Value::truth)))
}

fn len(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let n = match a.first() {
        Some(Value::Str(s)) => s.len(),
        Some(Value::List(l, _)) => l.len(),
        Some(Value::Map(m)) => m.len(),
        Some(Value::Nil) | None => return Err("len of nil pointer".into()),
        Some(other) => return Err(format!("len of type {}", other.type_name()).into()),
    };
    Ok(Value::Int(n as i64))
}

fn index_of(v: &Value, len: usize) -> Result<usize, FnError> {
    let i = match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!("cannot index slice/array with type {}", other.type_name()).into());
        }
    };
    if i < 0 || i as u64 >= len as u64 {
        return Err(format!("index out of range: {i}").into());
    }
    Ok(i as usize)
}

fn index(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let mut it = a.into_iter();
    let mut item = it.next().unwrap_or(Value::Nil);
    for idx in it {
        item = match &item {
            Value::List(l, _) => {
                let i = index_of(&idx, l.len())?;
                l[i].clone()
            }
            Value::Str(s) => {
                let i = index_of(&idx, s.len())?;
                // Go yields a byte (uint8), which prints as its number.
                Value::Int(i64::from(s[i]))
            }
            Value::Map(m) => match &idx {
                Value::Str(k) => {
                    let k = String::from_utf8_lossy(k);
                    match m.get(&k) {
                        Some(v) => v,
                        None if m.elem == Elem::Str => Value::str(""),
                        None => Value::Nil,
                    }
                }
                Value::Nil => return Err("value is nil; should be of type string".into()),
                other => {
                    return Err(
                        format!("value has type {}; should be string", other.type_name()).into(),
                    );
                }
            },
            Value::Nil => return Err("index of untyped nil".into()),
            other => return Err(format!("can't index item of type {}", other.type_name()).into()),
        };
    }
    Ok(item)
}

fn print(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(gofmt::sprint(&a)))
}

fn println(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(gofmt::sprintln(&a)))
}

fn printf(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (f, rest) = a.split_first().ok_or("missing format")?;
    Ok(Value::str(gofmt::sprintf(
        f.as_bytes().unwrap_or(b""),
        rest,
    )))
}

/// Go's `evalArgs`: a single string argument as is, otherwise `fmt.Sprint`.
fn eval_args(a: &[Value]) -> Vec<u8> {
    if let [Value::Str(s)] = a {
        return s.to_vec();
    }
    gofmt::sprint(a)
}

fn html(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let s = eval_args(&a);
    let mut out = Vec::with_capacity(s.len());
    for &b in &s {
        match b {
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            _ => out.push(b),
        }
    }
    Ok(Value::str(out))
}

fn js(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let s = eval_args(&a);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\'' => out.extend_from_slice(b"\\'"),
                b'"' => out.extend_from_slice(b"\\\""),
                b'<' => out.extend_from_slice(b"\\u003C"),
                b'>' => out.extend_from_slice(b"\\u003E"),
                b'&' => out.extend_from_slice(b"\\u0026"),
                b'=' => out.extend_from_slice(b"\\u003D"),
                c if c < b' ' => out.extend_from_slice(format!("\\u00{c:02X}").as_bytes()),
                c => out.push(c),
            }
            i += 1;
            continue;
        }
        let end = (i + 4).min(s.len());
        let mut decoded = None;
        for n in 2..=end - i {
            if let Ok(t) = std::str::from_utf8(&s[i..i + n]) {
                decoded = t.chars().next().map(|c| (c, n));
                break;
            }
        }
        match decoded {
            Some((c, n)) => {
                if gofmt::is_print(c) {
                    out.extend_from_slice(&s[i..i + n]);
                } else {
                    out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes());
                }
                i += n;
            }
            None => {
                out.extend_from_slice(b"\\uFFFD");
                i += 1;
            }
        }
    }
    Ok(Value::str(out))
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
    out
}

fn urlquery(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(query_escape(&eval_args(&a))))
}

fn call(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    match a.first() {
        Some(Value::Nil) | None => Err(FnError::Plain("error calling call: call of nil".into())),
        Some(v) => Err(FnError::Plain(format!(
            "error calling call: non-function of type {}",
            v.type_name()
        ))),
    }
}

#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Other,
    Nil,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        Value::Nil => Kind::Nil,
        _ => Kind::Other,
    }
}

fn eq2(a: &Value, b: &Value) -> Result<bool, FnError> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        if ka == Kind::Nil || kb == Kind::Nil {
            return Ok(false);
        }
        if ka == Kind::Other || kb == Kind::Other {
            return Err(FnError::Plain(format!(
                "error calling eq: non-comparable types {}: {}, {}: {}",
                String::from_utf8_lossy(&a.to_go_string()),
                a.type_name(),
                b.type_name(),
                String::from_utf8_lossy(&b.to_go_string())
            )));
        }
        return Err(FnError::Plain(
            "error calling eq: incompatible types for comparison".into(),
        ));
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Nil, Value::Nil) => true,
        // Comparable structs compare field by field (Go's `==` on the interface values).
        (Value::Cert { cert: c1, key: k1 }, Value::Cert { cert: c2, key: k2 }) => {
            c1 == c2 && k1 == k2
        }
        (Value::Time(x), Value::Time(y)) => {
            x.nanos == y.nanos && x.mono == y.mono && x.go_string() == y.go_string()
        }
        // `*semver.Version` values are pointers: equal only when they are the same one.
        (Value::Semver(x), Value::Semver(y)) => std::sync::Arc::ptr_eq(x, y),
        _ => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => {
                return Err(FnError::Plain(format!(
                    "error calling eq: non-comparable type {}: {}",
                    String::from_utf8_lossy(&b.to_go_string()),
                    b.type_name()
                )));
            }
        },
    })
}

fn eq(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let (first, rest) = a.split_first().ok_or("missing argument for comparison")?;
    if rest.is_empty() {
        return Err(FnError::Plain(
            "error calling eq: missing argument for comparison".into(),
        ));
    }
    for b in rest {
        if eq2(first, b)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn ne(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let r = eq2(&a[0], &a[1]).map_err(|e| match e {
        FnError::Plain(m) => FnError::Plain(m.replacen("calling eq", "calling ne", 1)),
        other => other,
    })?;
    Ok(Value::Bool(!r))
}

fn less(name: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, FnError> {
    let bad_type = || FnError::Plain(format!("error calling {name}: invalid type for comparison"));
    let (ka, kb) = (kind(a), kind(b));
    if matches!(ka, Kind::Other | Kind::Nil | Kind::Bool)
        || matches!(kb, Kind::Other | Kind::Nil | Kind::Bool)
    {
        return Err(bad_type());
    }
    if ka != kb {
        return Err(FnError::Plain(format!(
            "error calling {name}: incompatible types for comparison"
        )));
    }
    Ok(match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => a.as_i64().unwrap_or(0).cmp(&b.as_i64().unwrap_or(0)),
    })
}

fn lt(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(less("lt", &a[0], &a[1])?.is_lt()))
}

fn le(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(less("le", &a[0], &a[1])?.is_le()))
}

fn gt(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(less("gt", &a[0], &a[1])?.is_gt()))
}

fn ge(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Bool(less("ge", &a[0], &a[1])?.is_ge()))
}
