//! A projector running in a task, and the handle that stops it.

use super::projector::Projector;
use super::Projection;
use crate::error::{Error, Result};
use crate::process::follow::{self, Follower, Pulled};
use crate::process::health::{Health, State, StateCell};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Batches a running projector commits before it looks at its lease and at being stopped.
const COMMITS_PER_PULL: usize = 4;

/// A running [`Projector`]: made by [`Projector::start`].
///
/// The task runs the same follower loop as a runner's process applications: it takes the
/// projection's lease first if the projector has [leases](Projector::leases) (standing by
/// while another instance holds it), catches up, then waits for a prompt (a save through one
/// of the upstream application objects, a prompt from another process if the projector has
/// [prompts](Projector::prompts), or [`ProjectionHandle::prompt`]) or the poll interval, and
/// catches up again. A transient failure (a lost connection, a timeout) is retried with
/// backoff ([`Projector::backoff`]); a handler's own error, or too many transient failures in
/// a row, stops it: [`ProjectionHandle::wait_caught_up`] and [`ProjectionHandle::stop`]
/// return the error, [`ProjectionHandle::health`] shows it, and a new start resumes from the
/// tracking records. Dropping the handle stops the task at its next wait.
pub struct ProjectionHandle<P> {
    projector: Arc<Projector<P>>,
    prompt: Arc<Notify>,
    stop: watch::Sender<bool>,
    state: StateCell,
    failure: Arc<Mutex<Option<Error>>>,
    /// The main task, then the prompt forwarders.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<P> std::fmt::Debug for ProjectionHandle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionHandle")
            .field("projector", &self.projector)
            .field("state", &self.state.get())
            .finish()
    }
}

/// A projector as the follower loop drives it.
struct ProjectionFollower<P>(Arc<Projector<P>>);

#[async_trait]
impl<P: Projection> Follower for ProjectionFollower<P> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn pipeline(&self) -> i64 {
        self.0.pipeline()
    }

    async fn pull(&self) -> Result<Pulled> {
        let (progress, exhausted) = self.0.catch_up_some(COMMITS_PER_PULL).await?;
        Ok(Pulled {
            progressed: progress.notifications > 0,
            exhausted,
            waiting: false,
            waiting_on: None,
        })
    }
}

pub(super) fn start<P: Projection>(mut projector: Projector<P>) -> ProjectionHandle<P> {
    let prompt = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let mut forwarders = Vec::new();
    // Each upstream's saves prompt the projector (a permit is kept if it is busy).
    for u in &mut projector.upstreams {
        if let Some(mut writes) = u.writes.take() {
            let prompt = prompt.clone();
            forwarders.push(tokio::spawn(async move {
                while writes.changed().await.is_ok() {
                    prompt.notify_one();
                }
            }));
        }
    }
    // Prompts from other processes, for the upstreams in this pipeline.
    if let Some(prompts) = projector.prompts.clone() {
        let channels = projector
            .upstream_names()
            .into_iter()
            .map(|u| (u, projector.pipeline()))
            .collect();
        let prompt = prompt.clone();
        forwarders.push(tokio::spawn(follow::listen(
            prompts,
            channels,
            stopped.clone(),
            move |_, _| prompt.notify_one(),
        )));
    }
    let settings = follow::Settings {
        poll: projector.poll,
        backoff: projector.backoff,
        leases: projector.leases.clone(),
        lease_interval: projector.lease_interval,
    };
    let projector = Arc::new(projector);
    // With leases it is standing by until the loop has taken its lease.
    let state = StateCell::new(if settings.leases.is_some() {
        State::WaitingForLease
    } else {
        State::Running
    });
    let failure = Arc::new(Mutex::new(None));
    let main = {
        let (f, state, failure, prompt) = (
            ProjectionFollower(projector.clone()),
            state.clone(),
            failure.clone(),
            prompt.clone(),
        );
        tokio::spawn(async move {
            let key = format!("{}#{}", f.name(), f.pipeline());
            if let Err(e) = follow::follow(&f, &key, &state, &prompt, stopped, &settings).await {
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        })
    };
    let mut tasks = vec![main];
    tasks.extend(forwarders);
    ProjectionHandle {
        projector,
        prompt,
        stop,
        state,
        failure,
        tasks,
    }
}

impl<P: Projection> ProjectionHandle<P> {
    /// The projector (its positions, lag, and [`Projector::rebuild`], which waits for the
    /// running catch-up and then runs in its place).
    pub fn projector(&self) -> &Arc<Projector<P>> {
        &self.projector
    }

    /// How many notifications are not applied yet (see [`Projector::lag`]).
    pub async fn lag(&self) -> Result<i64> {
        self.projector.lag().await
    }

    /// What the task is doing, where it is in each upstream log, and how far behind: the
    /// same report a runner gives for each process application.
    pub async fn health(&self) -> Result<Health> {
        Ok(Health {
            application: self.projector.name().to_string(),
            pipeline_id: self.projector.pipeline(),
            state: self.state.get(),
            positions: self.projector.positions().await?,
            lag: self.projector.lag().await?,
        })
    }

    /// Wakes the task now (for writes it is not prompted by).
    pub fn prompt(&self) {
        self.prompt.notify_one();
    }

    /// The failure that stopped the task, taken (`None` while it runs).
    pub fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Waits until the lag is 0, or the task fails (its error), or `timeout` passes
    /// ([`Error::Operational`]).
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.take_failure() {
                return Err(e);
            }
            if self.projector.lag().await? == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Operational(format!(
                    "projection {} did not catch up within {timeout:?}",
                    self.projector.name()
                )));
            }
            self.prompt();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the task (it finishes the batch it is committing, and releases its lease) and
    /// waits for it; returns the failure that stopped it earlier, if any.
    pub async fn stop(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        let mut tasks = std::mem::take(&mut self.tasks).into_iter();
        let main = tasks.next();
        // The prompt forwarders wait on upstream saves: end them.
        for t in tasks {
            t.abort();
        }
        if let Some(main) = main {
            main.await
                .map_err(|e| Error::Operational(format!("the projection task failed: {e}")))?;
        }
        match self.take_failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<P> Drop for ProjectionHandle<P> {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        // The prompt forwarders (all but the first task) would wait for the upstreams' next
        // save; the main task ends at its next wait.
        if let Some((_, forwarders)) = self.tasks.split_first() {
            forwarders.iter().for_each(|t| t.abort());
        }
    }
}
