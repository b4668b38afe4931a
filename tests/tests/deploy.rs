//! Deploying: the Helm chart renders what the operator needs (default, scoped, HA) and refuses
//! several replicas without leader election; every rendered document passes
//! `kubectl apply --dry-run=client` and the k8s-openapi types; the RBAC grants every API call
//! in docs/deploy.md's table and nothing else; the plain manifests and the chart's CRDs stay
//! in sync; the dashboard and alerts use only metrics the operator exports.
//!
//! The chart is rendered by `deploy/charts/render.py` with helm-python-sdk (Helm's Go SDK),
//! run with `ESO_HELM_PYTHON` or the workspace's `.venv-emu/bin/python`.
//! Regenerate the plain manifests with `ESO_UPDATE_MANIFESTS=1 cargo test -p eso-tests --test deploy`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use eso_test_support::chart;
use eso_test_support::tools::workspace_root;
use eso_tests::{TestCluster, eventually};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use serde_json::{Value, json};

const RELEASE: &str = "eso-rs";
const NAMESPACE: &str = "eso-rs";
const SCOPED: &str = "apps";
const MANIFEST_HEADER: &str = "# Generated from deploy/charts/eso-rs with default values (release eso-rs, namespace eso-rs); do not edit.\n# Regenerate with: ESO_UPDATE_MANIFESTS=1 cargo test -p eso-tests --test deploy\n";

/// The chart rendered with `values` (as a YAML stream), or the render's error message.
fn render(values: &Value) -> Result<String, String> {
    chart::render(&["--name", RELEASE, "--namespace", NAMESPACE], values)
}

struct Rendered {
    yaml: String,
    docs: Vec<Value>,
}

impl Rendered {
    fn new(values: Value) -> Self {
        let yaml = render(&values).unwrap_or_else(|e| panic!("render {values}: {e}"));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml)
            .unwrap_or_else(|e| panic!("the rendered YAML does not parse: {e}"));
        let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
        assert!(!docs.is_empty(), "nothing rendered for {values}");
        Self { yaml, docs }
    }

    fn all(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn one(&self, kind: &str, name: &str) -> &Value {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", self.kinds()))
    }

    fn kinds(&self) -> Vec<(String, String)> {
        self.docs
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().unwrap_or_default().to_owned(),
                    d["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    }

    fn deployment(&self) -> &Value {
        self.one("Deployment", RELEASE)
    }

    fn container(&self) -> &Value {
        let containers = self.deployment()["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1);
        &containers[0]
    }

    fn args(&self) -> Vec<String> {
        self.container()["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    fn pod_labels(&self) -> &Value {
        &self.deployment()["spec"]["template"]["metadata"]["labels"]
    }
}

fn default_install() -> &'static Rendered {
    static R: OnceLock<Rendered> = OnceLock::new();
    R.get_or_init(|| Rendered::new(json!({})))
}

fn scoped_install() -> &'static Rendered {
    static R: OnceLock<Rendered> = OnceLock::new();
    R.get_or_init(|| Rendered::new(json!({"scopedNamespace": SCOPED, "scopedRBAC": true})))
}

fn ha_install() -> &'static Rendered {
    static R: OnceLock<Rendered> = OnceLock::new();
    R.get_or_init(|| {
        Rendered::new(json!({
            "replicaCount": 3,
            "podDisruptionBudget": {"enabled": true},
            "serviceMonitor": {"enabled": true, "renderMode": "alwaysRender"},
        }))
    })
}

/// Every key/value of `subset` is in `labels`.
fn labels_match(subset: &Value, labels: &Value) -> bool {
    subset
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

fn port_of(addr_flag: &str, args: &[String]) -> i64 {
    let value = args
        .iter()
        .find_map(|a| a.strip_prefix(&format!("--{addr_flag}=")))
        .unwrap_or_else(|| panic!("no --{addr_flag} in {args:?}"));
    value.rsplit(':').next().unwrap().parse().unwrap()
}

fn container_port(container: &Value, name: &str) -> i64 {
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no container port {name}"))["containerPort"]
        .as_i64()
        .unwrap()
}

#[test]
fn default_install_runs_one_hardened_leader_elected_replica() {
    let r = default_install();
    let kinds: BTreeSet<(String, String)> = r.kinds().into_iter().collect();
    let crds: Vec<String> = std::fs::read_dir(workspace_root().join("deploy/crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // `<group>_<plural>.yaml` holds the CRD `<plural>.<group>`.
        .filter_map(|f| {
            let (group, plural) = f.trim_end_matches(".yaml").split_once('_')?;
            Some(format!("{plural}.{group}"))
        })
        .collect();
    let mut expected: BTreeSet<(String, String)> = [
        ("ServiceAccount", "eso-rs"),
        ("ClusterRole", "eso-rs-controller"),
        ("ClusterRoleBinding", "eso-rs-controller"),
        ("ClusterRole", "eso-rs-view"),
        ("ClusterRole", "eso-rs-edit"),
        ("Role", "eso-rs-leaderelection"),
        ("RoleBinding", "eso-rs-leaderelection"),
        ("Service", "eso-rs-metrics"),
        ("Deployment", "eso-rs"),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n.to_owned()))
    .collect();
    expected.extend(
        crds.iter()
            .map(|n| ("CustomResourceDefinition".to_owned(), n.clone())),
    );
    assert_eq!(kinds, expected);
    assert_eq!(crds.len(), eso_api::crds::all().len());

    let deployment = r.deployment();
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert!(deployment["spec"]["template"]["spec"]["topologySpreadConstraints"].is_null());
    let args = r.args();
    assert!(
        args.contains(&"--enable-leader-election=true".to_owned()),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "{args:?}"
    );

    let container = r.container();
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                &e["valueFrom"]["fieldRef"]["fieldPath"],
            )
        })
        .collect();
    assert_eq!(env["POD_NAME"], "metadata.name");
    assert_eq!(env["POD_NAMESPACE"], "metadata.namespace");

    let sc = &container["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_ne!(sc["runAsUser"], 0);
    let pod_sc = &deployment["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(pod_sc["runAsNonRoot"], true);
    assert_eq!(pod_sc["seccompProfile"]["type"], "RuntimeDefault");

    // Probes hit the health server the operator is told to listen on; the Service scrapes the
    // metrics server.
    assert_eq!(
        container_port(container, "health"),
        port_of("health-addr", &args)
    );
    assert_eq!(
        container_port(container, "metrics"),
        port_of("metrics-addr", &args)
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "health");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "health");
    let service = r.one("Service", "eso-rs-metrics");
    assert!(labels_match(&service["spec"]["selector"], r.pod_labels()));
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");

    assert_eq!(
        r.deployment()["spec"]["template"]["spec"]["serviceAccountName"],
        r.one("ServiceAccount", RELEASE)["metadata"]["name"]
    );
    assert!(r.all("PodDisruptionBudget").is_empty());
    assert!(r.all("ServiceMonitor").is_empty());
    for crd in r.all("CustomResourceDefinition") {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "uninstalling the chart must not delete the CRDs (and every ExternalSecret)"
        );
    }
}

#[test]
fn ha_install_spreads_replicas_and_protects_them() {
    let r = ha_install();
    let spec = &r.deployment()["spec"];
    assert_eq!(spec["replicas"], 3);
    assert!(
        r.args()
            .contains(&"--enable-leader-election=true".to_owned())
    );
    let spread = spec["template"]["spec"]["topologySpreadConstraints"]
        .as_array()
        .expect("topology spread with several replicas");
    let by_node = spread
        .iter()
        .find(|c| c["topologyKey"] == "kubernetes.io/hostname")
        .expect("spread across nodes");
    assert_eq!(by_node["whenUnsatisfiable"], "ScheduleAnyway");
    for c in spread {
        assert!(
            labels_match(&c["labelSelector"]["matchLabels"], r.pod_labels()),
            "{c}"
        );
    }

    let pdb = r.one("PodDisruptionBudget", RELEASE);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert!(labels_match(
        &pdb["spec"]["selector"]["matchLabels"],
        r.pod_labels()
    ));

    let monitor = r.one("ServiceMonitor", RELEASE);
    let service = r.one("Service", "eso-rs-metrics");
    assert!(labels_match(
        &monitor["spec"]["selector"]["matchLabels"],
        &service["metadata"]["labels"]
    ));
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!([NAMESPACE])
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
}

#[test]
fn chart_refuses_several_replicas_without_leader_election() {
    let err = render(&json!({"replicaCount": 3, "leaderElect": false})).unwrap_err();
    assert!(
        err.contains("replicaCount is 3 but leaderElect is false")
            && err.contains("set leaderElect: true"),
        "{err}"
    );
    // One replica without leader election is allowed, and says so to the operator.
    let single = Rendered::new(json!({"leaderElect": false}));
    assert!(
        single
            .args()
            .contains(&"--enable-leader-election=false".to_owned())
    );
    assert!(
        single.all("Role").is_empty(),
        "no Lease access without leader election"
    );

    // A list of namespaces: one Role and RoleBinding in each, no cluster-wide grant at all.
    let listed =
        Rendered::new(json!({"scopedNamespaces": ["team-a", "team-b"], "scopedRBAC": true}));
    let role_namespaces: Vec<&str> = listed
        .all("Role")
        .iter()
        .filter(|r| {
            r["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with("-controller")
        })
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(role_namespaces, ["team-a", "team-b"]);
    assert_eq!(
        listed
            .all("RoleBinding")
            .iter()
            .filter(|r| r["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with("-controller"))
            .count(),
        2
    );
    assert!(
        listed.all("ClusterRole").is_empty(),
        "{:#?}",
        listed.all("ClusterRole")
    );
    assert!(
        listed
            .args()
            .iter()
            .any(|a| a == "--namespace=team-a,team-b"),
        "{:?}",
        listed.args()
    );

    let err = render(&json!({"scopedRBAC": true})).unwrap_err();
    assert!(
        err.contains("scopedRBAC: true needs scopedNamespace"),
        "{err}"
    );
    let err = render(
        &json!({"serviceMonitor": {"enabled": true}, "metrics": {"service": {"enabled": false}}}),
    )
    .unwrap_err();
    assert!(
        err.contains("serviceMonitor.enabled needs metrics.service.enabled"),
        "{err}"
    );
}

#[test]
fn helm_lint_strict_finds_nothing_to_warn_about() {
    for values in [
        json!({}),
        json!({"scopedNamespace": SCOPED, "scopedRBAC": true}),
        json!({"scopedNamespaces": ["team-a", "team-b"], "scopedRBAC": true}),
        json!({"replicaCount": 3, "podDisruptionBudget": {"enabled": true}}),
    ] {
        let out = chart::render(&["--lint", "--namespace", NAMESPACE], &values)
            .unwrap_or_else(|e| panic!("{values}: {e}"));
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["errors"], json!([]), "{values}: {report}");
        // Severity 1 is informational ("icon is recommended"); 2 is a warning, 3 an error.
        let serious: Vec<&Value> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64().unwrap() >= 2)
            .collect();
        assert!(serious.is_empty(), "{values}: {serious:?}");
    }
}

// ---- RBAC -----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// A namespaced resource in every watched namespace.
    Any,
    /// Only when the operator watches every namespace.
    ClusterWide,
    /// Only in the operator's own namespace.
    OperatorNamespace,
}

#[derive(Debug)]
struct Call {
    group: String,
    resource: String,
    verbs: Vec<String>,
    scope: Scope,
}

/// The table of API calls in docs/deploy.md.
fn documented_calls() -> Vec<Call> {
    let text = std::fs::read_to_string(workspace_root().join("docs/deploy.md")).unwrap();
    let start = text
        .find("<!-- rbac-table:start -->")
        .expect("table start marker");
    let end = text
        .find("<!-- rbac-table:end -->")
        .expect("table end marker");
    let calls: Vec<Call> = text[start..end]
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let scope = match cells[4] {
                "any" => Scope::Any,
                "cluster-wide" => Scope::ClusterWide,
                "operator namespace" => Scope::OperatorNamespace,
                other => panic!("unknown scope {other:?} in {line}"),
            };
            Call {
                group: if cells[1] == "core" {
                    String::new()
                } else {
                    cells[1].to_owned()
                },
                resource: cells[2].to_owned(),
                verbs: cells[3].split(',').map(|v| v.trim().to_owned()).collect(),
                scope,
            }
        })
        .collect();
    assert!(calls.len() >= 15, "the RBAC table did not parse: {calls:?}");
    calls
}

#[derive(Debug, Clone)]
struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
}

impl Rule {
    fn allows(&self, group: &str, resource: &str, verb: &str) -> bool {
        self.groups.iter().any(|g| g == group)
            && self.resources.iter().any(|r| r == resource)
            && self.verbs.iter().any(|v| v == verb)
    }

    /// Every (group, resource, verb) the rule grants.
    fn grants(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for g in &self.groups {
            for r in &self.resources {
                for v in &self.verbs {
                    out.push((g.clone(), r.clone(), v.clone()));
                }
            }
        }
        out
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn rules_of(role: &Value) -> Vec<Rule> {
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r.get("resourceNames").is_none() && r.get("nonResourceURLs").is_none());
            Rule {
                groups: strings(&r["apiGroups"]),
                resources: strings(&r["resources"]),
                verbs: strings(&r["verbs"]),
            }
        })
        .collect()
}

/// What the operator's ServiceAccount may do, following the bindings that name it.
struct Grants {
    cluster: Vec<Rule>,
    namespaced: BTreeMap<String, Vec<Rule>>,
}

impl Grants {
    fn of(r: &Rendered) -> Self {
        let sa = (NAMESPACE, RELEASE);
        let names_sa = |b: &Value| {
            b["subjects"].as_array().unwrap().iter().any(|s| {
                s["kind"] == "ServiceAccount" && s["namespace"] == sa.0 && s["name"] == sa.1
            })
        };
        let role = |kind: &str, name: &Value, ns: Option<&Value>| {
            r.docs
                .iter()
                .find(|d| {
                    d["kind"] == kind
                        && &d["metadata"]["name"] == name
                        && ns.is_none_or(|ns| &d["metadata"]["namespace"] == ns)
                })
                .unwrap_or_else(|| panic!("a binding names {kind} {name}, which is not rendered"))
        };
        let mut grants = Grants {
            cluster: Vec::new(),
            namespaced: BTreeMap::new(),
        };
        for b in r
            .all("ClusterRoleBinding")
            .into_iter()
            .filter(|b| names_sa(b))
        {
            assert_eq!(b["roleRef"]["kind"], "ClusterRole");
            grants
                .cluster
                .extend(rules_of(role("ClusterRole", &b["roleRef"]["name"], None)));
        }
        for b in r.all("RoleBinding").into_iter().filter(|b| names_sa(b)) {
            let ns = &b["metadata"]["namespace"];
            let kind = b["roleRef"]["kind"].as_str().unwrap();
            let scope = (kind == "Role").then_some(ns);
            grants
                .namespaced
                .entry(ns.as_str().unwrap().to_owned())
                .or_default()
                .extend(rules_of(role(kind, &b["roleRef"]["name"], scope)));
        }
        grants
    }

    /// Allowed cluster-wide (`namespace` None) or in one namespace.
    fn allows(&self, namespace: Option<&str>, group: &str, resource: &str, verb: &str) -> bool {
        self.cluster.iter().any(|r| r.allows(group, resource, verb))
            || namespace.is_some_and(|ns| {
                self.namespaced
                    .get(ns)
                    .is_some_and(|rules| rules.iter().any(|r| r.allows(group, resource, verb)))
            })
    }

    /// Every grant is a documented call of the right scope (no wildcard, nothing extra).
    fn assert_only_documented(
        &self,
        calls: &[Call],
        cluster_scopes: &[Scope],
        ns_scope: &[(&str, &[Scope])],
    ) {
        let documented = |g: &str, r: &str, v: &str, scopes: &[Scope]| {
            calls.iter().any(|c| {
                c.group == g
                    && c.resource == r
                    && c.verbs.iter().any(|cv| cv == v)
                    && scopes.contains(&c.scope)
            })
        };
        for (g, r, v) in self.cluster.iter().flat_map(Rule::grants) {
            assert!(
                documented(&g, &r, &v, cluster_scopes),
                "cluster-wide grant ({g:?}, {r}, {v}) is not in docs/deploy.md's table"
            );
        }
        for (ns, rules) in &self.namespaced {
            let scopes = ns_scope
                .iter()
                .find(|(n, _)| n == ns)
                .unwrap_or_else(|| panic!("unexpected grants in namespace {ns}"))
                .1;
            for (g, r, v) in rules.iter().flat_map(Rule::grants) {
                assert!(
                    documented(&g, &r, &v, scopes),
                    "grant ({g:?}, {r}, {v}) in {ns} is not in docs/deploy.md's table with that scope"
                );
            }
        }
    }
}

#[test]
fn default_rbac_grants_every_documented_call_and_nothing_else() {
    let grants = Grants::of(default_install());
    let calls = documented_calls();
    for call in &calls {
        for verb in &call.verbs {
            let (g, r) = (call.group.as_str(), call.resource.as_str());
            match call.scope {
                Scope::Any | Scope::ClusterWide => {
                    assert!(
                        grants.allows(None, g, r, verb),
                        "{verb} {r} ({g:?}) is not granted cluster-wide"
                    );
                }
                Scope::OperatorNamespace => {
                    assert!(
                        grants.allows(Some(NAMESPACE), g, r, verb),
                        "{verb} {r} is not granted in {NAMESPACE}"
                    );
                    assert!(
                        !grants.allows(Some("elsewhere"), g, r, verb),
                        "{verb} {r} is granted outside {NAMESPACE}"
                    );
                }
            }
        }
    }
    grants.assert_only_documented(
        &calls,
        &[Scope::Any, Scope::ClusterWide],
        &[(NAMESPACE, &[Scope::OperatorNamespace])],
    );
}

#[test]
fn scoped_rbac_uses_only_roles_in_the_scoped_namespace() {
    let r = scoped_install();
    assert!(
        r.all("ClusterRole").is_empty() && r.all("ClusterRoleBinding").is_empty(),
        "{:?}",
        r.kinds()
    );
    let grants = Grants::of(r);
    let calls = documented_calls();
    for call in &calls {
        for verb in &call.verbs {
            let (g, res) = (call.group.as_str(), call.resource.as_str());
            match call.scope {
                Scope::Any => {
                    assert!(
                        grants.allows(Some(SCOPED), g, res, verb),
                        "{verb} {res} not granted in {SCOPED}"
                    );
                    assert!(
                        !grants.allows(Some("elsewhere"), g, res, verb),
                        "{verb} {res} granted outside {SCOPED}"
                    );
                }
                Scope::ClusterWide => {
                    assert!(
                        !grants.allows(Some(SCOPED), g, res, verb),
                        "{verb} {res} granted in scoped mode"
                    );
                }
                Scope::OperatorNamespace => {
                    assert!(
                        grants.allows(Some(NAMESPACE), g, res, verb),
                        "{verb} {res} not granted in {NAMESPACE}"
                    );
                }
            }
        }
    }
    grants.assert_only_documented(
        &calls,
        &[],
        &[
            (SCOPED, &[Scope::Any]),
            (NAMESPACE, &[Scope::OperatorNamespace]),
        ],
    );
    let args = r.args();
    for flag in [
        "--namespace=apps",
        "--enable-cluster-store-reconciler=false",
        "--enable-cluster-external-secret-reconciler=false",
    ] {
        assert!(
            args.contains(&flag.to_owned()),
            "{flag} missing from {args:?}"
        );
    }
}

// ---- Validation of every document -------------------------------------------------------------

/// Deserialising into the k8s-openapi type and back drops any field the type does not have, so
/// equality means every field is one the API knows (a misspelt or misplaced field fails).
fn assert_known_fields<K: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) {
    let typed: K = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} {}: {e}", doc["kind"], doc["metadata"]["name"]));
    let back = serde_json::to_value(&typed).unwrap();
    let (a, b) = (normalized(doc), normalized(&back));
    if a != b {
        panic!(
            "{} {} has fields its API type does not know:\nrendered: {a}\ntyped:    {b}",
            doc["kind"], doc["metadata"]["name"]
        );
    }
}

/// `v` without nulls, and with every number as a float: YAML renders a CRD's `maximum: 8192`
/// as an integer where k8s-openapi's JSONSchemaProps holds `8192.0`.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        Value::Number(n) => json!(n.as_f64()),
        other => other.clone(),
    }
}

#[test]
fn every_rendered_document_has_only_fields_its_api_type_knows() {
    for r in [default_install(), scoped_install(), ha_install()] {
        for doc in &r.docs {
            match doc["kind"].as_str().unwrap() {
                "ServiceAccount" => assert_known_fields::<ServiceAccount>(doc),
                "CustomResourceDefinition" => assert_known_fields::<CustomResourceDefinition>(doc),
                "ClusterRole" => assert_known_fields::<ClusterRole>(doc),
                "ClusterRoleBinding" => assert_known_fields::<ClusterRoleBinding>(doc),
                "Role" => assert_known_fields::<Role>(doc),
                "RoleBinding" => assert_known_fields::<RoleBinding>(doc),
                "Service" => assert_known_fields::<Service>(doc),
                "Deployment" => assert_known_fields::<Deployment>(doc),
                "PodDisruptionBudget" => assert_known_fields::<PodDisruptionBudget>(doc),
                // Not a Kubernetes type (prometheus-operator): its fields are checked in
                // ha_install_spreads_replicas_and_protects_them.
                "ServiceMonitor" => {}
                other => panic!("no check for kind {other}"),
            }
        }
    }
}

/// A CRD serving `kind` at `api_version`, schemaless, so kubectl can map a built-in kind the
/// in-process test server does not serve.
fn stand_in_crd(api_version: &str, kind: &str, namespaced: bool) -> Value {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = format!("{}s", kind.to_lowercase());
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind},
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{"name": version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    })
}

fn kubectl(cluster: &TestCluster, cache: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(eso_test_apiserver::kubectl().unwrap())
        .args(args)
        .arg(format!("--cache-dir={}", cache.display()))
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_accepts_every_rendered_document() {
    let cases = [
        ("default", default_install()),
        ("scoped", scoped_install()),
        ("ha", ha_install()),
    ];
    let cluster = TestCluster::new().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // kubectl maps every kind through discovery. The in-process server serves only the types
    // eso-rs itself uses, and a plain cluster has no ServiceMonitor (the Prometheus operator's
    // CRD): give kubectl a stand-in for each kind the cluster does not serve.
    let mut kinds = BTreeSet::new();
    for (_, r) in &cases {
        for d in &r.docs {
            kinds.insert((
                d["apiVersion"].as_str().unwrap().to_owned(),
                d["kind"].as_str().unwrap().to_owned(),
                d["metadata"].get("namespace").is_some(),
            ));
        }
    }
    let crds = Api::<CustomResourceDefinition>::all(cluster.client());
    for (api_version, kind, namespaced) in &kinds {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        if kube::discovery::pinned_kind(&cluster.client(), &gvk)
            .await
            .is_ok()
        {
            continue;
        }
        let crd = serde_json::from_value(stand_in_crd(api_version, kind, *namespaced)).unwrap();
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            // An earlier run on the same cluster made it already.
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("creating a stand-in for {kind}: {e}"),
        }
        let resource =
            ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_lowercase()));
        let api: Api<DynamicObject> = Api::all_with(cluster.client(), &resource);
        eventually(&format!("{kind} to be served"), || async {
            api.list(&ListParams::default()).await.is_ok()
        })
        .await
        .unwrap();
    }
    for (i, (case, r)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("{case}.yaml"));
        std::fs::write(&path, &r.yaml).unwrap();
        let cache = dir.path().join(format!("cache{}", i + 1));
        let (ok, out) = kubectl(
            &cluster,
            &cache,
            &["apply", "--dry-run=client", "-f", path.to_str().unwrap()],
        );
        assert!(
            ok,
            "kubectl apply --dry-run=client rejected the {case} install: {out}"
        );
        let accepted = out.lines().filter(|l| l.ends_with("(dry run)")).count();
        assert_eq!(
            accepted,
            r.docs.len(),
            "{case}: one line per document expected:\n{out}"
        );
    }
    cluster.cleanup().await.unwrap();
}

// ---- Generated copies ------------------------------------------------------------------------

#[test]
fn plain_manifests_are_the_chart_with_default_values() {
    let expected = format!("{MANIFEST_HEADER}{}", default_install().yaml);
    let path = workspace_root().join("deploy/manifests/eso-rs.yaml");
    if std::env::var("ESO_UPDATE_MANIFESTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "deploy/manifests/eso-rs.yaml differs from the chart rendered with default values. \
         Regenerate with: ESO_UPDATE_MANIFESTS=1 cargo test -p eso-tests --test deploy"
    );

    // kubectl's built-in kustomize builds the directory: the Namespace first, the image set.
    let out = Command::new(eso_test_apiserver::kubectl().unwrap())
        .args([
            "kustomize",
            workspace_root().join("deploy/manifests").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(built[0]["kind"], "Namespace");
    assert_eq!(built[0]["metadata"]["name"], NAMESPACE);
    assert_eq!(built.len(), default_install().docs.len() + 1);
    let deployment = built.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        default_install().container()["image"]
    );
}

fn yaml_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let generated = yaml_files(&workspace_root().join("deploy/crds"));
    let chart = yaml_files(&workspace_root().join("deploy/charts/eso-rs/files/crds"));
    assert_eq!(generated.len(), eso_api::crds::all().len());
    assert!(
        chart == generated,
        "deploy/charts/eso-rs/files/crds differs from deploy/crds: cp deploy/crds/*.yaml deploy/charts/eso-rs/files/crds/"
    );
    // And the chart installs them unchanged but for the keep annotation.
    let mut rendered: Vec<Value> = default_install()
        .all("CustomResourceDefinition")
        .into_iter()
        .cloned()
        .collect();
    for crd in &mut rendered {
        crd["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
    }
    let mut files: Vec<Value> = generated
        .values()
        .map(|t| serde_saphyr::from_str(t).unwrap())
        .collect();
    let name = |v: &Value| v["metadata"]["name"].as_str().unwrap().to_owned();
    rendered.sort_by_key(name);
    files.sort_by_key(name);
    let rendered: Vec<Value> = rendered.iter().map(normalized).collect();
    let files: Vec<Value> = files.iter().map(normalized).collect();
    assert!(
        rendered == files,
        "the rendered CRDs differ from deploy/crds"
    );
}

// ---- Dashboard and alerts ------------------------------------------------------------------

/// Metric names the operator exports, read from the code: the first argument of every
/// `counter!`/`gauge!`/`histogram!` (a literal or a `const`), and the per-object series
/// constants rendered by `StatusSeries`.
fn exported_metrics() -> BTreeSet<String> {
    let direct = regex::Regex::new(r#"(?:counter|gauge|histogram)!\(\s*"([a-z_:]+)""#).unwrap();
    let by_const =
        regex::Regex::new(r"(?:counter|gauge|histogram)!\(\s*([A-Z][A-Z0-9_]*)").unwrap();
    let consts = regex::Regex::new(r#"const ([A-Z][A-Z0-9_]*): &str = "([a-z_:]+)";"#).unwrap();
    let mut names = BTreeSet::new();
    let mut files = Vec::new();
    for top in ["crates", "bins"] {
        collect_sources(&workspace_root().join(top), &mut files);
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Code after `#[cfg(test)]` is tests, not exports.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let defined: BTreeMap<&str, &str> = consts
            .captures_iter(text)
            .map(|c| (c.get(1).unwrap().as_str(), c.get(2).unwrap().as_str()))
            .collect();
        names.extend(direct.captures_iter(text).map(|c| c[1].to_owned()));
        for c in by_const.captures_iter(text) {
            if let Some(name) = defined.get(&c[1]) {
                names.insert((*name).to_owned());
            }
        }
        if text.contains("pub struct StatusSeries") {
            names.extend(defined.values().map(|v| (*v).to_owned()));
        }
    }
    names
}

fn collect_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            // Only library and binary sources: tests, benches and examples export nothing.
            if !["tests", "benches", "examples", "target"].contains(&name.as_str()) {
                collect_sources(&path, out);
            }
        } else if name.ends_with(".rs") && path.components().any(|c| c.as_os_str() == "src") {
            out.push(path);
        }
    }
}

/// Metric names a PromQL expression selects: identifiers left after removing label matchers,
/// ranges, strings, grouping clauses, functions, keywords and numbers.
fn promql_metrics(expr: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "topk",
        "bottomk",
        "quantile",
        "stddev",
        "rate",
        "irate",
        "increase",
        "delta",
        "absent",
        "vector",
        "scalar",
        "clamp_min",
        "clamp_max",
        "histogram_quantile",
        "label_replace",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "label_values",
    ];
    let strip = |re: &str, s: &str| {
        regex::Regex::new(re)
            .unwrap()
            .replace_all(s, " ")
            .into_owned()
    };
    let mut s = strip(r#""(?:[^"\\]|\\.)*""#, expr);
    s = strip(r"\{[^}]*\}", &s);
    s = strip(r"\[[^\]]*\]", &s);
    s = strip(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
        &s,
    );
    let ident = regex::Regex::new(r"(?:^|[^A-Za-z0-9_.$])([A-Za-z_:][A-Za-z0-9_:]*)").unwrap();
    ident
        .captures_iter(&s)
        .map(|c| c[1].to_owned())
        .filter(|w| !WORDS.contains(&w.as_str()))
        .collect()
}

fn dashboard_exprs() -> Vec<String> {
    let text =
        std::fs::read_to_string(workspace_root().join("deploy/dashboards/eso-rs.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(!panel["title"].as_str().unwrap_or_default().is_empty());
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        exprs.extend(
            targets
                .iter()
                .map(|t| t["expr"].as_str().unwrap().to_owned()),
        );
    }
    // Variables query `label_values(<metric>, <label>)`: the metric is what matters.
    let label_values = regex::Regex::new(r"^label_values\(([^,]+),").unwrap();
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["definition"].as_str() {
            let metric = label_values
                .captures(q)
                .unwrap_or_else(|| panic!("unexpected variable query {q}"));
            exprs.push(metric[1].trim().to_owned());
        }
    }
    exprs
}

fn alert_rules() -> Vec<Value> {
    let text =
        std::fs::read_to_string(workspace_root().join("deploy/dashboards/alerts.yaml")).unwrap();
    let rules: Value = serde_saphyr::from_str(&text).expect("alerts.yaml is YAML");
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn dashboard_and_alerts_use_only_metrics_the_operator_exports() {
    let exported = exported_metrics();
    for name in [
        "externalsecret_sync_calls_total",
        "externalsecret_sync_calls_error",
        "externalsecret_status_condition",
        "externalsecret_reconcile_duration",
        "externalsecret_provider_api_calls_count",
        "leader_election_master_status",
    ] {
        assert!(
            exported.contains(name),
            "{name} not found in the code; found {exported:?}"
        );
    }
    let mut used_by_dashboard = BTreeSet::new();
    for expr in dashboard_exprs() {
        let names = promql_metrics(&expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        for name in &names {
            assert!(
                exported.contains(name),
                "the dashboard queries {name}, which the operator does not export ({expr})"
            );
        }
        used_by_dashboard.extend(names);
    }
    // Sync rate, errors, readiness, duration, provider calls and leadership are all on it.
    for name in [
        "externalsecret_sync_calls_total",
        "externalsecret_sync_calls_error",
        "externalsecret_status_condition",
        "externalsecret_reconcile_duration",
        "externalsecret_provider_api_calls_count",
        "leader_election_master_status",
    ] {
        assert!(
            used_by_dashboard.contains(name),
            "the dashboard does not show {name}"
        );
    }

    let rules = alert_rules();
    assert!(rules.len() >= 5);
    for rule in &rules {
        let name = rule["alert"].as_str().expect("every rule is an alert");
        let expr = rule["expr"].as_str().unwrap();
        assert!(
            rule["for"].as_str().is_some(),
            "{name} fires on the first evaluation"
        );
        assert!(
            rule["annotations"]["summary"].as_str().is_some(),
            "{name} has no summary"
        );
        let names = promql_metrics(expr);
        assert!(!names.is_empty(), "{name}: no metric in {expr}");
        for metric in &names {
            assert!(
                exported.contains(metric),
                "alert {name} uses {metric}, which the operator does not export"
            );
        }
        // With several replicas: per-object series are deduplicated, and a gauge a former
        // leader still exports counts only while joined to the current leader.
        if names.iter().any(|n| n.ends_with("_status_condition")) {
            assert!(
                expr.contains("max by (namespace, name)") || expr.contains("max by (name)"),
                "{name}: {expr}"
            );
        }
        if names.contains("externalsecret_reconcile_duration") {
            assert!(
                expr.contains("leader_election_master_status") && expr.contains("== 1"),
                "{name}: {expr}"
            );
        }
    }
}

#[test]
fn promql_metric_extraction_ignores_labels_functions_and_grouping() {
    let names = promql_metrics(
        r#"max by (namespace, name) (externalsecret_reconcile_duration{namespace=~"$namespace"} and on (instance) (max by (instance) (leader_election_master_status) == 1)) / 1e9 > 30"#,
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "externalsecret_reconcile_duration".to_owned(),
            "leader_election_master_status".to_owned()
        ])
    );
    assert_eq!(
        promql_metrics("sum(rate(not_a_metric_we_export[$__rate_interval]))"),
        BTreeSet::from(["not_a_metric_we_export".to_owned()])
    );
}
