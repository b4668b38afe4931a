//! Parameter Store: decrypted reads, versions, properties, find by path (paginated), tags and
//! name, push and delete round trips.

use aws_sdk_ssm::types::{ParameterType, Tag};
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, FindName, MetadataPolicy};
use eso_provider::{ErrorKind, PushRemoteRef, PushRequest};
use serde_json::json;

use crate::common::{TestStore, moto, unique};

fn remote(key: &str, property: Option<&str>, version: Option<&str>) -> ExternalSecretDataRemoteRef {
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
    value: &str,
    metadata: Option<serde_json::Value>,
) -> PushRequest {
    PushRequest {
        value: value.as_bytes().to_vec(),
        secret_key: Some("k".into()),
        remote: PushRemoteRef {
            remote_key: key.to_owned(),
            property: property.map(str::to_owned),
        },
        metadata,
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

#[tokio::test]
async fn reads_decrypted_values_versions_properties_and_tags() {
    let m = moto().await;
    let admin = m.ssm();
    let name = format!("/{}/db", unique("ps-read"));
    admin
        .put_parameter()
        .name(&name)
        .value(r#"{"user":"u1","nested":{"x":"1"}}"#)
        .r#type(ParameterType::SecureString)
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap();
    admin
        .put_parameter()
        .name(&name)
        .value(r#"{"user":"u2"}"#)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let c = TestStore::ps(m).client().await;
    assert_eq!(
        c.get_secret(&remote(&name, None, None)).await.unwrap(),
        br#"{"user":"u2"}"#
    );
    assert_eq!(
        c.get_secret(&remote(&name, Some("user"), None))
            .await
            .unwrap(),
        b"u2"
    );
    assert_eq!(
        c.get_secret(&remote(&name, Some("nested.x"), Some("1")))
            .await
            .unwrap(),
        b"1"
    );
    assert_eq!(
        c.get_secret_map(&remote(&name, None, Some("1")))
            .await
            .unwrap()["user"],
        b"u1"
    );
    let mut tags = remote(&name, None, None);
    tags.metadata_policy = Some(MetadataPolicy::Fetch);
    assert_eq!(c.get_secret(&tags).await.unwrap(), br#"{"env":"prod"}"#);

    let err = c
        .get_secret(&remote("/does/not/exist", None, None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    let err = c
        .get_secret(&remote(&name, None, Some("9")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    // A missing property is an error, never not-found (upstream's plain error).
    let err = c
        .get_secret(&remote(&name, Some("nope"), None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{}", err.chain());
    assert!(
        err.chain().contains("key nope does not exist"),
        "{}",
        err.chain()
    );
}

#[tokio::test]
async fn find_by_path_tags_and_name() {
    let m = moto().await;
    let admin = m.ssm();
    let root = format!("/{}", unique("ps-find"));
    for i in 0..23 {
        let mut req = admin
            .put_parameter()
            .name(format!("{root}/app/deep/p{i:02}"))
            .value(format!("v{i}"))
            .r#type(if i % 2 == 0 {
                ParameterType::SecureString
            } else {
                ParameterType::String
            });
        if i % 10 == 0 {
            req = req.tags(tag("find", &root));
        }
        req.send().await.unwrap();
    }
    admin
        .put_parameter()
        .name(format!("{root}/other"))
        .value("o")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    let c = TestStore::ps(m).client().await;

    // GetParametersByPath returns at most 10 per page: three pages.
    let by_path = c
        .get_all_secrets(&ExternalSecretFind {
            path: Some(format!("{root}/app")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_path.len(), 23);
    assert_eq!(by_path[&format!("{root}/app/deep/p04")], b"v4");

    let by_tags = c
        .get_all_secrets(&ExternalSecretFind {
            tags: [("find".to_owned(), root.clone())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_tags.keys().cloned().collect::<Vec<_>>(),
        [
            format!("{root}/app/deep/p00"),
            format!("{root}/app/deep/p10"),
            format!("{root}/app/deep/p20")
        ]
    );
    assert_eq!(by_tags[&format!("{root}/app/deep/p20")], b"v20");

    let by_name = c
        .get_all_secrets(&ExternalSecretFind {
            name: Some(FindName {
                regexp: Some(format!("^{root}/(other|app/deep/p1[12])$")),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_name.len(), 3, "{:?}", by_name.keys());
    assert_eq!(by_name[&format!("{root}/other")], b"o");

    let by_path_and_name = c
        .get_all_secrets(&ExternalSecretFind {
            path: Some(root.clone()),
            name: Some(FindName {
                regexp: Some("p2".into()),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_path_and_name.len(), 3, "{:?}", by_path_and_name.keys());
}

#[tokio::test]
async fn push_defaults_to_secure_string_and_skips_unchanged() {
    let m = moto().await;
    let admin = m.ssm();
    let name = format!("/{}/pushed", unique("ps-push"));
    let c = TestStore::ps(m).client().await;

    c.push_secret(&push(&name, None, "one", None))
        .await
        .unwrap();
    let got = admin
        .get_parameter()
        .name(&name)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let p = got.parameter().unwrap();
    assert_eq!(p.r#type(), Some(&ParameterType::SecureString));
    assert_eq!(p.value(), Some("one"));
    assert_eq!(p.version(), 1);
    let tags = admin
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&name)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_list()
            .iter()
            .any(|t| t.key() == "managed-by" && t.value() == "external-secrets")
    );

    c.push_secret(&push(&name, None, "one", None))
        .await
        .unwrap();
    let got = admin.get_parameter().name(&name).send().await.unwrap();
    assert_eq!(
        got.parameter().unwrap().version(),
        1,
        "an unchanged push wrote"
    );

    c.push_secret(&push(&name, None, "two", None))
        .await
        .unwrap();
    assert_eq!(
        c.get_secret(&remote(&name, None, None)).await.unwrap(),
        b"two"
    );
    let got = admin.get_parameter().name(&name).send().await.unwrap();
    assert_eq!(got.parameter().unwrap().version(), 2);

    // Properties merge; the type and tier come from the metadata.
    let doc = format!("/{}/doc", unique("ps-push"));
    let meta = Some(
        json!({"kind": "PushSecretMetadata", "spec": {"secretType": "String", "tier": {"type": "Standard"}}}),
    );
    c.push_secret(&push(&doc, Some("a"), "1", meta.clone()))
        .await
        .unwrap();
    c.push_secret(&push(&doc, Some("b"), "2", meta))
        .await
        .unwrap();
    let got = admin.get_parameter().name(&doc).send().await.unwrap();
    let p = got.parameter().unwrap();
    assert_eq!(p.r#type(), Some(&ParameterType::String));
    assert_eq!(p.value(), Some(r#"{"a":"1","b":"2"}"#));
    assert!(
        c.secret_exists(&PushRemoteRef {
            remote_key: doc.clone(),
            property: Some("b".into())
        })
        .await
        .unwrap()
    );

    c.delete_secret(&PushRemoteRef {
        remote_key: doc.clone(),
        property: Some("a".into()),
    })
    .await
    .unwrap();
    let got = admin.get_parameter().name(&doc).send().await.unwrap();
    assert_eq!(got.parameter().unwrap().value(), Some(r#"{"b":"2"}"#));

    c.delete_secret(&PushRemoteRef {
        remote_key: name.clone(),
        property: None,
    })
    .await
    .unwrap();
    let err = admin.get_parameter().name(&name).send().await.unwrap_err();
    assert!(err.into_service_error().is_parameter_not_found());
    assert!(
        !c.secret_exists(&PushRemoteRef {
            remote_key: name,
            property: None
        })
        .await
        .unwrap()
    );
}

#[tokio::test]
async fn push_and_delete_leave_foreign_parameters_alone() {
    let m = moto().await;
    let admin = m.ssm();
    let name = format!("/{}/theirs", unique("ps-foreign"));
    admin
        .put_parameter()
        .name(&name)
        .value("theirs")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    let c = TestStore::ps(m).client().await;
    let err = c
        .push_secret(&push(&name, None, "ours", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{}", err.chain());
    c.delete_secret(&PushRemoteRef {
        remote_key: name.clone(),
        property: None,
    })
    .await
    .unwrap();
    let got = admin.get_parameter().name(&name).send().await.unwrap();
    assert_eq!(got.parameter().unwrap().value(), Some("theirs"));
    c.delete_secret(&PushRemoteRef {
        remote_key: "/none/at/all".into(),
        property: None,
    })
    .await
    .unwrap();
}
