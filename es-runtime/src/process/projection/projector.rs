//! The projector: follows upstream logs and applies their events to a projection.

use super::{Progress, Projection};
use crate::application::{Application, Database};
use crate::error::{Error, Result};
use crate::mapper::Mapper;
use crate::process::lease::Leases;
use crate::process::prompt::Prompts;
use crate::process::Backoff;
use crate::record::{Notification, RecordKind, RecordManager, Tracking};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How many notifications a projector commits in one transaction unless told otherwise.
pub const DEFAULT_BATCH: usize = 500;

/// One upstream log.
pub(super) struct Upstream {
    pub(super) name: String,
    records: Arc<dyn RecordManager>,
    mapper: Mapper,
    pub(super) writes: Option<watch::Receiver<u64>>,
}

/// Where a rebuild is: reported after each commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebuildProgress {
    /// The upstream application being replayed.
    pub upstream: String,
    /// The last notification applied.
    pub position: i64,
    /// The upstream's last notification when the rebuild started.
    pub target: i64,
}

/// Follows the notification logs of upstream applications and applies their events to a
/// [`Projection`] exactly once (see the [module documentation](super)).
///
/// Built with [`Projector::new`] and [`Projector::following`]; driven by
/// [`Projector::catch_up`] (for tests and one-off jobs) or [`Projector::start`] (a task).
pub struct Projector<P> {
    projection: Arc<P>,
    db: Arc<dyn Database>,
    name: String,
    pipeline_id: i64,
    records: Arc<dyn RecordManager>,
    pub(super) upstreams: Vec<Upstream>,
    batch: usize,
    pub(super) poll: Duration,
    pub(super) backoff: Backoff,
    pub(super) leases: Option<Arc<dyn Leases>>,
    pub(super) lease_interval: Duration,
    pub(super) prompts: Option<Arc<dyn Prompts>>,
    /// Positions by upstream (`None` until read from the tracking records); held while a
    /// catch-up or rebuild runs, so they never run at once.
    positions: tokio::sync::Mutex<Vec<Option<i64>>>,
    create_tables: bool,
    /// Set once the tracking table is there.
    tables: tokio::sync::OnceCell<()>,
}

impl<P> std::fmt::Debug for Projector<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("name", &self.name)
            .field("pipeline_id", &self.pipeline_id)
            .field(
                "upstreams",
                &self.upstreams.iter().map(|u| &u.name).collect::<Vec<_>>(),
            )
            .field("batch", &self.batch)
            .finish()
    }
}

/// How committing a page failed: at which notification (`None`: the commit itself).
struct Failed {
    at: Option<usize>,
    error: Error,
}

impl<P: Projection> Projector<P> {
    /// A projector of `projection`, keeping its tracking records in `db` under the
    /// projection's name, following nothing yet.
    pub fn new(projection: P, db: Arc<dyn Database>) -> Self {
        let name = projection.name().to_string();
        let records = db.record_manager(RecordKind::Events, &name, 0);
        let create_tables = db.creates_tables();
        Projector {
            create_tables,
            tables: tokio::sync::OnceCell::new(),
            projection: Arc::new(projection),
            db,
            name,
            pipeline_id: 0,
            records,
            upstreams: Vec::new(),
            batch: DEFAULT_BATCH,
            poll: Duration::from_millis(100),
            backoff: Backoff::default(),
            leases: None,
            lease_interval: Duration::from_millis(500),
            prompts: None,
            positions: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// With `true`, creates the tracking table it keeps its positions in, if it is missing,
    /// before it first reads them (the default for a database made by
    /// [`connect`](crate::application::connect)); the projection's own rows are the
    /// projection's business. Otherwise a missing tracking table is an
    /// [`Error::Configuration`] that names it.
    pub fn create_tables(mut self, create: bool) -> Self {
        self.create_tables = create;
        self
    }

    /// Makes sure the tracking table is there (see [`Projector::create_tables`]); catching
    /// up, rebuilding, positions and lag do this first, once.
    pub async fn ready(&self) -> Result<()> {
        self.tables
            .get_or_try_init(|| {
                crate::application::tables::tracking(
                    self.records.as_ref(),
                    self.create_tables,
                    &self.name,
                )
            })
            .await
            .map(|_| ())
    }

    /// Keeps the tracking records under `name` instead of the projection's own (two
    /// instances of one projection type, or a namespace in tests).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self.records = self
            .db
            .record_manager(RecordKind::Events, &self.name, self.pipeline_id);
        self
    }

    /// Tracks in pipeline `id` (default 0): follow the upstreams' notifications of the same
    /// pipeline.
    pub fn pipeline_id(mut self, id: i64) -> Self {
        self.pipeline_id = id;
        self.records = self
            .db
            .record_manager(RecordKind::Events, &self.name, self.pipeline_id);
        self
    }

    /// Follows the notification log of `upstream`, reading its record manager directly and
    /// decoding with its mapper; woken by its saves when started.
    pub fn following(mut self, upstream: &Application) -> Result<Self> {
        let records = upstream.records().clone();
        if records.kind() != RecordKind::Events {
            return Err(Error::Configuration(format!(
                "{} has no event table to follow",
                upstream.name()
            )));
        }
        if self.upstreams.iter().any(|u| u.name == upstream.name()) {
            return Err(Error::Configuration(format!(
                "{} already follows {}",
                self.name,
                upstream.name()
            )));
        }
        self.upstreams.push(Upstream {
            name: upstream.name().to_string(),
            records,
            mapper: upstream.mapper().clone(),
            writes: Some(upstream.watch_writes()),
        });
        self.positions.get_mut().push(None);
        Ok(self)
    }

    /// Commits at most `n` notifications per transaction (default [`DEFAULT_BATCH`]).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// When started: how often to look for notifications written elsewhere (default 100 ms).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// When started: how transient failures (a lost connection, a timeout: see
    /// [`is_transient`](crate::process::is_transient)) are retried before the projection
    /// stops (default [`Backoff::default`]). A handler's own error is not retried: it stops
    /// the projection at once, as it would fail again.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// When started: takes the lease of this projection and pipeline before applying
    /// anything, so that of several instances (processes, hosts) one applies and the others
    /// stand by, taking over within about `lease_interval` when the holder stops or dies (see
    /// [`lease`](crate::process::lease); the key is `"{name}#{pipeline}"`). Tracking records
    /// stay the backstop.
    pub fn leases(mut self, leases: Arc<dyn Leases>) -> Self {
        self.leases = Some(leases);
        self
    }

    /// How often a standby tries, and the holder checks, the lease (default 500 ms).
    pub fn lease_interval(mut self, every: Duration) -> Self {
        self.lease_interval = every;
        self
    }

    /// When started: also wakes on prompts from other processes (PostgreSQL `NOTIFY`, sent by
    /// runners and by applications built with
    /// [`ApplicationBuilder::prompts`](crate::application::ApplicationBuilder::prompts)) for
    /// the upstreams it follows, in its pipeline; polling stays the fallback.
    pub fn prompts(mut self, prompts: Arc<dyn Prompts>) -> Self {
        self.prompts = Some(prompts);
        self
    }

    /// The pipeline it tracks in.
    pub fn pipeline(&self) -> i64 {
        self.pipeline_id
    }

    /// The names of the upstream applications it follows.
    pub fn upstream_names(&self) -> Vec<String> {
        self.upstreams.iter().map(|u| u.name.clone()).collect()
    }

    /// The name the tracking records are kept under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// The record manager the tracking records are written with (its `begin_tx` gives a
    /// transaction on the projection's backend, to read or set up its tables).
    pub fn records(&self) -> &Arc<dyn RecordManager> {
        &self.records
    }

    /// The last notification applied of each upstream, from the tracking records.
    pub async fn positions(&self) -> Result<Vec<(String, i64)>> {
        self.ready().await?;
        let mut out = Vec::new();
        for u in &self.upstreams {
            out.push((u.name.clone(), self.records.max_tracking_id(&u.name).await?));
        }
        Ok(out)
    }

    /// How many notifications are not applied yet: the upstreams' last ids minus the
    /// positions, summed.
    pub async fn lag(&self) -> Result<i64> {
        self.ready().await?;
        let mut lag = 0;
        for u in &self.upstreams {
            let last = u.records.max_notification_id().await?;
            let at = self.records.max_tracking_id(&u.name).await?;
            lag += (last - at).max(0);
        }
        Ok(lag)
    }

    /// Applies every notification not yet applied, from every upstream, until none is left.
    pub async fn catch_up(&self) -> Result<Progress> {
        let mut positions = self.positions.lock().await;
        Ok(self.run(&mut positions, usize::MAX, &mut |_| {}).await?.0)
    }

    /// Like [`Projector::catch_up`], but commits at most `commits` batches; also says whether
    /// it reached the end of every upstream log.
    pub async fn catch_up_some(&self, commits: usize) -> Result<(Progress, bool)> {
        let mut positions = self.positions.lock().await;
        self.run(&mut positions, commits, &mut |_| {}).await
    }

    /// Empties the projection (its `reset`) and its tracking records in one transaction, then
    /// replays every upstream from notification 1, calling `progress` after each commit.
    /// Ends with the same rows as applying the notifications one by one as they came.
    pub async fn rebuild(
        &self,
        mut progress: impl FnMut(&RebuildProgress) + Send,
    ) -> Result<Progress> {
        self.ready().await?;
        let mut positions = self.positions.lock().await;
        let mut tx = self.records.begin_tx().await?;
        self.projection
            .reset(&mut tx)
            .await
            .map_err(|e| Error::handler(&format!("{}::reset", self.name), e))?;
        tx.clear_tracking();
        tx.commit_tracked(None, &[]).await?;
        positions.iter_mut().for_each(|p| *p = Some(0));
        let mut targets = Vec::new();
        for u in &self.upstreams {
            targets.push((u.name.clone(), u.records.max_notification_id().await?));
        }
        let mut report = |(upstream, position): (&str, i64)| {
            let target = targets
                .iter()
                .find(|(n, _)| n == upstream)
                .map_or(0, |(_, t)| *t);
            progress(&RebuildProgress {
                upstream: upstream.to_string(),
                position,
                target,
            })
        };
        Ok(self.run(&mut positions, usize::MAX, &mut report).await?.0)
    }

    /// Applies pages until every upstream is exhausted or `commits` pages were committed;
    /// true if every upstream was exhausted.
    async fn run(
        &self,
        positions: &mut [Option<i64>],
        commits: usize,
        report: &mut (dyn FnMut((&str, i64)) + Send),
    ) -> Result<(Progress, bool)> {
        self.ready().await?;
        let mut total = Progress::default();
        for (u, slot) in self.upstreams.iter().zip(positions.iter_mut()) {
            let mut at = match *slot {
                Some(p) => p,
                None => self.records.max_tracking_id(&u.name).await?,
            };
            *slot = Some(at);
            loop {
                if total.commits >= commits {
                    return Ok((total, false));
                }
                let page = u
                    .records
                    .get_notifications(
                        at + 1,
                        at.saturating_add(self.batch as i64),
                        Some(self.batch),
                    )
                    .await?;
                let Some(last) = page.last().map(|n| n.id) else {
                    break;
                };
                match self.commit(u, &page).await {
                    Ok(p) => {
                        total.add(p);
                        at = last;
                    }
                    Err(f) => {
                        let tracked = self.records.max_tracking_id(&u.name).await?;
                        if f.error.is_conflict() && f.at.is_none() && tracked > at {
                            // Another instance committed these first: continue after it.
                            at = tracked;
                            *slot = Some(at);
                            continue;
                        }
                        let failed = f.at.unwrap_or(0);
                        if failed > 0 {
                            total.add(self.commit(u, &page[..failed]).await.map_err(|g| g.error)?);
                            at = page[failed - 1].id;
                        }
                        *slot = Some(at);
                        return Err(Error::Processing {
                            application: self.name.clone(),
                            upstream: u.name.clone(),
                            notification_id: page[failed].id,
                            source: Box::new(f.error),
                        });
                    }
                }
                *slot = Some(at);
                report((&u.name, at));
                if page.len() < self.batch {
                    break;
                }
            }
        }
        Ok((total, true))
    }

    /// Applies `page` in one transaction with its tracking records.
    async fn commit(&self, u: &Upstream, page: &[Notification]) -> Result<Progress, Failed> {
        let failed_at = |k: usize| move |error| Failed { at: Some(k), error };
        let mut tx = self
            .records
            .begin_tx()
            .await
            .map_err(|error| Failed { at: None, error })?;
        let mut applied = 0;
        for (k, n) in page.iter().enumerate() {
            let topic = if u.mapper.encrypts() {
                Cow::Owned(u.mapper.decode_topic(&n.item.topic).map_err(failed_at(k))?)
            } else {
                Cow::Borrowed(&*n.item.topic)
            };
            if !self.projection.handles(&topic) {
                continue;
            }
            let event = u.mapper.from_item(&n.item).map_err(failed_at(k))?;
            tx.enter_notification(k);
            self.projection
                .apply(&mut tx, event.as_ref())
                .await
                .map_err(failed_at(k))?;
            applied += 1;
        }
        let tracking: Vec<Tracking> = page
            .iter()
            .map(|n| Tracking {
                upstream_application: u.name.clone(),
                notification_id: n.id,
            })
            .collect();
        tx.commit_scoped(None, &tracking)
            .await
            .map_err(|(at, error)| Failed { at, error })?;
        Ok(Progress {
            notifications: page.len(),
            applied,
            commits: 1,
        })
    }

    /// Starts a task that keeps the projection caught up (see [`super::ProjectionHandle`]).
    /// Needs a tokio runtime.
    pub fn start(self) -> super::ProjectionHandle<P> {
        super::handle::start(self)
    }
}
