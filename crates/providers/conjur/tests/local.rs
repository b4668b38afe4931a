//! The Conjur provider against `eso-testserver-conjur` (checked with CyberArk's Python SDK):
//! both login methods, reads, `find`, token reuse and renewal, and every failure by cause.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use eso_api::common::ServiceAccountSelector;
use eso_api::provider::{
    ConjurApiKey, ConjurAuth, ConjurJwt, ConjurProvider as Spec, SecretStoreProvider,
};
use eso_api::{
    ExternalSecretDataRemoteRef, ExternalSecretFind, FindName, SecretKeySelector, SecretStoreSpec,
    StoreKind,
};
use eso_provider::{
    ClientContext, ErrorKind, Provider, ProviderError, SecretsClient, ServiceAccountTokens,
    StaticConfigMapReader, StaticSecretReader, StoreInfo, ValidationResult,
};
use eso_provider_conjur::{ConjurConfig, ConjurProvider};
use eso_test_support::metrics::ApiCalls;
use eso_testserver_conjur::{ConjurTestServer, Fault, JwtAuthenticator, Role, route};
use serde_json::json;

const NS: &str = "apps";
const ISSUER: &str = "https://kubernetes.default.svc";

/// One TokenRequest: namespace, name, audiences, lifetime.
type TokenRequest = (String, String, Vec<String>, Option<i64>);

/// ServiceAccount tokens signed with the key the test server's JWT authenticators trust.
struct Tokens {
    server: Arc<ConjurTestServer>,
    requests: Mutex<Vec<TokenRequest>>,
}

#[async_trait]
impl ServiceAccountTokens for Tokens {
    async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration_seconds: Option<i64>,
    ) -> Result<String, ProviderError> {
        self.requests.lock().unwrap().push((
            namespace.into(),
            name.into(),
            audiences.to_vec(),
            expiration_seconds,
        ));
        let now = jiff::Timestamp::now().as_second();
        Ok(self
            .server
            .issue_jwt(&json!({
                "iss": ISSUER,
                "sub": format!("system:serviceaccount:{namespace}:{name}"),
                "aud": audiences,
                "iat": now,
                "exp": now + expiration_seconds.unwrap_or(3600),
            }))
            .unwrap())
    }
}

async fn server() -> Arc<ConjurTestServer> {
    let server = ConjurTestServer::start("myorg").await.unwrap();
    server.role(Role::new("host/apps/eso", "key-1"));
    server
        .variable("db/password")
        .value(b"old")
        .value(b"s3cret")
        .annotation("env", "prod");
    server
        .variable("db/config")
        .value(br#"{"user":"admin","port":5432,"tls":{"on":true}}"#)
        .annotation("env", "prod");
    server
        .variable("api/token")
        .value(b"t0k")
        .annotation("env", "dev");
    server.variable("empty").annotation("env", "prod");
    server.variable("binary").value(&[0, 159, 146, 150]);
    Arc::new(server)
}

fn sel(name: &str, key: &str, ns: Option<&str>) -> SecretKeySelector {
    SecretKeySelector {
        name: Some(name.into()),
        namespace: ns.map(Into::into),
        key: Some(key.into()),
    }
}

fn apikey_auth(ns: Option<&str>) -> ConjurAuth {
    ConjurAuth {
        api_key: Some(ConjurApiKey {
            account: "myorg".into(),
            user_ref: sel("conjur-creds", "login", ns),
            api_key_ref: sel("conjur-creds", "apikey", ns),
        }),
        ..Default::default()
    }
}

fn store(kind: StoreKind, url: &str, auth: ConjurAuth) -> StoreInfo {
    let mut s = StoreInfo::secret_store(
        "conjur",
        NS,
        SecretStoreSpec {
            provider: SecretStoreProvider {
                conjur: Some(Spec {
                    url: url.into(),
                    auth,
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    if kind == StoreKind::ClusterSecretStore {
        s.kind = kind;
        s.namespace = None;
    }
    s
}

fn creds(ns: &str, login: &str, key: &str) -> StaticSecretReader {
    let mut secrets = StaticSecretReader::new();
    secrets.insert(
        ns,
        "conjur-creds",
        BTreeMap::from([
            ("login".to_owned(), login.as_bytes().to_vec()),
            ("apikey".to_owned(), key.as_bytes().to_vec()),
        ]),
    );
    secrets
}

fn provider() -> ConjurProvider {
    ConjurProvider::new().config(
        ConjurConfig::default()
            .retry_base_delay(Duration::from_millis(20))
            .max_retry_wait(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(5)),
    )
}

async fn connect(
    store: &StoreInfo,
    namespace: &str,
    secrets: &StaticSecretReader,
    tokens: Option<&dyn ServiceAccountTokens>,
) -> Result<Arc<dyn SecretsClient>, ProviderError> {
    let config_maps = StaticConfigMapReader::new();
    provider()
        .new_client(ClientContext {
            store,
            namespace,
            secrets,
            config_maps: &config_maps,
            tokens,
        })
        .await
}

async fn apikey_client(server: &ConjurTestServer) -> Arc<dyn SecretsClient> {
    let s = store(StoreKind::SecretStore, &server.url(), apikey_auth(None));
    connect(&s, NS, &creds(NS, "host/apps/eso", "key-1"), None)
        .await
        .unwrap()
}

fn remote(key: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.into(),
        ..Default::default()
    }
}

fn with_property(key: &str, property: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        property: Some(property.into()),
        ..remote(key)
    }
}

#[tokio::test]
async fn api_key_login_reads_variables_versions_and_properties() {
    let server = server().await;
    let client = apikey_client(&server).await;
    assert_eq!(
        client.get_secret(&remote("db/password")).await.unwrap(),
        b"s3cret"
    );
    // Qualified ids resolve to the same variable, as conjur-api-go qualifies them.
    assert_eq!(
        client
            .get_secret(&remote("myorg:variable:db/password"))
            .await
            .unwrap(),
        b"s3cret"
    );
    let v1 = ExternalSecretDataRemoteRef {
        version: Some("1".into()),
        ..remote("db/password")
    };
    assert_eq!(client.get_secret(&v1).await.unwrap(), b"old");
    assert_eq!(
        client
            .get_secret(&with_property("db/config", "user"))
            .await
            .unwrap(),
        b"admin"
    );
    assert_eq!(
        client
            .get_secret(&with_property("db/config", "port"))
            .await
            .unwrap(),
        b"5432"
    );
    assert_eq!(
        client
            .get_secret(&with_property("db/config", "tls.on"))
            .await
            .unwrap(),
        b"true"
    );
    assert_eq!(
        client.get_secret(&remote("binary")).await.unwrap(),
        [0, 159, 146, 150]
    );
    assert_eq!(client.validate().await.unwrap(), ValidationResult::Ready);
    // One login served all of it.
    assert_eq!(server.count(route::AUTHN), 1);
}

#[tokio::test]
async fn extract_reads_a_json_object_of_strings() {
    let server = server().await;
    server.variable("app/env").value(br#"{"A":"1","B":"two"}"#);
    let client = apikey_client(&server).await;
    let map = client.get_secret_map(&remote("app/env")).await.unwrap();
    assert_eq!(
        map,
        BTreeMap::from([("A".into(), b"1".to_vec()), ("B".into(), b"two".to_vec())])
    );
    // Not every value a string: refused, as upstream's map[string]string decoding does.
    let err = client
        .get_secret_map(&remote("db/config"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let nested = client
        .get_secret_map(&with_property("db/config", "tls"))
        .await
        .unwrap_err();
    assert_eq!(nested.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn missing_empty_and_invisible_variables_are_typed_not_found() {
    let server = server().await;
    server.variable("hidden").value(b"x");
    server.variable("no-exec").value(b"x");
    server.role(
        Role::new("host/apps/eso", "key-1")
            .visible(["db/password", "db/config", "empty", "no-exec"])
            .executable(["db/password", "db/config", "empty"]),
    );
    let client = apikey_client(&server).await;
    for key in ["nope", "empty", "hidden"] {
        let err = client.get_secret(&remote(key)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{key}: {err}");
        assert!(
            err.to_string().contains("SecretStore \"apps/conjur\""),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("{key:?}")), "{err}");
    }
    let version = ExternalSecretDataRemoteRef {
        version: Some("9".into()),
        ..remote("db/password")
    };
    assert_eq!(
        client.get_secret(&version).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let err = client
        .get_secret(&with_property("db/config", "missing"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // Seen but not executable: 403, an authorization problem, never "not found".
    let err = client.get_secret(&remote("no-exec")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    // A property of a value that is not JSON.
    let err = client
        .get_secret(&with_property("db/password", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn wrong_api_keys_and_unknown_logins_are_auth_errors() {
    let server = server().await;
    let s = store(StoreKind::SecretStore, &server.url(), apikey_auth(None));
    for (login, key) in [("host/apps/eso", "wrong"), ("host/nobody", "key-1")] {
        let err = connect(&s, NS, &creds(NS, login, key), None)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(err.to_string().contains(login), "{err}");
    }
    // A missing credentials Secret is a store problem.
    let err = connect(&s, NS, &StaticSecretReader::new(), None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
}

fn jwt_auth(host: Option<&str>, sa: Option<ServiceAccountSelector>, secret: bool) -> ConjurAuth {
    ConjurAuth {
        jwt: Some(ConjurJwt {
            account: "myorg".into(),
            service_id: "k8s".into(),
            host_id: host.map(Into::into),
            service_account_ref: sa,
            secret_ref: secret.then(|| SecretKeySelector {
                name: Some("conjur-jwt".into()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn jwt_login_with_a_service_account_token() {
    let server = server().await;
    server.jwt_authenticator(
        JwtAuthenticator::new("k8s")
            .issuer(ISSUER)
            .audience("conjur"),
    );
    let tokens = Tokens {
        server: server.clone(),
        requests: Mutex::new(Vec::new()),
    };
    let sa = ServiceAccountSelector {
        name: "eso".into(),
        namespace: None,
        audiences: vec!["conjur".into()],
    };
    let s = store(
        StoreKind::SecretStore,
        &server.url(),
        jwt_auth(Some("host/apps/eso"), Some(sa.clone()), false),
    );
    let client = connect(&s, NS, &StaticSecretReader::new(), Some(&tokens))
        .await
        .unwrap();
    assert_eq!(
        client.get_secret(&remote("api/token")).await.unwrap(),
        b"t0k"
    );
    assert_eq!(server.count(route::AUTHN_JWT), 1);
    assert_eq!(
        tokens.requests.lock().unwrap().clone(),
        [(
            NS.to_owned(),
            "eso".to_owned(),
            vec!["conjur".to_owned()],
            Some(3600)
        )]
    );
    // A token for another audience is refused.
    let wrong = ServiceAccountSelector {
        audiences: vec!["other".into()],
        ..sa.clone()
    };
    let s = store(
        StoreKind::SecretStore,
        &server.url(),
        jwt_auth(Some("host/apps/eso"), Some(wrong), false),
    );
    let err = connect(&s, NS, &StaticSecretReader::new(), Some(&tokens))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    // Offline (no token source) it is a store problem that says why.
    let s = store(
        StoreKind::SecretStore,
        &server.url(),
        jwt_auth(Some("host/apps/eso"), Some(sa), false),
    );
    let err = connect(&s, NS, &StaticSecretReader::new(), None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(
        err.to_string().contains("ServiceAccount \"apps/eso\""),
        "{err}"
    );
}

#[tokio::test]
async fn jwt_login_with_the_host_taken_from_the_token() {
    let server = server().await;
    server.jwt_authenticator(
        JwtAuthenticator::new("k8s")
            .issuer(ISSUER)
            .token_app_property("sub", "apps"),
    );
    server.role(Role::new(
        "host/apps/system:serviceaccount:apps:eso",
        "unused",
    ));
    let tokens = Tokens {
        server: server.clone(),
        requests: Mutex::new(Vec::new()),
    };
    let sa = ServiceAccountSelector {
        name: "eso".into(),
        ..Default::default()
    };
    let s = store(
        StoreKind::SecretStore,
        &server.url(),
        jwt_auth(None, Some(sa), false),
    );
    let client = connect(&s, NS, &StaticSecretReader::new(), Some(&tokens))
        .await
        .unwrap();
    assert_eq!(
        client.get_secret(&remote("db/password")).await.unwrap(),
        b"s3cret"
    );
}

#[tokio::test]
async fn jwt_login_with_a_token_kept_in_a_secret() {
    let server = server().await;
    server.jwt_authenticator(JwtAuthenticator::new("k8s").issuer(ISSUER));
    let now = jiff::Timestamp::now().as_second();
    let jwt = server
        .issue_jwt(&json!({"iss": ISSUER, "sub": "x", "iat": now, "exp": now + 600}))
        .unwrap();
    let mut secrets = StaticSecretReader::new();
    // No key named: `token`, as upstream defaults it.
    secrets.insert(
        NS,
        "conjur-jwt",
        BTreeMap::from([("token".to_owned(), format!("{jwt}\n").into_bytes())]),
    );
    let s = store(
        StoreKind::SecretStore,
        &server.url(),
        jwt_auth(Some("host/apps/eso"), None, true),
    );
    let client = connect(&s, NS, &secrets, None).await.unwrap();
    assert_eq!(
        client.get_secret(&remote("api/token")).await.unwrap(),
        b"t0k"
    );
    // An expired token is refused.
    let old = server
        .issue_jwt(&json!({"iss": ISSUER, "sub": "x", "iat": now - 900, "exp": now - 300}))
        .unwrap();
    secrets.insert(
        NS,
        "conjur-jwt",
        BTreeMap::from([("token".to_owned(), old.into_bytes())]),
    );
    let err = connect(&s, NS, &secrets, None).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
}

fn find(name: Option<&str>, tags: &[(&str, &str)], path: Option<&str>) -> ExternalSecretFind {
    ExternalSecretFind {
        name: name.map(|n| FindName {
            regexp: Some(n.into()),
        }),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        path: path.map(Into::into),
        ..Default::default()
    }
}

#[tokio::test]
async fn find_matches_names_annotations_and_paths() {
    let server = server().await;
    let client = apikey_client(&server).await;
    let keys = |m: eso_provider::SecretData| m.keys().cloned().collect::<Vec<_>>();
    // By name; `empty` has no value and is left out.
    let all = client
        .get_all_secrets(&find(Some(".*"), &[], None))
        .await
        .unwrap();
    assert_eq!(
        keys(all.clone()),
        ["api/token", "binary", "db/config", "db/password"]
    );
    assert_eq!(all["db/password"], b"s3cret");
    // Binary values come through the base64 batch read intact.
    assert_eq!(all["binary"], [0, 159, 146, 150]);
    let db = client
        .get_all_secrets(&find(Some("^db/"), &[], None))
        .await
        .unwrap();
    assert_eq!(keys(db), ["db/config", "db/password"]);
    let prod = client
        .get_all_secrets(&find(None, &[("env", "prod")], None))
        .await
        .unwrap();
    assert_eq!(keys(prod), ["db/config", "db/password"]);
    let both = client
        .get_all_secrets(&find(Some("pass"), &[("env", "prod")], None))
        .await
        .unwrap();
    assert_eq!(keys(both), ["db/password"]);
    let path = client
        .get_all_secrets(&find(None, &[], Some("api/")))
        .await
        .unwrap();
    assert_eq!(keys(path), ["api/token"]);
    let none = client
        .get_all_secrets(&find(Some("^zzz"), &[], None))
        .await
        .unwrap();
    assert!(none.is_empty());
    let err = client
        .get_all_secrets(&find(Some("("), &[], None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn find_pages_through_resources_and_batches_reads() {
    let server = server().await;
    for i in 0..130 {
        server
            .variable(&format!("bulk/{i:03}"))
            .value(format!("v{i}").as_bytes());
    }
    let client = apikey_client(&server).await;
    let found = client
        .get_all_secrets(&find(Some("^bulk/"), &[], None))
        .await
        .unwrap();
    assert_eq!(found.len(), 130);
    assert_eq!(found["bulk/129"], b"v129");
    // 135 variables: two pages of 100; 130 values: three batches of at most 50.
    assert_eq!(server.count(route::RESOURCES), 2);
    assert_eq!(server.count(route::BATCH), 3);
}

#[tokio::test]
async fn tokens_are_reused_renewed_before_expiry_and_after_revocation() {
    let server = server().await;
    server.token_ttl(Duration::from_secs(2));
    let client = apikey_client(&server).await;
    client.get_secret(&remote("db/password")).await.unwrap();
    client.get_secret(&remote("api/token")).await.unwrap();
    assert_eq!(server.count(route::AUTHN), 1);
    // Past 85 % of its two seconds the token is renewed before use.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    client.get_secret(&remote("db/password")).await.unwrap();
    assert_eq!(server.count(route::AUTHN), 2);
    // A token the server stopped accepting: one 401, a new login, the same call again.
    server.token_ttl(Duration::from_secs(480));
    client.get_secret(&remote("db/password")).await.unwrap();
    server.revoke_tokens();
    let before = server.count(route::SECRET);
    client.get_secret(&remote("db/password")).await.unwrap();
    assert_eq!(server.count(route::SECRET) - before, 2);
    assert!(server.count(route::AUTHN) >= 3);
}

#[tokio::test]
async fn throttling_waits_for_retry_after_or_reports_it() {
    let server = server().await;
    let client = apikey_client(&server).await;
    server.inject(
        Fault::status(429)
            .route(route::SECRET)
            .retry_after(1)
            .times(1),
    );
    let started = tokio::time::Instant::now();
    assert_eq!(
        client.get_secret(&remote("api/token")).await.unwrap(),
        b"t0k"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(server.count(route::SECRET), 2);
    server.inject(
        Fault::status(429)
            .route(route::SECRET)
            .retry_after(120)
            .times(1),
    );
    let err = client.get_secret(&remote("api/token")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(server.count(route::SECRET), 3);
    // A throttled login too.
    server.inject(
        Fault::status(429)
            .route(route::AUTHN)
            .retry_after(120)
            .times(1),
    );
    let s = store(StoreKind::SecretStore, &server.url(), apikey_auth(None));
    let err = connect(&s, NS, &creds(NS, "host/apps/eso", "key-1"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_unavailable() {
    let server = server().await;
    let client = apikey_client(&server).await;
    server.inject(Fault::status(502).route(route::SECRET).times(1));
    assert_eq!(
        client.get_secret(&remote("api/token")).await.unwrap(),
        b"t0k"
    );
    assert_eq!(server.count(route::SECRET), 2);
    server.inject(Fault::status(503).route(route::SECRET).times(3));
    let err = client.get_secret(&remote("api/token")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.is_not_found());
    assert_eq!(server.count(route::SECRET), 5);
    server.inject(Fault::status(500).route(route::RESOURCES).times(3));
    let err = client
        .get_all_secrets(&find(Some(".*"), &[], None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    // A find whose batch read answers 404 (a variable vanished meanwhile) is no "not found".
    server.inject(Fault::status(404).route(route::BATCH).times(1));
    let err = client
        .get_all_secrets(&find(Some(".*"), &[], None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let s = store(StoreKind::SecretStore, &url, apikey_auth(None));
    let err = connect(&s, NS, &creds(NS, "host/apps/eso", "key-1"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn cluster_stores_read_credentials_where_upstream_does() {
    let server = server().await;
    // Named namespace.
    let s = store(
        StoreKind::ClusterSecretStore,
        &server.url(),
        apikey_auth(Some("conjur")),
    );
    let client = connect(
        &s,
        "team-a",
        &creds("conjur", "host/apps/eso", "key-1"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        client.get_secret(&remote("api/token")).await.unwrap(),
        b"t0k"
    );
    // No namespace: the ExternalSecret's (referent auth).
    let s = store(
        StoreKind::ClusterSecretStore,
        &server.url(),
        apikey_auth(None),
    );
    let client = connect(
        &s,
        "team-a",
        &creds("team-a", "host/apps/eso", "key-1"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        client.get_secret(&remote("api/token")).await.unwrap(),
        b"t0k"
    );
    // ... and without an ExternalSecret there is nothing to log in with yet.
    let client = connect(&s, "", &StaticSecretReader::new(), None)
        .await
        .unwrap();
    assert_eq!(client.validate().await.unwrap(), ValidationResult::Unknown);
    assert_eq!(
        client
            .get_secret(&remote("api/token"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidStore
    );
}

#[tokio::test]
async fn each_call_counts_once() {
    let server = server().await;
    let calls = ApiCalls::new();
    let _guard = metrics::set_default_local_recorder(&calls);
    let client = apikey_client(&server).await;
    client.get_secret(&remote("db/password")).await.unwrap();
    server.inject(Fault::status(503).route(route::SECRET).times(1));
    client.get_secret(&remote("db/password")).await.unwrap();
    client.get_secret(&remote("nope")).await.unwrap_err();
    client
        .get_all_secrets(&find(Some("^db/"), &[], None))
        .await
        .unwrap();
    let counts = calls.by_call();
    assert!(
        calls.other_counters().is_empty(),
        "{:?}",
        calls.other_counters()
    );
    assert!(
        calls
            .counts()
            .keys()
            .all(|(p, _, _)| p == "CyberArk/Conjur"),
        "{:?}",
        calls.counts()
    );
    let expected = BTreeMap::from([
        (("Authenticate".to_owned(), "success".to_owned()), 1),
        (("RetrieveSecret".to_owned(), "success".to_owned()), 2),
        (("RetrieveSecret".to_owned(), "error".to_owned()), 1),
        (("Resources".to_owned(), "success".to_owned()), 1),
        (("RetrieveBatchSecrets".to_owned(), "success".to_owned()), 1),
    ]);
    assert_eq!(counts, expected);
}
