//! `data` and `dataFrom.extract`: items by title or ID across vaults, fields and files.

use eso_provider::ErrorKind;
use eso_testserver_onepassword::method;

use crate::common::{Env, remote, remote_property, text};

#[tokio::test]
async fn fields_are_read_by_label_with_password_by_default() {
    let env = Env::new().await;
    env.server
        .item("prod", "db")
        .field("username", "admin")
        .field("password", "s3cret")
        .section_field("conn", "host", "db.internal")
        .create();
    let client = env.client().await;
    assert_eq!(
        text(client.get_secret(&remote("db")).await.unwrap()),
        "s3cret"
    );
    assert_eq!(
        text(
            client
                .get_secret(&remote_property("db", "username"))
                .await
                .unwrap()
        ),
        "admin"
    );
    assert_eq!(
        text(
            client
                .get_secret(&remote_property("db", "field/host"))
                .await
                .unwrap()
        ),
        "db.internal"
    );
    let map = client.get_secret_map(&remote("db")).await.unwrap();
    assert_eq!(map.len(), 3);
    assert_eq!(map["host"], b"db.internal");
    let one = client
        .get_secret_map(&remote_property("db", "username"))
        .await
        .unwrap();
    assert_eq!(one.keys().collect::<Vec<_>>(), ["username"]);
}

#[tokio::test]
async fn vaults_are_searched_in_priority_order() {
    let env = Env::new().await;
    env.server
        .item("staging", "api")
        .field("password", "from-staging")
        .create();
    env.server
        .item("staging", "only-staging")
        .field("password", "s")
        .create();
    let client = env.client().await;
    assert_eq!(
        text(client.get_secret(&remote("api")).await.unwrap()),
        "from-staging"
    );
    env.server
        .item("prod", "api")
        .field("password", "from-prod")
        .create();
    let fresh = env.client().await;
    assert_eq!(
        text(fresh.get_secret(&remote("api")).await.unwrap()),
        "from-prod"
    );
    assert_eq!(
        text(fresh.get_secret(&remote("only-staging")).await.unwrap()),
        "s"
    );
    let reversed = env
        .client_with(env.spec(&["staging", "prod"]))
        .await
        .unwrap();
    assert_eq!(
        text(reversed.get_secret(&remote("api")).await.unwrap()),
        "from-staging"
    );
}

#[tokio::test]
async fn items_are_read_by_id_too() {
    let env = Env::new().await;
    let id = env
        .server
        .item("staging", "db")
        .field("password", "by-id")
        .create();
    let client = env.client().await;
    assert_eq!(
        text(client.get_secret(&remote(&id)).await.unwrap()),
        "by-id"
    );
}

#[tokio::test]
async fn files_are_read_by_name_and_documents_default_to_files() {
    let env = Env::new().await;
    env.server
        .item("prod", "tls")
        .category("DOCUMENT")
        .file("tls.crt", b"CERT")
        .file("tls.key", b"KEY")
        .create();
    env.server
        .item("prod", "login")
        .field("password", "p")
        .file("notes.txt", b"NOTES")
        .create();
    let client = env.client().await;
    assert_eq!(client.get_secret(&remote("tls")).await.unwrap(), b"CERT");
    assert_eq!(
        client
            .get_secret(&remote_property("tls", "tls.key"))
            .await
            .unwrap(),
        b"KEY"
    );
    assert_eq!(
        client
            .get_secret(&remote_property("login", "file/notes.txt"))
            .await
            .unwrap(),
        b"NOTES"
    );
    let files = client.get_secret_map(&remote("tls")).await.unwrap();
    assert_eq!(files.keys().collect::<Vec<_>>(), ["tls.crt", "tls.key"]);
    let err = client
        .get_secret(&remote_property("tls", "missing.pem"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn a_missing_item_is_a_typed_not_found_and_bad_fields_are_errors() {
    let env = Env::new().await;
    env.server
        .item("prod", "dup-field")
        .field("password", "1")
        .field("password", "2")
        .create();
    env.server
        .item("prod", "twice")
        .field("password", "1")
        .create();
    env.server
        .item("prod", "twice")
        .field("password", "2")
        .create();
    let client = env.client().await;
    let err = client.get_secret(&remote("nope")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    assert!(err.to_string().contains("SecretStore \"apps/op\""), "{err}");
    assert!(err.to_string().contains("\"nope\""), "{err}");
    for (r, what) in [
        (remote("dup-field"), "two fields labeled password"),
        (remote("twice"), "two items with one title"),
        (remote_property("twice", "x"), "two items with one title"),
    ] {
        let err = client.get_secret(&r).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidRequest,
            "{what}: {}",
            err.chain()
        );
    }
    env.server
        .item("prod", "no-password")
        .field("username", "u")
        .create();
    let err = client.get_secret(&remote("no-password")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let mut versioned = remote("dup-field");
    versioned.version = Some("2".into());
    assert_eq!(
        client.get_secret(&versioned).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[tokio::test]
async fn a_missing_vault_is_a_store_error_not_a_missing_secret() {
    let env = Env::new().await;
    let client = env
        .client_with(env.spec(&["prod", "archive"]))
        .await
        .unwrap();
    let err = client.get_secret(&remote("nope")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{}", err.chain());
    let err = client.validate().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(err.to_string().contains("archive"), "{err}");
}

#[tokio::test]
async fn reads_of_one_item_share_one_lookup_and_vaults_resolve_once() {
    let env = Env::new().await;
    env.server
        .item("staging", "db")
        .field("username", "u")
        .field("password", "p")
        .create();
    let client = env.client().await;
    let (ra, rb) = (remote("db"), remote_property("db", "username"));
    let (a, b) = tokio::join!(client.get_secret(&ra), client.get_secret(&rb));
    assert_eq!((a.unwrap(), b.unwrap()), (b"p".to_vec(), b"u".to_vec()));
    client.get_secret(&remote("db")).await.unwrap();
    assert_eq!(env.server.count(method::GET_ITEM), 1);
    assert_eq!(
        env.server.count(method::LIST_VAULTS),
        2,
        "prod and staging, once each"
    );
}
