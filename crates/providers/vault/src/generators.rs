//! The `VaultDynamicSecret` generator (upstream's `generators/v1/vault`): one request to Vault
//! or OpenBao, logged in exactly as a Vault store with the same `provider` block logs in, whose
//! answer is the generated data: database credentials (`database/creds/<role>`), certificates
//! (`pki/issue/<role>`), tokens (`auth/token/create` with `resultType: Auth`), ...
//!
//! # Request
//! `method` `GET` (the default) reads `path` with `getParameters` as the query; `LIST` lists
//! it; `DELETE` deletes it; any other method writes `parameters` (a JSON object, `{}` when
//! unset) with `PUT`, as upstream's `Logical().Write` does. `retrySettings` retries
//! connection failures, 5xx and 429 answers `maxRetries` times (default 2, Vault's client
//! default), `retryInterval` apart (default 1s).
//!
//! # Output
//! The keys of the answer's `data` (`resultType: Data`, the default), of its `auth`
//! (`Auth`), or of the whole answer (`Raw`), each value as upstream's `GetByteValue`: strings
//! as they are, numbers and booleans as text, objects and lists as JSON, `null` empty.
//!
//! # State and cleanup
//! When the answer carries a lease (`lease_id`) or created a token (`auth.accessor`), the
//! generation returns the state `{"leaseId": ..., "tokenAccessor": ...}`; cleanup revokes the
//! lease (`PUT sys/leases/revoke`) and the token (`POST auth/token/revoke-accessor`). A lease
//! or token that is already gone counts as cleaned up. The login needs the policy
//! `path "sys/leases/revoke" { capabilities = ["update"] }` (and
//! `auth/token/revoke-accessor` for tokens). Upstream revokes nothing.
//!
//! Vault revokes every lease together with the token that created it: the login's tokens
//! must outlive the leases (a role with a long `token_ttl`, a periodic token), as with
//! upstream. The login token is not revoked after the request for that reason.
//!
//! # Differences from upstream
//! - Cleanup revokes leases and created tokens (upstream's cleanup does nothing).
//! - An answer without data fails unless `allowEmptyResponse` is set (upstream fails only when
//!   Vault answers with no body at all, and otherwise writes an empty Secret).
//! - `Raw` gives Vault's answer as Vault sent it (upstream re-marshals its Go struct, which
//!   has the same field names).

use std::time::Duration;

use async_trait::async_trait;
use eso_api::generators::{
    GeneratorKind, VaultDynamicSecretResultType, VaultDynamicSecretSpec,
    validate_vault_dynamic_secret,
};
use eso_api::provider::SecretStoreProvider;
use eso_generator::{
    Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject, parse_spec,
};
use eso_provider::{ErrorKind, ProviderError, SecretData, StoreInfo};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cache::ReadCache;
use crate::client::VaultClient;
use crate::kv::{KvLayout, value_bytes};
use crate::transport::{Call, call};
use crate::{VaultConfig, check_spec};

/// The stand-in store's provider field, reworded to the generator's `spec.provider` in
/// messages.
const FIELD: &str = "spec.provider.vault";
/// Metric `call` labels of the cleanup requests (the others reuse the provider's).
const REVOKE_LEASE: &str = "RevokeLease";
const REVOKE_ACCESSOR: &str = "RevokeAccessor";
/// Vault's Go client's default retries and wait, which upstream keeps without
/// `retrySettings`.
const DEFAULT_MAX_RETRIES: u32 = 2;
const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// The `VaultDynamicSecret` generator.
#[derive(Debug, Clone, Default)]
pub struct VaultDynamicSecretGenerator {
    config: VaultConfig,
}

impl VaultDynamicSecretGenerator {
    /// The generator with the default [`VaultConfig`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning (timeouts, the ServiceAccount token file).
    #[must_use]
    pub fn config(mut self, config: VaultConfig) -> Self {
        self.config = config;
        self
    }

    fn parse(
        &self,
        object: &GeneratorObject<'_>,
        spec: &Value,
    ) -> Result<VaultDynamicSecretSpec, GeneratorError> {
        let spec: VaultDynamicSecretSpec = parse_spec(object, spec)?;
        if let Some(e) = validate_vault_dynamic_secret(&spec).into_iter().next() {
            let path = e.path.replacen("spec", &object.spec_path(), 1);
            return Err(GeneratorError::invalid_spec(format!(
                "{}: {path} {}",
                object.describe(),
                e.message
            )));
        }
        Ok(spec)
    }

    /// A logged-in client for the spec's `provider`, on the same login and transport
    /// ([`crate::connect`]) as [`crate::VaultProvider`]'s clients of a store.
    async fn client(
        &self,
        ctx: &GeneratorContext<'_>,
        store: &StoreInfo,
        spec: &VaultDynamicSecretSpec,
    ) -> Result<VaultClient, ProviderError> {
        let provider = &spec.provider;
        let ctx = ctx.client_context(store);
        check_spec(provider, store, FIELD)?;
        let (auth, transport) =
            crate::connect(&self.config, &ctx, provider, FIELD, "HashiCorp/Vault").await?;
        let client = VaultClient {
            transport,
            layout: KvLayout::new(None, provider.version()),
            credentials: auth.credentials,
            auth_namespace: auth.namespace,
            token: tokio::sync::Mutex::new(None),
            // Generated values are never served twice.
            reads: ReadCache::new(Duration::ZERO),
            check_and_set: false,
            store: store.describe(),
        };
        client.login_now().await?;
        Ok(client)
    }

    /// Sends `call`, retrying transient failures as `retrySettings` says.
    async fn send_with_retries(
        client: &VaultClient,
        spec: &VaultDynamicSecretSpec,
        call: &Call<'_>,
    ) -> Result<Option<Value>, ProviderError> {
        let settings = spec.retry_settings.as_ref();
        let retries = settings
            .and_then(|r| r.max_retries)
            .map_or(DEFAULT_MAX_RETRIES, |n| u32::try_from(n).unwrap_or(0));
        let interval = match settings
            .and_then(|r| r.retry_interval.as_deref())
            .filter(|s| !s.is_empty())
        {
            Some(text) => eso_api::duration::parse_go_duration(text).map_err(|e| {
                ProviderError::invalid_store(format!(
                    "retrySettings.retryInterval {text:?} is not a duration"
                ))
                .with_source(e)
            })?,
            None => DEFAULT_RETRY_INTERVAL,
        };
        let mut attempt = 0;
        loop {
            match client.request(call).await {
                Err(e) if e.kind().is_transient() && attempt < retries => {
                    attempt += 1;
                    let wait = e.retry_after().unwrap_or(interval);
                    tracing::debug!(store = %client.store, attempt, error = %e.chain(), "vault dynamic secret request failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }
}

/// What a generation left behind that cleanup revokes.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_accessor: Option<String>,
}

impl LeaseState {
    fn of(answer: &Value) -> Self {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let auth = answer.get("auth");
        let created_token = text(auth.and_then(|a| a.get("client_token"))).is_some();
        Self {
            lease_id: text(answer.get("lease_id")),
            token_accessor: text(auth.and_then(|a| a.get("accessor"))).filter(|_| created_token),
        }
    }

    fn is_empty(&self) -> bool {
        self.lease_id.is_none() && self.token_accessor.is_none()
    }
}

/// The answer's section `result_type` names, as key/value bytes.
fn result_data(
    answer: Option<&Value>,
    result_type: VaultDynamicSecretResultType,
) -> Result<SecretData, &'static str> {
    let section = match (answer, result_type) {
        (None, _) => None,
        (Some(a), VaultDynamicSecretResultType::Data) => a.get("data"),
        (Some(a), VaultDynamicSecretResultType::Auth) => a.get("auth"),
        (Some(a), VaultDynamicSecretResultType::Raw) => Some(a),
    };
    match section {
        None | Some(Value::Null) => Ok(SecretData::new()),
        Some(Value::Object(map)) => Ok(map
            .iter()
            .map(|(k, v)| (k.clone(), value_bytes(v)))
            .collect()),
        Some(_) => Err("is not a JSON object"),
    }
}

fn section_name(result_type: VaultDynamicSecretResultType) -> &'static str {
    match result_type {
        VaultDynamicSecretResultType::Data => "data",
        VaultDynamicSecretResultType::Auth => "auth",
        VaultDynamicSecretResultType::Raw => "body",
    }
}

/// A 400 answer that says the lease or token no longer exists (already revoked or expired).
fn already_gone(e: &ProviderError) -> bool {
    let m = e.message();
    e.kind() == ErrorKind::InvalidRequest
        && (m.contains("invalid lease")
            || m.contains("invalid accessor")
            || m.contains("not found"))
}

#[async_trait]
impl Generator for VaultDynamicSecretGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::VaultDynamicSecret
    }

    fn validate(&self, object: GeneratorObject<'_>, spec: &Value) -> Result<(), GeneratorError> {
        self.parse(&object, spec).map(|_| ())
    }

    async fn generate(
        &self,
        ctx: GeneratorContext<'_>,
        spec: &Value,
    ) -> Result<Generated, GeneratorError> {
        let spec = self.parse(&ctx.object, spec)?;
        let store = ctx.stand_in_store(SecretStoreProvider {
            vault: Some(spec.provider.clone()),
            ..Default::default()
        });
        let client = self.client(&ctx, &store, &spec).await.map_err(|e| {
            ctx.provider_error(&store, FIELD, "provider", "logging in to Vault failed", e)
        })?;
        let path = spec.path.trim().trim_matches('/');
        let method = spec.method();
        let request = match method.as_str() {
            "GET" => {
                let mut c = Call::new(Method::GET, path, call::READ_SECRET_DATA);
                for (name, values) in &spec.get_parameters {
                    for v in values {
                        c = c.query(name.clone(), v.clone());
                    }
                }
                c
            }
            "LIST" => Call::new(Method::GET, path, call::LIST_SECRETS).query("list", "true"),
            "DELETE" => Call::new(Method::DELETE, path, call::DELETE_SECRET),
            _ => {
                let body = match &spec.parameters {
                    None | Some(Value::Null) => json!({}),
                    Some(v @ Value::Object(_)) => v.clone(),
                    Some(_) => {
                        return Err(GeneratorError::invalid_spec(format!(
                            "{}: {}.parameters must be a JSON object",
                            ctx.object.describe(),
                            ctx.object.spec_path()
                        )));
                    }
                };
                Call::new(Method::PUT, path, call::WRITE_SECRET_DATA).body(body)
            }
        };
        let answer = Self::send_with_retries(&client, &spec, &request)
            .await
            .map_err(|e| {
                ctx.provider_error(
                    &store,
                    FIELD,
                    "provider",
                    &format!("{method} {path} failed"),
                    e,
                )
            })?;
        let result_type = spec.result_type();
        let data = result_data(answer.as_ref(), result_type).map_err(|why| {
            GeneratorError::rejected(format!(
                "{}: the {} of Vault's answer to {method} {path} {why}",
                ctx.object.describe(),
                section_name(result_type)
            ))
        })?;
        let state = answer.as_ref().map(LeaseState::of).unwrap_or_default();
        if data.is_empty() && !spec.allow_empty_response() {
            // Whatever the request created would be lost with the error: revoke it now.
            if !state.is_empty() {
                let _ = revoke(&client, &state).await;
            }
            return Err(GeneratorError::rejected(format!(
                "{}: Vault answered {method} {path} without {}; set allowEmptyResponse to accept that",
                ctx.object.describe(),
                section_name(result_type)
            )));
        }
        let state = if state.is_empty() {
            None
        } else {
            serde_json::to_value(&state).ok()
        };
        Ok(Generated { data, state })
    }

    async fn cleanup(
        &self,
        ctx: GeneratorContext<'_>,
        spec: &Value,
        state: &Value,
    ) -> Result<(), GeneratorError> {
        let state: LeaseState = serde_json::from_value(state.clone()).map_err(|e| {
            GeneratorError::invalid_spec(format!(
                "{}: the recorded state is not a Vault lease",
                ctx.object.describe()
            ))
            .with_source(e)
        })?;
        if state.is_empty() {
            return Ok(());
        }
        let spec = self.parse(&ctx.object, spec)?;
        let store = ctx.stand_in_store(SecretStoreProvider {
            vault: Some(spec.provider.clone()),
            ..Default::default()
        });
        let client = self.client(&ctx, &store, &spec).await.map_err(|e| {
            ctx.provider_error(&store, FIELD, "provider", "logging in to Vault failed", e)
        })?;
        revoke(&client, &state).await.map_err(|e| {
            ctx.provider_error(&store, FIELD, "provider", "revoking the lease failed", e)
        })
    }
}

/// Revokes the lease and the token a generation created; what is already gone is fine.
async fn revoke(client: &VaultClient, state: &LeaseState) -> Result<(), ProviderError> {
    if let Some(lease) = &state.lease_id {
        let call = Call::new(Method::PUT, "sys/leases/revoke", REVOKE_LEASE)
            .body(json!({"lease_id": lease}));
        match client.request(&call).await {
            Err(e) if !already_gone(&e) => return Err(e),
            _ => {}
        }
    }
    if let Some(accessor) = &state.token_accessor {
        let call = Call::new(Method::POST, "auth/token/revoke-accessor", REVOKE_ACCESSOR)
            .body(json!({"accessor": accessor}));
        match client.request(&call).await {
            Err(e) if !already_gone(&e) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_follows_get_byte_value_and_result_type() {
        let answer = json!({
            "lease_id": "database/creds/app/abc",
            "data": {"username": "v-app", "ttl": 3600, "ok": true, "nested": {"b": "<", "a": 1}, "none": null},
            "auth": null,
        });
        let data = result_data(Some(&answer), VaultDynamicSecretResultType::Data).unwrap();
        assert_eq!(data["username"], b"v-app");
        assert_eq!(data["ttl"], b"3600");
        assert_eq!(data["ok"], b"true");
        assert_eq!(data["nested"], br#"{"a":1,"b":"\u003c"}"#);
        assert_eq!(data["none"], b"");
        assert!(
            result_data(Some(&answer), VaultDynamicSecretResultType::Auth)
                .unwrap()
                .is_empty()
        );
        let raw = result_data(Some(&answer), VaultDynamicSecretResultType::Raw).unwrap();
        assert_eq!(raw["lease_id"], b"database/creds/app/abc");
        assert!(
            result_data(None, VaultDynamicSecretResultType::Data)
                .unwrap()
                .is_empty()
        );
        assert!(
            result_data(
                Some(&json!({"data": [1]})),
                VaultDynamicSecretResultType::Data
            )
            .is_err()
        );
    }

    #[test]
    fn state_records_leases_and_created_tokens_only() {
        let s = LeaseState::of(&json!({"lease_id": "pki/issue/x/1", "auth": null}));
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"leaseId": "pki/issue/x/1"})
        );
        let s = LeaseState::of(
            &json!({"lease_id": "", "auth": {"client_token": "t", "accessor": "acc"}}),
        );
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"tokenAccessor": "acc"})
        );
        assert!(LeaseState::of(&json!({"lease_id": "", "data": {}})).is_empty());
    }
}
