//! Credentials: assumed roles and web identity through moto's STS, a stopped server, and
//! moto's enforced-auth mode.

use std::sync::Arc;
use std::time::Duration;

use eso_api::ExternalSecretDataRemoteRef;
use eso_api::common::ServiceAccountSelector;
use eso_api::provider::{AwsAuth, AwsJwtAuth, AwsSessionTagsPolicy, AwsTag};
use eso_provider::{ErrorKind, ValidationResult};

use crate::common::{FakeTokens, Moto, TestStore, calls, install_recorder, moto, unique};

fn remote(key: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        ..Default::default()
    }
}

async fn seed(m: &Moto, value: &str) -> String {
    let name = unique("auth");
    m.sm()
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .unwrap();
    name
}

#[tokio::test]
async fn assumes_the_role_chain_once_per_session() {
    install_recorder();
    let m = moto().await;
    let name = seed(m, "via-roles").await;
    let mut store = TestStore::sm(m);
    store.spec.additional_roles = vec!["arn:aws:iam::123456789012:role/hop".into()];
    store.spec.role = Some("arn:aws:iam::123456789012:role/eso".into());
    store.spec.external_id = Some("ext-1".into());
    store.spec.session_tags = vec![AwsTag {
        key: "team".into(),
        value: "a".into(),
    }];
    store.spec.transitive_tag_keys = vec!["team".into()];
    store.spec.session_tags_policy = Some(AwsSessionTagsPolicy::Simple);
    let before = calls("AWS/STS", "AssumeRole", "success");
    let c = store
        .config(|c| c.read_cache_ttl(Duration::ZERO))
        .client()
        .await;
    assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);
    for _ in 0..3 {
        assert_eq!(c.get_secret(&remote(&name)).await.unwrap(), b"via-roles");
    }
    // Two roles, assumed once each for validate and three reads (other tests may add theirs).
    let assumed = calls("AWS/STS", "AssumeRole", "success") - before;
    assert!((2..6).contains(&assumed), "AssumeRole calls: {assumed}");
}

#[tokio::test]
async fn exchanges_a_service_account_token_for_a_role() {
    install_recorder();
    let m = moto().await;
    let name = seed(m, "via-web-identity").await;
    let tokens = Arc::new(FakeTokens::default());
    let mut store = TestStore::sm(m);
    store.spec.auth = Some(AwsAuth {
        secret_ref: None,
        jwt: Some(AwsJwtAuth {
            service_account_ref: Some(ServiceAccountSelector {
                name: "eso".into(),
                namespace: None,
                audiences: Vec::new(),
            }),
        }),
    });
    store.spec.role = Some("arn:aws:iam::123456789012:role/irsa".into());
    store.tokens = Some(tokens.clone());
    let before = calls("AWS/STS", "AssumeRoleWithWebIdentity", "success");
    let c = store.client().await;
    assert_eq!(
        c.get_secret(&remote(&name)).await.unwrap(),
        b"via-web-identity"
    );
    assert_eq!(
        tokens.asked.lock().unwrap().as_slice(),
        [(
            "default".to_owned(),
            "eso".to_owned(),
            vec!["sts.amazonaws.com".to_owned()]
        )]
    );
    assert!(calls("AWS/STS", "AssumeRoleWithWebIdentity", "success") > before);

    // Without a token source (offline), building the client fails as a store problem.
    store.tokens = None;
    let Err(err) = store.try_client().await else {
        panic!("a client was built without a token source");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{}", err.chain());
}

fn jwt_auth(account: &str, audiences: &[&str]) -> Option<AwsAuth> {
    Some(AwsAuth {
        secret_ref: None,
        jwt: Some(AwsJwtAuth {
            service_account_ref: Some(ServiceAccountSelector {
                name: account.into(),
                namespace: None,
                audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            }),
        }),
    })
}

/// A form field of a recorded query-protocol body, percent-decoded.
fn form_field(body: &str, field: &str) -> Option<String> {
    let raw = body
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn web_identity_role_comes_from_the_service_account_annotation() {
    let m = Moto::start_recording().await;
    let name = seed(&m, "via-irsa").await;
    let tokens = Arc::new(FakeTokens {
        annotations: [
            (
                "eks.amazonaws.com/role-arn",
                "arn:aws:iam::123456789012:role/irsa",
            ),
            ("eks.amazonaws.com/audience", "custom-aud"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        ..FakeTokens::default()
    });
    let mut store = TestStore::sm(&m);
    store.spec.auth = jwt_auth("eso", &["extra-aud"]);
    store.spec.role = Some("arn:aws:iam::123456789012:role/target".into());
    store.tokens = Some(tokens.clone());
    let c = store.client().await;
    assert_eq!(c.get_secret(&remote(&name)).await.unwrap(), b"via-irsa");

    // The token's audience is the annotation's, then the reference's own (upstream).
    assert_eq!(
        tokens.asked.lock().unwrap().as_slice(),
        [(
            "default".to_owned(),
            "eso".to_owned(),
            vec!["custom-aud".to_owned(), "extra-aud".to_owned()]
        )]
    );
    // The token is exchanged for the annotated role; the store's role is then assumed with
    // those credentials, as upstream chains it.
    let sts: Vec<(String, Option<String>)> = m
        .recorded()
        .into_iter()
        .filter(|(op, _)| op.starts_with("AssumeRole"))
        .map(|(op, body)| (op, form_field(&body, "RoleArn")))
        .collect();
    assert_eq!(
        sts,
        [
            (
                "AssumeRoleWithWebIdentity".to_owned(),
                Some("arn:aws:iam::123456789012:role/irsa".to_owned())
            ),
            (
                "AssumeRole".to_owned(),
                Some("arn:aws:iam::123456789012:role/target".to_owned())
            ),
        ]
    );

    // Without the annotation the store's role is the web identity role (an eso-rs
    // extension; upstream fails).
    let plain = Arc::new(FakeTokens::default());
    store.tokens = Some(plain);
    let c = store.client().await;
    assert_eq!(c.get_secret(&remote(&name)).await.unwrap(), b"via-irsa");
    let last = m
        .recorded()
        .into_iter()
        .filter(|(op, _)| op.starts_with("AssumeRole"))
        .map(|(op, body)| (op, form_field(&body, "RoleArn")))
        .next_back();
    assert_eq!(
        last,
        Some((
            "AssumeRoleWithWebIdentity".to_owned(),
            Some("arn:aws:iam::123456789012:role/target".to_owned())
        ))
    );

    // Neither: the store is invalid, and the message says what to set.
    store.spec.role = None;
    let Err(err) = store.try_client().await else {
        panic!("a client was built without a role");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{}", err.chain());
    assert!(
        err.chain().contains("eks.amazonaws.com/role-arn"),
        "{}",
        err.chain()
    );
}

#[tokio::test]
async fn a_stopped_server_is_unavailable_and_recovers() {
    let mut m = Moto::start().await;
    let name = seed(&m, "before").await;
    let store = TestStore::sm(&m).config(|c| {
        c.read_cache_ttl(Duration::ZERO)
            .connect_timeout(Duration::from_secs(1))
            .operation_timeout(Duration::from_secs(5))
    });
    let c = store.client().await;
    let ps = TestStore::ps(&m)
        .config(|c| c.read_cache_ttl(Duration::ZERO))
        .client()
        .await;
    assert_eq!(c.get_secret(&remote(&name)).await.unwrap(), b"before");

    m.stop();
    let err = c.get_secret(&remote(&name)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    let err = ps.get_secret(&remote("/x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());

    // A fresh server on the same port: the same client works again.
    m.restart().await;
    m.sm()
        .create_secret()
        .name(&name)
        .secret_string("after")
        .send()
        .await
        .unwrap();
    assert_eq!(c.get_secret(&remote(&name)).await.unwrap(), b"after");
}

#[tokio::test]
async fn rejected_credentials_are_auth_never_not_found() {
    // With no unauthenticated requests allowed, moto checks every signature against IAM,
    // where our key does not exist: 403 InvalidClientTokenId (as an XML body the SDK cannot
    // read, so the status decides).
    let m = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]).await;
    let sm = TestStore::sm(&m).client().await;
    let err = sm
        .get_secret(&remote(&unique("missing")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    let ps = TestStore::ps(&m).client().await;
    let err = ps.get_secret(&remote("/missing")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());

    // An assumed role with rejected base credentials fails on STS, also as Auth.
    let mut store = TestStore::sm(&m);
    store.spec.role = Some("arn:aws:iam::123456789012:role/eso".into());
    let c = store.client().await;
    let err = c.validate().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    let err = c.get_secret(&remote("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
}

/// One IAM query call with a fake SigV4 header (moto routes by its credential scope and does
/// not check it before enforcement starts); returns the XML answer.
async fn iam(m: &Moto, params: &[(&str, &str)]) -> String {
    let mut form: Vec<(&str, &str)> = vec![("Version", "2010-05-08")];
    form.extend_from_slice(params);
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/", m.endpoint))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            form.iter()
                .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                .collect::<Vec<_>>()
                .join("&"),
        )
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "IAM {params:?}: {}",
        answer.status()
    );
    answer.text().await.unwrap()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn xml_field(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap() + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    xml[start..end].to_owned()
}

#[tokio::test]
async fn permission_errors_are_auth_and_batching_falls_back() {
    // Four unauthenticated setup requests, then moto enforces IAM policies.
    let m = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "4")]).await;
    iam(&m, &[("Action", "CreateUser"), ("UserName", "eso")]).await;
    let key = iam(&m, &[("Action", "CreateAccessKey"), ("UserName", "eso")]).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","ssm:GetParameter"],"Resource":"*"}]}"#;
    iam(
        &m,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "eso"),
            ("PolicyName", "read-one-by-one"),
            ("PolicyDocument", policy),
        ],
    )
    .await;
    m.sm()
        .create_secret()
        .name("allowed")
        .secret_string("yes")
        .send()
        .await
        .unwrap();
    let (ak, sk) = (
        xml_field(&key, "AccessKeyId"),
        xml_field(&key, "SecretAccessKey"),
    );

    let c = TestStore::sm(&m).static_keys(&ak, &sk, None).client().await;
    // BatchGetSecretValue is denied: the read falls back to GetSecretValue.
    assert_eq!(c.get_secret(&remote("allowed")).await.unwrap(), b"yes");
    // A secret that does not exist, with a permission to read it: NotFound.
    let err = c.get_secret(&remote("absent")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    // ListSecrets is denied: Auth, not an empty result and not NotFound.
    let err = c
        .get_all_secrets(&eso_api::ExternalSecretFind {
            path: Some("a".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    // Pushing needs CreateSecret: denied is Auth.
    let err = c
        .push_secret(&eso_provider::PushRequest {
            value: b"v".to_vec(),
            remote: eso_provider::PushRemoteRef {
                remote_key: "new".into(),
                property: None,
            },
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());

    // Parameter Store: GetParameters is denied, GetParameter allowed.
    let ps = TestStore::ps(&m).static_keys(&ak, &sk, None).client().await;
    let err = ps.get_secret(&remote("/absent")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
}
