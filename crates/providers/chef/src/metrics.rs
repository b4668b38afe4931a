//! `externalsecret_provider_api_calls_count{provider, call, status}` with upstream's labels
//! (`providers/v1/chef/chef.go`): one count per API call (retries inside a call are one call),
//! `status` `success` or `error`.

/// The provider label (upstream's `ProviderChef`).
pub(crate) const PROVIDER: &str = "Chef";

/// The `call` label values, upstream's names.
pub(crate) mod call {
    pub(crate) const GET_DATA_BAG_ITEM: &str = "GetDataBagItem";
    pub(crate) const LIST_DATA_BAG_ITEMS: &str = "ListDataBagItems";
    pub(crate) const GET_USER: &str = "GetUser";
}

/// Counts one call.
pub(crate) fn observe<T, E>(call: &'static str, result: &Result<T, E>) {
    eso_provider::metrics::observe(PROVIDER, call, result);
}
