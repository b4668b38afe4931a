//! Secrets Manager: reads, versions, binary values, properties, metadata, find with
//! pagination, push and delete round trips.

use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;
use eso_api::provider::AwsSecretsManager;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, FindName, MetadataPolicy};
use eso_provider::{ErrorKind, PushRemoteRef, PushRequest, ValidationResult};
use serde_json::json;

use crate::common::{TestStore, moto, unique};

fn remote(key: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        ..Default::default()
    }
}

fn with(key: &str, property: Option<&str>, version: Option<&str>) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        property: property.map(str::to_owned),
        version: version.map(str::to_owned),
        ..Default::default()
    }
}

fn push(
    key: &str,
    property: Option<&str>,
    value: &[u8],
    metadata: Option<serde_json::Value>,
) -> PushRequest {
    PushRequest {
        value: value.to_vec(),
        secret_key: Some("k".into()),
        remote: PushRemoteRef {
            remote_key: key.to_owned(),
            property: property.map(str::to_owned),
        },
        metadata,
    }
}

fn managed() -> Tag {
    Tag::builder()
        .key("managed-by")
        .value("external-secrets")
        .build()
}

#[tokio::test]
async fn reads_strings_properties_versions_and_stages() {
    let m = moto().await;
    let admin = m.sm();
    let name = unique("sm-read");
    let first = admin
        .create_secret()
        .name(&name)
        .secret_string(r#"{"user":"u1","db":{"host":"h1"},"a.b":"literal"}"#)
        .send()
        .await
        .unwrap();
    let first_id = first.version_id().unwrap().to_owned();
    admin
        .put_secret_value()
        .secret_id(&name)
        .secret_string(r#"{"user":"u2","n":3}"#)
        .send()
        .await
        .unwrap();
    let c = TestStore::sm(m).client().await;

    assert_eq!(
        c.get_secret(&remote(&name)).await.unwrap(),
        br#"{"user":"u2","n":3}"#
    );
    assert_eq!(
        c.get_secret(&with(&name, Some("user"), None))
            .await
            .unwrap(),
        b"u2"
    );
    assert_eq!(
        c.get_secret(&with(&name, Some("n"), None)).await.unwrap(),
        b"3"
    );
    assert_eq!(
        c.get_secret(&with(&name, Some("user"), Some("AWSPREVIOUS")))
            .await
            .unwrap(),
        b"u1"
    );
    assert_eq!(
        c.get_secret(&with(
            &name,
            Some("db.host"),
            Some(&format!("uuid/{first_id}"))
        ))
        .await
        .unwrap(),
        b"h1"
    );
    assert_eq!(
        c.get_secret(&with(&name, Some("a.b"), Some(&first_id)))
            .await
            .unwrap(),
        b"literal"
    );
    let map = c.get_secret_map(&remote(&name)).await.unwrap();
    assert_eq!(map["user"], b"u2");
    assert_eq!(map["n"], b"3");
    let map = c
        .get_secret_map(&with(&name, Some("db"), Some("AWSPREVIOUS")))
        .await
        .unwrap();
    assert_eq!(map["host"], b"h1");

    // A missing property is an error, never not-found (upstream's plain error).
    let err = c
        .get_secret(&with(&name, Some("nope"), None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{}", err.chain());
    let err = c.get_secret(&remote(&unique("missing"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    let err = c
        .get_secret(&with(
            &name,
            None,
            Some("00000000-0000-0000-0000-00000000dead"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);
}

#[tokio::test]
async fn reads_binary_secrets_and_prefixed_keys() {
    let m = moto().await;
    let name = unique("sm-bin");
    m.sm()
        .create_secret()
        .name(format!("team/{name}"))
        .secret_binary(Blob::new(vec![0u8, 1, 2, 255]))
        .send()
        .await
        .unwrap();
    let mut store = TestStore::sm(m);
    store.spec.prefix = Some("team/".into());
    let c = store.client().await;
    assert_eq!(
        c.get_secret(&remote(&name)).await.unwrap(),
        vec![0u8, 1, 2, 255]
    );
}

#[tokio::test]
async fn metadata_policy_fetch_returns_tags() {
    let m = moto().await;
    let name = unique("sm-tags");
    m.sm()
        .create_secret()
        .name(&name)
        .secret_string("x")
        .tags(Tag::builder().key("env").value("prod").build())
        .tags(Tag::builder().key("team").value("a").build())
        .send()
        .await
        .unwrap();
    let c = TestStore::sm(m).client().await;
    let mut r = remote(&name);
    r.metadata_policy = Some(MetadataPolicy::Fetch);
    assert_eq!(
        c.get_secret(&r).await.unwrap(),
        br#"{"env":"prod","team":"a"}"#
    );
    r.property = Some("team".into());
    assert_eq!(c.get_secret(&r).await.unwrap(), b"a");
    r.property = Some("nope".into());
    assert_eq!(
        c.get_secret(&r).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn find_by_path_name_and_tags_across_pages() {
    let m = moto().await;
    let admin = m.sm();
    let root = unique("sm-find");
    for i in 0..25 {
        let mut req = admin
            .create_secret()
            .name(format!("{root}/app/s{i:02}"))
            .secret_string(format!("v{i}"));
        if i % 5 == 0 {
            req = req.tags(
                Tag::builder()
                    .key("tier")
                    .value(format!("{root}-gold"))
                    .build(),
            );
        }
        req.send().await.unwrap();
    }
    admin
        .create_secret()
        .name(format!("{root}/other/x"))
        .secret_binary(Blob::new(vec![9u8]))
        .send()
        .await
        .unwrap();

    for batch in [true, false] {
        // Ten per page: ListSecrets needs three pages.
        let c = TestStore::sm(m)
            .config(|c| c.list_page_size(10).batch_reads(batch))
            .client()
            .await;
        let by_path = c
            .get_all_secrets(&ExternalSecretFind {
                path: Some(format!("{root}/app/")),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_path.len(), 25, "batch={batch}");
        assert_eq!(by_path[&format!("{root}/app/s07")], b"v7");

        let by_name = c
            .get_all_secrets(&ExternalSecretFind {
                name: Some(FindName {
                    regexp: Some(format!("^{root}/(app/s1[0-2]|other/)")),
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            by_name.keys().cloned().collect::<Vec<_>>(),
            [
                format!("{root}/app/s10"),
                format!("{root}/app/s11"),
                format!("{root}/app/s12"),
                format!("{root}/other/x")
            ]
        );
        assert_eq!(by_name[&format!("{root}/other/x")], vec![9u8]);

        let by_tags = c
            .get_all_secrets(&ExternalSecretFind {
                tags: [("tier".to_owned(), format!("{root}-gold"))].into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_tags.len(), 5, "{:?}", by_tags.keys());
        assert!(by_tags.contains_key(&format!("{root}/app/s20")));
    }
}

#[tokio::test]
async fn push_creates_tags_skips_unchanged_and_merges_properties() {
    let m = moto().await;
    let admin = m.sm();
    let name = unique("sm-push");
    let c = TestStore::sm(m).client().await;

    c.push_secret(&push(&name, None, b"one", None))
        .await
        .unwrap();
    let got = admin
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    // Binary by default, as upstream.
    assert_eq!(got.secret_binary().unwrap().as_ref(), b"one");
    let v1 = got.version_id().unwrap().to_owned();
    let described = admin
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    assert!(
        described
            .tags()
            .iter()
            .any(|t| t.key() == Some("managed-by") && t.value() == Some("external-secrets"))
    );

    // The same value again: no new version.
    c.push_secret(&push(&name, None, b"one", None))
        .await
        .unwrap();
    let again = admin
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(again.version_id().unwrap(), v1);

    c.push_secret(&push(&name, None, b"two", None))
        .await
        .unwrap();
    let changed = admin
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    assert_ne!(changed.version_id().unwrap(), v1);
    assert_eq!(c.get_secret(&remote(&name)).await.unwrap(), b"two");

    // Properties merge into a JSON document, stored as a string on request.
    let doc = unique("sm-push-doc");
    let string = Some(
        json!({"kind": "PushSecretMetadata", "spec": {"secretPushFormat": "string", "tags": {"team": "a"}}}),
    );
    c.push_secret(&push(&doc, Some("user"), b"alice", string.clone()))
        .await
        .unwrap();
    c.push_secret(&push(&doc, Some("pass"), b"pw", string.clone()))
        .await
        .unwrap();
    let got = admin
        .get_secret_value()
        .secret_id(&doc)
        .send()
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(got.secret_string().unwrap()).unwrap();
    assert_eq!(value, json!({"user": "alice", "pass": "pw"}));
    let described = admin
        .describe_secret()
        .secret_id(&doc)
        .send()
        .await
        .unwrap();
    assert!(described.tags().iter().any(|t| t.key() == Some("team")));
    assert!(
        c.secret_exists(&PushRemoteRef {
            remote_key: doc.clone(),
            property: Some("pass".into())
        })
        .await
        .unwrap()
    );
    assert!(
        !c.secret_exists(&PushRemoteRef {
            remote_key: doc.clone(),
            property: Some("zz".into())
        })
        .await
        .unwrap()
    );
    assert!(
        !c.secret_exists(&PushRemoteRef {
            remote_key: unique("none"),
            property: None
        })
        .await
        .unwrap()
    );

    // Deleting one property keeps the rest.
    c.delete_secret(&PushRemoteRef {
        remote_key: doc.clone(),
        property: Some("user".into()),
    })
    .await
    .unwrap();
    let got = admin
        .get_secret_value()
        .secret_id(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string().unwrap(), r#"{"pass":"pw"}"#);
}

#[tokio::test]
async fn push_and_delete_leave_foreign_secrets_alone() {
    let m = moto().await;
    let admin = m.sm();
    let name = unique("sm-foreign");
    admin
        .create_secret()
        .name(&name)
        .secret_string("theirs")
        .send()
        .await
        .unwrap();
    let c = TestStore::sm(m).client().await;
    let err = c
        .push_secret(&push(&name, None, b"ours", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{}", err.chain());
    c.delete_secret(&PushRemoteRef {
        remote_key: name.clone(),
        property: None,
    })
    .await
    .unwrap();
    let got = admin
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string().unwrap(), "theirs");
    // Deleting what does not exist is fine.
    c.delete_secret(&PushRemoteRef {
        remote_key: unique("none"),
        property: None,
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn delete_honours_recovery_settings() {
    let m = moto().await;
    let admin = m.sm();
    // Scheduled deletion (recovery window): the secret is then "not found" to reads.
    let windowed = unique("sm-del-window");
    admin
        .create_secret()
        .name(&windowed)
        .secret_string("x")
        .tags(managed())
        .send()
        .await
        .unwrap();
    let mut store = TestStore::sm(m);
    store.spec.secrets_manager = Some(AwsSecretsManager {
        force_delete_without_recovery: None,
        recovery_window_in_days: Some(7),
    });
    let c = store.client().await;
    c.delete_secret(&PushRemoteRef {
        remote_key: windowed.clone(),
        property: None,
    })
    .await
    .unwrap();
    let described = admin
        .describe_secret()
        .secret_id(&windowed)
        .send()
        .await
        .unwrap();
    assert!(described.deleted_date().is_some());
    let err = c.get_secret(&remote(&windowed)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    assert!(
        !c.secret_exists(&PushRemoteRef {
            remote_key: windowed.clone(),
            property: None
        })
        .await
        .unwrap()
    );
    // A second delete of a scheduled secret is a no-op.
    c.delete_secret(&PushRemoteRef {
        remote_key: windowed,
        property: None,
    })
    .await
    .unwrap();

    let forced = unique("sm-del-force");
    admin
        .create_secret()
        .name(&forced)
        .secret_string("x")
        .tags(managed())
        .send()
        .await
        .unwrap();
    let mut store = TestStore::sm(m);
    store.spec.secrets_manager = Some(AwsSecretsManager {
        force_delete_without_recovery: Some(true),
        recovery_window_in_days: None,
    });
    let c = store.client().await;
    c.delete_secret(&PushRemoteRef {
        remote_key: forced.clone(),
        property: None,
    })
    .await
    .unwrap();
    let err = admin
        .describe_secret()
        .secret_id(&forced)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
}
