//! [`ParameterStoreClient`]: the client of a `service: ParameterStore` store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use aws_sdk_ssm::config::{BehaviorVersion, Region};
use aws_sdk_ssm::types::{
    Parameter, ParameterStringFilter, ParameterTier, ParameterType, ResourceTypeForTagging, Tag,
};
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, MetadataPolicy};
use eso_provider::find::FindMatcher;
use eso_provider::{
    ErrorKind, ProviderError, PushRemoteRef, PushRequest, SecretData, SecretsClient,
    ValidationResult,
};

use crate::batch::{Answers, BatchQueue};
use crate::credentials::{self, StoreCredentials};
use crate::error::from_sdk;
use crate::metrics::{PARAMETER_STORE, observe};
use crate::ratelimit::RateLimiter;
use crate::value::{self, is_managed};
use crate::{ClientSettings, Service};
use eso_provider::cache::ReadCache;

/// The most names `GetParameters` takes, and the largest `GetParametersByPath` page.
const GET_BATCH: usize = 10;
/// The largest `DescribeParameters` page.
const DESCRIBE_PAGE: i32 = 50;

/// One parameter as read.
#[derive(Debug, Clone)]
struct ParamValue {
    value: String,
    kind: Option<ParameterType>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ReadKey {
    /// (name, version or label).
    Value(String, Option<String>),
    Tags(String),
}

impl ReadKey {
    fn name(&self) -> &str {
        match self {
            Self::Value(n, _) | Self::Tags(n) => n,
        }
    }
}

#[derive(Debug)]
enum Cached {
    Value(ParamValue),
    Tags(BTreeMap<String, String>),
}

/// The client of one Parameter Store store: one SDK client with the store's cached
/// credentials, a read cache that coalesces identical reads, and a request pacer. Build it
/// through [`crate::AwsProvider`].
pub struct ParameterStoreClient {
    ssm: aws_sdk_ssm::Client,
    credentials: StoreCredentials,
    prefix: String,
    reads: ReadCache<ReadKey, Arc<Cached>>,
    limiter: Option<RateLimiter>,
    batch: AtomicBool,
    queue: BatchQueue<ParamValue>,
    page_size: i32,
    store: String,
}

impl std::fmt::Debug for ParameterStoreClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterStoreClient")
            .field("store", &self.store)
            .field("identity", &self.credentials.base)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| {
                ProviderError::invalid_request("a tag needs a key and a value").with_source(e)
            })
        })
        .collect()
}

fn filter(
    key: String,
    option: &str,
    values: Vec<String>,
) -> Result<ParameterStringFilter, ProviderError> {
    ParameterStringFilter::builder()
        .key(key)
        .option(option)
        .set_values(Some(values))
        .build()
        .map_err(|e| ProviderError::invalid_request("invalid parameter filter").with_source(e))
}

fn param_value(p: &Parameter) -> ParamValue {
    ParamValue {
        value: p.value().unwrap_or_default().to_owned(),
        kind: p.r#type().cloned(),
    }
}

impl ParameterStoreClient {
    pub(crate) fn new(settings: ClientSettings, credentials: StoreCredentials) -> Self {
        let config = &settings.config;
        let mut b = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials.provider.clone())
            .retry_config(config.retry_config())
            .timeout_config(config.timeout_config());
        if let Some(url) = config.endpoint_for(Service::Ssm) {
            b = b.endpoint_url(url);
        }
        Self {
            ssm: aws_sdk_ssm::Client::from_conf(b.build()),
            credentials,
            prefix: settings.prefix,
            reads: ReadCache::new(config.read_cache_ttl),
            limiter: config.parameter_store_rate.map(RateLimiter::new),
            batch: AtomicBool::new(config.batch_reads),
            queue: BatchQueue::new(config.batch_window, GET_BATCH),
            page_size: config.list_page_size,
            store: settings.store,
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn pace(&self) {
        if let Some(l) = &self.limiter {
            l.acquire().await;
        }
    }

    fn invalidate(&self, name: &str) {
        self.reads.invalidate_where(|k| k.name() == name);
    }

    // ----- reads --------------------------------------------------------------------------

    /// `GetParameter` with decryption, always from AWS; `version` is a version number or a
    /// label (`name:version`, as upstream).
    async fn fetch_value(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<ParamValue, ProviderError> {
        let selector = match version {
            Some(v) => format!("{name}:{v}"),
            None => name.to_owned(),
        };
        self.pace().await;
        let result = self
            .ssm
            .get_parameter()
            .name(&selector)
            .with_decryption(true)
            .send()
            .await;
        observe(PARAMETER_STORE, "GetParameter", &result);
        let out = result.map_err(|e| {
            let e = from_sdk(e, format!("{}: reading parameter {selector:?}", self.store));
            if e.is_not_found() {
                let message = match version {
                    Some(v) => format!("parameter {name:?} has no version {v}"),
                    None => format!("parameter {name:?} does not exist"),
                };
                ProviderError::new(ErrorKind::NotFound, message).with_source(e)
            } else {
                e
            }
        })?;
        out.parameter().map(param_value).ok_or_else(|| {
            ProviderError::unavailable(format!(
                "{}: GetParameter for {selector:?} answered without a parameter",
                self.store
            ))
        })
    }

    async fn read_value(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<ParamValue, ProviderError> {
        let key = ReadKey::Value(name.to_owned(), version.map(str::to_owned));
        let got = self
            .reads
            .get(key, || async {
                let value = if version.is_none()
                    && self.queue.enabled()
                    && self.batch.load(Ordering::Relaxed)
                {
                    self.queue
                        .get(
                            name,
                            |ids| async move { self.batch_call(&ids).await },
                            |id| async move { self.fetch_value(&id, None).await },
                        )
                        .await?
                } else {
                    self.fetch_value(name, version).await?
                };
                Ok(Arc::new(Cached::Value(value)))
            })
            .await?;
        match &*got {
            Cached::Value(v) => Ok(v.clone()),
            Cached::Tags(_) => Err(ProviderError::unavailable("read cache mix-up")),
        }
    }

    async fn fetch_tags(&self, name: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        self.pace().await;
        let result = self
            .ssm
            .list_tags_for_resource()
            .resource_type(ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .send()
            .await;
        observe(PARAMETER_STORE, "ListTagsForResource", &result);
        let out = result.map_err(|e| {
            let e = from_sdk(e, format!("{}: reading the tags of {name:?}", self.store));
            // ListTagsForResource answers InvalidResourceId for a missing parameter.
            if e.is_not_found() || e.message().contains("InvalidResourceId") {
                ProviderError::not_found(name).with_source(e)
            } else {
                e
            }
        })?;
        Ok(out
            .tag_list()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }

    async fn read_tags(&self, name: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        let got = self
            .reads
            .get(ReadKey::Tags(name.to_owned()), || async {
                Ok(Arc::new(Cached::Tags(self.fetch_tags(name).await?)))
            })
            .await?;
        match &*got {
            Cached::Tags(t) => Ok(t.clone()),
            Cached::Value(_) => Err(ProviderError::unavailable("read cache mix-up")),
        }
    }

    async fn current(&self, name: &str) -> Result<Option<ParamValue>, ProviderError> {
        match self.fetch_value(name, None).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every parameter under a path, with values (`GetParametersByPath`, recursive).
    async fn by_path(
        &self,
        path: &str,
        matcher: &FindMatcher,
    ) -> Result<SecretData, ProviderError> {
        let mut out = SecretData::new();
        let mut token: Option<String> = None;
        loop {
            self.pace().await;
            let result = self
                .ssm
                .get_parameters_by_path()
                .path(path)
                .recursive(true)
                .with_decryption(true)
                .max_results(self.page_size.min(GET_BATCH as i32))
                .set_next_token(token.take())
                .send()
                .await;
            observe(PARAMETER_STORE, "GetParametersByPath", &result);
            let page = result.map_err(|e| {
                from_sdk(
                    e,
                    format!("{}: listing parameters under {path:?}", self.store),
                )
            })?;
            for p in page.parameters() {
                if let Some(name) = p.name()
                    && matcher.matches_name(name)
                {
                    out.insert(
                        name.to_owned(),
                        p.value().unwrap_or_default().as_bytes().to_vec(),
                    );
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Names `DescribeParameters` returns for the find's filters, then filtered by name here.
    async fn describe(
        &self,
        matcher: &FindMatcher,
        find: &ExternalSecretFind,
    ) -> Result<Vec<String>, ProviderError> {
        let mut filters = Vec::new();
        for (k, v) in &find.tags {
            filters.push(filter(format!("tag:{k}"), "Equals", vec![v.clone()])?);
        }
        if let Some(path) = matcher.path() {
            if path.starts_with('/') {
                let dir = if path.len() > 1 {
                    path.trim_end_matches('/')
                } else {
                    path
                };
                filters.push(filter("Path".into(), "Recursive", vec![dir.to_owned()])?);
            } else {
                filters.push(filter("Name".into(), "BeginsWith", vec![path.to_owned()])?);
            }
        }
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pace().await;
            let result = self
                .ssm
                .describe_parameters()
                .set_parameter_filters((!filters.is_empty()).then(|| filters.clone()))
                .max_results(self.page_size.min(DESCRIBE_PAGE))
                .set_next_token(token.take())
                .send()
                .await;
            observe(PARAMETER_STORE, "DescribeParameters", &result);
            let page = result
                .map_err(|e| from_sdk(e, format!("{}: describing parameters", self.store)))?;
            for p in page.parameters() {
                if let Some(name) = p.name()
                    && matcher.matches_name(name)
                    && matcher.matches_path(name)
                {
                    names.push(name.to_owned());
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// One `GetParameters` (with decryption) for up to ten names: an answer per name.
    /// `Ok(None)` when the credentials may not batch (`ssm:GetParameters` not granted);
    /// batching is then switched off for this client.
    async fn batch_call(
        &self,
        names: &[String],
    ) -> Result<Option<Answers<ParamValue>>, ProviderError> {
        self.pace().await;
        let result = self
            .ssm
            .get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(true)
            .send()
            .await;
        observe(PARAMETER_STORE, "GetParameters", &result);
        let page = match result {
            Ok(p) => p,
            Err(e) => {
                let e = from_sdk(e, format!("{}: reading parameters", self.store));
                if e.kind() == ErrorKind::Auth {
                    tracing::info!(store = %self.store, error = %e.chain(), "GetParameters refused; reading parameters one by one");
                    self.batch.store(false, Ordering::Relaxed);
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let mut out = Answers::new();
        for p in page.parameters() {
            if let Some(name) = p.name() {
                out.insert(name.to_owned(), Ok(param_value(p)));
            }
        }
        for name in page.invalid_parameters() {
            out.insert(
                name.clone(),
                Err(ProviderError::new(
                    ErrorKind::NotFound,
                    format!("parameter {name:?} does not exist"),
                )),
            );
        }
        Ok(Some(out))
    }

    /// Values of `names` for `find`, ten per `GetParameters`; names that vanished meanwhile
    /// are skipped.
    async fn values(&self, names: &[String]) -> Result<SecretData, ProviderError> {
        let mut out = SecretData::new();
        for chunk in names.chunks(GET_BATCH) {
            let mut answers = if self.batch.load(Ordering::Relaxed) {
                self.batch_call(chunk).await?.unwrap_or_default()
            } else {
                Answers::new()
            };
            for name in chunk {
                let value = match answers.remove(name) {
                    Some(r) => r,
                    None => self.read_value(name, None).await,
                };
                match value {
                    Ok(v) => {
                        out.insert(name.clone(), v.value.into_bytes());
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    async fn put(
        &self,
        name: &str,
        value: &str,
        kind: ParameterType,
        overwrite: bool,
        spec: &serde_json::Map<String, serde_json::Value>,
        tags: Option<&BTreeMap<String, String>>,
    ) -> Result<(), ProviderError> {
        let tier = match spec
            .get("tier")
            .and_then(|t| t.get("type"))
            .and_then(serde_json::Value::as_str)
        {
            None | Some("") => None,
            Some(t) => Some(ParameterTier::from(t)),
        };
        let key_id = match kind {
            ParameterType::SecureString => value::spec_str(spec, "kmsKeyID")?.map(str::to_owned),
            _ => None,
        };
        let mut req = self
            .ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(overwrite)
            .set_tier(tier)
            .set_key_id(key_id);
        if let Some(tags) = tags {
            req = req.set_tags(Some(sdk_tags(tags)?));
        }
        self.pace().await;
        let result = req.send().await;
        observe(PARAMETER_STORE, "PutParameter", &result);
        result
            .map(|_| ())
            .map_err(|e| from_sdk(e, format!("{}: writing parameter {name:?}", self.store)))
    }
}

#[async_trait]
impl SecretsClient for ParameterStoreClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        let name = self.full_key(&remote.key);
        let property = remote.property.as_deref().filter(|p| !p.is_empty());
        if remote.metadata_policy == Some(MetadataPolicy::Fetch) {
            let tags = self.read_tags(&name).await?;
            return match property {
                None => serde_json::to_vec(&tags).map_err(|e| {
                    ProviderError::invalid_request("cannot encode the tags").with_source(e)
                }),
                Some(p) => tags.get(p).map(|v| v.as_bytes().to_vec()).ok_or_else(|| {
                    ProviderError::new(
                        ErrorKind::NotFound,
                        format!("parameter {name:?} has no tag {p:?}"),
                    )
                }),
            };
        }
        let version = remote.version.as_deref().filter(|v| !v.is_empty());
        let value = self.read_value(&name, version).await?;
        match property {
            None => Ok(value.value.into_bytes()),
            Some(p) => value::property_of(value.value.as_bytes(), p, &name),
        }
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let bytes = self.get_secret(remote).await?;
        value::decode_map(&bytes, &remote.key)
    }

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        let matcher = FindMatcher::new(find)?;
        if !matcher.has_tags()
            && let Some(path) = matcher.path().filter(|p| p.starts_with('/'))
        {
            // The listing carries the values: one call per ten parameters, nothing else.
            return self.by_path(path, &matcher).await;
        }
        if !matcher.has_name() && !matcher.has_tags() && matcher.path().is_none() {
            return Err(ProviderError::invalid_request(
                "find needs a name regexp, tags or a path",
            ));
        }
        let names = self.describe(&matcher, find).await?;
        self.values(&names).await
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        if request.remote.remote_key.is_empty() {
            return Err(ProviderError::invalid_request("the remote key is empty"));
        }
        let name = self.full_key(&request.remote.remote_key);
        let spec = value::metadata_spec(request.metadata.as_ref())?;
        let kind = match value::spec_str(&spec, "secretType")? {
            None | Some("SecureString") => ParameterType::SecureString,
            Some("String") => ParameterType::String,
            Some("StringList") => ParameterType::StringList,
            Some(other) => {
                return Err(ProviderError::invalid_request(format!(
                    "push metadata secretType {other:?} must be String, StringList or SecureString"
                )));
            }
        };
        let wanted = value::wanted_tags(&spec)?;
        let current = self.current(&name).await?;
        let bytes = match request.remote.property.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => value::merge_property(
                current.as_ref().map(|c| c.value.as_bytes()),
                p,
                &request.value,
                &name,
            )?,
            None => request.value.clone(),
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            ProviderError::invalid_request(format!(
                "the value pushed to parameter {name:?} is not UTF-8 text"
            ))
            .with_source(e)
        })?;
        let result = async {
            let Some(current) = current else {
                return self
                    .put(&name, &text, kind, false, &spec, Some(&wanted))
                    .await;
            };
            let tags = self.fetch_tags(&name).await?;
            if !is_managed(&tags) {
                return Err(value::not_managed(&name));
            }
            let missing = value::missing_tags(&tags, &wanted);
            if !missing.is_empty() {
                self.pace().await;
                let result = self
                    .ssm
                    .add_tags_to_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(&name)
                    .set_tags(Some(sdk_tags(&missing)?))
                    .send()
                    .await;
                observe(PARAMETER_STORE, "AddTagsToResource", &result);
                result.map_err(|e| {
                    from_sdk(e, format!("{}: tagging parameter {name:?}", self.store))
                })?;
            }
            if current.value == text && current.kind.as_ref() == Some(&kind) {
                return Ok(());
            }
            // Tags cannot be sent with an overwrite; they were reconciled above.
            self.put(&name, &text, kind, true, &spec, None).await
        }
        .await;
        self.invalidate(&name);
        result
    }

    async fn delete_secret(&self, remote: &PushRemoteRef) -> Result<(), ProviderError> {
        let name = self.full_key(&remote.remote_key);
        let Some(current) = self.current(&name).await? else {
            return Ok(());
        };
        let tags = match self.fetch_tags(&name).await {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        if !is_managed(&tags) {
            tracing::info!(store = %self.store, key = %name, "not deleting a parameter external-secrets does not manage");
            return Ok(());
        }
        let result = async {
            if let Some(p) = remote.property.as_deref().filter(|p| !p.is_empty())
                && let Some(rest) = value::remove_property(current.value.as_bytes(), p, &name)?
            {
                let rest = String::from_utf8_lossy(&rest).into_owned();
                if rest == current.value {
                    return Ok(());
                }
                let kind = current.kind.clone().unwrap_or(ParameterType::SecureString);
                return self
                    .put(&name, &rest, kind, true, &serde_json::Map::new(), None)
                    .await;
            }
            self.pace().await;
            let result = self.ssm.delete_parameter().name(&name).send().await;
            observe(PARAMETER_STORE, "DeleteParameter", &result);
            match result {
                Ok(_) => Ok(()),
                Err(e) => {
                    let e = from_sdk(e, format!("{}: deleting parameter {name:?}", self.store));
                    if e.is_not_found() { Ok(()) } else { Err(e) }
                }
            }
        }
        .await;
        self.invalidate(&name);
        result
    }

    async fn secret_exists(&self, remote: &PushRemoteRef) -> Result<bool, ProviderError> {
        let name = self.full_key(&remote.remote_key);
        let Some(current) = self.current(&name).await? else {
            return Ok(false);
        };
        match remote.property.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(true),
            Some(p) => Ok(value::select(current.value.as_bytes(), p, &name)?.is_some()),
        }
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        credentials::check(&self.credentials.provider, &self.store).await?;
        Ok(ValidationResult::Ready)
    }
}
