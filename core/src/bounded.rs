//! Bounded concurrency that keeps the input order without head-of-line blocking.

use std::future::Future;

use futures::stream::{self, StreamExt};

/// Maps `items` through `f` with at most `limit` futures in flight, and returns the outputs in
/// the order of `items`.
///
/// `futures`' `buffered` keeps the order too, but starts nothing new while its oldest future
/// is pending: one request waiting out a throttling backoff stalls all the others. Here a slow
/// future holds up only itself.
pub async fn map_in_order<I, F, T>(
    items: impl IntoIterator<Item = I>,
    limit: usize,
    mut f: impl FnMut(I) -> F,
) -> Vec<T>
where
    F: Future<Output = T>,
{
    let futures = items.into_iter().enumerate().map(|(i, item)| {
        let future = f(item);
        async move { (i, future.await) }
    });
    let mut out: Vec<(usize, T)> = stream::iter(futures)
        .buffer_unordered(limit.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_item_holds_up_only_itself_and_the_order_is_kept() {
        let started = tokio::time::Instant::now();
        let out = map_in_order(0..8_u64, 2, |i| async move {
            // Item 0 waits out a long "backoff"; the others take 1 s each.
            let wait = if i == 0 { 10 } else { 1 };
            tokio::time::sleep(Duration::from_secs(wait)).await;
            i
        })
        .await;
        assert_eq!(out, (0..8).collect::<Vec<_>>());
        // Seven 1 s items through the one free slot while item 0 waits: done at 10 s, not
        // 10 + 7 / 2 s as with `buffered`.
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }
}
