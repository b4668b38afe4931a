//! A small HTTP server for the tests (hyper on 127.0.0.1, a free port) that records every
//! request and answers with what the test's handler says, plus a store builder.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use eso_api::provider::{WebhookProvider as WebhookSpec, WebhookResult, WebhookSecret};
use eso_api::{SecretKeySelector, SecretStoreSpec};
use eso_provider::{
    ClientContext, Provider, ProviderError, SecretsClient, StaticConfigMapReader,
    StaticSecretReader, StoreInfo,
};
use eso_provider_webhook::{WebhookConfig, WebhookProvider};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const NS: &str = "apps";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn json(body: serde_json::Value) -> Self {
        Self::status(200, body.to_string())
    }

    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            body: body.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            delay: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A running server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let handler: Handler = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen_in = seen.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let seen = seen_in.clone();
                conns.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let seen = seen.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes().to_vec())
                                .unwrap_or_default();
                            let request = Seen {
                                method: parts.method.to_string(),
                                target: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.as_str().to_owned())
                                    .unwrap_or_default(),
                                headers: parts.headers,
                                body,
                            };
                            seen.lock().unwrap().push(request.clone());
                            let reply = handler(&request);
                            if let Some(d) = reply.delay {
                                tokio::time::sleep(d).await;
                            }
                            let mut response = Response::builder().status(reply.status);
                            for (k, v) in &reply.headers {
                                response = response.header(k, v);
                            }
                            Ok::<_, Infallible>(
                                response.body(Full::new(Bytes::from(reply.body))).unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, seen, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.requests().pop().expect("the server saw no request")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A webhook store and the Secrets it references.
#[derive(Debug, Clone)]
pub struct Hook {
    pub spec: WebhookSpec,
    pub secrets: StaticSecretReader,
    pub config_maps: StaticConfigMapReader,
    pub config: WebhookConfig,
}

impl Hook {
    pub fn new(url: &str) -> Self {
        Self {
            spec: WebhookSpec {
                url: url.to_owned(),
                ..WebhookSpec::default()
            },
            secrets: StaticSecretReader::new(),
            config_maps: StaticConfigMapReader::new(),
            config: WebhookConfig::default(),
        }
    }

    pub fn method(mut self, m: &str) -> Self {
        self.spec.method = Some(m.to_owned());
        self
    }

    pub fn body(mut self, b: &str) -> Self {
        self.spec.body = Some(b.to_owned());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.spec.headers.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn json_path(mut self, p: &str) -> Self {
        self.spec.result = Some(WebhookResult {
            json_path: Some(p.to_owned()),
        });
        self
    }

    pub fn timeout(mut self, t: &str) -> Self {
        self.spec.timeout = Some(t.to_owned());
        self
    }

    /// Exposes Secret `secret` (with `data`) to the templates as `.name`.
    pub fn secret(mut self, name: &str, secret: &str, data: &[(&str, &str)]) -> Self {
        self.secrets.insert(
            NS,
            secret,
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect::<BTreeMap<_, _>>(),
        );
        self.spec.secrets.push(WebhookSecret {
            name: name.to_owned(),
            secret_ref: SecretKeySelector {
                name: Some(secret.to_owned()),
                ..Default::default()
            },
        });
        self
    }

    pub fn store_info(&self) -> StoreInfo {
        let mut spec = SecretStoreSpec::default();
        spec.provider.webhook = Some(self.spec.clone());
        StoreInfo::secret_store("hook", NS, spec)
    }

    pub async fn try_client(&self) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let store = self.store_info();
        let provider = WebhookProvider::new().config(self.config.clone());
        provider.validate_store(&store)?;
        provider
            .new_client(ClientContext {
                store: &store,
                namespace: NS,
                secrets: &self.secrets,
                config_maps: &self.config_maps,
                tokens: None,
            })
            .await
    }

    pub async fn client(&self) -> Arc<dyn SecretsClient> {
        self.try_client().await.unwrap()
    }
}

pub fn key(key: &str) -> eso_api::ExternalSecretDataRemoteRef {
    eso_api::ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        ..Default::default()
    }
}
