//! Fixtures: a cluster from the harness (in-process, or `ESO_TEST_KUBECONFIG`'s), credentials
//! for it, Secret and store builders, and the `SecretReader`/`ServiceAccountTokens` the
//! operator would pass, backed by the cluster.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use eso_api::provider::{
    KubernetesAuth, KubernetesProvider as KubernetesSpec, KubernetesServer, KubernetesTokenAuth,
};
use eso_api::{SecretKeySelector, SecretStoreSpec, StoreKind};
use eso_provider::{
    ClientContext, ConfigMapReader, Provider, ProviderError, SecretData, SecretReader,
    SecretsClient, ServiceAccountTokens, StoreInfo,
};
use eso_provider_kubernetes::{KubernetesConfig, KubernetesProvider};
use eso_test_apiserver::TestCluster;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;

/// The Secret holding the store's bearer token.
pub const CREDS: &str = "remote-creds";
/// The ServiceAccount whose token the store uses on a real cluster.
pub const ACCOUNT: &str = "eso-remote";

/// Reads Secrets from the cluster, as the operator does.
#[derive(Clone)]
pub struct ClusterSecrets(pub kube::Client);

#[async_trait]
impl SecretReader for ClusterSecrets {
    async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, ProviderError> {
        let secret = Api::<Secret>::namespaced(self.0.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| ProviderError::unavailable("reading a credential").with_source(e))?;
        Ok(secret.map(|s| {
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        }))
    }
}

#[async_trait]
impl ConfigMapReader for ClusterSecrets {
    async fn config_map_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        let config_map = Api::<ConfigMap>::namespaced(self.0.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| ProviderError::unavailable("reading a ConfigMap").with_source(e))?;
        Ok(config_map.map(|c| c.data.unwrap_or_default()))
    }
}

/// Issues ServiceAccount tokens through the cluster's TokenRequest API.
#[derive(Clone)]
pub struct ClusterTokens(pub kube::Client);

#[async_trait]
impl ServiceAccountTokens for ClusterTokens {
    async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration_seconds: Option<i64>,
    ) -> Result<String, ProviderError> {
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audiences.to_vec(),
                expiration_seconds,
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let answer = Api::<ServiceAccount>::namespaced(self.0.clone(), namespace)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(|e| ProviderError::auth("requesting a token").with_source(e))?;
        Ok(answer.status.map(|s| s.token).unwrap_or_default())
    }
}

/// One test's cluster and the store's way in.
pub struct Env {
    pub cluster: TestCluster,
    pub url: String,
    /// base64 PEM of the cluster's CA (real clusters).
    pub ca: Option<String>,
    /// Extra namespaces to delete at the end.
    extra: Vec<String>,
}

fn current_cluster(kubeconfig: &Kubeconfig) -> (String, Option<String>) {
    let ctx_name = kubeconfig.current_context.clone().unwrap_or_default();
    let ctx = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.clone())
        .unwrap();
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone())
        .unwrap();
    (cluster.server.unwrap(), cluster.certificate_authority_data)
}

impl Env {
    /// A fresh namespace holding the store's credentials: on the in-process server any token
    /// works (it does no authentication); on a real cluster a ServiceAccount with a Role over
    /// Secrets of the test namespace.
    pub async fn new() -> Self {
        Self::on(TestCluster::new().await.unwrap()).await
    }

    /// [`new`](Self::new) on a fresh in-process server, for tests that inject faults.
    pub async fn in_process() -> Self {
        Self::on(TestCluster::in_process().await.unwrap()).await
    }

    async fn on(cluster: TestCluster) -> Self {
        let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
        let (url, ca) = current_cluster(&kubeconfig);
        let env = Self {
            cluster,
            url,
            ca,
            extra: Vec::new(),
        };
        let token = if env.cluster.is_real() {
            env.grant(ACCOUNT, env.ns()).await;
            ClusterTokens(env.client())
                .token(env.ns(), ACCOUNT, &[], Some(3600))
                .await
                .unwrap()
        } else {
            "any-token-works-here".to_owned()
        };
        env.put_secret(env.ns(), CREDS, &[("token", &token)], &[])
            .await;
        env
    }

    pub fn client(&self) -> kube::Client {
        self.cluster.client()
    }

    pub fn ns(&self) -> &str {
        self.cluster.namespace()
    }

    /// Creates a ServiceAccount allowed to read and write Secrets of `namespace` (real
    /// clusters only; the in-process server has no RBAC).
    pub async fn grant(&self, account: &str, namespace: &str) {
        let client = self.client();
        let sa: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": account}})).unwrap();
        let _ = Api::<ServiceAccount>::namespaced(client.clone(), self.ns())
            .create(&PostParams::default(), &sa)
            .await;
        self.allow_secrets(
            account,
            namespace,
            json!({"kind": "ServiceAccount", "name": account, "namespace": self.ns()}),
        )
        .await;
    }

    /// Lets `subject` read and write Secrets of `namespace` with a Role and RoleBinding named
    /// `name` (real clusters only; the in-process server has no RBAC).
    pub async fn allow_secrets(&self, name: &str, namespace: &str, subject: serde_json::Value) {
        if !self.cluster.is_real() {
            return;
        }
        let client = self.client();
        let role: Role = serde_json::from_value(json!({
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["secrets"],
                       "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]
        }))
        .unwrap();
        created(
            Api::<Role>::namespaced(client.clone(), namespace)
                .create(&PostParams::default(), &role)
                .await,
        );
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [subject]
        }))
        .unwrap();
        created(
            Api::<RoleBinding>::namespaced(client.clone(), namespace)
                .create(&PostParams::default(), &binding)
                .await,
        );
        // The authorizer sees new bindings through its cache, a moment later.
        let user = match subject["kind"].as_str() {
            Some("ServiceAccount") => format!(
                "system:serviceaccount:{}:{}",
                subject["namespace"].as_str().unwrap_or_default(),
                subject["name"].as_str().unwrap_or_default()
            ),
            _ => subject["name"].as_str().unwrap_or_default().to_owned(),
        };
        let review: SubjectAccessReview = serde_json::from_value(json!({
            "spec": {"user": user, "resourceAttributes":
                {"namespace": namespace, "verb": "get", "resource": "secrets"}}
        }))
        .unwrap();
        let reviews: Api<SubjectAccessReview> = Api::all(client);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let allowed = reviews
                .create(&PostParams::default(), &review)
                .await
                .is_ok_and(|r| r.status.is_some_and(|s| s.allowed));
            if allowed {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "RBAC never allowed {user} to read Secrets of {namespace}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// A second fresh namespace, deleted by [`Env::cleanup`].
    pub async fn other_namespace(&mut self) -> String {
        let name = format!("{}-other", self.ns());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(self.client())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        self.extra.push(name.clone());
        name
    }

    /// Creates (or replaces) a Secret.
    pub async fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
        labels: &[(&str, &str)],
    ) {
        let string_data: BTreeMap<&str, &str> = data.iter().copied().collect();
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels, "annotations": {"note": "from-test"}},
            "stringData": string_data,
        }))
        .unwrap();
        let api = Api::<Secret>::namespaced(self.client(), namespace);
        let _ = api.delete(name, &DeleteParams::default()).await;
        api.create(&PostParams::default(), &secret).await.unwrap();
    }

    /// Creates (or replaces) a ConfigMap.
    pub async fn put_config_map(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        let config_map: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap();
        let api = Api::<ConfigMap>::namespaced(self.client(), namespace);
        let _ = api.delete(name, &DeleteParams::default()).await;
        api.create(&PostParams::default(), &config_map)
            .await
            .unwrap();
    }

    /// The data of a Secret as text, or `None`.
    pub async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<BTreeMap<String, String>> {
        Api::<Secret>::namespaced(self.client(), namespace)
            .get_opt(name)
            .await
            .unwrap()
            .map(|s| {
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
                    .collect()
            })
    }

    /// A store in the test namespace reading the test namespace with the bearer token.
    pub fn store(&self) -> TestStore {
        TestStore {
            kind: StoreKind::SecretStore,
            namespace: Some(self.ns().to_owned()),
            spec: KubernetesSpec {
                remote_namespace: Some(self.ns().to_owned()),
                server: Some(KubernetesServer {
                    url: Some(self.url.clone()),
                    ca_bundle: self.ca.clone(),
                    ca_provider: None,
                }),
                auth: Some(KubernetesAuth {
                    token: Some(KubernetesTokenAuth {
                        bearer_token: selector(CREDS, "token"),
                    }),
                    ..KubernetesAuth::default()
                }),
                auth_ref: None,
            },
            used_from: self.ns().to_owned(),
            config: KubernetesConfig::default(),
            reader: ClusterSecrets(self.client()),
            tokens: ClusterTokens(self.client()),
        }
    }

    pub async fn cleanup(self) {
        for ns in &self.extra {
            let _ = Api::<Namespace>::all(self.client())
                .delete(ns, &DeleteParams::default())
                .await;
        }
        self.cluster.cleanup().await.unwrap();
    }
}

pub fn selector(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: Some(name.to_owned()),
        namespace: None,
        key: Some(key.to_owned()),
    }
}

/// A store and the context it is used in.
pub struct TestStore {
    pub kind: StoreKind,
    pub namespace: Option<String>,
    pub spec: KubernetesSpec,
    /// The namespace of the object using the store.
    pub used_from: String,
    pub config: KubernetesConfig,
    pub reader: ClusterSecrets,
    pub tokens: ClusterTokens,
}

impl TestStore {
    pub fn info(&self) -> StoreInfo {
        let mut spec = SecretStoreSpec::default();
        spec.provider.kubernetes = Some(self.spec.clone());
        StoreInfo {
            kind: self.kind,
            name: "remote".into(),
            namespace: self.namespace.clone(),
            uid: None,
            generation: None,
            spec,
        }
    }

    pub async fn try_client(&self) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let info = self.info();
        let provider = KubernetesProvider::new().config(self.config.clone());
        provider.validate_store(&info)?;
        provider
            .new_client(ClientContext {
                store: &info,
                namespace: &self.used_from,
                secrets: &self.reader,
                config_maps: &self.reader,
                tokens: Some(&self.tokens),
            })
            .await
    }

    pub async fn client(&self) -> Arc<dyn SecretsClient> {
        match self.try_client().await {
            Ok(c) => c,
            Err(e) => panic!("building the client: {}", e.chain()),
        }
    }
}

pub fn key(key: &str) -> eso_api::ExternalSecretDataRemoteRef {
    eso_api::ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        ..Default::default()
    }
}

pub fn prop(key: &str, property: &str) -> eso_api::ExternalSecretDataRemoteRef {
    eso_api::ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        property: Some(property.to_owned()),
        ..Default::default()
    }
}

/// Asserts a create worked or found the object already there.
fn created<K: std::fmt::Debug>(result: Result<K, kube::Error>) {
    match result {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create failed: {e}"),
    }
}
