//! The concurrent runner's task for one (application, pipeline): pull, retry, wait.

use super::application::ProcessApplication;
use super::health::{State, StateCell};
use super::lease::{holder_name, LeaseGuard, Leases};
use super::retry::{is_transient, Backoff};
use super::runner::Inner;
use crate::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How a task works.
#[derive(Clone)]
pub(super) struct Settings {
    /// Polling interval when not prompted.
    pub(super) poll: Duration,
    /// Notifications per pull.
    pub(super) batch: usize,
    /// Retries of transient failures.
    pub(super) backoff: Backoff,
    /// Where leases are taken, if anywhere.
    pub(super) leases: Option<Arc<dyn Leases>>,
    /// How often standbys try, and holders check, their lease.
    pub(super) lease_interval: Duration,
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

/// How a spell of work ended.
enum End {
    /// The runner stops.
    Stopped,
    /// The lease was lost (its connection died): take it again before going on.
    LostLease,
    /// A failure retrying did not fix.
    Failed(Error),
}

/// Processes notifications of application `key` until the runner stops or a failure that
/// retrying does not fix, holding its lease (if the runner has leases) meanwhile; keeps its
/// state up to date.
pub(super) async fn run(
    inner: Arc<Inner>,
    key: (String, i64),
    mut stopped: watch::Receiver<bool>,
    s: Settings,
) {
    let (Some(pa), Some(state)) = (
        inner.apps.get(&key).cloned(),
        inner.states.get(&key).cloned(),
    ) else {
        return;
    };
    let lease_key = format!("{}#{}", pa.name(), key.1);
    loop {
        let mut guard = None;
        if let Some(leases) = &s.leases {
            match acquire(
                leases.as_ref(),
                &lease_key,
                &state,
                &mut stopped,
                s.lease_interval,
            )
            .await
            {
                Some(g) => guard = Some(g),
                None => {
                    state.set(State::Finished);
                    return;
                }
            }
        }
        let end = work(&inner, &key, &pa, &state, &mut stopped, &s, &mut guard).await;
        if let Some(g) = guard {
            match g.release().await {
                Ok(()) => {
                    tracing::info!(lease = %lease_key, holder = %holder_name(), "lease released")
                }
                Err(e) => {
                    tracing::warn!(lease = %lease_key, error = %e, "releasing the lease failed (it ends with its connection)")
                }
            }
        }
        match end {
            End::Stopped => {
                state.set(State::Finished);
                return;
            }
            End::LostLease => {
                tracing::error!(lease = %lease_key, holder = %holder_name(), "lease lost: stopped processing, taking it again");
            }
            End::Failed(e) => {
                tracing::error!(application = key.0.as_str(), pipeline = key.1, error = %e, "stopped after a failure");
                state.set(State::Stopped {
                    error: e.to_string(),
                });
                inner.record(&key, e);
                return;
            }
        }
    }
}

/// Takes the lease `key`, standing by while another holder has it; `None` if the runner
/// stops first.
async fn acquire(
    leases: &dyn Leases,
    key: &str,
    state: &StateCell,
    stopped: &mut watch::Receiver<bool>,
    every: Duration,
) -> Option<Box<dyn LeaseGuard>> {
    let mut said = false;
    loop {
        if *stopped.borrow() {
            return None;
        }
        match leases.try_acquire(key).await {
            Ok(Some(g)) => {
                tracing::info!(lease = key, holder = %holder_name(), kind = leases.describe(), "lease taken: processing");
                state.set(State::Running);
                return Some(g);
            }
            Ok(None) => {
                if !said {
                    tracing::info!(lease = key, holder = %holder_name(), kind = leases.describe(), "lease held by another process: standing by");
                    said = true;
                }
                state.set(State::WaitingForLease);
            }
            Err(e) => {
                tracing::warn!(lease = key, error = %e, "cannot take the lease, trying again");
                state.set(State::WaitingForLease);
            }
        }
        if pause(stopped, every).await {
            return None;
        }
    }
}

/// Pulls, retries and waits while the lease (if any) holds.
async fn work(
    inner: &Inner,
    key: &(String, i64),
    pa: &ProcessApplication,
    state: &StateCell,
    stopped: &mut watch::Receiver<bool>,
    s: &Settings,
    guard: &mut Option<Box<dyn LeaseGuard>>,
) -> End {
    let Some(waker) = inner.wakers.get(key).cloned() else {
        return End::Stopped;
    };
    let (name, pipeline) = (key.0.as_str(), key.1);
    let mut attempt = 0u32;
    let mut checked = Instant::now();
    loop {
        if *stopped.borrow() {
            return End::Stopped;
        }
        if let Some(g) = guard.as_mut() {
            if checked.elapsed() >= s.lease_interval {
                checked = Instant::now();
                if !g.check().await.unwrap_or(false) {
                    return End::LostLease;
                }
            }
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
                    if let Err(e) = inner.prompt_others(name, pipeline).await {
                        // Followers elsewhere poll: a lost prompt only delays them.
                        tracing::warn!(application = name, pipeline, error = %e, "prompt not sent");
                    }
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
                    if pause(stopped, s.poll.min(DEPENDENCY_PAUSE)).await {
                        return End::Stopped;
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
                if pause(stopped, wait).await {
                    return End::Stopped;
                }
                continue;
            }
            Err(e) => return End::Failed(e),
        }
        let nap = if guard.is_some() {
            s.poll.min(s.lease_interval)
        } else {
            s.poll
        };
        tokio::select! {
            _ = waker.notified() => {}
            _ = tokio::time::sleep(nap) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Wakes this process's followers when their upstreams commit in other processes, until the
/// runner stops; listens again after a lost connection (polling covers the gap).
pub(super) async fn listen(inner: Arc<Inner>, mut stopped: watch::Receiver<bool>) {
    let Some(prompts) = inner.prompts.clone() else {
        return;
    };
    let mut channels: Vec<(String, i64)> = Vec::new();
    for (name, p) in &inner.running {
        for u in inner.upstreams_of(name) {
            let c = (format!("{}{u}", inner.namespace), *p);
            if !channels.contains(&c) {
                channels.push(c);
            }
        }
    }
    loop {
        let mut listener = tokio::select! {
            l = prompts.listen(&channels) => match l {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for prompts, polling meanwhile");
                    if pause(&mut stopped, LISTEN_PAUSE).await {
                        return;
                    }
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        loop {
            tokio::select! {
                got = listener.recv() => match got {
                    Ok((app, p)) => {
                        if let Some(name) = app.strip_prefix(inner.namespace.as_str()) {
                            inner.wake_followers(name, p);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "prompts lost, listening again");
                        break;
                    }
                },
                _ = stopped.changed() => return,
            }
            if *stopped.borrow() {
                return;
            }
        }
    }
}

/// How long to wait before listening again after a failure.
const LISTEN_PAUSE: Duration = Duration::from_secs(1);
