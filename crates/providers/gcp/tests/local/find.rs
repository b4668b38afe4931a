//! `dataFrom.find`: by name regexp, by tags (labels), with a path, across pages.

use eso_api::{ExternalSecretFind, FindName};
use eso_provider::ErrorKind;
use eso_testserver_gcp::method;

use crate::common::{Env, PROJECT, key_spec};

fn by_name(re: &str) -> ExternalSecretFind {
    ExternalSecretFind {
        name: Some(FindName {
            regexp: Some(re.into()),
        }),
        ..Default::default()
    }
}

fn by_tags(tags: &[(&str, &str)]) -> ExternalSecretFind {
    ExternalSecretFind {
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

async fn seeded() -> Env {
    let env = Env::new().await;
    for (id, env_label, value) in [
        ("app-db-user", "prod", "u"),
        ("app-db-pass", "prod", "p"),
        ("app-api-key", "dev", "k"),
        ("other-db", "prod", "o"),
    ] {
        env.server
            .secret(PROJECT, id)
            .label("env", env_label)
            .version(value.as_bytes())
            .create();
    }
    env.server
        .secret(PROJECT, "app-db-novalue")
        .label("env", "prod")
        .create();
    env
}

#[tokio::test]
async fn find_by_name_lists_once_and_reads_the_matches() {
    let env = seeded().await;
    let client = env.client(key_spec()).await.unwrap();
    let found = client.get_all_secrets(&by_name("^app-db-")).await.unwrap();
    let keys: Vec<&str> = found.keys().map(String::as_str).collect();
    // A listed secret without versions is left out.
    assert_eq!(keys, ["app-db-pass", "app-db-user"]);
    assert_eq!(found["app-db-user"], b"u");
    assert_eq!(env.server.count(method::LIST_SECRETS), 1);
    assert_eq!(env.server.count(method::ACCESS_SECRET_VERSION), 3);
    // Unanchored expressions match anywhere, as Go's MatchString.
    let found = client.get_all_secrets(&by_name("db")).await.unwrap();
    assert_eq!(found.len(), 3);
}

#[tokio::test]
async fn find_by_tags_uses_the_label_filter() {
    let env = seeded().await;
    let client = env.client(key_spec()).await.unwrap();
    let found = client
        .get_all_secrets(&by_tags(&[("env", "prod")]))
        .await
        .unwrap();
    let keys: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(keys, ["app-db-pass", "app-db-user", "other-db"]);
    let none = client
        .get_all_secrets(&by_tags(&[("env", "prod"), ("team", "x")]))
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn find_with_a_path_keeps_keys_under_it() {
    let env = seeded().await;
    let client = env.client(key_spec()).await.unwrap();
    let find = ExternalSecretFind {
        path: Some("app-".into()),
        ..by_tags(&[("env", "prod")])
    };
    let found = client.get_all_secrets(&find).await.unwrap();
    let keys: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(keys, ["app-db-pass", "app-db-user"]);
    let find = ExternalSecretFind {
        path: Some("other".into()),
        ..by_name(".*")
    };
    let keys: Vec<String> = client
        .get_all_secrets(&find)
        .await
        .unwrap()
        .into_keys()
        .collect();
    assert_eq!(keys, ["other-db"]);
}

#[tokio::test]
async fn find_with_name_and_tags_applies_both() {
    let env = seeded().await;
    let client = env.client(key_spec()).await.unwrap();
    let find = ExternalSecretFind {
        tags: [("env".to_owned(), "prod".to_owned())].into(),
        ..by_name("^app-")
    };
    let keys: Vec<String> = client
        .get_all_secrets(&find)
        .await
        .unwrap()
        .into_keys()
        .collect();
    assert_eq!(keys, ["app-db-pass", "app-db-user"]);
}

#[tokio::test]
async fn find_pages_through_every_secret() {
    let env = Env::new().await;
    for i in 0..7 {
        env.server
            .secret(PROJECT, &format!("s{i}"))
            .version(b"x")
            .create();
    }
    env.server.set_default_page_size(2);
    let client = env.client(key_spec()).await.unwrap();
    let found = client.get_all_secrets(&by_name("^s")).await.unwrap();
    assert_eq!(found.len(), 7);
    assert_eq!(env.server.count(method::LIST_SECRETS), 4);
}

#[tokio::test]
async fn find_needs_name_or_tags() {
    let env = seeded().await;
    let client = env.client(key_spec()).await.unwrap();
    let only_path = ExternalSecretFind {
        path: Some("app".into()),
        ..Default::default()
    };
    let err = client.get_all_secrets(&only_path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let err = client.get_all_secrets(&by_name("(")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}
