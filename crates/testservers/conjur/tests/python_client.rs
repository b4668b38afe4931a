//! The server's fidelity, checked with CyberArk's own Python SDK (PyPI `conjur`,
//! `oracle/conjur_client.py`): API-key authentication, secrets (latest and by version), batch
//! secrets, resource listing with paging and search, adding a value, and the statuses of a
//! missing, empty, forbidden and invisible variable and of a wrong API key. A missing SDK fails
//! the test with the command that installs it.
//!
//! The SDK has no `authn-jwt`; that exchange follows `conjur-api-go` and Conjur's server code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use eso_test_support::python::Needs;
use eso_testserver_conjur::{ConjurTestServer, Role, route};
use serde_json::json;

/// The pinned SDK, as `.ci/run` installs it (7.1.0 imports `async_timeout` without declaring it).
const PIP_PACKAGES: &str = "'conjur==7.1.0' 'async-timeout==5.0.1'";

/// `$ESO_CONJUR_PYTHON`, else `.venv-conjur/bin/python` at the repository root (a venv of its
/// own: the SDK pins an old `cryptography` that moto and google-auth refuse); fails with the
/// install command when the SDK is not importable there.
fn python() -> PathBuf {
    Needs {
        env: "ESO_CONJUR_PYTHON",
        venv: ".venv-conjur",
        what: "CyberArk's Python SDK",
        import: "import conjur.api.client, async_timeout",
        packages: PIP_PACKAGES,
    }
    .python()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyberarks_python_sdk_round_trips_the_calls_the_provider_makes() {
    let python = python();
    let server = ConjurTestServer::start("myorg").await.unwrap();
    server.role(
        Role::new("host/apps/eso", "key-1")
            .writer()
            .visible([
                "db/password",
                "api/token",
                "db/user",
                "empty",
                "hidden-exec",
            ])
            .executable(["db/password", "api/token", "db/user", "empty"]),
    );
    server
        .variable("db/password")
        .value(b"v1")
        .value(b"s3cret")
        .annotation("env", "prod");
    server
        .variable("api/token")
        .value(b"t0k")
        .annotation("team", "a");
    server.variable("db/user").value(b"admin");
    server.variable("empty");
    server.variable("hidden-exec").value(b"x");
    server.variable("invisible").value(b"y");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/conjur_client.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args([&server.url(), "myorg", "host/apps/eso", "key-1"])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the SDK script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["whoami"]["username"], "host/apps/eso");
    assert_eq!(seen["whoami"]["account"], "myorg");
    assert_eq!(seen["get"], "s3cret");
    assert_eq!(seen["get_version_1"], "v1");
    assert_eq!(
        seen["get_many"],
        json!({"db/password": "s3cret", "api/token": "t0k"})
    );
    let all = json!([
        "myorg:variable:api/token",
        "myorg:variable:db/password",
        "myorg:variable:db/user",
        "myorg:variable:empty",
        "myorg:variable:hidden-exec"
    ]);
    assert_eq!(seen["list"], all);
    assert_eq!(
        seen["list_page"],
        json!(["myorg:variable:db/password", "myorg:variable:db/user"])
    );
    assert_eq!(seen["list_search"], json!(["myorg:variable:api/token"]));
    assert_eq!(
        seen["annotations"]["myorg:variable:db/password"],
        json!({"env": "prod"})
    );
    assert_eq!(seen["after_set"], "rotated");
    assert_eq!(seen["missing_status"], 404);
    assert_eq!(seen["empty_status"], 404);
    assert_eq!(seen["forbidden_status"], 403);
    assert_eq!(seen["invisible_status"], 404);
    assert_eq!(seen["bad_key_status"], 401);
    // The SDK authenticated once for the good key and caches its token.
    assert_eq!(server.count(route::AUTHN), 2);
}
