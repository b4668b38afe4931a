//! `dataFrom.find`: by name over field labels and file names, by path (item title), by tags.

use eso_api::{ExternalSecretFind, FindName};

use crate::common::Env;

fn by_name(re: &str) -> ExternalSecretFind {
    ExternalSecretFind {
        name: Some(FindName {
            regexp: Some(re.to_owned()),
        }),
        ..Default::default()
    }
}

async fn seeded() -> Env {
    let env = Env::new().await;
    env.server
        .item("prod", "db")
        .tag("team-a")
        .field("DB_USER", "u")
        .field("DB_PASS", "p")
        .create();
    env.server
        .item("prod", "api")
        .tag("team-b")
        .field("API_KEY", "k")
        .file("ca.pem", b"CA")
        .create();
    env.server
        .item("staging", "db-staging")
        .tag("team-a")
        .field("DB_PASS", "staging-pass")
        .field("DB_HOST", "staging-host")
        .create();
    env
}

#[tokio::test]
async fn find_by_name_matches_labels_and_file_names_first_vault_wins() {
    let env = seeded().await;
    let client = env.client().await;
    let db = client.get_all_secrets(&by_name("^DB_")).await.unwrap();
    assert_eq!(
        db.keys().collect::<Vec<_>>(),
        ["DB_HOST", "DB_PASS", "DB_USER"]
    );
    assert_eq!(db["DB_PASS"], b"p", "prod comes before staging");
    let all = client.get_all_secrets(&by_name(".*")).await.unwrap();
    assert_eq!(all["ca.pem"], b"CA");
}

#[tokio::test]
async fn find_by_path_is_an_item_title() {
    let env = seeded().await;
    let client = env.client().await;
    let got = client
        .get_all_secrets(&ExternalSecretFind {
            path: Some("api".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["API_KEY", "ca.pem"]);
}

#[tokio::test]
async fn find_by_tags_searches_every_vault() {
    let env = seeded().await;
    let client = env.client().await;
    let got = client
        .get_all_secrets(&ExternalSecretFind {
            tags: [("team-a".to_owned(), String::new())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["DB_HOST", "DB_PASS", "DB_USER"]
    );
    let none = client
        .get_all_secrets(&ExternalSecretFind {
            tags: [("team-c".to_owned(), String::new())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}
