//! `eso-provider-gitlab`: the GitLab provider (`spec.provider.gitlab`): CI/CD variables of a
//! project, of groups and of the project's ancestors, over GitLab's REST API v4 with reqwest +
//! rustls (the workspace's one TLS stack) and small types of our own.
//!
//! It owns the GitLab client of a store. It knows nothing of Kubernetes (the token comes
//! through [`eso_provider::ClientContext`]) and never reads environment variables: tuning
//! comes from [`GitlabConfig`].
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_gitlab::GitlabProvider;
//!
//! let registry = ProviderRegistry::new().with(Arc::new(GitlabProvider::new()));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["gitlab"]);
//! ```
//!
//! # Supported (as upstream)
//! - `url` (default `https://gitlab.com/`; `/api/v4/` is appended unless present),
//!   `caBundle` / `caProvider` (only those roots are trusted), `auth.SecretRef.accessToken` (a
//!   personal, group or project access token, sent as `PRIVATE-TOKEN`).
//! - `projectID` (a number or a path), `groupIDs` (read left to right, after the project), or
//!   `inheritFromGroups` (the project's ancestor groups, root first).
//! - `data[].remoteRef.key`: a variable key (`-` read as `_`, as upstream): the project's
//!   variable in the store's `environment`, else its `*` variable, else the same in each group
//!   from the nearest; `property` picks a gjson path out of a JSON value.
//! - `dataFrom[].extract`: a variable holding a JSON object of strings.
//! - `dataFrom[].find`: `name.regexp` (required) over every variable of the groups, then of
//!   the project; the project's values win over the groups', and a value scoped to the
//!   environment over a `*` one; `tags` may only hold `environment_scope`, which replaces the
//!   store's environment when that is empty or `*`. `path` is refused, as upstream.
//! - `validate`: lists the project's and each group's variables, as upstream.
//! - No push, delete or exists (upstream neither).
//!
//! # Economy
//! Lists are read 100 variables a page, following `X-Next-Page`. The ancestors of a project are
//! looked up once per client. Every call counts once in
//! `externalsecret_provider_api_calls_count{provider="GitLab", call, status}` with upstream's
//! `call` names (`ProjectVariableGet`, `ProjectVariablesList`, `GroupVariableGet`,
//! `GroupVariablesList`, `ListProjectsGroups`).
//!
//! # Errors
//! A variable no project or group has (`404 Variable Not Found` from each) is
//! [`ErrorKind::NotFound`](eso_provider::ErrorKind::NotFound), as is a missing `property`.
//! A project or group that does not exist or that the token cannot see (GitLab answers `404
//! Project Not Found` for both), 401 and 403 are `Auth`: nothing is confirmed missing then.
//! A key defined in several scopes when the store names no environment (409) is
//! `InvalidRequest`; 429 is `Throttled` with its `Retry-After`; 408, 5xx, connection failures
//! and timeouts are `Unavailable`. Calls are retried on 5xx and connection failures, and on 429
//! when GitLab asks for a wait no longer than [`GitlabConfig::max_retry_wait`], up to
//! [`GitlabConfig::max_attempts`] attempts.
//!
//! # Differences from upstream
//! - Upstream reads any 404 as "not found", so a project the token lost access to looks like a
//!   deleted variable; here only GitLab's `Variable Not Found` is `NotFound`.
//! - Lists follow `X-Next-Page` (upstream stops when `X-Total-Pages` is absent, which GitLab
//!   omits past 10,000 items). The ancestors are looked up once per client, not per read.
//! - An empty `tags` map in `find` is no tag (upstream resets the environment to "").

mod client;
mod http;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::provider::GitlabProvider as GitlabSpec;
use eso_api::{SecretStoreCapabilities, StoreKind};
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo};
use reqwest::Url;

pub use client::GitlabClient;

use crate::client::Scope;
use crate::http::{Http, RetryPolicy};
use eso_provider::http::HttpTuning;

/// Tuning of the clients a [`GitlabProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct GitlabConfig {
    http: HttpTuning,
}

impl Default for GitlabConfig {
    fn default() -> Self {
        Self {
            http: HttpTuning {
                request_timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(5),
                retry: RetryPolicy {
                    max_attempts: 3,
                    base_delay: Duration::from_millis(250),
                    max_wait: Duration::from_secs(10),
                },
            },
        }
    }
}

impl GitlabConfig {
    eso_provider::http_tuning_setters! {
        field: http,
        request_timeout: "30 s",
        connect_timeout: "5 s",
        max_attempts: "3",
        retry_base_delay: "250 ms",
        max_retry_wait: "10 s",
    }
}

/// The `gitlab` provider.
#[derive(Debug, Clone, Default)]
pub struct GitlabProvider {
    config: GitlabConfig,
}

impl GitlabProvider {
    /// A provider with the default tuning.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning.
    #[must_use]
    pub fn config(mut self, config: GitlabConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&GitlabSpec, ProviderError> {
    store.spec.provider.gitlab.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: spec.provider.gitlab is not set",
            store.describe()
        ))
    })
}

/// go-gitlab's `setBaseURL`: a trailing slash, then `api/v4/` unless already there.
fn api_base(url: &str) -> Option<Url> {
    let mut text = url.to_owned();
    if !text.ends_with('/') {
        text.push('/');
    }
    if !text.ends_with("api/v4/") {
        text.push_str("api/v4/");
    }
    Url::parse(&text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// Upstream's `ValidateStore` checks; the API base URL.
fn check_spec(spec: &GitlabSpec, store: &StoreInfo) -> Result<Url, ProviderError> {
    let invalid = |m: &str| ProviderError::invalid_store(format!("{}: {m}", store.describe()));
    let token = &spec.auth.secret_ref.access_token;
    let field = "auth.SecretRef.accessToken";
    let ns = token.namespace.as_deref().filter(|n| !n.is_empty());
    match (store.kind, ns) {
        (StoreKind::ClusterSecretStore, None) => {
            return Err(invalid(&format!(
                "{field}.namespace is required on a ClusterSecretStore"
            )));
        }
        (StoreKind::SecretStore, Some(ns)) if Some(ns) != store.namespace.as_deref() => {
            return Err(invalid(&format!(
                "{field}.namespace must be empty or the SecretStore's own namespace"
            )));
        }
        _ => {}
    }
    let project = spec.project_id.as_deref().filter(|p| !p.is_empty());
    if project.is_none() && spec.group_ids.is_empty() {
        return Err(invalid("projectID and groupIDs must not both be empty"));
    }
    if spec.inherit_from_groups() && !spec.group_ids.is_empty() {
        return Err(invalid(
            "groupIDs and inheritFromGroups: true cannot be used together",
        ));
    }
    if token.key.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(&format!("{field}.key is required")));
    }
    if token.name.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(&format!("{field}.name is required")));
    }
    api_base(spec.url())
        .ok_or_else(|| invalid(&format!("url {:?} is not an http(s) URL", spec.url())))
}

#[async_trait]
impl Provider for GitlabProvider {
    fn key(&self) -> &'static str {
        "gitlab"
    }

    fn display_name(&self) -> &'static str {
        metrics::PROVIDER
    }

    fn capabilities(&self) -> SecretStoreCapabilities {
        SecretStoreCapabilities::ReadOnly
    }

    fn validate_store(&self, store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
        check_spec(spec_of(store)?, store)?;
        Ok(Vec::new())
    }

    async fn new_client(
        &self,
        ctx: ClientContext<'_>,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let store = ctx.store;
        let spec = spec_of(store)?;
        let api = check_spec(spec, store)?;
        let owner = store.describe();
        let token = ctx
            .read_secret_key(
                &spec.auth.secret_ref.access_token,
                "auth.SecretRef.accessToken",
            )
            .await?;
        let token = String::from_utf8(token)
            .map_err(|e| {
                ProviderError::invalid_store(format!("{owner}: the access token is not UTF-8 text"))
                    .with_source(e)
            })?
            .trim()
            .to_owned();
        let ca = eso_provider::tls::load_ca_bundle(
            &ctx,
            spec.ca_bundle.as_deref(),
            spec.ca_provider.as_ref(),
            "spec.provider.gitlab",
        )
        .await?;
        let config = &self.config;
        let client = config
            .http
            .client()
            .owner(owner.as_str())
            .user_agent("eso-rs")
            .no_redirects()
            .ca_pem(ca)
            .build()?;
        let http = Http::new(client, config.http.retry, "GitLab").errors(http::decode_error);
        let scope = Scope {
            project_id: spec.project_id.clone().filter(|p| !p.is_empty()),
            group_ids: spec.group_ids.clone(),
            inherit_from_groups: spec.inherit_from_groups(),
            environment: spec.environment.clone().unwrap_or_default(),
        };
        Ok(Arc::new(GitlabClient::new(owner, api, token, scope, http)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use eso_api::provider::{GitlabAuth, GitlabSecretRef, SecretStoreProvider};
    use eso_api::{SecretKeySelector, SecretStoreSpec};

    fn store(kind: StoreKind, spec: GitlabSpec) -> StoreInfo {
        let mut s = StoreInfo::secret_store(
            "gitlab",
            "apps",
            SecretStoreSpec {
                provider: SecretStoreProvider {
                    gitlab: Some(spec),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        if kind == StoreKind::ClusterSecretStore {
            s.kind = kind;
            s.namespace = None;
        }
        s
    }

    fn spec(ns: Option<&str>) -> GitlabSpec {
        GitlabSpec {
            project_id: Some("42".into()),
            auth: GitlabAuth {
                secret_ref: GitlabSecretRef {
                    access_token: SecretKeySelector {
                        name: Some("gitlab".into()),
                        namespace: ns.map(Into::into),
                        key: Some("token".into()),
                    },
                },
            },
            ..Default::default()
        }
    }

    #[test]
    fn api_base_follows_go_gitlab() {
        let b = |u: &str| api_base(u).map(|u| u.to_string());
        assert_eq!(
            b("https://gitlab.com/").as_deref(),
            Some("https://gitlab.com/api/v4/")
        );
        assert_eq!(
            b("https://g.example.com").as_deref(),
            Some("https://g.example.com/api/v4/")
        );
        assert_eq!(
            b("https://g.example.com/gitlab/api/v4").as_deref(),
            Some("https://g.example.com/gitlab/api/v4/")
        );
        assert_eq!(b("gitlab.com"), None);
    }

    #[test]
    fn validate_store_applies_upstreams_rules() {
        let p = GitlabProvider::new();
        let check = |s: StoreInfo| p.validate_store(&s).map(|_| ()).map_err(|e| e.to_string());
        assert!(check(store(StoreKind::SecretStore, spec(None))).is_ok());
        assert!(
            check(store(StoreKind::SecretStore, spec(Some("other"))))
                .unwrap_err()
                .contains("own namespace")
        );
        assert!(
            check(store(StoreKind::ClusterSecretStore, spec(None)))
                .unwrap_err()
                .contains("namespace is required")
        );
        assert!(check(store(StoreKind::ClusterSecretStore, spec(Some("x")))).is_ok());
        let mut none = spec(None);
        none.project_id = None;
        assert!(
            check(store(StoreKind::SecretStore, none.clone()))
                .unwrap_err()
                .contains("must not both be empty")
        );
        none.group_ids = vec!["7".into()];
        assert!(check(store(StoreKind::SecretStore, none)).is_ok());
        let mut both = spec(None);
        both.group_ids = vec!["7".into()];
        both.inherit_from_groups = Some(true);
        assert!(
            check(store(StoreKind::SecretStore, both))
                .unwrap_err()
                .contains("cannot be used together")
        );
        let mut no_key = spec(None);
        no_key.auth.secret_ref.access_token.key = None;
        assert!(
            check(store(StoreKind::SecretStore, no_key))
                .unwrap_err()
                .contains("key is required")
        );
    }
}
