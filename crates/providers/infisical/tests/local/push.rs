//! PushSecret: create, update, properties, delete, exists.

use eso_provider::{ErrorKind, PushRemoteRef, PushRequest};
use eso_testserver_infisical::method;

use crate::common::{ENV, Env, PROJECT, remote, text};

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
async fn push_creates_then_updates_and_skips_unchanged_values() {
    let env = Env::new().await;
    env.server.folder(PROJECT, ENV, "/app");
    let client = env.client(env.spec("/app")).await.unwrap();
    client
        .push_secret(&push("TOKEN", None, "one"))
        .await
        .unwrap();
    assert_eq!(
        env.server.value(PROJECT, ENV, "/app", "TOKEN").as_deref(),
        Some("one")
    );
    // A read in between is forgotten after the write.
    assert_eq!(
        text(client.get_secret(&remote("TOKEN")).await.unwrap()),
        "one"
    );
    client
        .push_secret(&push("TOKEN", None, "two"))
        .await
        .unwrap();
    assert_eq!(
        text(client.get_secret(&remote("TOKEN")).await.unwrap()),
        "two"
    );
    client
        .push_secret(&push("TOKEN", None, "two"))
        .await
        .unwrap();
    assert_eq!(env.server.versions(PROJECT, ENV, "/app", "TOKEN"), 2);
    assert_eq!(env.server.count(method::CREATE_SECRET), 1);
    assert_eq!(env.server.count(method::UPDATE_SECRET), 1);
    // The project ID that writes need is resolved once per client.
    assert_eq!(env.server.count(method::GET_PROJECT), 1);
}

#[tokio::test]
async fn push_to_an_absolute_key_and_a_missing_folder() {
    let env = Env::new().await;
    env.server.folder(PROJECT, ENV, "/other");
    let client = env.root_client().await;
    client
        .push_secret(&push("/other/KEY", None, "v"))
        .await
        .unwrap();
    assert_eq!(
        env.server.value(PROJECT, ENV, "/other", "KEY").as_deref(),
        Some("v")
    );
    let err = client
        .push_secret(&push("/nowhere/KEY", None, "v"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    let err = client.push_secret(&push("", None, "v")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn properties_are_set_and_deleted_inside_a_json_object() {
    let env = Env::new().await;
    let client = env.root_client().await;
    client
        .push_secret(&push("DB", Some("user"), "admin"))
        .await
        .unwrap();
    client
        .push_secret(&push("DB", Some("conn.port"), "5432"))
        .await
        .unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&env.server.value(PROJECT, ENV, "/", "DB").unwrap()).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"user": "admin", "conn": {"port": "5432"}})
    );
    assert!(
        client
            .secret_exists(&at("DB", Some("conn.port")))
            .await
            .unwrap()
    );
    assert!(
        !client
            .secret_exists(&at("DB", Some("password")))
            .await
            .unwrap()
    );

    client.delete_secret(&at("DB", Some("user"))).await.unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&env.server.value(PROJECT, ENV, "/", "DB").unwrap()).unwrap();
    assert_eq!(doc, serde_json::json!({"conn": {"port": "5432"}}));
    // Deleting the last property deletes the secret.
    client.delete_secret(&at("DB", Some("conn"))).await.unwrap();
    assert_eq!(env.server.value(PROJECT, ENV, "/", "DB"), None);

    env.server.secret(PROJECT, ENV, "/", "PLAIN", "text");
    let err = client
        .push_secret(&push("PLAIN", Some("x"), "v"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn delete_and_exists() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "GONE", "v");
    let client = env.root_client().await;
    assert!(client.secret_exists(&at("GONE", None)).await.unwrap());
    client.delete_secret(&at("GONE", None)).await.unwrap();
    assert!(!client.secret_exists(&at("GONE", None)).await.unwrap());
    // Deleting what is not there is done already.
    client.delete_secret(&at("GONE", None)).await.unwrap();
    assert_eq!(env.server.count(method::DELETE_SECRET), 1);
    let err = client.get_secret(&remote("GONE")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
