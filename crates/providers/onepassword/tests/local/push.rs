//! PushSecret: create, update, metadata, delete and exists.

use eso_provider::{ErrorKind, PushRemoteRef, PushRequest};
use eso_testserver_onepassword::method;
use serde_json::json;

use crate::common::{Env, remote, remote_property, text};

fn push(key: &str, property: Option<&str>, value: &str) -> PushRequest {
    PushRequest {
        value: value.as_bytes().to_vec(),
        secret_key: Some("k".into()),
        remote: PushRemoteRef {
            remote_key: key.to_owned(),
            property: property.map(str::to_owned),
        },
        metadata: None,
    }
}

fn at(key: &str, property: Option<&str>) -> PushRemoteRef {
    PushRemoteRef {
        remote_key: key.to_owned(),
        property: property.map(str::to_owned),
    }
}

#[tokio::test]
async fn push_creates_a_server_item_in_the_first_vault_then_updates_it() {
    let env = Env::new().await;
    let client = env.client().await;
    client
        .push_secret(&push("pushed", None, "one"))
        .await
        .unwrap();
    let item = env.server.find_item("prod", "pushed").unwrap();
    assert_eq!(item["category"], "SERVER");
    assert_eq!(item["fields"][0]["label"], "password");
    assert_eq!(item["fields"][0]["type"], "CONCEALED");
    assert_eq!(
        text(client.get_secret(&remote("pushed")).await.unwrap()),
        "one"
    );

    client
        .push_secret(&push("pushed", None, "two"))
        .await
        .unwrap();
    client
        .push_secret(&push("pushed", Some("user"), "admin"))
        .await
        .unwrap();
    assert_eq!(
        text(client.get_secret(&remote("pushed")).await.unwrap()),
        "two"
    );
    assert_eq!(
        text(
            client
                .get_secret(&remote_property("pushed", "user"))
                .await
                .unwrap()
        ),
        "admin"
    );
    // Unchanged: nothing is written.
    client
        .push_secret(&push("pushed", None, "two"))
        .await
        .unwrap();
    assert_eq!(env.server.count(method::CREATE_ITEM), 1);
    assert_eq!(env.server.count(method::UPDATE_ITEM), 2);
    assert_eq!(
        env.server.find_item("prod", "pushed").unwrap()["version"],
        3
    );
}

#[tokio::test]
async fn metadata_picks_the_vault_and_tags() {
    let env = Env::new().await;
    let client = env.client().await;
    let mut req = push("tagged", None, "v");
    req.metadata = Some(json!({
        "apiVersion": "kubernetes.external-secrets.io/v1alpha1",
        "kind": "PushSecretMetadata",
        "spec": {"vault": "staging", "tags": ["eso", "team-a"]},
    }));
    client.push_secret(&req).await.unwrap();
    let item = env.server.find_item("staging", "tagged").unwrap();
    assert_eq!(item["tags"], json!(["eso", "team-a"]));
    assert!(env.server.find_item("prod", "tagged").is_none());

    req.metadata = Some(json!({"kind": "PushSecretMetadata", "spec": {"vault": "elsewhere"}}));
    req.remote.remote_key = "other".into();
    let err = client.push_secret(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn a_whole_secret_push_is_refused() {
    let env = Env::new().await;
    let client = env.client().await;
    let mut req = push("x", None, "{}");
    req.secret_key = None;
    assert_eq!(
        client.push_secret(&req).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
}

#[tokio::test]
async fn delete_removes_the_field_then_the_item() {
    let env = Env::new().await;
    env.server
        .item("prod", "creds")
        .field("password", "p")
        .field("token", "t")
        .create();
    let client = env.client().await;
    assert!(
        client
            .secret_exists(&at("creds", Some("token")))
            .await
            .unwrap()
    );
    client
        .delete_secret(&at("creds", Some("token")))
        .await
        .unwrap();
    assert!(
        !client
            .secret_exists(&at("creds", Some("token")))
            .await
            .unwrap()
    );
    assert!(client.secret_exists(&at("creds", None)).await.unwrap());
    client.delete_secret(&at("creds", None)).await.unwrap();
    assert!(env.server.find_item("prod", "creds").is_none());
    assert!(!client.secret_exists(&at("creds", None)).await.unwrap());
    // Already gone.
    client.delete_secret(&at("creds", None)).await.unwrap();
    assert_eq!(env.server.count(method::DELETE_ITEM), 1);
    let err = client.get_secret(&remote("creds")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
