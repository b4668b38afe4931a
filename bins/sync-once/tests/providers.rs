//! `sync-once render` against the local servers of the newer providers (issues 21 and 22):
//! Google Secret Manager (its endpoint from gcloud's override variable, the token URL from the
//! service-account key), GitLab (everything in the store spec) and Doppler (its base URL from
//! `DOPPLER_BASE_URL`, as upstream reads it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Output;

use serde_json::{Value, json};

/// The variables `sync-once` reads for these providers, removed from the child's environment
/// unless a test sets them.
const VARIABLES: &[&str] = &[
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_STS",
    "GCE_METADATA_HOST",
    "AZURE_AUTHORITY_HOST",
    "DOPPLER_BASE_URL",
    "DOPPLER_VERIFY_TLS",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "SSL_CERT_FILE",
];

/// `sync-once render -o json` of `docs` with only `vars` of [`VARIABLES`] set.
fn render(docs: &[Value], vars: &[(&str, &str)]) -> Output {
    support::render_json(docs, VARIABLES, vars)
}

/// The rendered Secret (name and decoded data), or the exit code and error output.
fn rendered(out: &Output) -> Result<(String, Value), String> {
    if out.status.code() != Some(0) {
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let secret: Value = serde_json::from_slice(&out.stdout).unwrap();
    use base64::Engine as _;
    let data = secret["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            (k.clone(), Value::String(String::from_utf8(bytes).unwrap()))
        })
        .collect();
    Ok((
        secret["metadata"]["name"].as_str().unwrap().to_owned(),
        Value::Object(data),
    ))
}

fn store(provider: Value) -> Value {
    json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
           "metadata": {"name": "store", "namespace": "default"},
           "spec": {"provider": provider}})
}

fn external_secret(data: Value, data_from: Value) -> Value {
    json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
           "metadata": {"name": "app", "namespace": "default"},
           "spec": {"secretStoreRef": {"name": "store"},
                    "target": {"name": "app-secret"},
                    "data": data, "dataFrom": data_from}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_reads_google_secret_manager_through_the_gcloud_endpoint_variable() {
    let server = eso_testserver_gcp::GcpTestServer::start().await.unwrap();
    const SA: &str = "eso@p1.iam.gserviceaccount.com";
    server
        .secret("p1", "db")
        .version(br#"{"user":"app","password":"old"}"#)
        .version(br#"{"user":"app","password":"pw"}"#)
        .create();
    let docs = [
        server.service_account_key_secret("default", "gcp-key", "key.json", SA),
        store(json!({"gcpsm": {"projectID": "p1", "auth": {"secretRef": {
            "secretAccessKeySecretRef": {"name": "gcp-key", "key": "key.json"}}}}})),
        external_secret(
            json!([
                {"secretKey": "pw", "remoteRef": {"key": "db", "property": "password"}},
                {"secretKey": "first", "remoteRef": {"key": "db", "version": "1",
                                                      "property": "password"}}
            ]),
            json!([{"extract": {"key": "db"}}]),
        ),
    ];
    let url = server.url();
    let out = render(
        &docs,
        &[("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER", &url)],
    );
    let (name, data) = rendered(&out).unwrap();
    assert_eq!(name, "app-secret");
    assert_eq!(
        data,
        json!({"pw": "pw", "first": "old", "user": "app", "password": "pw"})
    );

    // A value that is not a URL: a usage error (exit 2) naming the variable, before any read.
    let before = server.count("AccessSecretVersion");
    let out = render(
        &docs,
        &[("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER", "not a url")],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER"),
        "{out:?}"
    );
    assert_eq!(server.count("AccessSecretVersion"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_reads_gitlab_variables_with_environment_scopes() {
    use eso_testserver_gitlab::{GitlabTestServer, Token, Variable};
    let server = GitlabTestServer::start().await.unwrap();
    let group = server.group(7, "acme");
    server.project(42, "acme/app", &[group]);
    server.project_variable(
        42,
        Variable::new("DB_PASSWORD", "prod-pass").scope("production"),
    );
    server.project_variable(42, Variable::new("DB_PASSWORD", "any-pass"));
    server.project_variable(42, Variable::new("CONFIG", r#"{"user":"admin"}"#));
    server.group_variable(7, Variable::new("DB_HOST", "db.acme"));
    server.token(Token::new("glpat-good"));
    let gitlab = |token: &str| {
        [
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "gitlab", "namespace": "default"},
                   "stringData": {"token": token}}),
            store(json!({"gitlab": {
                "url": server.url(), "projectID": "42", "inheritFromGroups": true,
                "environment": "production",
                "auth": {"SecretRef": {"accessToken": {"name": "gitlab", "key": "token"}}}}})),
            external_secret(
                json!([{"secretKey": "user",
                        "remoteRef": {"key": "CONFIG", "property": "user"}}]),
                json!([{"find": {"name": {"regexp": "^DB_"}}}]),
            ),
        ]
    };
    let (name, data) = rendered(&render(&gitlab("glpat-good"), &[])).unwrap();
    assert_eq!(name, "app-secret");
    assert_eq!(
        data,
        json!({"user": "admin", "DB_PASSWORD": "prod-pass", "DB_HOST": "db.acme"})
    );

    // A token GitLab does not know: exit 1, the cause and the provider named.
    let out = render(&gitlab("glpat-wrong"), &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gitlab"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_reads_doppler_through_doppler_base_url() {
    let server = eso_testserver_doppler::DopplerTestServer::start()
        .await
        .unwrap();
    server.config("backend", "prd");
    server.secret("backend", "prd", "DB_PASSWORD", "pw");
    server.secret("backend", "prd", "API_KEY", "k");
    let docs = [
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "doppler", "namespace": "default"},
               "stringData": {"dopplerToken": server.service_token("backend", "prd")}}),
        store(json!({"doppler": {"auth": {"secretRef": {
            "dopplerToken": {"name": "doppler", "key": "dopplerToken"}}}}})),
        external_secret(
            json!([{"secretKey": "password", "remoteRef": {"key": "DB_PASSWORD"}}]),
            json!([{"find": {"name": {"regexp": "^API_"}}}]),
        ),
    ];
    let url = server.url();
    let (name, data) = rendered(&render(&docs, &[("DOPPLER_BASE_URL", &url)])).unwrap();
    assert_eq!(name, "app-secret");
    assert_eq!(data, json!({"password": "pw", "API_KEY": "k"}));
}

/// A managed identity gets its token from the IMDS `AZURE_POD_IDENTITY_AUTHORITY_HOST` names
/// (as azure-identity and MSAL read it), and the vault's TLS certificate is trusted through
/// `SSL_CERT_FILE` (the platform's roots, as Go's clients read them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_reads_azure_key_vault_with_a_managed_identity_through_the_imds_variable() {
    let server = eso_testserver_azure::AzureTestServer::start().unwrap();
    server.add_managed_identity("user-mi");
    server.set_secret("db", "from-imds");
    let docs = [
        store(json!({"azurekv": {"vaultUrl": server.vault_url(),
                                 "authType": "ManagedIdentity", "identityId": "user-mi"}})),
        external_secret(
            json!([{"secretKey": "password", "remoteRef": {"key": "db"}}]),
            json!([]),
        ),
    ];
    let ca = server.ca_file().to_str().unwrap().to_owned();
    let imds = server.imds_base().to_owned();
    let (_, data) = rendered(&render(
        &docs,
        &[
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds),
            ("SSL_CERT_FILE", &ca),
        ],
    ))
    .unwrap();
    assert_eq!(data, json!({"password": "from-imds"}));
    assert!(server.token_requests() >= 1);

    // The variable is what names the IMDS: another address is asked, and refuses.
    let err = rendered(&render(
        &docs,
        &[
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9"),
            ("SSL_CERT_FILE", &ca),
        ],
    ))
    .unwrap_err();
    assert!(err.contains("azurekv"), "{err}");
    // And the test CA is trusted only through SSL_CERT_FILE.
    let err = rendered(&render(
        &docs,
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds)],
    ))
    .unwrap_err();
    assert!(err.contains("azurekv"), "{err}");
}
