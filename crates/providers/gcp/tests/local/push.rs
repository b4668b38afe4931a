//! PushSecret: create with the `managed-by` label and replication, versions only on change,
//! metadata (labels, annotations, merge policy, topics, CMEK, replication locations), properties,
//! delete and exists.

use eso_api::provider::GcpsmProvider;
use eso_provider::{ErrorKind, PushRemoteRef, PushRequest};
use eso_testserver_gcp::method;
use serde_json::{Value, json};

use crate::common::{Env, PROJECT, key_spec, remote, text};

fn push(key: &str, value: &str) -> PushRequest {
    PushRequest {
        value: value.as_bytes().to_vec(),
        secret_key: Some("k".into()),
        remote: PushRemoteRef {
            remote_key: key.into(),
            property: None,
        },
        metadata: None,
    }
}

fn push_property(key: &str, property: &str, value: &str) -> PushRequest {
    PushRequest {
        remote: PushRemoteRef {
            remote_key: key.into(),
            property: Some(property.into()),
        },
        ..push(key, value)
    }
}

fn with_metadata(request: PushRequest, spec: Value) -> PushRequest {
    PushRequest {
        metadata: Some(json!({
            "apiVersion": "kubernetes.external-secrets.io/v1alpha1",
            "kind": "PushSecretMetadata",
            "spec": spec,
        })),
        ..request
    }
}

fn target(key: &str) -> PushRemoteRef {
    PushRemoteRef {
        remote_key: key.into(),
        property: None,
    }
}

#[tokio::test]
async fn push_creates_a_labelled_secret_and_adds_versions_only_on_change() {
    let env = Env::new().await;
    let client = env.client(key_spec()).await.unwrap();
    client.push_secret(&push("db", "s3cret")).await.unwrap();
    let s = env.server.get(PROJECT, None, "db").unwrap();
    assert_eq!(s.labels["managed-by"], "external-secrets");
    assert_eq!(s.replication, json!({"automatic": {}}));
    assert_eq!(s.latest_data(), Some(&b"s3cret"[..]));
    // The same value again: nothing is written.
    client.push_secret(&push("db", "s3cret")).await.unwrap();
    assert_eq!(
        env.server.get(PROJECT, None, "db").unwrap().versions.len(),
        1
    );
    assert_eq!(env.server.count(method::CREATE_SECRET), 1);
    assert_eq!(env.server.count(method::ADD_SECRET_VERSION), 1);
    assert_eq!(env.server.count(method::UPDATE_SECRET), 0);
    // A new value is a new version, and reads see it at once (the cache is dropped).
    assert_eq!(
        text(client.get_secret(&remote("db")).await.unwrap()),
        "s3cret"
    );
    client.push_secret(&push("db", "rotated")).await.unwrap();
    assert_eq!(
        text(client.get_secret(&remote("db")).await.unwrap()),
        "rotated"
    );
    assert_eq!(
        env.server.get(PROJECT, None, "db").unwrap().versions.len(),
        2
    );
}

#[tokio::test]
async fn push_metadata_sets_labels_annotations_topics_and_replication() {
    let env = Env::new().await;
    let client = env.client(key_spec()).await.unwrap();
    let request = with_metadata(
        push("db", "v"),
        json!({
            "labels": {"team": "a"},
            "annotations": {"owner": "ops"},
            "topics": ["projects/p1/topics/rotation"],
            "cmekKeyName": "projects/p1/locations/us/keyRings/r/cryptoKeys/k",
            "replicationLocations": ["us-east1", "us-west1"],
        }),
    );
    client.push_secret(&request).await.unwrap();
    let s = env.server.get(PROJECT, None, "db").unwrap();
    assert_eq!(s.labels["team"], "a");
    assert_eq!(s.labels["managed-by"], "external-secrets");
    assert_eq!(s.annotations["owner"], "ops");
    assert_eq!(s.topics, ["projects/p1/topics/rotation"]);
    assert_eq!(
        s.replication,
        json!({"userManaged": {"replicas": [
            {"location": "us-east1", "customerManagedEncryption": {"kmsKeyName": "projects/p1/locations/us/keyRings/r/cryptoKeys/k"}},
            {"location": "us-west1", "customerManagedEncryption": {"kmsKeyName": "projects/p1/locations/us/keyRings/r/cryptoKeys/k"}},
        ]}})
    );
    // Created with everything at once: no update afterwards.
    assert_eq!(env.server.count(method::UPDATE_SECRET), 0);
    // The same push again changes nothing.
    client.push_secret(&request).await.unwrap();
    assert_eq!(env.server.count(method::UPDATE_SECRET), 0);
    assert_eq!(env.server.count(method::ADD_SECRET_VERSION), 1);
}

#[tokio::test]
async fn merge_policy_keeps_existing_labels_and_replace_drops_them() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "db")
        .label("managed-by", "external-secrets")
        .label("keep", "me")
        .annotation("old", "x")
        .version(b"v")
        .create();
    let client = env.client(key_spec()).await.unwrap();
    let merged = with_metadata(
        push("db", "v"),
        json!({"labels": {"team": "a"}, "mergePolicy": "Merge"}),
    );
    client.push_secret(&merged).await.unwrap();
    let s = env.server.get(PROJECT, None, "db").unwrap();
    assert_eq!(
        (s.labels["keep"].as_str(), s.labels["team"].as_str()),
        ("me", "a")
    );
    // Annotations follow the metadata (none here), as upstream.
    assert!(s.annotations.is_empty());
    let replaced = with_metadata(push("db", "v"), json!({"labels": {"team": "b"}}));
    client.push_secret(&replaced).await.unwrap();
    let s = env.server.get(PROJECT, None, "db").unwrap();
    assert!(!s.labels.contains_key("keep"));
    assert_eq!(s.labels["team"], "b");
    assert_eq!(s.labels["managed-by"], "external-secrets");
    assert_eq!(env.server.count(method::UPDATE_SECRET), 2);
    // The value never changed.
    assert_eq!(env.server.count(method::ADD_SECRET_VERSION), 0);
}

#[tokio::test]
async fn push_refuses_secrets_not_created_by_external_secrets() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "theirs")
        .label("owner", "someone")
        .version(b"v")
        .create();
    let client = env.client(key_spec()).await.unwrap();
    let err = client
        .push_secret(&push("theirs", "mine"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        err.to_string().contains("not managed by external secrets"),
        "{err}"
    );
    let s = env.server.get(PROJECT, None, "theirs").unwrap();
    assert_eq!(s.latest_data(), Some(&b"v"[..]));
    assert!(!s.labels.contains_key("managed-by"));
}

#[tokio::test]
async fn property_pushes_merge_into_the_json_document() {
    let env = Env::new().await;
    env.server
        .secret(PROJECT, "cfg")
        .label("owner", "someone")
        .version(br#"{"host":"db","port":"5432"}"#)
        .create();
    let client = env.client(key_spec()).await.unwrap();
    client
        .push_secret(&push_property("cfg", "user", "admin"))
        .await
        .unwrap();
    client
        .push_secret(&push_property("cfg", "tls.mode", "verify"))
        .await
        .unwrap();
    let s = env.server.get(PROJECT, None, "cfg").unwrap();
    let doc: Value = serde_json::from_slice(s.latest_data().unwrap()).unwrap();
    assert_eq!(
        doc,
        json!({"host": "db", "port": "5432", "user": "admin", "tls": {"mode": "verify"}})
    );
    // A property push adopts the secret: it gains the label and keeps the others.
    assert_eq!(s.labels["managed-by"], "external-secrets");
    assert_eq!(s.labels["owner"], "someone");
    // The same property value again: no new version.
    client
        .push_secret(&push_property("cfg", "user", "admin"))
        .await
        .unwrap();
    assert_eq!(
        env.server.get(PROJECT, None, "cfg").unwrap().versions.len(),
        3
    );
    // Property and metadata together are refused, as upstream.
    let both = with_metadata(push_property("cfg", "x", "y"), json!({"labels": {}}));
    assert_eq!(
        client.push_secret(&both).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    // A property push creates a missing secret as a JSON document.
    client
        .push_secret(&push_property("fresh", "a", "1"))
        .await
        .unwrap();
    let fresh = env.server.get(PROJECT, None, "fresh").unwrap();
    assert_eq!(fresh.latest_data(), Some(&br#"{"a":"1"}"#[..]));
}

#[tokio::test]
async fn regional_pushes_set_no_replication() {
    let env = Env::new().await;
    let spec = GcpsmProvider {
        location: Some("europe-west4".into()),
        ..key_spec()
    };
    let client = env.client(spec).await.unwrap();
    client
        .push_secret(&with_metadata(
            push("db", "v"),
            json!({"replicationLocation": "us-east1"}),
        ))
        .await
        .unwrap();
    let s = env.server.get(PROJECT, Some("europe-west4"), "db").unwrap();
    assert_eq!(s.replication, Value::Null);
    assert_eq!(s.latest_data(), Some(&b"v"[..]));
    assert!(env.server.get(PROJECT, None, "db").is_none());
}

#[tokio::test]
async fn delete_removes_only_secrets_a_push_created() {
    let env = Env::new().await;
    env.server.secret(PROJECT, "theirs").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    client.push_secret(&push("mine", "v")).await.unwrap();
    client.delete_secret(&target("mine")).await.unwrap();
    assert!(env.server.get(PROJECT, None, "mine").is_none());
    client.delete_secret(&target("theirs")).await.unwrap();
    assert!(env.server.get(PROJECT, None, "theirs").is_some());
    // Deleting what is gone is fine.
    client.delete_secret(&target("mine")).await.unwrap();
    assert_eq!(env.server.count(method::DELETE_SECRET), 1);
}

#[tokio::test]
async fn deleting_a_property_keeps_the_others() {
    let env = Env::new().await;
    let client = env.client(key_spec()).await.unwrap();
    client
        .push_secret(&push_property("cfg", "a", "1"))
        .await
        .unwrap();
    client
        .push_secret(&push_property("cfg", "b", "2"))
        .await
        .unwrap();
    let prop = |p: &str| PushRemoteRef {
        remote_key: "cfg".into(),
        property: Some(p.into()),
    };
    client.delete_secret(&prop("a")).await.unwrap();
    let s = env.server.get(PROJECT, None, "cfg").unwrap();
    assert_eq!(s.latest_data(), Some(&br#"{"b":"2"}"#[..]));
    // The last property takes the secret with it.
    client.delete_secret(&prop("b")).await.unwrap();
    assert!(env.server.get(PROJECT, None, "cfg").is_none());
}

#[tokio::test]
async fn secret_exists_means_an_enabled_version_exists() {
    let env = Env::new().await;
    env.server.secret(PROJECT, "empty").create();
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    assert!(client.secret_exists(&target("db")).await.unwrap());
    assert!(!client.secret_exists(&target("empty")).await.unwrap());
    assert!(!client.secret_exists(&target("missing")).await.unwrap());
}
