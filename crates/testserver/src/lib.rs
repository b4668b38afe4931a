//! `eso-test-apiserver`: an in-process Kubernetes API server for tests, and the harness every
//! controller-level test uses.
//!
//! No real kube-apiserver can be installed on the build machines, so this crate serves the
//! Kubernetes REST protocol over HTTP on 127.0.0.1. `kube::Client`, kube-runtime watchers and
//! controllers, `kubectl` and the eso-rs binaries talk to it as to a cluster. It is test
//! support, not product (`publish = false`).
//!
//! # Use
//! Tests that stop the API server take [`TestCluster::restartable`]: the in-process server, or
//! on the real lane a private control plane (see [`CONTROL_PLANE_ENV`]) whose kube-apiserver
//! [`TestCluster::stop_api_server`] stops. [`kubectl`] finds the kubectl tests run.
//!
//! ```no_run
//! # async fn demo() -> Result<(), eso_test_apiserver::Error> {
//! use eso_test_apiserver::{Fault, TestCluster};
//! let cluster = TestCluster::new().await?; // in-process, or ESO_TEST_KUBECONFIG's cluster
//! let client = cluster.client();
//! let ns = cluster.namespace();
//! if let Some(server) = cluster.server() {
//!     server.inject(Fault::status(503).verb("patch").resource("secrets"));
//! }
//! cluster.cleanup().await?;
//! # Ok(()) }
//! ```
//!
//! # What is served
//! - Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}/{version}` (legacy,
//!   unaggregated formats; kubectl falls back to them). `/openapi/*` answers 404, which
//!   kubectl accepts (client-side validation is then skipped).
//! - Types: Namespace, Secret, ConfigMap, ServiceAccount (+ `token` subresource returning an
//!   unsigned JWT), Event (core/v1 and events.k8s.io/v1), Lease (coordination.k8s.io/v1),
//!   CustomResourceDefinition (apiextensions.k8s.io/v1). Applying a CRD serves its custom
//!   resources generically as JSON at every served version, with the status subresource when
//!   declared, schema defaults applied and unknown fields pruned (structural pruning, honouring
//!   `x-kubernetes-preserve-unknown-fields`). Deleting a CRD deletes its resources.
//! - Verbs: get, list (`limit`/`continue` paging, list `resourceVersion`), watch, create,
//!   update (409 on a stale resourceVersion; custom resources require one, as on a cluster),
//!   delete, deletecollection, JSON patch, merge patch, strategic merge patch (built-in types:
//!   merge keys for `ownerReferences`, `finalizers`, ServiceAccount `secrets`), server-side
//!   apply with field managers, `dryRun=All`; `meta.k8s.io` Table output for kubectl.
//! - `metadata`: one global resourceVersion, uid, creationTimestamp, `generation` for custom
//!   resources and CRDs (bumped on spec changes only when there is a status subresource, on
//!   any non-metadata change otherwise; core types have none, as on a cluster), `managedFields`
//!   in FieldsV1. A write that changes nothing is not stored: no new resourceVersion, no event.
//! - Selectors: label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`, `<`, `>`);
//!   field selectors on `metadata.name`, `metadata.namespace` and the fields the API server
//!   indexes for Secrets (`type`) and Events. Others answer 400 as on a cluster.
//! - Watch: newline-delimited `{"type","object"}` events after the given resourceVersion;
//!   `resourceVersion=0`/unset starts with the current objects as ADDED; `sendInitialEvents`
//!   ends the initial events with the `k8s.io/initial-events-end` bookmark; BOOKMARK events
//!   when asked; `timeoutSeconds`; a version older than the retained window gets an ERROR event
//!   with a 410 `Expired` Status. Selector transitions produce ADDED/DELETED as on a cluster.
//! - Deletion: finalizers and `deletionTimestamp`; propagation Background, Foreground
//!   (`foregroundDeletion` finalizer) and Orphan (`orphan` finalizer); a background task does
//!   what the garbage collector and namespace controller do (dependents of a deleted owner go,
//!   orphaned dependents lose the owner reference, a terminating namespace is emptied first).
//! - A new namespace gets the `kube-root-ca.crt` ConfigMap and the `default` ServiceAccount,
//!   as kube-controller-manager's root CA publisher and service-account controller add them
//!   (the harness waits for both on a real cluster, so tests see the same namespace).
//! - Immutable Secrets and ConfigMaps reject data changes with 422 Invalid; Secret
//!   `stringData` is folded into `data`, `type` defaults to `Opaque` and is immutable.
//! - Faults: latency, failing the next N matching requests with a status, hanging them or
//!   closing their connection; stop and restart on the same port keeping every object.
//!
//! # Knowingly simplified
//! No authentication, RBAC, admission (webhooks, ValidatingAdmissionPolicy), CEL validation
//! rules, OpenAPI schema validation of values (types, enums, required), conversion webhooks
//! (versions differ only in `apiVersion`), protobuf (except the request bodies of kubectl's
//! `create namespace|secret|configmap|serviceaccount` generators) or CBOR, aggregated discovery, HTTP/2 or
//! TLS. The two Event APIs are stored separately (a cluster converts between them). List
//! pages are not snapshots: a later page reflects later writes (its `resourceVersion` is the
//! first page's). Server-side apply treats lists as atomic unless the schema marks them
//! `x-kubernetes-list-type: map|set` (plus `finalizers` and `ownerReferences`), and owns leaf
//! fields only. Strategic merge patch knows only the merge keys listed above. Garbage
//! collection ignores `blockOwnerDeletion`. Table output has only Name and Age columns.
//! Anything else the server does not support answers `501 NotImplemented` or `415`, never a
//! silently different answer.

mod control_plane;
mod faults;
mod harness;
mod http;
mod managed;
mod patch;
mod protobuf;
mod resources;
mod selector;
mod server;
mod status;
mod store;

pub use control_plane::CONTROL_PLANE_ENV;
pub use faults::{Fault, FaultAction};
pub use harness::{KUBECONFIG_ENV, KUBECTL_ENV, TestCluster, kubectl};
pub use server::{ServerConfig, TestApiServer};

/// What can go wrong starting the server or the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("binding the test API server to {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A kube client could not be built.
    #[error("building a kube client")]
    Client(#[source] kube::Error),
    /// A kubeconfig or client configuration is unusable.
    #[error("client configuration: {0}")]
    Config(String),
    /// A kubeconfig (or its directory) could not be written.
    #[error("writing {path}")]
    WriteKubeconfig {
        /// The file or directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A private control plane could not be started, stopped or restarted.
    #[error("private control plane: {0}")]
    ControlPlane(String),
    /// kubectl is not installed where tests look for it.
    #[error(
        "kubectl not found: put it on PATH or name it in ESO_KUBECTL (Debian: apt-get install kubernetes-client)"
    )]
    KubectlMissing,
    /// The test namespace could not be created or deleted.
    #[error("creating or deleting test namespace {namespace}")]
    Namespace {
        /// The namespace.
        namespace: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}
