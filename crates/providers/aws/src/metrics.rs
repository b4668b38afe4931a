//! `externalsecret_provider_api_calls_count{provider, call, status}` with upstream's labels:
//! one count per SDK operation (retries inside the SDK are one call), `status` is `success` or
//! `error` (a not-found answer is an error, as the Go SDK returns one for it).

/// Provider labels.
pub(crate) const SECRETS_MANAGER: &str = "AWS/SecretsManager";
pub(crate) const PARAMETER_STORE: &str = "AWS/ParameterStore";
pub(crate) const STS: &str = "AWS/STS";

pub(crate) use eso_provider::metrics::observe;
