//! The plan: a pure function from (ExternalSecret, fetched data, current Secret, clock and
//! randomness) to the whole intent of a sync: the Secret to write and exactly which data keys
//! this ExternalSecret claims in it, or a delete guarded by the Secret's identity, the `Ready`
//! condition and the events; or an error that says how it may recover. The controller only
//! executes a plan, so every policy and precedence rule is unit-tested here.

use std::collections::{BTreeMap, BTreeSet};

use eso_api::labels::{
    ANNOTATION_DATA_HASH, FIELD_MANAGER_PREFIX, LABEL_CREATED_BY, LABEL_MANAGED,
    LABEL_MANAGED_VALUE,
};
use eso_api::reasons;
use eso_api::{CreationPolicy, DeletionPolicy, ExternalSecret};
use eso_template::ExecOptions;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::Value;

use crate::fetch::Fetched;
use crate::hash;
use crate::template::{RenderOptions, TemplateCache, TemplateCause, TemplateFailure};
use crate::tenancy::{ANNOTATION_ADOPT, LABEL_READABLE, Tenancy, opted_in};

/// The Secret type used when neither the template nor an existing Secret sets one.
pub const DEFAULT_SECRET_TYPE: &str = "Opaque";

/// Kubernetes limits a field manager to 128 bytes; upstream switches to a hash above 63.
const MAX_MANAGER_LEN: usize = 63;

/// The field manager of an ExternalSecret's writes to its target Secret, as upstream names it:
/// `externalsecrets.external-secrets.io/<name>`, or `.../sha3/<hex>` for long names.
#[must_use]
pub fn field_manager(es_name: &str) -> String {
    let plain = format!("{FIELD_MANAGER_PREFIX}{es_name}");
    if plain.len() > MAX_MANAGER_LEN {
        format!("{FIELD_MANAGER_PREFIX}sha3/{}", hash::sha3_224_hex(es_name))
    } else {
        plain
    }
}

/// The data keys a field manager owns according to the Secret's `managedFields` (any
/// operation: upstream's Update entries and our Apply ones share the manager name).
#[must_use]
pub fn owned_data_keys(secret: &Secret, manager: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for entry in secret.metadata.managed_fields.iter().flatten() {
        if entry.manager.as_deref() != Some(manager) {
            continue;
        }
        let Some(fields) = entry.fields_v1.as_ref() else {
            continue;
        };
        if let Some(Value::Object(data)) = fields.0.get("f:data") {
            keys.extend(
                data.keys()
                    .filter_map(|k| k.strip_prefix("f:"))
                    .map(str::to_owned),
            );
        }
    }
    keys
}

/// What the plan needs.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The ExternalSecret.
    pub es: &'a ExternalSecret,
    /// The fetched data.
    pub fetched: &'a Fetched,
    /// The target Secret as it is now (with its `managedFields`, which say which data keys
    /// this ExternalSecret wrote before), if it exists.
    pub existing: Option<&'a Secret>,
    /// The clock and the random source templates see (`now`, `randAlphaNum`, generated
    /// keys); fixed in tests so that a plan is deterministic.
    pub exec: &'a ExecOptions,
    /// The tenancy rules (strict: write only into Secrets that are managed or opt in).
    pub tenancy: Tenancy,
}

/// A write of the target Secret.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretWrite {
    /// The Secret as it should be afterwards (what a dry run and `sync-once render` show).
    pub secret: Secret,
    /// Whether it does not exist yet.
    pub create: bool,
    /// The data keys this ExternalSecret writes and claims: the only data keys the write
    /// applies. Keys it claimed before and no longer does are released (and so removed); keys
    /// other writers hold stay theirs.
    pub claimed_keys: BTreeSet<String>,
    /// Whether every data key it does not claim is removed (Owner and Orphan: the data is
    /// exactly this ExternalSecret's).
    pub exclusive: bool,
}

/// A delete of the target Secret, valid only for the Secret the plan saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedDelete {
    /// The Secret's name.
    pub name: String,
    /// Its uid: a Secret recreated since is not deleted.
    pub uid: Option<String>,
    /// Its resourceVersion: a Secret changed since is not deleted (the controller plans
    /// again).
    pub resource_version: Option<String>,
}

/// What to do with the target Secret.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretAction {
    /// Create or update it.
    Write(Box<SecretWrite>),
    /// Delete it.
    Delete(GuardedDelete),
    /// Leave it as it is.
    Nothing,
}

/// The `Ready` condition to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyCondition {
    /// Whether the ExternalSecret is in sync.
    pub ready: bool,
    /// Upstream's reason code.
    pub reason: &'static str,
    /// A message for people.
    pub message: String,
}

/// Whether an event is routine or a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Routine.
    Normal,
    /// Something needs attention.
    Warning,
}

/// An event to record on the ExternalSecret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Normal or Warning.
    pub type_: EventType,
    /// Upstream's reason code.
    pub reason: &'static str,
    /// A message for people.
    pub message: String,
}

/// The plan's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What to do with the Secret.
    pub action: SecretAction,
    /// The Ready condition once the action succeeds.
    pub condition: ReadyCondition,
    /// Events to record once the action succeeds.
    pub events: Vec<PlannedEvent>,
}

/// How a failed sync may recover, which decides when it is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Only a change to the ExternalSecret (or its target Secret) can help: wait for one.
    AwaitChange,
    /// The data or an object the ExternalSecret reads is wrong and may be fixed without
    /// touching it: retry with backoff, at least once per refresh interval.
    RetryAtInterval,
    /// A provider or the API server failed: retry with per-object exponential backoff.
    RetryWithBackoff,
}

/// Why no plan could be made; each becomes `Ready=False` with reason `SecretSyncedError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The target Secret is controlled by another ExternalSecret.
    #[error("target Secret {secret:?} is owned by another ExternalSecret ({owner:?})")]
    OwnedByAnother {
        /// The Secret.
        secret: String,
        /// The other owner's name.
        owner: String,
    },
    /// The target Secret is immutable and its data or type would change.
    #[error(
        "could not update Secret {secret:?}: the target is immutable and its data or type would change"
    )]
    Immutable {
        /// The Secret.
        secret: String,
    },
    /// deletionPolicy Delete with a creationPolicy that does not own the Secret.
    #[error("deletionPolicy Delete requires creationPolicy Owner (found {policy})")]
    DeleteNeedsOwner {
        /// The creation policy.
        policy: &'static str,
    },
    /// deletionPolicy Delete, but the Secret is not one this ExternalSecret controls.
    #[error(
        "not deleting Secret {secret:?}: it is not controlled by this ExternalSecret (no controller ownerReference to it, or no {LABEL_MANAGED} label)"
    )]
    NotControlled {
        /// The Secret.
        secret: String,
    },
    /// The template could not be applied.
    #[error("{0}")]
    Template(TemplateFailure),
    /// The ExternalSecret is invalid.
    #[error("invalid ExternalSecret: {0}")]
    Invalid(String),
    /// Strict tenancy: the target exists, is not managed, and does not opt in.
    #[error(
        "strict tenancy: not writing into Secret {secret:?}: it was not created by an ExternalSecret (no {LABEL_MANAGED} label) and lacks the annotation {ANNOTATION_ADOPT}=\"true\""
    )]
    NotManaged {
        /// The Secret.
        secret: String,
    },
    /// Strict tenancy: the template sets the label that lets stores read the Secret.
    #[error(
        "strict tenancy: the template may not set the label {LABEL_READABLE} on Secret {secret:?}"
    )]
    ReadableLabel {
        /// The Secret.
        secret: String,
    },
}

impl PlanError {
    /// How this failure may recover.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Template(failure) if failure.cause == TemplateCause::Data => {
                ErrorClass::RetryAtInterval
            }
            // Upstream does not requeue ownership and immutability errors either.
            Self::OwnedByAnother { .. }
            | Self::Immutable { .. }
            | Self::DeleteNeedsOwner { .. }
            | Self::NotControlled { .. }
            | Self::Template(_)
            | Self::Invalid(_)
            | Self::ReadableLabel { .. } => ErrorClass::AwaitChange,
            // The fix is an annotation on the Secret, not a change to the ExternalSecret.
            Self::NotManaged { .. } => ErrorClass::RetryAtInterval,
        }
    }
}

fn ready(reason: &'static str, message: impl Into<String>) -> ReadyCondition {
    ReadyCondition {
        ready: true,
        reason,
        message: message.into(),
    }
}

fn controller_owner(secret: &Secret) -> Option<&OwnerReference> {
    secret
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

fn is_external_secret_owner(owner: &OwnerReference) -> bool {
    owner.kind == "ExternalSecret" && owner.api_version.split('/').next() == Some(eso_api::GROUP)
}

/// Whether this ExternalSecret controls the Secret: its controller ownerReference names this
/// ExternalSecret (name, group and kind, as upstream compares) and it carries the managed
/// label.
fn controlled_by(secret: &Secret, es_name: &str) -> bool {
    let managed = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_MANAGED))
        .is_some_and(|v| v == LABEL_MANAGED_VALUE);
    managed
        && controller_owner(secret)
            .is_some_and(|o| is_external_secret_owner(o) && o.name == es_name)
}

/// Why the ExternalSecret cannot be synced as written, or `None`: upstream's validation
/// rules, then what the API accepts and eso-rs does not do (never silently ignored).
#[must_use]
pub fn invalid_message(es: &ExternalSecret) -> Option<String> {
    let mut problems: Vec<String> = eso_api::validate::validate_external_secret(&es.spec)
        .iter()
        .map(ToString::to_string)
        .collect();
    if es
        .spec
        .target
        .as_ref()
        .is_some_and(|t| t.manifest.is_some())
    {
        problems.push(
            "spec.target.manifest: generic (non-Secret) targets are not supported by eso-rs; \
             remove the field to write a Secret"
                .to_owned(),
        );
    }
    (!problems.is_empty()).then(|| format!("invalid ExternalSecret: {}", problems.join("; ")))
}

/// Computes the plan.
pub fn plan(input: PlanInput<'_>) -> Result<Plan, PlanError> {
    let es = input.es;
    let creation = es.spec.creation_policy();
    let deletion = es.spec.deletion_policy();
    let target = es.target_name();
    let es_name = es.metadata.name.clone().unwrap_or_default();

    if let Some(owner) = input.existing.and_then(controller_owner)
        && is_external_secret_owner(owner)
        && owner.name != es_name
    {
        return Err(PlanError::OwnedByAnother {
            secret: target,
            owner: owner.name.clone(),
        });
    }

    if input.tenancy.is_strict()
        && let Some(existing) = input.existing
        && !opted_in(existing.metadata.labels.as_ref(), LABEL_MANAGED)
        && !opted_in(existing.metadata.annotations.as_ref(), ANNOTATION_ADOPT)
        && es.spec.creation_policy() != CreationPolicy::None
    {
        return Err(PlanError::NotManaged { secret: target });
    }

    let mut events: Vec<PlannedEvent> = input
        .fetched
        .missing
        .iter()
        .map(|key| PlannedEvent {
            type_: EventType::Normal,
            reason: reasons::EVENT_MISSING_PROVIDER_SECRET,
            message: format!("secret does not exist at provider using key {key:?}"),
        })
        .collect();

    if input.fetched.data.is_empty() {
        match deletion {
            DeletionPolicy::Delete => {
                if creation != CreationPolicy::Owner {
                    return Err(PlanError::DeleteNeedsOwner {
                        policy: creation.as_str(),
                    });
                }
                let action = match input.existing {
                    Some(existing) if controlled_by(existing, &es_name) => {
                        events.push(PlannedEvent {
                            type_: EventType::Normal,
                            reason: reasons::EVENT_DELETED,
                            message: format!("deleted Secret {target:?}: the provider has no data (deletionPolicy Delete)"),
                        });
                        SecretAction::Delete(GuardedDelete {
                            name: target,
                            uid: existing.metadata.uid.clone(),
                            resource_version: existing.metadata.resource_version.clone(),
                        })
                    }
                    Some(_) => return Err(PlanError::NotControlled { secret: target }),
                    None => SecretAction::Nothing,
                };
                return Ok(Plan {
                    action,
                    condition: ready(
                        reasons::SECRET_DELETED,
                        "secret deleted due to DeletionPolicy=Delete",
                    ),
                    events,
                });
            }
            DeletionPolicy::Retain => {
                return Ok(Plan {
                    action: SecretAction::Nothing,
                    condition: ready(
                        reasons::SECRET_SYNCED,
                        "secret retained due to DeletionPolicy=Retain",
                    ),
                    events,
                });
            }
            // Merge goes on: the keys this ExternalSecret wrote are released below.
            DeletionPolicy::Merge => {}
        }
    }

    match creation {
        CreationPolicy::None => {
            return Ok(Plan {
                action: SecretAction::Nothing,
                condition: ready(
                    reasons::SECRET_SYNCED,
                    "secret not written: creationPolicy is None",
                ),
                events,
            });
        }
        CreationPolicy::Merge if input.existing.is_none() => {
            return Ok(Plan {
                action: SecretAction::Nothing,
                condition: ready(
                    reasons::SECRET_MISSING,
                    format!(
                        "Secret {target:?} does not exist and creationPolicy Merge does not create it"
                    ),
                ),
                events,
            });
        }
        _ => {}
    }

    let write = desired_write(input, creation)?;
    let desired = &write.secret;
    if input.tenancy.is_strict()
        && desired
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(LABEL_READABLE))
    {
        return Err(PlanError::ReadableLabel { secret: target });
    }

    if let Some(existing) = input.existing {
        if existing.immutable == Some(true)
            && (existing.data != desired.data || secret_type(existing) != secret_type(desired))
        {
            return Err(PlanError::Immutable { secret: target });
        }
        // A policy other than Owner must drop the owner reference this ExternalSecret set before.
        let stale_owner = creation != CreationPolicy::Owner
            && controller_owner(existing)
                .is_some_and(|o| is_external_secret_owner(o) && o.name == es_name);
        if !stale_owner && !differs(existing, desired) {
            return Ok(Plan {
                action: SecretAction::Nothing,
                condition: ready(reasons::SECRET_SYNCED, "secret synced"),
                events,
            });
        }
    }
    let create = input.existing.is_none();
    events.push(PlannedEvent {
        type_: EventType::Normal,
        reason: if create {
            reasons::EVENT_CREATED
        } else {
            reasons::EVENT_UPDATED
        },
        message: if create {
            "secret created".to_owned()
        } else {
            "secret updated".to_owned()
        },
    });
    Ok(Plan {
        action: SecretAction::Write(Box::new(SecretWrite { create, ..write })),
        condition: ready(reasons::SECRET_SYNCED, "secret synced"),
        events,
    })
}

fn secret_type(secret: &Secret) -> &str {
    secret.type_.as_deref().unwrap_or(DEFAULT_SECRET_TYPE)
}

/// The write this ExternalSecret wants. Its own data (the template's output, or the fetched
/// data without a template) is what it claims; for `Merge`/`CreateOrMerge` the existing data
/// other writers hold stays under it (minus the keys this ExternalSecret wrote before, which
/// it releases), otherwise the data is exactly its own. Labels and annotations are the
/// template's (or the ExternalSecret's own) plus upstream's markers; the data hash covers the
/// final data.
fn desired_write(input: PlanInput<'_>, creation: CreationPolicy) -> Result<SecretWrite, PlanError> {
    let es = input.es;
    let namespace = es.metadata.namespace.clone();
    let es_name = es.metadata.name.clone().unwrap_or_default();

    let parts = match es.spec.template() {
        Some(template) => crate::template::apply_template(
            template,
            &input.fetched.data,
            &input.fetched.template_sources,
            RenderOptions {
                cache: Some(TemplateCache::global()),
                exec: input.exec,
            },
        )
        .map_err(PlanError::Template)?,
        None => crate::template::without_template(es, &input.fetched.data),
    };
    let claimed_keys: BTreeSet<String> = parts.data.keys().cloned().collect();
    let exclusive = !matches!(
        creation,
        CreationPolicy::Merge | CreationPolicy::CreateOrMerge
    );

    let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if !exclusive && let Some(existing) = input.existing {
        let released = owned_data_keys(existing, &field_manager(&es_name));
        for (k, v) in existing.data.iter().flatten() {
            if !released.contains(k) {
                data.insert(k.clone(), v.0.clone());
            }
        }
    }
    data.extend(parts.data);

    let mut labels = parts.labels;
    let mut annotations = parts.annotations;
    labels.insert(LABEL_MANAGED.to_owned(), LABEL_MANAGED_VALUE.to_owned());
    let mut owner_references = None;
    if creation == CreationPolicy::Owner {
        labels.insert(
            LABEL_CREATED_BY.to_owned(),
            hash::created_by_value(namespace.as_deref().unwrap_or_default(), &es_name),
        );
        if let Some(uid) = es.metadata.uid.clone() {
            owner_references = Some(vec![OwnerReference {
                api_version: eso_api::V1.to_owned(),
                kind: "ExternalSecret".to_owned(),
                name: es_name.clone(),
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]);
        }
    }
    annotations.insert(
        ANNOTATION_DATA_HASH.to_owned(),
        hash::secret_data_hash(&data),
    );

    let type_ = parts
        .type_
        .or_else(|| input.existing.and_then(|s| s.type_.clone()))
        .unwrap_or_else(|| DEFAULT_SECRET_TYPE.to_owned());
    let immutable = es
        .spec
        .target
        .as_ref()
        .and_then(|t| t.immutable)
        .filter(|i| *i);

    Ok(SecretWrite {
        secret: Secret {
            metadata: ObjectMeta {
                name: Some(es.target_name()),
                namespace,
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references,
                finalizers: (!parts.finalizers.is_empty()).then_some(parts.finalizers),
                ..ObjectMeta::default()
            },
            data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
            type_: Some(type_),
            immutable,
            ..Secret::default()
        },
        create: input.existing.is_none(),
        claimed_keys,
        exclusive,
    })
}

/// Whether writing `desired` would change `existing`: data, type, immutability, the labels and
/// annotations we set, and our owner reference.
fn differs(existing: &Secret, desired: &Secret) -> bool {
    let subset = |ours: &Option<BTreeMap<String, String>>,
                  theirs: &Option<BTreeMap<String, String>>| {
        ours.iter()
            .flatten()
            .all(|(k, v)| theirs.as_ref().and_then(|t| t.get(k)) == Some(v))
    };
    let data_of = |s: &Secret| s.data.clone().unwrap_or_default();
    let owner_ok = desired
        .metadata
        .owner_references
        .iter()
        .flatten()
        .all(|want| {
            existing
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|have| have.uid == want.uid && have.controller == want.controller)
        });
    data_of(existing) != data_of(desired)
        || secret_type(existing) != secret_type(desired)
        || existing.immutable.unwrap_or(false) != desired.immutable.unwrap_or(false)
        || !subset(&desired.metadata.labels, &existing.metadata.labels)
        || !subset(
            &desired.metadata.annotations,
            &existing.metadata.annotations,
        )
        || !owner_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    #[test]
    fn field_manager_matches_upstream() {
        assert_eq!(
            field_manager("db"),
            "externalsecrets.external-secrets.io/db"
        );
        let long = "a-very-long-external-secret-name-xx";
        assert!(format!("externalsecrets.external-secrets.io/{long}").len() > 63);
        assert_eq!(
            field_manager(long),
            format!(
                "externalsecrets.external-secrets.io/sha3/{}",
                hash::sha3_224_hex(long)
            )
        );
    }

    #[test]
    fn owned_keys_come_from_managed_fields() {
        let mut s = Secret::default();
        s.metadata.managed_fields = Some(vec![
            ManagedFieldsEntry {
                manager: Some("externalsecrets.external-secrets.io/db".into()),
                fields_v1: Some(FieldsV1(
                    serde_json::json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {}}),
                )),
                ..Default::default()
            },
            ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                fields_v1: Some(FieldsV1(serde_json::json!({"f:data": {"f:c": {}}}))),
                ..Default::default()
            },
        ]);
        let keys = owned_data_keys(&s, "externalsecrets.external-secrets.io/db");
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }
}
