//! Bulk operations: run one async call per item, at most `max_concurrent` in flight, and keep every item's result.
//!
//! The calls run concurrently on the caller's task (no spawning, so nothing outlives the call and no runtime is
//! needed): as soon as one finishes the next item starts. A failure does not stop the others. The
//! [`BulkReport`] holds one result per item **in input order**, whatever order they finished in.

use std::future::Future;

use futures_util::stream::{self, StreamExt};
use switchboard_protocol::http_client::ApiError;

/// One result per item, in input order.
#[derive(Debug)]
#[non_exhaustive]
pub struct BulkReport<T> {
    /// `results[i]` is the outcome of item `i`.
    pub results: Vec<Result<T, ApiError>>,
}

impl<T> BulkReport<T> {
    /// How many succeeded.
    pub fn succeeded(&self) -> usize {
        self.results.iter().filter(|r| r.is_ok()).count()
    }

    /// The failures, with their item indexes.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &ApiError)> {
        self.results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
    }

    /// Whether every item succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.results.iter().all(Result::is_ok)
    }

    /// The successful values, or the first error (by item order).
    pub fn into_result(self) -> Result<Vec<T>, ApiError> {
        self.results.into_iter().collect()
    }
}

/// Runs `op` on every item, at most `max_concurrent` at once (0 is taken as 1); see the [module docs](self).
pub async fn bulk<I, T, F, Fut>(items: I, max_concurrent: usize, op: F) -> BulkReport<T>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut op = op;
    let mut indexed: Vec<(usize, Result<T, ApiError>)> =
        stream::iter(items.into_iter().enumerate())
            .map(|(i, item)| {
                let call = op(item);
                async move { (i, call.await) }
            })
            .buffer_unordered(max_concurrent.max(1))
            .collect()
            .await;
    indexed.sort_by_key(|(i, _)| *i);
    BulkReport {
        results: indexed.into_iter().map(|(_, r)| r).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn keeps_input_order_and_caps_concurrency() {
        let in_flight = Cell::new(0usize);
        let peak = Cell::new(0usize);
        let report = futures_lite::future::block_on(bulk(0..10u32, 3, |i| {
            let (in_flight, peak) = (&in_flight, &peak);
            async move {
                in_flight.set(in_flight.get() + 1);
                peak.set(peak.get().max(in_flight.get()));
                // Later items finish first: yield fewer times.
                for _ in 0..(10 - i) {
                    futures_lite::future::yield_now().await;
                }
                in_flight.set(in_flight.get() - 1);
                if i % 4 == 3 {
                    Err(ApiError::Timeout)
                } else {
                    Ok(i * 10)
                }
            }
        }));
        assert_eq!(peak.get(), 3);
        assert_eq!(report.succeeded(), 8);
        assert_eq!(
            report.failures().map(|(i, _)| i).collect::<Vec<_>>(),
            [3, 7]
        );
        assert!(!report.all_succeeded());
        let values: Vec<_> = report
            .results
            .iter()
            .map(|r| r.as_ref().ok().copied())
            .collect();
        assert_eq!(values[..3], [Some(0), Some(10), Some(20)]);
        assert_eq!(report.into_result(), Err(ApiError::Timeout));
    }

    #[test]
    fn zero_concurrency_means_one_at_a_time() {
        let report = futures_lite::future::block_on(bulk(vec!["a", "b"], 0, |s| async move {
            Ok::<_, ApiError>(s.len())
        }));
        assert_eq!(report.into_result(), Ok(vec![1, 1]));
    }
}
