//! `externalsecret_provider_api_calls_count{provider, call, status}`. Upstream does not count
//! the Connect provider's calls; the label follows upstream's 1Password SDK provider
//! (`1Password/SDK`) as `1Password/Connect`, and the `call` names are the Connect SDK's method
//! names. One count per API call (retries inside a call are one call), `status` `success` or
//! `error`.

/// The provider label.
pub(crate) const PROVIDER: &str = "1Password/Connect";

/// The `call` label values.
pub(crate) mod call {
    pub(crate) const GET_VAULT: &str = "GetVault";
    pub(crate) const GET_VAULTS_BY_TITLE: &str = "GetVaultsByTitle";
    pub(crate) const GET_ITEMS: &str = "GetItems";
    pub(crate) const GET_ITEMS_BY_TITLE: &str = "GetItemsByTitle";
    pub(crate) const GET_ITEM: &str = "GetItemByUUID";
    pub(crate) const GET_FILE_CONTENT: &str = "GetFileContent";
    pub(crate) const CREATE_ITEM: &str = "CreateItem";
    pub(crate) const UPDATE_ITEM: &str = "UpdateItem";
    pub(crate) const DELETE_ITEM: &str = "DeleteItem";
}

/// Counts one call.
pub(crate) fn observe<T, E>(call: &'static str, result: &Result<T, E>) {
    eso_provider::metrics::observe(PROVIDER, call, result);
}
