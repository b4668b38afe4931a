//! Reading and editing a Connect item (JSON as Connect answers it) with upstream's rules:
//! which fields and files a property names, duplicate labels, and the fields a push writes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The field label a push or read uses when no property is given.
pub(crate) const DEFAULT_LABEL: &str = "password";

/// Whether `s` has the shape of a 1Password ID (26 lowercase letters and digits), as the
/// Connect SDKs test it.
pub(crate) fn is_op_id(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// What a property names: a field or a file, by upstream's `getObjType`: a `field/` or `file/`
/// prefix decides; without one, a `DOCUMENT` item's property is a file, any other item's a
/// field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Field(String),
    File(String),
}

pub(crate) fn target(category: &str, property: &str) -> Target {
    if let Some(rest) = property.strip_prefix("field/") {
        return Target::Field(rest.to_owned());
    }
    if let Some(rest) = property.strip_prefix("file/") {
        return Target::File(rest.to_owned());
    }
    if category == "DOCUMENT" {
        Target::File(property.to_owned())
    } else {
        Target::Field(property.to_owned())
    }
}

pub(crate) fn title(item: &Value) -> &str {
    item.get("title")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn category(item: &Value) -> &str {
    item.get("category")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn fields(item: &Value) -> &[Value] {
    item.get("fields")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(crate) fn label(field: &Value) -> &str {
    field
        .get("label")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn value(field: &Value) -> &str {
    field
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// How many fields carry `label`.
pub(crate) fn count_label(item: &Value, label_: &str) -> usize {
    fields(item).iter().filter(|f| label(f) == label_).count()
}

/// A file of an item: (name, content path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileRef {
    pub(crate) name: String,
    pub(crate) content_path: String,
}

pub(crate) fn files(item: &Value) -> Vec<FileRef> {
    item.get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some(FileRef {
                name: f.get("name")?.as_str()?.to_owned(),
                content_path: f.get("content_path")?.as_str()?.to_owned(),
            })
        })
        .collect()
}

pub(crate) fn tags(item: &Value) -> Vec<&str> {
    item.get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// A new concealed field, as upstream's `generateNewItemField`.
pub(crate) fn new_field(label_: &str, value_: &str) -> Value {
    json!({"label": label_, "value": value_, "type": "CONCEALED"})
}

/// Sets the field labeled `label_` (appending one when absent). `Err(n)` when `n > 1` fields
/// carry the label; `Ok(changed)` otherwise.
pub(crate) fn set_field(item: &mut Value, label_: &str, value_: &str) -> Result<bool, usize> {
    let n = count_label(item, label_);
    if n > 1 {
        return Err(n);
    }
    let Some(obj) = item.as_object_mut() else {
        return Ok(false);
    };
    let list = obj
        .entry("fields")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let Some(list) = list.as_array_mut() else {
        return Ok(false);
    };
    match list.iter_mut().find(|f| label(f) == label_) {
        Some(f) if value(f) == value_ => Ok(false),
        Some(f) => {
            f["value"] = json!(value_);
            Ok(true)
        }
        None => {
            list.push(new_field(label_, value_));
            Ok(true)
        }
    }
}

/// Removes the field labeled `label_`. `Err(n)` when `n > 1` carry it; `Ok(removed)`.
pub(crate) fn remove_field(item: &mut Value, label_: &str) -> Result<bool, usize> {
    let n = count_label(item, label_);
    if n > 1 {
        return Err(n);
    }
    if let Some(list) = item.get_mut("fields").and_then(Value::as_array_mut) {
        list.retain(|f| label(f) != label_);
    }
    Ok(n == 1)
}

/// Whether an item holds nothing any more: no fields, no files, no section but upstream's
/// "one empty section" leftover.
pub(crate) fn is_empty(item: &Value) -> bool {
    let sections: Vec<&Value> = item
        .get("sections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let empty_sections = sections.is_empty()
        || (sections.len() == 1
            && sections[0]
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .is_empty()
            && sections[0]
                .get("label")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .is_empty());
    fields(item).is_empty() && files(item).is_empty() && empty_sections
}

/// The fields of an item as a map (every label must be unique), optionally only `only`.
/// `Err((label, n))` for the first label carried by `n > 1` fields.
pub(crate) fn field_map(
    item: &Value,
    only: Option<&str>,
) -> Result<BTreeMap<String, Vec<u8>>, (String, usize)> {
    let mut out = BTreeMap::new();
    for f in fields(item) {
        let l = label(f);
        if only.is_some_and(|o| o != l) {
            continue;
        }
        let n = count_label(item, l);
        if n != 1 {
            return Err((l.to_owned(), n));
        }
        out.insert(l.to_owned(), value(f).as_bytes().to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_name_fields_or_files_like_upstream() {
        assert_eq!(target("LOGIN", ""), Target::Field(String::new()));
        assert_eq!(target("LOGIN", "file/a.pem"), Target::File("a.pem".into()));
        assert_eq!(target("DOCUMENT", "a.pem"), Target::File("a.pem".into()));
        assert_eq!(
            target("DOCUMENT", "field/user"),
            Target::Field("user".into())
        );
        assert!(is_op_id("abcdefghijklmnopqrstuvwxy0"));
        assert!(!is_op_id("ABCDEFGHIJKLMNOPQRSTUVWXY0"));
        assert!(!is_op_id("db"));
    }

    #[test]
    fn fields_are_set_and_removed_once_each() {
        let mut item = json!({"fields": [{"label": "a", "value": "1"}]});
        assert_eq!(set_field(&mut item, "a", "1"), Ok(false));
        assert_eq!(set_field(&mut item, "a", "2"), Ok(true));
        assert_eq!(set_field(&mut item, "b", "3"), Ok(true));
        assert_eq!(field_map(&item, None).unwrap().len(), 2);
        assert_eq!(remove_field(&mut item, "a"), Ok(true));
        assert_eq!(remove_field(&mut item, "a"), Ok(false));
        assert!(!is_empty(&item));
        assert_eq!(remove_field(&mut item, "b"), Ok(true));
        item["sections"] = json!([{"id": "", "label": ""}]);
        assert!(is_empty(&item));
        let dup = json!({"fields": [{"label": "x"}, {"label": "x"}]});
        assert_eq!(field_map(&dup, None), Err(("x".into(), 2)));
        assert_eq!(set_field(&mut dup.clone(), "x", "v"), Err(2));
    }
}
