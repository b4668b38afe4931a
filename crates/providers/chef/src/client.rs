//! The client of one Chef store: data bag items by `BAG/ITEM`, whole data bags for
//! `dataFrom.extract`, and the user check of `validate`.

use async_trait::async_trait;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind};
use eso_provider::{ErrorKind, ProviderError, SecretData, SecretsClient, ValidationResult};
use futures::{StreamExt as _, TryStreamExt as _};
use reqwest::Url;
use serde_json::Value;

use crate::gojson;
use crate::http::{Http, HttpError};
use crate::metrics::{self, call};

/// An authenticated client of one Chef store.
#[derive(Debug)]
pub struct ChefClient {
    /// `SecretStore "ns/name"`, for messages.
    store: String,
    base: Url,
    user: String,
    http: Http,
    concurrency: usize,
}

fn remote_error(store: &str, what: &str, err: HttpError) -> ProviderError {
    let kind = err.kind();
    let message = match kind {
        ErrorKind::NotFound => format!("{store}: {what} does not exist on the Chef server"),
        ErrorKind::Auth => {
            format!("{store}: the Chef server refused the credentials reading {what}")
        }
        ErrorKind::Throttled => format!("{store}: the Chef server throttled reading {what}"),
        ErrorKind::Unavailable => format!("{store}: the Chef server failed reading {what}"),
        _ => format!("{store}: the Chef server refused reading {what}"),
    };
    err.into_provider_error(kind, message)
}

/// The bytes a `property` of an item gives: strings raw, `null` empty, anything else as Go's
/// JSON text (gjson's `String()` of the item's JSON).
fn property_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Null => Vec::new(),
        other => gojson::marshal(other).into_bytes(),
    }
}

impl ChefClient {
    pub(crate) fn new(
        store: String,
        base: Url,
        user: String,
        http: Http,
        concurrency: usize,
    ) -> Self {
        Self {
            store,
            base,
            user,
            http,
            concurrency: concurrency.max(1),
        }
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| {
                ProviderError::invalid_store(format!(
                    "{}: serverUrl {} cannot be a base URL",
                    self.store, self.base
                ))
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn item(&self, bag: &str, item: &str) -> Result<Value, ProviderError> {
        let url = self.url(&["data", bag, item])?;
        let result = self.http.get_json(&url).await;
        metrics::observe(call::GET_DATA_BAG_ITEM, &result);
        result.map_err(|e| {
            remote_error(
                &self.store,
                &format!("data bag item {item:?} of data bag {bag:?}"),
                e,
            )
        })
    }

    async fn item_names(&self, bag: &str) -> Result<Vec<String>, ProviderError> {
        let url = self.url(&["data", bag])?;
        let result = self.http.get_json(&url).await;
        metrics::observe(call::LIST_DATA_BAG_ITEMS, &result);
        let listing =
            result.map_err(|e| remote_error(&self.store, &format!("data bag {bag:?}"), e))?;
        match listing {
            Value::Object(map) => Ok(map.keys().cloned().collect()),
            _ => Err(ProviderError::unavailable(format!(
                "{}: the Chef server listed data bag {bag:?} as something other than an object",
                self.store
            ))),
        }
    }
}

/// `BAG/ITEM`, both non-empty.
fn split_key<'a>(store: &str, key: &'a str) -> Result<(&'a str, &'a str), ProviderError> {
    match key.split_once('/') {
        Some((bag, item)) if !bag.is_empty() && !item.is_empty() && !item.contains('/') => {
            Ok((bag, item))
        }
        _ => Err(ProviderError::invalid_request(format!(
            "{store}: key {key:?} is not of the form DATABAG/ITEM"
        ))),
    }
}

#[async_trait]
impl SecretsClient for ChefClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        let (bag, item) = split_key(&self.store, &remote.key)?;
        let value = self.item(bag, item).await?;
        let Some(property) = remote.property.as_deref().filter(|p| !p.is_empty()) else {
            return Ok(gojson::marshal(&value).into_bytes());
        };
        let found = eso_provider::property::lookup(&value, property).map_err(|e| {
            ProviderError::invalid_request(format!(
                "{}: property {property:?} of {:?} cannot be read",
                self.store, remote.key
            ))
            .with_source(e)
        })?;
        found.as_ref().map(property_bytes).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: data bag item {:?} has no property {property:?}",
                    self.store, remote.key
                ),
            )
        })
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let bag = remote.key.as_str();
        if bag.is_empty() || bag.contains('/') {
            return Err(ProviderError::invalid_request(format!(
                "{}: dataFrom.extract key {bag:?} must be a data bag name alone",
                self.store
            )));
        }
        let names = self.item_names(bag).await?;
        futures::stream::iter(names)
            .map(|name| async move {
                let value = self.item(bag, &name).await?;
                Ok::<_, ProviderError>((name, gojson::marshal(&value).into_bytes()))
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await
    }

    async fn get_all_secrets(
        &self,
        _find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        Err(ProviderError::unsupported(format!(
            "{}: the chef provider does not support dataFrom.find",
            self.store
        )))
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        let url = self.url(&["users", &self.user])?;
        let result = self.http.get_json(&url).await;
        metrics::observe(call::GET_USER, &result);
        match result {
            Ok(_) => Ok(ValidationResult::Ready),
            // A store whose user does not exist is misconfigured, not a missing secret.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(ProviderError::invalid_store(format!(
                    "{}: user {:?} does not exist on the Chef server",
                    self.store, self.user
                ))
                .with_source(e))
            }
            Err(e) => Err(remote_error(
                &self.store,
                &format!("user {:?}", self.user),
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn urls_keep_the_organization_prefix() {
        let signer =
            crate::RequestSigner::from_pem("eso", include_str!("testdata/pkcs1.pem")).unwrap();
        let http = Http::new(
            reqwest::Client::new(),
            signer,
            crate::http::RetryPolicy {
                max_attempts: 1,
                base_delay: std::time::Duration::ZERO,
                max_wait: std::time::Duration::ZERO,
            },
        );
        let base = Url::parse("https://chef.example.com/organizations/acme/").unwrap();
        let client = ChefClient::new("s".into(), base, "eso".into(), http, 1);
        assert_eq!(
            client.url(&["data", "creds", "db"]).unwrap().as_str(),
            "https://chef.example.com/organizations/acme/data/creds/db"
        );
        assert_eq!(
            client.url(&["users", "a b"]).unwrap().path(),
            "/organizations/acme/users/a%20b"
        );
    }

    #[test]
    fn keys_are_bag_slash_item() {
        assert_eq!(split_key("s", "creds/db").unwrap(), ("creds", "db"));
        for bad in ["creds", "creds/", "/db", "a/b/c", ""] {
            assert_eq!(
                split_key("s", bad).unwrap_err().kind(),
                ErrorKind::InvalidRequest,
                "{bad}"
            );
        }
    }

    #[test]
    fn properties_read_as_gjson_strings() {
        assert_eq!(property_bytes(&json!("p")), b"p");
        assert_eq!(property_bytes(&json!(5)), b"5");
        assert_eq!(property_bytes(&json!(null)), b"");
        assert_eq!(
            property_bytes(&json!({"b": 1, "a": "<"})),
            br#"{"a":"\u003c","b":1}"#
        );
    }
}
