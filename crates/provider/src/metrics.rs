//! Upstream's provider call metric, `externalsecret_provider_api_calls_count{provider, call,
//! status}` (`runtime/metrics` in ESO): one count per API call a provider makes (retries inside
//! one call are one call), `status` `success` or `error`. Each provider keeps its own `provider`
//! label and `call` names (upstream's, where upstream counts that provider).

/// The metric name upstream uses.
pub const API_CALLS: &str = "externalsecret_provider_api_calls_count";

/// Counts one call of `provider` (e.g. `GitLab`) named `call` (e.g. `ProjectVariableGet`) by
/// its result.
pub fn observe<T, E>(provider: &'static str, call: &'static str, result: &Result<T, E>) {
    observe_status(provider, call, result.is_ok());
}

/// Counts one call whose success the caller decided (e.g. Vault counts a confirmed "not found"
/// as a successful call, as the Go client returns no error for it).
pub fn observe_status(provider: &'static str, call: &'static str, success: bool) {
    let status = if success { "success" } else { "error" };
    metrics::counter!(
        API_CALLS,
        "provider" => provider,
        "call" => call,
        "status" => status,
    )
    .increment(1);
}
