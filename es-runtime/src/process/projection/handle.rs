//! A projector running in a task, and the handle that stops it.

use super::projector::Projector;
use super::Projection;
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// A running [`Projector`]: made by [`Projector::start`].
///
/// The task catches up, then waits for a prompt (a save through one of the upstream
/// application objects, or [`ProjectionHandle::prompt`]) or the poll interval, and catches up
/// again. A failure stops it: [`ProjectionHandle::wait_caught_up`] and
/// [`ProjectionHandle::stop`] return it, and a new start resumes from the tracking records.
/// Dropping the handle stops the task at its next wait.
pub struct ProjectionHandle<P> {
    projector: Arc<Projector<P>>,
    prompt: Arc<Notify>,
    stop: watch::Sender<bool>,
    failure: Arc<Mutex<Option<Error>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<P> std::fmt::Debug for ProjectionHandle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionHandle")
            .field("projector", &self.projector)
            .finish()
    }
}

pub(super) fn start<P: Projection>(mut projector: Projector<P>) -> ProjectionHandle<P> {
    let prompt = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    // Each upstream's saves prompt the projector (a permit is kept if it is busy).
    for u in &mut projector.upstreams {
        if let Some(mut writes) = u.writes.take() {
            let prompt = prompt.clone();
            tasks.push(tokio::spawn(async move {
                while writes.changed().await.is_ok() {
                    prompt.notify_one();
                }
            }));
        }
    }
    let projector = Arc::new(projector);
    let failure = Arc::new(Mutex::new(None));
    tasks.push(tokio::spawn(run(
        projector.clone(),
        prompt.clone(),
        stopped,
        failure.clone(),
    )));
    ProjectionHandle {
        projector,
        prompt,
        stop,
        failure,
        tasks,
    }
}

async fn run<P: Projection>(
    projector: Arc<Projector<P>>,
    prompt: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
    failure: Arc<Mutex<Option<Error>>>,
) {
    loop {
        if *stopped.borrow() {
            return;
        }
        if let Err(e) = projector.catch_up().await {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            return;
        }
        tokio::select! {
            _ = prompt.notified() => {}
            _ = tokio::time::sleep(projector.poll) => {}
            _ = stopped.changed() => {}
        }
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

    /// Stops the task (it finishes the batch it is committing) and waits for it; returns the
    /// failure that stopped it earlier, if any.
    pub async fn stop(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        let mut tasks = std::mem::take(&mut self.tasks);
        // The prompt forwarders wait on upstream saves: end them first.
        let main = tasks.pop();
        for t in &tasks {
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
        // The prompt forwarders (all but the last task) would wait for the upstreams' next
        // save; the main task ends at its next wait.
        if let Some((_, forwarders)) = self.tasks.split_last() {
            forwarders.iter().for_each(|t| t.abort());
        }
    }
}
