//! Health of the followers a runner runs: one report per (application, pipeline).

use std::sync::{Arc, Mutex};

/// What a follower is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Processing, or idle and waiting for new notifications.
    Running,
    /// Another instance holds the lease of this application and pipeline: standing by.
    WaitingForLease,
    /// A notification waits for its causal dependencies (notifications of other pipelines)
    /// to be processed first.
    WaitingForDependencies {
        /// The upstream application.
        upstream: String,
        /// The notification that waits.
        notification_id: i64,
    },
    /// A transient failure: retrying after a backoff.
    Retrying {
        /// Retries in a row so far.
        attempt: u32,
        /// The failure.
        error: String,
    },
    /// Stopped after a failure that retrying did not fix (a policy's own error, or too many
    /// transient failures in a row); a new runner resumes where it stopped.
    Stopped {
        /// The failure.
        error: String,
    },
    /// Stopped by [`Runner::stop`](super::Runner::stop) or a shutdown signal.
    Finished,
}

/// The health of one follower: its state, where it is in each upstream log (its tracking
/// records), and how far behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The application's system name.
    pub application: String,
    /// The pipeline.
    pub pipeline_id: i64,
    /// What it is doing.
    pub state: State,
    /// Per upstream: the last notification tracked.
    pub positions: Vec<(String, i64)>,
    /// Notifications of its upstreams not yet tracked, in all.
    pub lag: i64,
}

/// A follower's state, shared between its task and the runner.
#[derive(Clone, Debug)]
pub(crate) struct StateCell(Arc<Mutex<State>>);

impl StateCell {
    pub(crate) fn new(state: State) -> Self {
        StateCell(Arc::new(Mutex::new(state)))
    }

    pub(crate) fn set(&self, state: State) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    pub(crate) fn get(&self) -> State {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
