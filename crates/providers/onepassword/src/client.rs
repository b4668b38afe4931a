//! The Connect client of one store: items by title or ID across the store's vaults in
//! priority order, fields and files, `find`, push, delete and exists.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, MetadataPolicy};
use eso_provider::cache::ReadCache;
use eso_provider::find::FindMatcher;
use eso_provider::{
    ErrorKind, ProviderError, PushRemoteRef, PushRequest, SecretData, SecretsClient,
    ValidationResult,
};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::http::{Call, Http, HttpError};
use crate::item::{self, DEFAULT_LABEL, Target};
use crate::metrics::{self, call};

/// An item found in a vault.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) vault_id: String,
    pub(crate) item: Arc<Value>,
}

/// The Connect client of one store.
pub struct OnePasswordClient {
    pub(crate) store: String,
    pub(crate) http: Http,
    pub(crate) base: Url,
    pub(crate) token: String,
    /// The configured vaults (names or IDs) in search order, with their configured names.
    pub(crate) vaults: Vec<String>,
    pub(crate) vault_ids: ReadCache<String, String>,
    pub(crate) items: ReadCache<String, Option<Found>>,
    pub(crate) files: ReadCache<String, Arc<Vec<u8>>>,
    pub(crate) settle_timeout: Duration,
    pub(crate) settle_interval: Duration,
}

impl std::fmt::Debug for OnePasswordClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("OnePasswordClient")
            .field("store", &self.store)
            .field("base", &self.base.as_str())
            .field("vaults", &self.vaults)
            .finish_non_exhaustive()
    }
}

/// The PushSecret metadata upstream reads: `spec.vault` and `spec.tags`.
#[derive(Debug, Default, PartialEq, Eq)]
struct PushMetadata {
    vault: Option<String>,
    tags: Option<Vec<String>>,
}

fn parse_metadata(metadata: Option<&Value>, store: &str) -> Result<PushMetadata, ProviderError> {
    let Some(m) = metadata.filter(|m| !m.is_null()) else {
        return Ok(PushMetadata::default());
    };
    let bad = |what: &str| ProviderError::invalid_request(format!("{store}: push metadata {what}"));
    if let Some(kind) = m.get("kind").and_then(Value::as_str)
        && kind != "PushSecretMetadata"
    {
        return Err(bad(&format!(
            "has kind {kind:?}, expected PushSecretMetadata"
        )));
    }
    let Some(spec) = m.get("spec") else {
        return Ok(PushMetadata::default());
    };
    let vault = match spec.get("vault") {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) => Some(v.clone()).filter(|v| !v.is_empty()),
        Some(_) => return Err(bad("spec.vault must be a string")),
    };
    let tags = match spec.get("tags") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("spec.tags must be a list of strings"))?,
        ),
        Some(_) => return Err(bad("spec.tags must be a list of strings")),
    };
    Ok(PushMetadata { vault, tags })
}

/// A failed call: ours (no URL) or Connect's answer.
enum Failure {
    Local(ProviderError),
    Http(HttpError),
}

impl Failure {
    fn is_not_found(&self) -> bool {
        matches!(self, Self::Http(e) if e.kind() == ErrorKind::NotFound)
    }
}

impl OnePasswordClient {
    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| {
                ProviderError::invalid_store(format!(
                    "{}: connectHost cannot hold a path",
                    self.store
                ))
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn send(&self, label: &'static str, call: Call) -> Result<Value, Failure> {
        let result = self.http.json(&call.bearer(&self.token)).await;
        metrics::observe(label, &result);
        result.map_err(Failure::Http)
    }

    fn api_error(&self, f: Failure, what: String) -> ProviderError {
        let e = match f {
            Failure::Local(local) => return local,
            Failure::Http(e) => e,
        };
        let kind = e.kind();
        e.into_provider_error(kind, what)
    }

    /// The ID of a configured vault: itself when it has an ID's shape (checked with a read),
    /// else the one vault with that name. A vault that cannot be found is a store
    /// misconfiguration, never a missing secret.
    async fn vault_id(&self, vault: &str) -> Result<String, ProviderError> {
        self.vault_ids
            .get_within(vault.to_owned(), Duration::from_secs(300), || async {
                let missing = |detail: String| {
                    ProviderError::invalid_store(format!(
                        "{}: 1Password vault {vault:?} {detail}",
                        self.store
                    ))
                };
                if item::is_op_id(vault) {
                    let url = self.url(&["v1", "vaults", vault])?;
                    return match self
                        .send(call::GET_VAULT, Call::new(Method::GET, url))
                        .await
                    {
                        Ok(_) => Ok(vault.to_owned()),
                        Err(f) if f.is_not_found() => Err(missing("does not exist".into())),
                        Err(f) => Err(self.api_error(
                            f,
                            format!("{}: reading 1Password vault {vault:?} failed", self.store),
                        )),
                    };
                }
                let mut url = self.url(&["v1", "vaults"])?;
                url.query_pairs_mut()
                    .append_pair("filter", &format!("name eq \"{vault}\""));
                let list = self
                    .send(call::GET_VAULTS_BY_TITLE, Call::new(Method::GET, url))
                    .await
                    .map_err(|f| {
                        self.api_error(
                            f,
                            format!("{}: finding 1Password vault {vault:?} failed", self.store),
                        )
                    })?;
                let ids: Vec<&str> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.get("id").and_then(Value::as_str))
                    .collect();
                match ids.as_slice() {
                    [one] => Ok((*one).to_owned()),
                    [] => Err(missing("does not exist or the token may not use it".into())),
                    many => Err(missing(format!("is the name of {} vaults", many.len()))),
                }
            })
            .await
    }

    async fn get_item(&self, vault_id: &str, item_id: &str) -> Result<Value, Failure> {
        let url = self
            .url(&["v1", "vaults", vault_id, "items", item_id])
            .map_err(Failure::Local)?;
        self.send(call::GET_ITEM, Call::new(Method::GET, url)).await
    }

    /// The item `key` names: by ID when it has an ID's shape (falling back to its title, as
    /// the Connect SDKs do), else by title, in each vault in priority order; the first vault
    /// holding it wins. Several items with that title in one vault is an error.
    async fn lookup(&self, key: &str) -> Result<Option<Found>, ProviderError> {
        for vault in &self.vaults {
            let vault_id = self.vault_id(vault).await?;
            let what = || {
                format!(
                    "{}: reading 1Password item {key:?} in vault {vault:?} failed",
                    self.store
                )
            };
            if item::is_op_id(key) {
                match self.get_item(&vault_id, key).await {
                    Ok(item) => {
                        return Ok(Some(Found {
                            vault_id,
                            item: Arc::new(item),
                        }));
                    }
                    Err(f) if f.is_not_found() => {}
                    Err(f) => return Err(self.api_error(f, what())),
                }
            }
            let mut url = self.url(&["v1", "vaults", &vault_id, "items"])?;
            url.query_pairs_mut()
                .append_pair("filter", &format!("title eq \"{key}\""));
            let list = self
                .send(call::GET_ITEMS_BY_TITLE, Call::new(Method::GET, url))
                .await
                .map_err(|f| self.api_error(f, what()))?;
            let ids: Vec<&str> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("id").and_then(Value::as_str))
                .collect();
            match ids.as_slice() {
                [] => {}
                [id] => {
                    let item = self
                        .get_item(&vault_id, id)
                        .await
                        .map_err(|f| self.api_error(f, what()))?;
                    return Ok(Some(Found {
                        vault_id,
                        item: Arc::new(item),
                    }));
                }
                many => {
                    return Err(ProviderError::invalid_request(format!(
                        "{}: expected one 1Password item titled {key:?} in vault {vault:?}, got {}",
                        self.store,
                        many.len()
                    )));
                }
            }
        }
        Ok(None)
    }

    async fn find_item(&self, key: &str) -> Result<Found, ProviderError> {
        let found = self
            .items
            .get(key.to_owned(), || async { self.lookup(key).await })
            .await?;
        found.ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: 1Password item {key:?} does not exist in vaults {:?}",
                    self.store, self.vaults
                ),
            )
        })
    }

    async fn file_content(&self, file: &item::FileRef) -> Result<Arc<Vec<u8>>, ProviderError> {
        self.files
            .get(file.content_path.clone(), || async {
                let mut url = self.base.clone();
                url.set_path(&file.content_path);
                let result = self
                    .http
                    .send(&Call::new(Method::GET, url).bearer(&self.token))
                    .await
                    .map(|answer| answer.body.to_vec());
                metrics::observe(call::GET_FILE_CONTENT, &result);
                result.map(Arc::new).map_err(|e| {
                    self.api_error(
                        Failure::Http(e),
                        format!(
                            "{}: reading 1Password file {:?} failed",
                            self.store, file.name
                        ),
                    )
                })
            })
            .await
    }

    fn check_ref(&self, remote: &ExternalSecretDataRemoteRef) -> Result<(), ProviderError> {
        if remote.version.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(ProviderError::unsupported(format!(
                "{}: 'remoteRef.version' is not implemented in the 1Password provider",
                self.store
            )));
        }
        if remote.metadata_policy == Some(MetadataPolicy::Fetch) {
            return Err(ProviderError::unsupported(format!(
                "{}: 1Password items have no metadata to fetch (metadataPolicy: Fetch)",
                self.store
            )));
        }
        Ok(())
    }

    fn field_error(&self, item: &Value, label: &str, n: usize) -> ProviderError {
        ProviderError::invalid_request(format!(
            "{}: expected one 1Password item field labeled {label:?} in {:?}, got {n}",
            self.store,
            item::title(item)
        ))
    }

    /// The fields and files of an item for `find`: files first, then fields; a key already
    /// taken (by an earlier item, vault or file) is kept.
    async fn collect(
        &self,
        item: &Value,
        matcher: &FindMatcher,
        out: &mut SecretData,
    ) -> Result<(), ProviderError> {
        for file in item::files(item) {
            if matcher.matches_name(&file.name) && !out.contains_key(&file.name) {
                let content = self.file_content(&file).await?;
                out.insert(file.name.clone(), content.to_vec());
            }
        }
        for field in item::fields(item) {
            let label = item::label(field);
            let n = item::count_label(item, label);
            if n != 1 {
                return Err(self.field_error(item, label, n));
            }
            if matcher.matches_name(label) && !out.contains_key(label) {
                out.insert(label.to_owned(), item::value(field).as_bytes().to_vec());
            }
        }
        Ok(())
    }

    fn forget(&self, key: &str) {
        self.items.invalidate_where(|k| k == key);
    }

    /// Waits until a lookup of `key` satisfies `done` (Connect answers a write before its
    /// cache holds it; upstream waits the same way).
    async fn settle(&self, key: &str, done: impl Fn(&Value) -> bool) -> Result<(), ProviderError> {
        let deadline = tokio::time::Instant::now() + self.settle_timeout;
        loop {
            self.forget(key);
            let last = match self.lookup(key).await {
                Ok(Some(f)) if done(&f.item) => return Ok(()),
                Ok(_) => None,
                Err(e) => Some(e),
            };
            if tokio::time::Instant::now() >= deadline {
                let mut err = ProviderError::unavailable(format!(
                    "{}: 1Password item {key:?} did not show the pushed value within {:?}",
                    self.store, self.settle_timeout
                ));
                if let Some(e) = last {
                    err = err.with_source(e);
                }
                return Err(err);
            }
            tokio::time::sleep(self.settle_interval).await;
        }
    }

    async fn write(
        &self,
        label: &'static str,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
        what: String,
    ) -> Result<(), ProviderError> {
        let url = self.url(segments)?;
        let mut call = Call::new(method, url);
        if let Some(b) = body {
            call = call.json(b);
        }
        self.send(label, call)
            .await
            .map(|_| ())
            .map_err(|f| self.api_error(f, what))
    }
}

#[async_trait]
impl SecretsClient for OnePasswordClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        self.check_ref(remote)?;
        let found = self.find_item(&remote.key).await?;
        let item = &found.item;
        match item::target(
            item::category(item),
            remote.property.as_deref().unwrap_or_default(),
        ) {
            Target::File(name) => {
                // The first file when no name is given.
                let file = item::files(item)
                    .into_iter()
                    .find(|f| name.is_empty() || f.name == name)
                    .ok_or_else(|| {
                        ProviderError::invalid_request(format!(
                            "{}: 1Password item {:?} has no file {name:?}",
                            self.store,
                            item::title(item)
                        ))
                    })?;
                Ok(self.file_content(&file).await?.to_vec())
            }
            Target::Field(label) => {
                let label = if label.is_empty() {
                    DEFAULT_LABEL
                } else {
                    &label
                };
                let n = item::count_label(item, label);
                if n != 1 {
                    return Err(self.field_error(item, label, n));
                }
                let field = item::fields(item)
                    .iter()
                    .find(|f| item::label(f) == label)
                    .map(item::value)
                    .unwrap_or_default();
                Ok(field.as_bytes().to_vec())
            }
        }
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        self.check_ref(remote)?;
        let found = self.find_item(&remote.key).await?;
        let item = &found.item;
        match item::target(
            item::category(item),
            remote.property.as_deref().unwrap_or_default(),
        ) {
            Target::File(name) => {
                let mut out = BTreeMap::new();
                for file in item::files(item) {
                    if name.is_empty() || file.name == name {
                        let content = self.file_content(&file).await?;
                        out.insert(file.name.clone(), content.to_vec());
                    }
                }
                Ok(out)
            }
            Target::Field(label) => {
                let only = (!label.is_empty()).then_some(label.as_str());
                item::field_map(item, only).map_err(|(l, n)| self.field_error(item, &l, n))
            }
        }
    }

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        let matcher = FindMatcher::new(find)?;
        let mut out = BTreeMap::new();
        for vault in &self.vaults {
            let vault_id = self.vault_id(vault).await?;
            let url = self.url(&["v1", "vaults", &vault_id, "items"])?;
            let list = self
                .send(call::GET_ITEMS, Call::new(Method::GET, url))
                .await
                .map_err(|f| {
                    self.api_error(
                        f,
                        format!("{}: listing 1Password vault {vault:?} failed", self.store),
                    )
                })?;
            for summary in list.as_array().into_iter().flatten() {
                // Upstream compares an item's tags with the keys of `find.tags`.
                let tags = item::tags(summary);
                if !find.tags.keys().all(|k| tags.contains(&k.as_str())) {
                    continue;
                }
                // `find.path` is an item's exact title.
                if find
                    .path
                    .as_deref()
                    .is_some_and(|p| !p.is_empty() && p != item::title(summary))
                {
                    continue;
                }
                let Some(id) = summary.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let full = self.get_item(&vault_id, id).await.map_err(|f| {
                    self.api_error(
                        f,
                        format!(
                            "{}: reading 1Password item {:?} in vault {vault:?} failed",
                            self.store,
                            item::title(summary)
                        ),
                    )
                })?;
                self.collect(&full, &matcher, &mut out).await?;
            }
        }
        Ok(out)
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        if request.secret_key.as_deref().is_none_or(str::is_empty) {
            return Err(ProviderError::invalid_request(format!(
                "{}: 1Password pushes one Secret key at a time; set secretKey",
                self.store
            )));
        }
        let key = request.remote.remote_key.as_str();
        if key.is_empty() {
            return Err(ProviderError::invalid_request(format!(
                "{}: remoteKey is required to push to 1Password",
                self.store
            )));
        }
        let value = String::from_utf8(request.value.clone()).map_err(|e| {
            ProviderError::invalid_request(format!(
                "{}: 1Password fields hold text; the value pushed to {key:?} is not UTF-8",
                self.store
            ))
            .with_source(e)
        })?;
        let meta = parse_metadata(request.metadata.as_ref(), &self.store)?;
        let label = request
            .remote
            .property
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_LABEL.to_owned());
        self.forget(key);
        let existing = match self.find_item(key).await {
            Ok(found) => Some(found),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        match existing {
            None => {
                let vault = match &meta.vault {
                    Some(v) if !self.vaults.contains(v) => {
                        return Err(ProviderError::invalid_request(format!(
                            "{}: push metadata vault {v:?} is not one of the store's vaults",
                            self.store
                        )));
                    }
                    Some(v) => v.clone(),
                    None => self.vaults.first().cloned().ok_or_else(|| {
                        ProviderError::invalid_store(format!("{}: no vaults", self.store))
                    })?,
                };
                let vault_id = self.vault_id(&vault).await?;
                let body = json!({
                    "title": key,
                    "category": "SERVER",
                    "vault": {"id": vault_id},
                    "fields": [item::new_field(&label, &value)],
                    "tags": meta.tags.clone().unwrap_or_default(),
                });
                self.write(
                    call::CREATE_ITEM,
                    Method::POST,
                    &["v1", "vaults", &vault_id, "items"],
                    Some(body),
                    format!(
                        "{}: creating 1Password item {key:?} in vault {vault:?} failed",
                        self.store
                    ),
                )
                .await?;
                self.settle(key, |_| true).await
            }
            Some(found) => {
                let mut item = (*found.item).clone();
                let mut changed = false;
                if let Some(tags) = &meta.tags
                    && item::tags(&item) != tags.iter().map(String::as_str).collect::<Vec<_>>()
                {
                    item["tags"] = json!(tags);
                    changed = true;
                }
                changed |= item::set_field(&mut item, &label, &value)
                    .map_err(|n| self.field_error(&item, &label, n))?;
                if !changed {
                    // Already as wanted: no new item version on every reconcile.
                    return Ok(());
                }
                let id = item
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if let Some(o) = item.as_object_mut() {
                    o.remove("files");
                }
                self.write(
                    call::UPDATE_ITEM,
                    Method::PUT,
                    &["v1", "vaults", &found.vault_id, "items", &id],
                    Some(item),
                    format!("{}: updating 1Password item {key:?} failed", self.store),
                )
                .await?;
                self.settle(key, |i| {
                    item::fields(i)
                        .iter()
                        .any(|f| item::label(f) == label && item::value(f) == value)
                })
                .await
            }
        }
    }

    async fn delete_secret(&self, remote: &PushRemoteRef) -> Result<(), ProviderError> {
        let key = remote.remote_key.as_str();
        self.forget(key);
        let found = match self.find_item(key).await {
            Ok(f) => f,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let label = remote
            .property
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_LABEL);
        let mut item = (*found.item).clone();
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        item::remove_field(&mut item, label).map_err(|n| self.field_error(&item, label, n))?;
        let result = if item::is_empty(&item) {
            let r = self
                .write(
                    call::DELETE_ITEM,
                    Method::DELETE,
                    &["v1", "vaults", &found.vault_id, "items", &id],
                    None,
                    format!("{}: deleting 1Password item {key:?} failed", self.store),
                )
                .await;
            match r {
                Err(e) if e.is_not_found() => Ok(()),
                other => other,
            }
        } else {
            if let Some(o) = item.as_object_mut() {
                o.remove("files");
                if o.get("sections")
                    .and_then(Value::as_array)
                    .is_some_and(|s| {
                        s.len() == 1
                            && s[0]
                                .get("id")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .is_empty()
                    })
                {
                    o.remove("sections");
                }
            }
            self.write(
                call::UPDATE_ITEM,
                Method::PUT,
                &["v1", "vaults", &found.vault_id, "items", &id],
                Some(item),
                format!(
                    "{}: removing field {label:?} from 1Password item {key:?} failed",
                    self.store
                ),
            )
            .await
        };
        self.forget(key);
        result
    }

    async fn secret_exists(&self, remote: &PushRemoteRef) -> Result<bool, ProviderError> {
        let key = remote.remote_key.as_str();
        self.forget(key);
        let found = match self.find_item(key).await {
            Ok(f) => f,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(match remote.property.as_deref().filter(|p| !p.is_empty()) {
            None => true,
            Some(label) => item::count_label(&found.item, label) > 0,
        })
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        for vault in &self.vaults {
            self.vault_id(vault).await?;
        }
        Ok(ValidationResult::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_upstreams_envelope() {
        let m = json!({"apiVersion": "kubernetes.external-secrets.io/v1alpha1", "kind": "PushSecretMetadata", "spec": {"vault": "prod", "tags": ["a", "b"]}});
        assert_eq!(
            parse_metadata(Some(&m), "s").unwrap(),
            PushMetadata {
                vault: Some("prod".into()),
                tags: Some(vec!["a".into(), "b".into()])
            }
        );
        assert_eq!(parse_metadata(None, "s").unwrap(), PushMetadata::default());
        assert!(parse_metadata(Some(&json!({"kind": "Other"})), "s").is_err());
        assert!(parse_metadata(Some(&json!({"spec": {"tags": "a"}})), "s").is_err());
    }
}
