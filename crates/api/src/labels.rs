//! Well-known labels, annotations, finalizers and field managers, byte for byte as upstream
//! writes them, so that a cluster can move between ESO and eso-rs without rewriting Secrets.

/// Label on every Secret an ExternalSecret manages; the Secret watch is filtered on it.
pub const LABEL_MANAGED: &str = "reconcile.external-secrets.io/managed";
/// The value of [`LABEL_MANAGED`].
pub const LABEL_MANAGED_VALUE: &str = "true";
/// Label set with `creationPolicy: Owner`: SHA3-224 hex of `"<namespace>/<name>"` of the owner.
pub const LABEL_CREATED_BY: &str = "reconcile.external-secrets.io/created-by";
/// Annotation holding the SHA3-224 hash of the Secret's `.data`.
pub const ANNOTATION_DATA_HASH: &str = "reconcile.external-secrets.io/data-hash";
/// Annotation a ClusterExternalSecret mirrors onto its ExternalSecrets to force a sync.
pub const ANNOTATION_FORCE_SYNC: &str = "external-secrets.io/force-sync";
/// Annotation on a store that suppresses the "unmaintained provider" event.
pub const ANNOTATION_IGNORE_MAINTENANCE_CHECKS: &str =
    "external-secrets.io/ignore-maintenance-checks";
/// Finalizer on ExternalSecrets.
pub const FINALIZER_EXTERNAL_SECRET: &str =
    "externalsecrets.external-secrets.io/externalsecret-cleanup";
/// Finalizer on ClusterExternalSecrets.
pub const FINALIZER_CLUSTER_EXTERNAL_SECRET: &str =
    "externalsecrets.external-secrets.io/clusterexternalsecret-cleanup";
/// Prefix of the field manager used for an ExternalSecret's target Secret.
pub const FIELD_MANAGER_PREFIX: &str = "externalsecrets.external-secrets.io/";
