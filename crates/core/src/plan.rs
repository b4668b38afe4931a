//! The plan: a pure function from (ExternalSecret, fetched data, current Secret) to what should
//! be written, the `Ready` condition and the events. No I/O and no clock, so every policy and
//! precedence rule is unit-tested here.

use std::collections::{BTreeMap, BTreeSet};

use eso_api::labels::{ANNOTATION_DATA_HASH, LABEL_CREATED_BY, LABEL_MANAGED, LABEL_MANAGED_VALUE};
use eso_api::reasons;
use eso_api::{CreationPolicy, DeletionPolicy, ExternalSecret};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::fetch::Fetched;
use crate::hash;

/// The Secret type used when neither the template nor an existing Secret sets one.
pub const DEFAULT_SECRET_TYPE: &str = "Opaque";

/// What the plan needs besides the ExternalSecret and its data.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The ExternalSecret.
    pub es: &'a ExternalSecret,
    /// The fetched data.
    pub fetched: &'a Fetched,
    /// The target Secret as it is now, if it exists.
    pub existing: Option<&'a Secret>,
    /// The data keys this ExternalSecret wrote last time (from the Secret's managedFields);
    /// with Merge policies they are removed before the new data is merged in, so keys that
    /// disappeared upstream disappear from the Secret.
    pub previously_owned_keys: &'a BTreeSet<String>,
}

/// What to do with the target Secret.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretAction {
    /// Write this Secret (create or update).
    Write {
        /// The desired Secret.
        secret: Box<Secret>,
        /// Whether it does not exist yet.
        create: bool,
    },
    /// Delete the target Secret.
    Delete {
        /// The Secret's name.
        name: String,
    },
    /// Leave the Secret as it is.
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
    /// The template could not be applied.
    #[error("{0}")]
    Template(String),
    /// The ExternalSecret is invalid.
    #[error("invalid ExternalSecret: {0}")]
    Invalid(String),
}

impl PlanError {
    /// Whether retrying without a change to the objects can help (never: every cause needs a
    /// change to the ExternalSecret or the Secret).
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        true
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
                    Some(_) => {
                        events.push(PlannedEvent {
                            type_: EventType::Normal,
                            reason: reasons::EVENT_DELETED,
                            message: format!("deleted Secret {target:?}: the provider has no data (deletionPolicy Delete)"),
                        });
                        SecretAction::Delete { name: target }
                    }
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
            // Merge goes on: the keys this ExternalSecret wrote are removed below.
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

    let desired = desired_secret(input, creation)?;

    if let Some(existing) = input.existing {
        if existing.immutable == Some(true)
            && (existing.data != desired.data || secret_type(existing) != secret_type(&desired))
        {
            return Err(PlanError::Immutable { secret: target });
        }
        // A policy other than Owner must drop the owner reference this ExternalSecret set before.
        let stale_owner = creation != CreationPolicy::Owner
            && controller_owner(existing)
                .is_some_and(|o| is_external_secret_owner(o) && o.name == es_name);
        if !stale_owner && !differs(existing, &desired) {
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
        action: SecretAction::Write {
            secret: Box::new(desired),
            create,
        },
        condition: ready(reasons::SECRET_SYNCED, "secret synced"),
        events,
    })
}

fn secret_type(secret: &Secret) -> &str {
    secret.type_.as_deref().unwrap_or(DEFAULT_SECRET_TYPE)
}

/// The Secret this ExternalSecret wants: for `Merge`/`CreateOrMerge` the existing data stays
/// (minus the keys this ExternalSecret wrote before) under the new data; otherwise the data is
/// exactly the fetched data. Labels and annotations are the ExternalSecret's own plus upstream's
/// markers; the data hash covers the final data.
fn desired_secret(input: PlanInput<'_>, creation: CreationPolicy) -> Result<Secret, PlanError> {
    let es = input.es;
    let namespace = es.metadata.namespace.clone();
    let es_name = es.metadata.name.clone().unwrap_or_default();

    let mut base: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if matches!(
        creation,
        CreationPolicy::Merge | CreationPolicy::CreateOrMerge
    ) && let Some(existing) = input.existing
    {
        for (k, v) in existing.data.iter().flatten() {
            if !input.previously_owned_keys.contains(k) {
                base.insert(k.clone(), v.0.clone());
            }
        }
    }
    let parts = match es.spec.template() {
        Some(template) => crate::template::apply_template(
            template,
            &input.fetched.data,
            &input.fetched.template_sources,
            base,
            Some(crate::template::TemplateCache::global()),
        )
        .map_err(PlanError::Template)?,
        None => crate::template::without_template(es, &input.fetched.data, base),
    };
    let data = parts.data;
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

    Ok(Secret {
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
