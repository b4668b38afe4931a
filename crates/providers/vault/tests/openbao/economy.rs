//! One login and one read: concurrent identical reads share one request, repeats come from the
//! client's cache, writes drop what they change, and every request is counted in the metric.

use std::sync::Arc;

use eso_api::ExternalSecretDataRemoteRef;
use eso_api::provider::{VaultAppRole, VaultAuth};
use eso_provider::{PushRemoteRef, PushRequest, SecretsClient, ValidationResult};
use eso_test_support::metrics::ApiCalls;
use serde_json::json;

use crate::common::{CountingProxy, Fixture, TestStore, fixture, put_v2, selector, unique};

fn key_ref(key: &str, version: Option<&str>) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        property: Some("k".to_owned()),
        version: version.map(str::to_owned),
        ..Default::default()
    }
}

fn approle(f: &Fixture, server: &str) -> TestStore {
    TestStore::new(server)
        .secret("approle", "secret-id", &f.secret_id)
        .auth(VaultAuth {
            app_role: Some(VaultAppRole {
                role_id: Some(f.role_id.clone()),
                secret_ref: selector("approle", "secret-id"),
                ..Default::default()
            }),
            ..Default::default()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_reads_make_one_request_and_one_login() {
    let f = fixture().await;
    let key = unique("hot");
    put_v2(&f.bao, &key, json!({"k": "v1"})).await;
    put_v2(&f.bao, &key, json!({"k": "v2"})).await;
    let proxy = CountingProxy::start(f.bao.port).await;
    let c: Arc<dyn SecretsClient> = approle(f, &proxy.addr).client().await;
    assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);

    // 100 concurrent callers: two thirds ask for the latest version, a third for version 1.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let c = c.clone();
        let key = key.clone();
        let version = (i % 3 == 0).then_some("1");
        tasks.push(tokio::spawn(async move {
            c.get_secret(&key_ref(&key, version)).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let want: &[u8] = if i % 3 == 0 { b"v1" } else { b"v2" };
        assert_eq!(t.await.unwrap().unwrap(), want);
    }
    // Repeats within the window come from the cache, whatever is asked of the data.
    assert_eq!(c.get_secret(&key_ref(&key, None)).await.unwrap(), b"v2");
    let whole = ExternalSecretDataRemoteRef {
        key: key.clone(),
        ..Default::default()
    };
    assert_eq!(c.get_secret_map(&whole).await.unwrap()["k"], b"v2");
    assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);

    assert_eq!(
        proxy.count(&format!("GET /v1/secret/data/{key}")),
        1,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.count(&format!("GET /v1/secret/data/{key}?version=1")),
        1
    );
    assert_eq!(proxy.count("POST /v1/auth/approle/login"), 1);
    // validate reuses the token: a lookup, never a login.
    assert_eq!(proxy.count("GET /v1/auth/token/lookup-self"), 2);
    eprintln!(
        "economy: 101 gets of 2 (key, version) pairs + 2 validations -> {} requests: {:?}",
        proxy.requests().len(),
        proxy.requests()
    );
}

/// The benchmark shape in miniature: 1,000 reads of 100 distinct keys through one
/// client cost 100 reads and one login.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_gets_of_a_hundred_keys_cost_a_hundred_reads_and_one_login() {
    let f = fixture().await;
    let root = unique("fleet");
    for i in 0..100 {
        put_v2(
            &f.bao,
            &format!("{root}/k{i}"),
            json!({"k": format!("v{i}")}),
        )
        .await;
    }
    let proxy = CountingProxy::start(f.bao.port).await;
    let c: Arc<dyn SecretsClient> = approle(f, &proxy.addr).client().await;
    let mut tasks = Vec::new();
    for n in 0..1000 {
        let c = c.clone();
        let key = format!("{root}/k{}", n % 100);
        tasks.push(tokio::spawn(async move {
            (n % 100, c.get_secret(&key_ref(&key, None)).await)
        }));
    }
    for t in tasks {
        let (i, value) = t.await.unwrap();
        assert_eq!(value.unwrap(), format!("v{i}").into_bytes());
    }
    let reads = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with(&format!("GET /v1/secret/data/{root}/")))
        .count();
    assert_eq!(reads, 100);
    assert_eq!(proxy.count("POST /v1/auth/approle/login"), 1);
    assert_eq!(proxy.requests().len(), 101, "{:?}", proxy.requests());
}

#[tokio::test]
async fn writes_drop_cached_answers() {
    let f = fixture().await;
    let key = unique("rewritten");
    let proxy = CountingProxy::start(f.bao.port).await;
    let c = TestStore::new(&proxy.addr)
        .token(&f.bao.root)
        .client()
        .await;
    let push = |v: &str| PushRequest {
        value: v.as_bytes().to_vec(),
        remote: PushRemoteRef {
            remote_key: key.clone(),
            property: Some("k".into()),
        },
        ..Default::default()
    };
    c.push_secret(&push("one")).await.unwrap();
    assert_eq!(c.get_secret(&key_ref(&key, None)).await.unwrap(), b"one");
    assert_eq!(c.get_secret(&key_ref(&key, None)).await.unwrap(), b"one");
    c.push_secret(&push("two")).await.unwrap();
    assert_eq!(c.get_secret(&key_ref(&key, None)).await.unwrap(), b"two");
    c.delete_secret(&PushRemoteRef {
        remote_key: key.clone(),
        property: None,
    })
    .await
    .unwrap();
    assert!(
        c.get_secret(&key_ref(&key, None))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn every_request_is_counted_with_upstream_labels() {
    let calls = ApiCalls::new();
    // The recorder is local to this thread, so the client runs on a current-thread runtime.
    metrics::with_local_recorder(&calls, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let f = fixture().await;
                let key = unique("metered");
                put_v2(&f.bao, &key, json!({"k": "v"})).await;
                let c = approle(f, &f.bao.addr).client().await;
                for _ in 0..5 {
                    assert_eq!(c.get_secret(&key_ref(&key, None)).await.unwrap(), b"v");
                }
                assert!(
                    c.get_secret(&key_ref(&unique("absent"), None))
                        .await
                        .is_err()
                );
                c.validate().await.unwrap();
                c.close().await.unwrap();
            });
    });
    let got = calls.counts();
    assert!(
        calls.other_counters().is_empty(),
        "{:?}",
        calls.other_counters()
    );
    let n = |call: &str, status: &str| {
        got.get(&(
            "HashiCorp/Vault".to_owned(),
            call.to_owned(),
            status.to_owned(),
        ))
        .copied()
        .unwrap_or(0)
    };
    assert_eq!(n("Login", "success"), 1, "{got:?}");
    // One read for five gets; the absent key's 404 is a successful call, as upstream counts.
    assert_eq!(n("ReadSecretData", "success"), 2, "{got:?}");
    assert_eq!(n("LookupSelf", "success"), 1, "{got:?}");
    assert_eq!(n("RevokeSelf", "success"), 1, "{got:?}");
}
