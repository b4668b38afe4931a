//! The server's fidelity, checked with `python-gitlab` (`oracle/gitlab_client.py`): project and
//! group variables, one by key with and without `filter[environment_scope]`, lists followed
//! through GitLab's `Link` headers, paths as ids, a project's ancestor groups, creating a
//! variable, the errors of a missing variable, an ambiguous key, an invisible project, a bad
//! token and a Reporter, and a 429 with `Retry-After` that the client obeys. A missing client
//! fails the test with the command that installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use eso_test_support::python::Needs;
use eso_testserver_gitlab::{Fault, GitlabTestServer, Token, Variable, route};
use serde_json::json;

/// The pinned client, as `.ci/run` installs it.
const PIP_PACKAGES: &str = "'python-gitlab==8.6.0'";

/// `$ESO_PYTHON`, else `.venv-emu/bin/python` at the repository root; fails with the install
/// command when python-gitlab is not importable there.
fn python() -> PathBuf {
    Needs::emu("python-gitlab", "import gitlab", PIP_PACKAGES).python()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_gitlab_round_trips_the_calls_the_provider_makes() {
    let python = python();
    let server = GitlabTestServer::start().await.unwrap();
    let root = server.group(7, "acme");
    let team = server.group(8, "acme/team");
    server.project(42, "acme/team/app", &[root, team]);
    server.project(99, "other/secret", &[]);
    for v in [
        Variable::new("DB_PASSWORD", "prod-pass").scope("production"),
        Variable::new("DB_PASSWORD", "any-pass"),
        Variable::new("API_TOKEN", "t0k").protected(),
        Variable::new("A", "1"),
        Variable::new("B", "2"),
    ] {
        server.project_variable(42, v);
    }
    server.group_variable(7, Variable::new("ORG_SECRET", "org"));
    server.group_variable(7, Variable::new("SHARED", "from-root"));
    server.token(Token::new("glpat-good").projects(&[42]));
    server.token(Token::new("glpat-reporter").reporter());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/gitlab_client.py");
    let run = |extra: Option<&'static str>| {
        let (python, script, url) = (python.clone(), script.clone(), server.url());
        async move {
            let mut cmd = tokio::process::Command::new(&python);
            cmd.arg(&script)
                .args([url.as_str(), "glpat-good", "glpat-reporter"]);
            if let Some(e) = extra {
                cmd.arg(e);
            }
            let output = cmd.output().await.unwrap();
            assert!(
                output.status.success(),
                "the python-gitlab script failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
        }
    };
    let seen = run(None).await;
    assert_eq!(
        seen["project_list"],
        json!([
            ["DB_PASSWORD", "prod-pass", "production"],
            ["DB_PASSWORD", "any-pass", "*"],
            ["API_TOKEN", "t0k", "*"],
            ["A", "1", "*"],
            ["B", "2", "*"]
        ])
    );
    assert_eq!(seen["page_2"], json!(["API_TOKEN", "A"]));
    assert_eq!(seen["get_scoped"], "prod-pass");
    assert_eq!(seen["get_wildcard"], "any-pass");
    assert_eq!(seen["get_unscoped"], "t0k");
    assert_eq!(seen["by_path"], "t0k");
    assert_eq!(seen["multiple_status"][0], 409);
    assert_eq!(
        seen["missing_status"],
        json!([404, "404 Variable Not Found"])
    );
    assert_eq!(
        seen["invisible_status"],
        json!([404, "404 Project Not Found"])
    );
    assert_eq!(
        seen["group_list"],
        json!([["ORG_SECRET", "org"], ["SHARED", "from-root"]])
    );
    assert_eq!(seen["group_get"], "org");
    assert_eq!(seen["ancestors"], json!(["acme", "acme/team"]));
    assert_eq!(seen["created"], json!(["NEW_ONE", "staging"]));
    assert_eq!(seen["created_get"], "fresh");
    assert_eq!(seen["duplicate_status"][0], 400);
    assert_eq!(seen["bad_token_status"], json!([401, "401 Unauthorized"]));
    assert_eq!(seen["reporter_status"], json!([403, "403 Forbidden"]));
    // python-gitlab pages with per_page=2: three list requests for five variables.
    assert!(server.count(route::PROJECT_VARIABLES_LIST) >= 4);

    server.inject(
        Fault::status(429)
            .route(route::PROJECT_VARIABLE_GET)
            .retry_after(1)
            .times(1),
    );
    let before = server.count(route::PROJECT_VARIABLE_GET);
    let seen = run(Some("throttled")).await;
    assert_eq!(seen["after_throttle"], "t0k");
    assert_eq!(server.count(route::PROJECT_VARIABLE_GET) - before, 2);
}
