//! KV v1 and v2 reads, properties, versions, metadata, find, push and delete.

use eso_api::provider::VaultKvVersion;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, FindName, MetadataPolicy};
use eso_provider::{ErrorKind, PushRemoteRef, PushRequest};
use serde_json::json;

use crate::common::{TestStore, fixture, put_v2, unique};

fn remote(key: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        ..Default::default()
    }
}

fn prop(key: &str, property: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        property: Some(property.to_owned()),
        ..remote(key)
    }
}

fn push(key: &str, property: Option<&str>, value: &str) -> PushRequest {
    PushRequest {
        value: value.as_bytes().to_vec(),
        remote: PushRemoteRef {
            remote_key: key.to_owned(),
            property: property.map(str::to_owned),
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn kv2_reads_whole_secret_properties_and_nested_paths() {
    let f = fixture().await;
    let key = unique("app/db");
    put_v2(
        &f.bao,
        &key,
        json!({"user": "admin", "port": 5432, "html": "<a&b>", "nested": {"host": "db", "list": [{"n": "x"}, {"n": "y"}]}, "a.b": "dotted"}),
    )
    .await;
    let c = TestStore::new(&f.bao.addr)
        .token(&f.bao.root)
        .client()
        .await;

    // No property: the data as Go's json.Marshal writes it.
    assert_eq!(
        String::from_utf8(c.get_secret(&remote(&key)).await.unwrap()).unwrap(),
        r#"{"a.b":"dotted","html":"\u003ca\u0026b\u003e","nested":{"host":"db","list":[{"n":"x"},{"n":"y"}]},"port":5432,"user":"admin"}"#
    );
    assert_eq!(c.get_secret(&prop(&key, "user")).await.unwrap(), b"admin");
    assert_eq!(c.get_secret(&prop(&key, "port")).await.unwrap(), b"5432");
    assert_eq!(
        c.get_secret(&prop(&key, "nested.host")).await.unwrap(),
        b"db"
    );
    assert_eq!(
        c.get_secret(&prop(&key, "nested.list.1.n")).await.unwrap(),
        b"y"
    );
    assert_eq!(
        c.get_secret(&prop(&key, "nested.list.#.n")).await.unwrap(),
        br#"["x","y"]"#
    );
    // A top-level key with a dot wins over the path reading.
    assert_eq!(c.get_secret(&prop(&key, "a.b")).await.unwrap(), b"dotted");
    // A missing property is an error, never not-found: the secret exists.
    let missing = c.get_secret(&prop(&key, "nope")).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::InvalidRequest);

    // The store path may be repeated in the key, with or without data/.
    assert_eq!(
        c.get_secret(&prop(&format!("secret/data/{key}"), "user"))
            .await
            .unwrap(),
        b"admin"
    );

    let map = c.get_secret_map(&remote(&key)).await.unwrap();
    assert_eq!(map["user"], b"admin");
    assert_eq!(map["port"], b"5432");
    assert_eq!(
        map["nested"],
        br#"{"host":"db","list":[{"n":"x"},{"n":"y"}]}"#
    );
    let nested = c.get_secret_map(&prop(&key, "nested")).await.unwrap();
    assert_eq!(nested["host"], b"db");
    let err = c.get_secret_map(&prop(&key, "user")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn string_property_holding_json_splits_into_keys() {
    let f = fixture().await;
    let key = unique("json-in-string");
    put_v2(&f.bao, &key, json!({"config": "{\"a\":\"1\",\"b\":2}"})).await;
    let c = TestStore::new(&f.bao.addr)
        .token(&f.bao.root)
        .client()
        .await;
    let map = c.get_secret_map(&prop(&key, "config")).await.unwrap();
    assert_eq!(map["a"], b"1");
    assert_eq!(map["b"], b"2");
}

#[tokio::test]
async fn kv2_versions_and_deleted_versions() {
    let f = fixture().await;
    let key = unique("versioned");
    put_v2(&f.bao, &key, json!({"v": "one"})).await;
    put_v2(&f.bao, &key, json!({"v": "two"})).await;
    let c = TestStore::new(&f.bao.addr)
        .token(&f.bao.root)
        .client()
        .await;
    let at = |v: &str| ExternalSecretDataRemoteRef {
        version: Some(v.to_owned()),
        ..prop(&key, "v")
    };
    assert_eq!(c.get_secret(&at("1")).await.unwrap(), b"one");
    assert_eq!(c.get_secret(&at("2")).await.unwrap(), b"two");
    assert_eq!(c.get_secret(&prop(&key, "v")).await.unwrap(), b"two");
    assert!(c.get_secret(&at("7")).await.unwrap_err().is_not_found());
    // Soft-delete version 1: it reads as not found, version 2 is untouched.
    f.bao
        .api(
            "POST",
            &format!("secret/delete/{key}"),
            Some(json!({"versions": [1]})),
        )
        .await;
    let c = TestStore::new(&f.bao.addr)
        .token(&f.bao.root)
        .client()
        .await;
    assert!(c.get_secret(&at("1")).await.unwrap_err().is_not_found());
    assert_eq!(c.get_secret(&at("2")).await.unwrap(), b"two");
}

#[tokio::test]
async fn absent_secret_is_not_found() {
    let f = fixture().await;
    let c = TestStore::new(&f.bao.addr)
        .token(&f.bao.root)
        .client()
        .await;
    let err = c.get_secret(&remote(&unique("absent"))).await.unwrap_err();
    assert!(err.is_not_found(), "{}", err.chain());
    assert!(
        c.get_secret_map(&remote(&unique("absent")))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn metadata_policy_fetch_returns_custom_metadata() {
    let f = fixture().await;
    let key = unique("with-meta");
    put_v2(&f.bao, &key, json!({"x": "1"})).await;
    f.bao
        .api(
            "POST",
            &format!("secret/metadata/{key}"),
            Some(json!({"custom_metadata": {"owner": "team-a", "env": "prod"}})),
        )
        .await;
    let c = TestStore::new(&f.bao.addr)
        .token(&f.bao.root)
        .client()
        .await;
    let fetch = |p: Option<&str>| ExternalSecretDataRemoteRef {
        metadata_policy: Some(MetadataPolicy::Fetch),
        property: p.map(str::to_owned),
        ..remote(&key)
    };
    assert_eq!(
        c.get_secret(&fetch(Some("owner"))).await.unwrap(),
        b"team-a"
    );
    assert_eq!(
        c.get_secret(&fetch(Some("current_version"))).await.unwrap(),
        b"1"
    );
    let map = c.get_secret_map(&fetch(None)).await.unwrap();
    assert_eq!(map["env"], b"prod");
    assert!(map.contains_key("created_time"));
}

#[tokio::test]
async fn kv1_reads_and_rejects_v2_only_features() {
    let f = fixture().await;
    let key = unique("v1");
    f.bao
        .api(
            "POST",
            &format!("kv1/{key}"),
            Some(json!({"user": "u1", "nested": {"k": "v"}})),
        )
        .await;
    let mut store = TestStore::new(&f.bao.addr).token(&f.bao.root);
    store.spec.path = Some("kv1".into());
    store.spec.version = Some(VaultKvVersion::V1);
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop(&key, "user")).await.unwrap(), b"u1");
    assert_eq!(c.get_secret(&prop(&key, "nested.k")).await.unwrap(), b"v");
    assert_eq!(
        c.get_secret(&prop(&format!("kv1/{key}"), "user"))
            .await
            .unwrap(),
        b"u1"
    );
    assert!(
        c.get_secret(&remote(&unique("v1-absent")))
            .await
            .unwrap_err()
            .is_not_found()
    );
    let fetch = ExternalSecretDataRemoteRef {
        metadata_policy: Some(MetadataPolicy::Fetch),
        ..remote(&key)
    };
    assert_eq!(
        c.get_secret(&fetch).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    let by_tags = ExternalSecretFind {
        tags: [("a".to_owned(), "b".to_owned())].into(),
        ..Default::default()
    };
    assert_eq!(
        c.get_all_secrets(&by_tags).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
}

#[tokio::test]
async fn kv2_store_without_path_takes_the_mount_from_the_key() {
    let f = fixture().await;
    let key = unique("nopath");
    put_v2(&f.bao, &key, json!({"k": "v"})).await;
    let mut store = TestStore::new(&f.bao.addr).token(&f.bao.root);
    store.spec.path = None;
    let c = store.client().await;
    assert_eq!(
        c.get_secret(&prop(&format!("secret/{key}"), "k"))
            .await
            .unwrap(),
        b"v"
    );
    assert_eq!(
        c.get_secret(&prop(&format!("secret/data/{key}"), "k"))
            .await
            .unwrap(),
        b"v"
    );
}

#[tokio::test]
async fn find_by_path_name_and_tags_lists_recursively() {
    let f = fixture().await;
    let root = unique("find");
    for (k, env) in [
        ("db/main", "prod"),
        ("db/replica", "dev"),
        ("api/key", "prod"),
        ("top", "prod"),
    ] {
        let key = format!("{root}/{k}");
        put_v2(&f.bao, &key, json!({"name": k})).await;
        f.bao
            .api(
                "POST",
                &format!("secret/metadata/{key}"),
                Some(json!({"custom_metadata": {"env": env}})),
            )
            .await;
    }
    let c = TestStore::new(&f.bao.addr)
        .token(&f.bao.root)
        .client()
        .await;

    let by_path = ExternalSecretFind {
        path: Some(root.clone()),
        ..Default::default()
    };
    let all = c.get_all_secrets(&by_path).await.unwrap();
    assert_eq!(
        all.keys().cloned().collect::<Vec<_>>(),
        [
            format!("{root}/api/key"),
            format!("{root}/db/main"),
            format!("{root}/db/replica"),
            format!("{root}/top")
        ]
    );
    assert_eq!(all[&format!("{root}/top")], br#"{"name":"top"}"#);

    let by_name = ExternalSecretFind {
        path: Some(root.clone()),
        name: Some(FindName {
            regexp: Some("db/".into()),
        }),
        ..Default::default()
    };
    assert_eq!(c.get_all_secrets(&by_name).await.unwrap().len(), 2);

    let by_tags = ExternalSecretFind {
        path: Some(root.clone()),
        tags: [("env".to_owned(), "prod".to_owned())].into(),
        ..Default::default()
    };
    let prod = c.get_all_secrets(&by_tags).await.unwrap();
    assert_eq!(
        prod.keys().cloned().collect::<Vec<_>>(),
        [
            format!("{root}/api/key"),
            format!("{root}/db/main"),
            format!("{root}/top")
        ]
    );

    // Without a path the whole mount is listed.
    let anywhere = ExternalSecretFind {
        name: Some(FindName {
            regexp: Some(format!("^{root}/db/")),
        }),
        ..Default::default()
    };
    assert_eq!(c.get_all_secrets(&anywhere).await.unwrap().len(), 2);

    let nothing = ExternalSecretFind {
        path: Some(unique("no-such-dir")),
        ..Default::default()
    };
    assert!(c.get_all_secrets(&nothing).await.unwrap().is_empty());
}

#[tokio::test]
async fn push_whole_secret_and_properties_then_delete() {
    let f = fixture().await;
    let key = unique("pushed");
    let c = TestStore::new(&f.bao.addr)
        .token(&f.bao.root)
        .client()
        .await;
    let target = PushRemoteRef {
        remote_key: key.clone(),
        property: None,
    };
    assert!(!c.secret_exists(&target).await.unwrap());

    c.push_secret(&push(&key, None, r#"{"a":"1"}"#))
        .await
        .unwrap();
    assert!(c.secret_exists(&target).await.unwrap());
    c.push_secret(&push(&key, Some("b"), "2")).await.unwrap();
    assert_eq!(
        c.get_secret(&remote(&key)).await.unwrap(),
        br#"{"a":"1","b":"2"}"#
    );
    let meta = f
        .bao
        .api("GET", &format!("secret/metadata/{key}"), None)
        .await;
    assert_eq!(meta["data"]["current_version"], 2);
    assert_eq!(
        meta["data"]["custom_metadata"]["managed-by"],
        "external-secrets"
    );

    // The same value again: no new version.
    c.push_secret(&push(&key, Some("b"), "2")).await.unwrap();
    c.push_secret(&push(&key, None, r#"{"b":"2","a":"1"}"#))
        .await
        .unwrap();
    let meta = f
        .bao
        .api("GET", &format!("secret/metadata/{key}"), None)
        .await;
    assert_eq!(meta["data"]["current_version"], 2);

    // Delete one property, then the whole secret (every version and its metadata).
    let b = PushRemoteRef {
        remote_key: key.clone(),
        property: Some("b".into()),
    };
    assert!(c.secret_exists(&b).await.unwrap());
    c.delete_secret(&b).await.unwrap();
    assert!(!c.secret_exists(&b).await.unwrap());
    assert_eq!(c.get_secret(&remote(&key)).await.unwrap(), br#"{"a":"1"}"#);
    c.delete_secret(&target).await.unwrap();
    assert!(!c.secret_exists(&target).await.unwrap());
    let (status, _) = f
        .bao
        .call("GET", &format!("secret/metadata/{key}"), None)
        .await;
    assert_eq!(status, 404);
    // Deleting what is gone is fine.
    c.delete_secret(&target).await.unwrap();
}

#[tokio::test]
async fn push_refuses_secrets_it_does_not_manage_and_delete_leaves_them() {
    let f = fixture().await;
    let key = unique("foreign");
    put_v2(&f.bao, &key, json!({"a": "1"})).await;
    let c = TestStore::new(&f.bao.addr)
        .token(&f.bao.root)
        .client()
        .await;
    let err = c
        .push_secret(&push(&key, Some("b"), "2"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{}", err.chain());
    c.delete_secret(&PushRemoteRef {
        remote_key: key.clone(),
        property: None,
    })
    .await
    .unwrap();
    assert_eq!(c.get_secret(&prop(&key, "a")).await.unwrap(), b"1");
}

#[tokio::test]
async fn push_with_check_and_set_and_custom_metadata() {
    let f = fixture().await;
    let key = unique("cas");
    let mut store = TestStore::new(&f.bao.addr).token(&f.bao.root);
    store.spec.check_and_set = Some(eso_api::provider::VaultCheckAndSet {
        required: Some(true),
    });
    let c = store.client().await;
    // The mount requires check-and-set on this key from now on.
    f.bao
        .api("POST", &format!("secret/metadata/{key}"), Some(json!({"cas_required": true, "custom_metadata": {"managed-by": "external-secrets"}})))
        .await;
    let mut request = push(&key, Some("a"), "1");
    request.metadata = Some(json!({
        "apiVersion": "kubernetes.external-secrets.io/v1alpha1",
        "kind": "PushSecretMetadata",
        "spec": {"customMetadata": {"team": "payments"}}
    }));
    c.push_secret(&request).await.unwrap();
    c.push_secret(&push(&key, Some("a"), "2")).await.unwrap();
    let meta = f
        .bao
        .api("GET", &format!("secret/metadata/{key}"), None)
        .await;
    assert_eq!(meta["data"]["current_version"], 2);
    assert_eq!(meta["data"]["custom_metadata"]["team"], "payments");
    assert_eq!(c.get_secret(&prop(&key, "a")).await.unwrap(), b"2");
}

#[tokio::test]
async fn kv1_push_and_delete_keep_the_ownership_mark_in_the_data() {
    let f = fixture().await;
    let key = unique("v1push");
    let mut store = TestStore::new(&f.bao.addr).token(&f.bao.root);
    store.spec.path = Some("kv1".into());
    store.spec.version = Some(VaultKvVersion::V1);
    let c = store.client().await;
    c.push_secret(&push(&key, Some("a"), "1")).await.unwrap();
    let raw = f.bao.api("GET", &format!("kv1/{key}"), None).await;
    assert_eq!(raw["data"]["a"], "1");
    assert_eq!(
        raw["data"]["custom_metadata"]["managed-by"],
        "external-secrets"
    );
    c.delete_secret(&PushRemoteRef {
        remote_key: key.clone(),
        property: Some("a".into()),
    })
    .await
    .unwrap();
    let (status, _) = f.bao.call("GET", &format!("kv1/{key}"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn namespace_header_reaches_the_namespace() {
    let f = fixture().await;
    let ns = unique("team");
    f.bao
        .api("POST", &format!("sys/namespaces/{ns}"), None)
        .await;
    let in_ns = |method: &'static str, path: &'static str, body: serde_json::Value| {
        let ns = ns.clone();
        async move {
            let resp = f
                .bao
                .http()
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{}/v1/{path}", f.bao.addr),
                )
                .header("X-Vault-Token", &f.bao.root)
                .header("X-Vault-Namespace", ns)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
        }
    };
    in_ns(
        "POST",
        "sys/mounts/kvns",
        json!({"type": "kv", "options": {"version": "2"}}),
    )
    .await;
    in_ns(
        "POST",
        "kvns/data/inside",
        json!({"data": {"where": "namespace"}}),
    )
    .await;

    let mut store = TestStore::new(&f.bao.addr).token(&f.bao.root);
    store.spec.path = Some("kvns".into());
    store.spec.namespace = Some(ns.clone());
    let c = store.client().await;
    assert_eq!(
        c.get_secret(&prop("inside", "where")).await.unwrap(),
        b"namespace"
    );

    // Without the namespace the mount does not exist.
    let mut store = TestStore::new(&f.bao.addr).token(&f.bao.root);
    store.spec.path = Some("kvns".into());
    let c = store.client().await;
    assert!(c.get_secret(&prop("inside", "where")).await.is_err());
}

#[tokio::test]
async fn custom_headers_and_read_your_writes_are_accepted() {
    let f = fixture().await;
    let key = unique("headers");
    put_v2(&f.bao, &key, json!({"k": "v"})).await;
    let mut store = TestStore::new(&f.bao.addr).token(&f.bao.root);
    store.spec.headers = [("X-Team".to_owned(), "payments".to_owned())].into();
    store.spec.read_your_writes = Some(true);
    store.spec.forward_inconsistent = Some(true);
    let c = store.client().await;
    c.push_secret(&push(&unique("ryw"), Some("a"), "1"))
        .await
        .unwrap();
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
}
