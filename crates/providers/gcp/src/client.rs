//! The Secret Manager client of one store: reads (with the version selection policy, metadata
//! and properties), find, push, delete and exists, over the v1 REST API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use eso_api::provider::GcpSecretVersionSelectionPolicy;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, MetadataPolicy};
use eso_provider::cache::ReadCache;
use eso_provider::find::FindMatcher;
use eso_provider::{
    ErrorKind, ProviderError, PushRemoteRef, PushRequest, SecretData, SecretsClient,
    ValidationResult,
};
use futures::StreamExt as _;
use reqwest::{Method, Url};
use serde_json::{Map, Value, json};

use crate::crc32c;
use crate::http::{Call, GoogleError, Http, HttpError};
use crate::metrics::{self, call};
use crate::push::{self, MANAGED_BY_KEY, MANAGED_BY_VALUE};
use crate::token::TokenSource;
use eso_provider::property::go_json;

/// Which remote read a cache slot holds: a version's payload, or (`version: None`) the secret
/// resource itself (labels and annotations, for `metadataPolicy: Fetch`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReadKey {
    secret: String,
    version: Option<String>,
}

#[derive(Debug)]
enum Read {
    Payload(Vec<u8>),
    Secret(Value),
}

/// A failed API call: no token or no request (ours), or the API's answer.
enum Failure {
    Local(ProviderError),
    Http(HttpError),
}

impl Failure {
    fn is_not_found(&self) -> bool {
        matches!(self, Self::Http(e) if e.api_kind() == ErrorKind::NotFound)
    }
}

/// Settings of one client.
pub(crate) struct ClientSettings {
    pub(crate) store: String,
    pub(crate) project: String,
    pub(crate) location: Option<String>,
    pub(crate) policy: GcpSecretVersionSelectionPolicy,
    pub(crate) base: Url,
    pub(crate) read_cache_ttl: Duration,
    pub(crate) find_concurrency: usize,
}

/// A Secret Manager client of one store and credential.
pub struct GcpClient {
    store: String,
    project: String,
    location: Option<String>,
    policy: GcpSecretVersionSelectionPolicy,
    base: Url,
    http: Http,
    token: TokenSource,
    cache: ReadCache<ReadKey, Arc<Read>>,
    cache_ttl: Duration,
    find_concurrency: usize,
}

impl std::fmt::Debug for GcpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpClient")
            .field("store", &self.store)
            .field("project", &self.project)
            .field("location", &self.location)
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// A label or annotation map of a secret resource, as Go's protobuf getters give it: `null`
/// when empty.
fn string_map_json(secret: &Value, field: &str) -> Value {
    match secret.get(field) {
        Some(Value::Object(m)) if !m.is_empty() => Value::Object(m.clone()),
        _ => Value::Null,
    }
}

fn string_map(secret: &Value, field: &str) -> BTreeMap<String, String> {
    secret
        .get(field)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Quotes a filter value unless it is a plain word.
fn filter_value(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    {
        v.to_owned()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

impl GcpClient {
    pub(crate) fn new(settings: ClientSettings, http: Http, token: TokenSource) -> Self {
        Self {
            store: settings.store,
            project: settings.project,
            location: settings.location,
            policy: settings.policy,
            base: settings.base,
            http,
            token,
            cache: ReadCache::new(settings.read_cache_ttl),
            cache_ttl: settings.read_cache_ttl,
            find_concurrency: settings.find_concurrency.max(1),
        }
    }

    /// `projects/P` or `projects/P/locations/L`, as path segments.
    fn parent_segments(&self) -> Vec<&str> {
        let mut segs = vec!["projects", self.project.as_str()];
        if let Some(l) = &self.location {
            segs.extend(["locations", l.as_str()]);
        }
        segs
    }

    /// The secret's resource name (for messages and cache keys).
    fn secret_name(&self, key: &str) -> String {
        let mut segs = self.parent_segments();
        segs.extend(["secrets", key]);
        segs.join("/")
    }

    /// `{base}/v1/` followed by `segments`, each percent-encoded as one path segment (a key
    /// with a `/` cannot reach another resource), and `verb` (`:access`) on the last one.
    fn url(&self, segments: &[&str], verb: Option<&str>) -> Result<Url, ProviderError> {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().map_err(|()| {
                ProviderError::invalid_store(format!(
                    "{}: the Secret Manager endpoint {} cannot be a base URL",
                    self.store, self.base
                ))
            })?;
            path.pop_if_empty().push("v1");
            let (last, rest) = segments.split_last().unwrap_or((&"", &[]));
            path.extend(rest);
            match verb {
                Some(v) => path.push(&format!("{last}:{v}")),
                None => path.push(last),
            };
        }
        Ok(url)
    }

    fn secret_url(
        &self,
        key: &str,
        tail: &[&str],
        verb: Option<&str>,
    ) -> Result<Url, ProviderError> {
        let mut segs = self.parent_segments();
        segs.extend(["secrets", key]);
        segs.extend(tail);
        self.url(&segs, verb)
    }

    /// One authorized API call. A 401 (a token revoked or expired early) fetches a new token
    /// and tries once more.
    async fn api(
        &self,
        label: &'static str,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut renewed = false;
        let result = loop {
            let token = match self.token.token(&self.http).await {
                Ok(t) => t,
                Err(e) => return Err(Failure::Local(e)),
            };
            let mut request = Call::new(method.clone(), url.clone()).bearer(&token);
            if let Some(b) = &body {
                request = request.json(b.clone());
            }
            match self.http.send(&request).await {
                Err(e) if e.status.is_some_and(|s| s.as_u16() == 401) && !renewed => {
                    self.token.invalidate(&token).await;
                    renewed = true;
                }
                other => break other,
            }
        };
        metrics::observe(label, &result);
        let bytes = result.map_err(Failure::Http)?;
        if bytes.is_empty() {
            return Ok(Value::Object(Map::new()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Failure::Http(HttpError::local(format!("the answer is not JSON: {e}"))))
    }

    /// The error of a failed call: `what` failed (on this store), because of `failure`.
    fn fail(&self, what: &str, failure: Failure) -> ProviderError {
        match failure {
            Failure::Local(e) => e,
            Failure::Http(e) => {
                let kind = e.api_kind();
                e.into_provider_error(kind, format!("{}: {what}", self.store))
            }
        }
    }

    /// The payload of an `:access` answer, its CRC32C checked.
    fn payload(&self, answer: &Value, key: &str) -> Result<Vec<u8>, Failure> {
        let payload = answer.get("payload");
        let data = match payload.and_then(|p| p.get("data")).and_then(Value::as_str) {
            None => Vec::new(),
            Some(b64) => STANDARD.decode(b64).map_err(|e| {
                Failure::Http(HttpError::local(format!(
                    "the payload of {key:?} is not base64: {e}"
                )))
            })?,
        };
        let sum = payload
            .and_then(|p| p.get("dataCrc32c"))
            .and_then(|v| match v {
                Value::String(s) => s.parse::<u64>().ok(),
                Value::Number(n) => n.as_u64(),
                _ => None,
            });
        if let Some(sum) = sum
            && sum != u64::from(crc32c::checksum(&data))
        {
            return Err(Failure::Http(HttpError::local(format!(
                "the payload of {key:?} does not match its CRC32C checksum"
            ))));
        }
        Ok(data)
    }

    /// `:access` of one version (a number, `latest` or an alias).
    async fn access(&self, key: &str, version: &str) -> Result<Vec<u8>, Failure> {
        let url = self
            .secret_url(key, &["versions", version], Some("access"))
            .map_err(Failure::Local)?;
        let answer = self
            .api(call::ACCESS_SECRET_VERSION, Method::GET, url, None)
            .await?;
        self.payload(&answer, key)
    }

    /// The number of the newest enabled version (by creation time), if any.
    async fn newest_enabled(&self, key: &str) -> Result<Option<String>, Failure> {
        let mut newest: Option<(jiff::Timestamp, String)> = None;
        let mut page_token: Option<String> = None;
        loop {
            let mut url = self
                .secret_url(key, &["versions"], None)
                .map_err(Failure::Local)?;
            url.query_pairs_mut().append_pair("filter", "state:ENABLED");
            if let Some(t) = &page_token {
                url.query_pairs_mut().append_pair("pageToken", t);
            }
            let page = self
                .api(call::LIST_SECRET_VERSIONS, Method::GET, url, None)
                .await?;
            for v in page
                .get("versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(name), Some(created)) = (
                    v.get("name").and_then(Value::as_str),
                    v.get("createTime")
                        .and_then(Value::as_str)
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok()),
                ) else {
                    continue;
                };
                if v.get("state")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s != "ENABLED")
                {
                    continue;
                }
                let number = name.rsplit('/').next().unwrap_or_default().to_owned();
                if newest.as_ref().is_none_or(|(t, _)| created > *t) {
                    newest = Some((created, number));
                }
            }
            page_token = page
                .get("nextPageToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if page_token.is_none() {
                return Ok(newest.map(|(_, n)| n));
            }
        }
    }

    /// The payload of `key` at `version` (`None`: `latest`, with the store's selection policy),
    /// shared with concurrent reads and reused within the cache window.
    async fn value(&self, key: &str, version: Option<&str>) -> Result<Arc<Read>, ProviderError> {
        let v = version.filter(|v| !v.is_empty()).unwrap_or("latest");
        let slot = ReadKey {
            secret: self.secret_name(key),
            version: Some(v.to_owned()),
        };
        self.cache
            .get_within(slot, self.cache_ttl, || async {
                let what = || format!("cannot read secret {key:?} (version {v})");
                match self.access(key, v).await {
                    Ok(data) => Ok(Arc::new(Read::Payload(data))),
                    // LatestOrFetch: a disabled or destroyed `latest` falls back to the newest
                    // enabled version (upstream's `getLatestEnabledVersion`).
                    Err(Failure::Http(e))
                        if version.is_none_or(str::is_empty)
                            && self.policy == GcpSecretVersionSelectionPolicy::LatestOrFetch
                            && e.is_disabled_or_destroyed() =>
                    {
                        match self.newest_enabled(key).await {
                            Ok(Some(n)) => self
                                .access(key, &n)
                                .await
                                .map(|d| Arc::new(Read::Payload(d)))
                                .map_err(|f| self.fail(&what(), f)),
                            Ok(None) => Err(self.fail(&what(), Failure::Http(e))),
                            Err(f) => Err(self
                                .fail(&format!("cannot list the enabled versions of {key:?}"), f)),
                        }
                    }
                    Err(f) => Err(self.fail(&what(), f)),
                }
            })
            .await
    }

    /// The secret resource (labels, annotations, etag), cached like values.
    async fn resource(&self, key: &str) -> Result<Arc<Read>, ProviderError> {
        let slot = ReadKey {
            secret: self.secret_name(key),
            version: None,
        };
        self.cache
            .get_within(slot, self.cache_ttl, || async {
                self.get_resource(key)
                    .await
                    .map(|v| Arc::new(Read::Secret(v)))
                    .map_err(|f| self.fail(&format!("cannot get secret {key:?}"), f))
            })
            .await
    }

    /// `GET` of the secret resource, uncached.
    async fn get_resource(&self, key: &str) -> Result<Value, Failure> {
        let url = self.secret_url(key, &[], None).map_err(Failure::Local)?;
        self.api(call::GET_SECRET, Method::GET, url, None).await
    }

    fn invalidate(&self, key: &str) {
        let name = self.secret_name(key);
        self.cache.invalidate_where(|k| k.secret == name);
    }

    /// `metadataPolicy: Fetch`: the labels and annotations, as upstream renders them.
    async fn metadata(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        let key = remote.key.as_str();
        let read = self.resource(key).await?;
        let Read::Secret(secret) = read.as_ref() else {
            return Err(ProviderError::unavailable("unexpected cache entry"));
        };
        let property = remote.property.as_deref().unwrap_or_default();
        for (prefix, field, what) in [
            ("annotations.", "annotations", "annotation"),
            ("labels.", "labels", "label"),
        ] {
            if let Some(name) = property.strip_prefix(prefix).filter(|n| !n.is_empty()) {
                return string_map(secret, field)
                    .remove(name)
                    .map(String::into_bytes)
                    .ok_or_else(|| {
                        ProviderError::new(
                            ErrorKind::NotFound,
                            format!(
                                "{}: {what} with key {name:?} does not exist in secret {key:?}",
                                self.store
                            ),
                        )
                    });
            }
        }
        match property {
            "annotations" | "labels" => Ok(go_json(&string_map_json(secret, property))),
            "" => Ok(go_json(&json!({
                "annotations": string_map_json(secret, "annotations"),
                "labels": string_map_json(secret, "labels"),
            }))),
            other => Err(ProviderError::invalid_request(format!(
                "{}: invalid property {other:?}: metadata property should start with either annotations or labels",
                self.store
            ))),
        }
    }

    /// Lists the secrets of the store's parent matching `filter`, every page.
    async fn list(&self, filter: Option<&str>) -> Result<Vec<String>, ProviderError> {
        let mut keys = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut segs = self.parent_segments();
            segs.push("secrets");
            let mut url = self.url(&segs, None)?;
            if let Some(f) = filter.filter(|f| !f.is_empty()) {
                url.query_pairs_mut().append_pair("filter", f);
            }
            if let Some(t) = &page_token {
                url.query_pairs_mut().append_pair("pageToken", t);
            }
            let page = self
                .api(call::LIST_SECRETS, Method::GET, url, None)
                .await
                .map_err(|f| self.fail("cannot list secrets", f))?;
            for s in page
                .get("secrets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                // `projects/NUMBER[/locations/L]/secrets/ID`: Google names the project by its
                // number, so the key is whatever follows `/secrets/`.
                if let Some(name) = s.get("name").and_then(Value::as_str)
                    && let Some((_, id)) = name.rsplit_once("/secrets/")
                {
                    keys.push(id.to_owned());
                }
            }
            page_token = page
                .get("nextPageToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if page_token.is_none() {
                return Ok(keys);
            }
        }
    }

    /// Creates the secret a push writes to, with everything it should carry at once.
    async fn create(
        &self,
        key: &str,
        meta: Option<&push::PushMetadata>,
        with_property: bool,
    ) -> Result<Value, ProviderError> {
        let mut labels = BTreeMap::new();
        let mut annotations = BTreeMap::new();
        let mut topics = Vec::new();
        if !with_property && let Some(m) = meta {
            labels = m.labels.clone();
            annotations = m.annotations.clone();
            topics = m.topics.clone();
        }
        labels.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned());
        let mut body = json!({"labels": labels});
        if !annotations.is_empty() {
            body["annotations"] = json!(annotations);
        }
        if !topics.is_empty() {
            body["topics"] = topics.iter().map(|t| json!({"name": t})).collect();
        }
        // Regional secrets take no replication policy (upstream's fix for them).
        if self.location.is_none() {
            body["replication"] = push::replication(meta);
        }
        let mut segs = self.parent_segments();
        segs.push("secrets");
        let mut url = self.url(&segs, None)?;
        url.query_pairs_mut().append_pair("secretId", key);
        self.api(call::CREATE_SECRET, Method::POST, url, Some(body))
            .await
            .map_err(|f| self.fail(&format!("cannot create secret {key:?}"), f))
    }

    /// Adds a version holding `data`.
    async fn add_version(&self, key: &str, data: &[u8]) -> Result<(), ProviderError> {
        let url = self.secret_url(key, &[], Some("addVersion"))?;
        let body = json!({"payload": {
            "data": STANDARD.encode(data),
            "dataCrc32c": crc32c::checksum(data).to_string(),
        }});
        self.api(call::ADD_SECRET_VERSION, Method::POST, url, Some(body))
            .await
            .map(drop)
            .map_err(|f| self.fail(&format!("cannot add a version to secret {key:?}"), f))
    }

    /// The payload of `latest` for a write: `None` when there is none yet, uncached.
    async fn current_payload(&self, key: &str) -> Result<Option<Vec<u8>>, ProviderError> {
        match self.access(key, "latest").await {
            Ok(d) => Ok(Some(d)),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => Err(self.fail(&format!("cannot read the latest version of {key:?}"), f)),
        }
    }
}

#[async_trait]
impl SecretsClient for GcpClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        if remote.metadata_policy == Some(MetadataPolicy::Fetch) {
            return self.metadata(remote).await;
        }
        let read = self.value(&remote.key, remote.version.as_deref()).await?;
        let Read::Payload(data) = read.as_ref() else {
            return Err(ProviderError::unavailable("unexpected cache entry"));
        };
        match remote.property.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(data.clone()),
            Some(property) => push::get_property(data, property, &remote.key)?.ok_or_else(|| {
                ProviderError::missing_property(format!(
                    "{}: key {property:?} does not exist in secret {:?}",
                    self.store, remote.key
                ))
            }),
        }
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let data = self.get_secret(remote).await?;
        let value: Value = serde_json::from_slice(&data).map_err(|e| {
            ProviderError::invalid_request(format!(
                "{}: secret {:?} is not JSON, so it cannot be extracted",
                self.store, remote.key
            ))
            .with_source(e)
        })?;
        let Value::Object(map) = value else {
            return Err(ProviderError::invalid_request(format!(
                "{}: secret {:?} is not a JSON object, so it cannot be extracted",
                self.store, remote.key
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

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        let matcher = FindMatcher::new(find)?;
        if !matcher.has_name() && !matcher.has_tags() {
            return Err(ProviderError::invalid_request(format!(
                "{}: find needs name or tags",
                self.store
            )));
        }
        let mut terms: Vec<String> = find
            .tags
            .iter()
            .map(|(k, v)| format!("labels.{k}={}", filter_value(v)))
            .collect();
        if let Some(path) = matcher.path() {
            terms.push(format!("name:{}", filter_value(path)));
        }
        let keys: Vec<String> = self
            .list(Some(&terms.join(" ")))
            .await?
            .into_iter()
            .filter(|k| matcher.matches_name(k) && matcher.matches_path(k))
            .collect();
        let reads = futures::stream::iter(keys)
            .map(|key| async move {
                let result = self.value(&key, None).await;
                (key, result)
            })
            .buffer_unordered(self.find_concurrency)
            .collect::<Vec<_>>()
            .await;
        let mut out = SecretData::new();
        for (key, result) in reads {
            match result {
                Ok(read) => {
                    if let Read::Payload(data) = read.as_ref() {
                        out.insert(key, data.clone());
                    }
                }
                // Listed, then gone or without versions: not part of the result.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        // As upstream's gcp provider: the find's key conversion happens here, before the
        // entry's rewrite.
        eso_provider::convert::convert_keys(find.conversion_strategy.unwrap_or_default(), out)
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let key = request.remote.remote_key.as_str();
        let property = request.remote.property.as_deref().filter(|p| !p.is_empty());
        let meta = push::parse_metadata(request.metadata.as_ref())?;
        if property.is_some() && meta.is_some() {
            return Err(ProviderError::invalid_request(format!(
                "{}: cannot specify metadata and property at the same time (secret {key:?})",
                self.store
            )));
        }
        let result = async {
            let existing = match self.get_resource(key).await {
                Ok(s) => s,
                Err(f) if f.is_not_found() => {
                    self.create(key, meta.as_ref(), property.is_some()).await?
                }
                Err(f) => return Err(self.fail(&format!("cannot get secret {key:?}"), f)),
            };
            let labels = string_map(&existing, "labels");
            let annotations = string_map(&existing, "annotations");
            let wanted = push::wanted(
                key,
                &labels,
                &annotations,
                meta.as_ref(),
                property.is_some(),
            )
            .map_err(|e| {
                ProviderError::new(e.kind(), format!("{}: {}", self.store, e.message()))
            })?;
            if wanted.labels != labels || wanted.annotations != annotations {
                let mut url = self.secret_url(key, &[], None)?;
                url.query_pairs_mut()
                    .append_pair("updateMask", "labels,annotations");
                let body = json!({
                    "etag": existing.get("etag").cloned().unwrap_or(Value::Null),
                    "labels": wanted.labels,
                    "annotations": wanted.annotations,
                });
                self.api(call::UPDATE_SECRET, Method::PATCH, url, Some(body))
                    .await
                    .map_err(|f| self.fail(&format!("cannot update secret {key:?}"), f))?;
            }
            let current = self.current_payload(key).await?;
            let data = match property {
                None => {
                    if current.as_deref() == Some(request.value.as_slice()) {
                        return Ok(());
                    }
                    request.value.clone()
                }
                Some(p) => {
                    if let Some(cur) = current.as_deref()
                        && let Ok(Some(v)) = push::get_property(cur, p, key)
                        && v == request.value
                    {
                        return Ok(());
                    }
                    push::set_property(current.as_deref(), p, &request.value, key).map_err(|e| {
                        ProviderError::new(e.kind(), format!("{}: {}", self.store, e.message()))
                    })?
                }
            };
            self.add_version(key, &data).await
        }
        .await;
        self.invalidate(key);
        result
    }

    async fn delete_secret(&self, remote: &PushRemoteRef) -> Result<(), ProviderError> {
        let key = remote.remote_key.as_str();
        let result = async {
            let existing = match self.get_resource(key).await {
                Ok(s) => s,
                Err(f) if f.is_not_found() => return Ok(()),
                Err(f) => return Err(self.fail(&format!("cannot get secret {key:?}"), f)),
            };
            // Only what a push created is deleted.
            if string_map(&existing, "labels")
                .get(MANAGED_BY_KEY)
                .map(String::as_str)
                != Some(MANAGED_BY_VALUE)
            {
                return Ok(());
            }
            // A property push is undone by removing that property, as long as others remain
            // (upstream deletes the whole secret).
            if let Some(p) = remote.property.as_deref().filter(|p| !p.is_empty())
                && let Some(current) = self.current_payload(key).await?
                && let Ok(Some(remaining)) = push::remove_property(&current, p, key)
            {
                if push::get_property(&current, p, key)
                    .ok()
                    .flatten()
                    .is_some()
                {
                    self.add_version(key, &remaining).await?;
                }
                return Ok(());
            }
            let mut url = self.secret_url(key, &[], None)?;
            if let Some(etag) = existing.get("etag").and_then(Value::as_str) {
                url.query_pairs_mut().append_pair("etag", etag);
            }
            match self
                .api(call::DELETE_SECRET, Method::DELETE, url, None)
                .await
            {
                Ok(_) => Ok(()),
                Err(f) if f.is_not_found() => Ok(()),
                Err(f) => Err(self.fail(&format!("cannot delete secret {key:?}"), f)),
            }
        }
        .await;
        self.invalidate(key);
        result
    }

    async fn secret_exists(&self, remote: &PushRemoteRef) -> Result<bool, ProviderError> {
        let key = remote.remote_key.as_str();
        match self.newest_enabled(key).await {
            Ok(found) => Ok(found.is_some()),
            Err(f) if f.is_not_found() => Ok(false),
            Err(f) => Err(self.fail(&format!("cannot list the versions of {key:?}"), f)),
        }
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        // The credential works if it yields a token (upstream checks the same when building a
        // client); a cached token costs nothing.
        self.token.token(&self.http).await?;
        Ok(ValidationResult::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_quoted_when_needed() {
        assert_eq!(filter_value("prod"), "prod");
        assert_eq!(filter_value("app/db"), "app/db");
        assert_eq!(filter_value("a b"), "\"a b\"");
        assert_eq!(filter_value("say \"x\""), "\"say \\\"x\\\"\"");
        assert_eq!(filter_value(""), "\"\"");
    }

    #[test]
    fn metadata_json_is_go_like() {
        let secret = json!({"labels": {"b": "<x>", "a": "1"}});
        assert_eq!(
            go_json(&string_map_json(&secret, "labels")),
            br#"{"a":"1","b":"\u003cx\u003e"}"#
        );
        assert_eq!(go_json(&string_map_json(&secret, "annotations")), b"null");
    }
}
