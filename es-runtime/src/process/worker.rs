//! The concurrent runner's task for one (application, pipeline): pull, retry, wait.

use super::health::State;
use super::retry::{is_transient, Backoff};
use super::runner::Inner;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How a task works.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    /// Polling interval when not prompted.
    pub(super) poll: Duration,
    /// Notifications per pull.
    pub(super) batch: usize,
    /// Retries of transient failures.
    pub(super) backoff: Backoff,
}

/// How long a notification waiting for its causal dependencies waits before looking again.
const DEPENDENCY_PAUSE: Duration = Duration::from_millis(5);

/// Waits `d`, or less if the runner stops; true if it stopped.
async fn pause(stopped: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stopped.changed() => {}
    }
    *stopped.borrow()
}

/// Processes notifications of application `key` until the runner stops or a failure that
/// retrying does not fix; keeps its state up to date.
pub(super) async fn run(
    inner: Arc<Inner>,
    key: (String, i64),
    mut stopped: watch::Receiver<bool>,
    s: Settings,
) {
    let (Some(pa), Some(waker), Some(state)) = (
        inner.apps.get(&key).cloned(),
        inner.wakers.get(&key).cloned(),
        inner.states.get(&key).cloned(),
    ) else {
        return;
    };
    let (name, pipeline) = (key.0.as_str(), key.1);
    let mut attempt = 0u32;
    loop {
        if *stopped.borrow() {
            state.set(State::Finished);
            return;
        }
        match pa.pull_some(None, s.batch).await {
            Ok((progress, exhausted)) => {
                if attempt > 0 {
                    tracing::info!(
                        application = name,
                        pipeline,
                        "recovered after {attempt} retries"
                    );
                }
                attempt = 0;
                if progress.events > 0 {
                    inner.wake_followers(name, pipeline);
                }
                if progress.waiting {
                    if let Some((upstream, notification_id)) = pa.waiting_on() {
                        state.set(State::WaitingForDependencies {
                            upstream,
                            notification_id,
                        });
                    }
                    // The dependencies are processed in other pipelines, maybe by other
                    // processes: look again soon.
                    if pause(&mut stopped, s.poll.min(DEPENDENCY_PAUSE)).await {
                        state.set(State::Finished);
                        return;
                    }
                    continue;
                }
                state.set(State::Running);
                if !exhausted {
                    tokio::task::yield_now().await;
                    continue;
                }
            }
            Err(e) if is_transient(&e) && s.backoff.allows(attempt + 1) => {
                attempt += 1;
                let wait = s.backoff.delay(attempt);
                tracing::warn!(application = name, pipeline, attempt, ?wait, error = %e, "transient failure, retrying");
                state.set(State::Retrying {
                    attempt,
                    error: e.to_string(),
                });
                if pause(&mut stopped, wait).await {
                    state.set(State::Finished);
                    return;
                }
                continue;
            }
            Err(e) => {
                tracing::error!(application = name, pipeline, error = %e, "stopped after a failure");
                state.set(State::Stopped {
                    error: e.to_string(),
                });
                inner.record(&key, e);
                return;
            }
        }
        tokio::select! {
            _ = waker.notified() => {}
            _ = tokio::time::sleep(s.poll) => {}
            _ = stopped.changed() => {}
        }
    }
}
