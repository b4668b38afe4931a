//! The server's fidelity, checked with Doppler's own Python SDK (`doppler-sdk`,
//! `oracle/doppler_sdk_checks.py`): every call the `doppler` provider makes must round-trip
//! through it. A missing SDK fails the test with the command that installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use eso_test_support::python::Needs;
use eso_testserver_doppler::{DopplerTestServer, Fault, method};
use tokio::process::Command;

/// The pinned client the check needs, as `.ci/run` installs it.
const PIP_PACKAGES: &str = "'doppler-sdk==1.3.0'";

/// `$ESO_PYTHON`, else `.venv-emu/bin/python` at the repository root; fails with the install
/// command when the SDK is not importable there.
fn python() -> PathBuf {
    Needs::emu("Doppler's Python SDK", "import dopplersdk", PIP_PACKAGES).python()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doppler_python_sdk_round_trips_every_call_the_provider_makes() {
    let python = python();
    let server = DopplerTestServer::start().await.unwrap();
    server.secret("backend", "prd", "API_KEY", "k1");
    server.secret("backend", "prd", "DB_HOST", "db.internal");
    server.secret("backend", "prd", "DB_URL", "pg://${DB_HOST}/app");
    server.secret("frontend", "prd", "CDN", "c");
    let personal = server.personal_token();
    let service = server.service_token("backend", "prd");
    server.inject(
        Fault::status(429)
            .method(method::DOWNLOAD)
            .resource("THROTTLED")
            .retry_after(3)
            .times(1),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/doppler_sdk_checks.py");
    let out = Command::new(&python)
        .arg(&script)
        .env("DOPPLER_TEST_URL", server.url())
        .env("DOPPLER_TEST_PERSONAL_TOKEN", &personal)
        .env("DOPPLER_TEST_SERVICE_TOKEN", &service)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL CHECKS PASSED"),
        "the Doppler SDK's checks failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // The SDK sends its token as a bearer token.
    assert!(
        server
            .calls()
            .iter()
            .filter(|c| c.method == method::DOWNLOAD)
            .all(|c| c.auth_scheme.as_deref() == Some("Bearer"))
    );
    assert_eq!(server.value("backend", "prd", "NEW_ONE"), None);
}

#[tokio::test]
async fn basic_auth_etags_and_error_shapes() {
    let server = DopplerTestServer::start().await.unwrap();
    server.secret("backend", "prd", "A", "1");
    let token = server.service_token("backend", "prd");
    let client = reqwest::Client::new();
    let url = format!("{}/v3/configs/config/secrets/download", server.url());
    // Upstream sends the token as the Basic user name with an empty password.
    let first = client
        .get(&url)
        .basic_auth(&token, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = client
        .get(&url)
        .basic_auth(&token, Some(""))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    server.secret("backend", "prd", "A", "2");
    let changed = client
        .get(&url)
        .basic_auth(&token, Some(""))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status().as_u16(), 200);
    server.inject(Fault::status(429).retry_after(9).times(1));
    let limited = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert_eq!(limited.headers()["retry-after"], "9");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["messages"][0], "Rate limit exceeded");
}
