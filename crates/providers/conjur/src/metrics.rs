//! `externalsecret_provider_api_calls_count{provider, call, status}`: one count per API call
//! (retries inside a call are one call), `status` `success` or `error`. Upstream does not count
//! Conjur's calls; the provider label follows upstream's `Vendor/Product` pattern and the call
//! names are `conjur-api-go`'s methods.

/// The provider label.
pub(crate) const PROVIDER: &str = "CyberArk/Conjur";

/// The `call` label values.
pub(crate) mod call {
    pub(crate) const AUTHENTICATE: &str = "Authenticate";
    pub(crate) const RETRIEVE_SECRET: &str = "RetrieveSecret";
    pub(crate) const RETRIEVE_BATCH_SECRETS: &str = "RetrieveBatchSecrets";
    pub(crate) const RESOURCES: &str = "Resources";
}

/// Counts one call.
pub(crate) fn observe<T, E>(call: &'static str, result: &Result<T, E>) {
    eso_provider::metrics::observe(PROVIDER, call, result);
}
