//! The follower loop shared by process applications (the runners' tasks) and projections:
//! take the lease, pull, retry transient failures with backoff, wait for a prompt or the poll
//! interval, and keep the health state up to date; plus listening for prompts from other
//! processes.

use super::health::{State, StateCell};
use super::lease::{holder_name, LeaseGuard, Leases};
use super::prompt::Prompts;
use super::retry::{is_transient, Backoff};
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// How a follower works.
#[derive(Clone)]
pub(crate) struct Settings {
    /// Polling interval when not prompted.
    pub(crate) poll: Duration,
    /// Retries of transient failures.
    pub(crate) backoff: Backoff,
    /// Where leases are taken, if anywhere.
    pub(crate) leases: Option<Arc<dyn Leases>>,
    /// How often standbys try, and holders check, their lease.
    pub(crate) lease_interval: Duration,
}

/// What one pull did.
pub(crate) struct Pulled {
    /// Something was processed (events written, rows projected).
    pub(crate) progressed: bool,
    /// Nothing is left to pull now: wait for a prompt.
    pub(crate) exhausted: bool,
    /// A notification waits for its causal dependencies (processed elsewhere): look again
    /// soon.
    pub(crate) waiting: bool,
    /// Which one waits, if known: `(upstream, notification id)`.
    pub(crate) waiting_on: Option<(String, i64)>,
}

/// One follower, as the loop drives it.
#[async_trait]
pub(crate) trait Follower: Send + Sync {
    /// Its name in logs (the application or projection).
    fn name(&self) -> &str;
    /// Its pipeline.
    fn pipeline(&self) -> i64;
    /// Processes what is there, up to a batch.
    async fn pull(&self) -> Result<Pulled>;
    /// Called after a pull that progressed (prompt the followers of what it wrote).
    async fn progressed(&self) {}
}

/// How long a notification waiting for its causal dependencies waits before looking again.
const DEPENDENCY_PAUSE: Duration = Duration::from_millis(5);

/// Waits `d`, or less if told to stop; true if told to stop.
pub(crate) async fn pause(stopped: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stopped.changed() => {}
    }
    *stopped.borrow()
}

/// How a spell of work ended.
enum End {
    /// Told to stop.
    Stopped,
    /// The lease was lost (its connection died): take it again before going on.
    LostLease,
    /// A failure retrying did not fix.
    Failed(Error),
}

/// Runs `f` until told to stop (`Ok`) or a failure that retrying does not fix (`Err`),
/// holding the lease `lease_key` (if there are leases) meanwhile and taking it again when it
/// is lost; keeps `state` up to date and leaves it [`State::Finished`] or
/// [`State::Stopped`].
pub(crate) async fn follow(
    f: &dyn Follower,
    lease_key: &str,
    state: &StateCell,
    waker: &Notify,
    mut stopped: watch::Receiver<bool>,
    s: &Settings,
) -> Result<()> {
    loop {
        let mut guard = None;
        if let Some(leases) = &s.leases {
            match acquire(
                leases.as_ref(),
                lease_key,
                state,
                &mut stopped,
                s.lease_interval,
            )
            .await
            {
                Some(g) => guard = Some(g),
                None => {
                    state.set(State::Finished);
                    return Ok(());
                }
            }
        }
        let end = work(f, state, waker, &mut stopped, s, &mut guard).await;
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
                return Ok(());
            }
            End::LostLease => {
                tracing::error!(lease = %lease_key, holder = %holder_name(), "lease lost: stopped processing, taking it again");
            }
            End::Failed(e) => {
                tracing::error!(follower = f.name(), pipeline = f.pipeline(), error = %e, "stopped after a failure");
                state.set(State::Stopped {
                    error: e.to_string(),
                });
                return Err(e);
            }
        }
    }
}

/// Takes the lease `key`, standing by while another holder has it; `None` if told to stop
/// first.
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
    f: &dyn Follower,
    state: &StateCell,
    waker: &Notify,
    stopped: &mut watch::Receiver<bool>,
    s: &Settings,
    guard: &mut Option<Box<dyn LeaseGuard>>,
) -> End {
    let (name, pipeline) = (f.name(), f.pipeline());
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
        match f.pull().await {
            Ok(pulled) => {
                if attempt > 0 {
                    tracing::info!(
                        follower = name,
                        pipeline,
                        "recovered after {attempt} retries"
                    );
                }
                attempt = 0;
                if pulled.progressed {
                    f.progressed().await;
                }
                if pulled.waiting {
                    if let Some((upstream, notification_id)) = pulled.waiting_on {
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
                if !pulled.exhausted {
                    tokio::task::yield_now().await;
                    continue;
                }
            }
            Err(e) if is_transient(&e) && s.backoff.allows(attempt + 1) => {
                attempt += 1;
                let wait = s.backoff.delay(attempt);
                tracing::warn!(follower = name, pipeline, attempt, ?wait, error = %e, "transient failure, retrying");
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

/// Listens for prompts on `channels` (database application names and pipelines) and calls
/// `wake` with each, until told to stop; listens again after a lost connection (polling
/// covers the gap).
pub(crate) async fn listen(
    prompts: Arc<dyn Prompts>,
    channels: Vec<(String, i64)>,
    mut stopped: watch::Receiver<bool>,
    wake: impl Fn(&str, i64) + Send,
) {
    if channels.is_empty() {
        return;
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
                    Ok((app, p)) => wake(&app, p),
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
