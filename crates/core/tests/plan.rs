//! The plan's policy and precedence rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use eso_api::labels::{ANNOTATION_DATA_HASH, LABEL_CREATED_BY, LABEL_MANAGED};
use eso_api::{CreationPolicy, DeletionPolicy, ExternalSecretTemplate, reasons};
use eso_core::fetch::Fetched;
use eso_core::hash;
use eso_core::plan::{Plan, PlanError, PlanInput, SecretAction, plan};
use eso_core::testing::{EsBuilder, bytes, secret};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

fn run(
    es: &eso_api::ExternalSecret,
    data: &[(&str, &str)],
    existing: Option<&Secret>,
) -> Result<Plan, PlanError> {
    run_owned(es, data, existing, &[])
}

fn run_owned(
    es: &eso_api::ExternalSecret,
    data: &[(&str, &str)],
    existing: Option<&Secret>,
    owned: &[&str],
) -> Result<Plan, PlanError> {
    let fetched = Fetched {
        data: bytes(data),
        missing: vec![],
        ..Default::default()
    };
    let owned: BTreeSet<String> = owned.iter().map(|s| (*s).to_owned()).collect();
    plan(PlanInput {
        es,
        fetched: &fetched,
        existing,
        previously_owned_keys: &owned,
    })
}

fn written(plan: &Plan) -> &Secret {
    match &plan.action {
        SecretAction::Write { secret, .. } => secret,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn data_of(secret: &Secret) -> std::collections::BTreeMap<String, Vec<u8>> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

#[test]
fn owner_policy_creates_the_secret_with_upstream_markers() {
    let es = EsBuilder::new("db")
        .uid("uid-1")
        .label("team", "a")
        .data("password", "db/pass")
        .build();
    let p = run(&es, &[("password", "s3cr3t")], None).unwrap();
    assert!(matches!(p.action, SecretAction::Write { create: true, .. }));
    let s = written(&p);
    assert_eq!(s.metadata.name.as_deref(), Some("db"));
    let labels = s.metadata.labels.clone().unwrap();
    assert_eq!(labels[LABEL_MANAGED], "true");
    assert_eq!(
        labels["team"], "a",
        "the ExternalSecret's labels are copied"
    );
    assert_eq!(
        labels[LABEL_CREATED_BY],
        hash::created_by_value("default", "db")
    );
    let annotations = s.metadata.annotations.clone().unwrap();
    assert_eq!(
        annotations[ANNOTATION_DATA_HASH],
        hash::secret_data_hash(&bytes(&[("password", "s3cr3t")]))
    );
    let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("ExternalSecret", "db", "uid-1")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(p.condition.reason, reasons::SECRET_SYNCED);
    assert!(p.condition.ready);
    assert_eq!(p.events[0].reason, reasons::EVENT_CREATED);
}

#[test]
fn target_name_overrides_the_external_secret_name() {
    let es = EsBuilder::new("db")
        .target_name("db-creds")
        .data("k", "r")
        .build();
    assert_eq!(
        written(&run(&es, &[("k", "v")], None).unwrap())
            .metadata
            .name
            .as_deref(),
        Some("db-creds")
    );
}

#[test]
fn orphan_policy_sets_no_owner_and_no_created_by_label() {
    let es = EsBuilder::new("db")
        .uid("u")
        .creation(CreationPolicy::Orphan)
        .data("k", "r")
        .build();
    let s = written(&run(&es, &[("k", "v")], None).unwrap()).clone();
    assert!(s.metadata.owner_references.is_none());
    assert!(!s.metadata.labels.unwrap().contains_key(LABEL_CREATED_BY));
}

#[test]
fn owner_policy_replaces_foreign_keys() {
    let es = EsBuilder::new("db").data("k", "r").build();
    let existing = secret("db", &[("foreign", "x"), ("k", "old")]);
    let s = written(&run(&es, &[("k", "new")], Some(&existing)).unwrap()).clone();
    assert_eq!(data_of(&s), bytes(&[("k", "new")]));
}

#[test]
fn merge_policy_without_a_secret_reports_secret_missing() {
    let es = EsBuilder::new("db")
        .creation(CreationPolicy::Merge)
        .data("k", "r")
        .build();
    let p = run(&es, &[("k", "v")], None).unwrap();
    assert_eq!(p.action, SecretAction::Nothing);
    assert!(p.condition.ready);
    assert_eq!(p.condition.reason, reasons::SECRET_MISSING);
}

#[test]
fn merge_policy_keeps_foreign_keys_and_drops_keys_it_wrote_before() {
    let es = EsBuilder::new("db")
        .creation(CreationPolicy::Merge)
        .data("k", "r")
        .build();
    let existing = secret("db", &[("foreign", "x"), ("k", "old"), ("stale", "s")]);
    let p = run_owned(&es, &[("k", "new")], Some(&existing), &["k", "stale"]).unwrap();
    let s = written(&p);
    assert_eq!(data_of(s), bytes(&[("foreign", "x"), ("k", "new")]));
    assert!(s.metadata.owner_references.is_none());
    assert_eq!(
        s.metadata.annotations.as_ref().unwrap()[ANNOTATION_DATA_HASH],
        hash::secret_data_hash(&bytes(&[("foreign", "x"), ("k", "new")])),
        "the hash covers the merged data"
    );
    assert!(matches!(
        p.action,
        SecretAction::Write { create: false, .. }
    ));
    assert_eq!(p.events.last().unwrap().reason, reasons::EVENT_UPDATED);
}

#[test]
fn create_or_merge_creates_when_missing_and_merges_when_present() {
    let es = EsBuilder::new("db")
        .uid("u")
        .creation(CreationPolicy::CreateOrMerge)
        .data("k", "r")
        .build();
    let created = written(&run(&es, &[("k", "v")], None).unwrap()).clone();
    assert!(
        created.metadata.owner_references.is_none(),
        "CreateOrMerge sets no owner"
    );
    let existing = secret("db", &[("foreign", "x")]);
    let merged = written(&run(&es, &[("k", "v")], Some(&existing)).unwrap()).clone();
    assert_eq!(data_of(&merged), bytes(&[("foreign", "x"), ("k", "v")]));
}

#[test]
fn none_policy_writes_nothing() {
    let es = EsBuilder::new("db")
        .creation(CreationPolicy::None)
        .data("k", "r")
        .build();
    let p = run(&es, &[("k", "v")], None).unwrap();
    assert_eq!(p.action, SecretAction::Nothing);
    assert_eq!(p.condition.reason, reasons::SECRET_SYNCED);
}

#[test]
fn deletion_delete_with_no_data_deletes_the_secret() {
    let es = EsBuilder::new("db")
        .deletion(DeletionPolicy::Delete)
        .data("k", "r")
        .build();
    let existing = secret("db", &[("k", "v")]);
    let p = run(&es, &[], Some(&existing)).unwrap();
    assert_eq!(p.action, SecretAction::Delete { name: "db".into() });
    assert_eq!(p.condition.reason, reasons::SECRET_DELETED);
    assert_eq!(run(&es, &[], None).unwrap().action, SecretAction::Nothing);
}

#[test]
fn deletion_delete_needs_owner_policy() {
    let es = EsBuilder::new("db")
        .creation(CreationPolicy::Orphan)
        .deletion(DeletionPolicy::Delete)
        .data("k", "r")
        .build();
    assert_eq!(
        run(&es, &[], None).unwrap_err(),
        PlanError::DeleteNeedsOwner { policy: "Orphan" }
    );
}

#[test]
fn deletion_retain_with_no_data_keeps_the_secret() {
    let es = EsBuilder::new("db").data("k", "r").build();
    let existing = secret("db", &[("k", "v")]);
    let p = run(&es, &[], Some(&existing)).unwrap();
    assert_eq!(p.action, SecretAction::Nothing);
    assert_eq!(
        p.condition.message,
        "secret retained due to DeletionPolicy=Retain"
    );
}

#[test]
fn deletion_merge_with_no_data_removes_only_its_keys() {
    let es = EsBuilder::new("db")
        .creation(CreationPolicy::Merge)
        .deletion(DeletionPolicy::Merge)
        .data("k", "r")
        .build();
    let existing = secret("db", &[("foreign", "x"), ("k", "v")]);
    let p = run_owned(&es, &[], Some(&existing), &["k"]).unwrap();
    assert_eq!(data_of(written(&p)), bytes(&[("foreign", "x")]));
}

#[test]
fn an_up_to_date_secret_needs_no_write_and_no_event() {
    let es = EsBuilder::new("db").data("k", "r").build();
    let first = written(&run(&es, &[("k", "v")], None).unwrap()).clone();
    let p = run(&es, &[("k", "v")], Some(&first)).unwrap();
    assert_eq!(p.action, SecretAction::Nothing);
    assert!(p.events.is_empty());
    assert!(p.condition.ready);
}

#[test]
fn an_edited_secret_is_repaired() {
    let es = EsBuilder::new("db").data("k", "r").build();
    let mut edited = written(&run(&es, &[("k", "v")], None).unwrap()).clone();
    edited
        .data
        .as_mut()
        .unwrap()
        .insert("k".into(), k8s_openapi::ByteString(b"tampered".to_vec()));
    let p = run(&es, &[("k", "v")], Some(&edited)).unwrap();
    assert_eq!(data_of(written(&p)), bytes(&[("k", "v")]));
}

#[test]
fn a_secret_controlled_by_another_external_secret_is_not_touched() {
    let es = EsBuilder::new("db").data("k", "r").build();
    let mut existing = secret("db", &[("k", "v")]);
    existing.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "external-secrets.io/v1".into(),
        kind: "ExternalSecret".into(),
        name: "other".into(),
        uid: "x".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let err = run(&es, &[("k", "v")], Some(&existing)).unwrap_err();
    assert_eq!(
        err,
        PlanError::OwnedByAnother {
            secret: "db".into(),
            owner: "other".into()
        }
    );
}

#[test]
fn an_immutable_secret_rejects_data_changes() {
    let es = EsBuilder::new("db").immutable().data("k", "r").build();
    let mut existing = written(&run(&es, &[("k", "v")], None).unwrap()).clone();
    assert_eq!(existing.immutable, Some(true));
    existing.immutable = Some(true);
    let err = run(&es, &[("k", "changed")], Some(&existing)).unwrap_err();
    assert!(matches!(err, PlanError::Immutable { .. }));
    assert_eq!(
        run(&es, &[("k", "v")], Some(&existing)).unwrap().action,
        SecretAction::Nothing
    );
}

#[test]
fn an_existing_secret_type_is_kept() {
    let es = EsBuilder::new("db").data("k", "r").build();
    let mut existing = secret("db", &[]);
    existing.type_ = Some("kubernetes.io/basic-auth".into());
    assert_eq!(
        written(&run(&es, &[("k", "v")], Some(&existing)).unwrap())
            .type_
            .as_deref(),
        Some("kubernetes.io/basic-auth")
    );
}

#[test]
fn a_template_decides_data_type_and_metadata() {
    let mut es = EsBuilder::new("db")
        .label("es-label", "not-copied")
        .data("password", "r")
        .build();
    let template: ExternalSecretTemplate = serde_json::from_value(serde_json::json!({
        "type": "kubernetes.io/basic-auth",
        "metadata": {"labels": {"app": "{{ .password | len }}"}},
        "data": {"password": "{{ .password | upper }}", "username": "admin"}
    }))
    .unwrap();
    es.spec.target.get_or_insert_default().template = Some(template);
    let p = run(&es, &[("password", "pw")], None).unwrap();
    let s = written(&p);
    assert_eq!(
        data_of(s),
        bytes(&[("password", "PW"), ("username", "admin")])
    );
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    let labels = s.metadata.labels.clone().unwrap();
    assert_eq!(labels["app"], "2");
    assert!(
        !labels.contains_key("es-label"),
        "with a template only its labels are copied"
    );
    assert_eq!(labels[LABEL_MANAGED], "true");
}

#[test]
fn a_template_error_is_a_plan_error_naming_the_key() {
    let mut es = EsBuilder::new("db").data("k", "r").build();
    es.spec.target.get_or_insert_default().template = Some(
        serde_json::from_value(serde_json::json!({
            "data": {"broken": "{{ .nope }}"}
        }))
        .unwrap(),
    );
    match run(&es, &[("k", "v")], None).unwrap_err() {
        PlanError::Template(message) => assert!(
            message.contains("spec.target.template.data[broken]"),
            "{message}"
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn missing_provider_keys_become_events() {
    let es = EsBuilder::new("db")
        .deletion(DeletionPolicy::Delete)
        .data("k", "r")
        .build();
    let fetched = Fetched {
        data: bytes(&[("other", "v")]),
        missing: vec!["r".into()],
        ..Default::default()
    };
    let p = plan(PlanInput {
        es: &es,
        fetched: &fetched,
        existing: None,
        previously_owned_keys: &BTreeSet::new(),
    })
    .unwrap();
    assert!(
        p.events
            .iter()
            .any(|e| e.reason == reasons::EVENT_MISSING_PROVIDER_SECRET
                && e.message.contains("\"r\""))
    );
}

#[test]
fn switching_to_orphan_drops_the_owner_reference() {
    let owned = EsBuilder::new("db").uid("u").data("k", "r").build();
    let existing = written(&run(&owned, &[("k", "v")], None).unwrap()).clone();
    let orphan = EsBuilder::new("db")
        .uid("u")
        .creation(CreationPolicy::Orphan)
        .data("k", "r")
        .build();
    let p = run(&orphan, &[("k", "v")], Some(&existing)).unwrap();
    assert!(written(&p).metadata.owner_references.is_none());
}
