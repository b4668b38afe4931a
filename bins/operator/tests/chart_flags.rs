//! The Helm chart against the operator binary. The chart passes only flags `eso-operator`
//! knows, with values it accepts: the binary is run with the exact arguments the chart renders
//! (followed by the `crd` subcommand, so it parses every flag and then prints the CRDs instead
//! of connecting to a cluster). And the chart's RBAC grants every API request the running
//! operator makes, recorded by a proxy in front of the in-process test API server.
//!
//! The chart is rendered by `deploy/charts/render.py` with helm-python-sdk, run with
//! `ESO_HELM_PYTHON` or the workspace's `.venv-emu/bin/python`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use eso_test_support::chart::render_docs;
use serde_json::{Value, json};

/// The operator container's arguments in the chart rendered with `values`.
fn chart_args(values: &Value) -> Vec<String> {
    let docs = render_docs(values);
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn operator(args: &[String]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eso-operator"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_flag_the_chart_passes_is_accepted_by_the_operator() {
    let (ok, help) = operator(&["--help".to_owned()]);
    assert!(ok, "{help}");
    let cases = [
        json!({}),
        json!({"replicaCount": 3, "podDisruptionBudget": {"enabled": true}}),
        json!({"leaderElect": false}),
        // Every value that turns into a flag, set to something other than its default.
        json!({
            "leaderElectionID": "eso-rs-lease",
            "leaderElectionLeaseDuration": "20s",
            "leaderElectionRenewDeadline": "15s",
            "leaderElectionRetryPeriod": "3s",
            "concurrent": 4,
            "controllerClass": "dev",
            "scopedNamespace": "apps",
            "scopedRBAC": true,
            "processSecretStore": false,
            "storeRequeueInterval": "10m",
            "metricsPerObject": "all",
            "security": {"strictTenancy": true},
            "log": {"level": "debug", "format": "text"},
            "metrics": {"listen": {"port": 9090}},
            "livenessProbe": {"spec": {"address": "0.0.0.0", "port": 9091}},
            "extraArgs": {"client-qps": 20},
        }),
    ];
    for values in cases {
        let args = chart_args(&values);
        assert!(args.len() >= 5, "{values}: {args:?}");
        for arg in &args {
            let flag = arg.split('=').next().unwrap();
            assert!(
                help.contains(&format!("{flag} ")),
                "the chart passes {flag}, which `eso-operator --help` does not list"
            );
        }
        // Parse them for real: the `crd` subcommand prints the CRDs after the flags parse.
        let mut with_crd = args.clone();
        with_crd.push("crd".to_owned());
        let (ok, out) = operator(&with_crd);
        assert!(
            ok,
            "eso-operator refused the chart's arguments {args:?}: {out}"
        );
        assert!(out.contains("kind: CustomResourceDefinition"), "{out}");
    }
}

#[test]
fn a_misspelt_flag_is_refused_so_the_check_above_can_fail() {
    let (ok, out) = operator(&["--enable-leader-elektion=true".to_owned(), "crd".to_owned()]);
    assert!(!ok, "{out}");
    let (ok, out) = operator(&[
        "--leader-election-lease-duration=soon".to_owned(),
        "crd".to_owned(),
    ]);
    assert!(!ok, "{out}");
}

// ---- RBAC against the running operator -------------------------------------------------------

/// One API request as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ApiCall {
    verb: String,
    group: String,
    /// `resource` or `resource/subresource`.
    resource: String,
    /// None for cluster-scoped objects and requests across all namespaces.
    namespace: Option<String>,
}

/// The RBAC attributes of a request line, or None for non-resource URLs (discovery, version,
/// OpenAPI: readable by every authenticated identity).
fn api_call(method: &str, target: &str) -> Option<ApiCall> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => ((*group).to_owned(), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        rest => (None, rest),
    };
    let (resource, name, sub) = match rest {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub] => (*resource, Some(*name), Some(*sub)),
        _ => return None,
    };
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match (method, name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    };
    Some(ApiCall {
        verb: verb.to_owned(),
        group,
        resource: sub.map_or_else(|| resource.to_owned(), |s| format!("{resource}/{s}")),
        namespace,
    })
}

/// A TCP proxy in front of the API server that records every request line. It adds
/// `Connection: close` so each connection carries one request and every request head passes
/// through here (watches stream through unchanged).
struct RecordingProxy {
    addr: std::net::SocketAddr,
    requests: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(Self::relay(client, upstream, log.clone()));
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    async fn relay(
        mut client: tokio::net::TcpStream,
        upstream: std::net::SocketAddr,
        log: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut head = Vec::new();
        let mut buf = [0u8; 8192];
        let end = loop {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
        };
        let body = head.split_off(end + 4);
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        let request_line = lines.next().unwrap_or_default().to_owned();
        let mut rewritten = format!("{request_line}\r\n");
        for line in lines.filter(|l| !l.to_ascii_lowercase().starts_with("connection:")) {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
        rewritten.push_str("Connection: close\r\n\r\n");
        let mut words = request_line.split(' ');
        let (method, target) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        log.lock()
            .unwrap()
            .push((method.to_owned(), target.to_owned()));
        let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
            return;
        };
        if server.write_all(rewritten.as_bytes()).await.is_err()
            || server.write_all(&body).await.is_err()
        {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }

    fn calls(&self) -> std::collections::BTreeSet<ApiCall> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(m, t)| api_call(m, t))
            .collect()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The rules bound to a ServiceAccount in rendered chart documents: cluster-wide, and per
/// namespace.
struct Grants {
    cluster: Vec<Value>,
    namespaced: Vec<(String, Value)>,
}

impl Grants {
    fn of(docs: &[Value], sa_namespace: &str, sa_name: &str) -> Self {
        let names_sa = |b: &&Value| {
            b["subjects"].as_array().into_iter().flatten().any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["namespace"] == sa_namespace
                    && s["name"] == sa_name
            })
        };
        let rules = |kind: &str, name: &Value, ns: Option<&Value>| -> Vec<Value> {
            docs.iter()
                .find(|d| {
                    d["kind"] == kind
                        && &d["metadata"]["name"] == name
                        && ns.is_none_or(|ns| &d["metadata"]["namespace"] == ns)
                })
                .unwrap_or_else(|| panic!("{kind} {name} is bound but not rendered"))["rules"]
                .as_array()
                .unwrap()
                .clone()
        };
        let bindings = |kind: &'static str| docs.iter().filter(move |d| d["kind"] == kind);
        let mut grants = Self {
            cluster: Vec::new(),
            namespaced: Vec::new(),
        };
        for b in bindings("ClusterRoleBinding").filter(names_sa) {
            grants
                .cluster
                .extend(rules("ClusterRole", &b["roleRef"]["name"], None));
        }
        for b in bindings("RoleBinding").filter(names_sa) {
            let ns = &b["metadata"]["namespace"];
            let kind = b["roleRef"]["kind"].as_str().unwrap();
            let scope = (kind == "Role").then_some(ns);
            for rule in rules(kind, &b["roleRef"]["name"], scope) {
                grants
                    .namespaced
                    .push((ns.as_str().unwrap().to_owned(), rule));
            }
        }
        grants
    }

    fn allows(&self, call: &ApiCall) -> bool {
        let matches = |rule: &Value| {
            let has = |field: &str, want: &str| {
                rule[field]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == want))
            };
            has("apiGroups", &call.group)
                && has("resources", &call.resource)
                && has("verbs", &call.verb)
        };
        self.cluster.iter().any(matches)
            || call.namespace.as_ref().is_some_and(|ns| {
                self.namespaced
                    .iter()
                    .any(|(n, rule)| n == ns && matches(rule))
            })
    }
}

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// Runs the operator with the chart's arguments (default values, or scoped to the workload
/// namespace with `scopedRBAC`), as the chart's ServiceAccount would run in the chart's
/// namespace; drives every controller once (a SecretStore and an ExternalSecret with a
/// templateFrom ConfigMap, a failing ExternalSecret, a ClusterSecretStore, a
/// ClusterExternalSecret, and an ExternalSecret using a Password generator and, cluster-wide, a
/// ClusterGenerator); and checks that every API request it made is granted by the RBAC
/// the chart renders for those values. In-process only: the recording proxy speaks plain
/// HTTP, which only the test server serves.
/// How the operator is scoped: the whole cluster, the workload namespace, or the workload
/// namespace and a second (empty) one, each with its own Role.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Cluster,
    One,
    Two,
}

async fn operator_calls_are_granted(scope: Scope) {
    let scoped = scope != Scope::Cluster;
    use eso_tests::{TEST_MANAGER, TestCluster, eventually, install_crds};
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use kube::api::{Api, DynamicObject, Patch, PatchParams};

    let cluster = TestCluster::in_process().await.unwrap();
    let server = cluster.server().unwrap();
    let client = cluster.client();
    install_crds(&client).await.unwrap();
    // The operator runs in the cluster's test namespace; the workload lives in another one.
    let operator_ns = cluster.namespace().to_owned();
    let work = format!("{operator_ns}-apps");
    let other = format!("{operator_ns}-other");
    let values = match scope {
        Scope::Cluster => json!({}),
        Scope::One => json!({"scopedNamespace": work, "scopedRBAC": true}),
        Scope::Two => json!({"scopedNamespaces": [work, other], "scopedRBAC": true}),
    };
    let apply = PatchParams::apply(TEST_MANAGER).force();
    let apply_json = |api_version: &str, kind: &str, plural: &str, body: Value| {
        let client = client.clone();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
        let apply = apply.clone();
        async move {
            let ns = body["metadata"]["namespace"].as_str().map(str::to_owned);
            let api: Api<DynamicObject> = match &ns {
                Some(ns) => Api::namespaced_with(client, ns, &resource),
                None => Api::all_with(client, &resource),
            };
            let name = body["metadata"]["name"].as_str().unwrap().to_owned();
            api.patch(&name, &apply, &Patch::Apply(&body))
                .await
                .unwrap();
        }
    };
    Api::<Namespace>::all(client.clone())
        .patch(
            &work,
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": work, "labels": {"team": "a"}}})),
        )
        .await
        .unwrap();
    if scope == Scope::Two {
        Api::<Namespace>::all(client.clone())
            .patch(
                &other,
                &apply,
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": other}})),
            )
            .await
            .unwrap();
    }
    let v1 = "external-secrets.io/v1";
    apply_json(
        "v1",
        "ConfigMap",
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "tpl", "namespace": work}, "data": {"greeting": "hello {{ .k }}"}}),
    )
    .await;
    apply_json(
        v1,
        "SecretStore",
        "secretstores",
        json!({"apiVersion": v1, "kind": "SecretStore",
        "metadata": {"name": "fake", "namespace": work},
        "spec": {"provider": {"fake": {"data": [{"key": "k", "value": "v"}]}}}}),
    )
    .await;
    apply_json(
        v1,
        "ClusterSecretStore",
        "clustersecretstores",
        json!({"apiVersion": v1,
        "kind": "ClusterSecretStore", "metadata": {"name": format!("{work}-fake")},
        "spec": {"provider": {"fake": {"data": [{"key": "k", "value": "cluster"}]}}}}),
    )
    .await;
    apply_json(
        v1,
        "ExternalSecret",
        "externalsecrets",
        json!({"apiVersion": v1,
        "kind": "ExternalSecret", "metadata": {"name": "es", "namespace": work},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "fake"},
            "target": {"name": "target", "template": {"templateFrom": [
                {"configMap": {"name": "tpl", "items": [{"key": "greeting"}]}}]}},
            "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}]}}),
    )
    .await;
    apply_json(
        v1,
        "ExternalSecret",
        "externalsecrets",
        json!({"apiVersion": v1,
        "kind": "ExternalSecret", "metadata": {"name": "broken", "namespace": work},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "fake"},
            "data": [{"secretKey": "k", "remoteRef": {"key": "missing"}}]}}),
    )
    .await;
    apply_json(
        v1,
        "ClusterExternalSecret",
        "clusterexternalsecrets",
        json!({"apiVersion": v1,
        "kind": "ClusterExternalSecret", "metadata": {"name": format!("{work}-ces")},
        "spec": {"externalSecretName": "fanned",
            "namespaceSelectors": [{"matchLabels": {"team": "a"}}],
            "externalSecretSpec": {"refreshInterval": "1h",
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": format!("{work}-fake")},
                "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}]}}}),
    )
    .await;

    // Generators: a namespaced Password, and (cluster-wide) a ClusterGenerator.
    let generators = "generators.external-secrets.io/v1alpha1";
    apply_json(
        generators,
        "Password",
        "passwords",
        json!({"apiVersion": generators, "kind": "Password",
        "metadata": {"name": "pw", "namespace": work}, "spec": {"length": 16}}),
    )
    .await;
    let mut generated_from =
        vec![json!({"sourceRef": {"generatorRef": {"kind": "Password", "name": "pw"}}})];
    if !scoped {
        apply_json(
            generators,
            "ClusterGenerator",
            "clustergenerators",
            json!({"apiVersion": generators, "kind": "ClusterGenerator",
            "metadata": {"name": format!("{work}-uuid")},
            "spec": {"kind": "UUID", "generator": {"uuidSpec": {}}}}),
        )
        .await;
        generated_from.push(json!({"sourceRef": {"generatorRef": {"kind": "ClusterGenerator", "name": format!("{work}-uuid")}}}));
    }
    apply_json(
        v1,
        "ExternalSecret",
        "externalsecrets",
        json!({"apiVersion": v1,
        "kind": "ExternalSecret", "metadata": {"name": "gen", "namespace": work},
        "spec": {"refreshInterval": "1h", "target": {"name": "gen-target"},
            "dataFrom": generated_from}}),
    )
    .await;

    let proxy = RecordingProxy::start(server.addr()).await;
    let dir = std::env::temp_dir().join(format!(
        "eso-chart-rbac-{}-{operator_ns}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        server
            .kubeconfig(&operator_ns)
            .replace(&server.url(), &format!("http://{}", proxy.addr)),
    )
    .unwrap();
    // The chart's default arguments, with the listen addresses moved to free local ports.
    let args: Vec<String> = chart_args(&values)
        .into_iter()
        .map(|a| {
            if a.starts_with("--metrics-addr=") {
                format!("--metrics-addr={}", free_addr())
            } else if a.starts_with("--health-addr=") {
                format!("--health-addr={}", free_addr())
            } else {
                a
            }
        })
        .collect();
    let log = dir.join("operator.log");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_eso-operator"))
        .args(&args)
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAME", "eso-rs-0")
        .env("POD_NAMESPACE", &operator_ns)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &work);
    let ess: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &work,
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("external-secrets.io", "v1", "ExternalSecret"),
            "externalsecrets",
        ),
    );
    let ready = |name: &'static str, want: &'static str| {
        let ess = ess.clone();
        async move {
            ess.get_opt(name).await.ok().flatten().is_some_and(|es| {
                es.data["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == want)
            })
        }
    };
    let outcome = eventually("every controller to have acted", || async {
        let target = secrets.get_opt("target").await.ok().flatten();
        let templated = target.is_some_and(|s| {
            s.data
                .unwrap_or_default()
                .get("greeting")
                .map(|v| v.0.as_slice())
                == Some(b"hello v".as_slice())
        });
        let generated = secrets
            .get_opt("gen-target")
            .await
            .ok()
            .flatten()
            .and_then(|s| s.data)
            .is_some_and(|d| d.contains_key("password") && (scoped || d.contains_key("uuid")));
        templated
            && generated
            && (scoped || secrets.get_opt("fanned").await.ok().flatten().is_some())
            && ready("es", "True").await
            && ready("broken", "False").await
    })
    .await;
    let _ = child.kill().await;
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = outcome {
        panic!("{e}; operator log:\n{logs}");
    }

    let calls = proxy.calls();
    let docs = render_docs(&values);
    let grants = Grants::of(&docs, &operator_ns_of(&docs), "eso-rs");
    // The chart installs into its release namespace; here the operator runs in the test's.
    let grants = Grants {
        cluster: grants.cluster,
        namespaced: grants
            .namespaced
            .into_iter()
            .map(|(ns, rule)| {
                (
                    if ns == operator_ns_of(&docs) {
                        operator_ns.clone()
                    } else {
                        ns
                    },
                    rule,
                )
            })
            .collect(),
    };
    let denied: Vec<&ApiCall> = calls.iter().filter(|c| !grants.allows(c)).collect();
    assert!(
        denied.is_empty(),
        "the chart's RBAC would deny: {denied:#?}\nall calls: {calls:#?}"
    );
    // The scenario exercised what it should (so the check above had something to check).
    let mut expected = vec![
        ("patch", "", "secrets", Some(&work)),
        ("get", "", "configmaps", Some(&work)),
        ("create", "events.k8s.io", "events", Some(&work)),
        (
            "patch",
            "external-secrets.io",
            "externalsecrets/status",
            Some(&work),
        ),
        (
            "patch",
            "external-secrets.io",
            "secretstores/status",
            Some(&work),
        ),
        (
            "create",
            "coordination.k8s.io",
            "leases",
            Some(&operator_ns),
        ),
    ];
    if scope == Scope::Two {
        expected.push((
            "watch",
            "external-secrets.io",
            "externalsecrets",
            Some(&other),
        ));
        expected.push(("watch", "", "secrets", Some(&other)));
    }
    if scoped {
        expected.push((
            "watch",
            "external-secrets.io",
            "externalsecrets",
            Some(&work),
        ));
        let cluster_wide: Vec<&ApiCall> = calls.iter().filter(|c| c.namespace.is_none()).collect();
        assert!(
            cluster_wide.is_empty(),
            "a scoped operator made cluster-wide calls: {cluster_wide:#?}"
        );
    } else {
        expected.push((
            "watch",
            "external-secrets.io",
            "clusterexternalsecrets",
            None,
        ));
        expected.push((
            "patch",
            "external-secrets.io",
            "externalsecrets",
            Some(&work),
        ));
    }
    for (verb, group, resource, ns) in expected {
        let call = ApiCall {
            verb: verb.to_owned(),
            group: group.to_owned(),
            resource: resource.to_owned(),
            namespace: ns.cloned(),
        };
        assert!(calls.contains(&call), "expected {call:?} among {calls:#?}");
    }
    cluster.cleanup().await.unwrap();
}

fn operator_ns_of(docs: &[Value]) -> String {
    docs.iter()
        .find(|d| d["kind"] == "Deployment")
        .and_then(|d| d["metadata"]["namespace"].as_str())
        .unwrap()
        .to_owned()
}

/// The recording proxy speaks plain HTTP, which only the in-process server serves; the\n/// real-cluster lane skips `in_process::` (see `.ci/run`).
mod in_process {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_api_call_of_the_running_operator_is_granted_by_the_default_chart() {
        operator_calls_are_granted(Scope::Cluster).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_api_call_of_the_scoped_operator_is_granted_by_its_namespace_role() {
        operator_calls_are_granted(Scope::One).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_api_call_of_an_operator_scoped_to_two_namespaces_is_granted_by_their_roles() {
        operator_calls_are_granted(Scope::Two).await;
    }
}
