//! Request economy, in a binary of its own so the call counts are this test's alone:
//! N concurrent identical reads are one request, and 1,000 reads of 100 keys are 100.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use eso_api::ExternalSecretDataRemoteRef;
use eso_provider::SecretsClient;
use std::sync::Arc;

use common::{TestStore, calls, install_recorder, moto, unique};

fn remote(key: &str, property: Option<&str>) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        property: property.map(str::to_owned),
        ..Default::default()
    }
}

async fn burst(c: &Arc<dyn SecretsClient>, keys: &[String], readers: usize) {
    let mut tasks = Vec::new();
    for i in 0..readers {
        let c = c.clone();
        let key = keys[i % keys.len()].clone();
        tasks.push(tokio::spawn(async move {
            c.get_secret(&remote(&key, (i % 2 == 0).then_some("k")))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_reads_share_one_request_per_window() {
    install_recorder();
    let m = moto().await;
    let sm = m.sm();
    let ssm = m.ssm();
    let root = unique("econ");
    let mut secrets = Vec::new();
    let mut params = Vec::new();
    for i in 0..100 {
        let name = format!("{root}/s{i}");
        sm.create_secret()
            .name(&name)
            .secret_string(r#"{"k":"v"}"#)
            .send()
            .await
            .unwrap();
        secrets.push(name);
        let p = format!("/{root}/p{i}");
        ssm.put_parameter()
            .name(&p)
            .value(r#"{"k":"v"}"#)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
        params.push(p);
    }

    // Secrets Manager, one read per value: 100 concurrent identical gets, then 1,000 gets of
    // 100 keys.
    let c = TestStore::sm(m)
        .config(|c| c.batch_reads(false))
        .client()
        .await;
    let before = calls("AWS/SecretsManager", "GetSecretValue", "success");
    burst(&c, &secrets[..1], 100).await;
    assert_eq!(
        calls("AWS/SecretsManager", "GetSecretValue", "success") - before,
        1
    );
    let start = Instant::now();
    burst(&c, &secrets, 1000).await;
    let elapsed = start.elapsed();
    let sm_calls = calls("AWS/SecretsManager", "GetSecretValue", "success") - before;
    assert_eq!(sm_calls, 100);
    println!(
        "Secrets Manager, unbatched: 1,000 gets of 100 keys -> {} GetSecretValue calls in {elapsed:?}",
        sm_calls - 1 // the first key was already cached
    );

    // The same with batching (the default): concurrent reads share BatchGetSecretValue calls.
    let c = TestStore::sm(m).client().await;
    let singles = calls("AWS/SecretsManager", "GetSecretValue", "success");
    let batches = calls("AWS/SecretsManager", "BatchGetSecretValue", "success");
    burst(&c, &secrets[..1], 100).await;
    assert_eq!(
        calls("AWS/SecretsManager", "BatchGetSecretValue", "success") - batches,
        1
    );
    let start = Instant::now();
    burst(&c, &secrets, 1000).await;
    let elapsed = start.elapsed();
    let batch_calls = calls("AWS/SecretsManager", "BatchGetSecretValue", "success") - batches;
    assert_eq!(
        calls("AWS/SecretsManager", "GetSecretValue", "success"),
        singles
    );
    // 99 new keys need at least 5 calls of 20; arrival timing may split a few more.
    assert!(
        (6..=20).contains(&batch_calls),
        "{batch_calls} BatchGetSecretValue calls"
    );
    println!(
        "Secrets Manager, batched: 1,000 gets of 100 keys -> {} BatchGetSecretValue calls in {elapsed:?}",
        batch_calls - 1
    );

    // Parameter Store, one read per value, paced at its default 40 requests/s.
    let c = TestStore::ps(m)
        .config(|c| c.batch_reads(false))
        .client()
        .await;
    let before = calls("AWS/ParameterStore", "GetParameter", "success");
    burst(&c, &params[..1], 100).await;
    assert_eq!(
        calls("AWS/ParameterStore", "GetParameter", "success") - before,
        1
    );
    let start = Instant::now();
    burst(&c, &params, 1000).await;
    let elapsed = start.elapsed();
    let ps_calls = calls("AWS/ParameterStore", "GetParameter", "success") - before;
    assert_eq!(ps_calls, 100);
    println!(
        "Parameter Store, unbatched: 1,000 gets of 100 keys -> {} GetParameter calls in {elapsed:?} (paced at 40/s)",
        ps_calls - 1
    );

    // Batched: ten names per GetParameters.
    let c = TestStore::ps(m).client().await;
    let singles = calls("AWS/ParameterStore", "GetParameter", "success");
    let batches = calls("AWS/ParameterStore", "GetParameters", "success");
    burst(&c, &params[..1], 100).await;
    let start = Instant::now();
    burst(&c, &params, 1000).await;
    let elapsed = start.elapsed();
    let batch_calls = calls("AWS/ParameterStore", "GetParameters", "success") - batches;
    assert_eq!(
        calls("AWS/ParameterStore", "GetParameter", "success"),
        singles
    );
    assert!(
        (11..=25).contains(&batch_calls),
        "{batch_calls} GetParameters calls"
    );
    println!(
        "Parameter Store, batched: 1,000 gets of 100 keys -> {} GetParameters calls in {elapsed:?}",
        batch_calls - 1
    );
}
