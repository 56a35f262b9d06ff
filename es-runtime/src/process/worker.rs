//! The concurrent runner's task for one (application, pipeline): the shared follower loop
//! ([`super::follow`]) over a process application.

use super::application::ProcessApplication;
use super::follow::{self, Follower, Pulled};
use super::runner::Inner;
use crate::error::Result;
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::watch;

/// How a task works: the follower settings and the notifications per pull.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) follow: follow::Settings,
    /// Notifications per pull.
    pub(super) batch: usize,
}

/// A process application as the follower loop drives it.
struct AppFollower<'a> {
    inner: &'a Inner,
    key: &'a (String, i64),
    pa: &'a ProcessApplication,
    batch: usize,
}

#[async_trait]
impl Follower for AppFollower<'_> {
    fn name(&self) -> &str {
        &self.key.0
    }

    fn pipeline(&self) -> i64 {
        self.key.1
    }

    async fn pull(&self) -> Result<Pulled> {
        let (progress, exhausted) = self.pa.pull_some(None, self.batch).await?;
        Ok(Pulled {
            progressed: progress.events > 0,
            exhausted,
            waiting: progress.waiting,
            waiting_on: progress.waiting.then(|| self.pa.waiting_on()).flatten(),
        })
    }

    async fn progressed(&self) {
        let (name, pipeline) = (self.key.0.as_str(), self.key.1);
        self.inner.wake_followers(name, pipeline);
        if let Err(e) = self.inner.prompt_others(name, pipeline).await {
            // Followers elsewhere poll: a lost prompt only delays them.
            tracing::warn!(application = name, pipeline, error = %e, "prompt not sent");
        }
    }
}

/// Processes notifications of application `key` until the runner stops or a failure that
/// retrying does not fix, holding its lease (if the runner has leases) meanwhile; keeps its
/// state up to date and records the failure that stopped it.
pub(super) async fn run(
    inner: Arc<Inner>,
    key: (String, i64),
    stopped: watch::Receiver<bool>,
    s: Settings,
) {
    let (Some(pa), Some(state), Some(waker)) = (
        inner.apps.get(&key).cloned(),
        inner.states.get(&key).cloned(),
        inner.wakers.get(&key).cloned(),
    ) else {
        return;
    };
    let lease_key = format!("{}#{}", pa.name(), key.1);
    let f = AppFollower {
        inner: &inner,
        key: &key,
        pa: &pa,
        batch: s.batch,
    };
    if let Err(e) = follow::follow(&f, &lease_key, &state, &waker, stopped, &s.follow).await {
        inner.record(&key, e);
    }
}

/// Wakes this process's followers when their upstreams commit in other processes, until the
/// runner stops.
pub(super) async fn listen(inner: Arc<Inner>, stopped: watch::Receiver<bool>) {
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
    let waking = inner.clone();
    follow::listen(prompts, channels, stopped, move |app, p| {
        if let Some(name) = app.strip_prefix(waking.namespace.as_str()) {
            waking.wake_followers(name, p);
        }
    })
    .await;
}
