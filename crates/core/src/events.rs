//! Kubernetes Events, sent off the reconcile's path.
//!
//! A reconcile hands its Event to an [`EventSink`] and goes on; a background task publishes
//! them (one at a time) through kube's [`Recorder`], which folds repeats into series. As
//! client-go's broadcaster does, the queue is bounded and an Event that does not fit is
//! dropped (and counted in `eso_events_dropped_total`): Events are a courtesy to the user
//! and must not slow a cold start of thousands of objects by one API round trip each, nor
//! hold memory while the API server is away. While the controller's work queue has a
//! backlog (a cold start, a relist after an outage), the API server's writes are worth more
//! to the objects waiting than to their Events: Events then go out at most one a second
//! (most of a burst's are dropped), and at full pace again once the queue is short.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder};
use tokio::sync::mpsc;

/// Events waiting to be published at most; more are dropped.
pub const EVENT_QUEUE: usize = 1024;
// Events are published one at a time, as client-go's broadcaster writes them (one goroutine
// per sink, 1,000 queued at most), so that a burst of Events takes a small share of the API
// server while objects converge.

/// A work queue with more objects than this waiting has a backlog.
pub const BACKLOG: usize = 64;
/// The spacing of Events while the work queue has a backlog.
pub const BACKLOG_SPACING: Duration = Duration::from_secs(1);

/// Counter of Events dropped because the queue was full.
pub const EVENTS_DROPPED: &str = "eso_events_dropped_total";

/// Publishes Events in the background; cheap to share by reference.
pub struct EventSink {
    recorder: Recorder,
    queue: OnceLock<mpsc::Sender<(Event, ObjectReference)>>,
    backlog: Arc<Mutex<Option<crate::runtime_metrics::Backlog>>>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink").finish_non_exhaustive()
    }
}

impl EventSink {
    /// A sink publishing through `recorder`. The background task starts with the first
    /// Event (inside the runtime) and ends when the sink is dropped and the queue drained.
    #[must_use]
    pub fn new(recorder: Recorder) -> Self {
        Self {
            recorder,
            queue: OnceLock::new(),
            backlog: Arc::default(),
        }
    }

    /// Paces Events by this work queue from now on (see the module's text).
    pub fn pace_by(&self, backlog: crate::runtime_metrics::Backlog) {
        *crate::lock(&self.backlog) = Some(backlog);
    }

    fn queue(&self) -> &mpsc::Sender<(Event, ObjectReference)> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<(Event, ObjectReference)>(EVENT_QUEUE);
            let recorder = self.recorder.clone();
            let backlog = self.backlog.clone();
            tokio::spawn(async move {
                let mut rx = rx;
                let mut last: Option<tokio::time::Instant> = None;
                while let Some((event, reference)) = rx.recv().await {
                    let busy = crate::lock(&backlog)
                        .as_ref()
                        .is_some_and(|b| b.waiting() > BACKLOG);
                    if busy && let Some(last) = last {
                        tokio::time::sleep_until(last + BACKLOG_SPACING).await;
                    }
                    if let Err(e) = recorder.publish(&event, &reference).await {
                        tracing::warn!(error = %e, reason = %event.reason, "cannot record event");
                    }
                    last = Some(tokio::time::Instant::now());
                }
            });
            tx
        })
    }

    /// Queues `event` about `reference`; never waits.
    pub fn send(&self, event: Event, reference: ObjectReference) {
        if let Err(e) = self.queue().try_send((event, reference)) {
            metrics::counter!(EVENTS_DROPPED).increment(1);
            tracing::debug!(error = %e, "event dropped");
        }
    }

    /// Publishes `event` now and waits for the answer (for one-shot runs that exit next).
    pub async fn publish_now(&self, event: &Event, reference: &ObjectReference) {
        if let Err(e) = self.recorder.publish(event, reference).await {
            tracing::warn!(error = %e, reason = %event.reason, "cannot record event");
        }
    }
}
