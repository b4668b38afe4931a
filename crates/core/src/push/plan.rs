//! The pure half of a PushSecret reconcile: from the PushSecret, its source Secrets (after the
//! template) and the stores it pushes to, decide every value to push and where
//! ([`plan_items`]), which remote values are no longer pushed ([`stale_entries`]), whether a
//! refresh is due ([`RefreshLedger`]) and the status to record ([`next_push_status`]).
//!
//! Upstream's rules (`pkg/controllers/pushsecret/pushsecret_controller.go`), as our own table:
//!
//! | input | rule |
//! |---|---|
//! | `data[i]` | its `conversionStrategy` is applied to the source keys first; an empty `secretKey` pushes the whole Secret (one JSON object); a missing key is an error |
//! | `dataTo[i]` | applies to the stores its `storeRef` names (name wins over labelSelector, kinds must match); keys are converted, then matched by `match.regexp`, then rewritten in order; an empty rewritten key or two keys with one remote key is an error; with `remoteKey` every matched key is bundled into one JSON object |
//! | both | an explicit `data[]` entry wins over a `dataTo` entry for the same source key; two entries pushing to one (remote key, property) is an error |
//! | status | `syncedPushSecrets["<Kind>/<store>"]["<remoteKey>[/<property>]"]` = the data entry |

use std::collections::BTreeMap;
use std::time::Duration;

use eso_api::common::{Condition, ConditionStatus};
use eso_api::{
    PushSecret, PushSecretConversionStrategy, PushSecretData, PushSecretDataTo, PushSecretMatch,
    PushSecretRemoteRef, PushSecretStatus, PushSecretStoreRef, StoreKind, push_reasons,
};
use eso_provider::rewrite::KeyTransformer;
use eso_provider::{PushRemoteRef, PushRequest, SecretData, StoreInfo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use regex::Regex;

use crate::status::set_condition;

/// Upstream's PushSecret finalizer, put on PushSecrets with `deletionPolicy: Delete`.
pub const PUSH_SECRET_FINALIZER: &str = "pushsecret.externalsecrets.io/finalizer";

/// `syncedPushSecrets`: `"<Kind>/<store>"` → `"<remoteKey>[/<property>]"` → the data entry.
pub type SyncedMap = BTreeMap<String, BTreeMap<String, PushSecretData>>;

/// A spec that cannot be pushed as written, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// The field, e.g. `spec.dataTo[0].rewrite[1]`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        field: field.into(),
        message: message.into(),
    }
}

/// A store a PushSecret pushes to, with its labels (for `dataTo[].storeRef.labelSelector`).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStore {
    /// The store.
    pub info: StoreInfo,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// The `syncedPushSecrets` key of a store: `"<Kind>/<name>"`, as upstream.
#[must_use]
pub fn store_status_key(kind: StoreKind, name: &str) -> String {
    format!("{}/{name}", kind.as_str())
}

/// Splits a `syncedPushSecrets` store key back into kind and name.
#[must_use]
pub fn parse_store_status_key(key: &str) -> Option<(StoreKind, &str)> {
    let (kind, name) = key.split_once('/')?;
    let kind = match kind {
        "SecretStore" => StoreKind::SecretStore,
        "ClusterSecretStore" => StoreKind::ClusterSecretStore,
        _ => return None,
    };
    Some((kind, name))
}

/// The `syncedPushSecrets` entry key of a remote ref: `remoteKey`, or `remoteKey/property`.
#[must_use]
pub fn remote_status_ref(remote: &PushSecretRemoteRef) -> String {
    match remote.property.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => format!("{}/{p}", remote.remote_key),
        None => remote.remote_key.clone(),
    }
}

/// A source Secret's data after the template.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceData {
    /// The Secret's name (for messages).
    pub name: String,
    /// Its data.
    pub data: SecretData,
}

/// One value to push to one store.
#[derive(Debug, Clone, PartialEq)]
pub struct PushItem {
    /// Index of the store in the list given to [`plan_items`].
    pub store: usize,
    /// The store's `syncedPushSecrets` key.
    pub store_key: String,
    /// The entry's `syncedPushSecrets` key.
    pub status_ref: String,
    /// The entry recorded in status.
    pub entry: PushSecretData,
    /// What the provider is asked to write.
    pub request: PushRequest,
    /// Where it came from, e.g. `spec.data[0]` of Secret "db", for messages.
    pub origin: String,
}

impl PushItem {
    /// `key "password" of Secret "db"` or `Secret "db"` (whole), for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{} to remote key {:?}{}",
            self.origin,
            self.request.remote.remote_key,
            self.request
                .remote
                .property
                .as_deref()
                .map(|p| format!(" property {p:?}"))
                .unwrap_or_default()
        )
    }
}

/// Checks what the API server's schema cannot: selectors, store references, `dataTo` rules and
/// regular expressions. `selector.generatorRef` is reported by the caller.
pub fn validate_spec(ps: &PushSecret) -> Result<(), InvalidSpec> {
    let spec = &ps.spec;
    spec.refresh_interval()
        .map_err(|e| invalid("spec.refreshInterval", e.to_string()))?;
    if let Some(secret) = &spec.selector.secret {
        let named = secret.name.as_deref().is_some_and(|n| !n.is_empty());
        match (&secret.selector, named) {
            (None, false) => {
                return Err(invalid(
                    "spec.selector.secret",
                    "set name or selector to choose the source Secret",
                ));
            }
            (Some(sel), false)
                if sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
                    && sel.match_expressions.as_ref().is_none_or(Vec::is_empty) =>
            {
                return Err(invalid(
                    "spec.selector.secret.selector",
                    "the selector is empty; it must not select every Secret of the namespace",
                ));
            }
            _ => {}
        }
    } else if spec.selector.generator_ref.is_none() {
        return Err(invalid(
            "spec.selector",
            "set secret or generatorRef to choose the source",
        ));
    }
    if spec.secret_store_refs.is_empty() {
        return Err(invalid("spec.secretStoreRefs", "no store is referenced"));
    }
    for (i, r) in spec.secret_store_refs.iter().enumerate() {
        if r.name.as_deref().is_none_or(str::is_empty) && r.label_selector.is_none() {
            return Err(invalid(
                format!("spec.secretStoreRefs[{i}]"),
                "set name or labelSelector",
            ));
        }
    }
    for (i, d) in spec.data_to.iter().enumerate() {
        let field = format!("spec.dataTo[{i}]");
        let Some(store_ref) = &d.store_ref else {
            return Err(invalid(format!("{field}.storeRef"), "storeRef is required"));
        };
        let name = store_ref.name.as_deref().filter(|n| !n.is_empty());
        if name.is_none() && store_ref.label_selector.is_none() {
            return Err(invalid(
                format!("{field}.storeRef"),
                "set name or labelSelector",
            ));
        }
        if let Some(name) = name
            && !listed(store_ref, name, &spec.secret_store_refs)
        {
            return Err(invalid(
                format!("{field}.storeRef"),
                format!(
                    "{} {name:?} is not among spec.secretStoreRefs",
                    store_ref.kind().as_str()
                ),
            ));
        }
        if d.remote_key.is_some() && !d.rewrite.is_empty() {
            return Err(invalid(
                field,
                "remoteKey and rewrite are mutually exclusive",
            ));
        }
        if let Some(re) = d.match_.as_ref().and_then(|m| m.regexp.as_deref()) {
            Regex::new(re).map_err(|e| {
                invalid(
                    format!("{field}.match.regexp"),
                    format!("{re:?} is not a valid regular expression: {e}"),
                )
            })?;
        }
        for (j, rw) in d.rewrite.iter().enumerate() {
            let rfield = format!("{field}.rewrite[{j}]");
            match (&rw.regexp, &rw.transform) {
                (Some(re), None) => {
                    Regex::new(&re.source).map_err(|e| {
                        invalid(
                            format!("{rfield}.regexp.source"),
                            format!("{:?} is not a valid regular expression: {e}", re.source),
                        )
                    })?;
                }
                (None, Some(_)) => {}
                _ => {
                    return Err(invalid(
                        rfield,
                        "exactly one of regexp and transform must be set",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether a named `dataTo` store reference is among the spec's store references (a label
/// selector of the same kind may select it).
fn listed(r: &PushSecretStoreRef, name: &str, refs: &[PushSecretStoreRef]) -> bool {
    refs.iter().any(|s| {
        s.kind() == r.kind() && (s.name.as_deref() == Some(name) || s.label_selector.is_some())
    })
}

/// Turns `_UXXXX_` sequences back into the characters they stand for (the reverse of the
/// `Unicode` key conversion).
#[must_use]
pub fn reverse_unicode(key: &str) -> String {
    static PATTERN: std::sync::LazyLock<Option<Regex>> =
        std::sync::LazyLock::new(|| Regex::new("_U([0-9a-fA-F]{4,})_").ok());
    let Some(pattern) = PATTERN.as_ref() else {
        return key.to_owned();
    };
    pattern
        .replace_all(key, |caps: &regex::Captures<'_>| {
            u32::from_str_radix(&caps[1], 16)
                .ok()
                .and_then(char::from_u32)
                .map_or_else(|| caps[0].to_owned(), String::from)
        })
        .into_owned()
}

fn convert(
    strategy: Option<PushSecretConversionStrategy>,
    data: &SecretData,
    field: &str,
) -> Result<SecretData, InvalidSpec> {
    match strategy.unwrap_or_default() {
        PushSecretConversionStrategy::None => Ok(data.clone()),
        PushSecretConversionStrategy::ReverseUnicode => {
            let mut out = SecretData::new();
            for (k, v) in data {
                let key = reverse_unicode(k);
                if out.insert(key.clone(), v.clone()).is_some() {
                    return Err(invalid(
                        format!("{field}.conversionStrategy"),
                        format!("two source keys convert to {key:?}"),
                    ));
                }
            }
            Ok(out)
        }
    }
}

/// The whole data as one JSON object of strings, for pushes without a single key.
fn json_object(data: &SecretData, field: &str, secret: &str) -> Result<Vec<u8>, InvalidSpec> {
    let mut object = serde_json::Map::new();
    for (k, v) in data {
        let text = String::from_utf8(v.clone()).map_err(|_| {
            invalid(
                field,
                format!("key {k:?} of Secret {secret:?} is not UTF-8 text and cannot be bundled into a JSON object"),
            )
        })?;
        object.insert(k.clone(), serde_json::Value::String(text));
    }
    Ok(serde_json::Value::Object(object).to_string().into_bytes())
}

fn data_to_applies(d: &PushSecretDataTo, store: &TargetStore) -> bool {
    let Some(r) = &d.store_ref else {
        return false;
    };
    if r.kind() != store.info.kind {
        return false;
    }
    match (
        r.name.as_deref().filter(|n| !n.is_empty()),
        &r.label_selector,
    ) {
        (Some(name), _) => name == store.info.name,
        (None, Some(sel)) => crate::selector::matches(sel, &store.labels),
        (None, None) => false,
    }
}

fn rewrite_key(
    d: &PushSecretDataTo,
    key: &str,
    field: &str,
    transformer: &dyn KeyTransformer,
) -> Result<String, InvalidSpec> {
    let mut current = key.to_owned();
    for (j, rw) in d.rewrite.iter().enumerate() {
        let rfield = format!("{field}.rewrite[{j}]");
        current = match (&rw.regexp, &rw.transform) {
            (Some(re), None) => {
                let compiled = Regex::new(&re.source).map_err(|e| {
                    invalid(
                        format!("{rfield}.regexp.source"),
                        format!("{:?} is not a valid regular expression: {e}", re.source),
                    )
                })?;
                compiled
                    .replace_all(&current, re.target.as_str())
                    .into_owned()
            }
            (None, Some(tr)) => transformer
                .transform(&tr.template, &current)
                .map_err(|e| invalid(format!("{rfield}.transform"), e))?,
            _ => {
                return Err(invalid(
                    rfield,
                    "exactly one of regexp and transform must be set",
                ));
            }
        };
    }
    Ok(current)
}

/// Expands `dataTo` entries for one store into data entries with their values and origins.
fn expand_data_to(
    ps: &PushSecret,
    source: &SourceData,
    store: &TargetStore,
    transformer: &dyn KeyTransformer,
) -> Result<Vec<(PushSecretData, Vec<u8>, String)>, InvalidSpec> {
    let mut out = Vec::new();
    // remote key -> origin, across every dataTo entry
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (i, d) in ps.spec.data_to.iter().enumerate() {
        if !data_to_applies(d, store) {
            continue;
        }
        let field = format!("spec.dataTo[{i}]");
        let converted = convert(d.conversion_strategy, &source.data, &field)?;
        let pattern = match d.match_.as_ref().and_then(|m| m.regexp.as_deref()) {
            Some(re) if !re.is_empty() => Some(Regex::new(re).map_err(|e| {
                invalid(
                    format!("{field}.match.regexp"),
                    format!("{re:?} is not a valid regular expression: {e}"),
                )
            })?),
            _ => None,
        };
        let matched: SecretData = converted
            .into_iter()
            .filter(|(k, _)| pattern.as_ref().is_none_or(|p| p.is_match(k)))
            .collect();
        if matched.is_empty() {
            continue;
        }
        if let Some(remote_key) = d.remote_key.as_deref() {
            if remote_key.is_empty() {
                return Err(invalid(format!("{field}.remoteKey"), "must not be empty"));
            }
            let value = json_object(&matched, &field, &source.name)?;
            let origin = format!("{field} (keys of Secret {:?})", source.name);
            if let Some(other) = seen.insert(remote_key.to_owned(), origin.clone()) {
                return Err(invalid(
                    field,
                    format!("remote key {remote_key:?} is also pushed by {other}"),
                ));
            }
            let entry = PushSecretData {
                match_: PushSecretMatch {
                    secret_key: None,
                    remote_ref: PushSecretRemoteRef {
                        remote_key: remote_key.to_owned(),
                        property: None,
                    },
                },
                metadata: d.metadata.clone(),
                conversion_strategy: d.conversion_strategy,
            };
            out.push((entry, value, origin));
            continue;
        }
        for (key, value) in matched {
            let remote = rewrite_key(d, &key, &field, transformer)?;
            if remote.is_empty() {
                return Err(invalid(
                    format!("{field}.rewrite"),
                    format!("source key {key:?} is rewritten to an empty remote key"),
                ));
            }
            let origin = format!("{field} key {key:?} of Secret {:?}", source.name);
            if let Some(other) = seen.insert(remote.clone(), origin.clone()) {
                return Err(invalid(
                    format!("{field}.rewrite"),
                    format!(
                        "source key {key:?} is rewritten to remote key {remote:?}, which {other} also gets"
                    ),
                ));
            }
            let entry = PushSecretData {
                match_: PushSecretMatch {
                    secret_key: Some(key),
                    remote_ref: PushSecretRemoteRef {
                        remote_key: remote,
                        property: None,
                    },
                },
                metadata: d.metadata.clone(),
                conversion_strategy: d.conversion_strategy,
            };
            out.push((entry, value, origin));
        }
    }
    Ok(out)
}

/// Every value to push: for each source Secret and each store, the store's `dataTo`
/// expansions and every `data[]` entry (which wins for the same source key). Two values for
/// one remote location of one store is an error, within a Secret and across Secrets.
pub fn plan_items(
    ps: &PushSecret,
    sources: &[SourceData],
    stores: &[TargetStore],
    transformer: &dyn KeyTransformer,
) -> Result<Vec<PushItem>, InvalidSpec> {
    let mut items: Vec<PushItem> = Vec::new();
    // (store key, status ref) -> index in items
    let mut at: BTreeMap<(String, String), usize> = BTreeMap::new();
    for source in sources {
        for (si, store) in stores.iter().enumerate() {
            let store_key = store_status_key(store.info.kind, &store.info.name);
            let mut entries = expand_data_to(ps, source, store, transformer)?;
            let explicit: Vec<Option<&str>> = ps
                .spec
                .data
                .iter()
                .map(|d| d.match_.secret_key.as_deref())
                .collect();
            entries.retain(|(e, _, _)| !explicit.contains(&e.match_.secret_key.as_deref()));
            for (i, d) in ps.spec.data.iter().enumerate() {
                let field = format!("spec.data[{i}]");
                let converted = convert(d.conversion_strategy, &source.data, &field)?;
                let (value, origin) = match d.match_.secret_key.as_deref().filter(|k| !k.is_empty())
                {
                    None => (
                        json_object(&converted, &field, &source.name)?,
                        format!("{field} (Secret {:?})", source.name),
                    ),
                    Some(key) => {
                        let value = converted.get(key).cloned().ok_or_else(|| {
                            invalid(
                                format!("{field}.match.secretKey"),
                                format!("Secret {:?} has no key {key:?}", source.name),
                            )
                        })?;
                        (
                            value,
                            format!("{field} key {key:?} of Secret {:?}", source.name),
                        )
                    }
                };
                if d.match_.remote_ref.remote_key.is_empty() {
                    return Err(invalid(
                        format!("{field}.match.remoteRef.remoteKey"),
                        "must not be empty",
                    ));
                }
                entries.push((d.clone(), value, origin));
            }
            for (entry, value, origin) in entries {
                let status_ref = remote_status_ref(&entry.match_.remote_ref);
                let slot = (store_key.clone(), status_ref.clone());
                if let Some(&other) = at.get(&slot) {
                    return Err(invalid(
                        origin.split(' ').next().unwrap_or_default(),
                        format!(
                            "{origin} and {} both push to remote key {status_ref:?} of {}",
                            items[other].origin,
                            store.info.describe()
                        ),
                    ));
                }
                at.insert(slot, items.len());
                items.push(PushItem {
                    store: si,
                    store_key: store_key.clone(),
                    status_ref,
                    request: PushRequest {
                        value,
                        secret_key: entry.match_.secret_key.clone().filter(|k| !k.is_empty()),
                        remote: PushRemoteRef {
                            remote_key: entry.match_.remote_ref.remote_key.clone(),
                            property: entry
                                .match_
                                .remote_ref
                                .property
                                .clone()
                                .filter(|p| !p.is_empty()),
                        },
                        metadata: entry.metadata.clone(),
                    },
                    entry,
                    origin,
                });
            }
        }
    }
    Ok(items)
}

/// The `syncedPushSecrets` of these items (every store present, even with no entries).
#[must_use]
pub fn synced_map(items: &[PushItem], stores: &[TargetStore]) -> SyncedMap {
    let mut out: SyncedMap = stores
        .iter()
        .map(|s| (store_status_key(s.info.kind, &s.info.name), BTreeMap::new()))
        .collect();
    for item in items {
        out.entry(item.store_key.clone())
            .or_default()
            .insert(item.status_ref.clone(), item.entry.clone());
    }
    out
}

/// Entries of `old` that `new` no longer has: (store key, status ref, entry). Under
/// `deletionPolicy: Delete` these are deleted from their stores.
#[must_use]
pub fn stale_entries(old: &SyncedMap, new: &SyncedMap) -> Vec<(String, String, PushSecretData)> {
    let mut out = Vec::new();
    for (store, entries) in old {
        for (status_ref, entry) in entries {
            let kept = new.get(store).is_some_and(|n| n.contains_key(status_ref));
            if !kept {
                out.push((store.clone(), status_ref.clone(), entry.clone()));
            }
        }
    }
    out
}

/// Upstream's `mergeSecretState`: what was pushed now, plus everything recorded before (so a
/// failed reconcile forgets nothing that may need deleting later).
#[must_use]
pub fn merge_synced(new: &SyncedMap, old: &SyncedMap) -> SyncedMap {
    let mut out = new.clone();
    for (store, entries) in old {
        let slot = out.entry(store.clone()).or_default();
        for (k, v) in entries {
            slot.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    out.retain(|_, v| !v.is_empty());
    out
}

/// `status.syncedResourceVersion` of a PushSecret: `"<generation>-<metadata hash>"`, as
/// upstream's `GetResourceVersion`.
#[must_use]
pub fn push_resource_version(ps: &PushSecret) -> String {
    crate::hash::synced_resource_version(
        ps.metadata.generation.unwrap_or_default(),
        &ps.metadata.annotations.clone().unwrap_or_default(),
        &ps.metadata.labels.clone().unwrap_or_default(),
    )
}

/// How a PushSecret reconcile ended, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Everything was pushed (or was already there).
    Synced,
    /// Something failed; the message names the field or key, the store and the cause.
    Errored(String),
    /// The source Secret is gone and the pushed values were deleted.
    SourceDeleted(String),
}

/// Upstream's success message.
#[must_use]
pub fn synced_message(ps: &PushSecret) -> String {
    let mut msg = "PushSecret synced successfully".to_owned();
    if ps.spec.update_policy() == eso_api::PushSecretUpdatePolicy::IfNotExists {
        msg.push_str(". Existing secrets in providers unchanged.");
    }
    msg
}

/// The status after a reconcile that started at `started`: the `Ready` condition (its
/// `lastTransitionTime` kept while the status does not change), `syncedPushSecrets` (when
/// given), and on success `refreshTime` and `syncedResourceVersion`.
#[must_use]
pub fn next_push_status(
    ps: &PushSecret,
    outcome: &PushOutcome,
    synced: Option<SyncedMap>,
    started: Timestamp,
) -> PushSecretStatus {
    let mut status = ps.status.clone().unwrap_or_default();
    let (ready, reason, message) = match outcome {
        PushOutcome::Synced => (true, push_reasons::SYNCED, synced_message(ps)),
        PushOutcome::Errored(m) => (false, push_reasons::ERRORED, m.clone()),
        PushOutcome::SourceDeleted(m) => (false, push_reasons::SOURCE_DELETED, m.clone()),
    };
    status.conditions = set_condition(
        &status.conditions,
        Condition {
            type_: "Ready".to_owned(),
            status: ConditionStatus::from(ready),
            reason: Some(reason.to_owned()),
            message: Some(message),
            last_transition_time: Some(Time(started)),
        },
    );
    if let Some(synced) = synced {
        status.synced_push_secrets = synced;
    }
    if *outcome == PushOutcome::Synced {
        status.refresh_time = Some(Time(started));
        status.synced_resource_version = Some(push_resource_version(ps));
    }
    status
}

/// Whether the new status differs from the stored one in more than `refreshTime` (which a
/// refresh that changed nothing does not rewrite, unless `always` asks for it).
#[must_use]
pub fn push_status_needs_write(
    old: Option<&PushSecretStatus>,
    new: &PushSecretStatus,
    always: bool,
) -> bool {
    let Some(old) = old else {
        return true;
    };
    if always {
        return old != new;
    }
    let mut a = old.clone();
    let mut b = new.clone();
    a.refresh_time = None;
    b.refresh_time = None;
    // The condition's transition time only moves with its status, so comparing the rest is
    // enough; a status that never had a refreshTime gets one.
    a != b || (old.refresh_time.is_none() && new.refresh_time.is_some())
}

/// Whether the stored status says Ready=True.
#[must_use]
pub fn is_ready(ps: &PushSecret) -> bool {
    ps.status.as_ref().is_some_and(|s| {
        eso_api::common::find_condition(&s.conditions, "Ready")
            .is_some_and(|c| c.status == ConditionStatus::True)
    })
}

/// What this process last pushed for each PushSecret: a fingerprint of every (store, remote
/// ref, value, metadata) and when. A reconcile whose fingerprint, resource version and
/// schedule all match skips the providers entirely; the status is not rewritten for a refresh
/// that changed nothing, so this (not `status.refreshTime`) schedules the next refresh.
#[derive(Debug, Default)]
pub struct RefreshLedger {
    entries: std::sync::Mutex<BTreeMap<String, LedgerEntry>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LedgerEntry {
    fingerprint: String,
    resource_version: String,
    at: Timestamp,
}

impl RefreshLedger {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a successful push.
    pub fn record(&self, uid: &str, fingerprint: String, resource_version: String, at: Timestamp) {
        if let Ok(mut e) = self.entries.lock() {
            e.insert(
                uid.to_owned(),
                LedgerEntry {
                    fingerprint,
                    resource_version,
                    at,
                },
            );
        }
    }

    /// Forgets a PushSecret (deleted, or failed: the next reconcile pushes afresh).
    pub fn forget(&self, uid: &str) {
        if let Ok(mut e) = self.entries.lock() {
            e.remove(uid);
        }
    }

    /// How long until the next refresh is due when the same values were pushed for the same
    /// resource version within the interval; `None` when a push is due now. An interval of
    /// zero never comes due again (pushed once, then only on change).
    #[must_use]
    pub fn remaining(
        &self,
        uid: &str,
        fingerprint: &str,
        resource_version: &str,
        interval: Duration,
        now: Timestamp,
    ) -> Option<Option<Duration>> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(uid)?;
        if e.fingerprint != fingerprint || e.resource_version != resource_version {
            return None;
        }
        if interval.is_zero() {
            return Some(None);
        }
        let elapsed = now
            .duration_since(e.at)
            .try_into()
            .unwrap_or(Duration::ZERO);
        interval
            .checked_sub(elapsed)
            .filter(|d| !d.is_zero())
            .map(Some)
    }

    /// How many PushSecrets are recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or_default()
    }

    /// Whether none is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fingerprint of everything a push writes (stores, remote refs, values, metadata, policy).
#[must_use]
pub fn fingerprint(items: &[PushItem], ps: &PushSecret) -> String {
    let mut text = String::new();
    text.push_str(&format!(
        "{:?}|{:?}\n",
        ps.spec.update_policy(),
        ps.spec.deletion_policy()
    ));
    for item in items {
        text.push_str(&format!(
            "{}|{}|{:?}|{}|{}\n",
            item.store_key,
            item.status_ref,
            item.request.secret_key,
            crate::hash::sha3_224_hex(&format!("{:?}", item.request.value)),
            item.request
                .metadata
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        ));
    }
    crate::hash::sha3_224_hex(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::GoTemplates;

    fn ps(spec: serde_json::Value) -> PushSecret {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "push", "namespace": "team", "uid": "u-1", "generation": 1},
            "spec": spec
        }))
        .unwrap()
    }

    fn store(kind: StoreKind, name: &str, labels: &[(&str, &str)]) -> TargetStore {
        TargetStore {
            info: StoreInfo {
                kind,
                name: name.into(),
                namespace: (kind == StoreKind::SecretStore).then(|| "team".to_owned()),
                uid: None,
                generation: None,
                spec: eso_api::SecretStoreSpec::default(),
            },
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    fn source(pairs: &[(&str, &str)]) -> Vec<SourceData> {
        vec![SourceData {
            name: "db".into(),
            data: crate::testing::bytes(pairs),
        }]
    }

    fn plan(
        p: &PushSecret,
        src: &[SourceData],
        stores: &[TargetStore],
    ) -> Result<Vec<PushItem>, InvalidSpec> {
        plan_items(p, src, stores, &GoTemplates)
    }

    #[test]
    fn data_entries_push_one_key_or_the_whole_secret_to_every_store() {
        let p = ps(serde_json::json!({
            "secretStoreRefs": [{"name": "a"}, {"name": "b"}],
            "selector": {"secret": {"name": "db"}},
            "data": [
                {"match": {"secretKey": "password", "remoteRef": {"remoteKey": "db", "property": "pw"}}, "metadata": {"x": 1}},
                {"match": {"remoteRef": {"remoteKey": "all"}}}
            ]
        }));
        let stores = [
            store(StoreKind::SecretStore, "a", &[]),
            store(StoreKind::ClusterSecretStore, "b", &[]),
        ];
        let items = plan(&p, &source(&[("password", "s3"), ("user", "app")]), &stores).unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].store_key, "SecretStore/a");
        assert_eq!(items[0].status_ref, "db/pw");
        assert_eq!(items[0].request.value, b"s3");
        assert_eq!(items[0].request.secret_key.as_deref(), Some("password"));
        assert_eq!(items[0].request.metadata, Some(serde_json::json!({"x": 1})));
        assert_eq!(items[1].status_ref, "all");
        assert_eq!(items[1].request.value, br#"{"password":"s3","user":"app"}"#);
        assert_eq!(items[1].request.secret_key, None);
        assert_eq!(items[2].store_key, "ClusterSecretStore/b");
        let synced = synced_map(&items, &stores);
        assert_eq!(synced["SecretStore/a"].len(), 2);
        assert_eq!(synced["ClusterSecretStore/b"]["db/pw"], p.spec.data[0]);
    }

    #[test]
    fn a_missing_source_key_names_the_entry_and_the_secret() {
        let p = ps(serde_json::json!({
            "secretStoreRefs": [{"name": "a"}],
            "selector": {"secret": {"name": "db"}},
            "data": [{"match": {"secretKey": "nope", "remoteRef": {"remoteKey": "r"}}}]
        }));
        let err = plan(
            &p,
            &source(&[("k", "v")]),
            &[store(StoreKind::SecretStore, "a", &[])],
        )
        .unwrap_err();
        assert_eq!(err.field, "spec.data[0].match.secretKey");
        assert_eq!(
            err.to_string(),
            "spec.data[0].match.secretKey: Secret \"db\" has no key \"nope\""
        );
    }

    #[test]
    fn data_to_matches_rewrites_and_yields_to_explicit_entries() {
        let p = ps(serde_json::json!({
            "secretStoreRefs": [{"labelSelector": {"matchLabels": {"tier": "x"}}}],
            "selector": {"secret": {"name": "db"}},
            "dataTo": [{
                "storeRef": {"labelSelector": {"matchLabels": {"tier": "x"}}},
                "match": {"regexp": "^db_"},
                "rewrite": [{"regexp": {"source": "^db_", "target": "app/"}}, {"transform": {"template": "{{ .value | upper }}"}}]
            }],
            "data": [{"match": {"secretKey": "db_user", "remoteRef": {"remoteKey": "explicit"}}}]
        }));
        let stores = [
            store(StoreKind::SecretStore, "picked", &[("tier", "x")]),
            store(StoreKind::SecretStore, "other", &[]),
        ];
        let items = plan(
            &p,
            &source(&[("db_pass", "p"), ("db_user", "u"), ("api", "k")]),
            &stores,
        )
        .unwrap();
        let picked: Vec<(&str, &str)> = items
            .iter()
            .filter(|i| i.store == 0)
            .map(|i| {
                (
                    i.status_ref.as_str(),
                    std::str::from_utf8(&i.request.value).unwrap(),
                )
            })
            .collect();
        assert_eq!(picked, [("APP/PASS", "p"), ("explicit", "u")]);
        // The store the dataTo selector does not pick gets only the explicit entry.
        let other: Vec<&str> = items
            .iter()
            .filter(|i| i.store == 1)
            .map(|i| i.status_ref.as_str())
            .collect();
        assert_eq!(other, ["explicit"]);
    }

    #[test]
    fn data_to_remote_key_bundles_matched_keys_as_one_json_object() {
        let p = ps(serde_json::json!({
            "secretStoreRefs": [{"name": "a"}],
            "selector": {"secret": {"name": "db"}},
            "dataTo": [{"storeRef": {"name": "a"}, "remoteKey": "bundle", "match": {"regexp": "^u"}}]
        }));
        let items = plan(
            &p,
            &source(&[("user", "app"), ("url", "x"), ("pw", "s")]),
            &[store(StoreKind::SecretStore, "a", &[])],
        )
        .unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].status_ref, "bundle");
        assert_eq!(items[0].request.value, br#"{"url":"x","user":"app"}"#);
    }

    #[test]
    fn a_rewrite_to_an_empty_or_shared_remote_key_is_an_error_naming_the_field() {
        let mut p = ps(serde_json::json!({
            "secretStoreRefs": [{"name": "a"}],
            "selector": {"secret": {"name": "db"}},
            "dataTo": [{"storeRef": {"name": "a"}, "rewrite": [{"regexp": {"source": ".*", "target": ""}}]}]
        }));
        let stores = [store(StoreKind::SecretStore, "a", &[])];
        let err = plan(&p, &source(&[("k", "v")]), &stores).unwrap_err();
        assert_eq!(err.field, "spec.dataTo[0].rewrite");
        assert!(err.message.contains("empty remote key"), "{err}");
        p.spec.data_to[0].rewrite[0].regexp.as_mut().unwrap().target = "same".into();
        let err = plan(&p, &source(&[("a", "1"), ("b", "2")]), &stores).unwrap_err();
        assert!(err.message.contains("remote key \"same\""), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let base = serde_json::json!({
            "secretStoreRefs": [{"name": "a"}],
            "selector": {"secret": {"name": "db"}}
        });
        let with = |patch: serde_json::Value| {
            let mut spec = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                spec[k] = v.clone();
            }
            validate_spec(&ps(spec)).map_err(|e| e.to_string())
        };
        assert_eq!(with(serde_json::json!({})), Ok(()));
        assert_eq!(
            with(
                serde_json::json!({"dataTo": [{"storeRef": {"name": "a"}, "remoteKey": "x", "rewrite": [{"regexp": {"source": "a", "target": "b"}}]}]})
            ),
            Err("spec.dataTo[0]: remoteKey and rewrite are mutually exclusive".into())
        );
        assert_eq!(
            with(serde_json::json!({"dataTo": [{"storeRef": {"name": "elsewhere"}}]})),
            Err("spec.dataTo[0].storeRef: SecretStore \"elsewhere\" is not among spec.secretStoreRefs".into())
        );
        assert!(
            with(serde_json::json!({"selector": {"secret": {"selector": {}}}}))
                .unwrap_err()
                .starts_with("spec.selector.secret.selector: the selector is empty")
        );
        assert!(with(serde_json::json!({"dataTo": [{"storeRef": {"name": "a"}, "match": {"regexp": "("}}]})).unwrap_err().starts_with("spec.dataTo[0].match.regexp:"));
    }

    #[test]
    fn reverse_unicode_restores_converted_characters() {
        assert_eq!(reverse_unicode("db_U002f_password"), "db/password");
        assert_eq!(reverse_unicode("a_U1f600_b"), "a\u{1f600}b");
        assert_eq!(reverse_unicode("plain_key"), "plain_key");
        let p = ps(serde_json::json!({
            "secretStoreRefs": [{"name": "a"}],
            "selector": {"secret": {"name": "db"}},
            "data": [{"match": {"secretKey": "db/password", "remoteRef": {"remoteKey": "r"}}, "conversionStrategy": "ReverseUnicode"}]
        }));
        let items = plan(
            &p,
            &source(&[("db_U002f_password", "s")]),
            &[store(StoreKind::SecretStore, "a", &[])],
        )
        .unwrap();
        assert_eq!(items[0].request.value, b"s");
    }

    #[test]
    fn stale_entries_are_what_the_old_status_has_and_the_new_lacks() {
        let entry = |k: &str| PushSecretData {
            match_: PushSecretMatch {
                secret_key: Some(k.into()),
                remote_ref: PushSecretRemoteRef {
                    remote_key: k.into(),
                    property: None,
                },
            },
            ..PushSecretData::default()
        };
        let old: SyncedMap = [
            (
                "SecretStore/a".to_owned(),
                [("x".to_owned(), entry("x")), ("y".to_owned(), entry("y"))].into(),
            ),
            (
                "SecretStore/gone".to_owned(),
                [("z".to_owned(), entry("z"))].into(),
            ),
        ]
        .into();
        let new: SyncedMap = [(
            "SecretStore/a".to_owned(),
            [("x".to_owned(), entry("x"))].into(),
        )]
        .into();
        let stale: Vec<(String, String)> = stale_entries(&old, &new)
            .into_iter()
            .map(|(s, k, _)| (s, k))
            .collect();
        assert_eq!(
            stale,
            [
                ("SecretStore/a".to_owned(), "y".to_owned()),
                ("SecretStore/gone".to_owned(), "z".to_owned())
            ]
        );
        assert_eq!(merge_synced(&new, &old), old);
        assert_eq!(
            parse_store_status_key("ClusterSecretStore/c"),
            Some((StoreKind::ClusterSecretStore, "c"))
        );
    }

    #[test]
    fn the_ledger_skips_only_the_same_values_within_the_interval() {
        let ledger = RefreshLedger::new();
        let t0 = Timestamp::UNIX_EPOCH;
        let hour = Duration::from_secs(3600);
        assert_eq!(ledger.remaining("u", "f", "1-h", hour, t0), None);
        ledger.record("u", "f".into(), "1-h".into(), t0);
        let later = t0 + Duration::from_secs(600);
        assert_eq!(
            ledger.remaining("u", "f", "1-h", hour, later),
            Some(Some(Duration::from_secs(3000)))
        );
        assert_eq!(ledger.remaining("u", "changed", "1-h", hour, later), None);
        assert_eq!(ledger.remaining("u", "f", "2-h", hour, later), None);
        assert_eq!(ledger.remaining("u", "f", "1-h", hour, t0 + hour), None);
        assert_eq!(
            ledger.remaining("u", "f", "1-h", Duration::ZERO, later),
            Some(None)
        );
    }

    #[test]
    fn status_keeps_transition_time_and_skips_refresh_time_only_writes() {
        let mut p = ps(
            serde_json::json!({"secretStoreRefs": [{"name": "a"}], "selector": {"secret": {"name": "db"}}}),
        );
        let t0 = Timestamp::UNIX_EPOCH;
        let first = next_push_status(&p, &PushOutcome::Synced, Some(SyncedMap::new()), t0);
        assert_eq!(first.conditions[0].reason.as_deref(), Some("Synced"));
        assert_eq!(first.refresh_time, Some(Time(t0)));
        assert_eq!(
            first.synced_resource_version,
            Some(push_resource_version(&p))
        );
        p.status = Some(first.clone());
        let t1 = t0 + Duration::from_secs(60);
        let again = next_push_status(&p, &PushOutcome::Synced, Some(SyncedMap::new()), t1);
        assert_eq!(again.conditions[0].last_transition_time, Some(Time(t0)));
        assert!(!push_status_needs_write(Some(&first), &again, false));
        assert!(push_status_needs_write(Some(&first), &again, true));
        let failed = next_push_status(&p, &PushOutcome::Errored("boom".into()), None, t1);
        assert_eq!(failed.conditions[0].status, ConditionStatus::False);
        assert_eq!(
            failed.refresh_time,
            Some(Time(t0)),
            "a failure keeps the last success"
        );
        assert!(push_status_needs_write(Some(&first), &failed, false));
    }
}
