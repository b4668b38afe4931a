//! `externalsecret_provider_api_calls_count{provider, call, status}` with upstream's labels
//! (`providers/v1/gitlab/constants.go`): one count per API call (retries inside a call are one
//! call; upstream's second lookup with the `*` scope is a second call), `status` `success` or
//! `error`.

/// The provider label (upstream's `ProviderGitLab`).
pub(crate) const PROVIDER: &str = "GitLab";

/// The `call` label values, upstream's names.
pub(crate) mod call {
    pub(crate) const LIST_PROJECTS_GROUPS: &str = "ListProjectsGroups";
    pub(crate) const PROJECT_VARIABLE_GET: &str = "ProjectVariableGet";
    pub(crate) const PROJECT_VARIABLES_LIST: &str = "ProjectVariablesList";
    pub(crate) const GROUP_VARIABLE_GET: &str = "GroupVariableGet";
    pub(crate) const GROUP_VARIABLES_LIST: &str = "GroupVariablesList";
}

/// Counts one call.
pub(crate) fn observe<T, E>(call: &'static str, result: &Result<T, E>) {
    eso_provider::metrics::observe(PROVIDER, call, result);
}
