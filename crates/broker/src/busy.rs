//! How long a request keeps the broker's threads busy: the time spent inside its handler's
//! `poll` calls, not the time it waits for storage, a long poll or a lock. This is what
//! Kafka's `request_percentage` quota limits (KIP-124: time on request handler threads), in a
//! broker whose handlers are futures rather than threads.

use std::future::Future;
use std::time::{Duration, Instant};

/// Runs `future` to completion and returns its output with the time spent polling it.
pub(crate) async fn measure<F: Future>(future: F) -> (F::Output, Duration) {
    let mut future = std::pin::pin!(future);
    let mut busy = Duration::ZERO;
    let output = std::future::poll_fn(|cx| {
        let started = Instant::now();
        let poll = future.as_mut().poll(cx);
        busy += started.elapsed();
        poll
    })
    .await;
    (output, busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_is_not_busy_and_working_is() {
        // Waiting for another thread's answer: the wait is long, the polls are not.
        let (sender, answer) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let _ = sender.send(());
        });
        let started = Instant::now();
        let (_, busy) = measure(answer).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && busy * 10 < waited,
            "{busy:?} of {waited:?}"
        );
        // Work done inside a poll counts.
        let (_, busy) = measure(async { std::thread::sleep(Duration::from_millis(20)) }).await;
        assert!(busy >= Duration::from_millis(20), "{busy:?}");
    }
}
