//! Kubernetes label selectors (`matchLabels` and `matchExpressions`), evaluated in memory.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether the labels satisfy the selector. An empty selector matches everything; an unknown
/// operator matches nothing (the API server would have rejected it).
#[must_use]
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .as_ref()
        .is_none_or(|ml| ml.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let exprs_ok = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
                "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
                "Exists" => labels.contains_key(&e.key),
                "DoesNotExist" => !labels.contains_key(&e.key),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("team", "a")])),
            match_expressions: Some(vec![
                expr("env", "In", &["prod", "stage"]),
                expr("legacy", "DoesNotExist", &[]),
            ]),
        };
        assert!(matches(&sel, &labels(&[("team", "a"), ("env", "prod")])));
        assert!(!matches(&sel, &labels(&[("team", "a"), ("env", "dev")])));
        assert!(!matches(
            &sel,
            &labels(&[("team", "a"), ("env", "prod"), ("legacy", "1")])
        ));
        assert!(!matches(&sel, &labels(&[("env", "prod")])));
        assert!(matches(&LabelSelector::default(), &labels(&[])));
        let notin = LabelSelector {
            match_expressions: Some(vec![
                expr("env", "NotIn", &["prod"]),
                expr("x", "Exists", &[]),
            ]),
            ..Default::default()
        };
        assert!(matches(&notin, &labels(&[("x", "")])));
        assert!(!matches(&notin, &labels(&[("x", ""), ("env", "prod")])));
        let bad = LabelSelector {
            match_expressions: Some(vec![expr("x", "Near", &[])]),
            ..Default::default()
        };
        assert!(!matches(&bad, &labels(&[("x", "1")])));
    }
}
