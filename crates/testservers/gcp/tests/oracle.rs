//! The server's fidelity, checked with Google's own clients: the Python
//! `google-cloud-secret-manager` (REST transport) and `google-auth` libraries
//! (`oracle/python_clients.py`), and `gcloud`. Every Secret Manager call and credential flow the
//! `gcpsm` provider uses must round-trip through them. A missing tool fails the test with the
//! command that installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use eso_test_support::python::Needs;
use eso_testserver_gcp::{
    FakeServiceAccountTokens, Fault, GcpTestServer, MetadataConfig, VersionState, method,
};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

/// The pinned client the Python check needs, as `.ci/run` installs it.
const PIP_PACKAGES: &str = "'google-cloud-secret-manager==2.32.0'";

/// `$ESO_PYTHON`, else `.venv-emu/bin/python` at the repository root; fails with the install
/// command when Google's client libraries are not importable there.
fn python() -> PathBuf {
    Needs::emu(
        "Google's Python clients",
        "import google.cloud.secretmanager, google.auth.aws, google.auth.identity_pool",
        PIP_PACKAGES,
    )
    .python()
}

/// `$ESO_GCLOUD_BIN`, else `gcloud` on `PATH`; fails with a clear message when absent.
fn gcloud() -> PathBuf {
    if let Some(p) = std::env::var_os("ESO_GCLOUD_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "ESO_GCLOUD_BIN={} is not a file: point it at gcloud (google-cloud-cli)",
            p.display()
        );
        return p;
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("gcloud"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "gcloud (google-cloud-cli) is needed on PATH or in $ESO_GCLOUD_BIN: install the \
             google-cloud-cli package (it is preinstalled on the build machines)"
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_python_clients_round_trip_every_call_the_provider_makes() {
    let python = python();
    let server = GcpTestServer::start().await.unwrap();
    let number = server.project_number("p1");
    let key = server.service_account_key("eso@p1.iam.gserviceaccount.com");
    let denied = "denied@p1.iam.gserviceaccount.com";
    let denied_token = server.access_token(denied);
    server.deny(denied);
    server.inject(
        Fault::status(429)
            .method(method::GET_SECRET)
            .resource("py-throttled")
            .retry_after(7),
    );
    server.aws_credentials("AKIDORACLE", "oracle-secret-key");
    let port = server.url().trim_start_matches("http://").to_owned();
    server.set_metadata(MetadataConfig {
        project_id: "p1".into(),
        service_account_email: "pod@p1.iam.gserviceaccount.com".into(),
        ..MetadataConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("k8s-token");
    std::fs::write(
        &token_file,
        FakeServiceAccountTokens::mint("ns1", "app", &["https://sts.example".to_owned()], 3600),
    )
    .unwrap();
    let audience = format!(
        "//iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/pool/providers/k8s"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/python_clients.py");
    let out = Command::new(&python)
        .arg(&script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("GCP_TEST_URL", server.url())
        .env("GCP_TEST_PROJECT", "p1")
        .env("GCP_TEST_PROJECT_NUMBER", number.to_string())
        .env("GCP_TEST_KEY_JSON", &key)
        .env("GCP_TEST_DENIED_TOKEN", &denied_token)
        .env("GCP_TEST_K8S_TOKEN_FILE", &token_file)
        .env("GCP_TEST_WIF_AUDIENCE", &audience)
        .env("GCP_TEST_METADATA_EMAIL", "pod@p1.iam.gserviceaccount.com")
        .env("AWS_ACCESS_KEY_ID", "AKIDORACLE")
        .env("AWS_SECRET_ACCESS_KEY", "oracle-secret-key")
        .env("AWS_REGION", "us-east-1")
        .env("GCE_METADATA_HOST", &port)
        .env("GCE_METADATA_IP", &port)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL CHECKS PASSED"),
        "the Python clients' checks failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // What the server saw: one JWT bearer grant, three STS exchanges (Kubernetes token twice,
    // AWS once), one impersonation, and reads by each resulting principal.
    assert_eq!(server.count(method::OAUTH2_TOKEN), 1);
    assert_eq!(server.count(method::STS_TOKEN), 3);
    assert_eq!(server.count(method::GENERATE_ACCESS_TOKEN), 1);
    assert!(server.count(method::METADATA_TOKEN) >= 1);
    let readers: Vec<String> = server
        .calls()
        .into_iter()
        .filter(|c| c.method == method::GET_SECRET && c.status == 200)
        .filter_map(|c| c.principal)
        .collect();
    let pool = format!("projects/{number}/locations/global/workloadIdentityPools/pool");
    for who in [
        "eso@p1.iam.gserviceaccount.com".to_owned(),
        format!("principal://iam.googleapis.com/{pool}/subject/system:serviceaccount:ns1:app"),
        "eso-wif@p1.iam.gserviceaccount.com".to_owned(),
        format!("principal://iam.googleapis.com/{pool}/subject/aws:us-east-1:AKIDORACLE"),
        "pod@p1.iam.gserviceaccount.com".to_owned(),
    ] {
        assert!(readers.contains(&who), "no read by {who}: {readers:?}");
    }
    let db = server.get("p1", None, "py-db").unwrap();
    assert_eq!(db.labels["env"], "dev");
    assert_eq!(db.annotations["owner"], "team-a");
    assert_eq!(db.versions[1].state, VersionState::Destroyed);
    assert!(server.get("p1", None, "py-c").is_none());
    let regional = server.get("p1", Some("europe-west4"), "py-r").unwrap();
    assert_eq!(regional.latest_data(), Some(&b"regional"[..]));
}

/// Runs one `gcloud` command against the server with an isolated configuration.
async fn run_gcloud(
    bin: &Path,
    config: &Path,
    server: &GcpTestServer,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let token_file = config.join("token");
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("CLOUDSDK_CONFIG", config)
        .env("CLOUDSDK_CORE_PROJECT", "p1")
        .env("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", &token_file)
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
            format!("{}/", server.url()),
        )
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "1")
        .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcloud_round_trips_every_call_the_provider_makes() {
    let bin = gcloud();
    let server = GcpTestServer::start().await.unwrap();
    let number = server.project_number("p1");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("token"),
        server.access_token("gcloud@p1.iam.gserviceaccount.com"),
    )
    .unwrap();
    let g = |args: Vec<&'static str>, stdin: Option<&'static str>| {
        let (bin, cfg, srv) = (&bin, config.path(), &server);
        async move {
            let (ok, out, err) = run_gcloud(bin, cfg, srv, &args, stdin).await;
            assert!(ok, "gcloud {args:?} failed:\n{err}");
            out
        }
    };

    g(
        vec![
            "secrets",
            "create",
            "g-db",
            "--data-file=-",
            "--replication-policy=automatic",
            "--labels=env=prod,managed-by=external-secrets",
        ],
        Some("v1"),
    )
    .await;
    g(
        vec!["secrets", "versions", "add", "g-db", "--data-file=-"],
        Some("v2"),
    )
    .await;
    g(
        vec![
            "secrets",
            "create",
            "g-other",
            "--data-file=-",
            "--labels=env=dev",
        ],
        Some("x"),
    )
    .await;
    // `versions access` checks the payload's CRC32C.
    let latest = g(
        vec!["secrets", "versions", "access", "latest", "--secret=g-db"],
        None,
    )
    .await;
    assert_eq!(latest, "v2");
    let first = g(
        vec!["secrets", "versions", "access", "1", "--secret=g-db"],
        None,
    )
    .await;
    assert_eq!(first, "v1");
    let listed = g(
        vec![
            "secrets",
            "list",
            "--filter=labels.env=prod",
            "--format=value(name)",
        ],
        None,
    )
    .await;
    assert_eq!(listed.trim(), "g-db", "{listed}");
    let described = g(vec!["secrets", "describe", "g-db", "--format=json"], None).await;
    let described: serde_json::Value = serde_json::from_str(&described).unwrap();
    assert_eq!(
        described["name"],
        format!("projects/{number}/secrets/g-db").as_str()
    );
    assert_eq!(described["labels"]["managed-by"], "external-secrets");
    g(
        vec!["secrets", "update", "g-db", "--update-labels=team=a"],
        None,
    )
    .await;
    assert_eq!(server.get("p1", None, "g-db").unwrap().labels["team"], "a");
    g(
        vec!["secrets", "versions", "disable", "2", "--secret=g-db"],
        None,
    )
    .await;
    let enabled = g(
        vec![
            "secrets",
            "versions",
            "list",
            "g-db",
            "--filter=state:enabled",
            "--format=value(name)",
        ],
        None,
    )
    .await;
    assert_eq!(enabled.trim(), "1", "{enabled}");
    let (ok, _, err) = run_gcloud(
        &bin,
        config.path(),
        &server,
        &["secrets", "versions", "access", "latest", "--secret=g-db"],
        None,
    )
    .await;
    assert!(!ok && err.contains("DISABLED state"), "{err}");
    let (ok, _, err) = run_gcloud(
        &bin,
        config.path(),
        &server,
        &["secrets", "versions", "access", "latest", "--secret=absent"],
        None,
    )
    .await;
    assert!(!ok && err.contains("NOT_FOUND"), "{err}");
    g(vec!["secrets", "delete", "g-db", "--quiet"], None).await;
    // Regional secrets (gcloud sends them to the same endpoint override).
    g(
        vec![
            "secrets",
            "create",
            "g-r",
            "--location=europe-west4",
            "--data-file=-",
            "--labels=env=prod",
        ],
        Some("r1"),
    )
    .await;
    let regional = g(
        vec![
            "secrets",
            "versions",
            "access",
            "latest",
            "--secret=g-r",
            "--location=europe-west4",
        ],
        None,
    )
    .await;
    assert_eq!(regional, "r1");
    assert!(server.get("p1", Some("europe-west4"), "g-r").is_some());
    let listed = g(
        vec![
            "secrets",
            "list",
            "--location=europe-west4",
            "--filter=labels.env=prod",
            "--format=value(name)",
        ],
        None,
    )
    .await;
    assert_eq!(listed.trim(), "g-r", "{listed}");
    assert!(server.get("p1", None, "g-db").is_none());

    for m in [
        method::CREATE_SECRET,
        method::ADD_SECRET_VERSION,
        method::ACCESS_SECRET_VERSION,
        method::LIST_SECRETS,
        method::GET_SECRET,
        method::UPDATE_SECRET,
        method::LIST_SECRET_VERSIONS,
        method::DISABLE_SECRET_VERSION,
        method::DELETE_SECRET,
    ] {
        assert!(
            server.count(m) > 0,
            "gcloud never called {m}: {:?}",
            server.counts()
        );
    }
}
