//! The checked-in CRDs under `deploy/crds/` are exactly what the Rust types generate, and every
//! generated schema is a structural schema the apiserver accepts.
//!
//! After changing an API type, regenerate the files with
//! `ESO_UPDATE_CRDS=1 cargo test -p eso-api --test crds`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use eso_api::crds;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds")
}

#[test]
fn checked_in_crds_match_the_types() {
    let dir = crd_dir();
    let update = std::env::var("ESO_UPDATE_CRDS").is_ok_and(|v| v == "1");
    if update {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut expected_files = BTreeSet::new();
    let mut stale = Vec::new();
    for crd in crds::all() {
        let name = crds::file_name(&crd);
        let path = dir.join(&name);
        let generated = crds::to_yaml(&crd);
        expected_files.insert(name.clone());
        if update {
            std::fs::write(&path, &generated).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(generated.as_str()) {
            stale.push(name);
        }
    }
    // A CRD file nothing generates any more is stale too.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && !expected_files.contains(&name) {
            if update {
                std::fs::remove_file(dir.join(&name)).unwrap();
            } else {
                stale.push(format!("{name} (not generated any more)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "deploy/crds/ is out of date: {stale:?}\n\
         Regenerate with: ESO_UPDATE_CRDS=1 cargo test -p eso-api --test crds"
    );
}

#[test]
fn file_names_follow_upstream() {
    let names: Vec<String> = crds::all().iter().map(crds::file_name).collect();
    assert_eq!(
        names,
        [
            "external-secrets.io_externalsecrets.yaml",
            "external-secrets.io_clusterexternalsecrets.yaml",
            "external-secrets.io_secretstores.yaml",
            "external-secrets.io_clustersecretstores.yaml",
            "external-secrets.io_pushsecrets.yaml",
            "external-secrets.io_clusterpushsecrets.yaml",
            "generators.external-secrets.io_passwords.yaml",
            "generators.external-secrets.io_uuids.yaml",
            "generators.external-secrets.io_sshkeys.yaml",
            "generators.external-secrets.io_fakes.yaml",
            "generators.external-secrets.io_ecrauthorizationtokens.yaml",
            "generators.external-secrets.io_stssessiontokens.yaml",
            "generators.external-secrets.io_vaultdynamicsecrets.yaml",
            "generators.external-secrets.io_webhooks.yaml",
            "generators.external-secrets.io_clustergenerators.yaml",
            "generators.external-secrets.io_generatorstates.yaml",
        ]
    );
}

#[test]
fn yaml_reads_back_as_the_same_crd() {
    for crd in crds::all() {
        let yaml = crds::to_yaml(&crd);
        let back: CustomResourceDefinition = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, crd, "{}", crds::file_name(&crd));
        assert_eq!(crds::to_yaml(&back), yaml, "output must be deterministic");
    }
}

#[test]
fn names_scopes_and_versions_match_upstream() {
    // (kind, plural, scope, short names, version)
    let expected = [
        (
            "ExternalSecret",
            "externalsecrets",
            "Namespaced",
            vec!["es"],
            "v1",
        ),
        (
            "ClusterExternalSecret",
            "clusterexternalsecrets",
            "Cluster",
            vec!["ces"],
            "v1",
        ),
        (
            "SecretStore",
            "secretstores",
            "Namespaced",
            vec!["ss"],
            "v1",
        ),
        (
            "ClusterSecretStore",
            "clustersecretstores",
            "Cluster",
            vec!["css"],
            "v1",
        ),
        (
            "PushSecret",
            "pushsecrets",
            "Namespaced",
            vec!["ps"],
            "v1alpha1",
        ),
        (
            "ClusterPushSecret",
            "clusterpushsecrets",
            "Cluster",
            vec![],
            "v1alpha1",
        ),
        ("Password", "passwords", "Namespaced", vec![], "v1alpha1"),
        ("UUID", "uuids", "Namespaced", vec![], "v1alpha1"),
        ("SSHKey", "sshkeys", "Namespaced", vec![], "v1alpha1"),
        ("Fake", "fakes", "Namespaced", vec![], "v1alpha1"),
        (
            "ECRAuthorizationToken",
            "ecrauthorizationtokens",
            "Namespaced",
            vec![],
            "v1alpha1",
        ),
        (
            "STSSessionToken",
            "stssessiontokens",
            "Namespaced",
            vec![],
            "v1alpha1",
        ),
        (
            "VaultDynamicSecret",
            "vaultdynamicsecrets",
            "Namespaced",
            vec![],
            "v1alpha1",
        ),
        ("Webhook", "webhooks", "Namespaced", vec![], "v1alpha1"),
        (
            "ClusterGenerator",
            "clustergenerators",
            "Cluster",
            vec![],
            "v1alpha1",
        ),
        (
            "GeneratorState",
            "generatorstates",
            "Namespaced",
            vec!["gs"],
            "v1alpha1",
        ),
    ];
    let all = crds::all();
    assert_eq!(all.len(), expected.len());
    for (crd, (kind, plural, scope, short, version)) in all.iter().zip(expected) {
        let names = &crd.spec.names;
        let generator = crd.spec.group == "generators.external-secrets.io";
        let group = if generator {
            "generators.external-secrets.io"
        } else {
            "external-secrets.io"
        };
        let categories: &[&str] = if generator {
            &["external-secrets", "external-secrets-generators"]
        } else {
            &["external-secrets"]
        };
        assert_eq!(crd.spec.group, group, "{kind}");
        assert_eq!(names.kind, kind);
        assert_eq!(names.plural, plural);
        assert_eq!(
            names.singular.as_deref(),
            Some(kind.to_lowercase().as_str())
        );
        assert_eq!(
            names.list_kind.as_deref(),
            Some(format!("{kind}List").as_str())
        );
        assert_eq!(crd.spec.scope, scope, "{kind}");
        assert_eq!(
            names.short_names.clone().unwrap_or_default(),
            short,
            "{kind}"
        );
        assert_eq!(
            names.categories.clone().unwrap_or_default(),
            categories,
            "{kind}"
        );
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(format!("{plural}.{group}").as_str())
        );
        assert_eq!(
            crd.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("external-secrets.io/component"))
                .map(String::as_str),
            Some("controller"),
            "{kind}"
        );
        let [v] = crd.spec.versions.as_slice() else {
            panic!("{kind}: expected one version");
        };
        assert_eq!(v.name, version);
        assert!(v.served && v.storage, "{kind}");
        // Upstream's GeneratorState has a status but no status subresource.
        assert_eq!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            kind != "GeneratorState",
            "{kind}: status subresource"
        );
        // Upstream requires no `spec` on generator objects (a UUID has none).
        let root_required = v
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| s.required.clone())
            .unwrap_or_default();
        assert_eq!(
            root_required.contains(&"spec".to_owned()),
            !generator,
            "{kind}: spec required"
        );
    }
}

#[test]
fn printer_columns_match_upstream() {
    let columns = |kind: &str| -> Vec<(String, String, String)> {
        let crd = crds::all()
            .into_iter()
            .find(|c| c.spec.names.kind == kind)
            .unwrap();
        crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.name, c.type_, c.json_path))
            .collect()
    };
    let col = |n: &str, t: &str, p: &str| (n.to_owned(), t.to_owned(), p.to_owned());
    let ready_reason = r#".status.conditions[?(@.type=="Ready")].reason"#;
    let ready_status = r#".status.conditions[?(@.type=="Ready")].status"#;
    assert_eq!(
        columns("ExternalSecret"),
        [
            col("StoreType", "string", ".spec.secretStoreRef.kind"),
            col("Store", "string", ".spec.secretStoreRef.name"),
            col("Refresh Interval", "string", ".spec.refreshInterval"),
            col("Status", "string", ready_reason),
            col("Ready", "string", ready_status),
            col("Last Sync", "date", ".status.refreshTime"),
        ]
    );
    assert_eq!(
        columns("ClusterExternalSecret"),
        [
            col(
                "Store",
                "string",
                ".spec.externalSecretSpec.secretStoreRef.name"
            ),
            col("Refresh Interval", "string", ".spec.refreshTime"),
            col("Ready", "string", ready_status),
        ]
    );
    assert_eq!(
        columns("PushSecret"),
        [
            col("AGE", "date", ".metadata.creationTimestamp"),
            col("Status", "string", ready_reason),
            col("Last Sync", "date", ".status.refreshTime"),
        ]
    );
    assert_eq!(
        columns("ClusterPushSecret"),
        [
            col("AGE", "date", ".metadata.creationTimestamp"),
            col("Status", "string", ready_reason),
        ]
    );
    assert_eq!(columns("SecretStore"), columns("ClusterSecretStore"));
    assert_eq!(
        columns("GeneratorState"),
        [
            col("GC Deadline", "string", ".spec.garbageCollectionDeadline"),
            col("Age", "date", ".metadata.creationTimestamp"),
        ]
    );
    assert!(columns("Password").is_empty());
}

/// Checks the structural-schema rules of apiextensions/v1 on one node and below, collecting
/// every violation with its path.
fn check_structural(node: &Value, path: &str, in_junctor: bool, errs: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        errs.push(format!("{path}: a schema must be an object"));
        return;
    };
    for forbidden in ["$ref", "definitions", "$defs", "$schema", "const"] {
        if obj.contains_key(forbidden) {
            errs.push(format!("{path}: `{forbidden}` is not allowed"));
        }
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields");
    if preserve.is_some_and(|v| v != &Value::Bool(true)) {
        errs.push(format!(
            "{path}: x-kubernetes-preserve-unknown-fields must be true"
        ));
    }
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if in_junctor {
        // Inside anyOf/oneOf/allOf/not only value validations may appear.
        for key in [
            "type",
            "description",
            "default",
            "nullable",
            "additionalProperties",
            "properties",
            "items",
        ] {
            if obj.contains_key(key) {
                errs.push(format!(
                    "{path}: `{key}` is not allowed inside anyOf/oneOf/allOf/not"
                ));
            }
        }
    } else if !obj.contains_key("type") && !int_or_string && preserve.is_none() {
        errs.push(format!("{path}: every node needs a type"));
    }
    if let Some(t) = obj.get("type")
        && !matches!(
            t.as_str(),
            Some("object" | "array" | "string" | "integer" | "number" | "boolean")
        )
    {
        errs.push(format!("{path}: invalid type {t}"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        errs.push(format!(
            "{path}: properties and additionalProperties are mutually exclusive"
        ));
    }
    if int_or_string && obj.get("type").is_some() {
        errs.push(format!(
            "{path}: x-kubernetes-int-or-string nodes must not set a type"
        ));
    }
    if let Some(required) = obj.get("required").and_then(Value::as_array) {
        let props = obj.get("properties").and_then(Value::as_object);
        for r in required {
            let name = r.as_str().unwrap_or_default();
            if !props.is_some_and(|p| p.contains_key(name)) {
                errs.push(format!("{path}: required property {name:?} is not defined"));
            }
        }
    }
    if let (Some(default), Some(values)) = (obj.get("default"), obj.get("enum"))
        && !values.as_array().is_some_and(|v| v.contains(default))
    {
        errs.push(format!(
            "{path}: default {default} is not one of the enum values"
        ));
    }
    if let (Some(default), Some(t)) = (obj.get("default"), obj.get("type").and_then(Value::as_str))
    {
        let matches = match t {
            "string" => default.is_string(),
            "boolean" => default.is_boolean(),
            "integer" => default.is_i64() || default.is_u64(),
            "number" => default.is_number(),
            "array" => default.is_array(),
            "object" => default.is_object(),
            _ => false,
        };
        if !matches {
            errs.push(format!("{path}: default {default} is not of type {t}"));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            check_structural(prop, &format!("{path}.{name}"), in_junctor, errs);
        }
    }
    match obj.get("additionalProperties") {
        Some(Value::Object(_)) => {
            check_structural(
                &obj["additionalProperties"],
                &format!("{path}.*"),
                in_junctor,
                errs,
            );
        }
        Some(Value::Bool(_)) => {
            errs.push(format!(
                "{path}: additionalProperties must be a schema (use x-kubernetes-preserve-unknown-fields)"
            ));
        }
        _ => {}
    }
    match obj.get("items") {
        Some(items @ Value::Object(_)) => {
            check_structural(items, &format!("{path}[]"), in_junctor, errs);
        }
        Some(_) => errs.push(format!("{path}: items must be a single schema")),
        None if obj.get("type").and_then(Value::as_str) == Some("array") => {
            errs.push(format!("{path}: arrays need an items schema"));
        }
        None => {}
    }
    for junctor in ["anyOf", "oneOf", "allOf"] {
        if let Some(subs) = obj.get(junctor).and_then(Value::as_array) {
            for (i, sub) in subs.iter().enumerate() {
                check_structural(sub, &format!("{path}.{junctor}[{i}]"), true, errs);
            }
        }
    }
    if let Some(not) = obj.get("not") {
        check_structural(not, &format!("{path}.not"), true, errs);
    }
}

#[test]
fn schemas_are_structural() {
    let mut errs = Vec::new();
    for crd in crds::all() {
        for version in &crd.spec.versions {
            let schema = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .unwrap_or_else(|| panic!("{} has no schema", crd.spec.names.kind));
            let value = serde_json::to_value(schema).unwrap();
            let root = format!("{}/{}", crd.spec.names.kind, version.name);
            check_structural(&value, &root, false, &mut errs);
            if value.get("type").and_then(Value::as_str) != Some("object") {
                errs.push(format!("{root}: the root must be an object"));
            }
        }
    }
    assert!(
        errs.is_empty(),
        "non-structural schema nodes:\n{}",
        errs.join("\n")
    );
}

#[test]
fn structural_check_catches_violations() {
    let bad = serde_json::json!({
        "type": "object",
        "properties": {
            "untyped": {"description": "no type"},
            "both": {"type": "object", "properties": {"a": {"type": "string"}},
                     "additionalProperties": {"type": "string"}},
            "ref": {"$ref": "#/definitions/x"},
            "typed_any_of": {"type": "string", "anyOf": [{"type": "string"}]},
            "bad_default": {"type": "string", "enum": ["A"], "default": "B"},
        },
        "required": ["missing"],
    });
    let mut errs = Vec::new();
    check_structural(&bad, "root", false, &mut errs);
    let joined = errs.join("\n");
    for expected in [
        "root: required property \"missing\"",
        "root.untyped: every node needs a type",
        "root.both: properties and additionalProperties",
        "root.ref: `$ref` is not allowed",
        "root.typed_any_of.anyOf[0]: `type` is not allowed",
        "root.bad_default: default \"B\" is not one of the enum values",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in:\n{joined}"
        );
    }
}

#[test]
fn provider_object_keeps_unknown_keys() {
    let store = crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "SecretStore")
        .unwrap();
    let schema = serde_json::to_value(
        store.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    let provider = &schema["properties"]["spec"]["properties"]["provider"];
    assert_eq!(provider["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(provider["minProperties"], 1);
    assert_eq!(provider["maxProperties"], 1);
    let typed: BTreeSet<&str> = provider["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        typed,
        BTreeSet::from([
            "aws",
            "azurekv",
            "chef",
            "conjur",
            "doppler",
            "fake",
            "gcpsm",
            "gitlab",
            "infisical",
            "kubernetes",
            "onepassword",
            "openBao",
            "vault",
            "webhook"
        ])
    );
}
