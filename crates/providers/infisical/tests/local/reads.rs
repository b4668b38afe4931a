//! `data` and `dataFrom.extract`: keys, folders, versions, properties, references, imports.

use eso_api::MetadataPolicy;
use eso_provider::ErrorKind;
use eso_testserver_infisical::method;

use crate::common::{ENV, Env, PROJECT, remote, remote_property, text};

#[tokio::test]
async fn keys_resolve_against_the_store_folder_like_upstream() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, ENV, "/backend", "DB_PASSWORD", "scoped");
    env.server
        .secret(PROJECT, ENV, "/backend/db", "USER", "relative");
    env.server
        .secret(PROJECT, ENV, "/other", "TOKEN", "absolute");
    let client = env.client(env.spec("/backend")).await.unwrap();
    assert_eq!(
        text(client.get_secret(&remote("DB_PASSWORD")).await.unwrap()),
        "scoped"
    );
    assert_eq!(
        text(client.get_secret(&remote("db/USER")).await.unwrap()),
        "relative"
    );
    assert_eq!(
        text(client.get_secret(&remote("/other/TOKEN")).await.unwrap()),
        "absolute"
    );
}

#[tokio::test]
async fn a_missing_secret_or_folder_is_a_typed_not_found() {
    let env = Env::new().await;
    let client = env.root_client().await;
    for key in ["MISSING", "/no/such/folder/KEY"] {
        let err = client.get_secret(&remote(key)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{key}: {}", err.chain());
        assert!(err.to_string().contains("infisical"), "{err}");
        assert!(
            err.to_string().contains("SecretStore \"apps/infisical\""),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_missing_project_or_environment_is_never_a_missing_secret() {
    let env = Env::new().await;
    env.server.project("other", &["dev"]);
    let mut spec = env.spec("/");
    spec.secrets_scope.environment_slug = "staging".into();
    let client = env.client(spec).await.unwrap();
    let err = client.get_secret(&remote("KEY")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{}", err.chain());
    let mut spec = env.spec("/");
    spec.secrets_scope.project_slug = "no-such-project".into();
    let client = env.client(spec).await.unwrap();
    let err = client.get_secret(&remote("KEY")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{}", err.chain());
}

#[tokio::test]
async fn properties_are_gjson_paths_and_a_missing_one_is_an_error() {
    let env = Env::new().await;
    env.server.secret(
        PROJECT,
        ENV,
        "/",
        "DB",
        r#"{"user":"admin","port":5432,"nested":{"list":["a","b"]}}"#,
    );
    env.server.secret(PROJECT, ENV, "/", "PLAIN", "not json");
    let client = env.root_client().await;
    let get = async |p: &str| client.get_secret(&remote_property("DB", p)).await;
    assert_eq!(text(get("user").await.unwrap()), "admin");
    assert_eq!(text(get("port").await.unwrap()), "5432");
    assert_eq!(text(get("nested.list.1").await.unwrap()), "b");
    let err = get("password").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.to_string().contains("\"password\""), "{err}");
    let err = client
        .get_secret(&remote_property("PLAIN", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn extract_splits_a_json_object() {
    let env = Env::new().await;
    env.server.secret(
        PROJECT,
        ENV,
        "/",
        "CONFIG",
        r#"{"host":"db","port":5432,"tls":{"on":true}}"#,
    );
    env.server.secret(PROJECT, ENV, "/", "PLAIN", "text");
    let client = env.root_client().await;
    let map = client.get_secret_map(&remote("CONFIG")).await.unwrap();
    assert_eq!(map["host"], b"db");
    assert_eq!(map["port"], b"5432");
    assert_eq!(map["tls"], br#"{"on":true}"#);
    let inner = client
        .get_secret_map(&remote_property("CONFIG", "tls"))
        .await
        .unwrap();
    assert_eq!(inner["on"], b"true");
    let err = client.get_secret_map(&remote("PLAIN")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn versions_are_read() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "ROTATED", "first");
    env.server.secret(PROJECT, ENV, "/", "ROTATED", "second");
    let client = env.root_client().await;
    assert_eq!(
        text(client.get_secret(&remote("ROTATED")).await.unwrap()),
        "second"
    );
    let mut old = remote("ROTATED");
    old.version = Some("1".into());
    assert_eq!(text(client.get_secret(&old).await.unwrap()), "first");
}

#[tokio::test]
async fn references_are_expanded_unless_the_store_says_not_to() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "HOST", "db.internal");
    env.server.secret(PROJECT, "prod", "/net", "PORT", "5432");
    env.server.secret(
        PROJECT,
        ENV,
        "/",
        "URL",
        "postgres://${HOST}:${prod.net.PORT}",
    );
    let client = env.root_client().await;
    assert_eq!(
        text(client.get_secret(&remote("URL")).await.unwrap()),
        "postgres://db.internal:5432"
    );
    let mut spec = env.spec("/");
    spec.secrets_scope.expand_secret_references = Some(false);
    let raw = env.client(spec).await.unwrap();
    assert_eq!(
        text(raw.get_secret(&remote("URL")).await.unwrap()),
        "postgres://${HOST}:${prod.net.PORT}"
    );
}

#[tokio::test]
async fn imported_secrets_are_read() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "prod", "/shared", "SHARED", "from-prod");
    env.server.import(PROJECT, ENV, "/", "prod", "/shared");
    let client = env.root_client().await;
    assert_eq!(
        text(client.get_secret(&remote("SHARED")).await.unwrap()),
        "from-prod"
    );
}

#[tokio::test]
async fn metadata_fetch_is_refused() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "K", "v");
    let client = env.root_client().await;
    let mut r = remote("K");
    r.metadata_policy = Some(MetadataPolicy::Fetch);
    let err = client.get_secret(&r).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn repeated_and_concurrent_reads_are_one_request() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "K", "v");
    let client = env.root_client().await;
    let r = remote("K");
    let (a, b) = tokio::join!(client.get_secret(&r), client.get_secret(&r));
    assert_eq!((a.unwrap(), b.unwrap()), (b"v".to_vec(), b"v".to_vec()));
    client.get_secret(&remote_property("K", "")).await.unwrap();
    assert_eq!(env.server.count(method::GET_SECRET), 1);
}
