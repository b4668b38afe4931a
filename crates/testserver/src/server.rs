//! The server handle: start, stop, restart on the same port, clients and kubeconfigs.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::Error;
use crate::faults::{Fault, Faults};
use crate::http::{Shared, handle};
use crate::store::Store;

/// Tunables of a [`TestApiServer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ServerConfig {
    pub(crate) watch_window: usize,
    pub(crate) bookmark_interval: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            watch_window: 100_000,
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

impl ServerConfig {
    /// How many change events the server keeps for watches to resume from; a watch from an
    /// older resourceVersion gets `410 Gone` (default 100,000).
    pub fn watch_window(mut self, events: usize) -> Self {
        self.watch_window = events.max(1);
        self
    }

    /// How often an idle watch that asked for bookmarks gets one (default 1 s; a real API
    /// server sends them about once a minute).
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every;
        self
    }
}

/// An in-process Kubernetes API server on `127.0.0.1`, serving HTTP.
///
/// Stopping the server (or dropping the handle) closes every connection; its objects stay in
/// memory, so [`restart`](Self::restart) behaves like an API server restart in front of the
/// same etcd.
pub struct TestApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    gc: JoinHandle<()>,
}

impl std::fmt::Debug for TestApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApiServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(shared.clone(), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn gc_loop(shared: Arc<Shared>) {
    loop {
        let pending = shared.store().take_gc_pending();
        if !pending {
            shared.gc.notified().await;
            // Let a burst of writes land before a pass.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        while shared.store().collect_garbage() {
            tokio::task::yield_now().await;
        }
    }
}

impl TestApiServer {
    /// Starts a server with the default [`ServerConfig`] on a free port of 127.0.0.1.
    pub async fn start() -> Result<Self, Error> {
        Self::start_with(ServerConfig::default()).await
    }

    /// Starts a server with the given configuration on a free port of 127.0.0.1.
    pub async fn start_with(config: ServerConfig) -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|source| Error::Bind {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: "127.0.0.1:0".into(),
            source,
        })?;
        let (tx, rx) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(config.watch_window, tx)),
            faults: Mutex::new(Faults::default()),
            config,
            events: rx,
            gc: tokio::sync::Notify::new(),
            addr: Mutex::new(addr.to_string()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        let gc = tokio::spawn(gc_loop(shared.clone()));
        Ok(Self {
            shared,
            addr,
            accept: Mutex::new(Some(accept)),
            gc,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on (the same across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A `kube::Client` for this server, with `default` as its default namespace.
    pub fn client(&self) -> Result<kube::Client, Error> {
        let uri = self
            .url()
            .parse()
            .map_err(|e| Error::Config(format!("server url: {e}")))?;
        let mut config = kube::Config::new(uri);
        config.default_namespace = "default".into();
        kube::Client::try_from(config).map_err(Error::Client)
    }

    /// A kubeconfig (YAML) pointing at this server, for kubectl and the binaries.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: eso-test\n  cluster:\n    server: {}\ncontexts:\n- name: eso-test\n  context:\n    cluster: eso-test\n    user: eso-test\n    namespace: {namespace}\ncurrent-context: eso-test\nusers:\n- name: eso-test\n  user:\n    token: eso-test\n",
            self.url()
        )
    }

    /// Writes [`kubeconfig`](Self::kubeconfig) to a file.
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> Result<(), Error> {
        std::fs::write(path, self.kubeconfig(namespace)).map_err(|source| Error::WriteKubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Stops serving: the listener and every open connection (watches included) close.
    /// Objects are kept. Idempotent.
    pub async fn stop(&self) {
        let task = self
            .accept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
    }

    /// Stops (if running) and serves again on the same port with the same objects.
    pub async fn restart(&self) -> Result<(), Error> {
        self.stop().await;
        let mut last = None;
        // The port was ours a moment ago; binding again may briefly race the old socket.
        for _ in 0..50 {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => {
                    let t = tokio::spawn(accept_loop(listener, self.shared.clone()));
                    *self.accept.lock().unwrap_or_else(PoisonError::into_inner) = Some(t);
                    return Ok(());
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        Err(Error::Bind {
            addr: self.addr.to_string(),
            source: last.unwrap_or_else(|| std::io::Error::other("bind failed")),
        })
    }

    /// Whether the server is accepting connections.
    pub fn is_running(&self) -> bool {
        self.accept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// The latest resourceVersion the server handed out.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }

    /// Forgets the watch event history: a watch resuming from any earlier resourceVersion gets
    /// `410 Gone` (what etcd compaction does), so clients must relist.
    pub fn compact(&self) {
        self.shared.store().compact();
    }

    /// Delays every request by `latency` (`None` removes the delay).
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.shared.faults().latency = latency;
    }

    /// Arms a fault for the next matching requests.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults().rules.push(fault);
    }

    /// Removes every armed fault and the latency.
    pub fn clear_faults(&self) {
        let mut f = self.shared.faults();
        f.rules.clear();
        f.latency = None;
    }

    /// How many uses of armed faults are left.
    pub fn pending_faults(&self) -> usize {
        self.shared.faults().rules.iter().map(|r| r.times).sum()
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        if let Some(t) = self
            .accept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            t.abort();
        }
        self.gc.abort();
    }
}
