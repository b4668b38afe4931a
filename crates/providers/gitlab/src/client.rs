//! The client of one GitLab store: a variable by key through the project, then its groups
//! (nearest last), with upstream's environment-scope fallbacks; `find` over every group and
//! project variable with upstream's precedence.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind};
use eso_provider::find::FindMatcher;
use eso_provider::{ErrorKind, ProviderError, SecretData, SecretsClient, ValidationResult};
use reqwest::Url;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::http::{Call, Http, HttpError};
use crate::metrics::{self, call};

/// Variables listed per page (upstream's `PerPage`).
const PER_PAGE: &str = "100";

/// Where the variables are.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) project_id: Option<String>,
    pub(crate) group_ids: Vec<String>,
    pub(crate) inherit_from_groups: bool,
    /// The store's `environment` ("" when unset).
    pub(crate) environment: String,
}

/// An authenticated client of one GitLab store.
#[derive(Debug)]
pub struct GitlabClient {
    /// `SecretStore "ns/name"`, for messages.
    store: String,
    /// `https://gitlab.example.com/api/v4/`.
    api: Url,
    token: String,
    scope: Scope,
    http: Http,
    /// The groups read after the project, root first: `groupIDs`, or the project's ancestors
    /// (`inheritFromGroups`), looked up once per client.
    groups: OnceCell<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Project,
    Group,
}

impl Owner {
    fn path(self) -> &'static str {
        match self {
            Self::Project => "projects",
            Self::Group => "groups",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Group => "group",
        }
    }
}

/// A single-variable lookup.
enum Lookup {
    Found(String),
    /// GitLab confirmed the owner has no such variable (in that scope).
    Missing,
    /// The project or group itself is missing or hidden from the token: nothing is confirmed.
    OwnerMissing(HttpError),
}

fn is_wildcard(environment: &str) -> bool {
    environment.is_empty() || environment == "*"
}

/// GitLab says `404 Variable Not Found` for a missing variable, and `404 Project Not Found` /
/// `404 Group Not Found` for an owner that does not exist or the token may not see.
fn variable_missing(err: &HttpError) -> bool {
    err.status_is(404) && err.message.contains("Variable")
}

/// The cause of a failed call. A 404 here is the project's or group's, never a variable's (a
/// missing variable is handled before): the token cannot see the owner.
fn kind_of(err: &HttpError) -> ErrorKind {
    match err.kind() {
        ErrorKind::NotFound => ErrorKind::Auth,
        kind => kind,
    }
}

impl GitlabClient {
    pub(crate) fn new(store: String, api: Url, token: String, scope: Scope, http: Http) -> Self {
        Self {
            store,
            api,
            token,
            scope,
            http,
            groups: OnceCell::new(),
        }
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .map_err(|()| {
                ProviderError::invalid_store(format!(
                    "{}: url {} cannot be a base URL",
                    self.store, self.api
                ))
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn send(&self, call: Call, name: &'static str) -> Result<bytes::Bytes, HttpError> {
        let result = self
            .http
            .send(&call.header("PRIVATE-TOKEN", self.token.clone()))
            .await;
        metrics::observe(name, &result);
        result.map(|a| a.body)
    }

    fn error(&self, what: &str, err: HttpError) -> ProviderError {
        let kind = kind_of(&err);
        let message = match err.status.map(|s| s.as_u16()) {
            Some(401 | 403) => format!(
                "{}: GitLab refused the access token reading {what}",
                self.store
            ),
            Some(404) => format!(
                "{}: {what} is not visible: the project or group does not exist or the access token cannot see it",
                self.store
            ),
            Some(409) => format!(
                "{}: several environment scopes define {what}; set the store's environment",
                self.store
            ),
            Some(429) => format!("{}: GitLab throttled reading {what}", self.store),
            None | Some(408 | 500..=599) => format!("{}: GitLab failed reading {what}", self.store),
            Some(_) => format!("{}: GitLab refused reading {what}", self.store),
        };
        err.into_provider_error(kind, message)
    }

    /// One variable of a project or group, in `filter` scope (any scope when `None`).
    async fn get_variable(
        &self,
        owner: Owner,
        id: &str,
        key: &str,
        filter: Option<&str>,
    ) -> Result<Lookup, ProviderError> {
        let mut url = self.url(&[owner.path(), id, "variables", key])?;
        if let Some(f) = filter {
            url.query_pairs_mut()
                .append_pair("filter[environment_scope]", f);
        }
        let name = match owner {
            Owner::Project => call::PROJECT_VARIABLE_GET,
            Owner::Group => call::GROUP_VARIABLE_GET,
        };
        match self.send(Call::get(url), name).await {
            Ok(body) => {
                let v: Value = serde_json::from_slice(&body).map_err(|e| {
                    ProviderError::unavailable(format!(
                        "{}: GitLab answered variable {key:?} of {} {id:?} with something other than JSON",
                        self.store,
                        owner.name()
                    ))
                    .with_source(e)
                })?;
                Ok(Lookup::Found(
                    v.get("value")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                ))
            }
            Err(e) if variable_missing(&e) => Ok(Lookup::Missing),
            Err(e) if e.status_is(404) => Ok(Lookup::OwnerMissing(e)),
            Err(e) => Err(self.error(&format!("variable {key:?} of {} {id:?}", owner.name()), e)),
        }
    }

    /// Upstream's lookup in one owner: the store's environment, then `*` when the store names
    /// an environment and the first lookup found nothing.
    async fn lookup(&self, owner: Owner, id: &str, key: &str) -> Result<Lookup, ProviderError> {
        let env = self.scope.environment.as_str();
        let filter = (!env.is_empty()).then_some(env);
        let first = self.get_variable(owner, id, key, filter).await?;
        match first {
            Lookup::Missing if !is_wildcard(env) => {
                self.get_variable(owner, id, key, Some("*")).await
            }
            other => Ok(other),
        }
    }

    /// The groups to read, root first.
    async fn group_ids(&self) -> Result<&Vec<String>, ProviderError> {
        self.groups
            .get_or_try_init(|| async {
                match (&self.scope.project_id, self.scope.inherit_from_groups) {
                    (Some(project), true) => self.ancestors(project).await,
                    _ => Ok(self.scope.group_ids.clone()),
                }
            })
            .await
    }

    /// The project's ancestor groups, sorted by path length (root first), as upstream.
    async fn ancestors(&self, project: &str) -> Result<Vec<String>, ProviderError> {
        let items = self
            .list(
                Owner::Project,
                project,
                "groups",
                call::LIST_PROJECTS_GROUPS,
            )
            .await?;
        let mut groups: Vec<(usize, String)> = items
            .iter()
            .filter_map(|g| {
                let id = g.get("id")?.as_u64()?;
                let path = g
                    .get("full_path")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Some((path.len(), id.to_string()))
            })
            .collect();
        groups.sort_by_key(|(len, _)| *len);
        Ok(groups.into_iter().map(|(_, id)| id).collect())
    }

    /// Every item of a paged list, following `X-Next-Page`.
    async fn list(
        &self,
        owner: Owner,
        id: &str,
        what: &str,
        name: &'static str,
    ) -> Result<Vec<Value>, ProviderError> {
        let mut out = Vec::new();
        let mut page = "1".to_owned();
        loop {
            let mut url = self.url(&[owner.path(), id, what])?;
            url.query_pairs_mut()
                .append_pair("page", &page)
                .append_pair("per_page", PER_PAGE);
            let result = self
                .http
                .send(&Call::get(url).header("PRIVATE-TOKEN", self.token.clone()))
                .await;
            metrics::observe(name, &result);
            let answer = result
                .map_err(|e| self.error(&format!("the {what} of {} {id:?}", owner.name()), e))?;
            let items: Vec<Value> = serde_json::from_slice(&answer.body).map_err(|e| {
                ProviderError::unavailable(format!(
                    "{}: GitLab listed the {what} of {} {id:?} as something other than a JSON array",
                    self.store,
                    owner.name()
                ))
                .with_source(e)
            })?;
            out.extend(items);
            let next = answer
                .headers
                .get("x-next-page")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .unwrap_or_default();
            if next.is_empty() || next == page {
                return Ok(out);
            }
            next.clone_into(&mut page);
        }
    }

    async fn value(&self, key: &str) -> Result<String, ProviderError> {
        let mut unconfirmed: Option<HttpError> = None;
        if let Some(project) = &self.scope.project_id {
            match self.lookup(Owner::Project, project, key).await? {
                Lookup::Found(v) => return Ok(v),
                Lookup::Missing => {}
                Lookup::OwnerMissing(e) => unconfirmed = Some(e),
            }
        }
        // Upstream reads the groups nearest first: the last of the list first.
        let groups = self.group_ids().await?.clone();
        for group in groups.iter().rev() {
            match self.lookup(Owner::Group, group, key).await? {
                Lookup::Found(v) => return Ok(v),
                Lookup::Missing => {}
                Lookup::OwnerMissing(e) => {
                    unconfirmed.get_or_insert(e);
                }
            }
        }
        match unconfirmed {
            Some(e) => Err(self.error(&format!("variable {key:?}"), e)),
            None => Err(ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: variable {key:?} does not exist in the project or its groups{}",
                    self.store,
                    if is_wildcard(&self.scope.environment) {
                        String::new()
                    } else {
                        format!(" (environment {:?} or *)", self.scope.environment)
                    }
                ),
            )),
        }
    }
}

#[async_trait]
impl SecretsClient for GitlabClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        // GitLab keys hold no hyphens; upstream reads `db-pass` as `db_pass`.
        let key = remote.key.replace('-', "_");
        let value = self.value(&key).await?;
        let Some(property) = remote.property.as_deref().filter(|p| !p.is_empty()) else {
            if value.is_empty() {
                return Err(ProviderError::invalid_request(format!(
                    "{}: variable {key:?} has an empty value",
                    self.store
                )));
            }
            return Ok(value.into_bytes());
        };
        match eso_provider::property::extract(value.as_bytes(), property, &key) {
            Ok(Some(v)) => Ok(v),
            // gjson finds nothing in a value that is not JSON either.
            Ok(None) | Err(_) => Err(ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: variable {key:?} has no property {property:?}",
                    self.store
                ),
            )),
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
        let invalid = |m: &str| ProviderError::invalid_request(format!("{}: {m}", self.store));
        let mut environment = self.scope.environment.clone();
        if !find.tags.is_empty() {
            let mut tagged = String::new();
            for (tag, value) in &find.tags {
                if tag != "environment_scope" {
                    return Err(invalid("find.tags only supports environment_scope"));
                }
                tagged.clone_from(value);
            }
            if !is_wildcard(&environment) && !is_wildcard(&tagged) {
                return Err(invalid(
                    "find.tags is constrained by the store's environment",
                ));
            }
            environment = tagged;
        }
        if find.path.is_some() {
            return Err(invalid("find.path is not supported by the gitlab provider"));
        }
        if find.name.is_none() {
            return Err(invalid("find.name is required by the gitlab provider"));
        }
        let matcher = FindMatcher::new(find).map_err(|e| {
            ProviderError::new(
                e.kind(),
                format!("{}: dataFrom.find cannot be used", self.store),
            )
            .with_source(e)
        })?;
        let matches = |v: &Value| -> Option<(String, String, bool)> {
            let key = v.get("key")?.as_str()?;
            let scope = v
                .get("environment_scope")
                .and_then(Value::as_str)
                .unwrap_or("*");
            let wildcard = is_wildcard(scope);
            if !wildcard && !is_wildcard(&environment) && scope != environment {
                return None;
            }
            if key.is_empty() || !matcher.matches_name(key) {
                return None;
            }
            let value = v.get("value").and_then(Value::as_str).unwrap_or_default();
            Some((key.to_owned(), value.to_owned(), wildcard))
        };
        let mut out = SecretData::new();
        // Groups first, in order; a scoped value beats a `*` one already there.
        for group in self.group_ids().await? {
            for v in self
                .list(Owner::Group, group, "variables", call::GROUP_VARIABLES_LIST)
                .await?
            {
                let Some((key, value, wildcard)) = matches(&v) else {
                    continue;
                };
                if wildcard && out.contains_key(&key) {
                    continue;
                }
                out.insert(key, value.into_bytes());
            }
        }
        // Then the project, which overrides the groups; its scoped values beat its `*` ones.
        if let Some(project) = &self.scope.project_id {
            let mut scoped = BTreeSet::new();
            for v in self
                .list(
                    Owner::Project,
                    project,
                    "variables",
                    call::PROJECT_VARIABLES_LIST,
                )
                .await?
            {
                let Some((key, value, wildcard)) = matches(&v) else {
                    continue;
                };
                if wildcard && scoped.contains(&key) {
                    continue;
                }
                if !wildcard {
                    scoped.insert(key.clone());
                }
                out.insert(key, value.into_bytes());
            }
        }
        Ok(out)
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        let check = |owner: Owner, id: String| async move {
            let mut url = self.url(&[owner.path(), &id, "variables"])?;
            url.query_pairs_mut().append_pair("per_page", "1");
            let name = match owner {
                Owner::Project => call::PROJECT_VARIABLES_LIST,
                Owner::Group => call::GROUP_VARIABLES_LIST,
            };
            self.send(Call::get(url), name)
                .await
                .map(|_| ())
                .map_err(|e| {
                    let kind = if e.status_is(404) {
                        ErrorKind::InvalidStore
                    } else {
                        kind_of(&e)
                    };
                    ProviderError::new(
                        kind,
                        format!(
                            "{}: the variables of {} {id:?} cannot be listed",
                            self.store,
                            owner.name()
                        ),
                    )
                    .with_source(e)
                })
        };
        if let Some(project) = &self.scope.project_id {
            check(Owner::Project, project.clone()).await?;
        }
        for group in self.group_ids().await?.clone() {
            check(Owner::Group, group).await?;
        }
        Ok(ValidationResult::Ready)
    }
}
