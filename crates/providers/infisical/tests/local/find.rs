//! `dataFrom.find`: by name regexp and path, over the store's folder, sub-folders and imports.

use eso_api::{ExternalSecretFind, FindName};
use eso_provider::ErrorKind;

use crate::common::{ENV, Env, PROJECT};

fn by_name(re: &str) -> ExternalSecretFind {
    ExternalSecretFind {
        name: Some(FindName {
            regexp: Some(re.to_owned()),
        }),
        ..Default::default()
    }
}

fn keys(map: &eso_provider::SecretData) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

async fn seeded() -> Env {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/app", "DB_USER", "u");
    env.server.secret(PROJECT, ENV, "/app", "DB_PASS", "p");
    env.server.secret(PROJECT, ENV, "/app", "API_KEY", "k");
    env.server.secret(PROJECT, ENV, "/app/jobs", "DB_JOBS", "j");
    env.server.secret(PROJECT, ENV, "/", "ROOT_ONLY", "r");
    env.server
        .secret(PROJECT, "prod", "/shared", "SHARED_DB", "s");
    env.server
        .secret(PROJECT, "prod", "/shared", "API_KEY", "shadowed");
    env.server.import(PROJECT, ENV, "/app", "prod", "/shared");
    env
}

#[tokio::test]
async fn find_by_name_matches_the_folder_and_its_imports() {
    let env = seeded().await;
    let client = env.client(env.spec("/app")).await.unwrap();
    let all = client.get_all_secrets(&by_name(".*")).await.unwrap();
    assert_eq!(keys(&all), ["API_KEY", "DB_PASS", "DB_USER", "SHARED_DB"]);
    // The folder's own secret wins over an imported one of the same key.
    assert_eq!(all["API_KEY"], b"k");
    let db = client.get_all_secrets(&by_name("^DB_")).await.unwrap();
    assert_eq!(keys(&db), ["DB_PASS", "DB_USER"]);
}

#[tokio::test]
async fn recursive_stores_find_in_sub_folders_and_path_filters_by_folder() {
    let env = seeded().await;
    let mut spec = env.spec("/app");
    spec.secrets_scope.recursive = Some(true);
    let client = env.client(spec).await.unwrap();
    let db = client.get_all_secrets(&by_name("^DB_")).await.unwrap();
    assert_eq!(keys(&db), ["DB_JOBS", "DB_PASS", "DB_USER"]);
    let jobs = client
        .get_all_secrets(&ExternalSecretFind {
            path: Some("/app/jobs".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(keys(&jobs), ["DB_JOBS"]);
}

#[tokio::test]
async fn find_by_tags_is_refused_as_upstream_does() {
    let env = seeded().await;
    let client = env.root_client().await;
    let err = client
        .get_all_secrets(&ExternalSecretFind {
            tags: [("env".to_owned(), "prod".to_owned())].into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn an_invalid_regexp_is_an_invalid_request() {
    let env = seeded().await;
    let client = env.root_client().await;
    let err = client.get_all_secrets(&by_name("(")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}
