//! Kubernetes Events, sent off the reconcile's path.
//!
//! A reconcile hands its Event to an [`EventSink`] and goes on; a background task publishes
//! them (a few at a time) through kube's [`Recorder`], which folds repeats into series. As
//! client-go's broadcaster does, the queue is bounded and an Event that does not fit is
//! dropped (and counted in `eso_events_dropped_total`): Events are a courtesy to the user
//! and must not slow a cold start of thousands of objects by one API round trip each, nor
//! hold memory while the API server is away.

use std::sync::OnceLock;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder};
use tokio::sync::mpsc;

/// Events waiting to be published at most; more are dropped.
pub const EVENT_QUEUE: usize = 1024;
/// Events published at once: one, as client-go's broadcaster writes them (one goroutine per
/// sink, 1,000 queued at most), so that a burst of Events takes a small share of the API
/// server while objects converge.
const IN_FLIGHT: usize = 1;

/// Counter of Events dropped because the queue was full.
pub const EVENTS_DROPPED: &str = "eso_events_dropped_total";

/// Publishes Events in the background; cheap to share by reference.
pub struct EventSink {
    recorder: Recorder,
    queue: OnceLock<mpsc::Sender<(Event, ObjectReference)>>,
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
        }
    }

    fn queue(&self) -> &mpsc::Sender<(Event, ObjectReference)> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<(Event, ObjectReference)>(EVENT_QUEUE);
            let recorder = self.recorder.clone();
            tokio::spawn(async move {
                tokio_stream_from(rx)
                    .for_each_concurrent(IN_FLIGHT, |(event, reference)| {
                        let recorder = recorder.clone();
                        async move {
                            if let Err(e) = recorder.publish(&event, &reference).await {
                                tracing::warn!(error = %e, reason = %event.reason, "cannot record event");
                            }
                        }
                    })
                    .await;
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

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
