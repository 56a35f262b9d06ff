//! Configuring a [`Runner`]: database, names, pipelines, failures, leases, prompts.

use super::application::{ProcessApplication, Prompter};
use super::deadletter::OnPolicyError;
use super::follow;
use super::health::{State, StateCell};
use super::lease::Leases;
use super::prompt::Prompts;
use super::retry::Backoff;
use super::runner::{Inner, Runner};
use super::system::System;
use super::worker;
use crate::application::{Application, ApplicationBuilder, Database};
use crate::error::{Error, Result};
use std::collections::HashMap;
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
    create_tables: bool,
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
    pub(super) fn new(system: &System, db: Arc<dyn Database>) -> Self {
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
            create_tables: false,
        }
    }

    /// With `true`, the runner creates the tables its applications need when it starts, if
    /// they are missing: each application's event table (and snapshot table if it
    /// snapshots), the tracking table, and the snapshot table for parked notifications
    /// ([`Table`](crate::record::Table)). A database made by
    /// [`connect`](crate::application::connect) always does. By default a missing table is
    /// an [`Error::Configuration`] at start that names it.
    pub fn create_tables(mut self, create: bool) -> Self {
        self.create_tables = create;
        self
    }

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
                    .pipeline_id(p)
                    .create_tables(self.create_tables);
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
            pa.ready().await?;
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
        // With leases, nothing runs before its lease is taken.
        let initial = if self.leases.is_some() && concurrent {
            State::WaitingForLease
        } else {
            State::Running
        };
        let states = running
            .iter()
            .map(|k| (k.clone(), StateCell::new(initial.clone())))
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
                        follow: follow::Settings {
                            poll: self.poll_interval,
                            backoff: self.backoff,
                            leases: self.leases.clone(),
                            lease_interval: self.lease_interval,
                        },
                        batch: self.batch,
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
