//! The ECRAuthorizationToken and STSSessionToken generators against moto: `GetAuthorizationToken`
//! and `GetSessionToken` with static keys, an assumed role and a web identity, the request
//! parameters STS receives, and errors typed by cause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{FakeTokens, Moto, REGION};
use eso_api::generators::GeneratorKind;
use eso_generator::{
    ErrorKind, Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject,
};
use eso_provider::{ServiceAccountTokens, StaticConfigMapReader, StaticSecretReader};
use eso_provider_aws::AwsConfig;
use eso_provider_aws::generators::{EcrAuthorizationTokenGenerator, StsSessionTokenGenerator};
use serde_json::{Value, json};

const NS: &str = "ci";
const ROLE: &str = "arn:aws:iam::123456789012:role/ecr-pull";

fn keys() -> StaticSecretReader {
    let mut s = StaticSecretReader::new();
    s.insert(
        NS,
        "aws",
        BTreeMap::from([
            ("id".to_owned(), b"AKIAGENERATOR0000001".to_vec()),
            ("secret".to_owned(), b"generator-secret".to_vec()),
        ]),
    );
    s
}

fn static_auth() -> Value {
    json!({"secretRef": {
        "accessKeyIDSecretRef": {"name": "aws", "key": "id"},
        "secretAccessKeySecretRef": {"name": "aws", "key": "secret"},
    }})
}

fn config(moto: &Moto) -> AwsConfig {
    AwsConfig::default()
        .endpoint_url(Some(moto.endpoint.clone()))
        .max_attempts(1)
}

async fn run(
    generator: &dyn Generator,
    kind: GeneratorKind,
    spec: &Value,
    tokens: Option<&dyn ServiceAccountTokens>,
) -> Result<Generated, GeneratorError> {
    let (secrets, maps) = (keys(), StaticConfigMapReader::new());
    let object = GeneratorObject::namespaced(kind, "gen", NS);
    let mut ctx = GeneratorContext::new(NS, object, &secrets, &maps);
    if let Some(t) = tokens {
        ctx = ctx.with_tokens(t);
    }
    generator.generate(ctx, spec).await
}

fn ecr(moto: &Moto) -> EcrAuthorizationTokenGenerator {
    EcrAuthorizationTokenGenerator::new().config(config(moto))
}

fn sts(moto: &Moto) -> StsSessionTokenGenerator {
    StsSessionTokenGenerator::new().config(config(moto))
}

/// The operations the server saw, without moto's own readiness probes.
fn operations(moto: &Moto) -> Vec<(String, String)> {
    moto.recorded()
        .into_iter()
        .filter(|(op, _)| !op.is_empty())
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn text(g: &Generated, key: &str) -> String {
    String::from_utf8(g.data[key].clone()).unwrap()
}

/// A moto server that records every request (with its headers) into a file of our own.
struct Recording {
    moto: Moto,
    path: std::path::PathBuf,
}

impl std::ops::Deref for Recording {
    type Target = Moto;
    fn deref(&self) -> &Moto {
        &self.moto
    }
}

async fn recording() -> Recording {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("moto-generators-{}", common::unique("rec")));
    let moto = Moto::start_with(&[
        ("MOTO_ENABLE_RECORDING", "true"),
        ("MOTO_RECORDER_FILEPATH", path.to_str().unwrap()),
    ])
    .await;
    Recording { moto, path }
}

/// The access key id in the SigV4 `Authorization` header of each recorded request of
/// `operation`.
fn signer(rec: &Recording, operation: &str) -> Vec<String> {
    let text = std::fs::read_to_string(&rec.path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let entry: Value = serde_json::from_str(line).ok()?;
            let target = entry["headers"]["X-Amz-Target"]
                .as_str()
                .unwrap_or_default();
            let raw = entry["body"].as_str().unwrap_or_default();
            let body = if entry["body_encoded"] == true {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .unwrap();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                raw.to_owned()
            };
            let is_op = target.ends_with(&format!(".{operation}"))
                || body.contains(&format!("Action={operation}"));
            is_op.then(|| {
                let auth = entry["headers"]["Authorization"]
                    .as_str()
                    .unwrap_or_default();
                auth.split("Credential=")
                    .nth(1)
                    .and_then(|c| c.split('/').next())
                    .unwrap_or_default()
                    .to_owned()
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ecr_tokens_come_from_get_authorization_token() {
    let moto = recording().await;
    let spec = json!({"region": REGION, "auth": static_auth()});
    let g = run(
        &ecr(&moto),
        GeneratorKind::ECRAuthorizationToken,
        &spec,
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("{}", e.chain()));
    assert_eq!(
        g.data.keys().collect::<Vec<_>>(),
        ["expires_at", "password", "proxy_endpoint", "username"]
    );
    assert!(g.state.is_none());
    assert_eq!(text(&g, "username"), "AWS");
    assert!(!text(&g, "password").is_empty());
    assert!(
        text(&g, "proxy_endpoint").starts_with("https://"),
        "{}",
        text(&g, "proxy_endpoint")
    );
    // Unix seconds (moto always answers 2015-01-01; AWS, twelve hours from now).
    let expires: u64 = text(&g, "expires_at").parse().unwrap();
    assert!(expires > 1_000_000_000, "{expires}");
    assert_eq!(
        signer(&moto, "GetAuthorizationToken"),
        ["AKIAGENERATOR0000001"]
    );
    let recorded: Vec<String> = operations(&moto).into_iter().map(|(op, _)| op).collect();
    assert_eq!(recorded, ["GetAuthorizationToken"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn ecr_assumes_the_role_first() {
    let moto = recording().await;
    let spec = json!({"region": REGION, "auth": static_auth(), "role": ROLE});
    run(
        &ecr(&moto),
        GeneratorKind::ECRAuthorizationToken,
        &spec,
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("{}", e.chain()));
    let ops: Vec<String> = operations(&moto).into_iter().map(|(op, _)| op).collect();
    assert_eq!(ops, ["AssumeRole", "GetAuthorizationToken"]);
    let assume = operations(&moto)
        .into_iter()
        .find(|(op, _)| op == "AssumeRole")
        .unwrap()
        .1;
    assert!(
        assume.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fecr-pull"),
        "{assume}"
    );
    assert_eq!(signer(&moto, "AssumeRole"), ["AKIAGENERATOR0000001"]);
    let ecr_key = signer(&moto, "GetAuthorizationToken").remove(0);
    assert_ne!(
        ecr_key, "AKIAGENERATOR0000001",
        "ECR is called with the assumed role's keys"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ecr_with_a_web_identity_exchanges_the_service_account_token() {
    let moto = recording().await;
    let tokens = FakeTokens {
        annotations: BTreeMap::from([("eks.amazonaws.com/role-arn".to_owned(), ROLE.to_owned())]),
        ..Default::default()
    };
    let spec =
        json!({"region": REGION, "auth": {"jwt": {"serviceAccountRef": {"name": "puller"}}}});
    run(
        &ecr(&moto),
        GeneratorKind::ECRAuthorizationToken,
        &spec,
        Some(&tokens),
    )
    .await
    .unwrap_or_else(|e| panic!("{}", e.chain()));
    let ops: Vec<String> = operations(&moto).into_iter().map(|(op, _)| op).collect();
    assert_eq!(ops, ["AssumeRoleWithWebIdentity", "GetAuthorizationToken"]);
    let asked = tokens.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [(
            NS.to_owned(),
            "puller".to_owned(),
            vec!["sts.amazonaws.com".to_owned()]
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sts_session_tokens_carry_the_request_parameters() {
    let moto = recording().await;
    let spec = json!({
        "region": REGION,
        "auth": static_auth(),
        "requestParameters": {"sessionDuration": 900, "serialNumber": "arn:aws:iam::123456789012:mfa/ci", "tokenCode": "123456"},
    });
    let g = run(&sts(&moto), GeneratorKind::STSSessionToken, &spec, None)
        .await
        .unwrap_or_else(|e| panic!("{}", e.chain()));
    assert_eq!(
        g.data.keys().collect::<Vec<_>>(),
        [
            "access_key_id",
            "expiration",
            "secret_access_key",
            "session_token"
        ]
    );
    assert!(!text(&g, "session_token").is_empty());
    assert_ne!(
        text(&g, "access_key_id"),
        "AKIAGENERATOR0000001",
        "new credentials"
    );
    let expiration: i64 = text(&g, "expiration").parse().unwrap();
    let in_secs = expiration - now() as i64;
    assert!(
        (800..=1000).contains(&in_secs),
        "sessionDuration 900 was sent: {in_secs}"
    );
    let (op, body) = operations(&moto).remove(0);
    assert_eq!(op, "GetSessionToken");
    for param in [
        "DurationSeconds=900",
        "SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Fci",
        "TokenCode=123456",
    ] {
        assert!(body.contains(param), "{param} missing in {body}");
    }
    assert_eq!(signer(&moto, "GetSessionToken"), ["AKIAGENERATOR0000001"]);

    // With a role: AssumeRole, then GetSessionToken signed with the role's keys.
    let moto = recording().await;
    let spec = json!({"region": REGION, "auth": static_auth(), "role": ROLE});
    run(&sts(&moto), GeneratorKind::STSSessionToken, &spec, None)
        .await
        .unwrap_or_else(|e| panic!("{}", e.chain()));
    let ops: Vec<String> = operations(&moto).into_iter().map(|(op, _)| op).collect();
    assert_eq!(ops, ["AssumeRole", "GetSessionToken"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_typed_by_cause() {
    let moto = common::moto().await;
    // STS refuses web identities for session tokens, as upstream.
    let spec = json!({"region": REGION, "auth": {"jwt": {"serviceAccountRef": {"name": "x"}}}});
    let err = run(&sts(moto), GeneratorKind::STSSessionToken, &spec, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSpec);
    assert_eq!(
        err.message(),
        "STSSessionToken \"ci/gen\": spec.auth.jwt jwt auth cannot be used for STS session tokens"
    );
    // A credential Secret that does not exist names the generator's field.
    let spec = json!({"region": REGION, "auth": {"secretRef": {
        "accessKeyIDSecretRef": {"name": "missing", "key": "id"},
        "secretAccessKeySecretRef": {"name": "aws", "key": "secret"},
    }}});
    let err = run(
        &ecr(moto),
        GeneratorKind::ECRAuthorizationToken,
        &spec,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSpec);
    assert_eq!(
        err.chain(),
        "ECRAuthorizationToken \"ci/gen\": spec.auth.secretRef.accessKeyIDSecretRef refers to Secret \"ci/missing\", which does not exist"
    );
    // No region.
    let err = run(
        &ecr(moto),
        GeneratorKind::ECRAuthorizationToken,
        &json!({"region": ""}),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSpec);
    // Nothing listening.
    let down = AwsConfig::default()
        .endpoint_url(Some("http://127.0.0.1:9".to_owned()))
        .max_attempts(1);
    let spec = json!({"region": REGION, "auth": static_auth()});
    let err = run(
        &EcrAuthorizationTokenGenerator::new().config(down.clone()),
        GeneratorKind::ECRAuthorizationToken,
        &spec,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert!(
        err.chain()
            .starts_with("ECRAuthorizationToken \"ci/gen\": ECR GetAuthorizationToken failed"),
        "{}",
        err.chain()
    );
    let err = run(
        &StsSessionTokenGenerator::new().config(down),
        GeneratorKind::STSSessionToken,
        &spec,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_keys_are_auth_errors() {
    // moto checks signatures after the first N requests: create a user and a key, then use a
    // key it does not know.
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]).await;
    let spec = json!({"region": REGION, "auth": static_auth()});
    let err = run(
        &ecr(&moto),
        GeneratorKind::ECRAuthorizationToken,
        &spec,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    let err = run(&sts(&moto), GeneratorKind::STSSessionToken, &spec, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
}

// ----- ECR Public: moto does not serve it (500), so a local server written from the API
// reference (JSON 1.1, target `SpencerFrontendService.GetAuthorizationToken`), checked with
// boto3's own `ecr-public` client.

/// One request the local ECR Public server saw: (headers, body).
type SeenRequest = (BTreeMap<String, String>, String);

/// Serves `GetAuthorizationToken` of ECR Public on 127.0.0.1 and records each request.
struct EcrPublicServer {
    endpoint: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

const PUBLIC_TOKEN: &str = "AWS:public-registry-password";
const PUBLIC_EXPIRES: i64 = 1_900_000_000;

impl EcrPublicServer {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head, body) = loop {
                        let n = stream.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        while buf.len() < end + 4 + length {
                            let n = stream.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        let body = String::from_utf8_lossy(&buf[end + 4..]).into_owned();
                        break (head, body);
                    };
                    let headers: BTreeMap<String, String> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let target = headers.get("x-amz-target").cloned().unwrap_or_default();
                    record.lock().unwrap().push((headers, body));
                    let (status, answer) = if target
                        == "SpencerFrontendService.GetAuthorizationToken"
                    {
                        use base64::Engine as _;
                        let token = base64::engine::general_purpose::STANDARD.encode(PUBLIC_TOKEN);
                        (
                            "200 OK",
                            json!({"authorizationData": {"authorizationToken": token, "expiresAt": PUBLIC_EXPIRES}}),
                        )
                    } else {
                        (
                            "400 Bad Request",
                            json!({"__type": "UnknownOperationException", "message": target}),
                        )
                    };
                    let answer = answer.to_string();
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self {
            endpoint,
            seen,
            task,
        }
    }
}

impl Drop for EcrPublicServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The Python interpreter with boto3: `$ESO_PYTHON`, else `.venv-emu/bin/python`.
fn python() -> std::path::PathBuf {
    let install = "python3 -m venv .venv-emu && .venv-emu/bin/pip install 'moto[server]==5.2.5' (it brings boto3)";
    if let Some(p) = std::env::var_os("ESO_PYTHON") {
        return p.into();
    }
    let venv =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../.venv-emu/bin/python");
    assert!(
        venv.is_file(),
        "no Python with boto3 (looked at $ESO_PYTHON and .venv-emu/bin/python); from the repository root: {install}"
    );
    venv
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_ecr_public_server_answers_boto3_like_aws() {
    let server = EcrPublicServer::start().await;
    let script = format!(
        "import base64, boto3\n\
         c = boto3.client('ecr-public', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='AKIABOTO', aws_secret_access_key='s')\n\
         d = c.get_authorization_token()['authorizationData']\n\
         print(base64.b64decode(d['authorizationToken']).decode(), int(d['expiresAt'].timestamp()))\n",
        server.endpoint
    );
    let endpoint = server.endpoint.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg("-c")
            .arg(script)
            .env("NO_PROXY", endpoint)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "boto3 refused the local ECR Public server (is boto3 installed? pip install 'moto[server]==5.2.5'): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{PUBLIC_TOKEN} {PUBLIC_EXPIRES}")
    );
    let (headers, _) = server.seen.lock().unwrap()[0].clone();
    assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    assert!(
        headers["authorization"].contains("/us-east-1/ecr-public/aws4_request"),
        "{headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ecr_public_tokens_come_from_ecr_public() {
    let server = EcrPublicServer::start().await;
    let generator = EcrAuthorizationTokenGenerator::new()
        .config(AwsConfig::default().max_attempts(1))
        .ecr_public_endpoint(Some(server.endpoint.clone()));
    let spec = json!({"region": "us-east-1", "scope": "public", "auth": static_auth()});
    let g = run(
        &generator,
        GeneratorKind::ECRAuthorizationToken,
        &spec,
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("{}", e.chain()));
    assert_eq!(
        g.data.keys().collect::<Vec<_>>(),
        ["expires_at", "password", "username"]
    );
    assert_eq!(text(&g, "username"), "AWS");
    assert_eq!(text(&g, "password"), "public-registry-password");
    assert_eq!(text(&g, "expires_at"), PUBLIC_EXPIRES.to_string());
    let (headers, body) = server.seen.lock().unwrap()[0].clone();
    assert_eq!(
        headers["x-amz-target"],
        "SpencerFrontendService.GetAuthorizationToken"
    );
    assert_eq!(body, "{}");
    let auth = &headers["authorization"];
    assert!(auth.contains("Credential=AKIAGENERATOR0000001/"), "{auth}");
    assert!(
        auth.contains("/us-east-1/ecr-public/aws4_request"),
        "{auth}"
    );
}
