//! Runners: a system bound to a database (manual §12.4.5).

use super::application::{ProcessApplication, Prompter};
use super::deadletter::OnPolicyError;
use super::health::{Health, State, StateCell};
use super::lease::Leases;
use super::prompt::Prompts;
use super::retry::Backoff;
use super::system::System;
use super::worker;
use crate::application::{Application, ApplicationBuilder, Database};
use crate::error::{Error, Result};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{watch, Notify};

type Configure = Arc<dyn Fn(&str, ApplicationBuilder) -> ApplicationBuilder + Send + Sync>;

/// Configures a [`Runner`]: which database, names, pipelines; then starts it single-threaded
/// or concurrently.
pub struct RunnerBuilder {
    system: System,
    db: Arc<dyn Database>,
    namespace: String,
    pipelines: Vec<i64>,
    poll_interval: Duration,
    batch: usize,
    configure: Option<Configure>,
    backoff: Backoff,
    on_error: HashMap<String, OnPolicyError>,
    only: Option<Vec<String>>,
    causal: Option<bool>,
    leases: Option<Arc<dyn Leases>>,
    lease_interval: Duration,
    prompts: Option<Arc<dyn Prompts>>,
}

impl std::fmt::Debug for RunnerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerBuilder")
            .field("system", &self.system)
            .field("namespace", &self.namespace)
            .field("pipelines", &self.pipelines)
            .field("poll_interval", &self.poll_interval)
            .field("backoff", &self.backoff)
            .field("only", &self.only)
            .finish()
    }
}

impl RunnerBuilder {
    /// Prefixes every application's name in the database (`"test1_"` makes `orders` store
    /// as `test1_orders`), so several systems can share one database.
    pub fn namespace(mut self, prefix: impl Into<String>) -> Self {
        self.namespace = prefix.into();
        self
    }

    /// Runs one instance of the system per pipeline id (default: just pipeline 0). The
    /// instance of a follower in pipeline `p` follows its upstreams' notifications of
    /// pipeline `p`.
    pub fn pipelines(mut self, ids: impl IntoIterator<Item = i64>) -> Self {
        self.pipelines.clear();
        for id in ids {
            if !self.pipelines.contains(&id) {
                self.pipelines.push(id);
            }
        }
        self
    }

    /// Concurrent runner: how often each application looks for new notifications when it
    /// has not been prompted (writes from elsewhere). 100 ms by default.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// Concurrent runner: how transient failures (lost connections, timeouts, serialization
    /// failures, deadlocks) are retried ([`Backoff::default`] unless set). A follower that
    /// fails more often in a row stops, and says why ([`Runner::health`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// What application `name` does when its policy fails on a notification:
    /// [`OnPolicyError::Stop`] (the default) or [`OnPolicyError::Park`] (see
    /// [`ProcessApplication::parking_failures`]).
    pub fn on_policy_error(mut self, name: &str, mode: OnPolicyError) -> Self {
        self.on_error.insert(name.to_string(), mode);
        self
    }

    /// Concurrent runner: runs only the applications named (of every pipeline given to
    /// [`RunnerBuilder::pipelines`]); the others are there to save to and read from, while
    /// other processes run them. An empty list runs nothing: a client of a system whose
    /// applications run elsewhere.
    pub fn only<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.only = Some(names.into_iter().map(|s| s.as_ref().to_string()).collect());
        self
    }

    /// Concurrent runner: each application (and pipeline) first takes its lease from `leases`
    /// (see [`lease`](super::lease)), so that of several processes running the same parts of a
    /// system only one works on each; the others stand by
    /// ([`State::WaitingForLease`]) and take over within [`RunnerBuilder::lease_interval`]
    /// once the holder stops or dies. Without leases every instance works, and tracking
    /// records keep processing exactly once.
    pub fn leases(mut self, leases: Arc<dyn Leases>) -> Self {
        self.leases = Some(leases);
        self
    }

    /// How often a standby tries to take a lease, and a holder checks it still holds its
    /// lease (500 ms by default): after the holder dies, a standby takes over within about
    /// this time (plus the time the database takes to notice, see [`lease`](super::lease)).
    pub fn lease_interval(mut self, every: Duration) -> Self {
        self.lease_interval = every.max(Duration::from_millis(1));
        self
    }

    /// Concurrent runner: prompts followers in other processes through the database after
    /// each commit, and wakes this process's followers when their upstreams in other processes
    /// commit (see [`prompt`](super::prompt)); polling goes on as the fallback.
    pub fn prompts(mut self, prompts: Arc<dyn Prompts>) -> Self {
        self.prompts = Some(prompts);
        self
    }

    /// Runs one part of a system, as a child of a
    /// [`Supervisor`](super::supervisor::Supervisor) does: its one application and pipeline,
    /// with causal dependencies when the system has several pipelines.
    pub fn part(self, part: &super::supervisor::Part) -> Self {
        self.only([part.application.as_str()])
            .pipelines([part.pipeline_id])
            .causal_dependencies(part.all_pipelines.len() > 1)
    }

    /// Records causal dependencies between pipelines and waits for them (see
    /// [`ProcessApplication::with_causal_dependencies`]). On by default when the runner runs
    /// more than one pipeline; turn it on when each process of a system runs only some of its
    /// pipelines.
    pub fn causal_dependencies(mut self, on: bool) -> Self {
        self.causal = Some(on);
        self
    }

    /// Settings for every application (after the system's own settings for it): `configure`
    /// gets the system name of the application and its builder (a cipher, for example).
    pub fn configure(
        mut self,
        configure: impl Fn(&str, ApplicationBuilder) -> ApplicationBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(configure));
        self
    }

    /// Starts a single-threaded runner: no tasks. A save through a
    /// [`ProcessApplication::save`] processes, before it returns, everything that follows
    /// from it in the system (followers, their followers, ...: synchronous propagation), and
    /// returns the first failure. Writes made elsewhere are processed by
    /// [`Runner::wait_idle`].
    pub async fn single_threaded(self) -> Result<Runner> {
        self.start(false).await
    }

    /// Starts a concurrent runner: one tokio task per application (and pipeline), which
    /// processes new notifications when prompted by a save and also polls its upstream logs
    /// (so writes from elsewhere are processed too). A task whose processing fails stops; the
    /// failure is returned by [`Runner::wait_idle`] and [`Runner::stop`].
    pub async fn concurrent(self) -> Result<Runner> {
        self.start(true).await
    }

    async fn start(self, concurrent: bool) -> Result<Runner> {
        self.system.validate()?;
        if self.pipelines.is_empty() {
            return Err(Error::Configuration("a runner needs a pipeline id".into()));
        }
        for name in self.only.iter().flatten().chain(self.on_error.keys()) {
            if self.system.def(name).is_none() {
                return Err(Error::Configuration(format!(
                    "the system has no process named {name:?}"
                )));
            }
        }
        let names: Vec<String> = self.system.names().iter().map(|s| s.to_string()).collect();
        let mut built: HashMap<(String, i64), Arc<Application>> = HashMap::new();
        for &p in &self.pipelines {
            for name in &names {
                let def = self
                    .system
                    .def(name)
                    .ok_or_else(|| Error::Configuration(format!("no process named {name}")))?;
                let mut b = Application::builder(format!("{}{name}", self.namespace))
                    .database(self.db.clone())
                    .pipeline_id(p);
                b = def.configure(b);
                if let Some(c) = &self.configure {
                    b = c(name, b);
                }
                built.insert((name.clone(), p), Arc::new(b.build().await?));
            }
        }
        let mut apps = HashMap::new();
        for ((name, p), app) in &built {
            let def = self
                .system
                .def(name)
                .ok_or_else(|| Error::Configuration(format!("no process named {name}")))?;
            let mut pa = ProcessApplication::new(app.clone(), def.policy());
            if self.causal.unwrap_or(self.pipelines.len() > 1) {
                pa = pa.with_causal_dependencies(self.db.clone());
            }
            if self.on_error.get(name) == Some(&OnPolicyError::Park) {
                pa = pa.parking_failures(self.db.as_ref());
            }
            for u in self.system.upstreams(name) {
                let upstream = built
                    .get(&(u.to_string(), *p))
                    .ok_or_else(|| Error::Configuration(format!("no process named {u}")))?;
                pa = pa.following(upstream)?;
            }
            apps.insert((name.clone(), *p), Arc::new(pa));
        }
        let followers = names
            .iter()
            .map(|n| {
                let fs = self.system.followers(n);
                (n.clone(), fs.iter().map(|s| s.to_string()).collect())
            })
            .collect();
        let wakers = apps
            .keys()
            .map(|k| (k.clone(), Arc::new(Notify::new())))
            .collect();
        let mut running: Vec<(String, i64)> = apps
            .keys()
            .filter(|(n, _)| self.only.as_ref().is_none_or(|o| o.contains(n)))
            .cloned()
            .collect();
        running.sort();
        let states = running
            .iter()
            .map(|k| (k.clone(), StateCell::new(State::Running)))
            .collect();
        let inner = Arc::new(Inner {
            concurrent,
            namespace: self.namespace.clone(),
            prompts: if concurrent {
                self.prompts.clone()
            } else {
                None
            },
            running,
            states,
            names,
            pipelines: self.pipelines.clone(),
            apps,
            followers,
            wakers,
            errors: Mutex::new(Vec::new()),
            halted: Mutex::new(Vec::new()),
        });
        for ((name, p), pa) in &inner.apps {
            let weak = Arc::downgrade(&inner);
            let (name, p) = (name.clone(), *p);
            let prompter: Prompter = Arc::new(move || {
                let weak: Weak<Inner> = weak.clone();
                let name = name.clone();
                Box::pin(async move {
                    match weak.upgrade() {
                        Some(inner) => inner.new_events(&name, p).await,
                        None => Ok(()),
                    }
                })
            });
            pa.set_prompter(prompter);
        }
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if concurrent {
            for key in &inner.running {
                let task = worker::run(
                    inner.clone(),
                    key.clone(),
                    stopped.clone(),
                    worker::Settings {
                        poll: self.poll_interval,
                        batch: self.batch,
                        backoff: self.backoff,
                        leases: self.leases.clone(),
                        lease_interval: self.lease_interval,
                    },
                );
                tasks.push(tokio::spawn(task));
            }
            if inner.prompts.is_some() && !inner.running.is_empty() {
                tasks.push(tokio::spawn(worker::listen(inner.clone(), stopped.clone())));
            }
        }
        Ok(Runner { inner, stop, tasks })
    }
}

pub(super) struct Inner {
    concurrent: bool,
    /// The prefix of database names.
    pub(super) namespace: String,
    /// Prompts across processes, if any.
    pub(super) prompts: Option<Arc<dyn Prompts>>,
    /// The applications this runner runs tasks for (all, unless [`RunnerBuilder::only`]).
    pub(super) running: Vec<(String, i64)>,
    pub(super) states: HashMap<(String, i64), StateCell>,
    names: Vec<String>,
    pipelines: Vec<i64>,
    pub(super) apps: HashMap<(String, i64), Arc<ProcessApplication>>,
    followers: HashMap<String, Vec<String>>,
    pub(super) wakers: HashMap<(String, i64), Arc<Notify>>,
    errors: Mutex<Vec<Error>>,
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
    async fn new_events(&self, name: &str, p: i64) -> Result<()> {
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
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
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
        RunnerBuilder {
            system: system.clone(),
            db,
            namespace: String::new(),
            pipelines: vec![0],
            poll_interval: Duration::from_millis(100),
            batch: super::application::DEFAULT_PAGE_SIZE,
            configure: None,
            backoff: Backoff::default(),
            on_error: HashMap::new(),
            only: None,
            causal: None,
            leases: None,
            lease_interval: Duration::from_millis(500),
            prompts: None,
        }
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
