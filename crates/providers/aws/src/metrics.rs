//! `externalsecret_provider_api_calls_count{provider, call, status}` with upstream's labels:
//! one count per SDK operation (retries inside the SDK are one call), `status` is `success` or
//! `error` (a not-found answer is an error, as the Go SDK returns one for it).

/// The metric name upstream uses.
const API_CALLS: &str = "externalsecret_provider_api_calls_count";

/// Provider labels.
pub(crate) const SECRETS_MANAGER: &str = "AWS/SecretsManager";
pub(crate) const PARAMETER_STORE: &str = "AWS/ParameterStore";
pub(crate) const STS: &str = "AWS/STS";

/// Counts one call.
pub(crate) fn observe<T, E>(provider: &'static str, call: &'static str, result: &Result<T, E>) {
    let status = if result.is_ok() { "success" } else { "error" };
    metrics::counter!(
        API_CALLS,
        "provider" => provider,
        "call" => call,
        "status" => status,
    )
    .increment(1);
}
