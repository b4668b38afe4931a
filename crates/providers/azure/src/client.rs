//! The Key Vault client of one store: HTTP requests with a bearer token, retries, error
//! mapping by cause, the `externalsecret_provider_api_calls_count` metric, and the
//! operations upstream performs for reads, find, push, delete and exists.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, MetadataPolicy};
use eso_provider::cache::ReadCache;
use eso_provider::find::FindMatcher;
use eso_provider::{
    ErrorKind, ProviderError, PushRemoteRef, PushRequest, SecretData, SecretsClient,
    ValidationResult,
};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value, json};

use crate::auth::TokenSource;
use crate::crypto;
use crate::value::{self, ObjectType};

/// The Key Vault REST API version the client speaks.
pub(crate) const API_VERSION: &str = "7.4";
const MANAGED_BY: &str = "managed-by";
const MANAGER: &str = "external-secrets";

/// Upstream's metric, provider label and call names
/// (`providers/v1/azure/keyvault/constants.go`).
mod call {
    pub(super) const PROVIDER: &str = "Azure/KeyVault";
    pub(super) const GET_KEY: &str = "GetKey";
    pub(super) const DELETE_KEY: &str = "DeleteKey";
    pub(super) const IMPORT_KEY: &str = "ImportKey";
    pub(super) const GET_SECRET: &str = "GetSecret";
    pub(super) const GET_SECRETS: &str = "GetSecrets";
    pub(super) const SET_SECRET: &str = "SetSecret";
    pub(super) const RECOVER_SECRET: &str = "RecoverDeletedSecret";
    pub(super) const DELETE_SECRET: &str = "DeleteSecret";
    pub(super) const GET_CERTIFICATE: &str = "GetCertificate";
    pub(super) const DELETE_CERTIFICATE: &str = "DeleteCertificate";
    pub(super) const IMPORT_CERTIFICATE: &str = "ImportCertificate";
}

fn get_call(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Secret => call::GET_SECRET,
        ObjectType::Key => call::GET_KEY,
        ObjectType::Certificate => call::GET_CERTIFICATE,
    }
}

fn delete_call(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Secret => call::DELETE_SECRET,
        ObjectType::Key => call::DELETE_KEY,
        ObjectType::Certificate => call::DELETE_CERTIFICATE,
    }
}

fn observe(label: &'static str, ok: bool) {
    eso_provider::metrics::observe_status(call::PROVIDER, label, ok);
}

/// Tuning the provider hands its clients.
#[derive(Debug, Clone)]
pub(crate) struct ClientTuning {
    pub(crate) retries: u32,
    pub(crate) retry_backoff: Duration,
    pub(crate) recovery_poll_interval: Duration,
    pub(crate) recovery_timeout: Duration,
    pub(crate) read_cache_ttl: Duration,
}

type ReadKey = (ObjectType, String, String);

/// An authenticated client of one vault.
pub struct AzureKvClient {
    pub(crate) http: reqwest::Client,
    pub(crate) vault: Url,
    pub(crate) tokens: TokenSource,
    pub(crate) tuning: ClientTuning,
    pub(crate) store: String,
    reads: ReadCache<ReadKey, Arc<Value>>,
}

impl std::fmt::Debug for AzureKvClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKvClient")
            .field("vault", &self.vault.as_str())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// A request's failure before mapping: the status and the service's error body.
struct Failure {
    status: StatusCode,
    code: String,
    inner: String,
    message: String,
    retry_after: Option<Duration>,
}

fn parse_retry_after(v: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let v = v?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // An HTTP date.
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let secs = at.as_second().saturating_sub(now.as_second());
    Some(Duration::from_secs(u64::try_from(secs.max(0)).unwrap_or(0)))
}

impl AzureKvClient {
    pub(crate) fn new(
        http: reqwest::Client,
        vault: Url,
        tokens: TokenSource,
        tuning: ClientTuning,
        store: String,
    ) -> Self {
        let reads = ReadCache::new(tuning.read_cache_ttl);
        Self {
            http,
            vault,
            tokens,
            tuning,
            store,
            reads,
        }
    }

    fn url(&self, path: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.vault.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.extend(path);
        }
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", API_VERSION);
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// One exchange: `Ok(body)` on success, `Err(Ok(failure))` for an error answer,
    /// `Err(Err(error))` when there was no answer.
    async fn exchange(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        token: &str,
    ) -> Result<Value, Result<Failure, reqwest::Error>> {
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(Err)?;
        let status = resp.status();
        let retry_after = parse_retry_after(resp.headers().get("retry-after"));
        let text = resp.bytes().await.map_err(Err)?;
        let json: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let err = json.get("error");
        let field = |v: Option<&Value>, k: &str| {
            v.and_then(|e| e.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Err(Ok(Failure {
            status,
            code: field(err, "code"),
            inner: field(err.and_then(|e| e.get("innererror")), "code"),
            message: field(err, "message"),
            retry_after,
        }))
    }

    /// Sends one request with a token: a refused token is replaced once; 5xx answers and
    /// connection failures are retried `retries` times with a growing pause.
    async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
        label: &'static str,
        what: &str,
    ) -> Result<Value, ProviderError> {
        let url = self.url(path, query);
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            let token = self.tokens.token().await.map_err(|e| self.wrap(e, what))?;
            let result = self.exchange(&method, &url, body, &token).await;
            match result {
                Ok(v) => {
                    observe(label, true);
                    return Ok(v);
                }
                Err(Ok(f)) if f.status == StatusCode::UNAUTHORIZED && !refreshed => {
                    observe(label, false);
                    // The token was revoked or expired early: one new login, one retry.
                    refreshed = true;
                    self.tokens.invalidate(&token).await;
                }
                Err(Ok(f)) if f.status.is_server_error() && attempt < self.tuning.retries => {
                    observe(label, false);
                    attempt += 1;
                    let pause = f
                        .retry_after
                        .unwrap_or(self.tuning.retry_backoff * attempt)
                        .min(Duration::from_secs(10));
                    tokio::time::sleep(pause).await;
                }
                Err(Ok(f)) => {
                    observe(label, false);
                    return Err(self.failure(f, what));
                }
                Err(Err(e)) if attempt < self.tuning.retries && !e.is_builder() => {
                    observe(label, false);
                    attempt += 1;
                    tokio::time::sleep(self.tuning.retry_backoff * attempt).await;
                }
                Err(Err(e)) => {
                    observe(label, false);
                    let kind = if e.is_builder() {
                        ErrorKind::InvalidStore
                    } else {
                        ErrorKind::Unavailable
                    };
                    return Err(ProviderError::new(
                        kind,
                        format!("{}: {what}: cannot reach {}", self.store, self.vault),
                    )
                    .with_source(e));
                }
            }
        }
    }

    fn wrap(&self, e: ProviderError, what: &str) -> ProviderError {
        let mut out = ProviderError::new(e.kind(), format!("{}: {what}", self.store));
        if let Some(d) = e.retry_after() {
            out = out.with_retry_after(d);
        }
        out.with_source(e)
    }

    fn failure(&self, f: Failure, what: &str) -> ProviderError {
        let code = if f.inner.is_empty() {
            f.code.clone()
        } else {
            format!("{} ({})", f.code, f.inner)
        };
        let cause = format!(
            "{}: {what}: Azure Key Vault answered {}: {code}: {}",
            self.store, f.status, f.message
        );
        let kind = match f.status.as_u16() {
            404 => ErrorKind::NotFound,
            401 | 403 => ErrorKind::Auth,
            429 => ErrorKind::Throttled,
            s if s >= 500 => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidRequest,
        };
        let err = ProviderError::new(kind, cause);
        match f.retry_after {
            Some(d) => err.with_retry_after(d),
            None => err,
        }
    }

    /// A bundle (cached for the read cache's TTL, shared with concurrent readers).
    async fn get_bundle(
        &self,
        t: ObjectType,
        name: &str,
        version: &str,
    ) -> Result<Arc<Value>, ProviderError> {
        let key = (t, name.to_owned(), version.to_owned());
        // Only answers are reused; an error is shared with concurrent callers, never replayed.
        self.reads
            .get_within(key, self.tuning.read_cache_ttl, || async {
                let what = format!("reading {} {name:?}", t.noun());
                let mut path = vec![t.collection(), name];
                if !version.is_empty() {
                    path.push(version);
                }
                self.send(Method::GET, &path, &[], None, get_call(t), &what)
                    .await
                    .map(Arc::new)
            })
            .await
    }

    /// A bundle, read past the cache (pushes and deletes decide on the current state).
    async fn get_fresh(&self, t: ObjectType, name: &str) -> Result<Option<Value>, ProviderError> {
        let what = format!("reading {} {name:?}", t.noun());
        match self
            .send(
                Method::GET,
                &[t.collection(), name],
                &[],
                None,
                get_call(t),
                &what,
            )
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn forget(&self, t: ObjectType, name: &str) {
        self.reads
            .invalidate_where(|(kind, n, _)| *kind == t && n == name);
    }

    fn split<'k>(&self, key: &'k str) -> Result<(ObjectType, &'k str), ProviderError> {
        value::split_key(key).map_err(|other| {
            ProviderError::invalid_request(format!(
                "{}: key {key:?}: object type {other:?} is not supported (secret, key, cert)",
                self.store
            ))
        })
    }

    async fn read(&self, remote: &ExternalSecretDataRemoteRef) -> Result<Vec<u8>, ProviderError> {
        let (t, name) = self.split(&remote.key)?;
        let version = remote.version.as_deref().unwrap_or_default();
        let property = remote.property.as_deref().unwrap_or_default();
        let bundle = self.get_bundle(t, name, version).await?;
        let with_store = |e: ProviderError| {
            ProviderError::new(e.kind(), format!("{}: {}", self.store, e.message()))
        };
        if remote.metadata_policy == Some(MetadataPolicy::Fetch) {
            return value::tag_value(&value::metadata(&bundle), property).map_err(with_store);
        }
        match t {
            ObjectType::Secret => {
                let v = bundle
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                value::property_of(v.as_bytes(), property, &remote.key).map_err(with_store)
            }
            // The certificate's DER (`cer`), as upstream; no property applies.
            ObjectType::Certificate => {
                let cer = bundle
                    .get("cer")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                STANDARD.decode(cer).map_err(|e| {
                    ProviderError::unavailable(format!(
                        "{}: certificate {name:?}: the vault's cer field is not base64",
                        self.store
                    ))
                    .with_source(e)
                })
            }
            ObjectType::Key => {
                let jwk = value::jwk_json(bundle.get("key").unwrap_or(&Value::Null));
                value::property_of(&jwk, property, &remote.key).map_err(with_store)
            }
        }
    }

    /// Sets a secret; a name held by a soft-deleted secret is recovered first and then set,
    /// as upstream does.
    async fn set_secret(&self, name: &str, body: &Value) -> Result<(), ProviderError> {
        let what = format!("writing secret {name:?}");
        let first = self
            .send(
                Method::PUT,
                &["secrets", name],
                &[],
                Some(body),
                call::SET_SECRET,
                &what,
            )
            .await;
        match first {
            Err(e)
                if e.kind() == ErrorKind::InvalidRequest
                    && e.message().contains("ObjectIsDeletedButRecoverable") =>
            {
                self.recover_secret(name).await?;
                self.send(
                    Method::PUT,
                    &["secrets", name],
                    &[],
                    Some(body),
                    call::SET_SECRET,
                    &what,
                )
                .await?;
            }
            other => {
                other?;
            }
        }
        self.forget(ObjectType::Secret, name);
        Ok(())
    }

    async fn recover_secret(&self, name: &str) -> Result<(), ProviderError> {
        let what = format!("recovering soft-deleted secret {name:?}");
        self.send(
            Method::POST,
            &["deletedsecrets", name, "recover"],
            &[],
            None,
            call::RECOVER_SECRET,
            &what,
        )
        .await?;
        // Recovery completes in the background; wait until the secret reads again.
        let deadline = tokio::time::Instant::now() + self.tuning.recovery_timeout;
        loop {
            if let Some(bundle) = self.get_fresh(ObjectType::Secret, name).await? {
                if !managed(&bundle) {
                    return Err(ProviderError::invalid_request(format!(
                        "{}: cannot update recovered secret {name:?}: not managed by external-secrets",
                        self.store
                    )));
                }
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProviderError::unavailable(format!(
                    "{}: recovered secret {name:?} did not become available within {:?}",
                    self.store, self.tuning.recovery_timeout
                )));
            }
            tokio::time::sleep(self.tuning.recovery_poll_interval).await;
        }
    }
}

fn managed(bundle: &Value) -> bool {
    bundle
        .get("tags")
        .and_then(|t| t.get(MANAGED_BY))
        .and_then(Value::as_str)
        == Some(MANAGER)
}

/// PushSecret metadata (`PushSecretMetadata` envelope, as upstream's `PushSecretMetadataSpec`).
struct PushMetadata {
    expires: Option<i64>,
    content_type: Option<String>,
    tags: BTreeMap<String, String>,
}

fn push_metadata(metadata: Option<&Value>) -> Result<PushMetadata, String> {
    let mut out = PushMetadata {
        expires: None,
        content_type: None,
        tags: BTreeMap::new(),
    };
    let Some(m) = metadata.filter(|m| !m.is_null()) else {
        return Ok(out);
    };
    if let Some(kind) = m.get("kind").and_then(Value::as_str)
        && kind != "PushSecretMetadata"
    {
        return Err(format!(
            "push metadata has kind {kind:?}, expected PushSecretMetadata"
        ));
    }
    let Some(spec) = m.get("spec").filter(|s| !s.is_null()) else {
        return Ok(out);
    };
    let spec = spec
        .as_object()
        .ok_or("push metadata spec must be an object")?;
    if let Some(date) = spec
        .get("expirationDate")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        let ts: jiff::Timestamp = date.parse().map_err(|_| {
            format!(
                "error parsing expiration date in metadata: {date:?}. Expected format: YYYY-MM-DDTHH:MM:SSZ (RFC3339). Example: 2024-12-31T20:00:00Z"
            )
        })?;
        out.expires = Some(ts.as_second());
    }
    out.content_type = spec
        .get("contentType")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if let Some(tags) = spec.get("tags").filter(|t| !t.is_null()) {
        let tags = tags
            .as_object()
            .ok_or("push metadata tags must be an object")?;
        for (k, v) in tags {
            if k == MANAGED_BY {
                return Err(format!(
                    "error parsing tags in metadata: Cannot specify a '{MANAGED_BY}' tag"
                ));
            }
            let v = v
                .as_str()
                .ok_or_else(|| format!("push metadata tag {k:?} must be a string"))?;
            out.tags.insert(k.clone(), v.to_owned());
        }
    }
    Ok(out)
}

fn tags_with_marker(tags: &BTreeMap<String, String>) -> Value {
    let mut m: Map<String, Value> = tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    m.insert(MANAGED_BY.into(), json!(MANAGER));
    Value::Object(m)
}

/// Whether an imported key is the same key: same type family and public parameters.
fn same_key(new: &Map<String, Value>, old: &Value) -> bool {
    let family = |k: Option<&str>| k.map(|k| k.trim_end_matches("-HSM").to_owned());
    if family(new.get("kty").and_then(Value::as_str))
        != family(old.get("kty").and_then(Value::as_str))
    {
        return false;
    }
    let fields: &[&str] = match new.get("kty").and_then(Value::as_str) {
        Some("RSA") => &["n", "e"],
        Some("EC") => &["crv", "x", "y"],
        _ => return false,
    };
    fields
        .iter()
        .all(|f| new.get(*f).is_some() && new.get(*f) == old.get(*f))
}

#[async_trait]
impl SecretsClient for AzureKvClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        self.read(remote).await
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let (t, name) = self.split(&remote.key)?;
        match t {
            ObjectType::Certificate => {
                return Err(ProviderError::invalid_request(format!(
                    "{}: key {:?}: cannot use dataFrom to get a certificate",
                    self.store, remote.key
                )));
            }
            ObjectType::Key => {
                return Err(ProviderError::invalid_request(format!(
                    "{}: key {:?}: cannot use dataFrom to get a key",
                    self.store, remote.key
                )));
            }
            ObjectType::Secret => {}
        }
        let data = self.read(remote).await?;
        if remote.metadata_policy == Some(MetadataPolicy::Fetch) {
            let version = remote.version.as_deref().unwrap_or_default();
            let bundle = self.get_bundle(t, name, version).await?;
            let tags = value::tag_map(name, &bundle);
            let property = remote.property.as_deref().unwrap_or_default();
            if property.is_empty() {
                return Ok(tags.into_iter().map(|(k, v)| (k, v.into_bytes())).collect());
            }
            // As upstream: the one tag `<key>_<property>`, empty when it does not exist.
            let wanted = format!("{}_{property}", remote.key);
            let v = value::tag_value(&tags, &wanted).unwrap_or_default();
            return Ok([(wanted, v)].into());
        }
        value::json_map(&data, &remote.key)
            .map_err(|e| ProviderError::new(e.kind(), format!("{}: {}", self.store, e.message())))
    }

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        let matcher = FindMatcher::new(find)?;
        let mut out = SecretData::new();
        let mut next: Option<Url> = Some(self.url(&["secrets"], &[]));
        let what = "listing secrets".to_owned();
        while let Some(page_url) = next.take() {
            let page = self.send_url(page_url, call::GET_SECRETS, &what).await?;
            for item in page
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(id) = item.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let enabled = item
                    .pointer("/attributes/enabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if !enabled || !matcher.matches_tags(&value::tags(item)) {
                    continue;
                }
                let name = id
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                if name.is_empty() || !matcher.matches_name(name) {
                    continue;
                }
                let bundle = self.get_bundle(ObjectType::Secret, name, "").await?;
                if let Some(v) = bundle.get("value").and_then(Value::as_str) {
                    out.insert(name.to_owned(), v.as_bytes().to_vec());
                }
            }
            next = page
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .and_then(|s| Url::parse(s).ok());
        }
        Ok(out)
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let key = &request.remote.remote_key;
        let (t, name) = value::split_key(key).map_err(|other| {
            ProviderError::invalid_request(format!(
                "{}: secret type {other} not supported",
                self.store
            ))
        })?;
        let meta = push_metadata(request.metadata.as_ref()).map_err(|m| {
            ProviderError::invalid_request(format!("{}: pushing {key:?}: {m}", self.store))
        })?;
        let existing = self.get_fresh(t, name).await?;
        if let Some(bundle) = &existing
            && !managed(bundle)
        {
            return Err(ProviderError::invalid_request(format!(
                "{}: {} {name:?} is not managed by external-secrets (no tag {MANAGED_BY}={MANAGER}); it is left alone",
                self.store,
                t.noun()
            )));
        }
        match t {
            ObjectType::Secret => {
                let value = String::from_utf8_lossy(&request.value).into_owned();
                if let Some(b) = &existing {
                    let same_value = b.get("value").and_then(Value::as_str) == Some(value.as_str());
                    let same_exp =
                        b.pointer("/attributes/exp").and_then(Value::as_i64) == meta.expires;
                    let same_type = meta.content_type.is_none()
                        || b.get("contentType").and_then(Value::as_str)
                            == meta.content_type.as_deref();
                    if same_value && same_exp && same_type {
                        return Ok(());
                    }
                }
                let content_type = meta.content_type.clone().or_else(|| {
                    existing
                        .as_ref()
                        .and_then(|b| b.get("contentType").and_then(Value::as_str))
                        .map(str::to_owned)
                });
                let mut attributes = json!({"enabled": true});
                if let Some(exp) = meta.expires {
                    attributes["exp"] = json!(exp);
                }
                let mut body = json!({
                    "value": value,
                    "tags": tags_with_marker(&meta.tags),
                    "attributes": attributes,
                });
                if let Some(ct) = content_type {
                    body["contentType"] = json!(ct);
                }
                self.set_secret(name, &body).await
            }
            ObjectType::Key => {
                let jwk = crypto::jwk_from_value(&request.value).map_err(|m| {
                    ProviderError::invalid_request(format!(
                        "{}: could not load private key {name:?}: {m}",
                        self.store
                    ))
                })?;
                if let Some(old) = existing.as_ref().and_then(|b| b.get("key"))
                    && same_key(&jwk, old)
                {
                    return Ok(());
                }
                let body = json!({
                    "key": jwk,
                    "attributes": {},
                    "tags": tags_with_marker(&meta.tags),
                });
                let what = format!("importing key {name:?}");
                self.send(
                    Method::PUT,
                    &["keys", name],
                    &[],
                    Some(&body),
                    call::IMPORT_KEY,
                    &what,
                )
                .await?;
                self.forget(t, name);
                Ok(())
            }
            ObjectType::Certificate => {
                let der = crypto::leaf_certificate(&request.value).map_err(|m| {
                    ProviderError::invalid_request(format!(
                        "{}: value from secret is not a valid certificate: {m}",
                        self.store
                    ))
                })?;
                if let Some(cer) = existing
                    .as_ref()
                    .and_then(|b| b.get("cer"))
                    .and_then(Value::as_str)
                    && STANDARD.decode(cer).is_ok_and(|old| old == der)
                {
                    return Ok(());
                }
                let body = json!({
                    "value": STANDARD.encode(&request.value),
                    "tags": tags_with_marker(&meta.tags),
                });
                let what = format!("importing certificate {name:?}");
                self.send(
                    Method::POST,
                    &["certificates", name, "import"],
                    &[],
                    Some(&body),
                    call::IMPORT_CERTIFICATE,
                    &what,
                )
                .await?;
                self.forget(t, name);
                self.forget(ObjectType::Secret, name);
                Ok(())
            }
        }
    }

    async fn delete_secret(&self, remote: &PushRemoteRef) -> Result<(), ProviderError> {
        let key = &remote.remote_key;
        let (t, name) = value::split_key(key).map_err(|other| {
            ProviderError::invalid_request(format!(
                "{}: secret type '{other}' is not supported",
                self.store
            ))
        })?;
        let Some(bundle) = self.get_fresh(t, name).await? else {
            // Already gone: nothing to do.
            return Ok(());
        };
        if !managed(&bundle) {
            return Err(ProviderError::invalid_request(format!(
                "{}: {} {name:?} is not managed by external-secrets; it is not deleted",
                self.store,
                t.noun()
            )));
        }
        let what = format!("deleting {} {name:?}", t.noun());
        let result = self
            .send(
                Method::DELETE,
                &[t.collection(), name],
                &[],
                None,
                delete_call(t),
                &what,
            )
            .await;
        self.forget(t, name);
        if t == ObjectType::Certificate {
            self.forget(ObjectType::Secret, name);
        }
        match result {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn secret_exists(&self, remote: &PushRemoteRef) -> Result<bool, ProviderError> {
        let (t, name) = value::split_key(&remote.remote_key).map_err(|other| {
            ProviderError::invalid_request(format!(
                "{}: secret type '{other}' is not supported",
                self.store
            ))
        })?;
        Ok(self.get_fresh(t, name).await?.is_some())
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        // As upstream: building the client logged in; the vault itself is not probed.
        Ok(ValidationResult::Ready)
    }
}

impl AzureKvClient {
    /// A GET of a full URL (a `nextLink`), with the same token, retry and error handling.
    async fn send_url(
        &self,
        url: Url,
        label: &'static str,
        what: &str,
    ) -> Result<Value, ProviderError> {
        // A nextLink points into the same vault; anything else is refused rather than sent
        // our token.
        if url.origin() != self.vault.origin() {
            return Err(ProviderError::unavailable(format!(
                "{}: {what}: the vault's nextLink {url} points outside the vault",
                self.store
            )));
        }
        let path: Vec<String> = url
            .path_segments()
            .map(|s| s.map(str::to_owned).collect())
            .unwrap_or_default();
        let query: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "api-version")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let path: Vec<&str> = path
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        let query: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.send(Method::GET, &path, &query, None, label, what)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_metadata_follows_upstream() {
        let m = json!({"apiVersion": "kubernetes.external-secrets.io/v1alpha1", "kind": "PushSecretMetadata",
            "spec": {"expirationDate": "2024-12-31T20:00:00Z", "contentType": "text/plain", "tags": {"team": "a"}}});
        let p = push_metadata(Some(&m)).unwrap();
        assert_eq!(p.expires, Some(1_735_675_200));
        assert_eq!(p.content_type.as_deref(), Some("text/plain"));
        assert_eq!(p.tags["team"], "a");
        let bad = json!({"spec": {"tags": {"managed-by": "me"}}});
        assert_eq!(
            push_metadata(Some(&bad)).err().unwrap(),
            "error parsing tags in metadata: Cannot specify a 'managed-by' tag"
        );
        assert!(push_metadata(Some(&json!({"spec": {"expirationDate": "tomorrow"}}))).is_err());
        assert!(push_metadata(None).unwrap().tags.is_empty());
    }

    #[test]
    fn keys_compare_by_public_parameters() {
        let new: Map<String, Value> =
            serde_json::from_value(json!({"kty": "RSA", "n": "a", "e": "AQAB", "d": "x"})).unwrap();
        assert!(same_key(
            &new,
            &json!({"kty": "RSA", "n": "a", "e": "AQAB", "kid": "k"})
        ));
        assert!(same_key(
            &new,
            &json!({"kty": "RSA-HSM", "n": "a", "e": "AQAB"})
        ));
        assert!(!same_key(
            &new,
            &json!({"kty": "RSA", "n": "b", "e": "AQAB"})
        ));
        let ec: Map<String, Value> =
            serde_json::from_value(json!({"kty": "EC", "crv": "P-256", "x": "X", "y": "Y"}))
                .unwrap();
        assert!(same_key(
            &ec,
            &json!({"kty": "EC", "crv": "P-256", "x": "X", "y": "Y"})
        ));
        assert!(!same_key(
            &ec,
            &json!({"kty": "EC", "crv": "P-256", "x": "X", "y": "Z"})
        ));
    }

    #[test]
    fn retry_after_reads_seconds() {
        let v = reqwest::header::HeaderValue::from_static("7");
        assert_eq!(parse_retry_after(Some(&v)), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(None), None);
    }
}
