//! `externalsecret_provider_api_calls_count{provider, call, status}`. Upstream does not count
//! the Doppler provider's calls; the label here is `Doppler` and the `call` names are the
//! operations of Doppler's API reference (its SDKs' method names). One count per API call
//! (retries inside a call are one call), `status` `success` or `error`.

/// The provider label.
pub(crate) const PROVIDER: &str = "Doppler";

/// The `call` label values.
pub(crate) mod call {
    pub(crate) const DOWNLOAD: &str = "SecretsDownload";
    pub(crate) const UPDATE: &str = "SecretsUpdate";
    pub(crate) const PROJECTS_LIST: &str = "ProjectsList";
    pub(crate) const OIDC_AUTH: &str = "OidcAuth";
}

/// Counts one call.
pub(crate) fn observe<T, E>(call: &'static str, result: &Result<T, E>) {
    eso_provider::metrics::observe(PROVIDER, call, result);
}
