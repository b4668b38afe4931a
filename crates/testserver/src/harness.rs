//! The test harness: a fresh namespace on "a cluster", in-process by default or the real
//! cluster `ESO_TEST_KUBECONFIG` points at.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::Error;
use crate::control_plane::PrivateControlPlane;
use crate::server::{ServerConfig, TestApiServer};
use crate::store::random_suffix;

/// The environment variable naming a real cluster's kubeconfig for [`TestCluster::new`].
pub const KUBECONFIG_ENV: &str = "ESO_TEST_KUBECONFIG";

/// The environment variable naming the kubectl binary tests run (default: `kubectl` on `PATH`).
pub const KUBECTL_ENV: &str = "ESO_KUBECTL";

/// The kubectl tests run: [`KUBECTL_ENV`], else the first `kubectl` on `PATH`. A test that
/// needs kubectl fails with this error, never skips.
pub fn kubectl() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os(KUBECTL_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
        .ok_or(Error::KubectlMissing)
}

/// A fresh namespace on a cluster, for one test.
///
/// On the in-process server the whole server belongs to the test and goes away with it. On a
/// real cluster the namespace is deleted by [`cleanup`](Self::cleanup), or on drop (which
/// blocks on a helper thread) if the test did not call it.
pub struct TestCluster {
    client: kube::Client,
    namespace: String,
    kubeconfig: PathBuf,
    server: Option<TestApiServer>,
    control_plane: Option<PrivateControlPlane>,
    temp_dir: Option<PathBuf>,
    cleaned: bool,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("namespace", &self.namespace)
            .field("kubeconfig", &self.kubeconfig)
            .field("real", &self.is_real())
            .finish_non_exhaustive()
    }
}

async fn create_namespace(client: &kube::Client) -> Result<String, Error> {
    let name = format!("eso-test-{}", random_suffix(8));
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
        .map_err(|e| Error::Config(format!("namespace object: {e}")))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .map_err(|source| Error::Namespace {
            namespace: name.clone(),
            source,
        })?;
    // kube-controller-manager fills a new namespace a moment later (the in-process server at
    // once): wait for it, so that every test starts from the same namespace contents.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
    let deadline = tokio::time::Instant::now() + NAMESPACE_READY_TIMEOUT;
    loop {
        let filled = matches!(config_maps.get_opt("kube-root-ca.crt").await, Ok(Some(_)))
            && matches!(accounts.get_opt("default").await, Ok(Some(_)));
        if filled {
            return Ok(name);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Config(format!(
                "namespace {name} did not get its kube-root-ca.crt ConfigMap and default \
                 ServiceAccount within {NAMESPACE_READY_TIMEOUT:?}: is kube-controller-manager running?"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// How long a new namespace may take to be filled by kube-controller-manager.
const NAMESPACE_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn real_client(path: &Path) -> Result<kube::Client, Error> {
    let kc = Kubeconfig::read_from(path)
        .map_err(|e| Error::Config(format!("reading kubeconfig {}: {e}", path.display())))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))?;
    kube::Client::try_from(config).map_err(Error::Client)
}

impl TestCluster {
    /// The real cluster named by `ESO_TEST_KUBECONFIG` when it is set, else a fresh
    /// in-process server; either way with a fresh namespace.
    pub async fn new() -> Result<Self, Error> {
        match std::env::var_os(KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Self::real(PathBuf::from(path)).await,
            None => Self::in_process().await,
        }
    }

    /// A fresh in-process server and namespace, whatever the environment says.
    pub async fn in_process() -> Result<Self, Error> {
        Self::in_process_with(ServerConfig::default()).await
    }

    /// Like [`in_process`](Self::in_process), with a server configuration.
    pub async fn in_process_with(config: ServerConfig) -> Result<Self, Error> {
        let server = TestApiServer::start_with(config).await?;
        let client = server.client()?;
        let namespace = create_namespace(&client).await?;
        let dir = std::env::temp_dir().join(format!(
            "eso-test-apiserver-{}-{}",
            std::process::id(),
            random_suffix(8)
        ));
        std::fs::create_dir_all(&dir).map_err(|source| Error::WriteKubeconfig {
            path: dir.clone(),
            source,
        })?;
        let kubeconfig = dir.join("kubeconfig");
        server.write_kubeconfig(&kubeconfig, &namespace)?;
        Ok(Self {
            client,
            namespace,
            kubeconfig,
            server: Some(server),
            control_plane: None,
            temp_dir: Some(dir),
            cleaned: false,
        })
    }

    /// A cluster whose API server this test may stop and restart
    /// ([`stop_api_server`](Self::stop_api_server), [`start_api_server`](Self::start_api_server)):
    /// a fresh in-process server, or, when `ESO_TEST_KUBECONFIG` is set, a real control plane
    /// of the test's own (started with the `up.sh` that `ESO_TEST_K8S_DIR` names), so that the
    /// shared cluster stays up for the other tests.
    pub async fn restartable() -> Result<Self, Error> {
        if std::env::var_os(KUBECONFIG_ENV).is_none_or(|v| v.is_empty()) {
            return Self::in_process().await;
        }
        let (control_plane, kubeconfig) = PrivateControlPlane::start().await?;
        let mut cluster = match Self::real(kubeconfig).await {
            Ok(c) => c,
            Err(e) => {
                control_plane.shutdown();
                return Err(e);
            }
        };
        cluster.control_plane = Some(control_plane);
        Ok(cluster)
    }

    /// Stops the API server (in-process: closes every connection, keeps the objects; a
    /// private control plane: stops its kube-apiserver process, etcd keeps running). Fails on
    /// the shared real cluster: use [`restartable`](Self::restartable).
    pub async fn stop_api_server(&self) -> Result<(), Error> {
        match (&self.server, &self.control_plane) {
            (Some(server), _) => {
                server.stop().await;
                Ok(())
            }
            (None, Some(cp)) => cp.stop_apiserver().await,
            (None, None) => Err(Error::Config(
                "the shared cluster's API server cannot be stopped: get the cluster with TestCluster::restartable".into(),
            )),
        }
    }

    /// Starts the API server [`stop_api_server`](Self::stop_api_server) stopped, on the same
    /// address and storage, and waits until it answers.
    pub async fn start_api_server(&self) -> Result<(), Error> {
        match (&self.server, &self.control_plane) {
            (Some(server), _) => server.restart().await,
            (None, Some(cp)) => cp.start_apiserver(&self.client).await,
            (None, None) => Err(Error::Config(
                "the shared cluster's API server cannot be restarted: get the cluster with TestCluster::restartable".into(),
            )),
        }
    }

    /// A fresh namespace on the real cluster this kubeconfig points at (its current context).
    pub async fn real(kubeconfig: PathBuf) -> Result<Self, Error> {
        let client = real_client(&kubeconfig).await?;
        let namespace = create_namespace(&client).await?;
        Ok(Self {
            client,
            namespace,
            kubeconfig,
            server: None,
            control_plane: None,
            temp_dir: None,
            cleaned: false,
        })
    }

    /// A client for the cluster (its default namespace is the kubeconfig's, not the test's:
    /// use [`namespace`](Self::namespace) with `Api::namespaced`).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The test's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A kubeconfig for kubectl and the binaries. In-process, its context's namespace is the
    /// test's; on a real cluster it is `ESO_TEST_KUBECONFIG` itself, so pass `--namespace`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Whether this is a real cluster.
    pub fn is_real(&self) -> bool {
        self.server.is_none()
    }

    /// The in-process server, for fault injection, restarts and compaction.
    pub fn server(&self) -> Option<&TestApiServer> {
        self.server.as_ref()
    }

    /// Deletes the test's namespace (shared real cluster), stops the control plane (a private
    /// one) or stops the server (in-process).
    pub async fn cleanup(mut self) -> Result<(), Error> {
        self.cleaned = true;
        if let Some(server) = self.server.take() {
            server.stop().await;
            return Ok(());
        }
        if let Some(cp) = self.control_plane.take() {
            tokio::task::spawn_blocking(move || cp.shutdown())
                .await
                .map_err(|e| Error::ControlPlane(format!("stopping it: {e}")))?;
            return Ok(());
        }
        delete_namespace(&self.client, &self.namespace).await
    }
}

async fn delete_namespace(client: &kube::Client, namespace: &str) -> Result<(), Error> {
    match Api::<Namespace>::all(client.clone())
        .delete(namespace, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::Namespace {
            namespace: namespace.to_string(),
            source,
        }),
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(cp) = self.control_plane.take() {
            cp.shutdown();
            return;
        }
        if self.cleaned || self.server.is_some() {
            return;
        }
        // A real cluster and no explicit cleanup: delete the namespace from a helper thread
        // with its own runtime (we may be inside a runtime that must not block).
        let (path, ns) = (self.kubeconfig.clone(), self.namespace.clone());
        let joined = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(client) = real_client(&path).await {
                    let _ = delete_namespace(&client, &ns).await;
                }
            });
        })
        .join();
        drop(joined);
    }
}
