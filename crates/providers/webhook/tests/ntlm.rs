//! `auth.ntlm` against an in-test server that verifies NTLMv2 as a Windows server does: it
//! keeps the challenge per connection, recomputes the NTProofStr from the account's password,
//! and answers 401 to anything else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use eso_api::SecretKeySelector;
use eso_api::provider::{WebhookAuth, WebhookNtlmAuth};
use eso_provider::ErrorKind;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use md4::{Digest, Md4};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use common::{Hook, NS, key};

const DOMAIN: &str = "EXAMPLE";
const USER: &str = "ann";
const PASSWORD: &str = "s3cret pass";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn utf16_text(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).unwrap()
}

fn hmac_md5(key: &[u8], data: &[&[u8]]) -> [u8; 16] {
    let mut mac = Hmac::<md5::Md5>::new_from_slice(key).unwrap();
    for d in data {
        mac.update(d);
    }
    mac.finalize().into_bytes().into()
}

/// A message field (length, max length, offset) at `at`.
fn field(m: &[u8], at: usize) -> &[u8] {
    let len = usize::from(u16::from_le_bytes([m[at], m[at + 1]]));
    let offset = u32::from_le_bytes(m[at + 4..at + 8].try_into().unwrap()) as usize;
    &m[offset..offset + len]
}

/// The server's AV pairs: NbDomainName, NbComputerName, Timestamp, EOL.
fn target_info() -> Vec<u8> {
    let mut info = Vec::new();
    for (id, value) in [(2u16, utf16le(DOMAIN)), (1, utf16le("WEB01"))] {
        info.extend_from_slice(&id.to_le_bytes());
        info.extend_from_slice(&u16::try_from(value.len()).unwrap().to_le_bytes());
        info.extend_from_slice(&value);
    }
    info.extend_from_slice(&7u16.to_le_bytes());
    info.extend_from_slice(&8u16.to_le_bytes());
    info.extend_from_slice(&133_000_000_000_000_000u64.to_le_bytes());
    info.extend_from_slice(&[0; 4]);
    info
}

/// A CHALLENGE message with `server_challenge`, target name `DOMAIN`.
fn challenge_message(server_challenge: [u8; 8]) -> Vec<u8> {
    let name = utf16le(DOMAIN);
    let info = target_info();
    // UNICODE | REQUEST_TARGET | NTLM | ALWAYS_SIGN | TARGET_TYPE_DOMAIN | EXTENDED_SESSION |
    // TARGET_INFO | VERSION | 128 | 56, plus KEY_EXCH, which the client must not confirm.
    let flags: u32 = 0x0000_0001
        | 0x0000_0004
        | 0x0000_0200
        | 0x0000_8000
        | 0x0001_0000
        | 0x0008_0000
        | 0x0080_0000
        | 0x0200_0000
        | 0x2000_0000
        | 0x4000_0000
        | 0x8000_0000;
    let mut m = Vec::new();
    m.extend_from_slice(b"NTLMSSP\0");
    m.extend_from_slice(&2u32.to_le_bytes());
    let name_len = u16::try_from(name.len()).unwrap();
    m.extend_from_slice(&name_len.to_le_bytes());
    m.extend_from_slice(&name_len.to_le_bytes());
    m.extend_from_slice(&56u32.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&server_challenge);
    m.extend_from_slice(&[0; 8]);
    let info_len = u16::try_from(info.len()).unwrap();
    m.extend_from_slice(&info_len.to_le_bytes());
    m.extend_from_slice(&info_len.to_le_bytes());
    m.extend_from_slice(&(56 + u32::from(name_len)).to_le_bytes());
    m.extend_from_slice(&[10, 0, 0x61, 0x4a, 0, 0, 0, 15]);
    m.extend_from_slice(&name);
    m.extend_from_slice(&info);
    m
}

/// Verifies an AUTHENTICATE message as the server side of NTLMv2 (MS-NLMP 3.2.5.1.2) for the
/// one account this server knows; returns `DOMAIN\user` when it is right.
fn verify(message: &[u8], server_challenge: [u8; 8]) -> Option<String> {
    if message.get(..8) != Some(b"NTLMSSP\0".as_slice()) || message[8] != 3 {
        return None;
    }
    let nt = field(message, 20);
    let domain = utf16_text(field(message, 28));
    let user = utf16_text(field(message, 36));
    if nt.len() < 48 || !user.eq_ignore_ascii_case(USER) || !domain.eq_ignore_ascii_case(DOMAIN) {
        return None;
    }
    let (proof, blob) = nt.split_at(16);
    // The client must echo our target info in its blob.
    if !blob[28..].starts_with(&target_info()) {
        return None;
    }
    let nt_hash = Md4::digest(utf16le(PASSWORD));
    let key = hmac_md5(
        &nt_hash,
        &[&utf16le(&format!("{}{domain}", user.to_uppercase()))],
    );
    let expected = hmac_md5(&key, &[&server_challenge, blob]);
    (proof == expected).then(|| format!("{domain}\\{user}"))
}

/// Where one connection is in the handshake.
#[derive(Debug, Clone, PartialEq)]
enum Conn {
    Fresh,
    Challenged([u8; 8]),
    Authenticated(String),
}

#[derive(Debug, Default)]
struct Log {
    connections: usize,
    negotiations: usize,
    /// The schemes the client answered with (`NTLM` or `Negotiate`).
    schemes: Vec<String>,
    /// Every Authorization header that was not NTLM (e.g. Basic).
    other_authorizations: Vec<String>,
}

/// The NTLM server. `offer` is what a 401 advertises in `WWW-Authenticate`.
struct NtlmServer {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

impl Drop for NtlmServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: u16, offers: &[String], body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for offer in offers {
        r = r.header("www-authenticate", offer);
    }
    r.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

impl NtlmServer {
    async fn start(offers: &[&str]) -> Self {
        let offers: Arc<Vec<String>> = Arc::new(offers.iter().map(|s| (*s).to_owned()).collect());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let log_in = log.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            let mut next_challenge = 0u8;
            while let Ok((stream, _)) = listener.accept().await {
                log_in.lock().unwrap().connections += 1;
                next_challenge = next_challenge.wrapping_add(1);
                let challenge = [next_challenge, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
                let state = Arc::new(Mutex::new(Conn::Fresh));
                let log = log_in.clone();
                let offers = offers.clone();
                conns.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let response = handle(&req, &state, &log, &offers, challenge);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, log, task }
    }

    fn url(&self) -> String {
        format!("http://{}/secrets/{{{{ .remoteRef.key }}}}", self.addr)
    }
}

fn handle(
    req: &Request<Incoming>,
    state: &Mutex<Conn>,
    log: &Mutex<Log>,
    offers: &[String],
    server_challenge: [u8; 8],
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let ok = |who: &str| {
        reply(
            200,
            &[],
            &serde_json::json!({"value": format!("{path} for {who}")}).to_string(),
        )
    };
    let mut conn = state.lock().unwrap();
    if let Conn::Authenticated(who) = &*conn {
        return ok(who);
    }
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some((scheme, token)) = header
        .split_once(' ')
        .filter(|(s, _)| *s == "NTLM" || *s == "Negotiate")
    else {
        if !header.is_empty() {
            log.lock()
                .unwrap()
                .other_authorizations
                .push(header.to_owned());
        }
        return reply(401, offers, "{}");
    };
    log.lock().unwrap().schemes.push(scheme.to_owned());
    let Ok(message) = base64::engine::general_purpose::STANDARD.decode(token) else {
        return reply(400, &[], "{}");
    };
    match (message.get(8).copied(), &*conn) {
        (Some(1), _) => {
            log.lock().unwrap().negotiations += 1;
            *conn = Conn::Challenged(server_challenge);
            let challenge = format!("{scheme} {}", b64(&challenge_message(server_challenge)));
            reply(401, &[challenge], "{}")
        }
        (Some(3), Conn::Challenged(sc)) => match verify(&message, *sc) {
            Some(who) => {
                *conn = Conn::Authenticated(who.clone());
                ok(&who)
            }
            None => {
                *conn = Conn::Fresh;
                reply(401, offers, "{}")
            }
        },
        // An AUTHENTICATE on a connection that was never challenged: the handshake moved to
        // another connection.
        _ => {
            *conn = Conn::Fresh;
            reply(401, offers, "{}")
        }
    }
}

fn selector(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: Some(name.to_owned()),
        namespace: None,
        key: Some(key.to_owned()),
    }
}

/// A store using `auth.ntlm` with the given user and password in Secret `ntlm-creds`.
fn hook(server: &NtlmServer, username: &str, password: &str) -> Hook {
    let mut hook = Hook::new(&server.url()).json_path("$.value");
    hook.secrets.insert(
        NS,
        "ntlm-creds",
        BTreeMap::from([
            ("username".to_owned(), username.as_bytes().to_vec()),
            ("password".to_owned(), password.as_bytes().to_vec()),
        ]),
    );
    hook.spec.auth = Some(WebhookAuth {
        ntlm: Some(WebhookNtlmAuth {
            username_secret: selector("ntlm-creds", "username"),
            password_secret: selector("ntlm-creds", "password"),
        }),
    });
    hook
}

#[tokio::test]
async fn ntlm_handshake_authenticates_the_connection_once() {
    let server = NtlmServer::start(&["Negotiate", "NTLM"]).await;
    let client = hook(&server, "EXAMPLE\\ann", PASSWORD).client().await;
    let value = client.get_secret(&key("db")).await.unwrap();
    assert_eq!(value, b"/secrets/db for EXAMPLE\\ann");
    // The authenticated connection is reused: no second handshake.
    let value = client.get_secret(&key("api")).await.unwrap();
    assert_eq!(value, b"/secrets/api for EXAMPLE\\ann");
    {
        let log = server.log.lock().unwrap();
        assert_eq!(log.negotiations, 1);
        assert_eq!(log.connections, 1);
        // NTLM is preferred over Negotiate when both are offered.
        assert_eq!(log.schemes, ["NTLM", "NTLM"]);
    }

    // Concurrent reads share the one authenticated connection in turn.
    let reads = (0..6).map(|i| {
        let client = client.clone();
        async move { client.get_secret(&key(&format!("k{i}"))).await }
    });
    for (i, read) in spawn_all(reads).await.into_iter().enumerate() {
        assert_eq!(
            read.unwrap(),
            format!("/secrets/k{i} for EXAMPLE\\ann").into_bytes()
        );
    }
    assert_eq!(server.log.lock().unwrap().negotiations, 1);
}

/// Runs every future on its own task at once; the results in order.
async fn spawn_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn negotiate_scheme_and_a_bare_user_in_the_servers_domain() {
    let server = NtlmServer::start(&["Negotiate"]).await;
    let client = hook(&server, "ann\n", PASSWORD).client().await;
    let value = client.get_secret(&key("db")).await.unwrap();
    assert_eq!(value, b"/secrets/db for EXAMPLE\\ann");
    assert_eq!(
        server.log.lock().unwrap().schemes,
        ["Negotiate", "Negotiate"]
    );
}

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    let server = NtlmServer::start(&["NTLM"]).await;
    let client = hook(&server, "EXAMPLE\\ann", "not the password")
        .client()
        .await;
    let err = client.get_secret(&key("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    let chain = err.chain();
    assert!(chain.contains("answered 401 Unauthorized"), "{chain}");
    assert!(chain.contains(r#"user "EXAMPLE\\ann""#), "{chain}");
    assert!(!chain.contains("not the password"), "{chain}");
    // A user of another domain fails the same way.
    let client = hook(&server, "OTHER\\ann", PASSWORD).client().await;
    let err = client.get_secret(&key("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
}

#[tokio::test]
async fn no_basic_fallback_when_ntlm_is_not_offered() {
    let server = NtlmServer::start(&["Basic realm=\"x\""]).await;
    let client = hook(&server, "EXAMPLE\\ann", PASSWORD).client().await;
    let err = client.get_secret(&key("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    let log = server.log.lock().unwrap();
    assert!(
        log.other_authorizations.is_empty(),
        "{:?}",
        log.other_authorizations
    );
    assert_eq!(log.negotiations, 0);
}

#[tokio::test]
async fn missing_credentials_name_the_secret_and_key() {
    let server = NtlmServer::start(&["NTLM"]).await;
    let mut h = hook(&server, "EXAMPLE\\ann", PASSWORD);
    h.secrets = eso_provider::StaticSecretReader::new();
    let Err(err) = h.try_client().await else {
        panic!("a client was built without its NTLM Secret");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert_eq!(
        err.message(),
        "SecretStore \"apps/hook\": spec.provider.webhook.auth.ntlm.usernameSecret refers to Secret \"apps/ntlm-creds\", which does not exist"
    );

    let mut h = hook(&server, "EXAMPLE\\ann", PASSWORD);
    h.secrets.insert(
        NS,
        "ntlm-creds",
        BTreeMap::from([("username".to_owned(), b"ann".to_vec())]),
    );
    let Err(err) = h.try_client().await else {
        panic!("a client was built without the NTLM password key");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert_eq!(
        err.message(),
        "SecretStore \"apps/hook\": spec.provider.webhook.auth.ntlm.passwordSecret refers to key \"password\" of Secret \"apps/ntlm-creds\", which it does not have"
    );
}
