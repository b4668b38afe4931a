//! Least-privilege tenancy (`--strict-tenancy`): what a tenant who may only create
//! ExternalSecrets and SecretStores in a namespace can make the operator do there.
//!
//! In the default mode (upstream's), creating a SecretStore is as strong as reading the
//! namespace's Secrets and acting as its ServiceAccounts. In strict mode the operator acts on
//! an object of the namespace only when that object opts in, set by whoever may write it (a
//! namespace admin, not the tenant):
//!
//! | opt-in | on | lets |
//! |---|---|---|
//! | annotation `eso-rs.io/token-request: "true"` | ServiceAccount | a store mint tokens for it, for audiences the Kubernetes API server rejects |
//! | annotation `eso-rs.io/token-request-api-audience: "true"` | ServiceAccount | also tokens the API server accepts (the default audience, or an audience in its `--api-audiences`) |
//! | annotation `eso-rs.io/adopt: "true"` | Secret without the `reconcile.external-secrets.io/managed` label | an ExternalSecret write into it (adopt, overwrite, merge) |
//! | label `eso-rs.io/readable: "true"` | Secret | stores read it (credentials, webhook `secrets`) and templates read it (`templateFrom.secret`) |
//!
//! Templates may not set the `eso-rs.io/readable` label in strict mode: a template could
//! otherwise copy a protected Secret into one that stores may read.

/// ServiceAccount annotation: stores may request tokens for this account (`"true"`).
pub const ANNOTATION_TOKEN_REQUEST: &str = "eso-rs.io/token-request";
/// ServiceAccount annotation: also tokens the Kubernetes API server accepts (`"true"`).
pub const ANNOTATION_TOKEN_REQUEST_API_AUDIENCE: &str = "eso-rs.io/token-request-api-audience";
/// Secret annotation: an ExternalSecret may write into this Secret although it does not
/// carry the managed label (`"true"`).
pub const ANNOTATION_ADOPT: &str = "eso-rs.io/adopt";
/// Secret label: stores and templates may read this Secret (`"true"`).
pub const LABEL_READABLE: &str = "eso-rs.io/readable";

/// How much a namespace tenant's objects may make the operator do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tenancy {
    /// Upstream's rules: namespace boundaries hold, objects inside the namespace need no
    /// opt-in.
    #[default]
    Default,
    /// Inside the namespace too, the operator acts only on objects that opt in.
    Strict,
}

impl Tenancy {
    /// Whether this is strict mode.
    #[must_use]
    pub fn is_strict(self) -> bool {
        self == Self::Strict
    }
}

/// Whether `map` (labels or annotations) sets `key` to `"true"`.
pub(crate) fn opted_in(
    map: Option<&std::collections::BTreeMap<String, String>>,
    key: &str,
) -> bool {
    map.and_then(|m| m.get(key)).is_some_and(|v| v == "true")
}
