//! The Chef provider against a real Chef server (goiardi with signed-request checking), with a
//! fault proxy in front of it for throttling and server errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use eso_api::{ExternalSecretFind, StoreKind};
use eso_provider::{ErrorKind, ValidationResult};
use eso_test_support::metrics::ApiCalls;
use serde_json::json;

use common::{
    Fault, FaultProxy, Goiardi, NS, admin_client, client_for, key_secret, remote, spec, store,
};

async fn seeded() -> Goiardi {
    let server = Goiardi::start().await;
    server
        .bag(
            "creds",
            &[
                json!({"id": "db", "password": "s3cret", "port": 5432, "ratio": 1.0,
                       "html": "<a&b>", "nested": {"list": [1, 2], "flag": true}}),
                json!({"id": "api", "token": "t0k"}),
            ],
        )
        .await;
    server.bag("empty", &[]).await;
    server
}

#[tokio::test]
async fn reads_an_item_as_the_json_upstream_writes() {
    let server = seeded().await;
    let client = admin_client(&server.url, &server).await;
    let value = client.get_secret(&remote("creds/db", None)).await.unwrap();
    // Keys sorted, 1.0 as 1, and Go's HTML escaping: the bytes upstream puts in the Secret.
    assert_eq!(
        String::from_utf8(value).unwrap(),
        r#"{"html":"\u003ca\u0026b\u003e","id":"db","nested":{"flag":true,"list":[1,2]},"password":"s3cret","port":5432,"ratio":1}"#
    );
}

#[tokio::test]
async fn property_paths_pick_values_out_of_an_item() {
    let server = seeded().await;
    let client = admin_client(&server.url, &server).await;
    let get = |p: &'static str| {
        let client = client.clone();
        async move { client.get_secret(&remote("creds/db", Some(p))).await }
    };
    assert_eq!(get("password").await.unwrap(), b"s3cret");
    assert_eq!(get("port").await.unwrap(), b"5432");
    assert_eq!(get("nested.list.1").await.unwrap(), b"2");
    assert_eq!(
        get("nested").await.unwrap(),
        br#"{"flag":true,"list":[1,2]}"#
    );
    let err = get("nested.missing").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .contains("has no property \"nested.missing\""),
        "{err}"
    );
}

#[tokio::test]
async fn extract_reads_every_item_of_a_bag() {
    let server = seeded().await;
    let client = admin_client(&server.url, &server).await;
    let map = client.get_secret_map(&remote("creds", None)).await.unwrap();
    assert_eq!(map.keys().collect::<Vec<_>>(), ["api", "db"]);
    assert_eq!(map["api"], br#"{"id":"api","token":"t0k"}"#);
    assert!(
        client
            .get_secret_map(&remote("empty", None))
            .await
            .unwrap()
            .is_empty()
    );
    let err = client
        .get_secret_map(&remote("creds/db", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn missing_items_and_bags_are_typed_not_found() {
    let server = seeded().await;
    let client = admin_client(&server.url, &server).await;
    for key in ["creds/nope", "nobag/db"] {
        let err = client.get_secret(&remote(key, None)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{key}: {err}");
        assert!(
            err.to_string()
                .contains("does not exist on the Chef server"),
            "{err}"
        );
        // The store is named in the message.
        assert!(
            err.to_string().contains("SecretStore \"apps/chef\""),
            "{err}"
        );
    }
    let err = client
        .get_secret_map(&remote("nobag", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = client.get_secret(&remote("creds", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn wrong_keys_and_unknown_users_are_auth_errors() {
    let server = seeded().await;
    // The admin user signing with another principal's key: the signature does not verify.
    let wrong_key = store(StoreKind::SecretStore, spec(&server.url, "admin", None));
    let client = client_for(
        &wrong_key,
        &key_secret(NS, &server.client_pem("chef-webui")),
    )
    .await
    .unwrap();
    let err = client
        .get_secret(&remote("creds/db", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(!err.is_not_found());
    assert_eq!(client.validate().await.unwrap_err().kind(), ErrorKind::Auth);
    // A user the server does not know.
    let unknown = store(StoreKind::SecretStore, spec(&server.url, "nobody", None));
    let client = client_for(&unknown, &key_secret(NS, &server.admin_pem))
        .await
        .unwrap();
    let err = client
        .get_secret(&remote("creds/db", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
}

#[tokio::test]
async fn validate_reads_the_user_as_upstream() {
    let server = seeded().await;
    let client = admin_client(&server.url, &server).await;
    assert_eq!(client.validate().await.unwrap(), ValidationResult::Ready);
    // An admin client (not a user) can read data bags, but upstream's check looks for a user.
    let as_client = store(
        StoreKind::SecretStore,
        spec(&server.url, "chef-webui", None),
    );
    let client = client_for(
        &as_client,
        &key_secret(NS, &server.client_pem("chef-webui")),
    )
    .await
    .unwrap();
    assert_eq!(
        client
            .get_secret(&remote("creds/api", Some("token")))
            .await
            .unwrap(),
        b"t0k"
    );
    let err = client.validate().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{err}");
}

#[tokio::test]
async fn a_principal_without_read_access_gets_an_auth_error() {
    let server = seeded().await;
    // The validator client may only register nodes: the server answers 403.
    let validator = store(
        StoreKind::SecretStore,
        spec(&server.url, "chef-validator", None),
    );
    let client = client_for(
        &validator,
        &key_secret(NS, &server.client_pem("chef-validator")),
    )
    .await
    .unwrap();
    let err = client
        .get_secret(&remote("creds/api", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.chain().contains("403"), "{}", err.chain());
}

#[tokio::test]
async fn cluster_stores_read_the_key_from_the_named_namespace() {
    let server = seeded().await;
    let cluster = store(
        StoreKind::ClusterSecretStore,
        spec(&server.url, "admin", Some("chef-creds")),
    );
    let client = client_for(&cluster, &key_secret("chef-creds", &server.admin_pem))
        .await
        .unwrap();
    assert_eq!(
        client
            .get_secret(&remote("creds/db", Some("password")))
            .await
            .unwrap(),
        b"s3cret"
    );
    // Without a namespace a ClusterSecretStore is refused (upstream's rule).
    let no_ns = store(
        StoreKind::ClusterSecretStore,
        spec(&server.url, "admin", None),
    );
    let err = client_for(&no_ns, &key_secret(NS, &server.admin_pem))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    // A key Secret that is missing, or a key that is not RSA PEM.
    let ss = store(StoreKind::SecretStore, spec(&server.url, "admin", None));
    let err = client_for(&ss, &key_secret("elsewhere", &server.admin_pem))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    let err = client_for(&ss, &key_secret(NS, "not a key"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(err.to_string().contains("cannot sign requests"), "{err}");
}

#[tokio::test]
async fn find_is_not_supported() {
    let server = seeded().await;
    let client = admin_client(&server.url, &server).await;
    let err = client
        .get_all_secrets(&ExternalSecretFind::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

fn fault(status: u16, retry_after: Option<&str>) -> Fault {
    Fault {
        status,
        headers: retry_after
            .map(|r| vec![("Retry-After", r.to_owned())])
            .unwrap_or_default(),
        body: r#"{"error":["injected"]}"#,
    }
}

#[tokio::test]
async fn throttling_waits_for_retry_after_or_reports_it() {
    let server = seeded().await;
    let proxy = FaultProxy::start(&server.url).await;
    let client = admin_client(&proxy.url, &server).await;
    // A short wait is honoured inside the call: one 429, then the answer.
    proxy.fail_next([fault(429, Some("1"))]);
    let started = tokio::time::Instant::now();
    let value = client
        .get_secret(&remote("creds/api", Some("token")))
        .await
        .unwrap();
    assert_eq!(value, b"t0k");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(proxy.requests(), ["/data/creds/api", "/data/creds/api"]);
    // A long one ends the call at once with the wait, for the reconciler's backoff.
    proxy.fail_next([fault(429, Some("120"))]);
    let err = client
        .get_secret(&remote("creds/api", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(proxy.requests().len(), 3);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_unavailable() {
    let server = seeded().await;
    let proxy = FaultProxy::start(&server.url).await;
    let client = admin_client(&proxy.url, &server).await;
    proxy.fail_next([fault(502, None)]);
    assert_eq!(
        client
            .get_secret(&remote("creds/api", Some("token")))
            .await
            .unwrap(),
        b"t0k"
    );
    assert_eq!(proxy.requests().len(), 2);
    proxy.fail_next([fault(503, None), fault(500, None), fault(503, None)]);
    let err = client
        .get_secret(&remote("creds/api", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.is_not_found());
    // Three attempts (the default), then the error.
    assert_eq!(proxy.requests().len(), 5);
    // A 400 is not retried.
    proxy.fail_next([fault(400, None)]);
    let err = client
        .get_secret(&remote("creds/api", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(proxy.requests().len(), 6);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let url = format!("http://127.0.0.1:{}/", common::free_port());
    let pem = include_str!("../src/testdata/pkcs1.pem");
    let s = store(StoreKind::SecretStore, spec(&url, "admin", None));
    let client = client_for(&s, &key_secret(NS, pem)).await.unwrap();
    let err = client
        .get_secret(&remote("creds/db", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn each_call_counts_once_with_upstreams_labels() {
    let server = seeded().await;
    let proxy = FaultProxy::start(&server.url).await;
    let client = admin_client(&proxy.url, &server).await;
    let calls = ApiCalls::new();
    let _guard = metrics::set_default_local_recorder(&calls);
    client.get_secret(&remote("creds/db", None)).await.unwrap();
    // A retried call is one call.
    proxy.fail_next([fault(503, None)]);
    client.get_secret(&remote("creds/api", None)).await.unwrap();
    client
        .get_secret(&remote("creds/nope", None))
        .await
        .unwrap_err();
    client.get_secret_map(&remote("creds", None)).await.unwrap();
    client.validate().await.unwrap();
    let counts = calls.by_call();
    assert!(
        calls.other_counters().is_empty(),
        "{:?}",
        calls.other_counters()
    );
    assert!(
        calls.counts().keys().all(|(p, _, _)| p == "Chef"),
        "{:?}",
        calls.counts()
    );
    let expected = BTreeMap::from([
        (("GetDataBagItem".to_owned(), "success".to_owned()), 4),
        (("GetDataBagItem".to_owned(), "error".to_owned()), 1),
        (("ListDataBagItems".to_owned(), "success".to_owned()), 1),
        (("GetUser".to_owned(), "success".to_owned()), 1),
    ]);
    assert_eq!(counts, expected);
}
