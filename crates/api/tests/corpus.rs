//! The manifest corpus under `tests/corpus/`: every document
//! - deserializes into the typed resource its `kind` names and serializes back to exactly the
//!   same JSON (no field lost, none invented),
//! - is valid against the generated CRD schema (types, enums, required fields, patterns, no
//!   unknown fields outside `x-kubernetes-preserve-unknown-fields`),
//! - passes `eso_api::validate`.
//!
//! Two more tests check that the corpus, taken together, sets every field of every schema and
//! uses every enum value, so a type change cannot slip through untested.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use eso_api::generators::{
    ClusterGenerator, ECRAuthorizationToken, Fake, GeneratorState, Password, SSHKey,
    STSSessionToken, UUID, VaultDynamicSecret, Webhook, validate_cluster_generator,
    validate_ecr_authorization_token, validate_password, validate_sts_session_token,
    validate_vault_dynamic_secret, validate_webhook,
};
use eso_api::validate::{
    FieldError, validate_cluster_external_secret, validate_cluster_push_secret,
    validate_external_secret, validate_push_secret, validate_secret_store,
};
use eso_api::{
    ClusterExternalSecret, ClusterPushSecret, ClusterSecretStore, ExternalSecret, PushSecret,
    SecretStore, crds,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One YAML document of the corpus.
struct Doc {
    /// `file.yaml#index`, for messages.
    origin: String,
    value: Value,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn load_corpus() -> Vec<Doc> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let values: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (i, value) in values.into_iter().enumerate() {
            docs.push(Doc {
                origin: format!("{name}#{i}"),
                value,
            });
        }
    }
    docs
}

fn kind_of(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

/// Lists the paths where two JSON values differ.
fn diff(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for key in e.keys().chain(a.keys()).collect::<BTreeSet<_>>() {
                let p = format!("{path}.{key}");
                match (e.get(key), a.get(key)) {
                    (Some(ev), Some(av)) => diff(ev, av, &p, out),
                    (Some(_), None) => out.push(format!("{p}: lost")),
                    (None, Some(av)) => out.push(format!("{p}: invented ({av})")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff(ev, av, &format!("{path}[{i}]"), out);
            }
        }
        _ if expected != actual => out.push(format!("{path}: {expected} became {actual}")),
        _ => {}
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<T, String> {
    let typed: T =
        serde_json::from_value(doc.clone()).map_err(|e| format!("does not parse: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut diffs = Vec::new();
    diff(doc, &back, "", &mut diffs);
    if diffs.is_empty() {
        Ok(typed)
    } else {
        Err(format!("round trip changed it:\n  {}", diffs.join("\n  ")))
    }
}

/// Round-trips a document through its typed resource and runs the matching validator.
fn check_typed(doc: &Value) -> Result<Vec<FieldError>, String> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let expected_version = match kind_of(doc) {
        "PushSecret" | "ClusterPushSecret" => "external-secrets.io/v1alpha1",
        "ExternalSecret" | "ClusterExternalSecret" | "SecretStore" | "ClusterSecretStore" => {
            "external-secrets.io/v1"
        }
        _ => "generators.external-secrets.io/v1alpha1",
    };
    if api_version != expected_version {
        return Err(format!(
            "apiVersion {api_version:?}, expected {expected_version:?}"
        ));
    }
    Ok(match kind_of(doc) {
        "ExternalSecret" => validate_external_secret(&round_trip::<ExternalSecret>(doc)?.spec),
        "ClusterExternalSecret" => {
            validate_cluster_external_secret(&round_trip::<ClusterExternalSecret>(doc)?.spec)
        }
        "SecretStore" => validate_secret_store(&round_trip::<SecretStore>(doc)?.spec, false),
        "ClusterSecretStore" => {
            validate_secret_store(&round_trip::<ClusterSecretStore>(doc)?.spec, true)
        }
        "PushSecret" => validate_push_secret(&round_trip::<PushSecret>(doc)?.spec),
        "ClusterPushSecret" => {
            validate_cluster_push_secret(&round_trip::<ClusterPushSecret>(doc)?.spec)
        }
        "Password" => validate_password(&round_trip::<Password>(doc)?.spec),
        "UUID" => {
            round_trip::<UUID>(doc)?;
            Vec::new()
        }
        "SSHKey" => {
            round_trip::<SSHKey>(doc)?;
            Vec::new()
        }
        "Fake" => {
            round_trip::<Fake>(doc)?;
            Vec::new()
        }
        "ECRAuthorizationToken" => {
            validate_ecr_authorization_token(&round_trip::<ECRAuthorizationToken>(doc)?.spec)
        }
        "STSSessionToken" => validate_sts_session_token(&round_trip::<STSSessionToken>(doc)?.spec),
        "VaultDynamicSecret" => {
            validate_vault_dynamic_secret(&round_trip::<VaultDynamicSecret>(doc)?.spec)
        }
        "Webhook" => validate_webhook(&round_trip::<Webhook>(doc)?.spec),
        "ClusterGenerator" => {
            validate_cluster_generator(&round_trip::<ClusterGenerator>(doc)?.spec)
        }
        "GeneratorState" => {
            round_trip::<GeneratorState>(doc)?;
            Vec::new()
        }
        other => return Err(format!("unknown kind {other:?}")),
    })
}

/// The openAPIV3Schema of every kind, as JSON.
fn schemas() -> BTreeMap<String, Value> {
    crds::all()
        .into_iter()
        .map(|crd| {
            let schema = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .map(|s| serde_json::to_value(s).unwrap())
                .unwrap();
            (crd.spec.names.kind.clone(), schema)
        })
        .collect()
}

/// A schema node's identity: its JSON without descriptions, defaults and nullability, so the
/// same Rust type used in several places (`SecretKeySelector`, `ExternalSecretSpec` inside a
/// ClusterExternalSecret) counts once.
fn node_id(node: &Value) -> String {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "description" | "default" | "nullable"))
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    strip(node).to_string()
}

fn enum_id(values: &[Value]) -> String {
    let mut names: Vec<String> = values.iter().map(Value::to_string).collect();
    names.sort();
    names.join("|")
}

/// What the corpus must cover (from the schemas) and what it does cover (from the documents).
#[derive(Default)]
struct Coverage {
    /// (node id, property) → the first schema path where it appears.
    fields: BTreeMap<(String, String), String>,
    /// (enum id, value) → the first schema path where it appears.
    enums: BTreeMap<(String, String), String>,
}

impl Coverage {
    fn add_schema(&mut self, node: &Value, path: &str) {
        if let Some(values) = node.get("enum").and_then(Value::as_array) {
            for v in values {
                self.enums
                    .entry((enum_id(values), v.to_string()))
                    .or_insert_with(|| path.to_owned());
            }
        }
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            let id = node_id(node);
            for (name, prop) in props {
                let p = format!("{path}.{name}");
                self.fields
                    .entry((id.clone(), name.clone()))
                    .or_insert_with(|| p.clone());
                self.add_schema(prop, &p);
            }
        }
        if let Some(items) = node.get("items") {
            self.add_schema(items, &format!("{path}[]"));
        }
        if let Some(values) = node.get("additionalProperties") {
            self.add_schema(values, &format!("{path}.*"));
        }
    }
}

/// Validates `value` against a structural schema node, recording what it covers.
fn check_schema(
    schema: &Value,
    value: &Value,
    path: &str,
    seen: &mut Coverage,
    errs: &mut Vec<String>,
) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            errs.push(format!("{path}: null is not allowed"));
        }
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if values.contains(value) {
            seen.enums
                .insert((enum_id(values), value.to_string()), path.to_owned());
        } else {
            errs.push(format!("{path}: {value} is not one of {values:?}"));
        }
    }
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let type_ok = match schema.get("type").and_then(Value::as_str) {
        _ if int_or_string => value.is_string() || value.is_i64() || value.is_u64(),
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        errs.push(format!(
            "{path}: {value} does not have type {}",
            schema["type"]
        ));
        return;
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            errs.push(format!("{path}: longer than maxLength"));
        }
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            errs.push(format!("{path}: shorter than minLength"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !regex::Regex::new(pattern).unwrap().is_match(s)
        {
            errs.push(format!("{path}: {s:?} does not match {pattern}"));
        }
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            check_schema(&schema["items"], item, &format!("{path}[{i}]"), seen, errs);
        }
    }
    if let Some(obj) = value.as_object() {
        let n = obj.len() as u64;
        if schema
            .get("minProperties")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
        {
            errs.push(format!("{path}: fewer than minProperties"));
        }
        if schema
            .get("maxProperties")
            .and_then(Value::as_u64)
            .is_some_and(|m| n > m)
        {
            errs.push(format!("{path}: more than maxProperties"));
        }
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = req.as_str().unwrap_or_default();
            // The API server applies defaults before it validates, so a required field with a
            // default may be left out (upstream's Password `length`, `noUpper`, `allowRepeat`).
            let defaulted = schema
                .get("properties")
                .and_then(|p| p.get(req))
                .is_some_and(|p| p.get("default").is_some());
            if !obj.contains_key(req) && !defaulted {
                errs.push(format!("{path}: required field {req:?} is missing"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        let preserve =
            schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        let id = node_id(schema);
        for (key, child) in obj {
            let p = format!("{path}.{key}");
            if let Some(prop) = props.and_then(|ps| ps.get(key)) {
                seen.fields.insert((id.clone(), key.clone()), p.clone());
                check_schema(prop, child, &p, seen, errs);
            } else if let Some(values) = schema.get("additionalProperties") {
                check_schema(values, child, &p, seen, errs);
            } else if !preserve {
                errs.push(format!("{p}: unknown field"));
            }
        }
    }
}

/// Checks every document and returns what the corpus covers.
fn check_corpus() -> Coverage {
    let docs = load_corpus();
    let schemas = schemas();
    let mut seen = Coverage::default();
    let mut failures = Vec::new();
    for doc in &docs {
        let mut errs = Vec::new();
        match check_typed(&doc.value) {
            Ok(violations) => errs.extend(violations.iter().map(|v| format!("validate: {v}"))),
            Err(e) => errs.push(e),
        }
        if let Some(schema) = schemas.get(kind_of(&doc.value)) {
            // kube's root schemas leave apiVersion, kind and metadata to the apiserver.
            let mut body = doc.value.clone();
            if let Some(obj) = body.as_object_mut() {
                for key in ["apiVersion", "kind", "metadata"] {
                    obj.remove(key);
                }
            }
            check_schema(schema, &body, "", &mut seen, &mut errs);
        }
        if !errs.is_empty() {
            failures.push(format!("{}:\n  {}", doc.origin, errs.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "corpus failures:\n{}",
        failures.join("\n")
    );
    seen
}

fn required_coverage() -> Coverage {
    let mut required = Coverage::default();
    for (kind, schema) in schemas() {
        required.add_schema(&schema, &kind);
    }
    required
}

#[test]
fn corpus_is_large_enough() {
    let files = std::fs::read_dir(corpus_dir()).unwrap().count();
    assert!(files >= 45, "only {files} corpus files");
    let docs = load_corpus();
    let kinds: BTreeSet<&str> = docs.iter().map(|d| kind_of(&d.value)).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ClusterExternalSecret",
            "ClusterGenerator",
            "ClusterPushSecret",
            "ClusterSecretStore",
            "ECRAuthorizationToken",
            "ExternalSecret",
            "Fake",
            "GeneratorState",
            "Password",
            "PushSecret",
            "SSHKey",
            "STSSessionToken",
            "SecretStore",
            "UUID",
            "VaultDynamicSecret",
            "Webhook",
        ])
    );
}

#[test]
fn corpus_round_trips_and_validates() {
    check_corpus();
}

#[test]
fn corpus_covers_every_field() {
    let seen = check_corpus();
    let required = required_coverage();
    let missing: Vec<&String> = required
        .fields
        .iter()
        .filter(|(key, _)| !seen.fields.contains_key(*key))
        .map(|(_, path)| path)
        .collect();
    assert!(
        missing.is_empty(),
        "no corpus document sets these fields:\n{}",
        missing
            .iter()
            .map(|p| format!("  {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn corpus_covers_every_enum_value() {
    let seen = check_corpus();
    let missing: Vec<String> = required_coverage()
        .enums
        .iter()
        .filter(|(key, _)| !seen.enums.contains_key(*key))
        .map(|((_, value), path)| format!("  {value} (at {path})"))
        .collect();
    assert!(
        missing.is_empty(),
        "no corpus document uses these enum values:\n{}",
        missing.join("\n")
    );
}

#[test]
fn unknown_provider_survives_round_trip() {
    let docs = load_corpus();
    let unknown: Vec<&Doc> = docs
        .iter()
        .filter(|d| {
            matches!(kind_of(&d.value), "SecretStore" | "ClusterSecretStore")
                && d.value["spec"]["provider"].get("akeyless").is_some()
        })
        .collect();
    assert!(
        !unknown.is_empty(),
        "the corpus needs a store with an untyped provider"
    );
    for doc in unknown {
        let store: SecretStore = serde_json::from_value(doc.value.clone()).unwrap();
        assert_eq!(store.spec.provider.key(), Some("akeyless"));
        assert_eq!(
            serde_json::to_value(&store).unwrap()["spec"]["provider"],
            doc.value["spec"]["provider"]
        );
    }
}

#[test]
fn schema_check_rejects_bad_documents() {
    let schemas = schemas();
    let es = &schemas["ExternalSecret"];
    let bad = serde_json::json!({
        "spec": {
            "refreshPolicy": "Sometimes",
            "data": [{"secretKey": "bad key", "remoteRef": {}}],
            "unknownField": true,
        }
    });
    let mut errs = Vec::new();
    check_schema(es, &bad, "", &mut Coverage::default(), &mut errs);
    let joined = errs.join("\n");
    for expected in [
        ".spec.refreshPolicy: \"Sometimes\" is not one of",
        ".spec.data[0].secretKey: \"bad key\" does not match",
        ".spec.data[0].remoteRef: required field \"key\" is missing",
        ".spec.unknownField: unknown field",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in:\n{joined}"
        );
    }
}

#[test]
fn round_trip_reports_lost_and_invented_fields() {
    let mut out = Vec::new();
    diff(
        &serde_json::json!({"a": 1, "b": {"c": 2}}),
        &serde_json::json!({"b": {"c": 3}, "d": true}),
        "",
        &mut out,
    );
    assert_eq!(out, [".a: lost", ".b.c: 2 became 3", ".d: invented (true)"]);
}
