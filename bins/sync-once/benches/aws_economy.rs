//! AWS Secrets Manager economy through the one-shot sync path: 1,000 ExternalSecrets reading
//! 100 distinct secrets through one SecretStore (static keys), against a real moto server and
//! the in-process test API server. Prints Secrets Manager calls per pass, counted twice: by
//! the provider (`externalsecret_provider_api_calls_count`) and by moto's request recorder,
//! and the sync throughput; with the operator's default 5 ms batch window and with none (what
//! `sync-once` uses, since it syncs one ExternalSecret after another).
//!
//! Run: `cargo bench -p sync-once --bench aws_economy` (needs `moto_server`: see the README).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eso_core::oneshot::{OneShotOptions, sync_cluster};
use eso_provider_aws::{AwsConfig, AwsProvider};
use eso_tests::{TEST_MANAGER, TestCluster, install_crds};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

const EXTERNAL_SECRETS: usize = 1000;
const KEYS: usize = 100;
const REGION: &str = "eu-west-1";

/// moto with its request recorder on; stopped (through an `sh` watchdog reading stdin) when
/// dropped or when this process dies.
struct Moto {
    endpoint: String,
    recording: PathBuf,
    child: Child,
    watchdog: Option<ChildStdin>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.watchdog.take());
        let _ = self.child.wait();
    }
}

impl Moto {
    fn start(recording: PathBuf) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" "$@" & pid=$!; read _ignored; kill $pid 2>/dev/null; wait $pid"#)
            .arg(support::server_binary("ESO_MOTO_BIN", "moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ENABLE_RECORDING", "true")
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto must be installed: python3 -m venv .venv-emu && .venv-emu/bin/pip install 'moto[server]==5.2.5'");
        let watchdog = child.stdin.take();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            recording,
            child,
            watchdog,
        }
    }

    /// Secrets Manager requests moto has served, by operation (`X-Amz-Target`).
    fn recorded(&self) -> BTreeMap<String, u64> {
        let text = std::fs::read_to_string(&self.recording).unwrap_or_default();
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(op) = entry["headers"]["X-Amz-Target"]
                .as_str()
                .and_then(|t| t.strip_prefix("secretsmanager."))
            {
                *counts.entry(op.to_owned()).or_default() += 1;
            }
        }
        counts
    }

    async fn create_secret(&self, http: &reqwest::Client, name: &str, value: &str) {
        let answer = http
            .post(format!("{}/", self.endpoint))
            .header("X-Amz-Target", "secretsmanager.CreateSecret")
            .header("Content-Type", "application/x-amz-json-1.1")
            .header(
                "Authorization",
                format!("AWS4-HMAC-SHA256 Credential=seed/20260101/{REGION}/secretsmanager/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(json!({"Name": name, "SecretString": value}).to_string())
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{name}: {}", answer.status());
    }
}

async fn apply(client: &kube::Client, ns: &str, kind: &str, plural: &str, body: serde_json::Value) {
    let ar = ApiResource {
        group: "external-secrets.io".into(),
        version: "v1".into(),
        api_version: "external-secrets.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let name = body["metadata"]["name"].as_str().unwrap().to_owned();
    api.patch(
        &name,
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap();
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>, name: &str) -> u64 {
    after
        .iter()
        .filter(|(k, _)| k.ends_with(name))
        .map(|(k, v)| v - before.get(k).copied().unwrap_or(0))
        .sum()
}

/// How many more requests of one operation moto served.
fn served(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>, op: &str) -> u64 {
    after.get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let calls = support::Calls::install(&["provider", "call"]);

    let dir = tempfile::tempdir()?;
    let moto = Moto::start(dir.path().join("recording.jsonl"));
    let http = reqwest::Client::builder().no_proxy().build()?;
    for i in 0..KEYS {
        moto.create_secret(
            &http,
            &format!("bench/key-{i}"),
            &json!({"value": format!("v{i}")}).to_string(),
        )
        .await;
    }

    let cluster = TestCluster::in_process().await?;
    let client = cluster.client();
    install_crds(&client).await?;
    let ns = cluster.namespace().to_owned();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    let creds: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws-creds", "namespace": ns},
        "stringData": {"id": "AKIAEXAMPLE", "secret": "secret"}
    }))?;
    secrets.create(&Default::default(), &creds).await?;
    apply(
        &client,
        &ns,
        "SecretStore",
        "secretstores",
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": "aws", "namespace": ns},
            "spec": {"provider": {"aws": {"service": "SecretsManager", "region": REGION,
                "auth": {"secretRef": {
                    "accessKeyIDSecretRef": {"name": "aws-creds", "key": "id"},
                    "secretAccessKeySecretRef": {"name": "aws-creds", "key": "secret"}}}}}}
        }),
    )
    .await;
    for i in 0..EXTERNAL_SECRETS {
        apply(&client, &ns, "ExternalSecret", "externalsecrets", json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": format!("es-{i}"), "namespace": ns},
            "spec": {"secretStoreRef": {"name": "aws"}, "refreshInterval": "1m",
                "data": [{"secretKey": "value", "remoteRef": {"key": format!("bench/key-{}", i % KEYS), "property": "value"}}]}
        }))
        .await;
    }

    println!(
        "{EXTERNAL_SECRETS} ExternalSecrets, {KEYS} distinct Secrets Manager secrets, one SecretStore (static keys), moto"
    );
    println!(
        "| pass | reads | wall time | syncs/s | failed | GetSecretValue | BatchGetSecretValue | moto saw (Get / Batch) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let passes = [
        (
            "first (creates every Secret)",
            "5 ms window",
            Duration::from_millis(5),
        ),
        (
            "second (steady state)",
            "5 ms window",
            Duration::from_millis(5),
        ),
        ("third (steady state)", "no window", Duration::ZERO),
    ];
    let mut before = calls.snapshot();
    let mut seen_before = moto.recorded();
    for (pass, reads, window) in passes {
        let aws = AwsConfig::default()
            .endpoint_url(Some(moto.endpoint.clone()))
            .batch_window(window);
        let registry = eso_providers::builtin().with(Arc::new(AwsProvider::new().config(aws)));
        let options = OneShotOptions {
            namespace: Some(ns.clone()),
            ..OneShotOptions::default()
        };
        let t = Instant::now();
        let results = sync_cluster(client.clone(), registry, options).await?;
        let elapsed = t.elapsed();
        let failed = results.iter().filter(|r| r.outcome.is_failure()).count();
        let after = calls.snapshot();
        let seen = moto.recorded();
        println!(
            "| {pass} | {} | {:.1} s | {:.0} | {failed} | {} | {} | {} / {} |",
            reads,
            elapsed.as_secs_f64(),
            results.len() as f64 / elapsed.as_secs_f64(),
            delta(&after, &before, " GetSecretValue"),
            delta(&after, &before, " BatchGetSecretValue"),
            served(&seen, &seen_before, "GetSecretValue"),
            served(&seen, &seen_before, "BatchGetSecretValue"),
        );
        if failed > 0
            && let Some(r) = results.iter().find(|r| r.outcome.is_failure())
        {
            println!("first failure: {}: {:?}", r.external_secret, r.outcome);
        }
        before = after;
        seen_before = seen;
    }
    cluster.cleanup().await?;
    Ok(())
}
