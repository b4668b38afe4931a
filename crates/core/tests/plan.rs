//! The plan's policy and precedence rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eso_api::labels::{ANNOTATION_DATA_HASH, LABEL_CREATED_BY, LABEL_MANAGED};
use eso_api::{CreationPolicy, DeletionPolicy, ExternalSecretTemplate, reasons};
use eso_core::fetch::Fetched;
use eso_core::hash;
use eso_core::plan::{ErrorClass, GuardedDelete, Plan, PlanError, PlanInput, SecretAction, plan};
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

/// Plans with `existing` recording, in its managedFields, that this ExternalSecret ("db")
/// wrote the data keys `owned` before.
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
    let existing = existing.map(|s| with_owned_keys(s, es, owned));
    plan(PlanInput {
        es,
        fetched: &fetched,
        existing: existing.as_ref(),
        exec: &EXEC,
        tenancy: eso_core::tenancy::Tenancy::Default,
    })
}

const EXEC: eso_template::ExecOptions = eso_template::ExecOptions {
    seed: Some(7),
    now: None,
};

fn with_owned_keys(secret: &Secret, es: &eso_api::ExternalSecret, owned: &[&str]) -> Secret {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
    let mut s = secret.clone();
    if owned.is_empty() {
        return s;
    }
    let keys: serde_json::Map<String, serde_json::Value> = owned
        .iter()
        .map(|k| (format!("f:{k}"), serde_json::json!({})))
        .collect();
    let manager = eso_core::plan::field_manager(es.metadata.name.as_deref().unwrap_or_default());
    s.metadata
        .managed_fields
        .get_or_insert_default()
        .push(ManagedFieldsEntry {
            manager: Some(manager),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(serde_json::json!({ "f:data": keys }))),
            ..Default::default()
        });
    s
}

fn written(plan: &Plan) -> &Secret {
    match &plan.action {
        SecretAction::Write(write) => &write.secret,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn claimed(plan: &Plan) -> Vec<&str> {
    match &plan.action {
        SecretAction::Write(write) => write.claimed_keys.iter().map(String::as_str).collect(),
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
    assert!(matches!(&p.action, SecretAction::Write(w) if w.create && w.exclusive));
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
    assert!(matches!(&p.action, SecretAction::Write(w) if !w.create && !w.exclusive));
    assert_eq!(claimed(&p), ["k"], "only its own key is claimed");
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
        .uid("es-uid")
        .deletion(DeletionPolicy::Delete)
        .data("k", "r")
        .build();
    let ours = written(&run(&es, &[("k", "v")], None).unwrap()).clone();
    let mut existing = ours.clone();
    existing.metadata.uid = Some("secret-uid".into());
    existing.metadata.resource_version = Some("42".into());
    let p = run(&es, &[], Some(&existing)).unwrap();
    assert_eq!(
        p.action,
        SecretAction::Delete(GuardedDelete {
            name: "db".into(),
            uid: Some("secret-uid".into()),
            resource_version: Some("42".into()),
        })
    );
    assert_eq!(p.condition.reason, reasons::SECRET_DELETED);
    assert_eq!(run(&es, &[], None).unwrap().action, SecretAction::Nothing);
    // A Secret this ExternalSecret does not control is never deleted.
    let foreign = secret("db", &[("k", "v")]);
    let err = run(&es, &[], Some(&foreign)).unwrap_err();
    assert_eq!(
        err,
        PlanError::NotControlled {
            secret: "db".into()
        }
    );
    assert_eq!(err.class(), ErrorClass::AwaitChange);
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
    let err = run(&es, &[("k", "v")], None).unwrap_err();
    match &err {
        PlanError::Template(failure) => assert!(
            failure
                .message
                .contains("spec.target.template.data[broken]"),
            "{failure}"
        ),
        other => panic!("unexpected {other:?}"),
    }
    // The provider may add the key: retried, not waiting for a spec change.
    assert_eq!(err.class(), ErrorClass::RetryAtInterval);
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
        exec: &EXEC,
        tenancy: eso_core::tenancy::Tenancy::Default,
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

// ---- The policy matrix -------------------------------------------------------------------
//
// Every combination of creationPolicy x deletionPolicy x template x mergePolicy x target that
// upstream's validation admits, planned with provider data and with none. The expectations
// are built from upstream's documented rules (docs: "Lifecycle", "Advanced Templating";
// controller: ApplyTemplate's order, the creation/deletion policy table), each rule on its own:
//
// 1. The keys an ExternalSecret writes: without a template, the provider's keys; with one, the
//    keys its `data`/`templateFrom` render, plus the provider's keys when `mergePolicy: Merge`
//    or when the template has no data and no templateFrom (metadata only).
// 2. Owner and Orphan write exactly those keys; Merge and CreateOrMerge keep what other
//    writers put in the Secret and drop only the keys this ExternalSecret wrote before.
// 3. Merge never creates a missing Secret (Ready, reason SecretMissing); None writes nothing.
// 4. Only Owner sets the controller ownerReference.
// 5. With no provider data: Retain keeps the Secret, Delete deletes it (only a Secret this
//    ExternalSecret controls), Merge writes on with no keys of its own.
// Upstream's validation rejects deletionPolicy Delete without creationPolicy Owner, and
// deletionPolicy Merge with creationPolicy None: those combinations are skipped here.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tmpl {
    None,
    Data,
    TemplateFrom,
    MetadataOnly,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Missing,
    Ours,
    Foreign,
}

const PROVIDER: &[(&str, &str)] = &[("user", "app"), ("pass", "pw")];

fn matrix_es(
    creation: CreationPolicy,
    deletion: DeletionPolicy,
    tmpl: Tmpl,
    merge: bool,
) -> eso_api::ExternalSecret {
    let mut es = EsBuilder::new("db")
        .uid("es-uid")
        .creation(creation)
        .deletion(deletion)
        .data("user", "u")
        .data("pass", "p")
        .build();
    let policy = if merge { "Merge" } else { "Replace" };
    let template = match tmpl {
        Tmpl::None => None,
        Tmpl::Data => Some(serde_json::json!({
            "mergePolicy": policy, "data": {"dsn": "{{ .user }}:{{ .pass }}"}})),
        Tmpl::TemplateFrom => Some(serde_json::json!({
            "mergePolicy": policy, "templateFrom": [{"literal": "extra: '{{ .user }}'"}]})),
        Tmpl::MetadataOnly => Some(serde_json::json!({
            "mergePolicy": policy, "metadata": {"labels": {"team": "{{ .user }}"}}})),
    };
    if let Some(t) = template {
        es.spec.target.get_or_insert_default().template = Some(serde_json::from_value(t).unwrap());
    }
    es
}

/// Rule 1.
fn own_keys(tmpl: Tmpl, merge: bool, provider: &[(&str, &str)]) -> Vec<(String, String)> {
    let from_provider = || {
        provider
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    let mut keys = match tmpl {
        Tmpl::None | Tmpl::MetadataOnly => return from_provider(),
        Tmpl::Data | Tmpl::TemplateFrom if merge => from_provider(),
        Tmpl::Data | Tmpl::TemplateFrom => Vec::new(),
    };
    let user = provider.iter().find(|(k, _)| *k == "user").map(|(_, v)| *v);
    let pass = provider.iter().find(|(k, _)| *k == "pass").map(|(_, v)| *v);
    match tmpl {
        Tmpl::Data => keys.push((
            "dsn".into(),
            format!("{}:{}", user.unwrap_or_default(), pass.unwrap_or_default()),
        )),
        _ => keys.push(("extra".into(), user.unwrap_or_default().into())),
    }
    keys
}

fn target_secret(target: Target, es: &eso_api::ExternalSecret) -> Option<Secret> {
    match target {
        Target::Missing => None,
        // Someone else's Secret: a foreign key, and a key this ExternalSecret also writes.
        Target::Foreign => Some(secret("db", &[("foreign", "x"), ("user", "theirs")])),
        // What this ExternalSecret wrote before: older values and a key the provider no
        // longer has, with our markers, ownership and managedFields.
        Target::Ours => {
            let owner_es = EsBuilder::new("db").uid("es-uid").build();
            let before = Fetched {
                data: bytes(&[("user", "old"), ("stale", "s")]),
                ..Default::default()
            };
            let p = plan(PlanInput {
                es: &owner_es,
                fetched: &before,
                existing: None,
                exec: &EXEC,
                tenancy: eso_core::tenancy::Tenancy::Default,
            })
            .unwrap();
            let mut s = written(&p).clone();
            let mut data = s.data.take().unwrap();
            data.insert("foreign".into(), k8s_openapi::ByteString(b"x".to_vec()));
            s.data = Some(data);
            let _ = es;
            Some(with_owned_keys(&s, &owner_es, &["user", "stale"]))
        }
    }
}

fn check_case(
    creation: CreationPolicy,
    deletion: DeletionPolicy,
    tmpl: Tmpl,
    merge: bool,
    target: Target,
    provider: &[(&str, &str)],
) {
    let case = format!(
        "{creation:?}/{deletion:?}/{tmpl:?}/merge={merge}/{target:?}/data={}",
        !provider.is_empty()
    );
    let es = matrix_es(creation, deletion, tmpl, merge);
    let existing = target_secret(target, &es);
    let fetched = Fetched {
        data: bytes(provider),
        ..Default::default()
    };
    let result = plan(PlanInput {
        es: &es,
        fetched: &fetched,
        existing: existing.as_ref(),
        exec: &EXEC,
        tenancy: eso_core::tenancy::Tenancy::Default,
    });

    // Rule 5: no provider data.
    if provider.is_empty() {
        match deletion {
            DeletionPolicy::Retain => {
                let p = result.unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(p.action, SecretAction::Nothing, "{case}");
                assert_eq!(p.condition.reason, reasons::SECRET_SYNCED, "{case}");
                return;
            }
            DeletionPolicy::Delete => {
                match (target, result) {
                    (Target::Missing, Ok(p)) => {
                        assert_eq!(p.action, SecretAction::Nothing, "{case}")
                    }
                    (Target::Ours, Ok(p)) => {
                        assert!(matches!(p.action, SecretAction::Delete(_)), "{case}");
                        assert_eq!(p.condition.reason, reasons::SECRET_DELETED, "{case}");
                    }
                    (Target::Foreign, Err(e)) => {
                        assert_eq!(
                            e,
                            PlanError::NotControlled {
                                secret: "db".into()
                            },
                            "{case}"
                        )
                    }
                    (_, other) => panic!("{case}: unexpected {other:?}"),
                }
                return;
            }
            // Templates run with `missingkey=error`, as upstream's: rendering a key the
            // (empty) data lacks fails, and is retried.
            DeletionPolicy::Merge
                if tmpl != Tmpl::None
                    && creation != CreationPolicy::None
                    && !(creation == CreationPolicy::Merge && target == Target::Missing) =>
            {
                let err = result.expect_err(&case);
                assert!(matches!(err, PlanError::Template(_)), "{case}: {err}");
                assert_eq!(err.class(), ErrorClass::RetryAtInterval, "{case}");
                return;
            }
            DeletionPolicy::Merge => {}
        }
    }
    let p = result.unwrap_or_else(|e| panic!("{case}: {e}"));

    // Rule 3.
    if creation == CreationPolicy::None {
        assert_eq!(p.action, SecretAction::Nothing, "{case}");
        assert_eq!(p.condition.reason, reasons::SECRET_SYNCED, "{case}");
        return;
    }
    if creation == CreationPolicy::Merge && target == Target::Missing {
        assert_eq!(p.action, SecretAction::Nothing, "{case}");
        assert_eq!(p.condition.reason, reasons::SECRET_MISSING, "{case}");
        return;
    }

    // Rules 1 and 2.
    let own = own_keys(tmpl, merge, provider);
    let keeps_others = matches!(
        creation,
        CreationPolicy::Merge | CreationPolicy::CreateOrMerge
    );
    let mut expected: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    if keeps_others && let Some(existing) = &existing {
        let wrote_before = ["user", "stale"];
        for (k, v) in existing.data.iter().flatten() {
            let ours_before = target == Target::Ours && wrote_before.contains(&k.as_str());
            if !ours_before {
                expected.insert(k.clone(), v.0.clone());
            }
        }
    }
    for (k, v) in &own {
        expected.insert(k.clone(), v.clone().into_bytes());
    }
    let s = written(&p);
    assert_eq!(data_of(s), expected, "{case}: data");
    let mut own_names: Vec<&str> = own.iter().map(|(k, _)| k.as_str()).collect();
    own_names.sort_unstable();
    assert_eq!(claimed(&p), own_names, "{case}: claimed keys");
    assert_eq!(
        s.metadata.annotations.as_ref().unwrap()[ANNOTATION_DATA_HASH],
        hash::secret_data_hash(&expected),
        "{case}: the hash covers the final data"
    );
    assert_eq!(
        s.metadata.labels.as_ref().unwrap()[LABEL_MANAGED],
        "true",
        "{case}"
    );
    if tmpl == Tmpl::MetadataOnly && !provider.is_empty() {
        assert_eq!(s.metadata.labels.as_ref().unwrap()["team"], "app", "{case}");
    }

    // Rule 4.
    let owners = s.metadata.owner_references.clone().unwrap_or_default();
    if creation == CreationPolicy::Owner {
        assert_eq!(owners.len(), 1, "{case}");
        assert_eq!(
            (owners[0].name.as_str(), owners[0].controller),
            ("db", Some(true)),
            "{case}"
        );
    } else {
        assert!(owners.is_empty(), "{case}: only Owner sets an owner");
    }
    assert!(p.condition.ready, "{case}");
    assert_eq!(p.condition.reason, reasons::SECRET_SYNCED, "{case}");
}

#[test]
fn every_policy_template_and_target_combination_follows_upstream_rules() {
    use CreationPolicy as C;
    use DeletionPolicy as D;
    let mut cases = 0;
    for creation in [C::Owner, C::Orphan, C::Merge, C::CreateOrMerge, C::None] {
        for deletion in [D::Retain, D::Delete, D::Merge] {
            // Upstream's validation rejects these.
            if (deletion == D::Delete && creation != C::Owner)
                || (deletion == D::Merge && creation == C::None)
            {
                continue;
            }
            for tmpl in [
                Tmpl::None,
                Tmpl::Data,
                Tmpl::TemplateFrom,
                Tmpl::MetadataOnly,
            ] {
                for merge in [false, true] {
                    if tmpl == Tmpl::None && merge {
                        continue;
                    }
                    for target in [Target::Missing, Target::Ours, Target::Foreign] {
                        for provider in [PROVIDER, &[][..]] {
                            check_case(creation, deletion, tmpl, merge, target, provider);
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 10 * 7 * 3 * 2);
}
