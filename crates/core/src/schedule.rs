//! When an ExternalSecret is refreshed and when it is looked at again: upstream's
//! `shouldRefresh`, `isSecretValid` and requeue rules as pure functions of the object, the
//! target Secret and the time (passed in, never read here).

use std::time::Duration;

use eso_api::labels::{ANNOTATION_DATA_HASH, LABEL_MANAGED, LABEL_MANAGED_VALUE};
use eso_api::{CreationPolicy, ExternalSecret, RefreshPolicy};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;

use crate::hash;

/// `"<generation>-<hash of labels and annotations>"` of the ExternalSecret as it is now.
#[must_use]
pub fn current_resource_version(es: &ExternalSecret) -> String {
    hash::synced_resource_version(
        es.metadata.generation.unwrap_or_default(),
        es.metadata
            .annotations
            .as_ref()
            .unwrap_or(&Default::default()),
        es.metadata.labels.as_ref().unwrap_or(&Default::default()),
    )
}

fn synced_version(es: &ExternalSecret) -> Option<&str> {
    es.status
        .as_ref()?
        .synced_resource_version
        .as_deref()
        .filter(|v| !v.is_empty())
}

/// Whether the stored status was synced from the ExternalSecret as it is now (same
/// generation, labels and annotations); false for a new, changed or force-synced object.
#[must_use]
pub fn synced_to_current(es: &ExternalSecret) -> bool {
    synced_version(es) == Some(current_resource_version(es).as_str())
}

fn refresh_time(es: &ExternalSecret) -> Option<Timestamp> {
    es.status.as_ref()?.refresh_time.as_ref().map(|t| t.0)
}

/// Whether the provider should be read now (upstream's `shouldRefresh`). A refresh also
/// happens when the target is not valid; see [`is_secret_valid`].
#[must_use]
pub fn should_refresh(es: &ExternalSecret, now: Timestamp) -> bool {
    let synced = synced_version(es);
    let last = refresh_time(es);
    match es.spec.refresh_policy() {
        RefreshPolicy::CreatedOnce => synced.is_none() || last.is_none(),
        RefreshPolicy::OnChange => !synced_to_current(es),
        RefreshPolicy::Periodic => {
            // An unparseable interval was rejected by validation; treat it as the default.
            let interval = es
                .spec
                .refresh_interval()
                .unwrap_or(Duration::from_secs(3600));
            if interval.is_zero() && synced.is_some() {
                return false;
            }
            if !synced_to_current(es) {
                return true;
            }
            let Some(last) = last.filter(|l| *l <= now) else {
                return true;
            };
            last_plus(last, interval) <= now
                && crate::sync_window::allows(es.spec.sync_windows.as_ref(), now)
        }
    }
}

fn last_plus(t: Timestamp, d: Duration) -> Timestamp {
    let span = k8s_openapi::jiff::SignedDuration::try_from(d)
        .unwrap_or(k8s_openapi::jiff::SignedDuration::MAX);
    t.saturating_add(span).unwrap_or(Timestamp::MAX)
}

/// Whether the target Secret is as this ExternalSecret last left it (upstream's
/// `isSecretValid`): it exists, carries the managed label, and its data hash annotation
/// matches its data. With creationPolicy Orphan drift is never repaired, so it is always valid.
#[must_use]
pub fn is_secret_valid(es: &ExternalSecret, secret: Option<&Secret>) -> bool {
    if es.spec.creation_policy() == CreationPolicy::Orphan {
        return true;
    }
    let Some(secret) = secret else { return false };
    let managed = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_MANAGED))
        .is_some_and(|v| v == LABEL_MANAGED_VALUE);
    managed && is_secret_valid_data(secret)
}

/// Whether the Secret's data-hash annotation matches its data (nobody changed the data since
/// the ExternalSecret wrote it).
pub(crate) fn is_secret_valid_data(secret: &Secret) -> bool {
    let data: std::collections::BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_DATA_HASH))
        .is_some_and(|h| *h == hash::secret_data_hash(&data))
}

/// When to look at the ExternalSecret again after a successful (or skipped) reconcile;
/// `None` for "only when something changes" (interval 0). `jitter` in `[0, 1)` spreads
/// refreshes of many objects: up to 10% of the interval is added, so a restart does not fire
/// every refresh at once.
#[must_use]
pub fn requeue_after(es: &ExternalSecret, now: Timestamp, jitter: f64) -> Option<Duration> {
    if es.spec.refresh_policy() != RefreshPolicy::Periodic {
        return None;
    }
    let interval = es
        .spec
        .refresh_interval()
        .unwrap_or(Duration::from_secs(3600));
    if interval.is_zero() {
        return None;
    }
    let spread = interval.mul_f64(jitter.clamp(0.0, 0.999) * 0.1);
    let Some(last) = refresh_time(es) else {
        return Some(interval + spread);
    };
    let elapsed = now.duration_since(last);
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
    let remaining = interval.saturating_sub(elapsed);
    // Overdue but held back by a sync window: look again when the next minute may open one,
    // rather than spinning.
    if remaining.is_zero() && !crate::sync_window::allows(es.spec.sync_windows.as_ref(), now) {
        return Some(Duration::from_secs(60) + spread);
    }
    Some(remaining + spread)
}

/// Refresh times this process has seen, newer than the stored `status.refreshTime`.
///
/// With status writes only on change (the default), a refresh that found nothing new leaves
/// `refreshTime` as it was, so the stored value alone would make every later look at the
/// object (a watch event, a new leadership term) read the provider again. The ledger keeps the
/// last successful refresh per object (by uid, so a recreated object starts afresh); a new
/// process starts empty and falls back to the stored value, which costs at most one read per
/// object after a restart or failover.
#[derive(Debug, Default)]
pub struct RefreshLedger {
    seen: std::sync::Mutex<std::collections::HashMap<String, Refreshed>>,
    /// The size at which the next prune runs: twice what the last prune kept (at least
    /// `LEDGER_PRUNE_AT`), so that pruning stays amortised O(1) per insert when every entry
    /// is live (thousands of objects) instead of scanning all of them on each insert.
    prune_at: std::sync::atomic::AtomicUsize,
}

/// One remembered refresh: when, the interval then, and the `syncedResourceVersion` written.
#[derive(Debug, Clone)]
struct Refreshed {
    at: Timestamp,
    interval: Duration,
    synced: Option<String>,
}

/// Entries are pruned once the ledger holds more than this many.
const LEDGER_PRUNE_AT: usize = 4096;

impl RefreshLedger {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers that the object with this uid was refreshed at `at`. Once large, the
    /// ledger drops entries overdue by more than their interval plus ten minutes: those
    /// objects were deleted (or are refreshed from their stored time, which is as good).
    pub fn record(&self, uid: &str, at: Timestamp, interval: Duration) {
        self.insert(
            uid,
            Refreshed {
                at,
                interval,
                synced: None,
            },
        );
    }

    /// Remembers a successful sync of `es` as it is now, at `at`: its refresh time and the
    /// `syncedResourceVersion` the status got. Until the watch cache shows that status, a look
    /// at the cached object (an event of the Secret just written, a requeue) then sees the
    /// sync instead of an object that looks never synced, and reads nothing again.
    pub fn record_sync(&self, es: &ExternalSecret, at: Timestamp) {
        let Some(uid) = es.metadata.uid.as_deref() else {
            return;
        };
        let interval = es.spec.refresh_interval().unwrap_or_default();
        let synced = Some(current_resource_version(es));
        self.insert(
            uid,
            Refreshed {
                at,
                interval,
                synced,
            },
        );
    }

    fn insert(&self, uid: &str, entry: Refreshed) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let at = entry.at;
        seen.insert(uid.to_owned(), entry);
        let prune_at = self
            .prune_at
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(LEDGER_PRUNE_AT);
        if seen.len() > prune_at {
            seen.retain(|_, r| {
                let keep = r.interval.saturating_mul(2) + Duration::from_secs(600);
                Duration::try_from(at.duration_since(r.at)).unwrap_or(Duration::ZERO) <= keep
            });
            self.prune_at.store(
                seen.len().saturating_mul(2),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    /// Forgets an object (deleted).
    pub fn forget(&self, uid: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(uid);
        }
    }

    /// How many objects are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or_default()
    }

    /// Whether nothing is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The object with its `refreshTime` moved forward to the last refresh this process
    /// remembers, if that is later than the stored one; the object itself otherwise.
    #[must_use]
    pub fn effective<'a>(&self, es: &'a ExternalSecret) -> std::borrow::Cow<'a, ExternalSecret> {
        use std::borrow::Cow;
        let Some(uid) = es.metadata.uid.as_deref() else {
            return Cow::Borrowed(es);
        };
        let remembered = self.seen.lock().ok().and_then(|s| s.get(uid).cloned());
        let Some(Refreshed {
            at: remembered,
            synced,
            ..
        }) = remembered
        else {
            return Cow::Borrowed(es);
        };
        // This process synced the object as it is now, but the cached copy predates the
        // status it wrote: use what was written.
        let current = current_resource_version(es);
        if synced.as_deref() == Some(current.as_str()) && synced_version(es) != synced.as_deref() {
            let mut moved = es.clone();
            let status = moved.status.get_or_insert_with(Default::default);
            status.synced_resource_version = synced;
            status.refresh_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                remembered,
            ));
            return Cow::Owned(moved);
        }
        // Only a synced object has a stored time worth moving; an object that was never synced
        // (or whose spec changed) is refreshed on its own rules.
        let Some(status) = es.status.as_ref() else {
            return Cow::Borrowed(es);
        };
        if refresh_time(es).is_some_and(|stored| stored >= remembered) {
            return Cow::Borrowed(es);
        }
        let mut moved = es.clone();
        let mut status = status.clone();
        status.refresh_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            remembered,
        ));
        moved.status = Some(status);
        Cow::Owned(moved)
    }
}

/// A stable number in `[0, 1)` derived from an object's identity, for [`requeue_after`].
#[must_use]
pub fn jitter_for(uid_or_name: &str) -> f64 {
    // FNV-1a: stable across runs and replicas, which a random source would not be.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid_or_name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 10_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EsBuilder, secret};
    use eso_api::ExternalSecretStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn synced(mut es: ExternalSecret, when: i64) -> ExternalSecret {
        es.status = Some(ExternalSecretStatus {
            refresh_time: Some(Time(at(when))),
            synced_resource_version: Some(current_resource_version(&es)),
            ..Default::default()
        });
        es
    }

    fn with_interval(interval: &str) -> ExternalSecret {
        let mut es = EsBuilder::new("es").data("k", "r").build();
        es.spec.refresh_interval = Some(interval.into());
        es.metadata.generation = Some(1);
        es
    }

    #[test]
    fn periodic_refreshes_when_never_synced_and_after_the_interval() {
        let es = with_interval("1m");
        assert!(should_refresh(&es, at(0)));
        let es = synced(es, 0);
        assert!(!should_refresh(&es, at(30)));
        assert!(should_refresh(&es, at(60)));
    }

    #[test]
    fn periodic_refreshes_when_spec_labels_or_annotations_change() {
        let es = synced(with_interval("1h"), 0);
        let mut bumped = es.clone();
        bumped.metadata.generation = Some(2);
        assert!(should_refresh(&bumped, at(1)));
        let mut annotated = es.clone();
        annotated.metadata.annotations = Some([("force-sync".to_owned(), "1".to_owned())].into());
        assert!(should_refresh(&annotated, at(1)));
        assert!(!should_refresh(&es, at(1)));
    }

    #[test]
    fn zero_interval_syncs_once() {
        let es = with_interval("0");
        assert!(should_refresh(&es, at(0)));
        let es = synced(es, 0);
        assert!(!should_refresh(&es, at(100_000)));
        assert_eq!(requeue_after(&es, at(1), 0.0), None);
    }

    #[test]
    fn refresh_time_in_the_future_forces_a_refresh() {
        let es = synced(with_interval("1h"), 100);
        assert!(should_refresh(&es, at(0)));
    }

    #[test]
    fn created_once_and_on_change() {
        let mut es = with_interval("1m");
        es.spec.refresh_policy = Some(RefreshPolicy::CreatedOnce);
        assert!(should_refresh(&es, at(0)));
        let mut done = synced(es, 0);
        assert!(!should_refresh(&done, at(1_000_000)));
        done.metadata.generation = Some(9);
        assert!(!should_refresh(&done, at(1)), "CreatedOnce ignores changes");

        let mut es = with_interval("1m");
        es.spec.refresh_policy = Some(RefreshPolicy::OnChange);
        let mut done = synced(es, 0);
        assert!(!should_refresh(&done, at(1_000_000)));
        done.metadata.generation = Some(9);
        assert!(should_refresh(&done, at(1)));
        assert_eq!(requeue_after(&done, at(1), 0.0), None);
    }

    #[test]
    fn requeue_waits_for_the_rest_of_the_interval_plus_jitter() {
        let es = synced(with_interval("10m"), 0);
        assert_eq!(
            requeue_after(&es, at(60), 0.0),
            Some(Duration::from_secs(540))
        );
        assert_eq!(requeue_after(&es, at(6000), 0.0), Some(Duration::ZERO));
        assert_eq!(
            requeue_after(&es, at(60), 0.5),
            Some(Duration::from_secs(540 + 30))
        );
        let never = with_interval("10m");
        assert_eq!(
            requeue_after(&never, at(0), 0.0),
            Some(Duration::from_secs(600))
        );
    }

    #[test]
    fn a_sync_is_seen_before_the_cache_shows_its_status() {
        let mut es = with_interval("1m");
        es.metadata.uid = Some("u1".into());
        let ledger = RefreshLedger::new();
        assert!(
            should_refresh(&ledger.effective(&es), at(1)),
            "never synced"
        );
        ledger.record_sync(&es, at(0));
        // The watch cache still holds the object without the status just written.
        let seen = ledger.effective(&es);
        assert!(!should_refresh(&seen, at(1)));
        assert_eq!(
            requeue_after(&seen, at(1), 0.0),
            Some(Duration::from_secs(59))
        );
        assert!(
            should_refresh(&seen, at(61)),
            "due again after the interval"
        );

        // A change to the object after that sync is not covered.
        let mut changed = es.clone();
        changed.metadata.generation = Some(7);
        assert!(should_refresh(&ledger.effective(&changed), at(1)));
        let mut relabelled = es.clone();
        relabelled.metadata.labels = Some([("team".to_owned(), "a".to_owned())].into());
        assert!(should_refresh(&ledger.effective(&relabelled), at(1)));
    }

    #[test]
    fn ledger_moves_the_refresh_time_forward_only() {
        let mut es = synced(with_interval("1m"), 0);
        es.metadata.uid = Some("u1".into());
        let ledger = RefreshLedger::new();
        assert!(matches!(
            ledger.effective(&es),
            std::borrow::Cow::Borrowed(_)
        ));
        assert!(should_refresh(&ledger.effective(&es), at(70)));

        ledger.record("u1", at(65), Duration::from_secs(60));
        let moved = ledger.effective(&es);
        assert!(!should_refresh(&moved, at(70)), "refreshed 5 s ago");
        assert!(should_refresh(&moved, at(125)));
        assert_eq!(
            requeue_after(&moved, at(70), 0.0),
            Some(Duration::from_secs(55))
        );

        // A stored time newer than the remembered one wins.
        let newer = synced(es.clone(), 100);
        assert!(matches!(
            ledger.effective(&newer),
            std::borrow::Cow::Borrowed(_)
        ));

        // A recreated object (new uid) is not confused with the old one.
        let mut other = es.clone();
        other.metadata.uid = Some("u2".into());
        assert!(should_refresh(&ledger.effective(&other), at(70)));

        ledger.forget("u1");
        assert!(ledger.is_empty());
    }

    #[test]
    fn ledger_prunes_long_overdue_entries_once_large() {
        let ledger = RefreshLedger::new();
        for i in 0..LEDGER_PRUNE_AT {
            ledger.record(&format!("old-{i}"), at(0), Duration::from_secs(60));
        }
        assert_eq!(ledger.len(), LEDGER_PRUNE_AT);
        ledger.record("fresh", at(10_000), Duration::from_secs(60));
        assert_eq!(ledger.len(), 1);
    }

    #[test]
    fn a_ledger_of_live_entries_grows_past_the_prune_size_and_keeps_them_all() {
        let ledger = RefreshLedger::new();
        let n = LEDGER_PRUNE_AT * 3;
        // Daily refreshes recorded a second apart: none is overdue, all are kept.
        for i in 0..n {
            ledger.record(
                &format!("live-{i}"),
                at(i as i64),
                Duration::from_secs(86_400),
            );
        }
        assert_eq!(ledger.len(), n);
        // Much later, n other objects refresh: the first batch is now overdue by more than
        // twice its interval plus ten minutes and goes at a prune; the new entries stay.
        for i in 0..n {
            ledger.record(&format!("later-{i}"), at(200_000), Duration::from_secs(60));
        }
        assert_eq!(ledger.len(), n);
    }

    #[test]
    fn jitter_is_stable_and_in_range() {
        let a = jitter_for("uid-a");
        assert_eq!(a, jitter_for("uid-a"));
        assert!((0.0..1.0).contains(&a));
        assert_ne!(jitter_for("uid-a"), jitter_for("uid-b"));
    }

    #[test]
    fn secret_validity_follows_label_and_hash() {
        let es = EsBuilder::new("es").data("k", "r").build();
        assert!(!is_secret_valid(&es, None));
        let mut s = secret("es", &[("k", "v")]);
        assert!(!is_secret_valid(&es, Some(&s)), "no managed label");
        s.metadata.labels = Some([(LABEL_MANAGED.to_owned(), "true".to_owned())].into());
        let hash = hash::secret_data_hash(&crate::testing::bytes(&[("k", "v")]));
        s.metadata.annotations = Some([(ANNOTATION_DATA_HASH.to_owned(), hash)].into());
        assert!(is_secret_valid(&es, Some(&s)));
        s.data
            .as_mut()
            .unwrap()
            .insert("k".into(), k8s_openapi::ByteString(b"edited".to_vec()));
        assert!(!is_secret_valid(&es, Some(&s)), "edited data");
        let orphan = EsBuilder::new("es")
            .creation(CreationPolicy::Orphan)
            .data("k", "r")
            .build();
        assert!(is_secret_valid(&orphan, None));
    }
}
