//! The server's fidelity, checked with Infisical's own Python SDK (`infisicalsdk`,
//! `oracle/infisical_sdk_checks.py`): every call the `infisical` provider makes must
//! round-trip through it. A missing SDK fails the test with the command that installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use eso_test_support::python::Needs;
use eso_testserver_infisical::{Fault, InfisicalTestServer, method};
use tokio::process::Command;

/// The pinned client the check needs, as `.ci/run` installs it.
const PIP_PACKAGES: &str = "'infisicalsdk==1.0.18'";

/// `$ESO_PYTHON`, else `.venv-emu/bin/python` at the repository root; fails with the install
/// command when the SDK is not importable there.
fn python() -> PathBuf {
    Needs::emu(
        "Infisical's Python SDK",
        "import infisical_sdk",
        PIP_PACKAGES,
    )
    .python()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infisical_python_sdk_round_trips_every_call_the_provider_makes() {
    let python = python();
    let server = InfisicalTestServer::start().await.unwrap();
    let project_id = server.project("shop", &["dev", "prod"]);
    server.secret("shop", "dev", "/", "DB_PASSWORD", "root-db-pass");
    server.secret("shop", "dev", "/", "HOST", "db.internal");
    server.secret("shop", "prod", "/", "PORT", "5432");
    server.secret(
        "shop",
        "dev",
        "/",
        "API_URL",
        "https://${HOST}:${prod.PORT}",
    );
    server.secret("shop", "dev", "/", "JSON_DOC", r#"{"user":"u"}"#);
    server.secret("shop", "dev", "/app", "DB_PASSWORD", "app-db-pass-1");
    server.secret("shop", "dev", "/app", "DB_PASSWORD", "app-db-pass-2");
    server.secret("shop", "dev", "/app/deep", "TOKEN", "t");
    server.secret("shop", "prod", "/shared", "SHARED_KEY", "from-prod");
    server.import("shop", "dev", "/", "prod", "/shared");
    let creds = server.identity("eso");
    server.allow_ldap(&creds.identity_id, "eso", "ldap-pass");
    let denied = server.identity("denied");
    server.deny(&denied.identity_id, "shop");
    let static_token = server.access_token(&creds.identity_id);
    server.inject(
        Fault::status(429)
            .method(method::GET_SECRET)
            .resource("THROTTLED")
            .retry_after(7)
            .times(1),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/infisical_sdk_checks.py");
    let out = Command::new(&python)
        .arg(&script)
        .env("INF_TEST_URL", server.url())
        .env("INF_TEST_CLIENT_ID", &creds.client_id)
        .env("INF_TEST_CLIENT_SECRET", &creds.client_secret)
        .env("INF_TEST_IDENTITY_ID", &creds.identity_id)
        .env("INF_TEST_DENIED_CLIENT_ID", &denied.client_id)
        .env("INF_TEST_DENIED_CLIENT_SECRET", &denied.client_secret)
        .env("INF_TEST_STATIC_TOKEN", &static_token)
        .env("INF_TEST_PROJECT_ID", &project_id)
        .env("INF_TEST_EXPECT_RETRY_AFTER", "7")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL CHECKS PASSED"),
        "the Infisical SDK's checks failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // What the server saw: three logins (universal twice, one refused; LDAP once), the 429
    // answered with the wait the test asked for, and reads made by each identity.
    assert_eq!(server.count(method::UNIVERSAL_AUTH_LOGIN), 3);
    assert_eq!(server.count(method::LDAP_AUTH_LOGIN), 1);
    let calls = server.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.method == method::GET_SECRET && c.status == 429),
        "{calls:?}"
    );
    for who in ["eso", "denied"] {
        assert!(
            calls
                .iter()
                .any(|c| c.method == method::LIST_SECRETS && c.identity.as_deref() == Some(who)),
            "no list by {who}: {calls:?}"
        );
    }
}

#[tokio::test]
async fn retry_after_header_reaches_the_wire() {
    let server = InfisicalTestServer::start().await.unwrap();
    server.inject(Fault::status(429).retry_after(5).times(1));
    let resp = reqwest::get(format!("{}/api/v3/secrets/raw", server.url()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["statusCode"], 429);
    assert_eq!(body["error"], "Too Many Requests");
    // Spent: the next request is served (401 without a token, in Infisical's shape).
    let resp = reqwest::get(format!("{}/api/v3/secrets/raw", server.url()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "UnauthorizedError");
}
