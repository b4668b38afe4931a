//! The webhook provider against a real HTTP server started by each test on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use eso_api::ExternalSecretDataRemoteRef;
use eso_provider::{ErrorKind, PushRemoteRef, PushRequest, ValidationResult};
use eso_provider_webhook::WebhookConfig;
use serde_json::json;

use common::{Hook, Reply, TestServer, key};

fn full_ref(k: &str, property: &str, version: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: k.to_owned(),
        property: Some(property.to_owned()),
        version: Some(version.to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn get_renders_url_and_headers_and_reads_json_path() {
    let server = TestServer::start(|_| {
        Reply::json(json!({"data": {"value": "s3cret", "other": "x"}, "meta": {"v": 3}}))
    })
    .await;
    let hook = Hook::new(&server.url(
        "/secrets/{{ .remoteRef.key }}?version={{ .remoteRef.version }}&p={{ .remoteRef.property }}",
    ))
    .header("Authorization", "Bearer {{ .creds.token }}")
    .header("X-Key", "{{ .remoteRef.key }}")
    .json_path("$.data.{{ .remoteRef.property }}")
    .secret("creds", "api-creds", &[("token", "t0k3n")]);
    let client = hook.client().await;
    assert_eq!(server.count(), 0, "building a client sends nothing");

    let value = client
        .get_secret(&full_ref("team a/db", "value", "v 2"))
        .await
        .unwrap();
    assert_eq!(value, b"s3cret");
    assert_eq!(server.count(), 1);
    let seen = server.last();
    assert_eq!(seen.method, "GET");
    // remoteRef values are query-escaped in the URL only.
    assert_eq!(seen.target, "/secrets/team+a%2Fdb?version=v+2&p=value");
    assert_eq!(seen.header("authorization"), Some("Bearer t0k3n"));
    assert_eq!(seen.header("x-key"), Some("team a/db"));
    assert!(seen.body.is_empty());
    assert_eq!(client.validate().await.unwrap(), ValidationResult::Unknown);
    assert_eq!(server.count(), 1, "validate sends nothing, as upstream");
}

#[tokio::test]
async fn post_body_is_a_template_and_whole_body_is_the_value_without_json_path() {
    let server =
        TestServer::start(|seen| Reply::status(200, format!("echo:{}", seen.body.len()))).await;
    let body = r#"{"name":"{{ .remoteRef.key }}","auth":"{{ .creds.user | upper }}"}"#;
    let hook = Hook::new(&server.url("/lookup"))
        .method("POST")
        .body(body)
        .secret("creds", "api-creds", &[("user", "ann")]);
    let client = hook.client().await;
    let expected = r#"{"name":"app/db","auth":"ANN"}"#;
    let value = client.get_secret(&key("app/db")).await.unwrap();
    assert_eq!(value, format!("echo:{}", expected.len()).as_bytes());
    let seen = server.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/lookup");
    assert_eq!(seen.body, expected.as_bytes());
}

#[tokio::test]
async fn get_secret_map_reads_an_object() {
    let server = TestServer::start(|seen| {
        if seen.target.ends_with("/wrapped") {
            Reply::json(json!({"result": "{\"user\":\"ann\",\"port\":5432}"}))
        } else if seen.target.ends_with("/list") {
            Reply::json(json!({"result": ["a", "b"]}))
        } else {
            Reply::json(json!({"result": {"user": "ann", "port": 5432, "tls": {"on": true}}}))
        }
    })
    .await;
    let client = Hook::new(&server.url("/{{ .remoteRef.key }}"))
        .json_path("$.result")
        .client()
        .await;
    let map = client.get_secret_map(&key("db")).await.unwrap();
    assert_eq!(map["user"], b"ann");
    assert_eq!(map["port"], b"5432");
    assert_eq!(map["tls"], br#"{"on":true}"#);
    let map = client.get_secret_map(&key("wrapped")).await.unwrap();
    assert_eq!(map["port"], b"5432");
    let err = client.get_secret_map(&key("list")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("jsonPath \"$.result\""), "{err}");
    assert!(err.message().contains("a list"), "{err}");
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn statuses_map_to_error_kinds_and_messages_hide_credentials() {
    let server = TestServer::start(|seen| {
        let code: u16 = seen
            .target
            .trim_start_matches('/')
            .split('?')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        match code {
            429 => Reply::status(429, "slow down").header("retry-after", "7"),
            401 => Reply::status(401, "bad token t0k3n"),
            _ => Reply::status(code, "{\"error\":\"nope\"}"),
        }
    })
    .await;
    let client = Hook::new(&server.url("/{{ .remoteRef.key }}?token={{ .creds.token }}"))
        .secret("creds", "api-creds", &[("token", "t0k3n")])
        .json_path("$.value")
        .client()
        .await;
    for (code, kind) in [
        ("404", ErrorKind::NotFound),
        ("401", ErrorKind::Auth),
        ("403", ErrorKind::Auth),
        ("429", ErrorKind::Throttled),
        ("500", ErrorKind::Unavailable),
        ("502", ErrorKind::Unavailable),
        ("503", ErrorKind::Unavailable),
        ("400", ErrorKind::InvalidRequest),
    ] {
        let err = client.get_secret(&key(code)).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {}", err.chain());
        let chain = err.chain();
        assert!(
            !chain.contains("t0k3n"),
            "{code}: credentials leaked: {chain}"
        );
        assert!(
            chain.contains(&format!("http://{}/{code}?…", server.addr)),
            "{chain}"
        );
        assert!(chain.contains(code), "{chain}");
        if code == "429" {
            assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        }
    }
    assert_eq!(server.count(), 8, "one request per call, no retries inside");
}

#[tokio::test]
async fn bodies_that_are_not_json_or_lack_the_path_are_errors() {
    let server = TestServer::start(|seen| match seen.target.as_str() {
        "/html" => Reply::status(200, "<html>proxy error</html>"),
        _ => Reply::json(json!({"data": {}})),
    })
    .await;
    let client = Hook::new(&server.url("/{{ .remoteRef.key }}"))
        .json_path("$.data.value")
        .client()
        .await;
    let err = client.get_secret(&key("html")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("not JSON"), "{err}");
    let err = client.get_secret(&key("empty")).await.unwrap_err();
    // Never NotFound: only a 404 says the secret does not exist.
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("200 OK"), "{err}");
    assert!(err.message().contains("$.data.value"), "{err}");
}

#[tokio::test]
async fn oversized_answers_are_refused() {
    let server = TestServer::start(|_| Reply::status(200, vec![b'a'; 64 * 1024])).await;
    let mut hook = Hook::new(&server.url("/big"));
    hook.config = WebhookConfig::default().max_response_bytes(1024);
    let err = hook.client().await.get_secret(&key("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("1024-byte limit"), "{err}");
    let mut hook = Hook::new(&server.url("/big"));
    hook.config = WebhookConfig::default().max_response_bytes(64 * 1024);
    assert_eq!(
        hook.client()
            .await
            .get_secret(&key("x"))
            .await
            .unwrap()
            .len(),
        64 * 1024
    );
}

#[tokio::test]
async fn slow_answers_time_out_as_unavailable() {
    let server =
        TestServer::start(|_| Reply::json(json!({"v": 1})).delay(Duration::from_secs(5))).await;
    let client = Hook::new(&server.url("/slow"))
        .timeout("300ms")
        .client()
        .await;
    let started = Instant::now();
    let err = client.get_secret(&key("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("timed out"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = Hook::new(&format!("http://{addr}/x")).client().await;
    let err = client.get_secret(&key("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("could not connect"), "{err}");
}

#[tokio::test]
async fn redirects_stay_on_the_same_host_unless_allowed() {
    let other = TestServer::start(|_| Reply::json(json!({"v": "elsewhere"}))).await;
    let other_url = other.url("/landing");
    let server = TestServer::start(move |seen| match seen.target.as_str() {
        "/moved" => Reply::status(302, "").header("location", "/here"),
        "/away" => Reply::status(302, "").header("location", &other_url),
        _ => Reply::json(json!({"v": "here"})),
    })
    .await;
    let hook = Hook::new(&server.url("/{{ .remoteRef.key }}")).json_path("$.v");
    let client = hook.client().await;
    assert_eq!(client.get_secret(&key("moved")).await.unwrap(), b"here");
    let err = client.get_secret(&key("away")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.chain().contains("another host"), "{}", err.chain());
    assert_eq!(other.count(), 0);
    let mut hook = hook;
    hook.config = WebhookConfig::default().cross_host_redirects(true);
    assert_eq!(
        hook.client().await.get_secret(&key("away")).await.unwrap(),
        b"elsewhere"
    );
    assert_eq!(other.count(), 1);
}

#[tokio::test]
async fn push_renders_body_over_the_value_and_defaults_to_post() {
    let server = TestServer::start(|_| Reply::status(204, "")).await;
    let hook = Hook::new(&server.url("/push/{{ .remoteRef.remoteKey }}"))
        .body(r#"{"secret":"{{ .remoteRef.password }}","by":"{{ .creds.user }}"}"#)
        .header("X-User", "{{ .creds.user }}")
        .secret("creds", "api-creds", &[("user", "ann")]);
    let client = hook.client().await;
    client
        .push_secret(&PushRequest {
            value: b"s3cret".to_vec(),
            secret_key: Some("password".into()),
            remote: PushRemoteRef {
                remote_key: "app/db".into(),
                property: None,
            },
            metadata: None,
        })
        .await
        .unwrap();
    let seen = server.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/push/app%2Fdb");
    assert_eq!(seen.body, br#"{"secret":"s3cret","by":"ann"}"#);
    assert_eq!(seen.header("x-user"), Some("ann"));

    // Without a body template the raw value is sent, with the store's method.
    let client = Hook::new(&server.url("/raw/{{ .remoteRef.remoteKey }}"))
        .method("PUT")
        .client()
        .await;
    let push = PushRequest {
        value: b"raw-bytes".to_vec(),
        secret_key: None,
        remote: PushRemoteRef {
            remote_key: "k".into(),
            property: None,
        },
        metadata: None,
    };
    client.push_secret(&push).await.unwrap();
    let seen = server.last();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("PUT", "/raw/k")
    );
    assert_eq!(seen.body, b"raw-bytes");
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn push_errors_map_by_status() {
    let server = TestServer::start(|_| Reply::status(403, "denied")).await;
    let client = Hook::new(&server.url("/p")).client().await;
    let err = client
        .push_secret(&PushRequest {
            value: b"v".to_vec(),
            secret_key: Some("k".into()),
            remote: PushRemoteRef {
                remote_key: "r".into(),
                property: None,
            },
            metadata: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.message().contains("POST"), "{err}");
}

#[tokio::test]
async fn find_delete_and_exists_are_unsupported() {
    let server = TestServer::start(|_| Reply::json(json!({}))).await;
    let client = Hook::new(&server.url("/x")).client().await;
    let err = client
        .get_all_secrets(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let remote = PushRemoteRef::default();
    assert_eq!(
        client.delete_secret(&remote).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        client.secret_exists(&remote).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn missing_referenced_secret_is_an_invalid_store() {
    let mut hook = Hook::new("http://127.0.0.1:1/x").secret("creds", "api-creds", &[]);
    hook.secrets = eso_provider::StaticSecretReader::new();
    let Err(err) = hook.try_client().await else {
        panic!("a client was built without its Secret");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(err.message().contains("\"apps/api-creds\""), "{err}");
}

#[tokio::test]
async fn rendered_url_must_be_http() {
    let client = Hook::new("{{ .remoteRef.key }}").client().await;
    let err = client.get_secret(&key("ftp://x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}
