//! The Prometheus text the operator serves: the metrics exporter's own output, minus the
//! activity series of ExternalSecrets that no longer exist.
//!
//! Upstream deletes an ExternalSecret's activity series (`externalsecret_sync_calls_total`,
//! `externalsecret_reconcile_duration`, ... with `name` and `namespace` labels) when the object
//! is deleted (`RemoveMetrics`). The `metrics` facade cannot delete a series, so the text is
//! filtered on its way out against the objects the status series know (see
//! [`object_metrics`](crate::object_metrics)).

use std::sync::Arc;

use crate::object_metrics::StatusSeries;

/// The `name` and `namespace` labels of one exposition line (`metric{k="v",...} value`).
#[must_use]
pub fn object_labels(line: &str) -> (Option<&str>, Option<&str>) {
    let (mut name, mut namespace) = (None, None);
    let Some(labels) = line
        .split_once('{')
        .and_then(|(_, rest)| rest.rsplit_once('}'))
        .map(|(labels, _)| labels)
    else {
        return (None, None);
    };
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        // Values are escaped with backslashes; find the closing quote.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        match key.trim_start_matches(',') {
            "name" => name = Some(&after[..end]),
            "namespace" => namespace = Some(&after[..end]),
            _ => {}
        }
        rest = &after[end + 1..];
    }
    (name, namespace)
}

/// The exporter's text without the per-object activity series (`externalsecret_*{name,
/// namespace}`) of ExternalSecrets that `known` (the ExternalSecret status series) does not
/// hold: those objects were deleted. Series without both labels, and other metric families,
/// pass unchanged.
#[must_use]
pub fn without_deleted_objects(text: &str, known: &[Arc<StatusSeries>]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let stale = line.starts_with("externalsecret_")
            && matches!(object_labels(line), (Some(name), Some(ns))
                if !known.iter().any(|k| k.contains(ns, name)));
        if !stale {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn activity_series_of_deleted_external_secrets_are_not_exported() {
        let known = Arc::new(StatusSeries::external_secrets());
        known.observe_pairs("ns", "kept", Vec::new());
        let known = [known];
        let text = "# TYPE externalsecret_sync_calls_total counter\n\
            externalsecret_sync_calls_total{name=\"kept\",namespace=\"ns\"} 3\n\
            externalsecret_sync_calls_total{name=\"gone\",namespace=\"ns\"} 2\n\
            externalsecret_reconcile_duration{namespace=\"ns\",name=\"gone\"} 5\n\
            externalsecret_provider_api_calls_count{provider=\"fake\",call=\"get\"} 7\n\
            leader_election_master_status{name=\"gone\"} 1\n";
        let out = without_deleted_objects(text, &known);
        assert_eq!(
            out,
            "# TYPE externalsecret_sync_calls_total counter\n\
            externalsecret_sync_calls_total{name=\"kept\",namespace=\"ns\"} 3\n\
            externalsecret_provider_api_calls_count{provider=\"fake\",call=\"get\"} 7\n\
            leader_election_master_status{name=\"gone\"} 1\n"
        );
    }

    #[test]
    fn label_values_with_escaped_quotes_and_commas_are_read_whole() {
        let line = r#"externalsecret_sync_calls_total{a="x\",name=\"no",name="db,1",namespace="team \"a\""} 1"#;
        assert_eq!(object_labels(line), (Some("db,1"), Some(r#"team \"a\""#)));
        assert_eq!(object_labels("externalsecret_up 1"), (None, None));
    }
}
