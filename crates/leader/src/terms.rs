//! Running work only while leading: one call of the work per leadership term.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

/// Resolves when the current leadership term ends: leadership was lost (or its publisher is
/// gone) or shutdown was asked for. `Send + Sync + 'static`, as kube-runtime's
/// `graceful_shutdown_on` wants.
pub type TermEnd = Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>>;

fn term_end(mut leading: watch::Receiver<bool>, mut stop: watch::Receiver<bool>) -> TermEnd {
    let (mut tx, rx) = tokio::sync::oneshot::channel::<()>();
    // The waiting happens in a task so the returned future only holds a oneshot receiver.
    tokio::spawn(async move {
        tokio::select! {
            _ = leading.wait_for(|l| !*l) => {}
            _ = stop.wait_for(|s| *s) => {}
            () = tx.closed() => {}
        }
        let _ = tx.send(());
    });
    Box::pin(async move {
        let _ = rx.await;
    })
}

/// Calls `term` each time `leading` turns true, with a [`TermEnd`] that resolves when the
/// term is over, and awaits it; returns once `stop` is true and no term runs. The work must
/// stop when its `TermEnd` resolves (the caller decides how much grace in-flight work gets;
/// a stepping-down leader has lease duration minus renew deadline before anyone else leads).
///
/// Shutdown order for the caller: set `stop`, await this, then shut the [`LeaseManager`]
/// down so it releases the Lease only after the work stopped.
///
/// [`LeaseManager`]: crate::LeaseManager
pub async fn run_terms<F, Fut>(
    mut leading: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    mut term: F,
) where
    F: FnMut(TermEnd) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let manager_gone = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            r = leading.wait_for(|l| *l) => r.is_err(),
        } || leading.has_changed().is_err();
        if manager_gone {
            // Nobody will ever lead here again.
            let _ = stop.wait_for(|s| *s).await;
            return;
        }
        if *stop.borrow() {
            return;
        }
        term(term_end(leading.clone(), stop.clone())).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn work_runs_once_per_term_and_stops_with_leadership_or_shutdown() {
        let (lead_tx, lead_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let started = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let (s, r) = (started.clone(), running.clone());
        let task = tokio::spawn(run_terms(lead_rx, stop_rx, move |end| {
            let (s, r) = (s.clone(), r.clone());
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                r.fetch_add(1, Ordering::SeqCst);
                end.await;
                r.fetch_sub(1, Ordering::SeqCst);
            }
        }));
        let settle = || tokio::time::sleep(Duration::from_millis(50));
        settle().await;
        assert_eq!(started.load(Ordering::SeqCst), 0, "no work before leading");
        lead_tx.send_replace(true);
        settle().await;
        assert_eq!(running.load(Ordering::SeqCst), 1);
        lead_tx.send_replace(false);
        settle().await;
        assert_eq!(running.load(Ordering::SeqCst), 0, "work stops on step-down");
        lead_tx.send_replace(true);
        settle().await;
        assert_eq!(
            started.load(Ordering::SeqCst),
            2,
            "a new term after re-acquiring"
        );
        stop_tx.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(running.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_vanished_manager_ends_the_term() {
        let (lead_tx, lead_rx) = watch::channel(true);
        let (stop_tx, stop_rx) = watch::channel(false);
        let ended = Arc::new(AtomicUsize::new(0));
        let e = ended.clone();
        let task = tokio::spawn(run_terms(lead_rx, stop_rx, move |end| {
            let e = e.clone();
            async move {
                end.await;
                e.fetch_add(1, Ordering::SeqCst);
            }
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(lead_tx);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(ended.load(Ordering::SeqCst), 1);
        stop_tx.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
