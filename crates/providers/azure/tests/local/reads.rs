//! Reads: secrets, versions, properties, keys as JWK, certificates as DER, metadata, extract,
//! find; errors by cause; retries; read coalescing; metrics.

use std::sync::Arc;
use std::time::Duration;

use eso_api::{ExternalSecretFind, FindName, MetadataPolicy};
use eso_provider::ErrorKind;
use eso_testserver_azure::{Fault, Listener, SecretSeed, pki};
use serde_json::{Value, json};

use crate::common::*;

fn with(
    key: &str,
    f: impl FnOnce(&mut eso_api::ExternalSecretDataRemoteRef),
) -> eso_api::ExternalSecretDataRemoteRef {
    let mut r = remote(key);
    f(&mut r);
    r
}

#[tokio::test]
async fn secrets_by_name_type_prefix_version_and_property() {
    let env = Env::new();
    let v1 = env
        .server
        .set_secret("db", r#"{"user":"admin","pass":{"v":"p1"},"a.b":"dotted"}"#);
    env.server.set_secret("db", r#"{"user":"root"}"#);
    let c = env.client().await;
    assert_eq!(
        c.get_secret(&remote("db")).await.unwrap(),
        br#"{"user":"root"}"#
    );
    assert_eq!(
        c.get_secret(&remote("secret/db")).await.unwrap(),
        br#"{"user":"root"}"#
    );
    let old = with("db", |r| r.version = Some(v1.clone()));
    assert_eq!(
        c.get_secret(&old).await.unwrap(),
        br#"{"user":"admin","pass":{"v":"p1"},"a.b":"dotted"}"#
    );
    let prop = |p: &str| {
        with("db", |r| {
            r.version = Some(v1.clone());
            r.property = Some(p.to_owned());
        })
    };
    assert_eq!(c.get_secret(&prop("user")).await.unwrap(), b"admin");
    assert_eq!(c.get_secret(&prop("pass.v")).await.unwrap(), b"p1");
    assert_eq!(c.get_secret(&prop("pass")).await.unwrap(), br#"{"v":"p1"}"#);
    assert_eq!(c.get_secret(&prop("a.b")).await.unwrap(), b"dotted");
    // A missing property is an error, never not-found: the secret exists.
    let err = c.get_secret(&prop("nope")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        err.message()
            .contains("property \"nope\" does not exist in key \"db\""),
        "{err}"
    );
}

#[tokio::test]
async fn missing_objects_and_versions_are_not_found_naming_store_and_key() {
    let env = Env::new();
    env.server.set_secret("db", "v");
    let c = env.client().await;
    for key in ["missing", "key/missing", "cert/missing"] {
        let err = c.get_secret(&remote(key)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{key}");
        assert!(
            err.message().contains("SecretStore \"apps/azure\""),
            "{err}"
        );
        assert!(err.message().contains("NotFound"), "{err}");
    }
    let err = c
        .get_secret(&with("db", |r| r.version = Some("0123".into())))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = c.get_secret(&remote("blob/x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn keys_are_public_jwks_in_upstream_field_order() {
    let env = Env::new();
    env.server.set_key(
        "rsa",
        json!({"kty": "RSA", "n": "bW9kdWx1cw", "e": "AQAB", "d": "secret"}),
        &[],
    );
    env.server.set_key(
        "ec",
        json!({"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ", "d": "secret"}),
        &[],
    );
    let c = env.client().await;
    let rsa = String::from_utf8(c.get_secret(&remote("key/rsa")).await.unwrap()).unwrap();
    let kid = format!("{}/keys/rsa/", env.server.vault_url());
    assert!(rsa.starts_with(&format!(r#"{{"kid":"{kid}"#)), "{rsa}");
    assert!(
        rsa.ends_with(r#"","kty":"RSA","key_ops":["encrypt","decrypt","sign","verify","wrapKey","unwrapKey"],"n":"bW9kdWx1cw","e":"AQAB"}"#),
        "{rsa}"
    );
    let ec = String::from_utf8(c.get_secret(&remote("key/ec")).await.unwrap()).unwrap();
    assert!(
        ec.ends_with(r#","kty":"EC","key_ops":["sign","verify"],"crv":"P-256","x":"eA","y":"eQ"}"#),
        "{ec}"
    );
    assert_eq!(
        c.get_secret(&with("key/ec", |r| r.property = Some("crv".into())))
            .await
            .unwrap(),
        b"P-256"
    );
}

#[tokio::test]
async fn certificates_are_their_der_as_upstream() {
    let env = Env::new();
    let cert = pki::self_signed("site.example", true).unwrap();
    let der = cert.cert_der().unwrap();
    env.server.set_certificate("site", &der, &[("env", "prod")]);
    let c = env.client().await;
    assert_eq!(c.get_secret(&remote("cert/site")).await.unwrap(), der);
    let tags = c
        .get_secret(&with("cert/site", |r| {
            r.metadata_policy = Some(MetadataPolicy::Fetch)
        }))
        .await
        .unwrap();
    let tags: Value = serde_json::from_slice(&tags).unwrap();
    assert_eq!(tags["env"], "prod");
    assert!(tags["attribute.created"].as_str().unwrap().ends_with('Z'));
    let err = c.get_secret_map(&remote("cert/site")).await.unwrap_err();
    assert!(
        err.message()
            .contains("cannot use dataFrom to get a certificate"),
        "{err}"
    );
    assert!(c.get_secret_map(&remote("key/site")).await.is_err());
}

#[tokio::test]
async fn metadata_fetch_serves_tags_and_attributes() {
    let env = Env::new();
    env.server.set_secret_with(
        "db",
        SecretSeed::new("v")
            .tag("env", "prod")
            .tag("owner", r#"{"team":"payments","oncall":"ann"}"#)
            .expires(1_900_000_000)
            .not_before(1_700_000_000),
    );
    let c = env.client().await;
    let fetch = |p: Option<&str>| {
        with("db", |r| {
            r.metadata_policy = Some(MetadataPolicy::Fetch);
            r.property = p.map(str::to_owned);
        })
    };
    let all: Value = serde_json::from_slice(&c.get_secret(&fetch(None)).await.unwrap()).unwrap();
    assert_eq!(all["env"], "prod");
    assert_eq!(all["attribute.expires"], "2030-03-17T17:46:40Z");
    assert_eq!(all["attribute.notBefore"], "2023-11-14T22:13:20Z");
    assert!(all["attribute.created"].is_string() && all["attribute.updated"].is_string());
    assert_eq!(c.get_secret(&fetch(Some("env"))).await.unwrap(), b"prod");
    assert_eq!(
        c.get_secret(&fetch(Some("owner.team"))).await.unwrap(),
        b"payments"
    );
    assert_eq!(
        c.get_secret(&fetch(Some("attribute.expires")))
            .await
            .unwrap(),
        b"2030-03-17T17:46:40Z"
    );
    // A missing tag is an error, never not-found (the secret exists).
    assert!(
        !c.get_secret(&fetch(Some("nope")))
            .await
            .unwrap_err()
            .is_not_found()
    );

    // dataFrom.extract with Fetch: `<name>_<tag>`, JSON tags expanded, attributes included.
    let map = c.get_secret_map(&fetch(None)).await.unwrap();
    assert_eq!(map["db_env"], b"prod");
    assert_eq!(map["db_owner_team"], b"payments");
    assert_eq!(map["db_owner_oncall"], b"ann");
    assert_eq!(map["db_attribute.expires"], b"2030-03-17T17:46:40Z");
}

#[tokio::test]
async fn extract_splits_a_json_secret() {
    let env = Env::new();
    env.server
        .set_secret("app", r#"{"user":"u","port":5432,"nested":{"a" : 1}}"#);
    env.server.set_secret("plain", "not json");
    let c = env.client().await;
    let m = c.get_secret_map(&remote("app")).await.unwrap();
    assert_eq!(m["user"], b"u");
    assert_eq!(m["port"], b"5432");
    assert_eq!(m["nested"], br#"{"a" : 1}"#);
    let err = c.get_secret_map(&remote("plain")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn find_by_name_and_tags_pages_through_every_enabled_secret() {
    let env = Env::new();
    for i in 0..40 {
        let seed = SecretSeed::new(&format!("value-{i}"));
        let seed = if i % 2 == 0 {
            seed.tag("env", "prod")
        } else {
            seed.tag("env", "dev")
        };
        env.server.set_secret_with(&format!("app-{i:02}"), seed);
    }
    env.server.set_secret_with(
        "app-off",
        SecretSeed::new("x").tag("env", "prod").disabled(),
    );
    env.server.set_secret("other", "o");
    let c = env.client().await;
    let by_name = ExternalSecretFind {
        name: Some(FindName {
            regexp: Some("^app-".into()),
        }),
        ..ExternalSecretFind::default()
    };
    let found = c.get_all_secrets(&by_name).await.unwrap();
    assert_eq!(found.len(), 40, "{:?}", found.keys().collect::<Vec<_>>());
    assert_eq!(found["app-07"], b"value-7");
    // 41 secrets + 1 = 42 listed over two pages of 25.
    let lists = env.server.count(Listener::Vault, "GET", "/secrets");
    assert!(lists >= 2);
    let by_tag = ExternalSecretFind {
        tags: [("env".to_owned(), "prod".to_owned())].into(),
        ..ExternalSecretFind::default()
    };
    let found = c.get_all_secrets(&by_tag).await.unwrap();
    assert_eq!(found.len(), 20);
    assert!(!found.contains_key("app-off"));
    let both = ExternalSecretFind {
        name: Some(FindName {
            regexp: Some("-0[0-4]$".into()),
        }),
        tags: [("env".to_owned(), "dev".to_owned())].into(),
        ..ExternalSecretFind::default()
    };
    let found = c.get_all_secrets(&both).await.unwrap();
    assert_eq!(
        found.keys().cloned().collect::<Vec<_>>(),
        ["app-01", "app-03"]
    );
}

#[tokio::test]
async fn forbidden_throttled_and_failing_vaults_map_by_cause() {
    let env = Env::new();
    env.server.set_secret("db", "v");
    let c = env.client().await;

    env.server
        .inject(Fault::vault("/secrets/db", 429).retry_after(9));
    let err = c.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(9)));
    assert!(err.message().contains("Throttled"), "{err}");

    env.server.inject(Fault::vault("/secrets/db", 403));
    let err = c
        .get_secret(&with("db", |r| r.property = Some("x".into())))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(
        err.message().contains("403") && err.message().contains("ForbiddenByRbac"),
        "{err}"
    );

    // Two 503s are retried away (the third attempt answers).
    env.server.inject(Fault::vault("/secrets/db", 503).times(2));
    let before = env.server.count(Listener::Vault, "GET", "/secrets/db");
    assert_eq!(
        c.get_secret(&with("db", |r| r.version = Some(String::new())))
            .await
            .unwrap(),
        b"v"
    );
    assert_eq!(
        env.server.count(Listener::Vault, "GET", "/secrets/db") - before,
        3
    );

    // A vault that keeps failing is Unavailable, never NotFound.
    // (A new client: the read above is in this client's cache.)
    let c = env.client().await;
    env.server.inject(Fault::vault("/secrets/db", 500).times(3));
    let err = c.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!err.is_not_found());
}

#[tokio::test]
async fn an_unreachable_vault_is_unavailable() {
    let env = Env::new();
    let mut spec = env.spec();
    spec.vault_url = "https://127.0.0.1:1".into();
    let c = env.client_for(spec).await.unwrap();
    let err = c.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.message().contains("cannot reach https://127.0.0.1:1"),
        "{err}"
    );
}

#[tokio::test]
async fn concurrent_reads_of_one_secret_are_one_request() {
    let env = Env::new();
    for i in 0..10 {
        env.server.set_secret(&format!("k{i}"), "v");
    }
    let c = env.client().await;
    let mut tasks = Vec::new();
    for n in 0..200 {
        let c = Arc::clone(&c);
        tasks.push(tokio::spawn(async move {
            c.get_secret(&remote(&format!("k{}", n % 10))).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(env.server.vault_requests(), 10);
    assert_eq!(env.server.token_requests(), 1);
}

#[test]
fn api_calls_are_counted_with_upstream_labels() {
    let recorder = Recorder::default();
    let counts = recorder.0.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let env = Env::new();
            env.server.set_secret("db", "v");
            env.server.set_key(
                "k",
                json!({"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ"}),
                &[],
            );
            let c = env.client().await;
            c.get_secret(&remote("db")).await.unwrap();
            c.get_secret(&remote("key/k")).await.unwrap();
            c.get_secret(&remote("missing")).await.unwrap_err();
            c.get_all_secrets(&ExternalSecretFind::default())
                .await
                .unwrap();
        });
    });
    let counts = counts.lock().unwrap().clone();
    let get = |call: &str, status: &str| {
        counts
            .get(&(
                "Azure/KeyVault".to_owned(),
                call.to_owned(),
                status.to_owned(),
            ))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(get("GetSecret", "success"), 1, "{counts:?}");
    assert_eq!(get("GetSecret", "error"), 1, "{counts:?}");
    assert_eq!(get("GetKey", "success"), 1, "{counts:?}");
    assert_eq!(get("GetSecrets", "success"), 1, "{counts:?}");
}
