//! A real Chef server for the tests: Debian's `goiardi` (Chef Server 11 compatible) started with
//! `--use-auth` on a free port, so every request must carry a valid signature; a fault proxy in
//! front of it (429, 5xx) that counts requests; and store builders.
//!
//! `goiardi` runs under a small `sh` watchdog that stops it when its stdin closes: when the test
//! process exits (even on SIGKILL) the kernel closes the pipe, so no server outlives the tests.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use eso_api::provider::{
    ChefAuth, ChefAuthSecretRef, ChefProvider as ChefSpec, SecretStoreProvider,
};
use eso_api::{SecretKeySelector, SecretStoreSpec, StoreKind};
use eso_provider::{
    ClientContext, Provider, ProviderError, SecretsClient, StaticConfigMapReader,
    StaticSecretReader, StoreInfo,
};
use eso_provider_chef::{ChefConfig, ChefProvider, RequestSigner, timestamp};
use eso_test_support::process::Watched;
use eso_test_support::tools::Tool;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use tempfile::TempDir;

pub const NS: &str = "apps";

const INSTALL: &str = "install it with: apt-get install goiardi";

fn goiardi_binary() -> PathBuf {
    Tool {
        env: "ESO_GOIARDI_BIN",
        name: "goiardi",
        what: "the Chef server `goiardi`",
        also: &[],
        install: INSTALL,
    }
    .find()
}

pub use eso_test_support::tools::free_port;

/// One running goiardi with signed-request checking on.
pub struct Goiardi {
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    pub dir: TempDir,
    /// The key of the `admin` user.
    pub admin_pem: String,
    process: Watched,
}

impl Goiardi {
    pub async fn start() -> Self {
        let bin = goiardi_binary();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let args = [
            "-I".to_owned(),
            "127.0.0.1".to_owned(),
            "-H".to_owned(),
            "127.0.0.1".to_owned(),
            "-P".to_owned(),
            port.to_string(),
            "--use-auth".to_owned(),
            format!("--conf-root={}", dir.path().display()),
        ];
        let mut process = Watched::spawn(
            "goiardi",
            &bin,
            args,
            &[],
            &dir.path().join("goiardi.log"),
            INSTALL,
        );
        let url = format!("http://127.0.0.1:{port}/");
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let admin_pem = loop {
            let pem = std::fs::read_to_string(dir.path().join("admin.pem")).ok();
            let up = http.get(&url).send().await.is_ok();
            if let (Some(pem), true) = (pem, up) {
                break pem;
            }
            process.assert_starting(deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self {
            url,
            dir,
            admin_pem,
            process,
        }
    }

    /// The key of a client goiardi made (`chef-validator`, `chef-webui`).
    pub fn client_pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.pem"))).unwrap()
    }

    /// A signed request as `admin`; panics on a non-2xx answer.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let signer = RequestSigner::from_pem("admin", &self.admin_pem).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = signer
            .headers(
                method,
                path,
                body.as_bytes(),
                &timestamp(jiff::Timestamp::now()),
            )
            .unwrap();
        let url = format!("{}{}", self.url, path.trim_start_matches('/'));
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), &url)
            .header("Content-Type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Creates a data bag with items.
    pub async fn bag(&self, name: &str, items: &[Value]) {
        self.admin("POST", "/data", Some(serde_json::json!({ "name": name })))
            .await;
        for item in items {
            self.admin("POST", &format!("/data/{name}"), Some(item.clone()))
                .await;
        }
    }
}

// ----- a fault proxy -----------------------------------------------------------------------

/// An answer the proxy gives instead of forwarding.
#[derive(Clone, Debug)]
pub struct Fault {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'static str,
}

#[derive(Default)]
struct ProxyState {
    faults: Vec<Fault>,
    requests: Vec<String>,
}

impl Drop for Goiardi {
    fn drop(&mut self) {
        // Before its directory goes.
        self.process.stop();
    }
}

/// Forwards to a server, answering the next requests with queued faults; counts every request
/// by path.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    state: Arc<Mutex<ProxyState>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let upstream = upstream.trim_end_matches('/').to_owned();
        let client = reqwest::Client::new();
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (st, upstream, client) = (st.clone(), upstream.clone(), client.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (st, upstream, client) = (st.clone(), upstream.clone(), client.clone());
                        async move { Ok::<_, Infallible>(forward(req, &st, &upstream, &client).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, state, task }
    }

    /// Answers the next requests with these faults, in order.
    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().faults.extend(faults);
    }

    /// Paths of the requests seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    req: Request<Incoming>,
    state: &Mutex<ProxyState>,
    upstream: &str,
    client: &reqwest::Client,
) -> Response<Full<Bytes>> {
    let fault = {
        let mut st = state.lock().unwrap();
        st.requests.push(req.uri().path().to_owned());
        (!st.faults.is_empty()).then(|| st.faults.remove(0))
    };
    if let Some(f) = fault {
        let mut resp = Response::builder()
            .status(f.status)
            .header("Content-Type", "application/json");
        for (k, v) in f.headers {
            resp = resp.header(k, v);
        }
        return resp
            .body(Full::new(Bytes::from_static(f.body.as_bytes())))
            .unwrap();
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let mut out = client.request(
        parts.method.as_str().parse().unwrap(),
        format!("{upstream}{}", parts.uri),
    );
    for (k, v) in &parts.headers {
        if k != "host" {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let resp = out.body(body).send().await.unwrap();
    let mut back = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        back = back.header(k.as_str(), v.as_bytes());
    }
    back.body(Full::new(resp.bytes().await.unwrap())).unwrap()
}

// ----- stores and clients ------------------------------------------------------------------

pub fn spec(url: &str, user: &str, key_namespace: Option<&str>) -> ChefSpec {
    ChefSpec {
        username: user.into(),
        server_url: url.into(),
        auth: ChefAuth {
            secret_ref: ChefAuthSecretRef {
                private_key_secret_ref: SecretKeySelector {
                    name: Some("chef-key".into()),
                    namespace: key_namespace.map(Into::into),
                    key: Some("key.pem".into()),
                },
            },
        },
    }
}

pub fn store(kind: StoreKind, spec: ChefSpec) -> StoreInfo {
    let mut s = StoreInfo::secret_store(
        "chef",
        NS,
        SecretStoreSpec {
            provider: SecretStoreProvider {
                chef: Some(spec),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    if kind == StoreKind::ClusterSecretStore {
        s.kind = kind;
        s.namespace = None;
    }
    s
}

/// Secrets holding `pem` as `chef-key/key.pem` in `namespace`.
pub fn key_secret(namespace: &str, pem: &str) -> StaticSecretReader {
    let mut secrets = StaticSecretReader::new();
    secrets.insert(
        namespace,
        "chef-key",
        BTreeMap::from([("key.pem".to_owned(), pem.as_bytes().to_vec())]),
    );
    secrets
}

/// Fast retries for tests.
pub fn provider() -> ChefProvider {
    ChefProvider::new().config(
        ChefConfig::default()
            .retry_base_delay(Duration::from_millis(20))
            .max_retry_wait(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(5)),
    )
}

pub async fn client_for(
    store: &StoreInfo,
    secrets: &StaticSecretReader,
) -> Result<Arc<dyn SecretsClient>, ProviderError> {
    let config_maps = StaticConfigMapReader::new();
    provider()
        .new_client(ClientContext {
            store,
            namespace: NS,
            secrets,
            config_maps: &config_maps,
            tokens: None,
        })
        .await
}

/// A SecretStore client of `admin` at `url`.
pub async fn admin_client(url: &str, server: &Goiardi) -> Arc<dyn SecretsClient> {
    let store = store(StoreKind::SecretStore, spec(url, "admin", None));
    client_for(&store, &key_secret(NS, &server.admin_pem))
        .await
        .unwrap()
}

pub fn remote(key: &str, property: Option<&str>) -> eso_api::ExternalSecretDataRemoteRef {
    eso_api::ExternalSecretDataRemoteRef {
        key: key.into(),
        property: property.map(Into::into),
        ..Default::default()
    }
}
