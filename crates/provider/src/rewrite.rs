//! `dataFrom[].rewrite`: key rewrites by regexp, by template and by JSON merge, applied in
//! list order. The template engine lives elsewhere, so `transform` goes through a
//! [`KeyTransformer`] the caller supplies.

use std::collections::BTreeMap;

use eso_api::{
    ExternalSecretRewrite, MergeConflictPolicy, MergePriorityPolicy, MergeStrategy, RewriteMerge,
};
use regex::Regex;
use serde_json::Value;

use crate::{ProviderError, SecretData, property::value_bytes};

/// Renders a `rewrite.transform` template for one key.
pub trait KeyTransformer {
    /// The new key for `key`, rendered from `template` with `.value` = `key`.
    fn transform(&self, template: &str, key: &str) -> Result<String, String>;
}

/// A transformer for callers without templates: every `transform` is an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTemplates;

impl KeyTransformer for NoTemplates {
    fn transform(&self, _template: &str, _key: &str) -> Result<String, String> {
        Err("rewrite.transform needs the template engine, which is not available here".to_owned())
    }
}

/// Applies every rewrite in order. Errors name the rewrite's index.
pub fn rewrite_map(
    rewrites: &[ExternalSecretRewrite],
    data: SecretData,
    templates: &dyn KeyTransformer,
) -> Result<SecretData, ProviderError> {
    let mut out = data;
    for (i, op) in rewrites.iter().enumerate() {
        let fail = |msg: String| ProviderError::invalid_request(format!("rewrite[{i}]: {msg}"));
        out = match (&op.regexp, &op.transform, &op.merge) {
            (Some(re), None, None) => {
                let compiled = Regex::new(&re.source).map_err(|e| {
                    fail(format!(
                        "regexp.source {:?} is not a valid regular expression: {e}",
                        re.source
                    ))
                })?;
                let mut next = SecretData::new();
                for (key, value) in out {
                    let new_key = compiled.replace_all(&key, re.target.as_str()).into_owned();
                    next.insert(new_key, value);
                }
                next
            }
            (None, Some(tr), None) => {
                let mut next = SecretData::new();
                for (key, value) in out {
                    let new_key = templates
                        .transform(&tr.template, &key)
                        .map_err(|e| fail(format!("transform of key {key:?}: {e}")))?;
                    if next.contains_key(&new_key) {
                        return Err(fail(format!(
                            "transform gives key {new_key:?} for more than one key"
                        )));
                    }
                    next.insert(new_key, value);
                }
                next
            }
            (None, None, Some(merge)) => merge_values(merge, out).map_err(fail)?,
            _ => {
                return Err(fail(
                    "exactly one of regexp, transform and merge must be set".to_owned(),
                ));
            }
        };
    }
    Ok(out)
}

fn merge_values(merge: &RewriteMerge, data: SecretData) -> Result<SecretData, String> {
    let priority_policy = merge.priority_policy.unwrap_or_default();
    let conflict_policy = merge.conflict_policy.unwrap_or_default();
    let strategy = merge.strategy.unwrap_or_default();
    // Alphabetical order first (BTreeMap), then the priority keys in their given order, so the
    // priority keys are merged last and win.
    let mut order: Vec<&str> = data
        .keys()
        .map(String::as_str)
        .filter(|k| !merge.priority.iter().any(|p| p == k))
        .collect();
    for p in &merge.priority {
        if data.contains_key(p) {
            order.push(p);
        } else if priority_policy == MergePriorityPolicy::Strict {
            return Err(format!("merge: priority key {p:?} is not in the data"));
        }
    }
    let mut merged: BTreeMap<String, Value> = BTreeMap::new();
    for key in order {
        let raw = &data[key];
        let object: serde_json::Map<String, Value> = serde_json::from_slice(raw)
            .map_err(|e| format!("merge: value of {key:?} is not a JSON object: {e}"))?;
        for (k, v) in object {
            if merged.contains_key(&k) && conflict_policy == MergeConflictPolicy::Error {
                return Err(format!(
                    "merge: key {k:?} from {key:?} is already set by another value"
                ));
            }
            merged.insert(k, v);
        }
    }
    match strategy {
        MergeStrategy::Extract => Ok(merged
            .into_iter()
            .map(|(k, v)| (k, value_bytes(&v)))
            .collect()),
        MergeStrategy::Json => {
            let into = merge
                .into
                .as_deref()
                .filter(|i| !i.is_empty())
                .ok_or("merge: strategy JSON needs `into`")?;
            let mut out = data;
            let json = serde_json::to_vec(&merged).map_err(|e| format!("merge: {e}"))?;
            out.insert(into.to_owned(), json);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::{RewriteRegexp, RewriteTransform};

    fn map(pairs: &[(&str, &str)]) -> SecretData {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    fn regexp(source: &str, target: &str) -> ExternalSecretRewrite {
        ExternalSecretRewrite {
            regexp: Some(RewriteRegexp {
                source: source.into(),
                target: target.into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn regexp_rewrites_chain_in_order() {
        let out = rewrite_map(
            &[regexp("^app/", ""), regexp("(.*)-(.*)", "${2}_$1")],
            map(&[("app/db-pass", "1"), ("other", "2")]),
            &NoTemplates,
        )
        .unwrap();
        assert_eq!(out, map(&[("pass_db", "1"), ("other", "2")]));
    }

    #[test]
    fn invalid_regexp_names_the_rewrite() {
        let err = rewrite_map(
            &[regexp("ok", "x"), regexp("(", "")],
            map(&[("a", "1")]),
            &NoTemplates,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("rewrite[1]:"), "{err}");
    }

    struct Upper;
    impl KeyTransformer for Upper {
        fn transform(&self, _t: &str, key: &str) -> Result<String, String> {
            Ok(key.to_uppercase())
        }
    }

    #[test]
    fn transform_uses_the_transformer_and_rejects_duplicates() {
        let op = ExternalSecretRewrite {
            transform: Some(RewriteTransform {
                template: "{{ .value | upper }}".into(),
            }),
            ..Default::default()
        };
        let out = rewrite_map(std::slice::from_ref(&op), map(&[("a", "1")]), &Upper).unwrap();
        assert_eq!(out, map(&[("A", "1")]));
        assert!(
            rewrite_map(
                std::slice::from_ref(&op),
                map(&[("a", "1"), ("A", "2")]),
                &Upper
            )
            .is_err()
        );
        assert!(rewrite_map(&[op], map(&[("a", "1")]), &NoTemplates).is_err());
    }

    fn merge(m: RewriteMerge) -> ExternalSecretRewrite {
        ExternalSecretRewrite {
            merge: Some(m),
            ..Default::default()
        }
    }

    #[test]
    fn merge_extract_hoists_keys_with_priority_last() {
        let data = map(&[
            ("a", r#"{"user":"a","x":1}"#),
            ("b", r#"{"user":"b"}"#),
            ("c", r#"{"y":{"z":true}}"#),
        ]);
        let op = merge(RewriteMerge {
            priority: vec!["a".into()],
            conflict_policy: Some(MergeConflictPolicy::Ignore),
            ..Default::default()
        });
        let out = rewrite_map(&[op], data, &NoTemplates).unwrap();
        assert_eq!(
            out,
            map(&[("user", "a"), ("x", "1"), ("y", r#"{"z":true}"#)])
        );
    }

    #[test]
    fn merge_conflicts_and_missing_priority_fail_by_default() {
        let data = map(&[("a", r#"{"user":"a"}"#), ("b", r#"{"user":"b"}"#)]);
        assert!(
            rewrite_map(
                &[merge(RewriteMerge::default())],
                data.clone(),
                &NoTemplates
            )
            .is_err()
        );
        let missing = merge(RewriteMerge {
            priority: vec!["zz".into()],
            conflict_policy: Some(MergeConflictPolicy::Ignore),
            ..Default::default()
        });
        assert!(rewrite_map(&[missing], data.clone(), &NoTemplates).is_err());
        let ignore = merge(RewriteMerge {
            priority: vec!["zz".into()],
            priority_policy: Some(MergePriorityPolicy::IgnoreNotFound),
            conflict_policy: Some(MergeConflictPolicy::Ignore),
            ..Default::default()
        });
        assert_eq!(
            rewrite_map(&[ignore], data, &NoTemplates).unwrap(),
            map(&[("user", "b")])
        );
    }

    #[test]
    fn merge_json_writes_into_and_keeps_inputs() {
        let data = map(&[("a", r#"{"k1":"v1"}"#), ("b", r#"{"k2":"v2"}"#)]);
        let op = merge(RewriteMerge {
            into: Some("all".into()),
            strategy: Some(MergeStrategy::Json),
            ..Default::default()
        });
        let out = rewrite_map(&[op], data, &NoTemplates).unwrap();
        assert_eq!(out["all"], br#"{"k1":"v1","k2":"v2"}"#);
        assert!(out.contains_key("a") && out.contains_key("b"));
        let no_into = merge(RewriteMerge {
            strategy: Some(MergeStrategy::Json),
            ..Default::default()
        });
        assert!(rewrite_map(&[no_into], map(&[("a", "{}")]), &NoTemplates).is_err());
    }

    #[test]
    fn merge_rejects_non_objects() {
        assert!(
            rewrite_map(
                &[merge(RewriteMerge::default())],
                map(&[("a", "[1]")]),
                &NoTemplates
            )
            .is_err()
        );
    }
}
