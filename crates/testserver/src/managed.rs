//! Field ownership (`metadata.managedFields`, FieldsV1) and server-side apply.
//!
//! A field set is a set of paths; a path steps through map fields (`f:name`), associative list
//! items by key (`k:{"name":"x"}`) and set items by value (`v:"x"`). A path ending in an item
//! stands for the item itself (FieldsV1's `.`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::resources::{ListType, list_type, map_is_atomic};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Elem {
    Field(String),
    Key(String),
    Val(String),
}

type Path = Vec<Elem>;
type FieldSet = BTreeSet<Path>;

/// Which part of the object a write may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The whole object (types without a status subresource).
    All,
    /// Everything but `status` (the main resource of a type with a status subresource).
    Main,
    /// Only `status`.
    Status,
}

impl Scope {
    fn subresource(self) -> Option<&'static str> {
        (self == Scope::Status).then_some("status")
    }

    fn includes(self, top: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Main => top != "status",
            Scope::Status => top == "status",
        }
    }
}

/// Canonical JSON with sorted keys, as used in `k:` and `v:` path elements.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, String> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let parts: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::String((*k).clone())))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

struct Ctx<'a> {
    schema: Option<&'a Value>,
}

impl Ctx<'_> {
    fn list_type(&self, names: &[String]) -> ListType {
        let n: Vec<&str> = names.iter().map(String::as_str).collect();
        list_type(self.schema, &n)
    }

    fn atomic_map(&self, names: &[String]) -> bool {
        let n: Vec<&str> = names.iter().map(String::as_str).collect();
        map_is_atomic(self.schema, &n)
    }

    fn key_of(&self, item: &Value, keys: &[String]) -> String {
        let mut m = Map::new();
        for k in keys {
            if let Some(v) = item.get(k) {
                m.insert(k.clone(), v.clone());
            }
        }
        canonical(&Value::Object(m))
    }

    fn collect(&self, v: &Value, path: &mut Path, names: &mut Vec<String>, out: &mut FieldSet) {
        match v {
            Value::Object(m) if !m.is_empty() && !self.atomic_map(names) => {
                for (k, child) in m {
                    path.push(Elem::Field(k.clone()));
                    names.push(k.clone());
                    self.collect(child, path, names, out);
                    names.pop();
                    path.pop();
                }
            }
            Value::Array(items) => match self.list_type(names) {
                ListType::Map(keys) if !keys.is_empty() => {
                    for item in items {
                        path.push(Elem::Key(self.key_of(item, &keys)));
                        out.insert(path.clone());
                        if let Some(m) = item.as_object() {
                            for (k, child) in m {
                                path.push(Elem::Field(k.clone()));
                                names.push(k.clone());
                                if keys.contains(k) {
                                    out.insert(path.clone());
                                } else {
                                    self.collect(child, path, names, out);
                                }
                                names.pop();
                                path.pop();
                            }
                        }
                        path.pop();
                    }
                }
                ListType::Set => {
                    for item in items {
                        path.push(Elem::Val(canonical(item)));
                        out.insert(path.clone());
                        path.pop();
                    }
                }
                _ => {
                    out.insert(path.clone());
                }
            },
            _ => {
                out.insert(path.clone());
            }
        }
    }

    /// The fields an object sets within a scope; identity and system metadata are not owned.
    fn field_set(&self, obj: &Value, scope: Scope) -> FieldSet {
        let mut out = FieldSet::new();
        let Some(m) = obj.as_object() else { return out };
        for (k, v) in m {
            if matches!(k.as_str(), "apiVersion" | "kind") || !scope.includes(k) {
                continue;
            }
            if k == "metadata" {
                let Some(meta) = v.as_object() else { continue };
                for (mk, mv) in meta {
                    if !matches!(
                        mk.as_str(),
                        "labels" | "annotations" | "finalizers" | "ownerReferences"
                    ) {
                        continue;
                    }
                    let mut path = vec![Elem::Field("metadata".into()), Elem::Field(mk.clone())];
                    let mut names = vec!["metadata".to_string(), mk.clone()];
                    self.collect(mv, &mut path, &mut names, &mut out);
                }
                continue;
            }
            let mut path = vec![Elem::Field(k.clone())];
            let mut names = vec![k.clone()];
            self.collect(v, &mut path, &mut names, &mut out);
        }
        out
    }

    fn get<'v>(&self, obj: &'v Value, path: &Path) -> Option<&'v Value> {
        let mut cur = obj;
        for e in path {
            cur = match e {
                Elem::Field(f) => cur.get(f)?,
                Elem::Key(k) => {
                    let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    cur.as_array()?
                        .iter()
                        .find(|i| self.key_of(i, &keys) == *k)?
                }
                Elem::Val(v) => cur.as_array()?.iter().find(|i| canonical(i) == *v)?,
            };
        }
        Some(cur)
    }

    fn remove(&self, obj: &mut Value, path: &[Elem]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut cur = &mut *obj;
        for e in parents {
            let next = match e {
                Elem::Field(f) => cur.get_mut(f),
                Elem::Key(k) => {
                    let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    let pos = cur
                        .as_array()
                        .and_then(|a| a.iter().position(|i| self.key_of(i, &keys) == *k));
                    match pos {
                        Some(i) => cur.get_mut(i),
                        None => None,
                    }
                }
                Elem::Val(_) => None,
            };
            match next {
                Some(n) => cur = n,
                None => return,
            }
        }
        match last {
            Elem::Field(f) => {
                if let Some(m) = cur.as_object_mut() {
                    m.remove(f);
                }
            }
            Elem::Key(k) => {
                let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                if let Some(a) = cur.as_array_mut() {
                    a.retain(|i| self.key_of(i, &keys) != *k);
                }
            }
            Elem::Val(v) => {
                if let Some(a) = cur.as_array_mut() {
                    a.retain(|i| canonical(i) != *v);
                }
            }
        }
        // Drop maps the removal emptied, as the field's owner created them.
        if parents.len() > 1
            && self
                .get(obj, &parents.to_vec())
                .is_some_and(|p| p.as_object().is_some_and(Map::is_empty))
        {
            self.remove(obj, parents);
        }
    }

    fn merge(&self, dst: &mut Value, src: &Value, names: &mut Vec<String>) {
        match src {
            Value::Object(s) if !self.atomic_map(names) || names.is_empty() => {
                if !dst.is_object() {
                    *dst = Value::Object(Map::new());
                }
                let Some(d) = dst.as_object_mut() else { return };
                for (k, v) in s {
                    if v.is_null() {
                        d.remove(k);
                        continue;
                    }
                    names.push(k.clone());
                    self.merge(d.entry(k.clone()).or_insert(Value::Null), v, names);
                    names.pop();
                }
            }
            Value::Array(items) if dst.is_array() => match self.list_type(names) {
                ListType::Map(keys) if !keys.is_empty() => {
                    for item in items {
                        let key = self.key_of(item, &keys);
                        let Some(d) = dst.as_array_mut() else { return };
                        match d.iter().position(|i| self.key_of(i, &keys) == key) {
                            Some(i) => self.merge(&mut d[i], item, names),
                            None => d.push(item.clone()),
                        }
                    }
                }
                ListType::Set => {
                    if let Some(d) = dst.as_array_mut() {
                        for item in items {
                            if !d.contains(item) {
                                d.push(item.clone());
                            }
                        }
                    }
                }
                _ => *dst = src.clone(),
            },
            _ => *dst = src.clone(),
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    subresource: Option<String>,
    api_version: String,
    time: String,
    set: FieldSet,
}

fn elem_str(e: &Elem) -> String {
    match e {
        Elem::Field(f) => format!("f:{f}"),
        Elem::Key(k) => format!("k:{k}"),
        Elem::Val(v) => format!("v:{v}"),
    }
}

#[derive(Default)]
struct Tree {
    me: bool,
    children: BTreeMap<String, Tree>,
}

impl Tree {
    fn render(&self) -> Value {
        let mut m = Map::new();
        if self.me && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.render());
        }
        Value::Object(m)
    }
}

fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Tree::default();
    for p in set {
        let mut node = &mut root;
        for e in p {
            node = node.children.entry(elem_str(e)).or_default();
        }
        node.me = true;
    }
    root.render()
}

fn from_fields_v1(v: &Value, path: &mut Path, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    for (k, child) in m {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        let e = if let Some(f) = k.strip_prefix("f:") {
            Elem::Field(f.into())
        } else if let Some(f) = k.strip_prefix("k:") {
            Elem::Key(f.into())
        } else if let Some(f) = k.strip_prefix("v:") {
            Elem::Val(f.into())
        } else {
            continue;
        };
        path.push(e);
        if child.as_object().is_some_and(Map::is_empty) {
            out.insert(path.clone());
        } else {
            from_fields_v1(child, path, out);
        }
        path.pop();
    }
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    let mut out = Vec::new();
    for e in obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut set = FieldSet::new();
        if let Some(f) = e.get("fieldsV1") {
            from_fields_v1(f, &mut Vec::new(), &mut set);
        }
        out.push(Entry {
            manager: s("manager"),
            operation: s("operation"),
            subresource: e
                .get("subresource")
                .and_then(Value::as_str)
                .map(String::from),
            api_version: s("apiVersion"),
            time: s("time"),
            set,
        });
    }
    out
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let rendered: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.set),
            });
            if let Some(s) = e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if rendered.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(rendered));
        }
    }
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone)]
pub(crate) struct FieldConflict {
    pub(crate) manager: String,
    pub(crate) field: String,
}

/// Everything an ownership-tracking write needs to know.
pub(crate) struct Write<'a> {
    pub(crate) manager: &'a str,
    pub(crate) scope: Scope,
    pub(crate) schema: Option<&'a Value>,
    pub(crate) api_version: &'a str,
    pub(crate) now: &'a str,
}

fn dotted(path: &Path) -> String {
    path.iter()
        .map(|e| match e {
            Elem::Field(f) => format!(".{f}"),
            Elem::Key(k) => format!("[{k}]"),
            Elem::Val(v) => format!("[={v}]"),
        })
        .collect()
}

/// Server-side apply of `config` onto `live` (an empty shell for a create); returns the
/// merged object with updated `managedFields`, or the conflicts when not forced.
pub(crate) fn apply(
    live: &Value,
    config: &Value,
    force: bool,
    w: &Write<'_>,
) -> Result<Value, Vec<FieldConflict>> {
    let ctx = Ctx { schema: w.schema };
    let mut entries = read_entries(live);
    let sub = w.scope.subresource();
    let is_me = |e: &Entry| {
        e.manager == w.manager && e.operation == "Apply" && e.subresource.as_deref() == sub
    };
    let applied = ctx.field_set(config, w.scope);
    let mut conflicts = Vec::new();
    for e in entries.iter_mut().filter(|e| !is_me(e)) {
        let mut lost = Vec::new();
        for p in applied.intersection(&e.set) {
            if matches!(p.last(), Some(Elem::Key(_) | Elem::Val(_))) {
                continue;
            }
            if ctx.get(live, p) != ctx.get(config, p) {
                lost.push(p.clone());
                conflicts.push(FieldConflict {
                    manager: e.manager.clone(),
                    field: dotted(p),
                });
            }
        }
        for p in lost {
            e.set.remove(&p);
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let previous = entries
        .iter()
        .find(|e| is_me(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let mut result = live.clone();
    let mut filtered = config.clone();
    if let Some(m) = filtered.as_object_mut() {
        m.retain(|k, _| {
            matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || w.scope.includes(k)
        });
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| {
                w.scope != Scope::Status
                    && matches!(
                        k.as_str(),
                        "labels" | "annotations" | "finalizers" | "ownerReferences"
                    )
            });
        }
    }
    ctx.merge(&mut result, &filtered, &mut Vec::new());
    let others: Vec<&Entry> = entries.iter().filter(|e| !is_me(e)).collect();
    let mut removed: Vec<&Path> = previous.difference(&applied).collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in removed {
        let owned_elsewhere = others
            .iter()
            .any(|e| e.set.iter().any(|q| q.starts_with(p)))
            || applied.iter().any(|q| q.starts_with(p));
        if !owned_elsewhere {
            ctx.remove(&mut result, p);
        }
    }
    entries.retain(|e| !is_me(e));
    entries.push(Entry {
        manager: w.manager.into(),
        operation: "Apply".into(),
        subresource: sub.map(String::from),
        api_version: w.api_version.into(),
        time: w.now.into(),
        set: applied,
    });
    write_entries(&mut result, entries);
    Ok(result)
}

/// Records the fields a non-apply write (create, update, patch) changed as owned by its
/// manager, taking them from every other manager.
pub(crate) fn track_update(old: Option<&Value>, new: &mut Value, w: &Write<'_>) {
    let ctx = Ctx { schema: w.schema };
    let mut entries = old.map(read_entries).unwrap_or_default();
    let sub = w.scope.subresource();
    let new_set = ctx.field_set(new, w.scope);
    let old_set = old.map(|o| ctx.field_set(o, w.scope)).unwrap_or_default();
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| !old_set.contains(*p) || old.and_then(|o| ctx.get(o, p)) != ctx.get(new, p))
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    let is_me = |e: &Entry| {
        e.manager == w.manager && e.operation == "Update" && e.subresource.as_deref() == sub
    };
    for e in entries.iter_mut() {
        if !is_me(e) {
            e.set
                .retain(|p| !changed.contains(p) && !removed.contains(p));
        }
    }
    match entries.iter_mut().find(|e| is_me(e)) {
        Some(e) => {
            e.set.extend(changed.iter().cloned());
            e.set.retain(|p| !removed.contains(p));
            if !changed.is_empty() {
                e.time = w.now.into();
            }
        }
        None if !changed.is_empty() => entries.push(Entry {
            manager: w.manager.into(),
            operation: "Update".into(),
            subresource: sub.map(String::from),
            api_version: w.api_version.into(),
            time: w.now.into(),
            set: changed,
        }),
        None => {}
    }
    write_entries(new, entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(manager: &str) -> Write<'_> {
        Write {
            manager,
            scope: Scope::All,
            schema: None,
            api_version: "v1",
            now: "2025-01-01T00:00:00Z",
        }
    }

    #[test]
    fn fields_v1_round_trips_through_paths() {
        let obj = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["x"],
            "ownerReferences": [{"uid": "u1", "name": "o"}]}, "data": {"k": "v"}});
        let ctx = Ctx { schema: None };
        let set = ctx.field_set(&obj, Scope::All);
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({"f:data": {"f:k": {}}, "f:metadata": {"f:finalizers": {"v:\"x\"": {}},
                "f:labels": {"f:a": {}},
                "f:ownerReferences": {"k:{\"uid\":\"u1\"}": {".": {}, "f:name": {}, "f:uid": {}}}}})
        );
        let mut back = FieldSet::new();
        from_fields_v1(&v1, &mut Vec::new(), &mut back);
        assert_eq!(back, set);
    }

    #[test]
    fn apply_conflicts_with_other_manager_unless_forced_and_removes_dropped_fields() {
        let shell = json!({"metadata": {"name": "s"}});
        let a1 = apply(
            &shell,
            &json!({"data": {"x": "1", "y": "2"}}),
            false,
            &w("a"),
        )
        .unwrap();
        let b = apply(&a1, &json!({"data": {"x": "3"}}), false, &w("b"));
        assert_eq!(b.unwrap_err()[0].manager, "a");
        let b = apply(&a1, &json!({"data": {"x": "3"}}), true, &w("b")).unwrap();
        assert_eq!(b["data"], json!({"x": "3", "y": "2"}));
        // `a` stops applying y (only it owns y) and x (now owned by b): y goes, x stays.
        let a2 = apply(&b, &json!({"data": {}}), false, &w("a")).unwrap();
        assert_eq!(a2["data"], json!({"x": "3"}));
    }
}
