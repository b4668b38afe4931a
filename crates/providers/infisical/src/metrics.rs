//! `externalsecret_provider_api_calls_count{provider, call, status}` with upstream's labels
//! (`providers/v1/infisical`): provider `infisical`, one count per API call (retries inside a
//! call are one call), `status` `success` or `error`.

/// The provider label (upstream's `constants.ProviderName`).
pub(crate) const PROVIDER: &str = "infisical";

/// The `call` label values, upstream's names.
pub(crate) mod call {
    pub(crate) const UNIVERSAL_AUTH: &str = "MachineIdentityLoginViaUniversalAuth";
    pub(crate) const JWT_AUTH: &str = "MachineIdentityLoginViaJwtAuth";
    pub(crate) const LDAP_AUTH: &str = "MachineIdentityLoginViaLdapAuth";
    pub(crate) const KUBERNETES_AUTH: &str = "MachineIdentityLoginViaKubernetesAuth";
    pub(crate) const TOKEN_AUTH: &str = "MachineIdentityLoginViaTokenAuth";
    pub(crate) const REVOKE: &str = "RevokeAccessToken";
    pub(crate) const GET_SECRETS: &str = "GetSecretsV3";
    pub(crate) const GET_SECRET_BY_KEY: &str = "GetSecretByKeyV3";
    pub(crate) const CREATE_SECRET: &str = "CreateSecretV3";
    pub(crate) const UPDATE_SECRET: &str = "UpdateSecretV3";
    pub(crate) const DELETE_SECRET: &str = "DeleteSecretV3";
    pub(crate) const GET_WORKSPACE_BY_SLUG: &str = "GetWorkspaceBySlug";
}

/// Counts one call.
pub(crate) fn observe<T, E>(call: &'static str, result: &Result<T, E>) {
    eso_provider::metrics::observe(PROVIDER, call, result);
}
