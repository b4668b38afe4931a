//! The Infisical client of one store: reads by key and path, `find`, push, delete and exists
//! over the v3 raw secrets API.

use std::collections::BTreeMap;
use std::sync::Arc;

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

use crate::auth::TokenSource;
use crate::http::{Call, Http, HttpError};
use crate::json_path;
use crate::metrics::{self, call};

/// What a store reads: upstream's `secretsScope`.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) project_slug: String,
    pub(crate) environment: String,
    pub(crate) path: String,
    pub(crate) recursive: bool,
    pub(crate) expand_references: bool,
}

/// (folder, secret name, version).
type ReadKey = (String, String, Option<String>);

/// The Infisical client of one store.
pub struct InfisicalClient {
    pub(crate) store: String,
    pub(crate) http: Http,
    pub(crate) base: Url,
    pub(crate) auth: TokenSource,
    pub(crate) scope: Scope,
    pub(crate) project_id: tokio::sync::Mutex<Option<String>>,
    pub(crate) reads: ReadCache<ReadKey, Option<Arc<String>>>,
}

impl std::fmt::Debug for InfisicalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfisicalClient")
            .field("store", &self.store)
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Where a key lives, by upstream's `getSecretAddress`: a bare name is in the store's folder;
/// `/a/b/name` is absolute; `a/b/name` is relative to the store's folder.
pub(crate) fn secret_address(default_path: &str, key: &str) -> (String, String) {
    let Some((folder, name)) = key.rsplit_once('/') else {
        return (clean_path(default_path), key.to_owned());
    };
    if key.starts_with('/') {
        return (clean_path(folder), name.to_owned());
    }
    (
        clean_path(&format!("{default_path}/{folder}")),
        name.to_owned(),
    )
}

/// The store's folder in canonical form.
pub(crate) fn clean_scope_path(path: &str) -> String {
    clean_path(path)
}

/// Go's `path.Clean` for folder paths: `/`-rooted, no empty, `.` or trailing segments, `..`
/// resolved.
fn clean_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// The bytes upstream's `GetSecretMap` makes of a JSON object's values: strings unquoted,
/// anything else as its JSON text.
fn object_to_map(value: &str, key: &str, store: &str) -> Result<SecretData, ProviderError> {
    let parsed: Value = serde_json::from_str(value).map_err(|e| {
        ProviderError::invalid_request(format!(
            "{store}: infisical secret {key:?} is not a JSON object, so it cannot be extracted"
        ))
        .with_source(e)
    })?;
    let Value::Object(map) = parsed else {
        return Err(ProviderError::invalid_request(format!(
            "{store}: infisical secret {key:?} is not a JSON object, so it cannot be extracted"
        )));
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let bytes = match v {
                Value::String(s) => s.into_bytes(),
                other => other.to_string().into_bytes(),
            };
            (k, bytes)
        })
        .collect())
}

impl InfisicalClient {
    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        self.base.join(path).map_err(|e| {
            ProviderError::invalid_store(format!("{}: hostAPI does not make a URL", self.store))
                .with_source(e)
        })
    }

    fn secret_url(&self, name: &str) -> Result<Url, ProviderError> {
        let mut url = self.url("v3/secrets/raw")?;
        url.path_segments_mut()
            .map_err(|()| {
                ProviderError::invalid_store(format!("{}: hostAPI cannot hold a path", self.store))
            })?
            .push(name);
        Ok(url)
    }

    fn where_(&self, folder: &str) -> String {
        format!(
            "project {:?}, environment {:?}, folder {folder:?}",
            self.scope.project_slug, self.scope.environment
        )
    }

    /// One authenticated call, logging in again once after a 401.
    async fn send(&self, label: &'static str, mut call: Call) -> Result<Value, Failure> {
        let token = self.auth.token().await.map_err(Failure::Local)?;
        call = call.bearer(&token);
        let mut result = self.http.json(&call).await;
        if let Err(e) = &result
            && e.status_is(401)
            && let Some(fresh) = self.auth.renew(&token).await.map_err(Failure::Local)?
        {
            metrics::observe(label, &result);
            call = call.bearer(&fresh);
            result = self.http.json(&call).await;
        }
        metrics::observe(label, &result);
        result.map_err(Failure::Http)
    }

    fn api_error(&self, f: Failure, what: String) -> ProviderError {
        let e = match f {
            Failure::Local(local) => return local,
            Failure::Http(e) => e,
        };
        let kind = match e.kind() {
            ErrorKind::NotFound if names_scope(&e.message) => ErrorKind::InvalidStore,
            k => k,
        };
        e.into_provider_error(kind, what)
    }

    /// The value of one secret; `None` when Infisical confirms it does not exist.
    async fn fetch(
        &self,
        folder: &str,
        name: &str,
        version: Option<&str>,
        include_imports: bool,
    ) -> Result<Option<String>, ProviderError> {
        let mut url = self.secret_url(name)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("workspaceSlug", &self.scope.project_slug)
                .append_pair("environment", &self.scope.environment)
                .append_pair("secretPath", folder)
                .append_pair("type", "shared")
                .append_pair(
                    "include_imports",
                    if include_imports { "true" } else { "false" },
                )
                .append_pair(
                    "expandSecretReferences",
                    if self.scope.expand_references {
                        "true"
                    } else {
                        "false"
                    },
                );
            if let Some(v) = version {
                q.append_pair("version", v);
            }
        }
        match self
            .send(call::GET_SECRET_BY_KEY, Call::new(Method::GET, url))
            .await
        {
            Ok(answer) => answer
                .pointer("/secret/secretValue")
                .and_then(Value::as_str)
                .map(|v| Some(v.to_owned()))
                .ok_or_else(|| {
                    ProviderError::unavailable(format!(
                        "{}: the infisical answer for secret {name:?} holds no secretValue",
                        self.store
                    ))
                }),
            Err(f) if f.is_not_found() => Ok(None),
            Err(e) => Err(self.api_error(
                e,
                format!(
                    "{}: reading infisical secret {name:?} ({}) failed",
                    self.store,
                    self.where_(folder)
                ),
            )),
        }
    }

    /// The value `remote` names, read through the cache.
    async fn read(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Arc<String>, ProviderError> {
        if remote.metadata_policy == Some(MetadataPolicy::Fetch) {
            return Err(ProviderError::unsupported(format!(
                "{}: infisical secrets have no metadata to fetch (metadataPolicy: Fetch)",
                self.store
            )));
        }
        let (folder, name) = secret_address(&self.scope.path, &remote.key);
        let version = remote.version.clone().filter(|v| !v.is_empty());
        let key = (folder.clone(), name.clone(), version.clone());
        let value = self
            .reads
            .get(key, || async {
                Ok(self
                    .fetch(&folder, &name, version.as_deref(), true)
                    .await?
                    .map(Arc::new))
            })
            .await?;
        value.ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: infisical secret {name:?} does not exist ({})",
                    self.store,
                    self.where_(&folder)
                ),
            )
        })
    }

    fn property(&self, value: &str, property: &str, key: &str) -> Result<Vec<u8>, ProviderError> {
        let missing = || {
            ProviderError::invalid_request(format!(
                "{}: property {property:?} does not exist in infisical secret {key:?}",
                self.store
            ))
        };
        // A value that is not JSON has no properties (gjson finds nothing in it).
        let Ok(doc) = serde_json::from_str::<Value>(value) else {
            return Err(missing());
        };
        match eso_provider::property::lookup(&doc, property)? {
            Some(v) => Ok(eso_provider::property::value_bytes(&v)),
            None => Err(missing()),
        }
    }

    async fn list(
        &self,
        recursive: bool,
        include_imports: bool,
    ) -> Result<Vec<Listed>, ProviderError> {
        let mut url = self.url("v3/secrets/raw")?;
        url.query_pairs_mut()
            .append_pair("workspaceSlug", &self.scope.project_slug)
            .append_pair("environment", &self.scope.environment)
            .append_pair("secretPath", &self.scope.path)
            .append_pair("recursive", if recursive { "true" } else { "false" })
            .append_pair(
                "include_imports",
                if include_imports { "true" } else { "false" },
            )
            .append_pair(
                "expandSecretReferences",
                if self.scope.expand_references {
                    "true"
                } else {
                    "false"
                },
            );
        let answer = self
            .send(call::GET_SECRETS, Call::new(Method::GET, url))
            .await
            .map_err(|e| {
                self.api_error(
                    e,
                    format!(
                        "{}: listing infisical secrets ({}, recursive {recursive}) failed",
                        self.store,
                        self.where_(&self.scope.path)
                    ),
                )
            })?;
        let parse = |s: &Value| -> Option<Listed> {
            Some(Listed {
                key: s.get("secretKey")?.as_str()?.to_owned(),
                value: s.get("secretValue")?.as_str()?.to_owned(),
                path: s
                    .get("secretPath")
                    .and_then(Value::as_str)
                    .unwrap_or(&self.scope.path)
                    .to_owned(),
            })
        };
        let mut secrets: Vec<Listed> = answer
            .get("secrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(parse)
            .collect();
        if include_imports {
            // The SDK's rule: an imported secret is added only when no secret of that key is
            // listed yet (the folder's own secrets, then earlier imports, win).
            for import in answer
                .get("imports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for s in import
                    .get("secrets")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(parse)
                {
                    if !secrets.iter().any(|e| e.key == s.key) {
                        secrets.push(s);
                    }
                }
            }
        }
        // The SDK sorts by key (stably), so among equal keys of different folders the last
        // listed wins when they are put into one map.
        secrets.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(secrets)
    }

    async fn project_id(&self, refresh: bool) -> Result<String, ProviderError> {
        let mut held = self.project_id.lock().await;
        if !refresh && let Some(id) = held.as_ref() {
            return Ok(id.clone());
        }
        let slug = &self.scope.project_slug;
        // The project-by-slug route moved across Infisical versions; upstream tries both.
        let mut last = None;
        for route in ["v1/projects/slug/", "v1/workspace/slug/"] {
            let mut url = self.url(route)?;
            url.path_segments_mut()
                .map_err(|()| {
                    ProviderError::invalid_store(format!(
                        "{}: hostAPI cannot hold a path",
                        self.store
                    ))
                })?
                .pop_if_empty()
                .push(slug);
            match self
                .send(call::GET_WORKSPACE_BY_SLUG, Call::new(Method::GET, url))
                .await
            {
                Ok(answer) => {
                    let id = answer
                        .get("id")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| {
                            ProviderError::unavailable(format!(
                                "{}: the infisical project lookup for {slug:?} returned no id",
                                self.store
                            ))
                        })?;
                    *held = Some(id.to_owned());
                    return Ok(id.to_owned());
                }
                Err(Failure::Http(e)) if e.kind() == ErrorKind::NotFound => {
                    last = Some(e);
                }
                Err(e) => {
                    return Err(self.api_error(
                        e,
                        format!(
                            "{}: resolving infisical project {slug:?} failed",
                            self.store
                        ),
                    ));
                }
            }
        }
        // Not `NotFound`: a missing project must never read as a missing secret.
        let mut err = ProviderError::invalid_store(format!(
            "{}: no infisical project has the slug {slug:?}",
            self.store
        ));
        if let Some(e) = last {
            err = err.with_source(e);
        }
        Err(err)
    }

    /// A create, update or delete, with the project ID resolved; a 404 with a remembered ID
    /// resolves it again once (the project may have been recreated), as upstream does.
    async fn write(
        &self,
        label: &'static str,
        method: Method,
        name: &str,
        body: Value,
    ) -> Result<(), Failure> {
        let mut refreshed = false;
        loop {
            let cached = self.project_id.lock().await.is_some();
            let id = self.project_id(refreshed).await.map_err(Failure::Local)?;
            let mut body = body.clone();
            body["workspaceId"] = json!(id);
            let url = self.secret_url(name).map_err(Failure::Local)?;
            let mut call = Call::new(method.clone(), url).json(body);
            call.idempotent = method == Method::DELETE;
            match self.send(label, call).await {
                Err(f) if f.is_not_found() && cached && !refreshed => {
                    refreshed = true;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    fn forget(&self, folder: &str, name: &str) {
        self.reads
            .invalidate_where(|(f, n, _)| f == folder && n == name);
    }

    fn write_body(&self, folder: &str) -> Value {
        json!({
            "environment": self.scope.environment,
            "secretPath": folder,
            "type": "shared",
        })
    }

    fn remote_key<'a>(&self, key: &'a str) -> Result<&'a str, ProviderError> {
        if key.is_empty() {
            return Err(ProviderError::invalid_request(format!(
                "{}: remoteKey is required to push a secret to infisical",
                self.store
            )));
        }
        Ok(key)
    }
}

/// One listed secret.
#[derive(Debug, Clone)]
struct Listed {
    key: String,
    value: String,
    path: String,
}

/// A failed API call: no token or no request (ours, with its own kind and message), or the
/// API's answer.
enum Failure {
    Local(ProviderError),
    Http(HttpError),
}

impl Failure {
    /// Whether Infisical confirmed that the secret (or its folder) does not exist. A 404 for
    /// the store's project or environment is a misconfiguration, never a missing secret.
    fn is_not_found(&self) -> bool {
        matches!(self, Self::Http(e) if e.kind() == ErrorKind::NotFound && !names_scope(&e.message))
    }
}

/// Whether a 404 message is about the project or environment, or names no route at all
/// (Infisical's "Project with slug
/// '…' not found", "Environment with slug '…' in project … not found").
fn names_scope(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["project", "environment", "workspace", "route"]
        .iter()
        .any(|p| m.starts_with(p))
}

#[async_trait]
impl SecretsClient for InfisicalClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        let value = self.read(remote).await?;
        match remote.property.as_deref().filter(|p| !p.is_empty()) {
            Some(property) => self.property(&value, property, &remote.key),
            None => Ok(value.as_bytes().to_vec()),
        }
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let value = self.get_secret(remote).await?;
        object_to_map(&String::from_utf8_lossy(&value), &remote.key, &self.store)
    }

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        if !find.tags.is_empty() {
            return Err(ProviderError::unsupported(format!(
                "{}: infisical cannot find secrets by tags",
                self.store
            )));
        }
        let matcher = FindMatcher::new(find)?;
        let listed = self.list(self.scope.recursive, true).await?;
        let mut out = BTreeMap::new();
        for s in listed {
            if matcher.matches_name(&s.key) && matcher.matches_path(&s.path) {
                out.insert(s.key, s.value.into_bytes());
            }
        }
        Ok(out)
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let key = self.remote_key(&request.remote.remote_key)?;
        let (folder, name) = secret_address(&self.scope.path, key);
        let existing = self.fetch(&folder, &name, None, false).await?;
        let payload = String::from_utf8_lossy(&request.value).into_owned();
        let value = match request.remote.property.as_deref().filter(|p| !p.is_empty()) {
            None => payload,
            Some(property) => {
                let mut doc = match &existing {
                    None => json!({}),
                    Some(v) => serde_json::from_str::<Value>(v)
                        .ok()
                        .filter(Value::is_object)
                        .ok_or_else(|| {
                            ProviderError::invalid_request(format!(
                                "{}: infisical secret {name:?} is not a JSON object, so property {property:?} cannot be set",
                                self.store
                            ))
                        })?,
                };
                if !json_path::set(&mut doc, property, Value::String(payload)) {
                    return Err(ProviderError::invalid_request(format!(
                        "{}: property {property:?} cannot be set in infisical secret {name:?}",
                        self.store
                    )));
                }
                doc.to_string()
            }
        };
        if existing.as_deref() == Some(value.as_str()) {
            // Already as wanted: no new version on every reconcile.
            return Ok(());
        }
        let mut body = self.write_body(&folder);
        body["secretValue"] = json!(value);
        body["skipMultilineEncoding"] = json!(true);
        let (label, method, verb) = if existing.is_some() {
            (call::UPDATE_SECRET, Method::PATCH, "updating")
        } else {
            (call::CREATE_SECRET, Method::POST, "creating")
        };
        let result = self.write(label, method, &name, body).await;
        self.forget(&folder, &name);
        result.map_err(|e| {
            self.api_error(
                e,
                format!(
                    "{}: {verb} infisical secret {name:?} ({}) failed",
                    self.store,
                    self.where_(&folder)
                ),
            )
        })
    }

    async fn delete_secret(&self, remote: &PushRemoteRef) -> Result<(), ProviderError> {
        let key = self.remote_key(&remote.remote_key)?;
        let (folder, name) = secret_address(&self.scope.path, key);
        let Some(existing) = self.fetch(&folder, &name, None, false).await? else {
            return Ok(());
        };
        if let Some(property) = remote.property.as_deref().filter(|p| !p.is_empty()) {
            let mut doc = serde_json::from_str::<Value>(&existing)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    ProviderError::invalid_request(format!(
                        "{}: infisical secret {name:?} is not a JSON object, so property {property:?} cannot be deleted",
                        self.store
                    ))
                })?;
            if !json_path::delete(&mut doc, property) {
                return Ok(());
            }
            // Keep the secret while other properties remain.
            if doc.as_object().is_some_and(|m| !m.is_empty()) {
                let mut body = self.write_body(&folder);
                body["secretValue"] = json!(doc.to_string());
                body["skipMultilineEncoding"] = json!(true);
                let result = self
                    .write(call::UPDATE_SECRET, Method::PATCH, &name, body)
                    .await;
                self.forget(&folder, &name);
                return result.map_err(|e| {
                    self.api_error(
                        e,
                        format!(
                            "{}: removing property {property:?} from infisical secret {name:?} failed",
                            self.store
                        ),
                    )
                });
            }
        }
        let result = self
            .write(
                call::DELETE_SECRET,
                Method::DELETE,
                &name,
                self.write_body(&folder),
            )
            .await;
        self.forget(&folder, &name);
        match result {
            Ok(()) => Ok(()),
            // It existed a moment ago: a concurrent delete.
            Err(f) if f.is_not_found() => Ok(()),
            Err(e) => Err(self.api_error(
                e,
                format!(
                    "{}: deleting infisical secret {name:?} ({}) failed",
                    self.store,
                    self.where_(&folder)
                ),
            )),
        }
    }

    async fn secret_exists(&self, remote: &PushRemoteRef) -> Result<bool, ProviderError> {
        let key = self.remote_key(&remote.remote_key)?;
        let (folder, name) = secret_address(&self.scope.path, key);
        let Some(existing) = self.fetch(&folder, &name, None, false).await? else {
            return Ok(false);
        };
        match remote.property.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(true),
            Some(property) => {
                let doc = serde_json::from_str::<Value>(&existing)
                    .ok()
                    .filter(Value::is_object)
                    .ok_or_else(|| {
                        ProviderError::invalid_request(format!(
                            "{}: infisical secret {name:?} is not a JSON object, so property {property:?} cannot be checked",
                            self.store
                        ))
                    })?;
                Ok(eso_provider::property::lookup(&doc, property)?.is_some())
            }
        }
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        self.list(self.scope.recursive, false).await?;
        Ok(ValidationResult::Ready)
    }

    async fn close(&self) -> Result<(), ProviderError> {
        self.auth.revoke().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_resolve_like_upstream() {
        assert_eq!(
            secret_address("/scope", "foo"),
            ("/scope".into(), "foo".into())
        );
        assert_eq!(
            secret_address("/scope", "/a/b/foo"),
            ("/a/b".into(), "foo".into())
        );
        assert_eq!(
            secret_address("/scope", "sub/foo"),
            ("/scope/sub".into(), "foo".into())
        );
        assert_eq!(secret_address("/", "/foo"), ("/".into(), "foo".into()));
        assert_eq!(
            secret_address("/a/", "../b/foo"),
            ("/b".into(), "foo".into())
        );
    }

    #[test]
    fn extract_unquotes_strings_only() {
        let m = object_to_map(r#"{"a":"x","n":1,"o":{"k":true}}"#, "k", "s").unwrap();
        assert_eq!(m["a"], b"x");
        assert_eq!(m["n"], b"1");
        assert_eq!(m["o"], br#"{"k":true}"#);
        assert!(object_to_map("plain", "k", "s").is_err());
        assert!(object_to_map("[1]", "k", "s").is_err());
    }
}
