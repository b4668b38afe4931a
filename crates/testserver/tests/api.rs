//! API-level behaviour through `kube::Api`, on the harness (in-process unless
//! `ESO_TEST_KUBECONFIG` names a real cluster).

// Test helpers may fail loudly: a panic there is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use eso_test_apiserver::{Fault, TestCluster};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::ObjectMeta;
use kube::{Error, ResourceExt};
use serde_json::json;

/// The ConfigMap kube-controller-manager (and the test server) puts into every namespace.
const ROOT_CA: &str = "kube-root-ca.crt";

fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn api_code(e: Error) -> (u16, String) {
    match e {
        Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Polls until `f` holds; the timeout is only an upper bound on waiting.
async fn eventually<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn secret_crud_round_trips_and_string_data_becomes_data() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<Secret> = Api::namespaced(c.client(), c.namespace());
    let created = api
        .create(&PostParams::default(), &secret("s1", &[("k", "v")]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    assert_eq!(created.data.unwrap()["k"].0, b"v");
    assert!(created.string_data.is_none());
    let got = api.get("s1").await.unwrap();
    assert_eq!(got.resource_version(), created.metadata.resource_version);
    let (code, reason) = api_code(
        api.create(&PostParams::default(), &secret("s1", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    assert!(
        api.delete("s1", &DeleteParams::default())
            .await
            .unwrap()
            .is_right()
    );
    let (code, reason) = api_code(api.get("s1").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
}

#[tokio::test]
async fn replace_with_stale_resource_version_conflicts() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    let mut cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("cm".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    cm.data = Some(BTreeMap::from([("a".into(), "1".into())]));
    let v1 = api.create(&PostParams::default(), &cm).await.unwrap();
    let mut v2 = v1.clone();
    v2.data = Some(BTreeMap::from([("a".into(), "2".into())]));
    let v2 = api
        .replace("cm", &PostParams::default(), &v2)
        .await
        .unwrap();
    assert_ne!(v2.resource_version(), v1.resource_version());
    let mut stale = v1.clone();
    stale.data = Some(BTreeMap::from([("a".into(), "3".into())]));
    let (code, reason) = api_code(
        api.replace("cm", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
}

#[tokio::test]
async fn unchanged_write_keeps_resource_version() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same"}, "data": {"a": "1"}});
    let pp = PatchParams::apply("tester");
    let first = api.patch("same", &pp, &Patch::Apply(&patch)).await.unwrap();
    let second = api.patch("same", &pp, &Patch::Apply(&patch)).await.unwrap();
    assert_eq!(first.resource_version(), second.resource_version());
}

#[tokio::test]
async fn merge_json_and_strategic_patches_apply() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<Secret> = Api::namespaced(c.client(), c.namespace());
    api.create(&PostParams::default(), &secret("p", &[("a", "1")]))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let s = api
        .patch(
            "p",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(s.labels()["x"], "1");
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/metadata/labels/y", "value": "2"}]))
            .unwrap();
    let s = api.patch("p", &pp, &Patch::<()>::Json(jp)).await.unwrap();
    assert_eq!(s.labels()["y"], "2");
    let s = api
        .patch(
            "p",
            &pp,
            &Patch::Strategic(json!({"metadata": {"finalizers": ["a/b"], "labels": {"x": null}}})),
        )
        .await
        .unwrap();
    assert_eq!(s.finalizers(), ["a/b"]);
    assert!(!s.labels().contains_key("x"));
    api.patch(
        "p",
        &pp,
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn server_side_apply_tracks_managers_conflicts_and_removes_unapplied_fields() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    let cfg = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data});
    let a = PatchParams::apply("manager-a");
    let b = PatchParams::apply("manager-b");
    api.patch("ssa", &a, &Patch::Apply(cfg(json!({"x": "1", "y": "2"}))))
        .await
        .unwrap();
    let (code, reason) = api_code(
        api.patch("ssa", &b, &Patch::Apply(cfg(json!({"x": "changed"}))))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    // Applying the same value is shared ownership, not a conflict.
    api.patch("ssa", &b, &Patch::Apply(cfg(json!({"y": "2"}))))
        .await
        .unwrap();
    let cm = api
        .patch(
            "ssa",
            &b.clone().force(),
            &Patch::Apply(cfg(json!({"x": "changed", "y": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(cm.data.as_ref().unwrap()["x"], "changed");
    let managers: Vec<String> = cm
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"manager-a".to_string()) && managers.contains(&"manager-b".to_string())
    );
    // A drops everything: y stays (b shares it), x stays (b owns it now).
    let cm = api
        .patch("ssa", &a, &Patch::Apply(cfg(json!({}))))
        .await
        .unwrap();
    assert_eq!(
        cm.data.unwrap(),
        BTreeMap::from([("x".into(), "changed".into()), ("y".into(), "2".into())])
    );
    // B drops y: nobody else owns it, so it goes.
    let cm = api
        .patch("ssa", &b, &Patch::Apply(cfg(json!({"x": "changed"}))))
        .await
        .unwrap();
    assert_eq!(
        cm.data.unwrap(),
        BTreeMap::from([("x".into(), "changed".into())])
    );
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    for (name, tier) in [("a", "web"), ("b", "db"), ("c", "cache")] {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([("tier".into(), tier.into())])),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    // Every namespace also holds the root CA publisher's ConfigMap, which has no labels.
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items.iter().map(|i| i.name_any()).collect::<Vec<_>>()
    };
    let l = api
        .list(&ListParams::default().labels("tier in (web,db)"))
        .await
        .unwrap();
    assert!(l.metadata.resource_version.is_some());
    assert_eq!(names(l), ["a", "b"]);
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier!=web"))
                .await
                .unwrap()
        ),
        ["b", "c", ROOT_CA]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier notin (web),tier"))
                .await
                .unwrap()
        ),
        ["b", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("!tier"))
                .await
                .unwrap()
        ),
        [ROOT_CA]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    let (code, _) = api_code(
        api.list(&ListParams::default().fields("data.x=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);
    let page = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(page.clone()), ["a", "b"]);
    let rest = api
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(page.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(names(rest), ["c", ROOT_CA]);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("held".into()),
            finalizers: Some(vec!["example.com/hold".into()]),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &cm).await.unwrap();
    let pending = api
        .delete("held", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(
        api.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let (code, _) = api_code(api.get("held").await.unwrap_err());
    assert_eq!(code, 404);
}

#[tokio::test]
async fn deleting_owner_garbage_collects_dependents_unless_orphaned() {
    let c = TestCluster::new().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    let secrets: Api<Secret> = Api::namespaced(c.client(), c.namespace());
    for (owner, dependent) in [
        ("owner-bg", "dep-bg"),
        ("owner-fg", "dep-fg"),
        ("owner-or", "dep-or"),
    ] {
        let o = cms
            .create(
                &PostParams::default(),
                &ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(owner.into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut s = secret(dependent, &[("k", "v")]);
        s.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: owner.into(),
            uid: o.uid().unwrap(),
            block_owner_deletion: Some(true),
            controller: Some(true),
        }]);
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    cms.delete("owner-bg", &DeleteParams::background())
        .await
        .unwrap();
    cms.delete("owner-fg", &DeleteParams::foreground())
        .await
        .unwrap();
    cms.delete("owner-or", &DeleteParams::orphan())
        .await
        .unwrap();
    for gone in ["dep-bg", "dep-fg"] {
        eventually(|| async { secrets.get_opt(gone).await.unwrap().is_none() }).await;
    }
    eventually(|| async { cms.get_opt("owner-fg").await.unwrap().is_none() }).await;
    eventually(|| async { cms.get_opt("owner-or").await.unwrap().is_none() }).await;
    let orphan = secrets.get("dep-or").await.unwrap();
    assert!(orphan.owner_references().is_empty());
}

#[tokio::test]
async fn immutable_secret_rejects_data_changes_with_invalid() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<Secret> = Api::namespaced(c.client(), c.namespace());
    let mut s = secret("imm", &[("k", "v")]);
    s.immutable = Some(true);
    api.create(&PostParams::default(), &s).await.unwrap();
    let err = api
        .patch(
            "imm",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"k": "w"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(err), (422, "Invalid".to_string()));
    // Metadata may still change.
    api.patch(
        "imm",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn writes_into_missing_or_terminating_namespace_are_refused() {
    let c = TestCluster::new().await.unwrap();
    let missing: Api<Secret> = Api::namespaced(c.client(), "does-not-exist");
    let (code, _) = api_code(
        missing
            .create(&PostParams::default(), &secret("x", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 404);
}

#[tokio::test]
async fn server_restart_keeps_objects_on_the_same_port() {
    // The same client (so the same address) works again after the restart.
    let c = TestCluster::restartable().await.unwrap();
    let api: Api<Secret> = Api::namespaced(c.client(), c.namespace());
    api.create(&PostParams::default(), &secret("kept", &[]))
        .await
        .unwrap();
    c.stop_api_server().await.unwrap();
    assert!(api.get("kept").await.is_err());
    c.start_api_server().await.unwrap();
    api.get("kept").await.unwrap();
    c.cleanup().await.unwrap();
}

#[tokio::test]
async fn custom_resource_generation_bumps_on_spec_changes_only_and_status_is_a_subresource() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    let c = TestCluster::new().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(c.client());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.eso-test.example.com"},
        "spec": {"group": "eso-test.example.com", "scope": "Namespaced",
            "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]},
    }))
    .unwrap();
    crds.patch(
        "gadgets.eso-test.example.com",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "eso-test.example.com",
        "v1",
        "Gadget",
    ));
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), c.namespace(), &ar);
    // The resource may take a moment to be served on a real cluster.
    eventually(|| async { api.list(&ListParams::default()).await.is_ok() }).await;
    let g = json!({"apiVersion": "eso-test.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"a": 1}, "status": {"ignored": true}});
    let created = api
        .patch("g", &PatchParams::apply("test"), &Patch::Apply(&g))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is not written through the main resource"
    );
    let s = api
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"a": 99}})),
        )
        .await
        .unwrap();
    assert_eq!(s.data["status"]["ready"], true);
    assert_eq!(
        s.data["spec"]["a"], 1,
        "spec is not written through the status subresource"
    );
    assert_eq!(s.metadata.generation, Some(1));
    let l = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(l.metadata.generation, Some(1));
    let m = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"a": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(m.metadata.generation, Some(2));
    assert_eq!(m.data["status"]["ready"], true, "a spec write keeps status");
}

#[tokio::test]
async fn deleting_a_namespace_empties_it_first() {
    use k8s_openapi::api::core::v1::Namespace;
    let c = TestCluster::new().await.unwrap();
    let name = format!("{}-doomed", c.namespace());
    let nss: Api<Namespace> = Api::all(c.client());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(c.client(), &name);
    secrets
        .create(&PostParams::default(), &secret("inside", &[]))
        .await
        .unwrap();
    nss.delete(&name, &DeleteParams::default()).await.unwrap();
    let (code, _) = api_code(
        secrets
            .create(&PostParams::default(), &secret("late", &[]))
            .await
            .unwrap_err(),
    );
    assert!(code == 403 || code == 404, "{code}");
    eventually(|| async { nss.get_opt(&name).await.unwrap().is_none() }).await;
    assert!(secrets.get_opt("inside").await.unwrap().is_none());
}

/// Tests that need the in-process server's fault injection or compaction: the first CI lane
/// runs them; the real-cluster lane skips `in_process::` (see `.ci/run`).
mod in_process {
    use super::*;

    #[tokio::test]
    async fn injected_faults_fail_matching_requests_then_clear() {
        let c = TestCluster::in_process().await.unwrap();
        let server = c.server().unwrap();
        let api: Api<Secret> = Api::namespaced(c.client(), c.namespace());
        server.inject(
            Fault::status(500)
                .verb("create")
                .resource("secrets")
                .times(2),
        );
        for _ in 0..2 {
            let (code, reason) = api_code(
                api.create(&PostParams::default(), &secret("f", &[]))
                    .await
                    .unwrap_err(),
            );
            assert_eq!((code, reason.as_str()), (500, "InternalError"));
        }
        api.create(&PostParams::default(), &secret("f", &[]))
            .await
            .unwrap();
        // Other verbs and resources are untouched.
        server.inject(Fault::status(409).verb("update").resource("configmaps"));
        api.get("f").await.unwrap();
        assert_eq!(server.pending_faults(), 1);
        server.set_latency(Some(Duration::from_millis(1)));
        api.get("f").await.unwrap();
        server.clear_faults();
        assert_eq!(server.pending_faults(), 0);
    }

    #[tokio::test]
    async fn kube_client_retries_503_and_429_transparently() {
        let c = TestCluster::in_process().await.unwrap();
        let server = c.server().unwrap();
        let api: Api<Secret> = Api::namespaced(c.client(), c.namespace());
        server.inject(
            Fault::status(503)
                .verb("create")
                .resource("secrets")
                .times(2),
        );
        api.create(&PostParams::default(), &secret("r", &[]))
            .await
            .unwrap();
        assert_eq!(server.pending_faults(), 0);
    }

    #[tokio::test]
    async fn hung_request_hits_the_client_timeout() {
        let c = TestCluster::in_process().await.unwrap();
        let server = c.server().unwrap();
        let api: Api<Secret> = Api::namespaced(c.client(), c.namespace());
        server.inject(Fault::hang().verb("get").resource("secrets"));
        let r = tokio::time::timeout(Duration::from_millis(300), api.get_opt("nothing")).await;
        assert!(r.is_err(), "a hung request must not be answered");
        assert!(api.get_opt("nothing").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn a_second_controller_reference_is_refused_by_create_and_by_apply() {
    let c = TestCluster::new().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    let secrets: Api<Secret> = Api::namespaced(c.client(), c.namespace());
    let mut owners = Vec::new();
    for name in ["first-owner", "second-owner"] {
        let o = cms
            .create(
                &PostParams::default(),
                &ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        owners.push(OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: name.into(),
            uid: o.uid().unwrap(),
            block_owner_deletion: None,
            controller: Some(true),
        });
    }
    let mut both = secret("two-controllers", &[("k", "v")]);
    both.metadata.owner_references = Some(owners.clone());
    let err = secrets
        .create(&PostParams::default(), &both)
        .await
        .unwrap_err();
    assert_eq!(api_code(err), (422, "Invalid".to_string()));

    // A Secret with one controller; an apply by another manager adding its own controller
    // reference (the list is keyed by uid, so the two merge) is refused and changes nothing.
    let mut first = secret("controlled", &[("k", "v")]);
    first.metadata.owner_references = Some(vec![owners[0].clone()]);
    secrets
        .create(&PostParams::default(), &first)
        .await
        .unwrap();
    let mut second = secret("controlled", &[("k", "taken")]);
    second.metadata.owner_references = Some(vec![owners[1].clone()]);
    let err = secrets
        .patch(
            "controlled",
            &PatchParams::apply("another-controller").force(),
            &Patch::Apply(&second),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(err), (422, "Invalid".to_string()));
    let kept = secrets.get("controlled").await.unwrap();
    assert_eq!(kept.owner_references(), &[owners[0].clone()]);
    assert_eq!(
        kept.data.unwrap()["k"].0,
        b"v".to_vec(),
        "a refused apply writes nothing"
    );
}
