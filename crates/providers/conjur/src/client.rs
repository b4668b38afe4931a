//! The client of one Conjur store: variables by id (`RetrieveSecret`), JSON values as maps, and
//! `find` over the variables the host may see (`Resources`, then `RetrieveBatchSecrets`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind};
use eso_provider::find::FindMatcher;
use eso_provider::{ErrorKind, ProviderError, SecretData, SecretsClient, ValidationResult};
use reqwest::Url;
use serde_json::Value;

use crate::auth::TokenSource;
use crate::http::{Answer, Call, Http, HttpError};
use crate::metrics::{self, call};
use crate::path;

/// Resources are listed this many at a time (upstream's page size).
const PAGE: usize = 100;
/// Variables fetched per batch request (keeps URLs short).
const BATCH: usize = 50;

/// An authenticated client of one Conjur store.
#[derive(Debug)]
pub struct ConjurClient {
    /// `SecretStore "ns/name"`, for messages.
    store: String,
    base: Url,
    account: String,
    http: Http,
    token: TokenSource,
}

impl ConjurClient {
    pub(crate) fn new(
        store: String,
        base: Url,
        account: String,
        http: Http,
        token: TokenSource,
    ) -> Self {
        Self {
            store,
            base,
            account,
            http,
            token,
        }
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        path::url(&self.base, segments)
            .map_err(|m| ProviderError::invalid_store(format!("{}: {m}", self.store)))
    }

    /// Sends an authenticated call; a 401 (an expired or revoked token) logs in again and
    /// repeats the call once.
    async fn authed(&self, call: Call, name: &'static str) -> Result<Answer, AuthedError> {
        let mut relogged = false;
        loop {
            let header = self
                .token
                .header(&self.http)
                .await
                .map_err(AuthedError::Login)?;
            let result = self
                .http
                .send(&call.clone().header("Authorization", header.clone()))
                .await;
            match result {
                Err(e) if e.status_is(401) && !relogged => {
                    self.token.forget(&header).await;
                    relogged = true;
                }
                other => {
                    metrics::observe(name, &other);
                    return other.map_err(AuthedError::Api);
                }
            }
        }
    }

    fn api_error(&self, what: &str, err: AuthedError) -> ProviderError {
        let err = match err {
            AuthedError::Login(e) => return e,
            AuthedError::Api(e) => e,
        };
        let (kind, message) = match err.status.map(|s| s.as_u16()) {
            Some(404) => (
                ErrorKind::NotFound,
                format!(
                    "{}: {what} is empty or does not exist in Conjur",
                    self.store
                ),
            ),
            Some(401 | 403) => (
                ErrorKind::Auth,
                format!("{}: Conjur refused access to {what}", self.store),
            ),
            Some(429) => (
                ErrorKind::Throttled,
                format!("{}: Conjur throttled reading {what}", self.store),
            ),
            None | Some(408 | 500..=599) => (
                ErrorKind::Unavailable,
                format!("{}: Conjur failed reading {what}", self.store),
            ),
            Some(_) => (
                ErrorKind::InvalidRequest,
                format!("{}: Conjur refused reading {what}", self.store),
            ),
        };
        err.into_provider_error(kind, message)
    }

    async fn retrieve(&self, key: &str, version: Option<&str>) -> Result<Vec<u8>, ProviderError> {
        let full = path::full_id(&self.account, "variable", key);
        let (account, kind, id) = path::split_full(&full);
        let mut url = self.url(&["secrets", account, kind, id])?;
        if let Some(v) = version.filter(|v| !v.is_empty()) {
            let n: u32 = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                ProviderError::invalid_request(format!(
                    "{}: version {v:?} of {key:?} is not a positive number",
                    self.store
                ))
            })?;
            url.query_pairs_mut().append_pair("version", &n.to_string());
        }
        let answer = self
            .authed(Call::get(url), call::RETRIEVE_SECRET)
            .await
            .map_err(|e| self.api_error(&format!("variable {key:?}"), e))?;
        Ok(answer.body.to_vec())
    }

    /// Every variable the host can see, as (identifier, annotations, has a value), listing
    /// [`PAGE`] at a time.
    async fn variables(
        &self,
    ) -> Result<Vec<(String, BTreeMap<String, String>, bool)>, ProviderError> {
        let mut out = Vec::new();
        for page in 0usize.. {
            let mut url = self.url(&["resources", &self.account])?;
            url.query_pairs_mut()
                .append_pair("kind", "variable")
                .append_pair("limit", &PAGE.to_string());
            if page > 0 {
                url.query_pairs_mut()
                    .append_pair("offset", &(page * PAGE).to_string());
            }
            let answer = self
                .authed(Call::get(url), call::RESOURCES)
                .await
                .map_err(|e| self.api_error("the variable list", e))?;
            let resources: Vec<Value> = serde_json::from_slice(&answer.body).map_err(|e| {
                ProviderError::unavailable(format!(
                    "{}: Conjur answered the variable list with something other than a JSON array",
                    self.store
                ))
                .with_source(e)
            })?;
            let count = resources.len();
            for r in resources {
                let Some(id) = r.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let annotations = r
                    .get("annotations")
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(|a| {
                                Some((
                                    a.get("name")?.as_str()?.to_owned(),
                                    a.get("value")?.as_str()?.to_owned(),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                // Conjur lists the versions a variable has; an empty list means no value.
                let has_value = r
                    .get("secrets")
                    .and_then(Value::as_array)
                    .is_none_or(|s| !s.is_empty());
                out.push((path::identifier(id).to_owned(), annotations, has_value));
            }
            if count < PAGE {
                break;
            }
        }
        Ok(out)
    }

    async fn batch(&self, ids: &[String]) -> Result<SecretData, ProviderError> {
        let mut out = SecretData::new();
        for chunk in ids.chunks(BATCH) {
            let full: Vec<String> = chunk
                .iter()
                .map(|id| path::full_id(&self.account, "variable", id))
                .collect();
            let mut url = self.url(&["secrets"])?;
            url.query_pairs_mut()
                .append_pair("variable_ids", &full.join(","));
            // Base64 values survive binary secrets, which plain JSON cannot carry.
            let call = Call::get(url).header("Accept-Encoding", "base64");
            let answer = self
                .authed(call, call::RETRIEVE_BATCH_SECRETS)
                .await
                .map_err(|e| match e {
                    // A variable listed a moment ago is gone or emptied: the find itself
                    // found something, so this is no confirmation that nothing exists.
                    AuthedError::Api(err) if err.status_is(404) => ProviderError::unavailable(
                        format!(
                            "{}: a variable changed while dataFrom.find read it; retrying will read the new list",
                            self.store
                        ),
                    )
                    .with_source(err),
                    other => self.api_error("variables found by dataFrom.find", other),
                })?;
            let encoded = answer
                .headers
                .get(reqwest::header::CONTENT_ENCODING)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"base64"));
            let values: BTreeMap<String, String> =
                serde_json::from_slice(&answer.body).map_err(|e| {
                    ProviderError::unavailable(format!(
                        "{}: Conjur answered a batch read with something other than a JSON object of strings",
                        self.store
                    ))
                    .with_source(e)
                })?;
            for (full_id, value) in values {
                let bytes = if encoded {
                    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
                    base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .map_err(|e| {
                            ProviderError::unavailable(format!(
                                "{}: Conjur sent variable {full_id:?} as invalid base64",
                                self.store
                            ))
                            .with_source(e)
                        })?
                } else {
                    value.into_bytes()
                };
                out.insert(path::identifier(&full_id).to_owned(), bytes);
            }
        }
        Ok(out)
    }
}

/// A failed authenticated call: the login failed (already typed), or the call did.
pub(crate) enum AuthedError {
    Login(ProviderError),
    Api(HttpError),
}

#[async_trait]
impl SecretsClient for ConjurClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        let value = self
            .retrieve(&remote.key, remote.version.as_deref())
            .await?;
        let Some(property) = remote.property.as_deref().filter(|p| !p.is_empty()) else {
            return Ok(value);
        };
        match eso_provider::property::extract(&value, property, &remote.key) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: variable {:?} has no property {property:?}",
                    self.store, remote.key
                ),
            )),
            Err(e) => Err(ProviderError::new(
                e.kind(),
                format!(
                    "{}: property {property:?} of variable {:?} cannot be read",
                    self.store, remote.key
                ),
            )
            .with_source(e)),
        }
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let value = self.get_secret(remote).await?;
        let map: BTreeMap<String, String> = serde_json::from_slice(&value).map_err(|e| {
            ProviderError::invalid_request(format!(
                "{}: variable {:?} is not a JSON object of strings",
                self.store, remote.key
            ))
            .with_source(e)
        })?;
        Ok(map.into_iter().map(|(k, v)| (k, v.into_bytes())).collect())
    }

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        let matcher = FindMatcher::new(find).map_err(|e| {
            ProviderError::new(
                e.kind(),
                format!("{}: dataFrom.find cannot be used", self.store),
            )
            .with_source(e)
        })?;
        let ids: Vec<String> = self
            .variables()
            .await?
            .into_iter()
            .filter(|(id, annotations, has_value)| {
                *has_value
                    && matcher.matches_name(id)
                    && matcher.matches_path(id)
                    && matcher.matches_tags(annotations)
            })
            .map(|(id, _, _)| id)
            .collect();
        if ids.is_empty() {
            return Ok(SecretData::new());
        }
        self.batch(&ids).await
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        self.token.header(&self.http).await?;
        Ok(ValidationResult::Ready)
    }
}
