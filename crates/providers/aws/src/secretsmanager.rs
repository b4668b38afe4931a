//! [`SecretsManagerClient`]: the client of a `service: SecretsManager` store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use eso_api::provider::AwsSecretsManager;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, MetadataPolicy};
use eso_provider::find::FindMatcher;
use eso_provider::{
    ErrorKind, ProviderError, PushRemoteRef, PushRequest, SecretData, SecretsClient,
    ValidationResult,
};
use futures::StreamExt;

use crate::batch::{Answers, BatchQueue};
use crate::credentials::{self, StoreCredentials};
use crate::error::from_sdk;
use crate::metrics::{SECRETS_MANAGER, observe};
use crate::value::{self, is_managed};
use crate::{ClientSettings, Service};
use eso_provider::cache::ReadCache;

/// The most ids `BatchGetSecretValue` takes at once.
const BATCH_SIZE: usize = 20;
/// Single reads a `find` runs at once when it cannot batch.
const FIND_CONCURRENCY: usize = 8;
const CURRENT_STAGE: &str = "AWSCURRENT";

/// Which version of a secret a read asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Version {
    Stage(String),
    Id(String),
}

impl Version {
    /// Upstream's rules (`uuid/<id>` is an id, anything else a stage, `AWSCURRENT` when
    /// empty), plus: a bare UUID is an id, since no stage looks like one.
    fn parse(version: Option<&str>) -> Self {
        match version.map(str::trim).filter(|v| !v.is_empty()) {
            None => Self::Stage(CURRENT_STAGE.to_owned()),
            Some(v) => match v.strip_prefix("uuid/") {
                Some(id) => Self::Id(id.to_owned()),
                None if is_uuid(v) => Self::Id(v.to_owned()),
                None => Self::Stage(v.to_owned()),
            },
        }
    }

    fn current() -> Self {
        Self::Stage(CURRENT_STAGE.to_owned())
    }

    fn describe(&self) -> Option<String> {
        match self {
            Self::Stage(s) if s == CURRENT_STAGE => None,
            Self::Stage(s) => Some(format!("stage {s}")),
            Self::Id(id) => Some(format!("version {id}")),
        }
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Upstream's `bumpVersionNumber`: the next version id as a number, so that two operators
/// pushing the same change make one version (the token is PutSecretValue's idempotency key).
fn next_version_token(current: Option<&str>) -> Option<String> {
    let Some(current) = current else {
        return Some("00000000-0000-0000-0000-000000000001".to_owned());
    };
    let hex: String = current.chars().filter(|c| *c != '-').collect();
    let n = u128::from_str_radix(&hex, 16).ok()?.wrapping_add(1);
    let s = format!("{n:032x}");
    Some(format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    ))
}

type BatchAnswers = Answers<SecretValue>;

/// One `find` result: a name and its value.
type Entry = (String, Vec<u8>);

/// A secret's value as AWS holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Payload {
    Text(String),
    Binary(Vec<u8>),
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Text(s) => s.as_bytes(),
            Self::Binary(b) => b,
        }
    }
}

/// One read answer.
#[derive(Debug, Clone)]
struct SecretValue {
    arn: Option<String>,
    version_id: Option<String>,
    payload: Payload,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ReadKey {
    Value(String, Version),
    Tags(String),
}

impl ReadKey {
    fn name(&self) -> &str {
        match self {
            Self::Value(n, _) | Self::Tags(n) => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PushFormat {
    Binary,
    Text,
}

/// The client of one Secrets Manager store: one SDK client with the store's cached
/// credentials, and a read cache that coalesces identical reads. Build it through
/// [`crate::AwsProvider`].
pub struct SecretsManagerClient {
    sm: aws_sdk_secretsmanager::Client,
    credentials: StoreCredentials,
    prefix: String,
    deletion: AwsSecretsManager,
    reads: ReadCache<ReadKey, Arc<SecretValueOrTags>>,
    batch: AtomicBool,
    queue: BatchQueue<SecretValue>,
    page_size: i32,
    store: String,
}

/// What the read cache holds.
#[derive(Debug)]
enum SecretValueOrTags {
    Value(SecretValue),
    Tags(BTreeMap<String, String>),
}

impl std::fmt::Debug for SecretsManagerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerClient")
            .field("store", &self.store)
            .field("identity", &self.credentials.base)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn tags_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn not_found(key: &str, version: &Version) -> ProviderError {
    match version.describe() {
        Some(v) => ProviderError::new(ErrorKind::NotFound, format!("secret {key:?} has no {v}")),
        None => ProviderError::not_found(key),
    }
}

impl SecretsManagerClient {
    pub(crate) fn new(
        settings: ClientSettings,
        credentials: StoreCredentials,
        deletion: AwsSecretsManager,
    ) -> Self {
        let config = &settings.config;
        let mut b = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials.provider.clone())
            .retry_config(config.retry_config())
            .timeout_config(config.timeout_config());
        if let Some(url) = config.endpoint_for(Service::SecretsManager) {
            b = b.endpoint_url(url);
        }
        Self {
            sm: aws_sdk_secretsmanager::Client::from_conf(b.build()),
            credentials,
            prefix: settings.prefix,
            deletion,
            reads: ReadCache::new(config.read_cache_ttl),
            batch: AtomicBool::new(config.batch_reads),
            queue: BatchQueue::new(config.batch_window, BATCH_SIZE),
            page_size: config.list_page_size,
            store: settings.store,
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn invalidate(&self, name: &str) {
        self.reads.invalidate_where(|k| k.name() == name);
    }

    // ----- reads --------------------------------------------------------------------------

    /// `GetSecretValue`, always from AWS. A secret scheduled for deletion is not found, as
    /// upstream treats it.
    async fn fetch_value(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<SecretValue, ProviderError> {
        let mut req = self.sm.get_secret_value().secret_id(name);
        req = match version {
            Version::Stage(s) => req.version_stage(s),
            Version::Id(id) => req.version_id(id),
        };
        let result = req.send().await;
        observe(SECRETS_MANAGER, "GetSecretValue", &result);
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                let deleted = e.as_service_error().is_some_and(|s| {
                    s.is_invalid_request_exception()
                        // AWS says "marked for deletion", moto "marked deleted".
                        && s.message().is_some_and(|m| {
                            m.contains("marked for deletion") || m.contains("marked deleted")
                        })
                });
                let e = from_sdk(e, format!("{}: reading secret {name:?}", self.store));
                return Err(if deleted || e.is_not_found() {
                    not_found(name, version).with_source(e)
                } else {
                    e
                });
            }
        };
        let payload = match (out.secret_string(), out.secret_binary()) {
            (Some(s), _) => Payload::Text(s.to_owned()),
            (None, Some(b)) => Payload::Binary(b.as_ref().to_vec()),
            (None, None) => Payload::Text(String::new()),
        };
        Ok(SecretValue {
            arn: out.arn().map(str::to_owned),
            version_id: out.version_id().map(str::to_owned),
            payload,
        })
    }

    /// A value from the cache or one shared request.
    async fn read_value(&self, name: &str, version: Version) -> Result<SecretValue, ProviderError> {
        let key = ReadKey::Value(name.to_owned(), version.clone());
        let got = self
            .reads
            .get(key, || async {
                let current = version == Version::current();
                let value = if current && self.queue.enabled() && self.batch.load(Ordering::Relaxed)
                {
                    self.queue
                        .get(
                            name,
                            |ids| async move { self.batch_call(&ids).await },
                            |id| async move { self.fetch_value(&id, &Version::current()).await },
                        )
                        .await?
                } else {
                    self.fetch_value(name, &version).await?
                };
                Ok(Arc::new(SecretValueOrTags::Value(value)))
            })
            .await?;
        match &*got {
            SecretValueOrTags::Value(v) => Ok(v.clone()),
            SecretValueOrTags::Tags(_) => Err(ProviderError::unavailable("read cache mix-up")),
        }
    }

    /// `DescribeSecret`'s tags, always from AWS.
    async fn fetch_tags(&self, name: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        let result = self.sm.describe_secret().secret_id(name).send().await;
        observe(SECRETS_MANAGER, "DescribeSecret", &result);
        let out = result.map_err(|e| {
            let e = from_sdk(e, format!("{}: describing secret {name:?}", self.store));
            if e.is_not_found() {
                ProviderError::not_found(name).with_source(e)
            } else {
                e
            }
        })?;
        Ok(tags_map(out.tags()))
    }

    async fn read_tags(&self, name: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        let got = self
            .reads
            .get(ReadKey::Tags(name.to_owned()), || async {
                Ok(Arc::new(SecretValueOrTags::Tags(
                    self.fetch_tags(name).await?,
                )))
            })
            .await?;
        match &*got {
            SecretValueOrTags::Tags(t) => Ok(t.clone()),
            SecretValueOrTags::Value(_) => Err(ProviderError::unavailable("read cache mix-up")),
        }
    }

    /// The current value for a write decision; `None` when the secret does not exist.
    async fn current(&self, name: &str) -> Result<Option<SecretValue>, ProviderError> {
        match self
            .fetch_value(name, &Version::Stage(CURRENT_STAGE.to_owned()))
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every secret `ListSecrets` returns for the find's server-side filters, with its tags,
    /// then filtered here by name regexp, path and exact tags.
    async fn list(
        &self,
        matcher: &FindMatcher,
        find: &ExternalSecretFind,
    ) -> Result<Vec<String>, ProviderError> {
        let mut filters = Vec::new();
        if let Some(path) = matcher.path() {
            filters.push(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(path)
                    .build(),
            );
        }
        for (k, v) in &find.tags {
            filters.push(
                Filter::builder()
                    .key(FilterNameStringType::TagKey)
                    .values(k)
                    .build(),
            );
            filters.push(
                Filter::builder()
                    .key(FilterNameStringType::TagValue)
                    .values(v)
                    .build(),
            );
        }
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let result = self
                .sm
                .list_secrets()
                .set_filters((!filters.is_empty()).then(|| filters.clone()))
                .max_results(self.page_size)
                .set_next_token(token.take())
                .send()
                .await;
            observe(SECRETS_MANAGER, "ListSecrets", &result);
            let out =
                result.map_err(|e| from_sdk(e, format!("{}: listing secrets", self.store)))?;
            for entry in out.secret_list() {
                let Some(name) = entry.name() else { continue };
                if entry.deleted_date().is_some() {
                    continue;
                }
                if matcher.matches_name(name)
                    && matcher.matches_path(name)
                    && matcher.matches_tags(&tags_map(entry.tags()))
                {
                    names.push(name.to_owned());
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// One `BatchGetSecretValue` for up to 20 ids: an answer per id it covered, keyed by the
    /// id as asked (a name or an ARN). `Ok(None)` when the credentials may not batch; batching
    /// is then switched off for this client and callers read one by one.
    async fn batch_call(&self, ids: &[String]) -> Result<Option<BatchAnswers>, ProviderError> {
        let result = self
            .sm
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.to_vec()))
            .send()
            .await;
        observe(SECRETS_MANAGER, "BatchGetSecretValue", &result);
        let answer = match result {
            Ok(a) => a,
            Err(e) => {
                let e = from_sdk(e, format!("{}: reading secrets in a batch", self.store));
                if e.kind() == ErrorKind::Auth {
                    tracing::info!(store = %self.store, error = %e.chain(), "BatchGetSecretValue refused; reading secrets one by one");
                    self.batch.store(false, Ordering::Relaxed);
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let mut out = BatchAnswers::new();
        for v in answer.secret_values() {
            let payload = match (v.secret_string(), v.secret_binary()) {
                (Some(s), _) => Payload::Text(s.to_owned()),
                (None, Some(b)) => Payload::Binary(b.as_ref().to_vec()),
                (None, None) => Payload::Text(String::new()),
            };
            let value = SecretValue {
                arn: v.arn().map(str::to_owned),
                version_id: v.version_id().map(str::to_owned),
                payload,
            };
            if let Some(id) = ids
                .iter()
                .find(|id| Some(id.as_str()) == v.name() || Some(id.as_str()) == v.arn())
            {
                out.insert(id.clone(), Ok(value));
            }
        }
        for err in answer.errors() {
            let Some(id) = err.secret_id() else { continue };
            let code = err.error_code().unwrap_or_default();
            let message = err.message().unwrap_or_default();
            let deleted =
                message.contains("marked for deletion") || message.contains("marked deleted");
            let kind = crate::error::classify(Some(code), None, crate::error::Failure::Service);
            let e = if deleted || kind == ErrorKind::NotFound {
                not_found(id, &Version::current())
            } else {
                ProviderError::new(
                    kind,
                    format!("{}: reading secret {id:?} in a batch ({code})", self.store),
                )
                .with_source(message.to_owned())
            };
            out.insert(id.to_owned(), Err(e));
        }
        Ok(Some(out))
    }

    /// Values of `names` for `find`, 20 per `BatchGetSecretValue`; `None` when the credentials
    /// may not batch.
    async fn batch_values(&self, names: &[String]) -> Result<Option<SecretData>, ProviderError> {
        let mut out = SecretData::new();
        for chunk in names.chunks(BATCH_SIZE) {
            let Some(mut answers) = self.batch_call(chunk).await? else {
                return Ok(None);
            };
            for name in chunk {
                let value = match answers.remove(name) {
                    Some(r) => r,
                    None => self.fetch_value(name, &Version::current()).await,
                };
                match value {
                    Ok(v) => {
                        out.insert(name.clone(), v.payload.bytes().to_vec());
                    }
                    // Listed, then deleted.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(Some(out))
    }

    async fn single_values(&self, names: Vec<String>) -> Result<SecretData, ProviderError> {
        let results: Vec<Result<Option<Entry>, ProviderError>> = futures::stream::iter(names)
            .map(|name| async move {
                match self
                    .read_value(&name, Version::Stage(CURRENT_STAGE.to_owned()))
                    .await
                {
                    Ok(v) => Ok(Some((name, v.payload.bytes().to_vec()))),
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

    // ----- writes -------------------------------------------------------------------------

    async fn put_value(
        &self,
        id: &str,
        payload: &Payload,
        current_version: Option<&str>,
    ) -> Result<(), ProviderError> {
        let mut req = self
            .sm
            .put_secret_value()
            .secret_id(id)
            .set_client_request_token(next_version_token(current_version));
        req = match payload {
            Payload::Text(s) => req.secret_string(s),
            Payload::Binary(b) => req.secret_binary(Blob::new(b.clone())),
        };
        let result = req.send().await;
        observe(SECRETS_MANAGER, "PutSecretValue", &result);
        result
            .map(|_| ())
            .map_err(|e| from_sdk(e, format!("{}: writing secret {id:?}", self.store)))
    }
}

fn payload_for(format: PushFormat, bytes: Vec<u8>) -> Payload {
    match format {
        PushFormat::Binary => Payload::Binary(bytes),
        PushFormat::Text => Payload::Text(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

#[async_trait]
impl SecretsClient for SecretsManagerClient {
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
                        format!("secret {name:?} has no tag {p:?}"),
                    )
                }),
            };
        }
        let value = self
            .read_value(&name, Version::parse(remote.version.as_deref()))
            .await?;
        match property {
            None => Ok(value.payload.bytes().to_vec()),
            Some(p) => value::property_of(value.payload.bytes(), p, &name),
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
        if !matcher.has_name() && !matcher.has_tags() && matcher.path().is_none() {
            return Err(ProviderError::invalid_request(
                "find needs a name regexp, tags or a path",
            ));
        }
        let names = self.list(&matcher, find).await?;
        if names.is_empty() {
            return Ok(SecretData::new());
        }
        if self.batch.load(Ordering::Relaxed)
            && let Some(values) = self.batch_values(&names).await?
        {
            return Ok(values);
        }
        self.single_values(names).await
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        if request.remote.remote_key.is_empty() {
            return Err(ProviderError::invalid_request("the remote key is empty"));
        }
        let name = self.full_key(&request.remote.remote_key);
        let spec = value::metadata_spec(request.metadata.as_ref())?;
        let format = match value::spec_str(&spec, "secretPushFormat")? {
            None | Some("binary") => PushFormat::Binary,
            Some("string") => PushFormat::Text,
            Some(other) => {
                return Err(ProviderError::invalid_request(format!(
                    "push metadata secretPushFormat {other:?} must be binary or string"
                )));
            }
        };
        let wanted = value::wanted_tags(&spec)?;
        let current = self.current(&name).await?;
        let bytes = match request.remote.property.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => value::merge_property(
                current.as_ref().map(|c| c.payload.bytes()),
                p,
                &request.value,
                &name,
            )?,
            None => request.value.clone(),
        };
        let payload = payload_for(format, bytes);
        let result = async {
            let Some(current) = current else {
                let mut req = self
                    .sm
                    .create_secret()
                    .name(&name)
                    .set_tags(Some(sdk_tags(&wanted)))
                    .set_description(value::spec_str(&spec, "description")?.map(str::to_owned))
                    .set_kms_key_id(value::spec_str(&spec, "kmsKeyID")?.map(str::to_owned))
                    .client_request_token(next_version_token(None).unwrap_or_default());
                req = match &payload {
                    Payload::Text(s) => req.secret_string(s),
                    Payload::Binary(b) => req.secret_binary(Blob::new(b.clone())),
                };
                let result = req.send().await;
                observe(SECRETS_MANAGER, "CreateSecret", &result);
                return result
                    .map(|_| ())
                    .map_err(|e| from_sdk(e, format!("{}: creating secret {name:?}", self.store)));
            };
            let tags = self.fetch_tags(&name).await?;
            if !is_managed(&tags) {
                return Err(value::not_managed(&name));
            }
            let id = current.arn.clone().unwrap_or_else(|| name.clone());
            let missing = value::missing_tags(&tags, &wanted);
            if !missing.is_empty() {
                let result = self
                    .sm
                    .tag_resource()
                    .secret_id(&id)
                    .set_tags(Some(sdk_tags(&missing)))
                    .send()
                    .await;
                observe(SECRETS_MANAGER, "TagResource", &result);
                result
                    .map_err(|e| from_sdk(e, format!("{}: tagging secret {name:?}", self.store)))?;
            }
            // Upstream compares bytes whatever the stored form.
            if current.payload.bytes() == payload.bytes() {
                return Ok(());
            }
            self.put_value(&id, &payload, current.version_id.as_deref())
                .await
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
            // Upstream leaves secrets it does not own alone, without an error.
            tracing::info!(store = %self.store, key = %name, "not deleting a secret external-secrets does not manage");
            return Ok(());
        }
        let id = current.arn.clone().unwrap_or_else(|| name.clone());
        let result = async {
            if let Some(p) = remote.property.as_deref().filter(|p| !p.is_empty())
                && let Some(rest) = value::remove_property(current.payload.bytes(), p, &name)?
            {
                let payload = match current.payload {
                    Payload::Text(_) => Payload::Text(String::from_utf8_lossy(&rest).into_owned()),
                    Payload::Binary(_) => Payload::Binary(rest),
                };
                if payload == current.payload {
                    return Ok(());
                }
                return self
                    .put_value(&id, &payload, current.version_id.as_deref())
                    .await;
            }
            let mut req = self.sm.delete_secret().secret_id(&id);
            if self.deletion.force_delete_without_recovery == Some(true) {
                req = req.force_delete_without_recovery(true);
            } else if let Some(days) = self.deletion.recovery_window_in_days.filter(|d| *d > 0) {
                req = req.recovery_window_in_days(days);
            }
            let result = req.send().await;
            observe(SECRETS_MANAGER, "DeleteSecret", &result);
            match result {
                Ok(_) => Ok(()),
                Err(e) => {
                    let e = from_sdk(e, format!("{}: deleting secret {name:?}", self.store));
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
            Some(p) => Ok(value::select(current.payload.bytes(), p, &name)?.is_some()),
        }
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        credentials::check(&self.credentials.provider, &self.store).await?;
        Ok(ValidationResult::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_ids_or_stages() {
        assert_eq!(Version::parse(None), Version::Stage("AWSCURRENT".into()));
        assert_eq!(
            Version::parse(Some("")),
            Version::Stage("AWSCURRENT".into())
        );
        assert_eq!(
            Version::parse(Some("AWSPREVIOUS")),
            Version::Stage("AWSPREVIOUS".into())
        );
        assert_eq!(Version::parse(Some("uuid/abc")), Version::Id("abc".into()));
        let id = "32e564a1-dde9-4d64-8b1f-714c83dc15e6";
        assert_eq!(Version::parse(Some(id)), Version::Id(id.into()));
    }

    #[test]
    fn version_tokens_count_up() {
        assert_eq!(
            next_version_token(None).unwrap(),
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(
            next_version_token(Some("00000000-0000-0000-0000-00000000000f")).unwrap(),
            "00000000-0000-0000-0000-000000000010"
        );
        assert_eq!(
            next_version_token(Some("32e564a1-dde9-4d64-8b1f-714c83dc15e6")).unwrap(),
            "32e564a1-dde9-4d64-8b1f-714c83dc15e7"
        );
        assert_eq!(next_version_token(Some("not-a-uuid")), None);
    }
}
