//! `externalsecret_provider_api_calls_count{provider, call, status}` with upstream's labels
//! (`providers/v1/gcp/secretmanager/constants.go`): one count per API call (retries inside a
//! call are one call), `status` `success` or `error` (a not-found answer is an error, as the Go
//! client returns one for it).

/// The provider label.
pub(crate) const PROVIDER: &str = "GCP/SecretManager";

/// The `call` label values: upstream's names, plus the calls upstream leaves to Google's Go
/// libraries uncounted (`ListSecretVersions` and the token requests).
pub(crate) mod call {
    pub(crate) const GET_SECRET: &str = "GetSecret";
    pub(crate) const DELETE_SECRET: &str = "DeleteSecret";
    pub(crate) const CREATE_SECRET: &str = "CreateSecret";
    pub(crate) const UPDATE_SECRET: &str = "UpdateSecret";
    pub(crate) const ACCESS_SECRET_VERSION: &str = "AccessSecretVersion";
    pub(crate) const ADD_SECRET_VERSION: &str = "AddSecretVersion";
    pub(crate) const LIST_SECRETS: &str = "ListSecrets";
    pub(crate) const LIST_SECRET_VERSIONS: &str = "ListSecretVersions";
    pub(crate) const GENERATE_SA_TOKEN: &str = "GenerateServiceAccountToken";
    pub(crate) const GENERATE_ID_BIND_TOKEN: &str = "GenerateIDBindToken";
    pub(crate) const GENERATE_ACCESS_TOKEN: &str = "GenerateAccessToken";
    pub(crate) const OAUTH2_TOKEN: &str = "OAuth2Token";
    pub(crate) const STS_TOKEN: &str = "STSToken";
    pub(crate) const METADATA_TOKEN: &str = "MetadataToken";
    pub(crate) const METADATA: &str = "Metadata";
    pub(crate) const EXTERNAL_TOKEN: &str = "ExternalToken";
}

/// Counts one call.
pub(crate) fn observe<T, E>(call: &'static str, result: &Result<T, E>) {
    eso_provider::metrics::observe(PROVIDER, call, result);
}
