//! The server's fidelity, checked with 1Password's own Python SDK (`onepasswordconnectsdk`,
//! `oracle/connect_sdk_checks.py`): every call the `onepassword` provider makes must
//! round-trip through it. A missing SDK fails the test with the command that installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use eso_test_support::python::Needs;
use eso_testserver_onepassword::{Fault, OnePasswordTestServer, method};
use tokio::process::Command;

/// The pinned client the check needs, as `.ci/run` installs it.
const PIP_PACKAGES: &str = "'onepasswordconnectsdk==2.1.1'";

/// `$ESO_PYTHON`, else `.venv-emu/bin/python` at the repository root; fails with the install
/// command when the SDK is not importable there.
fn python() -> PathBuf {
    Needs::emu(
        "1Password's Connect Python SDK",
        "import onepasswordconnectsdk",
        PIP_PACKAGES,
    )
    .python()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_python_sdk_round_trips_every_call_the_provider_makes() {
    let python = python();
    let server = OnePasswordTestServer::start().await.unwrap();
    server.vault("prod");
    server.vault("dev");
    let db = server
        .item("prod", "db")
        .tag("env:prod")
        .field("username", "admin")
        .field("password", "s3cret")
        .section_field("conn", "host", "db.internal")
        .create();
    server
        .item("prod", "cert")
        .category("DOCUMENT")
        .file("tls.crt", b"-----CERT-----")
        .file("tls.key", b"-----KEY-----")
        .create();
    server.item("prod", "dup").field("password", "1").create();
    server.item("prod", "dup").field("password", "2").create();
    let token = server.token();
    let scoped = server.scoped_token(&["dev"]);
    // Only reads of this item are throttled; the script reads it last.
    let throttled = server
        .item("dev", "throttled")
        .field("password", "x")
        .create();
    server.inject(
        Fault::status(429)
            .method(method::GET_ITEM)
            .resource(&throttled)
            .retry_after(2)
            .times(1),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/connect_sdk_checks.py");
    let child = Command::new(&python)
        .arg(&script)
        .env("OP_TEST_URL", server.url())
        .env("OP_TEST_TOKEN", &token)
        .env("OP_TEST_SCOPED_TOKEN", &scoped)
        .env("OP_TEST_DB_ITEM_ID", &db)
        .env("OP_TEST_THROTTLED_ITEM_ID", &throttled)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL CHECKS PASSED"),
        "the Connect SDK's checks failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(server.count(method::GET_FILE_CONTENT) >= 2);
    assert_eq!(server.count(method::CREATE_ITEM), 2);
    assert_eq!(server.count(method::UPDATE_ITEM), 1);
    assert_eq!(server.count(method::DELETE_ITEM), 1);
    assert!(
        server.calls().iter().any(|c| c.method == method::GET_ITEM
            && c.status == 429
            && c.target.contains(&throttled))
    );
}

#[tokio::test]
async fn errors_carry_connects_shape_and_retry_after() {
    let server = OnePasswordTestServer::start().await.unwrap();
    let token = server.token();
    server.inject(Fault::status(429).retry_after(4).times(1));
    let client = reqwest::Client::new();
    let get = || {
        client
            .get(format!("{}/v1/vaults", server.url()))
            .bearer_auth(&token)
            .send()
    };
    let resp = get().await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "4");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], 429);
    assert_eq!(get().await.unwrap().status().as_u16(), 200);
    let resp = client
        .get(format!("{}/v1/vaults", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": 401, "message": "Invalid bearer token"})
    );
}
