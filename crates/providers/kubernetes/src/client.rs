//! The Kubernetes client of one store: reads, find, push, delete and validate, all on Secrets
//! of the one remote namespace.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use base64::Engine;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, MetadataPolicy};
use eso_provider::find::FindMatcher;
use eso_provider::{
    ErrorKind, ProviderError, PushRemoteRef, PushRequest, SecretData, SecretsClient,
    ValidationResult,
};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{Value, json};

use crate::value::{RemoteSecret, data_json, data_value, is_valid_name, metadata_value, value_map};

/// The `provider` label of upstream's `externalsecret_provider_api_calls_count`.
const PROVIDER_LABEL: &str = "Kubernetes";

/// The field manager of every write this provider makes: it is how a later delete knows which
/// keys it pushed.
pub const FIELD_MANAGER: &str = "external-secrets-provider-kubernetes";

/// The `call` label values: upstream's, plus `ApplySecret` for server-side apply.
mod call {
    pub(super) const GET_SECRET: &str = "GetSecret";
    pub(super) const LIST_SECRETS: &str = "ListSecrets";
    pub(super) const APPLY_SECRET: &str = "ApplySecret";
    pub(super) const DELETE_SECRET: &str = "DeleteSecret";
    pub(super) const ACCESS_REVIEW: &str = "CreateSelfSubjectAccessReview";
}

fn observe<T>(label: &'static str, result: &Result<T, kube::Error>) {
    eso_provider::metrics::observe(PROVIDER_LABEL, label, result);
}

/// The cause of a failed API call. Only 404 means "does not exist".
pub(crate) fn kind_of(error: &kube::Error) -> ErrorKind {
    match error {
        kube::Error::Api(status) => match status.code {
            404 => ErrorKind::NotFound,
            401 | 403 => ErrorKind::Auth,
            429 => ErrorKind::Throttled,
            // 409: someone wrote in between; a retry re-reads.
            408 | 409 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidRequest,
        },
        kube::Error::Auth(_) => ErrorKind::Auth,
        // Connection failures, timeouts, TLS failures, unreadable answers.
        _ => ErrorKind::Unavailable,
    }
}

/// An authenticated client of one store's remote namespace.
pub struct KubernetesClient {
    pub(crate) secrets: Api<Secret>,
    pub(crate) reviews: Api<SelfSubjectAccessReview>,
    pub(crate) namespace: String,
    pub(crate) store: String,
}

impl std::fmt::Debug for KubernetesClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesClient")
            .field("store", &self.store)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

fn remote_of(secret: &Secret) -> RemoteSecret {
    RemoteSecret {
        data: secret
            .data
            .as_ref()
            .map(|d| d.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
            .unwrap_or_default(),
        labels: secret.metadata.labels.clone().unwrap_or_default(),
        annotations: secret.metadata.annotations.clone().unwrap_or_default(),
    }
}

/// The data keys `FIELD_MANAGER` owns by server-side apply, from `managedFields`.
fn owned_keys(secret: &Secret) -> BTreeSet<String> {
    secret
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.manager.as_deref() == Some(FIELD_MANAGER) && m.operation.as_deref() == Some("Apply")
        })
        .filter_map(|m| m.fields_v1.as_ref())
        .filter_map(|f| f.0.get("f:data").and_then(Value::as_object))
        .flat_map(|data| {
            data.keys()
                .filter_map(|k| k.strip_prefix("f:"))
                .map(str::to_owned)
        })
        .collect()
}

impl KubernetesClient {
    fn describe(&self, name: &str) -> String {
        format!("Secret \"{}/{name}\"", self.namespace)
    }

    fn error(&self, what: String, e: kube::Error) -> ProviderError {
        let kind = kind_of(&e);
        let detail = match &e {
            kube::Error::Api(status) => format!("{what}: the API server answered {}", status.code),
            _ => format!("{what} failed"),
        };
        ProviderError::new(kind, format!("{}: {detail}", self.store)).with_source(e)
    }

    fn check_name(&self, name: &str) -> Result<(), ProviderError> {
        if is_valid_name(name) {
            Ok(())
        } else {
            Err(ProviderError::invalid_request(format!(
                "{}: {name:?} is not a valid Secret name",
                self.store
            )))
        }
    }

    /// The Secret `name`, or `None` when it does not exist.
    async fn get(&self, name: &str) -> Result<Option<Secret>, ProviderError> {
        self.check_name(name)?;
        let result = self.secrets.get(name).await;
        observe(call::GET_SECRET, &result);
        match result {
            Ok(secret) => Ok(Some(secret)),
            Err(e) if kind_of(&e) == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(format!("reading {}", self.describe(name)), e)),
        }
    }

    async fn get_existing(&self, name: &str) -> Result<Secret, ProviderError> {
        self.get(name).await?.ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!("{}: {} does not exist", self.store, self.describe(name)),
            )
        })
    }

    fn with_store(&self, e: ProviderError) -> ProviderError {
        ProviderError::new(e.kind(), format!("{}: {}", self.store, e.message())).with_source(e)
    }

    /// Applies `data` as the full set of keys this provider owns in Secret `name`: keys it
    /// owned before and that are missing here are removed by the API server.
    async fn apply(&self, name: &str, data: &SecretData) -> Result<(), ProviderError> {
        let encoded: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        let body = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": self.namespace},
            "data": encoded,
        });
        // `force`: a pushed key overwrites whatever another manager wrote there, as upstream's
        // update does.
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let result = self
            .secrets
            .patch(name, &params, &Patch::Apply(&body))
            .await;
        observe(call::APPLY_SECRET, &result);
        result
            .map(|_| ())
            .map_err(|e| self.error(format!("applying {}", self.describe(name)), e))
    }

    async fn list(&self, labels: Option<&str>) -> Result<Vec<Secret>, ProviderError> {
        let mut out = Vec::new();
        let mut params = ListParams::default().limit(500);
        if let Some(selector) = labels {
            params = params.labels(selector);
        }
        loop {
            let result = self.secrets.list(&params).await;
            observe(call::LIST_SECRETS, &result);
            let page = result.map_err(|e| {
                self.error(
                    format!("listing Secrets in namespace {:?}", self.namespace),
                    e,
                )
            })?;
            let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
            out.extend(page.items);
            match next {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(out),
            }
        }
    }
}

/// A label selector from `find.tags` (`k=v,...`); the API server rejects invalid ones with 400.
fn tag_selector(tags: &BTreeMap<String, String>) -> Option<String> {
    (!tags.is_empty()).then(|| {
        tags.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// What a push writes into the remote Secret's data.
fn pushed_entries(request: &PushRequest) -> Result<SecretData, ProviderError> {
    let property = request.remote.property.as_deref().filter(|p| !p.is_empty());
    match (property, request.secret_key.as_deref()) {
        (Some(p), _) => Ok([(p.to_owned(), request.value.clone())].into()),
        (None, Some(_)) => Err(ProviderError::invalid_request(format!(
            "pushing one key to Secret {:?} needs remoteRef.property, the key to write it to",
            request.remote.remote_key
        ))),
        (None, None) => {
            // The whole Secret: every key of it.
            let object: serde_json::Map<String, Value> = serde_json::from_slice(&request.value)
                .map_err(|e| {
                    ProviderError::invalid_request(format!(
                        "the whole-Secret value pushed to {:?} must be a JSON object of strings",
                        request.remote.remote_key
                    ))
                    .with_source(e)
                })?;
            object
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s.into_bytes())),
                    _ => Err(ProviderError::invalid_request(format!(
                        "the whole-Secret value pushed to {:?} holds a non-string value at {k:?}",
                        request.remote.remote_key
                    ))),
                })
                .collect()
        }
    }
}

#[async_trait]
impl SecretsClient for KubernetesClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        let secret = remote_of(&self.get_existing(&remote.key).await?);
        let property = remote.property.as_deref();
        let value = if remote.metadata_policy == Some(MetadataPolicy::Fetch) {
            metadata_value(&secret, &remote.key, property)
        } else {
            data_value(&secret, &remote.key, property)
        };
        value.map_err(|e| self.with_store(e))
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let secret = remote_of(&self.get_existing(&remote.key).await?);
        value_map(
            &secret,
            &remote.key,
            remote.property.as_deref(),
            remote.metadata_policy == Some(MetadataPolicy::Fetch),
        )
        .map_err(|e| self.with_store(e))
    }

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        let matcher = FindMatcher::new(find).map_err(|e| self.with_store(e))?;
        if !matcher.has_name() && !matcher.has_tags() {
            return Err(ProviderError::invalid_request(format!(
                "{}: find needs name.regexp or tags",
                self.store
            )));
        }
        let selector = tag_selector(&find.tags);
        let secrets = self.list(selector.as_deref()).await?;
        let found: SecretData = secrets
            .iter()
            .filter_map(|s| {
                let name = s.metadata.name.as_deref()?;
                let remote = remote_of(s);
                (matcher.matches_name(name) && matcher.matches_tags(&remote.labels))
                    .then(|| (name.to_owned(), data_json(&remote.data)))
            })
            .collect();
        // As upstream's kubernetes provider: the find's key conversion happens here, before
        // the entry's rewrite.
        eso_provider::convert::convert_keys(find.conversion_strategy.unwrap_or_default(), found)
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let name = request.remote.remote_key.as_str();
        let entries = pushed_entries(request).map_err(|e| self.with_store(e))?;
        let existing = self.get(name).await?;
        let mut data = match &existing {
            Some(secret) => {
                let owned = owned_keys(secret);
                let current = remote_of(secret).data;
                let unchanged = entries
                    .iter()
                    .all(|(k, v)| owned.contains(k) && current.get(k) == Some(v));
                if unchanged {
                    return Ok(());
                }
                // Every key we own goes into the apply, or the API server would remove it.
                current
                    .into_iter()
                    .filter(|(k, _)| owned.contains(k))
                    .collect()
            }
            None => SecretData::new(),
        };
        data.extend(entries);
        self.apply(name, &data).await
    }

    async fn delete_secret(&self, remote: &PushRemoteRef) -> Result<(), ProviderError> {
        let name = remote.remote_key.as_str();
        let Some(secret) = self.get(name).await? else {
            return Ok(());
        };
        let owned = owned_keys(&secret);
        let targets: BTreeSet<String> = match remote.property.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => owned.iter().filter(|k| *k == p).cloned().collect(),
            None => owned.clone(),
        };
        if targets.is_empty() {
            // Only keys this provider pushed are ever removed.
            return Ok(());
        }
        let current = remote_of(&secret).data;
        let others_remain = current.keys().any(|k| !targets.contains(k));
        if !others_remain {
            // Nothing would be left: remove the Secret, as upstream does, unless it changed
            // since we read it.
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: secret.metadata.resource_version.clone(),
                    uid: secret.metadata.uid.clone(),
                }),
                ..DeleteParams::default()
            };
            let result = self.secrets.delete(name, &params).await;
            observe(call::DELETE_SECRET, &result);
            return match result {
                Ok(_) => Ok(()),
                Err(e) if kind_of(&e) == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.error(format!("deleting {}", self.describe(name)), e)),
            };
        }
        let kept: SecretData = current
            .into_iter()
            .filter(|(k, _)| owned.contains(k) && !targets.contains(k))
            .collect();
        self.apply(name, &kept).await
    }

    async fn secret_exists(&self, remote: &PushRemoteRef) -> Result<bool, ProviderError> {
        let Some(secret) = self.get(&remote.remote_key).await? else {
            return Ok(false);
        };
        Ok(match remote.property.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => secret.data.as_ref().is_some_and(|d| d.contains_key(p)),
            None => true,
        })
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(self.namespace.clone()),
                    verb: Some("get".into()),
                    resource: Some("secrets".into()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let result = self.reviews.create(&PostParams::default(), &review).await;
        observe(call::ACCESS_REVIEW, &result);
        let not_served =
            |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 501);
        match result {
            Ok(answer) => {
                if answer.status.as_ref().is_some_and(|s| s.allowed) {
                    Ok(ValidationResult::Ready)
                } else {
                    Err(ProviderError::auth(format!(
                        "{}: the credentials may not get Secrets in namespace {:?}",
                        self.store, self.namespace
                    )))
                }
            }
            // An API server without the authorization API (a minimal test server): probe
            // with the cheapest read the provider needs instead.
            Err(e) if not_served(&e) => {
                let params = ListParams::default().limit(1);
                let result = self.secrets.list(&params).await;
                observe(call::LIST_SECRETS, &result);
                result.map(|_| ValidationResult::Ready).map_err(|e| {
                    self.error(
                        format!("listing Secrets in namespace {:?}", self.namespace),
                        e,
                    )
                })
            }
            Err(e) => Err(self.error("creating a SelfSubjectAccessReview".to_owned(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    #[test]
    fn owned_keys_come_from_our_apply_entry_only() {
        let mut secret = Secret::default();
        secret.metadata.managed_fields = Some(vec![
            ManagedFieldsEntry {
                manager: Some(FIELD_MANAGER.into()),
                operation: Some("Apply".into()),
                fields_v1: Some(FieldsV1(json!({"f:data": {"f:a": {}, "f:b.c": {}}}))),
                ..Default::default()
            },
            ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                operation: Some("Update".into()),
                fields_v1: Some(FieldsV1(json!({"f:data": {"f:z": {}}}))),
                ..Default::default()
            },
        ]);
        assert_eq!(
            owned_keys(&secret),
            ["a".to_owned(), "b.c".to_owned()].into()
        );
    }

    #[test]
    fn push_entries_follow_upstream_shapes() {
        let one = PushRequest {
            value: b"v".to_vec(),
            secret_key: Some("k".into()),
            remote: PushRemoteRef {
                remote_key: "r".into(),
                property: Some("p".into()),
            },
            metadata: None,
        };
        assert_eq!(pushed_entries(&one).unwrap()["p"], b"v");
        let no_property = PushRequest {
            remote: PushRemoteRef {
                remote_key: "r".into(),
                property: None,
            },
            ..one.clone()
        };
        assert_eq!(
            pushed_entries(&no_property).unwrap_err().kind(),
            ErrorKind::InvalidRequest
        );
        let whole = PushRequest {
            value: br#"{"a":"1","b":"2"}"#.to_vec(),
            secret_key: None,
            ..no_property
        };
        let entries = pushed_entries(&whole).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries["b"], b"2");
    }

    #[test]
    fn tags_become_a_label_selector() {
        let tags = [
            ("app".to_owned(), "db".to_owned()),
            ("env".to_owned(), "prod".to_owned()),
        ]
        .into();
        assert_eq!(tag_selector(&tags).as_deref(), Some("app=db,env=prod"));
        assert_eq!(tag_selector(&BTreeMap::new()), None);
    }
}
