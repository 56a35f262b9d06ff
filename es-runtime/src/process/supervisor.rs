//! One operating-system process per (application, pipeline): the supervisor that starts them,
//! and the part a process runs (the manual's multiprocess runner, §12.4.5).
//!
//! The user's own executable is both: started without a [`Part`] in its environment it is
//! whatever it is (a server, a tool) and may start a [`Supervisor`]; started by the supervisor,
//! [`Part::from_env`] says which application and pipeline to run, and
//! [`RunnerBuilder::part`](super::RunnerBuilder::part) runs just that, with its own connection
//! pool, leases and prompts, until SIGTERM ([`Runner::run_until_signal`](super::Runner::run_until_signal)).
//!
//! ```no_run
//! use es_runtime::process::supervisor::{Part, Supervisor};
//! use es_runtime::process::{lease, prompt, Policy, Runner, System};
//! # async fn demo() -> es_runtime::Result<()> {
//! let system = System::new()
//!     .pipeline("orders | reservations")
//!     .process("orders", Policy::new)
//!     .process("reservations", Policy::new);
//! let url = std::env::var("DB_URI").unwrap_or_default();
//! if let Some(part) = Part::from_env()? {
//!     // A child: run one application of one pipeline until SIGTERM.
//!     let db = es_runtime::application::connect(&url).await?;
//!     let mut b = Runner::builder(&system, db)
//!         .part(&part)
//!         .leases(lease::for_url(&url).await?);
//!     if let Some(p) = prompt::for_url(&url).await? {
//!         b = b.prompts(p);
//!     }
//!     return b.concurrent().await?.run_until_signal().await;
//! }
//! // The parent: this executable again, once per application and pipeline, until SIGTERM.
//! Supervisor::new(&system).pipelines([0, 1]).run().await
//! # }
//! ```

use super::retry::Backoff;
use super::system::System;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The environment variable naming the application a child runs.
pub const ENV_APPLICATION: &str = "ES_RUN_APPLICATION";
/// The environment variable naming the pipeline a child runs.
pub const ENV_PIPELINE: &str = "ES_RUN_PIPELINE";
/// The environment variable listing every pipeline of the system (comma-separated).
pub const ENV_PIPELINES: &str = "ES_RUN_PIPELINES";

/// What one process of a system runs: one application of one pipeline, knowing all the
/// pipelines (causal dependencies between them are on when there are several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The application (its system name).
    pub application: String,
    /// The pipeline.
    pub pipeline_id: i64,
    /// Every pipeline of the system.
    pub all_pipelines: Vec<i64>,
}

impl Part {
    /// The part this process was started to run by a [`Supervisor`] (`ES_RUN_APPLICATION`,
    /// `ES_RUN_PIPELINE`, `ES_RUN_PIPELINES`), or `None`. Malformed values are an
    /// [`Error::Configuration`].
    pub fn from_env() -> Result<Option<Part>> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Part>> {
        let Some(application) = var(ENV_APPLICATION).filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| Error::Configuration(format!("{what}: {s:?} is not a pipeline id")))
        };
        let pipeline_id = number(&var(ENV_PIPELINE).unwrap_or_default(), ENV_PIPELINE)?;
        let all_pipelines = match var(ENV_PIPELINES).filter(|s| !s.trim().is_empty()) {
            Some(list) => list
                .split(',')
                .map(|s| number(s, ENV_PIPELINES))
                .collect::<Result<Vec<_>>>()?,
            None => vec![pipeline_id],
        };
        Ok(Some(Part {
            application,
            pipeline_id,
            all_pipelines,
        }))
    }

    fn env(&self) -> [(&'static str, String); 3] {
        let all: Vec<String> = self.all_pipelines.iter().map(|p| p.to_string()).collect();
        [
            (ENV_APPLICATION, self.application.clone()),
            (ENV_PIPELINE, self.pipeline_id.to_string()),
            (ENV_PIPELINES, all.join(",")),
        ]
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pipeline {})", self.application, self.pipeline_id)
    }
}

/// Waits for SIGTERM or SIGINT (Ctrl-C) and says which came.
pub async fn shutdown_signal() -> Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let err = |e: std::io::Error| Error::Operational(format!("cannot wait for signals: {e}"));
        let mut term = signal(SignalKind::terminate()).map_err(err)?;
        let mut int = signal(SignalKind::interrupt()).map_err(err)?;
        tokio::select! {
            _ = term.recv() => Ok("SIGTERM"),
            _ = int.recv() => Ok("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| Error::Operational(format!("cannot wait for Ctrl-C: {e}")))?;
        Ok("Ctrl-C")
    }
}

/// Starts the user's executable once per (application, pipeline) of a system as child
/// processes, restarts a child that exits with backoff, and stops them all on SIGTERM or
/// Ctrl-C (SIGTERM to each, which finishes its current notification and exits; SIGKILL after
/// [`Supervisor::grace`]).
#[derive(Clone, Debug)]
pub struct Supervisor {
    names: Vec<String>,
    pipelines: Vec<i64>,
    run_pipelines: Option<Vec<i64>>,
    program: Option<PathBuf>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    backoff: Backoff,
    grace: Duration,
}

impl Supervisor {
    /// Every application of `system`, in pipeline 0, running this executable again with the
    /// same arguments.
    pub fn new(system: &System) -> Self {
        Supervisor {
            names: system.names().iter().map(|s| s.to_string()).collect(),
            pipelines: vec![0],
            run_pipelines: None,
            program: None,
            args: std::env::args().skip(1).collect(),
            envs: Vec::new(),
            backoff: Backoff::new(
                Duration::from_millis(200),
                Duration::from_secs(30),
                u32::MAX,
            ),
            grace: Duration::from_secs(30),
        }
    }

    /// The pipelines (one child per application and pipeline).
    pub fn pipelines(mut self, ids: impl IntoIterator<Item = i64>) -> Self {
        self.pipelines = ids.into_iter().collect();
        self.pipelines.dedup();
        self
    }

    /// Runs children for these of the system's pipelines only (others run elsewhere, on
    /// other hosts for example); the children still know every pipeline.
    pub fn only_pipelines(mut self, ids: impl IntoIterator<Item = i64>) -> Self {
        self.run_pipelines = Some(ids.into_iter().collect());
        self
    }

    /// Only these applications (others run elsewhere, on other hosts for example).
    pub fn only<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        let keep: Vec<String> = names.into_iter().map(|s| s.as_ref().to_string()).collect();
        self.names.retain(|n| keep.contains(n));
        self
    }

    /// The executable to start (this one by default) and its arguments.
    pub fn program(mut self, program: impl Into<PathBuf>, args: Vec<String>) -> Self {
        self.program = Some(program.into());
        self.args = args;
        self
    }

    /// An environment variable for every child (besides the supervisor's own environment).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// How long a crashed child waits before it is restarted: from `backoff.initial`, doubling
    /// with each crash in a row (a child that ran a minute starts over); `attempts` is ignored.
    pub fn restart_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How long children get to stop after SIGTERM before they are killed (30 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The parts, one per child.
    pub fn parts(&self) -> Vec<Part> {
        let mut out = Vec::new();
        for &p in &self.pipelines {
            if self
                .run_pipelines
                .as_ref()
                .is_some_and(|only| !only.contains(&p))
            {
                continue;
            }
            for n in &self.names {
                out.push(Part {
                    application: n.clone(),
                    pipeline_id: p,
                    all_pipelines: self.pipelines.clone(),
                });
            }
        }
        out
    }

    /// Runs the children until SIGTERM or Ctrl-C, then stops them.
    pub async fn run(self) -> Result<()> {
        self.run_until(async {
            match shutdown_signal().await {
                Ok(s) => tracing::info!(signal = s, "supervisor stopping its children"),
                Err(e) => tracing::error!(error = %e, "supervisor cannot wait for signals"),
            }
        })
        .await
    }

    /// Runs the children until `stop` completes, then stops them (SIGTERM, then SIGKILL after
    /// the grace period). An error if a child could not be started at all, or did not exit
    /// cleanly when stopped.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<()> {
        let parts = self.parts();
        if parts.is_empty() {
            return Err(Error::Configuration(
                "the supervisor has no applications to run".into(),
            ));
        }
        let program = match &self.program {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| Error::Configuration(format!("cannot find this executable: {e}")))?,
        };
        let mut children: HashMap<usize, Child> = HashMap::new();
        for (i, part) in parts.iter().enumerate() {
            children.insert(i, self.spawn(&program, part)?);
        }
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            for (i, part) in parts.iter().enumerate() {
                let Some(c) = children.get_mut(&i) else {
                    continue;
                };
                if let Some(restart_at) = c.restart_at {
                    if Instant::now() >= restart_at {
                        let crashes = c.crashes;
                        let mut fresh = self.spawn(&program, part)?;
                        fresh.crashes = crashes;
                        *c = fresh;
                    }
                    continue;
                }
                let status = c.process.try_wait().map_err(|e| {
                    Error::Operational(format!("cannot watch the child for {part}: {e}"))
                })?;
                if let Some(status) = status {
                    if c.started.elapsed() > Duration::from_secs(60) {
                        c.crashes = 0;
                    }
                    c.crashes += 1;
                    let wait = self.backoff.delay(c.crashes);
                    tracing::error!(part = %part, %status, restart_in = ?wait, "child exited: restarting");
                    c.restart_at = Some(Instant::now() + wait);
                }
            }
        }
        // Stop: SIGTERM to every child, then wait, then SIGKILL whoever is left.
        for c in children.values() {
            if c.restart_at.is_none() {
                if let Some(pid) = c.process.id() {
                    terminate(pid);
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.grace;
        let mut unclean = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let Some(mut c) = children.remove(&i) else {
                continue;
            };
            if c.restart_at.is_some() {
                continue;
            }
            match tokio::time::timeout_at(deadline, c.process.wait()).await {
                Ok(Ok(s)) if s.success() => {}
                // A child still starting (before its runner listens for signals) dies of the
                // SIGTERM itself: a clean stop too, since every write it made is a transaction.
                Ok(Ok(s))
                    if std::os::unix::process::ExitStatusExt::signal(&s) == Some(libc::SIGTERM) => {
                }
                Ok(Ok(s)) => unclean.push(format!("{part}: {s}")),
                Ok(Err(e)) => unclean.push(format!("{part}: {e}")),
                Err(_) => {
                    let _ = c.process.kill().await;
                    unclean.push(format!("{part}: killed after {:?}", self.grace));
                }
            }
        }
        if unclean.is_empty() {
            Ok(())
        } else {
            Err(Error::Operational(format!(
                "children did not stop cleanly: {}",
                unclean.join("; ")
            )))
        }
    }

    fn spawn(&self, program: &std::path::Path, part: &Part) -> Result<Child> {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(part.env())
            .kill_on_drop(true);
        let process = cmd
            .spawn()
            .map_err(|e| Error::Operational(format!("cannot start {program:?} for {part}: {e}")))?;
        tracing::info!(part = %part, pid = process.id(), "child started");
        Ok(Child {
            process,
            started: Instant::now(),
            crashes: 0,
            restart_at: None,
        })
    }
}

struct Child {
    process: tokio::process::Child,
    started: Instant,
    crashes: u32,
    /// Set after the child exited: when to start it again.
    restart_at: Option<Instant>,
}

/// Sends SIGTERM to process `pid` (a child of this process).
fn terminate(pid: u32) {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return;
        };
        // SAFETY: kill(2) takes two integers and touches no memory of this process; `pid` is a
        // child that has not been waited for yet, so its id cannot have been reused.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_through_the_environment() {
        let system = System::new()
            .pipeline("a | b")
            .process("a", super::super::Policy::new)
            .process("b", super::super::Policy::new);
        let s = Supervisor::new(&system).pipelines([0, 1]);
        let parts = s.parts();
        assert_eq!(parts.len(), 4);
        let env: HashMap<&str, String> = parts[3].env().into_iter().collect();
        let back = Part::from_vars(|k| env.get(k).cloned()).unwrap().unwrap();
        assert_eq!(back, parts[3]);
        assert_eq!(back.to_string(), "b (pipeline 1)");
        assert_eq!(Supervisor::new(&system).only(["b"]).parts().len(), 1);
        let one = Supervisor::new(&system)
            .pipelines([0, 1])
            .only_pipelines([1]);
        assert_eq!(one.parts().len(), 2);
        assert!(one
            .parts()
            .iter()
            .all(|p| p.pipeline_id == 1 && p.all_pipelines == [0, 1]));
        assert_eq!(Part::from_vars(|_| None).unwrap(), None);
        let bad = Part::from_vars(|k| Some(if k == ENV_APPLICATION { "a" } else { "x" }.into()));
        assert!(matches!(bad, Err(Error::Configuration(_))));
    }
}
