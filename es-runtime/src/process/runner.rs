//! Runners: a system bound to a database (manual §12.4.5).

use super::application::ProcessApplication;
pub use super::builder::RunnerBuilder;
use super::health::{Health, State, StateCell};
use super::prompt::Prompts;
use super::system::System;
use crate::application::Database;
use crate::error::{Error, Result};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

pub(super) struct Inner {
    pub(super) concurrent: bool,
    /// The prefix of database names.
    pub(super) namespace: String,
    /// Prompts across processes, if any.
    pub(super) prompts: Option<Arc<dyn Prompts>>,
    /// The applications this runner runs tasks for (all, unless [`RunnerBuilder::only`]).
    pub(super) running: Vec<(String, i64)>,
    pub(super) states: HashMap<(String, i64), StateCell>,
    pub(super) names: Vec<String>,
    pub(super) pipelines: Vec<i64>,
    pub(super) apps: HashMap<(String, i64), Arc<ProcessApplication>>,
    pub(super) followers: HashMap<String, Vec<String>>,
    pub(super) wakers: HashMap<(String, i64), Arc<Notify>>,
    pub(super) errors: Mutex<Vec<Error>>,
    /// Applications whose task stopped after a failure: `(name, pipeline id)`.
    pub(super) halted: Mutex<Vec<(String, i64)>>,
}

impl Inner {
    pub(super) fn app(&self, name: &str, p: i64) -> Result<&Arc<ProcessApplication>> {
        self.apps
            .get(&(name.to_string(), p))
            .ok_or_else(|| Error::NotFound(format!("application {name} in pipeline {p}")))
    }

    pub(super) fn wake_followers(&self, name: &str, p: i64) {
        for f in self.followers.get(name).into_iter().flatten() {
            if let Some(w) = self.wakers.get(&(f.clone(), p)) {
                w.notify_one();
            }
        }
    }

    /// Prompts followers in other processes, if prompts are on.
    pub(super) async fn prompt_others(&self, name: &str, p: i64) -> Result<()> {
        match &self.prompts {
            Some(prompts) => {
                prompts
                    .notify(&format!("{}{name}", self.namespace), p)
                    .await
            }
            None => Ok(()),
        }
    }

    /// The applications `name` follows (system names).
    pub(super) fn upstreams_of<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a String> + 'a {
        self.followers
            .iter()
            .filter(move |(_, fs)| fs.iter().any(|f| f == name))
            .map(|(u, _)| u)
    }

    /// Application `name` of pipeline `p` has new events.
    pub(super) async fn new_events(&self, name: &str, p: i64) -> Result<()> {
        if self.concurrent {
            self.wake_followers(name, p);
            return self.prompt_others(name, p).await;
        }
        // Synchronous propagation: the followers of each application with new events pull
        // from it, until no application has new events.
        let mut queue = VecDeque::from([name.to_string()]);
        while let Some(upstream) = queue.pop_front() {
            let from = self.app(&upstream, p)?.name().to_string();
            for f in self.followers.get(&upstream).into_iter().flatten() {
                let progress = self.app(f, p)?.pull_from(&from).await?;
                if progress.events > 0 && !queue.contains(f) {
                    queue.push_back(f.clone());
                }
            }
        }
        Ok(())
    }

    pub(super) fn record(&self, key: &(String, i64), e: Error) {
        self.errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(e);
        self.halted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(key.clone());
    }

    /// An error naming the applications that stopped, if any did.
    fn halted_error(&self) -> Option<Error> {
        let halted = self
            .halted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (!halted.is_empty()).then(|| {
            let names: Vec<String> = halted
                .iter()
                .map(|(n, p)| format!("{n} (pipeline {p})"))
                .collect();
            Error::Operational(format!(
                "stopped after a failure: {}; start a new runner to resume",
                names.join(", ")
            ))
        })
    }

    fn take_error(&self) -> Option<Error> {
        let mut errors = self
            .errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (!errors.is_empty()).then(|| errors.remove(0))
    }

    /// True when, at one moment, every application had processed everything its upstreams
    /// had written: the highest notification ids read before and after the tracking
    /// positions are the same, and every position reaches them.
    async fn is_idle(&self) -> Result<bool> {
        let mut before = HashMap::new();
        for (key, pa) in &self.apps {
            before.insert(key, pa.records().max_notification_id().await?);
        }
        for ((name, p), pa) in &self.apps {
            for upstream in self.followers.keys() {
                if !self
                    .followers
                    .get(upstream)
                    .is_some_and(|fs| fs.contains(name))
                {
                    continue;
                }
                let up = self.app(upstream, *p)?;
                let tracked = pa.records().max_tracking_id(up.name()).await?;
                let written = before
                    .get(&(upstream.clone(), *p))
                    .copied()
                    .unwrap_or_default();
                if tracked < written {
                    return Ok(false);
                }
            }
        }
        for (key, pa) in &self.apps {
            if before.get(key).copied() != Some(pa.records().max_notification_id().await?) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A [`System`] running on a database: one [`ProcessApplication`] per name and pipeline id.
///
/// Made by [`Runner::builder`], then [`RunnerBuilder::single_threaded`] (synchronous
/// propagation, for development and tests) or [`RunnerBuilder::concurrent`] (one tokio task
/// per application). Both give the same results; only the timing differs.
///
/// ```
/// # async fn demo() -> es_runtime::Result<()> {
/// use es_runtime::process::{Policy, Runner, System};
/// use std::sync::Arc;
/// let system = System::new()
///     .pipeline("commands | orders | commands")
///     .process("commands", Policy::new)
///     .process("orders", Policy::new);
/// let db = Arc::new(es_runtime::record::memory::InMemoryDatabase::new());
/// let runner = Runner::builder(&system, db).single_threaded().await?;
/// let commands = runner.app("commands")?;
/// // commands.save(&mut some_command).await? — the orders application has processed it
/// // (and commands has processed the orders' response) when the save returns.
/// # let _ = commands;
/// runner.stop().await?;
/// # Ok(()) }
/// ```
pub struct Runner {
    pub(super) inner: Arc<Inner>,
    pub(super) stop: watch::Sender<bool>,
    pub(super) tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("concurrent", &self.inner.concurrent)
            .field("names", &self.inner.names)
            .field("pipelines", &self.inner.pipelines)
            .finish()
    }
}

impl Runner {
    /// Starts configuring a runner of `system` on `db`.
    pub fn builder(system: &System, db: Arc<dyn Database>) -> RunnerBuilder {
        RunnerBuilder::new(system, db)
    }

    /// True for a concurrent runner.
    pub fn is_concurrent(&self) -> bool {
        self.inner.concurrent
    }

    /// The pipeline ids.
    pub fn pipelines(&self) -> &[i64] {
        &self.inner.pipelines
    }

    /// Application `name` (its system name) of the first pipeline.
    pub fn app(&self, name: &str) -> Result<Arc<ProcessApplication>> {
        let p = self.inner.pipelines.first().copied().unwrap_or_default();
        self.app_in(name, p)
    }

    /// Application `name` of pipeline `pipeline_id`.
    pub fn app_in(&self, name: &str, pipeline_id: i64) -> Result<Arc<ProcessApplication>> {
        self.inner.app(name, pipeline_id).cloned()
    }

    /// The health of each application this runner runs (by name, then pipeline): what it is
    /// doing, its position in each upstream log (from its tracking records, so positions
    /// committed by other processes count too) and its lag.
    pub async fn health(&self) -> Result<Vec<Health>> {
        let mut out = Vec::new();
        for key in &self.inner.running {
            let pa = self.inner.app(&key.0, key.1)?;
            let mut positions = Vec::new();
            let mut lag = 0;
            for upstream in self.inner.upstreams_of(&key.0) {
                let up = self.inner.app(upstream, key.1)?;
                let at = pa.records().max_tracking_id(up.name()).await?;
                lag += (up.records().max_notification_id().await? - at).max(0);
                positions.push((upstream.clone(), at));
            }
            out.push(Health {
                application: key.0.clone(),
                pipeline_id: key.1,
                state: self
                    .inner
                    .states
                    .get(key)
                    .map_or(State::Running, StateCell::get),
                positions,
                lag,
            });
        }
        Ok(out)
    }

    /// Waits until every application has processed every notification of its upstreams, or
    /// `timeout` passes ([`Error::Operational`]). A failure of an application is returned
    /// (and forgotten: [`Runner::stop`] does not return it again); later calls say which
    /// applications have stopped ([`Error::Operational`]).
    ///
    /// Single-threaded: processes, in this call, everything not yet processed (writes made
    /// elsewhere, or left by an earlier run), application after application, until a whole
    /// round processes nothing.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<()> {
        if !self.inner.concurrent {
            return self.catch_up().await;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.inner.take_error() {
                return Err(e);
            }
            if let Some(e) = self.inner.halted_error() {
                return Err(e);
            }
            if self.inner.is_idle().await? {
                // A task may fail on the very last notification after the check.
                return match self.inner.take_error() {
                    Some(e) => Err(e),
                    None => Ok(()),
                };
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Operational(format!(
                    "the system did not become idle within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn catch_up(&self) -> Result<()> {
        loop {
            let mut round = 0;
            for &p in &self.inner.pipelines {
                for name in &self.inner.names {
                    let progress = self.inner.app(name, p)?.pull().await?;
                    round += progress.processed + progress.skipped;
                }
            }
            if round == 0 {
                return Ok(());
            }
        }
    }

    /// Runs until SIGTERM or Ctrl-C (SIGINT), then stops as [`Runner::stop`] does: each
    /// task finishes the notification it is processing, commits, releases its lease; `Ok`
    /// then. Returns the error at once if every task this runner runs has stopped after a
    /// failure (so that a supervisor restarts the process).
    pub async fn run_until_signal(self) -> Result<()> {
        let signal = super::supervisor::shutdown_signal();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                s = &mut signal => {
                    let name = s?;
                    tracing::info!(signal = name, holder = %super::lease::holder_name(), "shutting down: finishing the current notifications");
                    return self.stop().await;
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            let halted = self
                .inner
                .halted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len();
            if self.inner.concurrent && halted >= self.inner.running.len() && halted > 0 {
                let e = self.inner.take_error();
                let _ = self.stop().await;
                return Err(e.unwrap_or_else(|| Error::Operational("every task stopped".into())));
            }
        }
    }

    /// Stops the tasks (each finishes the notification it is processing) and waits for them.
    /// Returns the first failure not yet returned by [`Runner::wait_idle`].
    pub async fn stop(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        if self.inner.concurrent {
            for pa in self.inner.apps.values() {
                pa.interrupt();
            }
        }
        let mut join_error = None;
        for t in self.tasks.drain(..) {
            if let Err(e) = t.await {
                join_error.get_or_insert(Error::Operational(format!(
                    "a process application task failed: {e}"
                )));
            }
        }
        match (self.inner.take_error(), join_error) {
            (Some(e), _) | (None, Some(e)) => Err(e),
            (None, None) => Ok(()),
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // Tasks end at their next wait; nothing is interrupted mid-transaction.
        let _ = self.stop.send(true);
    }
}
