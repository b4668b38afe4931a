//! Google Secret Manager and Azure Key Vault economy through the one-shot sync path: for each,
//! 1,000 ExternalSecrets reading 100 distinct secrets (`property` of a JSON value) through one
//! SecretStore (a service-account key; a service principal's client secret), against the
//! provider's local test server and the in-process test API server. Prints, per pass, the
//! secret reads and token requests the server answered and the sync throughput.
//!
//! Run: `cargo bench -p sync-once --bench cloud_economy`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use eso_core::oneshot::{OneShotOptions, sync_cluster};
use eso_tests::{TEST_MANAGER, TestCluster, install_crds};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

const EXTERNAL_SECRETS: usize = 1000;
const KEYS: usize = 100;

async fn apply(client: &kube::Client, ns: &str, kind: &str, plural: &str, body: Value) {
    let ar = ApiResource {
        group: if kind == "Secret" {
            String::new()
        } else {
            "external-secrets.io".into()
        },
        version: "v1".into(),
        api_version: body["apiVersion"].as_str().unwrap().to_owned(),
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

/// A fresh namespace holding `credentials`, SecretStore `store` with `provider`, and the
/// ExternalSecrets, each reading `property` `value` of key `bench-key-<i mod KEYS>`.
async fn world(credentials: Value, provider: Value) -> anyhow::Result<(TestCluster, String)> {
    let cluster = TestCluster::in_process().await?;
    let client = cluster.client();
    install_crds(&client).await?;
    let ns = cluster.namespace().to_owned();
    let mut credentials = credentials;
    credentials["metadata"]["namespace"] = json!(ns);
    apply(&client, &ns, "Secret", "secrets", credentials).await;
    apply(
        &client,
        &ns,
        "SecretStore",
        "secretstores",
        json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
               "metadata": {"name": "store", "namespace": ns},
               "spec": {"provider": provider}}),
    )
    .await;
    for i in 0..EXTERNAL_SECRETS {
        apply(
            &client,
            &ns,
            "ExternalSecret",
            "externalsecrets",
            json!({
                "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "metadata": {"name": format!("es-{i}"), "namespace": ns},
                "spec": {"secretStoreRef": {"name": "store"}, "refreshInterval": "1m",
                    "data": [{"secretKey": "value", "remoteRef": {
                        "key": format!("bench-key-{}", i % KEYS), "property": "value"}}]}
            }),
        )
        .await;
    }
    Ok((cluster, ns))
}

/// Two one-shot passes (a new client each, as `sync-once run` makes); `counts` reads the
/// server's (reads, token requests) so far.
async fn passes(
    provider: &str,
    cluster: &TestCluster,
    ns: &str,
    registry: impl Fn() -> eso_core::ProviderRegistry,
    counts: impl Fn() -> (usize, usize),
) -> anyhow::Result<()> {
    let mut before = counts();
    for pass in ["first (creates every Secret)", "second (steady state)"] {
        let options = OneShotOptions {
            namespace: Some(ns.to_owned()),
            ..OneShotOptions::default()
        };
        let t = Instant::now();
        let results = sync_cluster(cluster.client(), registry(), options).await?;
        let elapsed = t.elapsed();
        let failed = results.iter().filter(|r| r.outcome.is_failure()).count();
        let after = counts();
        println!(
            "| {provider} | {pass} | {:.1} s | {:.0} | {failed} | {} | {} |",
            elapsed.as_secs_f64(),
            results.len() as f64 / elapsed.as_secs_f64(),
            after.0 - before.0,
            after.1 - before.1,
        );
        if let Some(r) = results.iter().find(|r| r.outcome.is_failure()) {
            println!("first failure: {}: {:?}", r.external_secret, r.outcome);
        }
        before = after;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    println!(
        "{EXTERNAL_SECRETS} ExternalSecrets, {KEYS} distinct secrets, one SecretStore, local servers"
    );
    println!("| provider | pass | wall time | syncs/s | failed | secret reads | token requests |");
    println!("|---|---|---|---|---|---|---|");

    // Google Secret Manager: AccessSecretVersion reads, OAuth2 token requests.
    {
        use eso_providers::gcp::{GcpConfig, GcpEndpoints, GcpProvider};
        use eso_testserver_gcp::{GcpTestServer, method};
        let server = GcpTestServer::start().await?;
        for i in 0..KEYS {
            server
                .secret("p1", &format!("bench-key-{i}"))
                .version(json!({"value": format!("v{i}")}).to_string().as_bytes())
                .create();
        }
        let key = server.service_account_key_secret(
            "default",
            "gcp-key",
            "key.json",
            "eso@p1.iam.gserviceaccount.com",
        );
        let (cluster, ns) = world(
            key,
            json!({"gcpsm": {"projectID": "p1", "auth": {"secretRef": {
                "secretAccessKeySecretRef": {"name": "gcp-key", "key": "key.json"}}}}}),
        )
        .await?;
        let url = server.url();
        passes(
            "gcpsm",
            &cluster,
            &ns,
            || {
                eso_providers::builtin()
                    .with(Arc::new(GcpProvider::new().config(
                        GcpConfig::default().endpoints(GcpEndpoints::all_at(&url)),
                    )))
            },
            || {
                (
                    server.count(method::ACCESS_SECRET_VERSION),
                    server.count(method::OAUTH2_TOKEN),
                )
            },
        )
        .await?;
        cluster.cleanup().await?;
    }

    // Azure Key Vault: authorized vault requests, Entra ID token requests.
    {
        use eso_providers::azure::{AzureConfig, AzureKvProvider};
        use eso_testserver_azure::AzureTestServer;
        let server = AzureTestServer::start()?;
        server.add_client_secret("sp-bench", "s3cret");
        for i in 0..KEYS {
            server.set_secret(
                &format!("bench-key-{i}"),
                &json!({"value": format!("v{i}")}).to_string(),
            );
        }
        let (cluster, ns) = world(
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "azure-creds"},
                   "stringData": {"client-id": "sp-bench", "client-secret": "s3cret"}}),
            json!({"azurekv": {"vaultUrl": server.vault_url(), "tenantId": server.tenant(),
                "authSecretRef": {
                    "clientId": {"name": "azure-creds", "key": "client-id"},
                    "clientSecret": {"name": "azure-creds", "key": "client-secret"}}}}),
        )
        .await?;
        let authority = server.authority_host();
        let ca = server.ca_pem().as_bytes().to_vec();
        passes(
            "azurekv",
            &cluster,
            &ns,
            || {
                eso_providers::builtin().with(Arc::new(
                    AzureKvProvider::new().config(
                        AzureConfig::default()
                            .authority_host(&authority)
                            .extra_roots_pem(ca.clone())
                            .request_timeout(Duration::from_secs(10)),
                    ),
                ))
            },
            || (server.vault_requests(), server.token_requests()),
        )
        .await?;
        cluster.cleanup().await?;
    }
    Ok(())
}
