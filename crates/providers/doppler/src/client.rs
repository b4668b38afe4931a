//! The Doppler client of one store: reads through the download endpoint (one secret, or all of
//! a config with the store's name transformer and format), with ETags; find; push, delete and
//! exists; validate.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
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
use crate::http::{Call, Http, HttpError};
use crate::metrics::{self, call};

/// The key upstream puts a formatted download under.
pub const SECRETS_FILE_KEY: &str = "DOPPLER_SECRETS_FILE";

/// What one download asks for: one secret (`secrets=`), or all with a transformer and format.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Download {
    pub(crate) secret: Option<String>,
    pub(crate) transformer: Option<&'static str>,
    pub(crate) format: Option<&'static str>,
}

/// A download's last body with its `ETag`.
pub(crate) type Tagged = (String, Arc<Vec<u8>>);

/// The Doppler client of one store.
pub struct DopplerClient {
    pub(crate) store: String,
    pub(crate) http: Http,
    pub(crate) base: Url,
    pub(crate) auth: TokenSource,
    pub(crate) project: Option<String>,
    pub(crate) config: Option<String>,
    pub(crate) transformer: Option<&'static str>,
    pub(crate) format: Option<&'static str>,
    /// The last body and ETag of each download, for `If-None-Match`.
    pub(crate) etags: Mutex<HashMap<Download, Tagged>>,
    pub(crate) reads: ReadCache<Download, Arc<Vec<u8>>>,
}

impl std::fmt::Debug for DopplerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DopplerClient")
            .field("store", &self.store)
            .field("project", &self.project)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The bytes upstream's `GetSecretMap` makes of a JSON object's values: strings unquoted,
/// anything else as its JSON text.
fn object_to_map(value: &[u8], key: &str, store: &str) -> Result<SecretData, ProviderError> {
    let not_object = || {
        ProviderError::invalid_request(format!(
            "{store}: Doppler secret {key:?} is not a JSON object, so it cannot be extracted"
        ))
    };
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(value) else {
        return Err(not_object());
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

impl DopplerClient {
    fn scope(&self) -> String {
        match (&self.project, &self.config) {
            (Some(p), Some(c)) => format!("project {p:?}, config {c:?}"),
            _ => "the service token's config".to_owned(),
        }
    }

    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        self.base.join(path).map_err(|e| {
            ProviderError::invalid_store(format!(
                "{}: the Doppler API URL does not make a URL",
                self.store
            ))
            .with_source(e)
        })
    }

    fn with_scope(&self, url: &mut Url) {
        let mut q = url.query_pairs_mut();
        if let Some(p) = &self.project {
            q.append_pair("project", p);
        }
        if let Some(c) = &self.config {
            q.append_pair("config", c);
        }
    }

    fn api_error(&self, e: HttpError, what: String) -> ProviderError {
        // A missing secret is an absent key in a 200 answer; a 404 names a missing project or
        // config: a misconfigured store, never a missing secret.
        let kind = match e.kind() {
            ErrorKind::NotFound => ErrorKind::InvalidStore,
            k => k,
        };
        e.into_provider_error(kind, what)
    }

    /// One download, with `If-None-Match` when this client has downloaded the same before.
    async fn fetch(&self, what: &Download) -> Result<Arc<Vec<u8>>, ProviderError> {
        let mut url = self.url("v3/configs/config/secrets/download")?;
        self.with_scope(&mut url);
        {
            let mut q = url.query_pairs_mut();
            if let Some(t) = what.transformer {
                q.append_pair("name_transformer", t);
            }
            if let Some(f) = what.format {
                q.append_pair("format", f);
            }
            if let Some(s) = &what.secret {
                q.append_pair("secrets", s);
            }
        }
        let token = self.auth.token(&self.store).await?;
        let mut call = Call::new(Method::GET, url).basic(&token, Some(""));
        if what.format.is_some_and(|f| f != "json") {
            call = call.header("accept", "text/plain");
        }
        let cached = self
            .etags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(what)
            .cloned();
        if let Some((etag, _)) = &cached {
            call = call.header("if-none-match", etag.clone());
        }
        let result = self.http.send(&call).await;
        metrics::observe(call::DOWNLOAD, &result);
        let reply = result.map_err(|e| {
            let target = match &what.secret {
                Some(s) => format!("Doppler secret {s:?}"),
                None => "Doppler secrets".to_owned(),
            };
            self.api_error(
                e,
                format!(
                    "{}: downloading {target} ({}) failed",
                    self.store,
                    self.scope()
                ),
            )
        })?;
        if reply.status == StatusCode::NOT_MODIFIED {
            if let Some((_, body)) = cached {
                return Ok(body);
            }
            return Err(ProviderError::unavailable(format!(
                "{}: Doppler answered 304 Not Modified to a download this client never made",
                self.store
            )));
        }
        let etag = reply.header("etag").map(str::to_owned);
        let body = Arc::new(reply.body.to_vec());
        if let Some(etag) = etag {
            self.etags
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(what.clone(), (etag, body.clone()));
        }
        Ok(body)
    }

    async fn download(&self, what: Download) -> Result<Arc<Vec<u8>>, ProviderError> {
        self.reads
            .get(what.clone(), || async { self.fetch(&what).await })
            .await
    }

    fn parse_map(&self, body: &[u8]) -> Result<BTreeMap<String, String>, ProviderError> {
        serde_json::from_slice(body).map_err(|e| {
            ProviderError::unavailable(format!(
                "{}: the Doppler download ({}) is not a JSON object of strings",
                self.store,
                self.scope()
            ))
            .with_source(e)
        })
    }

    /// One secret's value (no transformer, as upstream); `None` when Doppler does not have it.
    async fn value(&self, key: &str) -> Result<Option<String>, ProviderError> {
        let body = self
            .download(Download {
                secret: Some(key.to_owned()),
                transformer: None,
                format: None,
            })
            .await?;
        Ok(self.parse_map(&body)?.remove(key))
    }

    fn forget(&self) {
        self.reads.invalidate_where(|_| true);
    }

    async fn update(&self, body: Value, what: String) -> Result<(), ProviderError> {
        let mut body = body;
        if let Some(p) = &self.project {
            body["project"] = json!(p);
        }
        if let Some(c) = &self.config {
            body["config"] = json!(c);
        }
        let token = self.auth.token(&self.store).await?;
        let call = Call::new(Method::POST, self.url("v3/configs/config/secrets")?)
            .basic(&token, Some(""))
            .json(body);
        let result = self.http.json(&call).await;
        metrics::observe(call::UPDATE, &result);
        self.forget();
        result.map(|_| ()).map_err(|e| self.api_error(e, what))
    }
}

#[async_trait]
impl SecretsClient for DopplerClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        if remote.metadata_policy == Some(MetadataPolicy::Fetch) {
            return Err(ProviderError::unsupported(format!(
                "{}: Doppler secrets have no metadata to fetch (metadataPolicy: Fetch)",
                self.store
            )));
        }
        let value = self.value(&remote.key).await?.ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: Doppler secret {:?} does not exist ({})",
                    self.store,
                    remote.key,
                    self.scope()
                ),
            )
        })?;
        let Some(property) = remote.property.as_deref().filter(|p| !p.is_empty()) else {
            return Ok(value.into_bytes());
        };
        let missing = || {
            ProviderError::invalid_request(format!(
                "{}: property {property:?} does not exist in Doppler secret {:?}",
                self.store, remote.key
            ))
        };
        let doc: Value = serde_json::from_str(&value).map_err(|_| missing())?;
        eso_provider::property::lookup(&doc, property)?
            .map(|v| eso_provider::property::value_bytes(&v))
            .ok_or_else(missing)
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let value = self.get_secret(remote).await?;
        object_to_map(&value, &remote.key, &self.store)
    }

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        if !find.tags.is_empty() {
            return Err(ProviderError::unsupported(format!(
                "{}: Doppler secrets have no tags to find by",
                self.store
            )));
        }
        let matcher = FindMatcher::new(find)?;
        let body = self
            .download(Download {
                secret: None,
                transformer: self.transformer,
                format: self.format,
            })
            .await?;
        let all: SecretData = if self.format.is_some() {
            [(SECRETS_FILE_KEY.to_owned(), body.to_vec())].into()
        } else {
            self.parse_map(&body)?
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect()
        };
        Ok(all
            .into_iter()
            .filter(|(k, _)| matcher.matches_name(k) && matcher.matches_path(k))
            .collect())
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        if request.secret_key.as_deref().is_none_or(str::is_empty) {
            return Err(ProviderError::invalid_request(format!(
                "{}: Doppler pushes one Secret key at a time; set secretKey",
                self.store
            )));
        }
        let key = &request.remote.remote_key;
        let value = String::from_utf8(request.value.clone()).map_err(|e| {
            ProviderError::invalid_request(format!(
                "{}: Doppler secrets hold text; the value pushed to {key:?} is not UTF-8",
                self.store
            ))
            .with_source(e)
        })?;
        let mut secrets = Map::new();
        secrets.insert(key.clone(), Value::String(value));
        self.update(
            json!({"secrets": secrets}),
            format!(
                "{}: pushing Doppler secret {key:?} ({}) failed",
                self.store,
                self.scope()
            ),
        )
        .await
    }

    async fn delete_secret(&self, remote: &PushRemoteRef) -> Result<(), ProviderError> {
        let key = &remote.remote_key;
        self.forget();
        if self.value(key).await?.is_none() {
            return Ok(());
        }
        self.update(
            json!({"change_requests": [{"name": key, "originalName": key, "value": null, "shouldDelete": true}]}),
            format!(
                "{}: deleting Doppler secret {key:?} ({}) failed",
                self.store,
                self.scope()
            ),
        )
        .await
    }

    async fn secret_exists(&self, remote: &PushRemoteRef) -> Result<bool, ProviderError> {
        self.forget();
        Ok(self.value(&remote.remote_key).await?.is_some())
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        // Upstream's lightweight authentication check.
        let token = self.auth.token(&self.store).await?;
        let call = Call::new(Method::GET, self.url("v3/projects")?).basic(&token, Some(""));
        let result = self.http.json(&call).await;
        metrics::observe(call::PROJECTS_LIST, &result);
        result.map_err(|e| {
            self.api_error(
                e,
                format!("{}: the Doppler token could not list projects", self.store),
            )
        })?;
        Ok(ValidationResult::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_unquotes_strings_only() {
        let m = object_to_map(br#"{"a":"x","n":1}"#, "k", "s").unwrap();
        assert_eq!(
            (m["a"].as_slice(), m["n"].as_slice()),
            (&b"x"[..], &b"1"[..])
        );
        assert!(object_to_map(b"plain", "k", "s").is_err());
    }
}
