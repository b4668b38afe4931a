//! Reads: versions, properties, extract, metadata, the version selection policy, regional
//! secrets, and the read cache.

use eso_api::provider::{GcpSecretVersionSelectionPolicy, GcpsmProvider};
use eso_api::{ExternalSecretDataRemoteRef, MetadataPolicy};
use eso_provider::ErrorKind;
use eso_provider_gcp::{GcpEndpoints, GcpProvider};
use eso_testserver_gcp::{MetadataConfig, VersionState, method};

use crate::common::{Env, PROJECT, SA_EMAIL, key_spec, property, remote, store, text, version};

#[tokio::test]
async fn reads_latest_numbered_and_aliased_versions() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "db")
        .version(b"one")
        .version(b"two")
        .version(b"three")
        .alias("stable", 2)
        .create();
    let client = env.client(key_spec()).await.unwrap();
    assert_eq!(
        text(client.get_secret(&remote("db")).await.unwrap()),
        "three"
    );
    assert_eq!(
        text(client.get_secret(&version("db", "latest")).await.unwrap()),
        "three"
    );
    assert_eq!(
        text(client.get_secret(&version("db", "1")).await.unwrap()),
        "one"
    );
    assert_eq!(
        text(client.get_secret(&version("db", "stable")).await.unwrap()),
        "two"
    );
    // Every read came from the key's service account; `latest` was read once for both
    // spellings (the read cache).
    let readers: Vec<_> = env
        .server
        .calls()
        .into_iter()
        .filter(|c| c.method == method::ACCESS_SECRET_VERSION)
        .map(|c| c.principal)
        .collect();
    assert_eq!(readers, vec![Some(SA_EMAIL.to_owned()); 3]);
}

#[tokio::test]
async fn absent_secrets_and_versions_are_not_found_a_missing_property_is_an_error() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "db")
        .version(br#"{"a":"1"}"#)
        .create();
    env.server.secret(PROJECT, "empty").create();
    let client = env.client(key_spec()).await.unwrap();
    for (what, r) in [
        ("secret", remote("missing")),
        ("version", version("db", "7")),
        ("alias", version("db", "nope")),
        ("secret without versions", remote("empty")),
    ] {
        let err = client.get_secret(&r).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{what}: {}", err.chain());
        assert!(
            err.chain().contains("SecretStore \"apps/gcp\""),
            "{}",
            err.chain()
        );
    }
    // The secret exists: a typo in property must never count as not-found.
    let err = client.get_secret(&property("db", "b")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{}", err.chain());
    assert!(err.chain().contains("\"b\""), "{}", err.chain());
    let err = client.get_secret(&remote("missing")).await.unwrap_err();
    assert!(
        err.chain().contains("\"missing\""),
        "the key is named: {}",
        err.chain()
    );
}

#[tokio::test]
async fn properties_read_literal_dotted_keys_first_then_paths() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "cfg")
        .version(br#"{"db.host":"literal","db":{"host":"nested","port":5432},"list":[{"n":"x"},{"n":"y"}]}"#)
        .create();
    env.server
        .secret(PROJECT, "plain")
        .version(b"not json")
        .create();
    let client = env.client(key_spec()).await.unwrap();
    assert_eq!(
        text(
            client
                .get_secret(&property("cfg", "db.host"))
                .await
                .unwrap()
        ),
        "literal"
    );
    assert_eq!(
        text(
            client
                .get_secret(&property("cfg", "db.port"))
                .await
                .unwrap()
        ),
        "5432"
    );
    assert_eq!(
        text(client.get_secret(&property("cfg", "db")).await.unwrap()),
        r#"{"host":"nested","port":5432}"#
    );
    assert_eq!(
        text(
            client
                .get_secret(&property("cfg", "list.1.n"))
                .await
                .unwrap()
        ),
        "y"
    );
    let err = client
        .get_secret(&property("plain", "a"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{}", err.chain());
}

#[tokio::test]
async fn extract_returns_the_top_level_keys() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "creds")
        .version(br#"{"user":"admin","port":5432,"nested":{"a":true}}"#)
        .create();
    env.server
        .secret(PROJECT, "plain")
        .version(b"text")
        .create();
    let client = env.client(key_spec()).await.unwrap();
    let map = client.get_secret_map(&remote("creds")).await.unwrap();
    assert_eq!(map["user"], b"admin");
    assert_eq!(map["port"], b"5432");
    assert_eq!(map["nested"], br#"{"a":true}"#);
    assert_eq!(
        client
            .get_secret_map(&remote("plain"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidRequest
    );
}

#[tokio::test]
async fn metadata_policy_fetch_reads_labels_and_annotations() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "db")
        .label("env", "prod")
        .label("team", "a")
        .annotation("owner", "<ops & sre>")
        .version(b"value")
        .create();
    let client = env.client(key_spec()).await.unwrap();
    let fetch = |p: Option<&str>| ExternalSecretDataRemoteRef {
        key: "db".into(),
        property: p.map(Into::into),
        metadata_policy: Some(MetadataPolicy::Fetch),
        ..Default::default()
    };
    assert_eq!(
        text(client.get_secret(&fetch(Some("labels.env"))).await.unwrap()),
        "prod"
    );
    assert_eq!(
        text(
            client
                .get_secret(&fetch(Some("annotations.owner")))
                .await
                .unwrap()
        ),
        "<ops & sre>"
    );
    assert_eq!(
        text(client.get_secret(&fetch(Some("labels"))).await.unwrap()),
        r#"{"env":"prod","team":"a"}"#
    );
    // Go's json.Marshal escapes HTML characters, as upstream renders them.
    assert_eq!(
        text(client.get_secret(&fetch(None)).await.unwrap()),
        r#"{"annotations":{"owner":"\u003cops \u0026 sre\u003e"},"labels":{"env":"prod","team":"a"}}"#
    );
    let err = client
        .get_secret(&fetch(Some("labels.nope")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = client.get_secret(&fetch(Some("other"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    // One GET of the secret resource served every metadata read (the read cache).
    assert_eq!(env.server.count(method::GET_SECRET), 1);
    assert_eq!(env.server.count(method::ACCESS_SECRET_VERSION), 0);
}

fn with_policy(policy: GcpSecretVersionSelectionPolicy) -> GcpsmProvider {
    GcpsmProvider {
        secret_version_selection_policy: Some(policy),
        ..key_spec()
    }
}

#[tokio::test]
async fn latest_or_fetch_falls_back_to_the_newest_enabled_version() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "db")
        .version(b"one")
        .version(b"two")
        .version(b"three")
        .create();
    env.server
        .set_version_state(PROJECT, None, "db", 3, VersionState::Disabled);
    let fetch = env
        .client(with_policy(GcpSecretVersionSelectionPolicy::LatestOrFetch))
        .await
        .unwrap();
    assert_eq!(text(fetch.get_secret(&remote("db")).await.unwrap()), "two");
    assert_eq!(env.server.count(method::LIST_SECRET_VERSIONS), 1);
    // An explicit version never falls back.
    let err = fetch.get_secret(&version("db", "3")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{}", err.chain());
    // A destroyed latest falls back the same way.
    env.server
        .set_version_state(PROJECT, None, "db", 2, VersionState::Destroyed);
    env.server
        .secret(PROJECT, "other")
        .version(b"a")
        .version(b"b")
        .create();
    env.server
        .set_version_state(PROJECT, None, "other", 2, VersionState::Destroyed);
    assert_eq!(text(fetch.get_secret(&remote("other")).await.unwrap()), "a");
}

#[tokio::test]
async fn latest_or_fail_reports_a_disabled_latest_without_calling_it_missing() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "db")
        .version(b"one")
        .version(b"two")
        .create();
    env.server
        .set_version_state(PROJECT, None, "db", 2, VersionState::Disabled);
    let client = env
        .client(with_policy(GcpSecretVersionSelectionPolicy::LatestOrFail))
        .await
        .unwrap();
    let err = client.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.chain().contains("DISABLED state"), "{}", err.chain());
    assert_eq!(env.server.count(method::LIST_SECRET_VERSIONS), 0);
}

#[tokio::test]
async fn regional_secrets_go_to_the_regional_endpoint() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "db")
        .location("europe-west4")
        .version(b"regional")
        .create();
    env.server.secret(PROJECT, "db").version(b"global").create();
    // The global endpoint is unreachable: only the regional one can answer.
    let endpoints = GcpEndpoints::all_at(&env.server.url())
        .secret_manager("http://127.0.0.1:1")
        .regional_secret_manager(&env.server.url());
    let provider = GcpProvider::with_endpoints(endpoints);
    let spec = GcpsmProvider {
        location: Some("europe-west4".into()),
        ..key_spec()
    };
    let client = eso_provider::Provider::new_client(
        &provider,
        eso_provider::ClientContext {
            store: &store(spec),
            namespace: crate::common::NS,
            secrets: &env.secrets,
            config_maps: &env.config_maps,
            tokens: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        text(client.get_secret(&remote("db")).await.unwrap()),
        "regional"
    );
    let access = env
        .server
        .calls()
        .into_iter()
        .find(|c| c.method == method::ACCESS_SECRET_VERSION)
        .unwrap();
    assert_eq!(
        access.resource,
        "projects/p1/locations/europe-west4/secrets/db/versions/latest"
    );
}

#[tokio::test]
async fn project_id_defaults_to_the_metadata_servers() {
    let env = Env::new().await;
    env.server.set_metadata(MetadataConfig {
        project_id: "meta-project".into(),
        ..MetadataConfig::default()
    });
    env.server
        .secret("meta-project", "db")
        .version(b"v")
        .create();
    let client = env.client(GcpsmProvider::default()).await.unwrap();
    assert_eq!(text(client.get_secret(&remote("db")).await.unwrap()), "v");
    // A key never falls back to the metadata server: projectID is required.
    let err = env
        .client_error(GcpsmProvider {
            project_id: None,
            ..key_spec()
        })
        .await;
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(err.to_string().contains("projectID"), "{err}");
}

#[tokio::test]
async fn concurrent_and_repeated_reads_share_one_request() {
    let env = Env::new().await;
    for i in 0..100 {
        env.server
            .secret(PROJECT, &format!("k{i}"))
            .version(format!("v{i}").as_bytes())
            .create();
    }
    let client = env.client(key_spec()).await.unwrap();
    // 1,000 reads of 100 keys, all at once, then again within the cache window.
    let refs: Vec<_> = (0..1000)
        .map(|i| remote(&format!("k{}", i % 100)))
        .collect();
    for _ in 0..2 {
        let results = futures::future::join_all(refs.iter().map(|r| client.get_secret(r))).await;
        for (i, r) in results.into_iter().enumerate() {
            assert_eq!(text(r.unwrap()), format!("v{}", i % 100));
        }
    }
    assert_eq!(env.server.count(method::ACCESS_SECRET_VERSION), 100);
    assert_eq!(env.server.count(method::OAUTH2_TOKEN), 1);
}
