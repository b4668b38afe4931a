//! The GitLab provider against `eso-testserver-gitlab` (checked with python-gitlab): project,
//! group and inherited variables with environment scopes, `find` precedence and paging, and
//! every failure by cause.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use eso_api::provider::{GitlabAuth, GitlabProvider as Spec, GitlabSecretRef, SecretStoreProvider};
use eso_api::{
    ExternalSecretDataRemoteRef, ExternalSecretFind, FindName, SecretKeySelector, SecretStoreSpec,
};
use eso_provider::{
    ClientContext, ErrorKind, Provider, ProviderError, SecretsClient, StaticConfigMapReader,
    StaticSecretReader, StoreInfo, ValidationResult,
};
use eso_provider_gitlab::{GitlabConfig, GitlabProvider};
use eso_test_support::metrics::ApiCalls;
use eso_testserver_gitlab::{Fault, GitlabTestServer, Token, Variable, route};

const NS: &str = "apps";

/// Groups 7 `acme` and 8 `acme/team`, project 42 `acme/team/app` under both, and variables
/// in every combination of owner and scope.
async fn server() -> GitlabTestServer {
    let server = GitlabTestServer::start().await.unwrap();
    let root = server.group(7, "acme");
    let team = server.group(8, "acme/team");
    server.group(9, "other");
    server.project(42, "acme/team/app", &[root, team]);
    for v in [
        Variable::new("DB_PASSWORD", "prod-pass").scope("production"),
        Variable::new("DB_PASSWORD", "any-pass"),
        Variable::new("ONLY_STAGING", "stg").scope("staging"),
        Variable::new("CONFIG", r#"{"user":"admin","port":5432}"#),
        Variable::new("SHARED", "from-project"),
        Variable::new("EMPTY", ""),
    ] {
        server.project_variable(42, v);
    }
    server.group_variable(7, Variable::new("ROOT_ONLY", "root"));
    server.group_variable(7, Variable::new("SHARED", "from-root"));
    server.group_variable(7, Variable::new("TEAM_WINS", "root"));
    server.group_variable(8, Variable::new("TEAM_WINS", "team"));
    server.group_variable(
        8,
        Variable::new("GROUP_SCOPED", "team-prod").scope("production"),
    );
    server.group_variable(8, Variable::new("GROUP_SCOPED", "team-any"));
    server.group_variable(9, Variable::new("OTHER", "other"));
    server.token(Token::new("glpat-good"));
    server
}

fn spec(
    url: &str,
    project: Option<&str>,
    groups: &[&str],
    inherit: bool,
    env: Option<&str>,
) -> Spec {
    Spec {
        url: Some(url.into()),
        project_id: project.map(Into::into),
        group_ids: groups.iter().map(|g| (*g).into()).collect(),
        inherit_from_groups: inherit.then_some(true),
        environment: env.map(Into::into),
        auth: GitlabAuth {
            secret_ref: GitlabSecretRef {
                access_token: SecretKeySelector {
                    name: Some("gitlab".into()),
                    key: Some("token".into()),
                    ..Default::default()
                },
            },
        },
        ..Default::default()
    }
}

fn store(spec: Spec) -> StoreInfo {
    StoreInfo::secret_store(
        "gitlab",
        NS,
        SecretStoreSpec {
            provider: SecretStoreProvider {
                gitlab: Some(spec),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

async fn client_with(spec: Spec, token: &str) -> Result<Arc<dyn SecretsClient>, ProviderError> {
    let mut secrets = StaticSecretReader::new();
    secrets.insert(
        NS,
        "gitlab",
        BTreeMap::from([("token".to_owned(), format!("{token}\n").into_bytes())]),
    );
    let config_maps = StaticConfigMapReader::new();
    let store = store(spec);
    GitlabProvider::new()
        .config(
            GitlabConfig::default()
                .retry_base_delay(Duration::from_millis(20))
                .max_retry_wait(Duration::from_secs(2))
                .request_timeout(Duration::from_secs(5)),
        )
        .new_client(ClientContext {
            store: &store,
            namespace: NS,
            secrets: &secrets,
            config_maps: &config_maps,
            tokens: None,
        })
        .await
}

async fn client(spec: Spec) -> Arc<dyn SecretsClient> {
    client_with(spec, "glpat-good").await.unwrap()
}

fn remote(key: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.into(),
        ..Default::default()
    }
}

async fn get(client: &Arc<dyn SecretsClient>, key: &str) -> Result<String, ProviderError> {
    client
        .get_secret(&remote(key))
        .await
        .map(|v| String::from_utf8(v).unwrap())
}

#[tokio::test]
async fn environment_scopes_fall_back_to_the_wildcard_as_upstream() {
    let server = server().await;
    let prod = client(spec(
        &server.url(),
        Some("42"),
        &[],
        false,
        Some("production"),
    ))
    .await;
    assert_eq!(get(&prod, "DB_PASSWORD").await.unwrap(), "prod-pass");
    // No production value: the `*` one.
    assert_eq!(
        get(&prod, "CONFIG").await.unwrap(),
        r#"{"user":"admin","port":5432}"#
    );
    // Hyphens read as underscores.
    assert_eq!(get(&prod, "DB-PASSWORD").await.unwrap(), "prod-pass");
    let staging = client(spec(&server.url(), Some("42"), &[], false, Some("staging"))).await;
    assert_eq!(get(&staging, "DB_PASSWORD").await.unwrap(), "any-pass");
    assert_eq!(get(&staging, "ONLY_STAGING").await.unwrap(), "stg");
    // Another environment's value is never read.
    assert_eq!(
        get(&prod, "ONLY_STAGING").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // No environment and a key in two scopes: GitLab cannot choose.
    let any = client(spec(&server.url(), Some("42"), &[], false, None)).await;
    let err = get(&any, "DB_PASSWORD").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(
        err.to_string().contains("several environment scopes"),
        "{err}"
    );
    // A path works as the project id.
    let by_path = client(spec(
        &server.url(),
        Some("acme/team/app"),
        &[],
        false,
        Some("production"),
    ))
    .await;
    assert_eq!(get(&by_path, "DB_PASSWORD").await.unwrap(), "prod-pass");
}

#[tokio::test]
async fn properties_extract_and_empty_values() {
    let server = server().await;
    let c = client(spec(
        &server.url(),
        Some("42"),
        &[],
        false,
        Some("production"),
    ))
    .await;
    let with = |p: &str| ExternalSecretDataRemoteRef {
        property: Some(p.into()),
        ..remote("CONFIG")
    };
    assert_eq!(c.get_secret(&with("user")).await.unwrap(), b"admin");
    assert_eq!(c.get_secret(&with("port")).await.unwrap(), b"5432");
    assert_eq!(
        c.get_secret(&with("nope")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let err = c.get_secret_map(&remote("CONFIG")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "port is a number");
    server.project_variable(42, Variable::new("ENV_JSON", r#"{"A":"1","B":"2"}"#));
    let map = c.get_secret_map(&remote("ENV_JSON")).await.unwrap();
    assert_eq!(
        map,
        BTreeMap::from([("A".into(), b"1".to_vec()), ("B".into(), b"2".to_vec())])
    );
    // An empty value is refused, as upstream.
    assert_eq!(
        get(&c, "EMPTY").await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
}

#[tokio::test]
async fn groups_are_read_after_the_project_nearest_first() {
    let server = server().await;
    let inherit = client(spec(
        &server.url(),
        Some("42"),
        &[],
        true,
        Some("production"),
    ))
    .await;
    assert_eq!(get(&inherit, "SHARED").await.unwrap(), "from-project");
    assert_eq!(get(&inherit, "ROOT_ONLY").await.unwrap(), "root");
    assert_eq!(get(&inherit, "TEAM_WINS").await.unwrap(), "team");
    assert_eq!(get(&inherit, "GROUP_SCOPED").await.unwrap(), "team-prod");
    // The ancestors are looked up once per client.
    assert_eq!(server.count(route::LIST_PROJECTS_GROUPS), 1);
    let missing = get(&inherit, "NOWHERE").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    assert!(
        missing.to_string().contains("SecretStore \"apps/gitlab\""),
        "{missing}"
    );
    assert!(missing.to_string().contains("\"NOWHERE\""), "{missing}");
    // Explicit groups, read last to first, without a project.
    let groups = client(spec(&server.url(), None, &["8", "7"], false, None)).await;
    assert_eq!(get(&groups, "TEAM_WINS").await.unwrap(), "root");
    assert_eq!(
        get(&groups, "OTHER").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

fn find(name: &str, env_tag: Option<&str>) -> ExternalSecretFind {
    ExternalSecretFind {
        name: Some(FindName {
            regexp: Some(name.into()),
        }),
        tags: env_tag
            .map(|e| BTreeMap::from([("environment_scope".to_owned(), e.to_owned())]))
            .unwrap_or_default(),
        ..Default::default()
    }
}

#[tokio::test]
async fn find_applies_upstreams_precedence() {
    let server = server().await;
    let c = client(spec(
        &server.url(),
        Some("42"),
        &[],
        true,
        Some("production"),
    ))
    .await;
    let all = c.get_all_secrets(&find(".*", None)).await.unwrap();
    let text: BTreeMap<&str, &str> = all
        .iter()
        .map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap()))
        .collect();
    assert_eq!(
        text,
        BTreeMap::from([
            ("CONFIG", r#"{"user":"admin","port":5432}"#),
            ("DB_PASSWORD", "prod-pass"),
            ("EMPTY", ""),
            ("GROUP_SCOPED", "team-prod"),
            ("ROOT_ONLY", "root"),
            ("SHARED", "from-project"),
            // Upstream's find keeps the first group's `*` value (groups are read root first
            // and a `*` value never replaces one already found), unlike a single read, which
            // asks the nearest group first.
            ("TEAM_WINS", "root"),
        ])
    );
    let db = c.get_all_secrets(&find("^DB_", None)).await.unwrap();
    assert_eq!(db.keys().collect::<Vec<_>>(), ["DB_PASSWORD"]);
    // The environment from a tag when the store names none.
    let any = client(spec(&server.url(), Some("42"), &[], false, None)).await;
    let staging = any
        .get_all_secrets(&find("ONLY|DB_", Some("staging")))
        .await
        .unwrap();
    assert_eq!(staging["ONLY_STAGING"], b"stg");
    assert_eq!(staging["DB_PASSWORD"], b"any-pass");
    // Upstream's refusals.
    for (f, what) in [
        (find(".*", Some("staging")), "constrained"),
        (
            ExternalSecretFind {
                tags: BTreeMap::from([("team".to_owned(), "a".to_owned())]),
                ..find(".*", None)
            },
            "only supports environment_scope",
        ),
        (
            ExternalSecretFind {
                path: Some("x".into()),
                ..find(".*", None)
            },
            "find.path",
        ),
        (ExternalSecretFind::default(), "find.name is required"),
    ] {
        let err = c.get_all_secrets(&f).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[tokio::test]
async fn find_reads_every_page() {
    let server = server().await;
    for i in 0..230 {
        server.project_variable(42, Variable::new(&format!("BULK_{i:03}"), &format!("v{i}")));
    }
    let c = client(spec(
        &server.url(),
        Some("42"),
        &[],
        false,
        Some("production"),
    ))
    .await;
    let found = c.get_all_secrets(&find("^BULK_", None)).await.unwrap();
    assert_eq!(found.len(), 230);
    assert_eq!(found["BULK_229"], b"v229");
    // 236 variables, 100 a page.
    assert_eq!(server.count(route::PROJECT_VARIABLES_LIST), 3);
}

#[tokio::test]
async fn auth_failures_are_never_not_found() {
    let server = server().await;
    server.token(Token::new("glpat-reporter").reporter());
    server.token(Token::new("glpat-blind").projects(&[]));
    let s = spec(&server.url(), Some("42"), &[], false, Some("production"));
    for token in ["glpat-wrong", "glpat-reporter", "glpat-blind"] {
        let c = client_with(s.clone(), token).await.unwrap();
        let err = get(&c, "DB_PASSWORD").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{token}: {err}");
        let err = c.validate().await.unwrap_err();
        assert!(!err.is_not_found(), "{token}: {err}");
    }
    // A project that does not exist: the variable is not confirmed missing.
    let c = client(spec(&server.url(), Some("404"), &[], false, None)).await;
    assert_eq!(get(&c, "X").await.unwrap_err().kind(), ErrorKind::Auth);
    assert_eq!(
        c.validate().await.unwrap_err().kind(),
        ErrorKind::InvalidStore
    );
}

#[tokio::test]
async fn validate_lists_the_project_and_its_groups() {
    let server = server().await;
    let c = client(spec(&server.url(), Some("42"), &[], true, None)).await;
    assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);
    assert_eq!(server.count(route::PROJECT_VARIABLES_LIST), 1);
    assert_eq!(server.count(route::GROUP_VARIABLES_LIST), 2);
}

#[tokio::test]
async fn throttling_waits_for_retry_after_or_reports_it() {
    let server = server().await;
    let c = client(spec(
        &server.url(),
        Some("42"),
        &[],
        false,
        Some("production"),
    ))
    .await;
    server.inject(
        Fault::status(429)
            .route(route::PROJECT_VARIABLE_GET)
            .retry_after(1)
            .times(1),
    );
    let started = tokio::time::Instant::now();
    assert_eq!(get(&c, "DB_PASSWORD").await.unwrap(), "prod-pass");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(server.count(route::PROJECT_VARIABLE_GET), 2);
    server.inject(
        Fault::status(429)
            .route(route::PROJECT_VARIABLE_GET)
            .retry_after(60)
            .times(1),
    );
    let err = get(&c, "DB_PASSWORD").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_unavailable() {
    let server = server().await;
    let c = client(spec(
        &server.url(),
        Some("42"),
        &[],
        false,
        Some("production"),
    ))
    .await;
    server.inject(
        Fault::status(502)
            .route(route::PROJECT_VARIABLE_GET)
            .times(1),
    );
    assert_eq!(get(&c, "DB_PASSWORD").await.unwrap(), "prod-pass");
    server.inject(
        Fault::status(503)
            .route(route::PROJECT_VARIABLE_GET)
            .times(3),
    );
    let err = get(&c, "DB_PASSWORD").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.is_not_found());
    server.inject(
        Fault::status(500)
            .route(route::PROJECT_VARIABLES_LIST)
            .times(3),
    );
    let err = c.get_all_secrets(&find(".*", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    // Unreachable.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let c = client(spec(&url, Some("42"), &[], false, None)).await;
    assert_eq!(
        get(&c, "X").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
}

#[tokio::test]
async fn each_call_counts_once_with_upstreams_labels() {
    let server = server().await;
    let calls = ApiCalls::new();
    let _guard = metrics::set_default_local_recorder(&calls);
    let c = client(spec(
        &server.url(),
        Some("42"),
        &[],
        true,
        Some("production"),
    ))
    .await;
    // Found at once.
    get(&c, "DB_PASSWORD").await.unwrap();
    // Missing in production, found in `*` (two project calls); a retried call is one.
    server.inject(
        Fault::status(503)
            .route(route::PROJECT_VARIABLE_GET)
            .times(1),
    );
    get(&c, "CONFIG").await.unwrap();
    // From the root group: project (2 misses), ancestors, team group (2 misses), root group
    // (a miss in production, then the `*` value).
    get(&c, "ROOT_ONLY").await.unwrap();
    c.get_all_secrets(&find("^DB_", None)).await.unwrap();
    let counts = calls.by_call();
    assert!(
        calls.other_counters().is_empty(),
        "{:?}",
        calls.other_counters()
    );
    assert!(
        calls.counts().keys().all(|(p, _, _)| p == "GitLab"),
        "{:?}",
        calls.counts()
    );
    let expected = BTreeMap::from([
        (("ProjectVariableGet".to_owned(), "success".to_owned()), 2),
        (("ProjectVariableGet".to_owned(), "error".to_owned()), 3),
        (("ListProjectsGroups".to_owned(), "success".to_owned()), 1),
        (("GroupVariableGet".to_owned(), "error".to_owned()), 3),
        (("GroupVariableGet".to_owned(), "success".to_owned()), 1),
        (("GroupVariablesList".to_owned(), "success".to_owned()), 2),
        (("ProjectVariablesList".to_owned(), "success".to_owned()), 1),
    ]);
    assert_eq!(counts, expected);
}
