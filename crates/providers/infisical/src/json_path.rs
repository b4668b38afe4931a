//! Setting and deleting a dotted property inside a JSON document, as upstream does with
//! `sjson` when it pushes or deletes a `property`: `a.b` creates objects on the way, an
//! existing array takes a numeric segment as an index, and `\.` is a literal dot.

use serde_json::{Map, Value};

fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.push(chars.next().unwrap_or('\\')),
            '.' => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    out.push(current);
    out
}

/// Sets `path` to `value`, creating objects as needed; `false` when a scalar is in the way.
pub(crate) fn set(doc: &mut Value, path: &str, value: Value) -> bool {
    let segs = segments(path);
    let mut node = doc;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        node = match node {
            Value::Object(map) => {
                if last {
                    map.insert(seg.clone(), value);
                    return true;
                }
                map.entry(seg.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
            }
            Value::Array(items) => {
                let Ok(idx) = seg.parse::<usize>() else {
                    return false;
                };
                if idx >= items.len() {
                    items.resize(idx + 1, Value::Null);
                }
                if last {
                    items[idx] = value;
                    return true;
                }
                let slot = &mut items[idx];
                if slot.is_null() {
                    *slot = Value::Object(Map::new());
                }
                slot
            }
            _ => return false,
        };
    }
    false
}

/// Removes `path`; `true` when something was removed.
pub(crate) fn delete(doc: &mut Value, path: &str) -> bool {
    let segs = segments(path);
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut node = doc;
    for seg in parents {
        node = match node {
            Value::Object(map) => match map.get_mut(seg) {
                Some(v) => v,
                None => return false,
            },
            Value::Array(items) => match seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match node {
        Value::Object(map) => map.remove(last).is_some(),
        Value::Array(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_nested_paths_and_escaped_dots() {
        let mut doc = json!({"a": {"x": 1}, "list": [1]});
        assert!(set(&mut doc, "a.b.c", json!("v")));
        assert!(set(&mut doc, r"dot\.key", json!("d")));
        assert!(set(&mut doc, "list.2", json!(3)));
        assert_eq!(
            doc,
            json!({"a": {"x": 1, "b": {"c": "v"}}, "dot.key": "d", "list": [1, null, 3]})
        );
        assert!(!set(&mut doc, "a.x.y", json!(1)), "a scalar is in the way");
    }

    #[test]
    fn deletes_paths() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "list": [1, 2]});
        assert!(delete(&mut doc, "a.b"));
        assert!(!delete(&mut doc, "a.missing"));
        assert!(delete(&mut doc, "list.0"));
        assert_eq!(doc, json!({"a": {"c": 2}, "list": [2]}));
    }
}
