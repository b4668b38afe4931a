//! Micro-batching of reads: current-value reads that arrive within a short window share one
//! batch call (`BatchGetSecretValue`, 20 ids; `GetParameters`, 10 names).
//!
//! Each caller queues its id, waits the window, and the first to wake sends the whole queue
//! in batch calls of at most `max` ids (concurrently). Ids a batch call did not answer, and
//! every id when the credentials may not batch, are read one by one. If the caller sending a
//! batch is cancelled mid-flight, the callers it held fall back to reading on their own.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use eso_provider::ProviderError;
use tokio::sync::oneshot;

use eso_provider::cache::SharedError;

/// Per-id answers of one batch call, keyed by the id as asked.
pub(crate) type Answers<V> = HashMap<String, Result<V, ProviderError>>;

type Waiter<V> = (String, oneshot::Sender<Result<V, ProviderError>>);

#[derive(Debug)]
pub(crate) struct BatchQueue<V> {
    window: Duration,
    max: usize,
    pending: Mutex<Vec<Waiter<V>>>,
}

impl<V: Send> BatchQueue<V> {
    pub(crate) fn new(window: Duration, max: usize) -> Self {
        Self {
            window,
            max: max.max(1),
            pending: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        !self.window.is_zero()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiter<V>>> {
        // A poisoned queue only means a caller panicked while pushing; the queue is valid.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value of `id`, read in a batch with whatever else arrives within the window.
    /// `batch` answers up to `max` ids (`Ok(None)`: batching refused, read one by one);
    /// `single` reads one id.
    pub(crate) async fn get<B, BF, S, SF>(
        &self,
        id: &str,
        batch: B,
        single: S,
    ) -> Result<V, ProviderError>
    where
        B: Fn(Vec<String>) -> BF,
        BF: Future<Output = Result<Option<Answers<V>>, ProviderError>>,
        S: Fn(String) -> SF,
        SF: Future<Output = Result<V, ProviderError>>,
    {
        let (tx, rx) = oneshot::channel();
        self.lock().push((id.to_owned(), tx));
        tokio::time::sleep(self.window).await;
        let queued = std::mem::take(&mut *self.lock());
        if !queued.is_empty() {
            let mut chunks: Vec<Vec<Waiter<V>>> = Vec::new();
            for waiter in queued {
                match chunks.last_mut() {
                    Some(c) if c.len() < self.max => c.push(waiter),
                    _ => chunks.push(vec![waiter]),
                }
            }
            futures::future::join_all(chunks.into_iter().map(|c| flush(c, &batch, &single))).await;
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => single(id.to_owned()).await,
        }
    }
}

async fn flush<V, B, BF, S, SF>(waiters: Vec<Waiter<V>>, batch: &B, single: &S)
where
    B: Fn(Vec<String>) -> BF,
    BF: Future<Output = Result<Option<Answers<V>>, ProviderError>>,
    S: Fn(String) -> SF,
    SF: Future<Output = Result<V, ProviderError>>,
{
    let mut ids: Vec<String> = waiters.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    match batch(ids).await {
        Ok(answers) => {
            let mut answers = answers.unwrap_or_default();
            futures::future::join_all(waiters.into_iter().map(|(id, tx)| {
                let answer = answers.remove(&id);
                async move {
                    let r = match answer {
                        Some(r) => r,
                        None => single(id).await,
                    };
                    let _ = tx.send(r);
                }
            }))
            .await;
        }
        Err(e) => {
            let shared = SharedError::from(&e);
            for (_, tx) in waiters {
                let _ = tx.send(Err(shared.clone().into_error()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn concurrent_reads_share_batches_of_at_most_max() {
        let queue = Arc::new(BatchQueue::<String>::new(Duration::from_millis(5), 3));
        let batches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..7 {
            let queue = queue.clone();
            let batches = batches.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("k{i}");
                queue
                    .get(
                        &id,
                        |ids| {
                            let batches = batches.clone();
                            async move {
                                batches.fetch_add(1, Ordering::SeqCst);
                                assert!(ids.len() <= 3);
                                // k6 is left unanswered: read on its own.
                                Ok(Some(
                                    ids.into_iter()
                                        .filter(|id| id != "k6")
                                        .map(|id| (id.clone(), Ok(format!("v-{id}"))))
                                        .collect(),
                                ))
                            }
                        },
                        |id| async move { Ok(format!("single-{id}")) },
                    )
                    .await
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap().unwrap());
        }
        assert_eq!(got[0], "v-k0");
        assert_eq!(got[6], "single-k6");
        assert_eq!(batches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn refused_batches_read_one_by_one_and_errors_are_shared() {
        let queue = BatchQueue::<u32>::new(Duration::from_millis(5), 10);
        let r = queue
            .get("a", |_| async { Ok(None) }, |_| async { Ok(7) })
            .await;
        assert_eq!(r.unwrap(), 7);
        let err = queue
            .get(
                "a",
                |_| async { Err(ProviderError::unavailable("down")) },
                |_| async { Ok(7) },
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), eso_provider::ErrorKind::Unavailable);
    }
}
