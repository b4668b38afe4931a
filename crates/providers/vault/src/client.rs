//! [`VaultClient`]: the authenticated client of one store, with its token, read cache and KV
//! operations.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, MetadataPolicy};
use eso_provider::find::FindMatcher;
use eso_provider::{
    ErrorKind, ProviderError, PushRemoteRef, PushRequest, SecretData, SecretsClient,
    ValidationResult,
};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::auth::{Credentials, LoginRequest};
use crate::cache::{ReadCache, ReadKey};
use crate::kv::{self, KvLayout};
use crate::token::{self, Lease, TokenAction, TokenState};
use crate::transport::{Call, Transport, call};

/// Upstream marks what PushSecret wrote with this custom-metadata entry, and only overwrites or
/// deletes secrets that carry it.
const MANAGED_BY_KEY: &str = "managed-by";
const MANAGED_BY_VALUE: &str = "external-secrets";
const CUSTOM_METADATA: &str = "custom_metadata";
/// KV v2 metadata fields upstream exposes next to the custom metadata.
const SYSTEM_METADATA_KEYS: [&str; 3] = ["created_time", "current_version", "delete_version_after"];
/// Reads a `find` runs at once.
const FIND_CONCURRENCY: usize = 8;

/// The authenticated client of one Vault (or OpenBao) store.
///
/// It holds one token, refreshed before it expires; concurrent identical reads share one
/// request, and repeats within the configured window are served from its cache. Build it
/// through [`crate::VaultProvider`].
pub struct VaultClient {
    pub(crate) transport: Transport,
    pub(crate) layout: KvLayout,
    pub(crate) credentials: Credentials,
    /// Where logins and token calls go, when not the store's namespace.
    pub(crate) auth_namespace: Option<String>,
    pub(crate) token: tokio::sync::Mutex<Option<TokenState>>,
    pub(crate) reads: ReadCache,
    pub(crate) check_and_set: bool,
    /// The store, for messages.
    pub(crate) store: String,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("store", &self.store)
            .field("layout", &self.layout)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

fn not_found(key: &str, version: Option<&str>) -> ProviderError {
    match version {
        Some(v) => ProviderError::new(
            ErrorKind::NotFound,
            format!("secret {key:?} has no version {v}"),
        ),
        None => ProviderError::not_found(key),
    }
}

impl VaultClient {
    // ----- tokens -------------------------------------------------------------------------

    /// Logs in now if the client logs in at all (used when the client is built, so bad
    /// credentials fail there, as upstream's `NewClient` does).
    pub(crate) async fn login_now(&self) -> Result<(), ProviderError> {
        if matches!(self.credentials, Credentials::Login(_)) {
            self.current_token().await?;
        }
        Ok(())
    }

    async fn current_token(&self) -> Result<Option<String>, ProviderError> {
        let request = match &self.credentials {
            Credentials::Anonymous => return Ok(None),
            Credentials::Static(token) => return Ok(Some(token.clone())),
            Credentials::Login(request) => request,
        };
        // Held across the login so that N concurrent callers cause one login.
        let mut state = self.token.lock().await;
        match token::plan(state.as_ref(), Instant::now(), true) {
            TokenAction::Use => {}
            TokenAction::Renew => {
                if let Some(current) = state.as_mut() {
                    match self.renew(current).await {
                        Ok(lease) => current.lease = lease,
                        Err(e) => {
                            tracing::info!(store = %self.store, error = %e.chain(), "vault token renewal failed; logging in again");
                            *state = Some(self.login(request).await?);
                        }
                    }
                }
            }
            TokenAction::Login => *state = Some(self.login(request).await?),
        }
        Ok(state.as_ref().map(|s| s.token.clone()))
    }

    async fn login(&self, request: &LoginRequest) -> Result<TokenState, ProviderError> {
        let call = Call::new(Method::POST, &request.path, call::LOGIN)
            .body(request.body.clone())
            .namespace(self.auth_namespace.as_deref());
        let answer = self.transport.send(&call, None).await.map_err(|e| {
            // Vault answers bad credentials with 400 and an unknown mount with 404; neither
            // may read as "the secret does not exist".
            let kind = match e.kind() {
                ErrorKind::InvalidRequest => ErrorKind::Auth,
                ErrorKind::NotFound => ErrorKind::InvalidStore,
                other => other,
            };
            ProviderError::new(
                kind,
                format!("{}: {} login failed", self.store, request.method),
            )
            .with_source(e)
        })?;
        let auth = answer.as_ref().and_then(|a| a.get("auth"));
        let token = auth
            .and_then(|a| a.get("client_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::auth(format!(
                    "{}: {} login answered without a token",
                    self.store, request.method
                ))
            })?;
        let lease = auth.map_or(Lease::Unlimited, |a| {
            Lease::from_auth(a, Instant::now(), None)
        });
        tracing::debug!(store = %self.store, method = request.method, ?lease, "logged in to vault");
        Ok(TokenState {
            token: token.to_owned(),
            lease,
        })
    }

    async fn renew(&self, current: &TokenState) -> Result<Lease, ProviderError> {
        let login_ttl = match current.lease {
            Lease::Expiring { login_ttl, .. } => Some(login_ttl),
            Lease::Unlimited => None,
        };
        let call = Call::new(Method::POST, "auth/token/renew-self", call::RENEW_SELF)
            .body(json!({}))
            .namespace(self.auth_namespace.as_deref());
        let answer = self.transport.send(&call, Some(&current.token)).await?;
        let auth = answer
            .as_ref()
            .and_then(|a| a.get("auth"))
            .ok_or_else(|| ProviderError::unavailable("renew-self answered without auth"))?;
        Ok(Lease::from_auth(auth, Instant::now(), login_ttl))
    }

    /// Drops `dead` so the next request logs in again (unless another caller already did).
    async fn forget_token(&self, dead: &str) {
        let mut state = self.token.lock().await;
        if state.as_ref().is_some_and(|s| s.token == dead) {
            *state = None;
        }
    }

    async fn lookup_self(&self, token: Option<&str>) -> Result<Value, ProviderError> {
        let call = Call::new(Method::GET, "auth/token/lookup-self", call::LOOKUP_SELF)
            .namespace(self.auth_namespace.as_deref());
        let answer = self.transport.send(&call, token).await?;
        Ok(answer
            .and_then(|mut a| a.get_mut("data").map(Value::take))
            .unwrap_or(Value::Null))
    }

    /// Sends an authenticated request. When Vault refuses a token we logged in for, one
    /// `lookup-self` tells a dead token (revoked, expired early) from a policy that forbids
    /// the path: a dead token is replaced by a new login and the request is sent once more.
    pub(crate) async fn request(&self, call: &Call<'_>) -> Result<Option<Value>, ProviderError> {
        let token = self.current_token().await?;
        match self.transport.send(call, token.as_deref()).await {
            Err(e)
                if e.kind() == ErrorKind::Auth
                    && matches!(self.credentials, Credentials::Login(_)) =>
            {
                let Some(dead) = token else { return Err(e) };
                match self.lookup_self(Some(&dead)).await {
                    Err(lookup) if lookup.kind() == ErrorKind::Auth => {
                        tracing::info!(store = %self.store, "vault token was refused; logging in again");
                        self.forget_token(&dead).await;
                        let fresh = self.current_token().await?;
                        self.transport.send(call, fresh.as_deref()).await
                    }
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    // ----- reads --------------------------------------------------------------------------

    /// A key's data (an object), from the cache or one shared request.
    async fn read_data(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Arc<Value>, ProviderError> {
        let path = self.layout.data_path(key);
        let slot = ReadKey {
            path: path.clone(),
            version: version.map(str::to_owned),
        };
        self.reads
            .get(slot, || self.fetch_data(key, &path, version))
            .await
    }

    /// A key's data, always from Vault (writes decide on it).
    async fn fetch_data(
        &self,
        key: &str,
        path: &str,
        version: Option<&str>,
    ) -> Result<Value, ProviderError> {
        let mut call = Call::new(Method::GET, path, call::READ_SECRET_DATA);
        if let Some(v) = version.filter(|_| self.layout.is_v2()) {
            call = call.query("version", v);
        }
        let answer = match self.request(&call).await {
            Ok(Some(answer)) => answer,
            Ok(None) => return Err(not_found(key, version)),
            Err(e) if e.is_not_found() => return Err(not_found(key, version)),
            Err(e) => return Err(e),
        };
        let data = answer.get("data");
        let data = if self.layout.is_v2() {
            data.and_then(|d| d.get("data")).ok_or_else(|| {
                ProviderError::invalid_request(format!(
                    "{path}: the answer has no data.data field; is the mount KV version 2?"
                ))
            })?
        } else {
            data.unwrap_or(&Value::Null)
        };
        match data {
            Value::Object(_) => Ok(data.clone()),
            // A deleted KV v2 version answers with `data: null`.
            Value::Null => Err(not_found(key, version)),
            _ => Err(ProviderError::invalid_request(format!(
                "{path}: the secret's data is not a JSON object"
            ))),
        }
    }

    /// A key's metadata answer (`data` of `GET <mount>/metadata/<key>`), cached like data.
    async fn read_metadata(&self, key: &str) -> Result<Arc<Value>, ProviderError> {
        let path = self.layout.metadata_path(key)?;
        let slot = ReadKey {
            path: path.clone(),
            version: None,
        };
        self.reads
            .get(slot, || self.fetch_metadata(key, &path))
            .await
    }

    async fn fetch_metadata(&self, key: &str, path: &str) -> Result<Value, ProviderError> {
        let call = Call::new(Method::GET, path, call::READ_SECRET_DATA);
        match self.request(&call).await {
            Ok(Some(mut answer)) => Ok(answer
                .get_mut("data")
                .map(Value::take)
                .unwrap_or(Value::Null)),
            Ok(None) => Err(not_found(key, None)),
            Err(e) if e.is_not_found() => Err(not_found(key, None)),
            Err(e) => Err(e),
        }
    }

    /// The keys under a LIST root, recursively, as remote keys (`prefix` + name).
    async fn list_keys(&self, root: &str, prefix: &str) -> Result<Vec<String>, ProviderError> {
        let mut keys = Vec::new();
        let mut pending = vec![(root.to_owned(), prefix.to_owned())];
        while let Some((path, prefix)) = pending.pop() {
            let slot = ReadKey {
                path: list_slot(&path),
                version: None,
            };
            let listed = self
                .reads
                .get(slot, || async {
                    let call =
                        Call::new(Method::GET, &path, call::LIST_SECRETS).query("list", "true");
                    match self.request(&call).await {
                        Ok(answer) => Ok(answer.unwrap_or(Value::Null)),
                        // Nothing under this path.
                        Err(e) if e.is_not_found() => Ok(Value::Null),
                        Err(e) => Err(e),
                    }
                })
                .await?;
            let names = listed
                .get("data")
                .and_then(|d| d.get("keys"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                .unwrap_or_default();
            for name in names {
                match name.strip_suffix('/') {
                    Some(dir) => pending.push((format!("{path}/{dir}"), format!("{prefix}{name}"))),
                    None => keys.push(format!("{prefix}{name}")),
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Forgets cached answers for a key after a write.
    fn invalidate(&self, key: &str) {
        self.reads.invalidate(&self.layout.data_path(key));
        if let Ok(meta) = self.layout.metadata_path(key) {
            self.reads.invalidate(&meta);
        }
        self.reads
            .invalidate_where(|path| path.ends_with(LIST_SUFFIX));
    }

    async fn secret_fields(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Option<Map<String, Value>>, ProviderError> {
        if remote.metadata_policy == Some(MetadataPolicy::Fetch) {
            if !self.layout.is_v2() {
                return Err(ProviderError::invalid_request(
                    "metadataPolicy Fetch needs a KV version 2 store",
                ));
            }
            let meta = metadata_map(&*self.read_metadata(&remote.key).await?);
            if meta.is_empty() {
                return Ok(None);
            }
            return Ok(Some(
                meta.into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ));
        }
        let data = self
            .read_data(
                &remote.key,
                remote.version.as_deref().filter(|v| !v.is_empty()),
            )
            .await?;
        Ok(Some(data.as_object().cloned().unwrap_or_default()))
    }

    // ----- writes -------------------------------------------------------------------------

    async fn write(&self, path: &str, body: Value) -> Result<(), ProviderError> {
        let call = Call::new(Method::POST, path, call::WRITE_SECRET_DATA).body(body);
        self.request(&call).await.map(|_| ())
    }

    async fn delete(&self, path: &str) -> Result<(), ProviderError> {
        let call = Call::new(Method::DELETE, path, call::DELETE_SECRET);
        match self.request(&call).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The current data of a key for a write decision, `None` when it does not exist.
    async fn current_data(&self, key: &str) -> Result<Option<Map<String, Value>>, ProviderError> {
        let path = self.layout.data_path(key);
        match self.fetch_data(key, &path, None).await {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn current_metadata(&self, key: &str) -> Result<Option<Value>, ProviderError> {
        let path = self.layout.metadata_path(key)?;
        match self.fetch_metadata(key, &path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn push_v1(&self, request: &PushRequest, key: &str) -> Result<(), ProviderError> {
        let mut existing = self.current_data(key).await?;
        if let Some(data) = existing.as_mut() {
            let managed = data
                .get(CUSTOM_METADATA)
                .and_then(|m| m.get(MANAGED_BY_KEY))
                .and_then(Value::as_str)
                == Some(MANAGED_BY_VALUE);
            if !managed {
                return Err(not_managed(key));
            }
            data.remove(CUSTOM_METADATA);
        }
        let (mut merged, changed) = reconcile_data(existing.as_ref(), request)?;
        if existing.is_some() && !changed {
            return Ok(());
        }
        // KV v1 has no metadata; upstream keeps the ownership mark inside the data.
        merged.insert(
            CUSTOM_METADATA.to_owned(),
            json!({ MANAGED_BY_KEY: MANAGED_BY_VALUE }),
        );
        self.write(&self.layout.data_path(key), Value::Object(merged))
            .await
    }

    async fn push_v2(&self, request: &PushRequest, key: &str) -> Result<(), ProviderError> {
        let existing = self.current_data(key).await?;
        let (merged, data_changed) = reconcile_data(existing.as_ref(), request)?;
        // Metadata exists even when the latest version was deleted; ownership lives there.
        let metadata = self.current_metadata(key).await?;
        let remote_custom = metadata.as_ref().map(custom_metadata);
        let wanted = PushMetadata::parse(request.metadata.as_ref())?;
        let (custom, metadata_changed) = reconcile_metadata(key, remote_custom.as_ref(), &wanted)?;
        if !data_changed && !metadata_changed && existing.is_some() {
            return Ok(());
        }
        if metadata_changed {
            // Written first so a new secret carries its ownership mark before its data.
            self.write(
                &self.layout.metadata_path(key)?,
                json!({ CUSTOM_METADATA: custom }),
            )
            .await?;
        }
        if data_changed || existing.is_none() {
            let mut body = json!({ "data": merged });
            if self.check_and_set {
                let version = metadata
                    .as_ref()
                    .and_then(|m| m.get("current_version"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                body["options"] = json!({ "cas": version });
            }
            self.write(&self.layout.data_path(key), body).await?;
        }
        Ok(())
    }
}

const LIST_SUFFIX: &str = "?list";

fn list_slot(path: &str) -> String {
    format!("{path}{LIST_SUFFIX}")
}

fn not_managed(key: &str) -> ProviderError {
    ProviderError::invalid_request(format!(
        "secret {key:?} exists and is not managed by external-secrets (no custom_metadata {MANAGED_BY_KEY}={MANAGED_BY_VALUE}); refusing to overwrite it"
    ))
}

/// The custom metadata of a metadata answer.
fn custom_metadata(meta: &Value) -> BTreeMap<String, String> {
    meta.get(CUSTOM_METADATA)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream's `readSecretMetadata`: the system keys it exposes plus the custom metadata.
fn metadata_map(meta: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for key in SYSTEM_METADATA_KEYS {
        match meta.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                out.insert(key.to_owned(), s.clone());
            }
            Some(other) => {
                out.insert(key.to_owned(), other.to_string());
            }
        }
    }
    out.extend(custom_metadata(meta));
    out
}

/// The data to write and whether it differs from what Vault holds (upstream's
/// `reconcileData`): with a property, the value is merged into the existing data as a string;
/// without one, the value must be a JSON object and replaces the data.
fn reconcile_data(
    existing: Option<&Map<String, Value>>,
    request: &PushRequest,
) -> Result<(Map<String, Value>, bool), ProviderError> {
    match request.remote.property.as_deref().filter(|p| !p.is_empty()) {
        Some(property) => {
            let value = String::from_utf8_lossy(&request.value).into_owned();
            let mut merged = existing.cloned().unwrap_or_default();
            let unchanged = merged.get(property).and_then(Value::as_str) == Some(value.as_str());
            merged.insert(property.to_owned(), Value::String(value));
            Ok((merged, !unchanged))
        }
        None => {
            let incoming: Map<String, Value> =
                serde_json::from_slice(&request.value).map_err(|e| {
                    ProviderError::invalid_request(format!(
                        "the value pushed to {:?} without a property must be a JSON object",
                        request.remote.remote_key
                    ))
                    .with_source(e)
                })?;
            let changed = existing != Some(&incoming);
            Ok((incoming, changed))
        }
    }
}

/// The Vault part of a PushSecret's `metadata` (upstream's `PushSecretMetadata` envelope with
/// `spec.customMetadata` and `spec.mergePolicy`).
#[derive(Debug, Default, PartialEq)]
struct PushMetadata {
    custom: BTreeMap<String, String>,
    replace: bool,
}

impl PushMetadata {
    fn parse(metadata: Option<&Value>) -> Result<Self, ProviderError> {
        let Some(metadata) = metadata.filter(|m| !m.is_null()) else {
            return Ok(Self::default());
        };
        if let Some(kind) = metadata.get("kind").and_then(Value::as_str)
            && kind != "PushSecretMetadata"
        {
            return Err(ProviderError::invalid_request(format!(
                "push metadata has kind {kind:?}, expected PushSecretMetadata"
            )));
        }
        let spec = metadata.get("spec").unwrap_or(&Value::Null);
        let custom = match spec.get("customMetadata") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(ProviderError::invalid_request(format!(
                        "push metadata spec.customMetadata.{k} must be a string"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ProviderError::invalid_request(
                    "push metadata spec.customMetadata must be an object of strings",
                ));
            }
        };
        let replace = match spec.get("mergePolicy").and_then(Value::as_str) {
            None | Some("" | "Merge") => false,
            Some("Replace") => true,
            Some(other) => {
                return Err(ProviderError::invalid_request(format!(
                    "unsupported merge policy {other:?}, must be one of: Merge, Replace"
                )));
            }
        };
        Ok(Self { custom, replace })
    }
}

/// The custom metadata to write and whether it changes (upstream's `reconcileKV2Metadata`,
/// comparing custom metadata only: upstream also folds the system keys into it).
fn reconcile_metadata(
    key: &str,
    remote: Option<&BTreeMap<String, String>>,
    wanted: &PushMetadata,
) -> Result<(BTreeMap<String, String>, bool), ProviderError> {
    let mut desired = wanted.custom.clone();
    desired.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned());
    let Some(remote) = remote else {
        return Ok((desired, true));
    };
    if remote.get(MANAGED_BY_KEY).map(String::as_str) != Some(MANAGED_BY_VALUE) {
        return Err(not_managed(key));
    }
    let merged = if wanted.replace {
        desired
    } else {
        let mut m = remote.clone();
        m.extend(desired);
        m
    };
    let changed = &merged != remote;
    Ok((merged, changed))
}

#[async_trait]
impl SecretsClient for VaultClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        let Some(data) = self.secret_fields(remote).await? else {
            // metadataPolicy Fetch on a secret without metadata: an empty value, as upstream.
            return Ok(Vec::new());
        };
        match remote.property.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(kv::go_json(&Value::Object(data))),
            Some(property) => kv::select(&data, property)?
                .map(|v| kv::value_bytes(&v))
                .ok_or_else(|| {
                    ProviderError::missing_property(format!(
                        "secret {:?} has no property {property:?}",
                        remote.key
                    ))
                }),
        }
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let no_property = remote.property.as_deref().is_none_or(str::is_empty);
        let object = if no_property {
            match self.secret_fields(remote).await? {
                Some(data) => data,
                None => return Ok(SecretData::new()),
            }
        } else {
            // Upstream: the property's value (a nested object, or a string holding JSON)
            // decoded as an object.
            let bytes = self.get_secret(remote).await?;
            serde_json::from_slice::<Map<String, Value>>(&bytes).map_err(|e| {
                ProviderError::invalid_request(format!(
                    "property {:?} of {:?} is not a JSON object",
                    remote.property.as_deref().unwrap_or_default(),
                    remote.key
                ))
                .with_source(e)
            })?
        };
        Ok(object
            .iter()
            .map(|(k, v)| (k.clone(), kv::value_bytes(v)))
            .collect())
    }

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        let matcher = FindMatcher::new(find)?;
        if matcher.has_tags() && !self.layout.is_v2() {
            return Err(ProviderError::invalid_request(
                "find by tags needs a KV version 2 store (tags are custom metadata)",
            ));
        }
        let (root, prefix) = self.layout.list_root(matcher.path())?;
        let keys = self.list_keys(&root, &prefix).await?;
        let matcher = &matcher;
        let results: Vec<Result<Option<(String, Vec<u8>)>, ProviderError>> =
            futures::stream::iter(keys.into_iter().filter(|k| matcher.matches_name(k)))
                .map(|key| async move {
                    if matcher.has_tags() {
                        let meta = match self.read_metadata(&key).await {
                            Ok(meta) => metadata_map(&meta),
                            Err(e) if e.is_not_found() => return Ok(None),
                            Err(e) => return Err(e),
                        };
                        if !matcher.matches_tags(&meta) {
                            return Ok(None);
                        }
                    }
                    let remote = ExternalSecretDataRemoteRef {
                        key: key.clone(),
                        ..Default::default()
                    };
                    match self.get_secret(&remote).await {
                        Ok(value) => Ok(Some((key, value))),
                        // Listed but deleted (a KV v2 secret whose latest version is deleted).
                        Err(e) if e.is_not_found() => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .buffer_unordered(FIND_CONCURRENCY)
                .collect()
                .await;
        let mut out = SecretData::new();
        for r in results {
            if let Some((k, v)) = r? {
                out.insert(k, v);
            }
        }
        Ok(out)
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let key = request.remote.remote_key.as_str();
        if key.is_empty() {
            return Err(ProviderError::invalid_request("the remote key is empty"));
        }
        let result = if self.layout.is_v2() {
            self.push_v2(request, key).await
        } else {
            self.push_v1(request, key).await
        };
        self.invalidate(key);
        result
    }

    async fn delete_secret(&self, remote: &PushRemoteRef) -> Result<(), ProviderError> {
        let key = remote.remote_key.as_str();
        let Some(mut data) = self.current_data(key).await? else {
            return Ok(());
        };
        let managed = if self.layout.is_v2() {
            self.current_metadata(key)
                .await?
                .map(|m| custom_metadata(&m))
                .and_then(|m| m.get(MANAGED_BY_KEY).cloned())
        } else {
            data.get(CUSTOM_METADATA)
                .and_then(|m| m.get(MANAGED_BY_KEY))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if managed.as_deref() != Some(MANAGED_BY_VALUE) {
            // Upstream leaves secrets it does not own alone, without an error.
            tracing::info!(store = %self.store, key, "not deleting a secret external-secrets does not manage");
            return Ok(());
        }
        let result = async {
            if let Some(property) = remote.property.as_deref().filter(|p| !p.is_empty()) {
                data.remove(property);
                if !self.layout.is_v2() && data.len() == 1 && data.contains_key(CUSTOM_METADATA) {
                    data.remove(CUSTOM_METADATA);
                }
                if !data.is_empty() {
                    let body = if self.layout.is_v2() {
                        json!({ "data": data })
                    } else {
                        Value::Object(data)
                    };
                    return self.write(&self.layout.data_path(key), body).await;
                }
            }
            if self.layout.is_v2() {
                // Deleting the metadata deletes every version (upstream deletes the latest
                // version first, which this makes redundant).
                self.delete(&self.layout.metadata_path(key)?).await
            } else {
                self.delete(&self.layout.data_path(key)).await
            }
        }
        .await;
        self.invalidate(key);
        result
    }

    async fn secret_exists(&self, remote: &PushRemoteRef) -> Result<bool, ProviderError> {
        let Some(data) = self.current_data(&remote.remote_key).await? else {
            return Ok(false);
        };
        match remote.property.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(true),
            Some(property) => Ok(kv::select(&data, property)?.is_some()),
        }
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        if matches!(self.credentials, Credentials::Anonymous) {
            // Nothing to check without a token; upstream reports such stores as Unknown.
            return Ok(ValidationResult::Unknown);
        }
        let token = self.current_token().await?;
        self.lookup_self(token.as_deref()).await.map_err(|e| {
            ProviderError::new(e.kind(), format!("{}: token lookup failed", self.store))
                .with_source(e)
        })?;
        Ok(ValidationResult::Ready)
    }

    async fn close(&self) -> Result<(), ProviderError> {
        // Revoke what we logged in for; a static token belongs to whoever made it.
        let token = self.token.lock().await.take();
        if let (Credentials::Login(_), Some(state)) = (&self.credentials, token) {
            let call = Call::new(Method::POST, "auth/token/revoke-self", call::REVOKE_SELF)
                .body(json!({}))
                .namespace(self.auth_namespace.as_deref());
            if let Err(e) = self.transport.send(&call, Some(&state.token)).await {
                tracing::debug!(store = %self.store, error = %e.chain(), "vault token revocation failed");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(value: &str, property: Option<&str>) -> PushRequest {
        PushRequest {
            value: value.as_bytes().to_vec(),
            remote: PushRemoteRef {
                remote_key: "k".into(),
                property: property.map(Into::into),
            },
            ..Default::default()
        }
    }

    #[test]
    fn reconcile_data_merges_properties_and_spots_no_change() {
        let existing: Map<String, Value> = json!({"a": "1", "b": "2"}).as_object().unwrap().clone();
        let (merged, changed) = reconcile_data(Some(&existing), &push("1", Some("a"))).unwrap();
        assert!(!changed);
        assert_eq!(merged, existing);
        let (merged, changed) = reconcile_data(Some(&existing), &push("3", Some("c"))).unwrap();
        assert!(changed);
        assert_eq!(merged["c"], "3");
        assert_eq!(merged["a"], "1");
        let (_, changed) =
            reconcile_data(Some(&existing), &push(r#"{"b":"2","a":"1"}"#, None)).unwrap();
        assert!(!changed);
        assert!(reconcile_data(None, &push("not json", None)).is_err());
    }

    #[test]
    fn reconcile_metadata_claims_new_secrets_and_refuses_foreign_ones() {
        let wanted = PushMetadata::default();
        let (custom, changed) = reconcile_metadata("k", None, &wanted).unwrap();
        assert!(changed);
        assert_eq!(custom[MANAGED_BY_KEY], MANAGED_BY_VALUE);
        let foreign: BTreeMap<String, String> = [("owner".to_owned(), "me".to_owned())].into();
        assert_eq!(
            reconcile_metadata("k", Some(&foreign), &wanted)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidRequest
        );
        let (_, changed) = reconcile_metadata("k", Some(&custom), &wanted).unwrap();
        assert!(!changed);
    }

    #[test]
    fn push_metadata_parses_upstream_envelope() {
        let m = PushMetadata::parse(Some(&json!({
            "apiVersion": "kubernetes.external-secrets.io/v1alpha1",
            "kind": "PushSecretMetadata",
            "spec": {"customMetadata": {"team": "a"}, "mergePolicy": "Replace"}
        })))
        .unwrap();
        assert!(m.replace);
        assert_eq!(m.custom["team"], "a");
        assert!(PushMetadata::parse(Some(&json!({"spec": {"mergePolicy": "Nope"}}))).is_err());
        assert_eq!(PushMetadata::parse(None).unwrap(), PushMetadata::default());
    }

    #[test]
    fn metadata_map_has_system_and_custom_keys() {
        let m = metadata_map(&json!({
            "created_time": "2026-01-01T00:00:00Z",
            "current_version": 3,
            "delete_version_after": "0s",
            "custom_metadata": {"env": "prod"},
            "versions": {}
        }));
        assert_eq!(m["current_version"], "3");
        assert_eq!(m["env"], "prod");
        assert!(!m.contains_key("versions"));
    }
}
