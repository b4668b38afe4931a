//! The function table: Go's builtins, the sprig subset ESO registers, and ESO's own helpers.
//!
//! Each function declares Go's parameter types so that the executor converts and checks
//! arguments as Go's `reflect` call does (`wrong type for value; expected string; got int`).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::value::Value;

mod builtins;
mod case;
mod crypto;
mod data;
mod date;
mod der;
mod encoding;
mod keygen;
mod pem;
mod pkcs12_encode;
mod semver;
mod sprig;

pub use semver::SemVer;

/// A Go parameter type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum P {
    /// `interface {}`
    Any,
    /// `reflect.Value` (Go's builtins): any value, but the `nil` keyword is rejected.
    Val,
    Str,
    Int,
    Float,
    Bool,
    /// `map[string]interface {}`
    Dict,
    /// `time.Time`
    Time,
    /// sprig's `certificate` struct
    Cert,
}

impl P {
    pub(crate) fn go_name(self) -> &'static str {
        match self {
            P::Any => "interface {}",
            P::Val => "reflect.Value",
            P::Str => "string",
            P::Int => "int",
            P::Float => "float64",
            P::Bool => "bool",
            P::Dict => "map[string]interface {}",
            P::Time => "time.Time",
            P::Cert => "sprig.certificate",
        }
    }

    /// The word Go uses in "expected X; found Y" for a constant of the wrong kind.
    pub(crate) fn expect_word(self) -> &'static str {
        match self {
            P::Int => "integer",
            P::Float => "float",
            P::Bool => "bool",
            P::Str => "string",
            _ => self.go_name(),
        }
    }
}

/// What a function can fail with.
#[derive(Debug)]
pub(crate) enum FnError {
    /// Reported as `error calling NAME: MSG`, like a Go function returning an error (or
    /// panicking, which Go's template turns into the same message).
    Msg(String),
    /// Reported as is (Go's builtins build their own messages).
    Plain(String),
    /// A resource bound was hit.
    Limit(String),
}

impl From<String> for FnError {
    fn from(s: String) -> Self {
        FnError::Msg(s)
    }
}

impl From<&str> for FnError {
    fn from(s: &str) -> Self {
        FnError::Msg(s.to_string())
    }
}

pub(crate) type FnResult = Result<Value, FnError>;
pub(crate) type Imp = fn(&mut Ctx, Vec<Value>) -> FnResult;

/// One registered function.
pub(crate) struct Func {
    pub(crate) params: &'static [P],
    pub(crate) variadic: Option<P>,
    pub(crate) imp: Imp,
}

/// Per-execution context for functions that need randomness, the clock or the limits.
pub(crate) struct Ctx {
    pub(crate) rng: Rng,
    /// The fixed clock of [`crate::ExecOptions::now`], if any.
    pub(crate) now: Option<std::time::SystemTime>,
    pub(crate) max_bytes: usize,
    pub(crate) max_items: u64,
}

impl Ctx {
    /// The current time as nanoseconds since the Unix epoch, from the fixed clock if set.
    pub(crate) fn now_nanos(&self) -> i128 {
        let t = self.now.unwrap_or_else(std::time::SystemTime::now);
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        }
    }

    /// Fails with a limit error when a result of `n` bytes would be too large.
    pub(crate) fn check_size(&self, n: usize) -> Result<(), FnError> {
        if n > self.max_bytes {
            return Err(FnError::Limit(format!(
                "result of {n} bytes exceeds the limit of {} bytes",
                self.max_bytes
            )));
        }
        Ok(())
    }

    pub(crate) fn check_items(&self, n: u64) -> Result<(), FnError> {
        if n > self.max_items {
            return Err(FnError::Limit(format!(
                "list of {n} items exceeds the limit of {}",
                self.max_items
            )));
        }
        Ok(())
    }
}

/// Randomness for `randAlphaNum`, `uuidv4`, `shuffle`, ...: the operating system's CSPRNG, or
/// a fixed seed for reproducible tests.
pub(crate) enum Rng {
    Os,
    Seeded(u64),
}

impl Rng {
    pub(crate) fn fill(&mut self, buf: &mut [u8]) -> Result<(), FnError> {
        match self {
            Rng::Os => {
                getrandom::fill(buf).map_err(|e| FnError::Msg(format!("reading random bytes: {e}")))
            }
            Rng::Seeded(state) => {
                for b in buf.iter_mut() {
                    // splitmix64
                    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = *state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    *b = (z ^ (z >> 31)) as u8;
                }
                Ok(())
            }
        }
    }

    /// Uniform integer in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> Result<u64, FnError> {
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let mut b = [0u8; 8];
            self.fill(&mut b)?;
            let v = u64::from_le_bytes(b);
            if v < zone {
                return Ok(v % n);
            }
        }
    }
}

macro_rules! table {
    ($( $name:literal => ($($p:ident),*) $(, ...$v:ident)? => $imp:path ;)*) => {
        &[ $( ($name, $crate::funcs::Func { params: &[$($crate::funcs::P::$p),*], variadic: table!(@v $($v)?), imp: $imp }) ),* ]
    };
    (@v) => { None };
    (@v $v:ident) => { Some($crate::funcs::P::$v) };
}
pub(crate) use table;

fn registry() -> &'static HashMap<&'static str, Func> {
    static REG: OnceLock<HashMap<&'static str, Func>> = OnceLock::new();
    REG.get_or_init(|| {
        let mut m = HashMap::new();
        // Later tables win, as ESO's FuncMap entries win over Go's builtins (`slice`).
        for table in [
            builtins::FUNCS,
            sprig::FUNCS,
            date::FUNCS,
            case::FUNCS,
            keygen::FUNCS,
            data::FUNCS,
            encoding::FUNCS,
            crypto::FUNCS,
            pem::FUNCS,
            pkcs12_encode::FUNCS,
            semver::FUNCS,
        ] {
            for (name, f) in table {
                m.insert(
                    *name,
                    Func {
                        params: f.params,
                        variadic: f.variadic,
                        imp: f.imp,
                    },
                );
            }
        }
        m
    })
}

/// The function registered under `name`.
pub(crate) fn lookup(name: &str) -> Option<&'static Func> {
    registry().get(name)
}

/// Names of every registered function, sorted.
pub(crate) fn names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = registry().keys().copied().collect();
    v.sort_unstable();
    v
}

// ---- argument helpers shared by the function modules ----

/// The bytes of a string argument (the executor has checked the type).
pub(crate) fn bytes(v: &Value) -> &[u8] {
    v.as_bytes().unwrap_or(b"")
}

/// A string argument as text; invalid UTF-8 is replaced (only for functions whose Go
/// counterpart works on runes).
pub(crate) fn text(v: &Value) -> String {
    String::from_utf8_lossy(bytes(v)).into_owned()
}

pub(crate) fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// sprig's `strval`: strings as they are, everything else as `fmt.Sprintf("%v")`.
pub(crate) fn strval(v: &Value) -> Vec<u8> {
    match v {
        Value::Str(s) => s.to_vec(),
        other => other.to_go_string(),
    }
}

/// `cast.ToInt64` as sprig uses it: numbers truncate, strings parse (base prefixes allowed,
/// failures are 0), bools are 0/1, nil is 0.
pub(crate) fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => {
            let t = String::from_utf8_lossy(s);
            let t = trim_zero_decimal(&t);
            parse_go_int(&t).unwrap_or(0)
        }
        _ => 0,
    }
}

fn trim_zero_decimal(s: &str) -> String {
    if let Some((a, b)) = s.split_once('.')
        && !b.is_empty()
        && b.bytes().all(|c| c == b'0')
    {
        return a.to_string();
    }
    s.to_string()
}

/// `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(h) = lower.strip_prefix("0x") {
        (16, h.to_string())
    } else if let Some(o) = lower.strip_prefix("0o") {
        (8, o.to_string())
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    if radix == 10 && digits.contains('_') {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.starts_with(['+', '-']) {
        return None;
    }
    let v = i128::from_str_radix(&clean, radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// `cast.ToFloat64`.
pub(crate) fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => String::from_utf8_lossy(s).parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// sprig's `empty`.
pub(crate) fn is_empty(v: &Value) -> bool {
    !v.truth()
}

/// Items of any list value (sprig accepts `[]string`, `[]int` and `[]interface {}` alike).
pub(crate) fn list_items(v: &Value, what: &str) -> Result<Vec<Value>, FnError> {
    match v {
        Value::List(items, _) => Ok(items.as_ref().clone()),
        Value::Nil => Err(FnError::Msg(format!("Cannot {what} on type <nil>"))),
        other => Err(FnError::Msg(format!(
            "Cannot {what} on type {}",
            other.type_name()
        ))),
    }
}
