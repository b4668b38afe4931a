//! The AWS endpoint of `sync-once` (`--aws-endpoint-url` and the SDK's standard
//! `AWS_ENDPOINT_URL*` variables) against a real moto server (`ESO_MOTO_BIN`, or
//! `moto_server` on PATH or in `.venv-emu`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use eso_tests::{TEST_MANAGER, TestCluster, install_crds};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

const REGION: &str = "eu-west-1";

fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ESO_MOTO_BIN") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-emu/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    "moto_server".into()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A moto server on a free port, stopped when dropped (or when this process dies: a small
/// `sh` watchdog kills it when its stdin closes).
struct Moto {
    endpoint: String,
    child: Child,
    watchdog: Option<ChildStdin>,
}

impl Moto {
    fn start() -> Self {
        let port = free_port();
        let bin = moto_binary();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" "$@" & pid=$!; read _ignored; kill $pid 2>/dev/null; wait $pid"#)
            .arg(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e} (install moto: python3 -m venv .venv-emu && .venv-emu/bin/pip install 'moto[server]==5.2.5')",
                    bin.display()
                )
            });
        let watchdog = child.stdin.take();
        let endpoint = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            endpoint,
            child,
            watchdog,
        }
    }

    /// One AWS JSON-protocol call (moto routes by the credential scope and, by default,
    /// does not check signatures).
    async fn call(&self, service: &str, target: &str, body: serde_json::Value) {
        let answer = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}/", self.endpoint))
            .header("X-Amz-Target", target)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header(
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=seed/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            answer.status().is_success(),
            "{target}: {}",
            answer.status()
        );
    }

    async fn seed(&self) {
        self.call(
            "secretsmanager",
            "secretsmanager.CreateSecret",
            json!({"Name": "db", "SecretString": r#"{"password":"from-sm"}"#}),
        )
        .await;
        self.call(
            "ssm",
            "AmazonSSM.PutParameter",
            json!({"Name": "/app/token", "Value": "from-ps", "Type": "String"}),
        )
        .await;
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.watchdog.take());
        let _ = self.child.wait();
    }
}

/// An endpoint nobody listens on.
fn dead_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

fn store(name: &str, service: &str) -> serde_json::Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"provider": {"aws": {"service": service, "region": REGION,
            "auth": {"secretRef": {
                "accessKeyIDSecretRef": {"name": "aws-creds", "key": "id"},
                "secretAccessKeySecretRef": {"name": "aws-creds", "key": "secret"}}}}}}
    })
}

/// Two stores (Secrets Manager and Parameter Store) and one ExternalSecret reading both.
fn manifests() -> String {
    let docs = [
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "aws-creds", "namespace": "default"},
            "stringData": {"id": "AKIAEXAMPLE", "secret": "secret"}}),
        store("sm", "SecretsManager"),
        store("ps", "ParameterStore"),
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"target": {"name": "app"}, "data": [
                {"secretKey": "password", "sourceRef": {"storeRef": {"name": "sm"}},
                 "remoteRef": {"key": "db", "property": "password"}},
                {"secretKey": "token", "sourceRef": {"storeRef": {"name": "ps"}},
                 "remoteRef": {"key": "/app/token"}}]}}),
    ];
    docs.iter()
        .map(serde_json::Value::to_string)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// `sync-once render` of [`manifests`] with these arguments and only these AWS variables.
fn render(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let aws_vars: Vec<String> = std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("AWS_"))
        .collect();
    let unset: Vec<&str> = aws_vars.iter().map(String::as_str).collect();
    let mut all_args = vec!["render", "-f", "-", "-o", "json"];
    all_args.extend_from_slice(args);
    support::sync_once(&all_args, Some(&manifests()), &unset, vars)
}

/// The rendered Secret's data, decoded, or the error output.
fn rendered_data(out: &Output) -> Result<serde_json::Value, String> {
    if out.status.code() != Some(0) {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let secret: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(secret["data"].clone())
}

// base64 of "from-sm" and "from-ps"
const EXPECTED: &str = r#"{"password":"ZnJvbS1zbQ==","token":"ZnJvbS1wcw=="}"#;

#[tokio::test]
async fn render_reads_aws_through_the_endpoint_flag() {
    let moto = Moto::start();
    moto.seed().await;
    let out = render(&["--aws-endpoint-url", &moto.endpoint], &[]);
    assert_eq!(rendered_data(&out).unwrap().to_string(), EXPECTED);

    // The flag wins over AWS_ENDPOINT_URL.
    let dead = dead_endpoint();
    let out = render(
        &["--aws-endpoint-url", &moto.endpoint],
        &[("AWS_ENDPOINT_URL", &dead)],
    );
    assert_eq!(rendered_data(&out).unwrap().to_string(), EXPECTED);
}

#[tokio::test]
async fn render_honours_the_sdk_endpoint_variables() {
    let moto = Moto::start();
    moto.seed().await;
    let out = render(&[], &[("AWS_ENDPOINT_URL", &moto.endpoint)]);
    assert_eq!(rendered_data(&out).unwrap().to_string(), EXPECTED);

    // Each service's own variable wins over the general endpoint (and over the flag).
    let dead = dead_endpoint();
    let out = render(
        &["--aws-endpoint-url", &dead],
        &[
            ("AWS_ENDPOINT_URL", &dead),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &moto.endpoint),
            ("AWS_ENDPOINT_URL_SSM", &moto.endpoint),
        ],
    );
    assert_eq!(rendered_data(&out).unwrap().to_string(), EXPECTED);

    // Only Secrets Manager redirected: the Parameter Store read goes to the dead endpoint,
    // and the error names that entry.
    let out = render(
        &[],
        &[
            ("AWS_ENDPOINT_URL", &dead),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &moto.endpoint),
        ],
    );
    let err = rendered_data(&out).unwrap_err();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/app/token"), "{err}");
    assert!(!err.contains("\"db\""), "{err}");

    // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true turns the variables off, as in the SDK: the
    // store then talks to AWS itself, which is not reachable from here; the failure
    // proves the moto endpoints were not used.
    let out = render(
        &[],
        &[
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
}

async fn apply_json(client: &kube::Client, ns: &str, body: serde_json::Value) {
    let kind = body["kind"].as_str().unwrap().to_owned();
    let ar = ApiResource {
        group: "external-secrets.io".into(),
        version: "v1".into(),
        api_version: "external-secrets.io/v1".into(),
        plural: format!("{}s", kind.to_lowercase()),
        kind,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_syncs_aws_through_the_endpoint_flag() {
    let moto = Moto::start();
    moto.seed().await;
    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    let ns = cluster.namespace().to_owned();
    install_crds(&client).await.unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    let creds = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "aws-creds", "namespace": ns},
        "stringData": {"id": "AKIAEXAMPLE", "secret": "secret"}}))
    .unwrap();
    secrets.create(&Default::default(), &creds).await.unwrap();
    let mut sm = store("sm", "SecretsManager");
    sm["metadata"]["namespace"] = json!(ns);
    apply_json(&client, &ns, sm).await;
    apply_json(&client, &ns, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "app", "namespace": ns},
        "spec": {"secretStoreRef": {"name": "sm"}, "target": {"name": "app"},
            "data": [{"secretKey": "password", "remoteRef": {"key": "db", "property": "password"}}]}}))
    .await;

    let out = tokio::task::spawn_blocking({
        let kubeconfig = cluster.kubeconfig_path().to_owned();
        let endpoint = moto.endpoint.clone();
        let ns = ns.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_sync-once"))
                .args(["run", "-n", &ns, "--aws-endpoint-url", &endpoint])
                .env("KUBECONFIG", kubeconfig)
                .env_remove("AWS_ENDPOINT_URL")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 synced, 0 failed"), "{stdout}");
    let secret = secrets.get("app").await.unwrap();
    assert_eq!(
        secret.data.unwrap()["password"].0,
        b"from-sm",
        "the Secret holds the value read from moto"
    );
    cluster.cleanup().await.unwrap();
}
