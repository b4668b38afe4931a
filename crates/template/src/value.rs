//! Template values: the dynamic types Go's `text/template` sees through `reflect`.
//!
//! Strings are byte strings, as in Go: a secret value that is not UTF-8 (a DER key, a
//! PKCS#12 archive, the output of `b64dec`) flows through templates unchanged and is written
//! to the output byte for byte.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Element type of a list or map, which Go keeps in the static type (`[]string` versus
/// `[]interface {}`). It decides `printf "%T"`, `typeOf`, which functions accept the value,
/// and what `index` returns for a missing map key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// `interface {}`: any value, missing entries are nil.
    Any,
    /// `string`: missing map entries read as `""`.
    Str,
    /// `int`.
    Int,
}

impl Elem {
    fn go_name(self) -> &'static str {
        match self {
            Elem::Any => "interface {}",
            Elem::Str => "string",
            Elem::Int => "int",
        }
    }
}

/// A Go map with string keys. Maps are reference values in Go: sprig's `set`, `unset` and
/// `merge` change them in place, and every holder sees the change.
#[derive(Clone, Debug)]
pub struct Map {
    pub(crate) elem: Elem,
    pub(crate) inner: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl Map {
    /// A new map with the given element type.
    #[must_use]
    pub fn new(elem: Elem, entries: BTreeMap<String, Value>) -> Self {
        Map {
            elem,
            inner: Arc::new(Mutex::new(entries)),
        }
    }

    /// Locks the entries. A poisoned lock only means another thread panicked while holding
    /// it; the map itself is still a valid map, so the data is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Value>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value under `key`, cloned.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<Value> {
        self.lock().get(key).cloned()
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when the map has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A sorted copy of the entries (keys in Go's byte order).
    #[must_use]
    pub fn entries(&self) -> Vec<(String, Value)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The element type.
    #[must_use]
    pub fn elem(&self) -> Elem {
        self.elem
    }

    pub(crate) fn same(&self, other: &Map) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// A value inside a template: the data passed in, constants, and function results.
#[derive(Clone, Debug)]
pub enum Value {
    /// Go's untyped nil (`<no value>` when printed by the template, `<nil>` inside `printf`).
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int` (template integer constants, `len`, `atoi`, ...).
    Int(i64),
    /// `int64` (sprig's math functions).
    Int64(i64),
    /// `float64` (float constants, every number from `fromJson`/`fromYaml`).
    Float(f64),
    /// `string`: arbitrary bytes.
    Str(Arc<[u8]>),
    /// A slice with its element type.
    List(Arc<Vec<Value>>, Elem),
    /// A map with string keys.
    Map(Map),
    /// Go's `time.Time` (from `now`, `toDate`, `dateModify`, ...).
    Time(crate::gotime::GoTime),
    /// sprig's `certificate` struct (`genCA`, `genSignedCert`, ...): PEM `.Cert` and `.Key`.
    Cert {
        /// The PEM certificate.
        cert: Arc<[u8]>,
        /// The PEM private key.
        key: Arc<[u8]>,
    },
    /// Masterminds' `*semver.Version`, from sprig's `semver`.
    Semver(Arc<crate::SemVer>),
}

impl Value {
    /// A string value from bytes or text.
    pub fn str(s: impl AsRef<[u8]>) -> Value {
        Value::Str(Arc::from(s.as_ref()))
    }

    /// The data ESO passes to templates: Go's `map[string]string`, one entry per secret key.
    /// Values are raw bytes: binary values (not UTF-8) are kept as they are.
    #[must_use]
    pub fn from_string_map<K, V>(map: BTreeMap<K, V>) -> Value
    where
        K: Into<String>,
        V: AsRef<[u8]>,
    {
        let entries = map
            .into_iter()
            .map(|(k, v)| (k.into(), Value::str(v)))
            .collect();
        Value::Map(Map::new(Elem::Str, entries))
    }

    /// Like [`Value::from_string_map`], for callers holding `Vec<u8>` secret data.
    #[must_use]
    pub fn from_bytes_map(map: &BTreeMap<String, Vec<u8>>) -> Value {
        let entries = map
            .iter()
            .map(|(k, v)| (k.clone(), Value::str(v)))
            .collect();
        Value::Map(Map::new(Elem::Str, entries))
    }

    /// A `[]interface {}`.
    #[must_use]
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(items), Elem::Any)
    }

    /// A `[]string`.
    #[must_use]
    pub fn str_list<S: AsRef<[u8]>>(items: impl IntoIterator<Item = S>) -> Value {
        Value::List(
            Arc::new(items.into_iter().map(Value::str).collect()),
            Elem::Str,
        )
    }

    /// A `map[string]interface {}`.
    #[must_use]
    pub fn dict(entries: BTreeMap<String, Value>) -> Value {
        Value::Map(Map::new(Elem::Any, entries))
    }

    /// Go's type name, as `printf "%T"` and sprig's `typeOf` print it.
    #[must_use]
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Int64(_) => "int64".into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::List(_, e) => format!("[]{}", e.go_name()),
            Value::Map(m) => format!("map[string]{}", m.elem.go_name()),
            Value::Time(_) => "time.Time".into(),
            Value::Cert { .. } => "sprig.certificate".into(),
            Value::Semver(_) => "*semver.Version".into(),
        }
    }

    /// Go's `reflect.Kind` name, as sprig's `kindOf` prints it.
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(..) => "slice",
            Value::Map(_) => "map",
            Value::Time(_) | Value::Cert { .. } => "struct",
            Value::Semver(_) => "ptr",
        }
    }

    /// Go's truth: false, 0, nil, and empty strings, slices and maps are false.
    #[must_use]
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l, _) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Time(_) | Value::Cert { .. } | Value::Semver(_) => true,
        }
    }

    /// The bytes of a string value.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Integer value of `int`/`int64`.
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) | Value::Int64(i) => Some(*i),
            _ => None,
        }
    }

    /// The value as Go's `fmt.Sprint` prints it.
    #[must_use]
    pub fn to_go_string(&self) -> Vec<u8> {
        crate::gofmt::sprint(std::slice::from_ref(self))
    }

    /// Converts parsed JSON the way Go's `json.Unmarshal` into `interface{}` does: objects to
    /// `map[string]interface {}`, arrays to `[]interface {}`, every number to `float64`.
    #[must_use]
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(a) => Value::list(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::dict(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// Go's `reflect.DeepEqual` on template values: same type and same contents.
pub(crate) fn deep_equal(a: &Value, b: &Value, depth: usize) -> bool {
    let mut budget = 100_000usize;
    deep_equal_budget(a, b, depth, &mut budget)
}

/// `budget` bounds the nodes visited: values can be cyclic (`set $d "k" $d`).
fn deep_equal_budget(a: &Value, b: &Value, depth: usize, budget: &mut usize) -> bool {
    if depth > 100 || *budget == 0 {
        return false;
    }
    *budget -= 1;
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) | (Value::Int64(x), Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Time(x), Value::Time(y)) => x.nanos == y.nanos && x.go_string() == y.go_string(),
        (Value::Cert { cert: c1, key: k1 }, Value::Cert { cert: c2, key: k2 }) => {
            c1 == c2 && k1 == k2
        }
        // DeepEqual follows pointers: equal when the pointed-to structs are.
        (Value::Semver(x), Value::Semver(y)) => x == y,
        (Value::List(x, ex), Value::List(y, ey)) => {
            ex == ey
                && x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| deep_equal_budget(p, q, depth + 1, budget))
        }
        (Value::Map(x), Value::Map(y)) => {
            if x.elem != y.elem {
                return false;
            }
            if x.same(y) {
                return true;
            }
            let (ex, ey) = (x.entries(), y.entries());
            ex.len() == ey.len()
                && ex.iter().zip(ey.iter()).all(|((k1, v1), (k2, v2))| {
                    k1 == k2 && deep_equal_budget(v1, v2, depth + 1, budget)
                })
        }
        _ => false,
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
