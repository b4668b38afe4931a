//! Reads, extract, find with name transformers and formats, ETags, push, delete, exists.

use eso_api::provider::{DopplerFormat, DopplerNameTransformer};
use eso_api::{ExternalSecretFind, FindName};
use eso_provider::{ErrorKind, PushRemoteRef, PushRequest};
use eso_testserver_doppler::method;

use crate::common::{Env, remote, text};

fn by_name(re: &str) -> ExternalSecretFind {
    ExternalSecretFind {
        name: Some(FindName {
            regexp: Some(re.to_owned()),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn one_secret_is_read_with_its_computed_value() {
    let env = Env::new().await;
    env.server
        .secret("backend", "prd", "DB_HOST", "db.internal");
    env.server
        .secret("backend", "prd", "DB_URL", "pg://${DB_HOST}/app");
    env.server
        .secret("backend", "prd", "CONFIG", r#"{"user":"u","port":5432}"#);
    let client = env.client().await;
    assert_eq!(
        text(client.get_secret(&remote("DB_URL")).await.unwrap()),
        "pg://db.internal/app"
    );
    let mut prop = remote("CONFIG");
    prop.property = Some("port".into());
    assert_eq!(text(client.get_secret(&prop).await.unwrap()), "5432");
    let map = client.get_secret_map(&remote("CONFIG")).await.unwrap();
    assert_eq!(map["user"], b"u");
    assert_eq!(map["port"], b"5432");
    // Only the one secret was downloaded each time (secrets=KEY).
    assert!(
        env.server
            .calls()
            .iter()
            .all(|c| c.auth_scheme.as_deref() == Some("Basic"))
    );
}

#[tokio::test]
async fn a_missing_secret_is_a_typed_not_found_and_a_missing_config_is_not() {
    let env = Env::new().await;
    let client = env.client().await;
    let err = client.get_secret(&remote("NOPE")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    assert!(err.to_string().contains("\"NOPE\""), "{err}");
    assert!(
        err.to_string().contains("SecretStore \"apps/doppler\""),
        "{err}"
    );
    let other = env
        .client_with(env.personal_spec("backend", "stg"))
        .await
        .unwrap();
    let err = other.get_secret(&remote("NOPE")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{}", err.chain());
}

#[tokio::test]
async fn find_transforms_names_and_filters_by_name_and_path() {
    let env = Env::new().await;
    env.server.secret("backend", "prd", "DB_USER", "u");
    env.server.secret("backend", "prd", "DB_PASS", "p");
    env.server.secret("backend", "prd", "API_KEY", "k");
    let client = env.client().await;
    let all = client.get_all_secrets(&by_name(".*")).await.unwrap();
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        [
            "API_KEY",
            "DB_PASS",
            "DB_USER",
            "DOPPLER_CONFIG",
            "DOPPLER_ENVIRONMENT",
            "DOPPLER_PROJECT"
        ]
    );
    let db = client
        .get_all_secrets(&ExternalSecretFind {
            path: Some("DB_".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(db.keys().collect::<Vec<_>>(), ["DB_PASS", "DB_USER"]);

    let mut spec = env.spec();
    spec.name_transformer = Some(DopplerNameTransformer::Camel);
    let camel = env.client_with(spec).await.unwrap();
    let got = camel.get_all_secrets(&by_name("^db")).await.unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["dbPass", "dbUser"]);
    // data[] reads keep Doppler's own names, as upstream.
    assert_eq!(
        text(camel.get_secret(&remote("DB_USER")).await.unwrap()),
        "u"
    );

    let err = client
        .get_all_secrets(&ExternalSecretFind {
            tags: [("a".to_owned(), "b".to_owned())].into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn a_format_downloads_one_file() {
    let env = Env::new().await;
    env.server.secret("backend", "prd", "API_KEY", "k");
    let mut spec = env.spec();
    spec.format = Some(DopplerFormat::Env);
    let client = env.client_with(spec).await.unwrap();
    let got = client
        .get_all_secrets(&ExternalSecretFind::default())
        .await
        .unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["DOPPLER_SECRETS_FILE"]);
    let file = String::from_utf8(got["DOPPLER_SECRETS_FILE"].clone()).unwrap();
    assert!(file.contains("API_KEY=\"k\"\n"), "{file}");
}

#[tokio::test]
async fn repeated_downloads_send_the_etag_and_get_304() {
    let mut env = Env::new().await;
    env.config = env.config.clone().read_cache_ttl(std::time::Duration::ZERO);
    env.server.secret("backend", "prd", "A", "1");
    let client = env.client().await;
    let first = client.get_all_secrets(&by_name("^A$")).await.unwrap();
    let second = client.get_all_secrets(&by_name("^A$")).await.unwrap();
    assert_eq!(first, second);
    env.server.secret("backend", "prd", "A", "2");
    let third = client.get_all_secrets(&by_name("^A$")).await.unwrap();
    assert_eq!(third["A"], b"2");
    let statuses: Vec<(u16, bool)> = env
        .server
        .calls()
        .iter()
        .filter(|c| c.method == method::DOWNLOAD)
        .map(|c| (c.status, c.if_none_match.is_some()))
        .collect();
    assert_eq!(statuses, [(200, false), (304, true), (200, true)]);
}

#[tokio::test]
async fn concurrent_reads_share_one_download() {
    let env = Env::new().await;
    env.server.secret("backend", "prd", "A", "1");
    let client = env.client().await;
    let r = remote("A");
    let (a, b) = tokio::join!(client.get_secret(&r), client.get_secret(&r));
    assert_eq!((a.unwrap(), b.unwrap()), (b"1".to_vec(), b"1".to_vec()));
    assert_eq!(env.server.count(method::DOWNLOAD), 1);
}

#[tokio::test]
async fn push_delete_and_exists_with_a_personal_token() {
    let env = Env::new().await;
    let client = env
        .client_with(env.personal_spec("backend", "prd"))
        .await
        .unwrap();
    let at = PushRemoteRef {
        remote_key: "PUSHED".into(),
        property: None,
    };
    assert!(!client.secret_exists(&at).await.unwrap());
    client
        .push_secret(&PushRequest {
            value: b"v1".to_vec(),
            secret_key: Some("k".into()),
            remote: at.clone(),
            metadata: None,
        })
        .await
        .unwrap();
    assert_eq!(
        env.server.value("backend", "prd", "PUSHED").as_deref(),
        Some("v1")
    );
    assert!(client.secret_exists(&at).await.unwrap());
    assert_eq!(
        text(client.get_secret(&remote("PUSHED")).await.unwrap()),
        "v1"
    );
    client.delete_secret(&at).await.unwrap();
    assert_eq!(env.server.value("backend", "prd", "PUSHED"), None);
    client.delete_secret(&at).await.unwrap();
    assert_eq!(env.server.count(method::UPDATE_SECRETS), 2);
    // A service token is read-only: Doppler refuses, as Auth.
    let err = env
        .client()
        .await
        .push_secret(&PushRequest {
            value: b"v".to_vec(),
            secret_key: Some("k".into()),
            remote: at,
            metadata: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
}
