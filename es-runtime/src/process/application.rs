//! The process application: an application, a policy and the logs it follows.

use super::causal::{dependencies_of, Causal};
use super::deadletter::{now_micros, DeadLetters, OnPolicyError, ParkedNotification};
use super::policy::{Policy, PolicyFuture, ProcessContext};
use super::retry::is_transient;
use crate::application::{Application, Saveable};
use crate::domain::aggregate::Aggregate;
use crate::error::{Error, Result};
use crate::mapper::Mapper;
use crate::notify::{NotificationLog, NotificationLogReader};
use crate::record::{Notification, RecordKind, RecordManager, Tracking};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

/// How many notifications a process application reads from an upstream log at a time.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// What one pull did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Notifications processed and tracked by this pull (those the policy has no handler
    /// for included: they are passed over, and tracked).
    pub processed: usize,
    /// Notifications found already tracked (by another instance, or before a restart), so
    /// skipped without running the policy's results again.
    pub skipped: usize,
    /// New events written by the processing.
    pub events: usize,
    /// Notifications whose policy failed, parked instead of processed
    /// ([`OnPolicyError::Park`]).
    pub parked: usize,
    /// True when a notification waits for its causal dependencies (notifications of other
    /// pipelines not yet processed by this application): processing of that upstream stopped
    /// before it, to go on once they are processed.
    pub waiting: bool,
}

impl Progress {
    fn add(&mut self, other: Progress) {
        self.processed += other.processed;
        self.skipped += other.skipped;
        self.events += other.events;
        self.parked += other.parked;
        self.waiting |= other.waiting;
    }
}

/// One upstream log and where this application is in it.
pub(super) struct Follow {
    pub(super) name: String,
    pub(super) source: Source,
    mapper: Mapper,
    positioned: bool,
    /// Tracking records of notifications the policy has no handler for, not yet written:
    /// they go with the next write of this upstream's processing, in its transaction, or
    /// in one transaction of their own when a pull ends (see [`ProcessApplication::pull`]).
    pub(super) deferred: Vec<Tracking>,
}

/// Where notifications come from: an upstream's record manager directly (local upstreams:
/// one query per read, only new notifications), or any notification log through a reader.
pub(super) enum Source {
    Records {
        records: Arc<dyn RecordManager>,
        position: i64,
    },
    Log(NotificationLogReader),
}

impl Source {
    fn position(&self) -> i64 {
        match self {
            Source::Records { position, .. } => *position,
            Source::Log(r) => r.position(),
        }
    }

    fn seek(&mut self, to: i64) -> Result<()> {
        match self {
            Source::Records { position, .. } => {
                if to < 0 {
                    return Err(Error::BadSection(format!("position {to} is below zero")));
                }
                *position = to;
                Ok(())
            }
            Source::Log(r) => r.seek(to),
        }
    }

    /// At most `limit` notifications after the position; advances past them.
    async fn read(&mut self, limit: usize) -> Result<Vec<Notification>> {
        match self {
            Source::Records { records, position } => {
                let end = position.saturating_add(limit as i64);
                let page = records
                    .get_notifications(*position + 1, end, Some(limit))
                    .await?;
                if let Some(last) = page.last() {
                    *position = last.id;
                }
                Ok(page)
            }
            Source::Log(r) => r.read(limit).await,
        }
    }

    /// Notification `id` alone, leaving the position as it was.
    pub(super) async fn fetch(&mut self, id: i64) -> Result<Notification> {
        let page = match self {
            Source::Records { records, .. } => records.get_notifications(id, id, Some(1)).await?,
            Source::Log(r) => {
                let at = r.position();
                r.seek(id - 1)?;
                let page = r.read(1).await;
                r.seek(at)?;
                page?
            }
        };
        page.into_iter()
            .find(|n| n.id == id)
            .ok_or_else(|| Error::NotFound(format!("notification {id}")))
    }
}

fn log_parked(application: &str, p: &ParkedNotification) {
    tracing::warn!(
        application,
        upstream = %p.upstream,
        pipeline_id = p.pipeline_id,
        notification_id = p.notification_id,
        error = %p.error,
        "policy failed: notification parked"
    );
}

pub(super) enum Outcome {
    Recorded(usize),
    AlreadyTracked,
    /// The policy has no handler for the event: nothing to write but its tracking record,
    /// which the caller defers.
    Ignored,
}

pub(crate) type Prompter = Arc<dyn Fn() -> PolicyFuture + Send + Sync>;

/// An application that follows the notification logs of upstream applications and responds
/// to their events with a [`Policy`] (manual §12.2).
///
/// For each upstream notification, in order, it decodes the event, runs the policy and writes
/// the aggregates the policy saved together with a tracking record of the notification, in
/// one transaction ([`Application::save_tracked`]). A notification is therefore processed
/// exactly once: a tracking record can be written only once, and a failure before the commit
/// writes nothing, so the notification is processed again on the next pull. Where to resume
/// in each upstream log comes from the tracking records, so a new instance (after a crash or
/// a restart) continues where the last commit left off.
///
/// A notification the policy has no handler for (none for its type, and no
/// [`Policy::on_other`]) needs no transaction of its own: its tracking record is written with
/// the next notification's, in the same transaction, or together with the others left when a
/// pull ends. A crash before then only means passing over those notifications again.
///
/// Another instance that processes the same notification first makes this one's write
/// conflict on the tracking record (or its policy fail, on state that already holds the
/// results): the notification is then skipped. A conflict on an
/// aggregate (someone else changed it meanwhile) re-runs the policy on fresh state, a few
/// times. Any other failure is returned as [`Error::Processing`], and the notification stays
/// unprocessed.
///
/// It dereferences to its [`Application`] (repository, notification log). Its own
/// [`save`](ProcessApplication::save) also prompts the applications that follow it when it
/// runs in a [`Runner`](super::Runner).
///
/// ```
/// # async fn demo() -> es_runtime::Result<()> {
/// use es_runtime::application::Application;
/// use es_runtime::process::{Policy, ProcessApplication};
/// use std::sync::Arc;
/// let db: Arc<dyn es_runtime::application::Database> =
///     Arc::new(es_runtime::record::memory::InMemoryDatabase::new());
/// let orders = Arc::new(Application::builder("orders").database(db.clone()).build().await?);
/// let audit = Arc::new(Application::builder("audit").database(db).build().await?);
/// let audit = ProcessApplication::new(audit, Policy::new()).following(&orders)?;
/// let progress = audit.pull().await?;
/// assert_eq!(progress.processed, 0);
/// # Ok(()) }
/// ```
pub struct ProcessApplication {
    pub(super) app: Arc<Application>,
    policy: Arc<Policy>,
    upstreams: Vec<String>,
    pub(super) follows: tokio::sync::Mutex<Vec<Follow>>,
    prompter: OnceLock<Prompter>,
    page_size: usize,
    attempts: usize,
    dead_letters: Option<DeadLetters>,
    /// Parked notifications (upstream, id) of this pipeline, known since positioning.
    parked: Mutex<HashSet<(String, i64)>>,
    causal: Option<Causal>,
    /// Set when the runner stops: a pull ends after the notification it is processing.
    stopping: std::sync::atomic::AtomicBool,
    /// Set once the tables it needs are there (see [`ProcessApplication::ready`]).
    tables: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for ProcessApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessApplication")
            .field("name", &self.app.name())
            .field("pipeline_id", &self.app.records().pipeline_id())
            .field("upstreams", &self.upstreams)
            .field("policy", &self.policy)
            .finish()
    }
}

impl std::ops::Deref for ProcessApplication {
    type Target = Application;
    fn deref(&self) -> &Application {
        &self.app
    }
}

impl ProcessApplication {
    /// `app` responding with `policy`, following nothing yet.
    pub fn new(app: Arc<Application>, policy: Policy) -> Self {
        ProcessApplication {
            app,
            policy: Arc::new(policy),
            upstreams: Vec::new(),
            follows: tokio::sync::Mutex::new(Vec::new()),
            prompter: OnceLock::new(),
            page_size: DEFAULT_PAGE_SIZE,
            attempts: 5,
            dead_letters: None,
            parked: Mutex::new(HashSet::new()),
            causal: None,
            stopping: std::sync::atomic::AtomicBool::new(false),
            tables: tokio::sync::OnceCell::new(),
        }
    }

    /// Makes sure the tables it needs besides its application's are there: the tracking
    /// table, and the snapshot table that holds parked notifications when
    /// [`parking_failures`](ProcessApplication::parking_failures) is set. When its application
    /// creates its tables ([`Application::creates_tables`]) they are created if missing;
    /// otherwise a missing one is an [`Error::Configuration`] that names it. Pulls, positions
    /// and the calls on parked notifications do this first (once); a
    /// [`Runner`](super::Runner) does it when it starts.
    pub async fn ready(&self) -> Result<()> {
        self.tables
            .get_or_try_init(|| async {
                let create = self.app.creates_tables();
                let name = self.app.name();
                crate::application::tables::tracking(self.app.records().as_ref(), create, name)
                    .await?;
                if let Some(dl) = &self.dead_letters {
                    if create {
                        crate::application::tables::create(
                            dl.records.as_ref(),
                            &[crate::record::Table::Snapshots],
                        )
                        .await?;
                    }
                    crate::application::tables::check_items(dl.records.as_ref(), name).await?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Follows the notification log of `upstream` (which may be this application itself),
    /// reading its record manager directly.
    pub fn following(mut self, upstream: &Application) -> Result<Self> {
        let records = upstream.records().clone();
        if records.kind() != RecordKind::Events {
            return Err(Error::Configuration(format!(
                "{} has no event table to follow",
                upstream.name()
            )));
        }
        self.upstreams.push(upstream.name().to_string());
        self.follows.get_mut().push(Follow {
            name: upstream.name().to_string(),
            source: Source::Records {
                records,
                position: 0,
            },
            mapper: upstream.mapper().clone(),
            positioned: false,
            deferred: Vec::new(),
        });
        Ok(self)
    }

    /// Follows any notification log (for example a remote one over HTTP) of the application
    /// called `upstream`, decoding its events with `mapper` (the upstream's: same cipher).
    pub fn following_log(
        mut self,
        upstream: &str,
        log: Arc<dyn NotificationLog>,
        mapper: Mapper,
    ) -> Self {
        self.upstreams.push(upstream.to_string());
        self.follows.get_mut().push(Follow {
            name: upstream.to_string(),
            source: Source::Log(NotificationLogReader::new(log)),
            mapper,
            positioned: false,
            deferred: Vec::new(),
        });
        self
    }

    /// Reads at most `n` notifications of an upstream log at a time (100 by default).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Runs the policy at most `n` times for one notification when its results conflict with
    /// a concurrent change of the same aggregates (5 by default).
    pub fn with_attempts(mut self, n: usize) -> Self {
        self.attempts = n.max(1);
        self
    }

    /// Parks a notification its policy fails on ([`OnPolicyError::Park`]) in dead-letter
    /// records of `db` (the application's database), and goes on with the next one, instead of
    /// stopping. Transient failures ([`is_transient`](super::is_transient)) are never parked.
    pub fn parking_failures(mut self, db: &dyn crate::application::Database) -> Self {
        self.dead_letters = Some(DeadLetters::new(db, self.app.name()));
        self
    }

    /// What happens when the policy fails: [`OnPolicyError::Park`] once
    /// [`ProcessApplication::parking_failures`] is set, else [`OnPolicyError::Stop`].
    pub fn on_policy_error(&self) -> OnPolicyError {
        if self.dead_letters.is_some() {
            OnPolicyError::Park
        } else {
            OnPolicyError::Stop
        }
    }

    /// Records causal dependencies and waits for them (manual §12.3.5), for systems run with
    /// several pipelines: with the first new event of each process event, the notifications
    /// of other pipelines that the saved aggregates' last events came from (the newest per
    /// pipeline); and a notification whose dependencies this application has not processed
    /// yet in their pipelines (its tracking records in `db`) waits, and is processed once they
    /// are, in order ([`Progress::waiting`]).
    pub fn with_causal_dependencies(mut self, db: Arc<dyn crate::application::Database>) -> Self {
        self.causal = Some(Causal::new(db));
        self
    }

    /// The notification (upstream, id) waiting for its causal dependencies, if one is.
    pub fn waiting_on(&self) -> Option<(String, i64)> {
        self.causal.as_ref().and_then(Causal::waiting_on)
    }

    async fn dependencies_met(&self, upstream: &str, n: &Notification) -> Result<bool> {
        match &self.causal {
            Some(c) => c.met(self.app.name(), upstream, n).await,
            None => Ok(true),
        }
    }

    async fn dependencies_of(
        &self,
        touched: &[Box<dyn super::policy::Touched>],
    ) -> Result<Option<String>> {
        match &self.causal {
            Some(_) => dependencies_of(&self.app, touched).await,
            None => Ok(None),
        }
    }

    pub(super) fn dead_letters(&self) -> Result<&DeadLetters> {
        self.dead_letters.as_ref().ok_or_else(|| {
            Error::Configuration(format!(
                "{} does not park failures (see ProcessApplication::parking_failures)",
                self.app.name()
            ))
        })
    }

    pub(super) fn parked_ids(&self) -> std::sync::MutexGuard<'_, HashSet<(String, i64)>> {
        self.parked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn processing_error(&self, upstream: &str, notification_id: i64, e: Error) -> Error {
        Error::Processing {
            application: self.app.name().to_string(),
            upstream: upstream.to_string(),
            notification_id,
            source: Box::new(e),
        }
    }

    /// The application.
    pub fn app(&self) -> &Arc<Application> {
        &self.app
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The names of the applications followed, in the order they were added.
    pub fn upstreams(&self) -> &[String] {
        &self.upstreams
    }

    /// Ends pulls after the notification being processed (a runner stops).
    pub(crate) fn interrupt(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn set_prompter(&self, prompter: Prompter) {
        let _ = self.prompter.set(prompter);
    }

    /// Saves an aggregate (outside of any notification: a command from a user), then prompts
    /// the applications that follow this one, if it runs in a runner. With the single-threaded
    /// runner, they have processed everything that followed from this save when it returns,
    /// and a failure of theirs is returned here (as [`Error::Processing`]; the save itself is
    /// committed).
    pub async fn save<A: Aggregate>(&self, aggregate: &mut A) -> Result<()> {
        self.save_all(&mut [aggregate as &mut dyn Saveable]).await
    }

    /// Saves several aggregates in one transaction, then prompts as [`ProcessApplication::save`].
    pub async fn save_all(&self, aggregates: &mut [&mut dyn Saveable]) -> Result<()> {
        self.app.save_all(aggregates).await?;
        self.prompt().await
    }

    /// Tells the runner (if any) that this application has new events.
    pub async fn prompt(&self) -> Result<()> {
        match self.prompter.get() {
            Some(p) => p().await,
            None => Ok(()),
        }
    }

    /// Processes every notification not yet processed, from every upstream log, until none
    /// is left.
    pub async fn pull(&self) -> Result<Progress> {
        self.pull_some(None, usize::MAX).await.map(|(p, _)| p)
    }

    /// Processes every notification not yet processed from the log of `upstream` only.
    pub async fn pull_from(&self, upstream: &str) -> Result<Progress> {
        if !self.upstreams.iter().any(|u| u == upstream) {
            return Err(Error::Configuration(format!(
                "{} does not follow {upstream}",
                self.app.name()
            )));
        }
        self.pull_some(Some(upstream), usize::MAX)
            .await
            .map(|(p, _)| p)
    }

    /// Processes at most `budget` notifications; also says whether the logs were exhausted.
    pub(crate) async fn pull_some(
        &self,
        only: Option<&str>,
        budget: usize,
    ) -> Result<(Progress, bool)> {
        self.ready().await?;
        let mut follows = self.follows.lock().await;
        let mut total = Progress::default();
        loop {
            let mut round = 0;
            for f in follows
                .iter_mut()
                .filter(|f| only.is_none_or(|o| o == f.name))
            {
                let left = budget.saturating_sub(total.processed + total.skipped);
                if left == 0 {
                    return Ok((total, false));
                }
                let p = self.pull_follow(f, left).await?;
                round += p.processed + p.skipped;
                total.add(p);
            }
            if round == 0 {
                return Ok((total, true));
            }
        }
    }

    /// Rewinds the position in the log of `upstream` to `position` (the next notification
    /// processed is `position + 1`). Notifications already tracked are skipped again, so this
    /// only costs reads; after a restart the position comes from the tracking records anyway.
    pub async fn rewind(&self, upstream: &str, position: i64) -> Result<()> {
        let mut follows = self.follows.lock().await;
        let f = follows
            .iter_mut()
            .find(|f| f.name == upstream)
            .ok_or_else(|| {
                Error::Configuration(format!("{} does not follow {upstream}", self.app.name()))
            })?;
        f.source.seek(position)?;
        f.positioned = true;
        // Read again, they are deferred again.
        f.deferred.retain(|t| t.notification_id <= position);
        Ok(())
    }

    /// The position in each upstream log: the last notification processed or skipped by this
    /// instance (before the first pull, where the tracking records say to resume).
    pub async fn positions(&self) -> Result<Vec<(String, i64)>> {
        self.ready().await?;
        let mut follows = self.follows.lock().await;
        let mut out = Vec::new();
        for f in follows.iter_mut() {
            self.position(f).await?;
            out.push((f.name.clone(), f.source.position()));
        }
        Ok(out)
    }

    async fn position(&self, f: &mut Follow) -> Result<()> {
        if !f.positioned {
            let tracked = self.app.records().max_tracking_id(&f.name).await?;
            f.source.seek(tracked)?;
            if let Some(dl) = &self.dead_letters {
                let parked = dl.list(self.app.records().pipeline_id()).await?;
                let mut ids = self.parked_ids();
                ids.extend(
                    parked
                        .into_iter()
                        .filter(|p| p.upstream == f.name)
                        .map(|p| (p.upstream, p.notification_id)),
                );
            }
            f.positioned = true;
        }
        Ok(())
    }

    fn is_parked(&self, upstream: &str, id: i64) -> bool {
        self.dead_letters.is_some() && {
            let ids = self.parked_ids();
            !ids.is_empty() && ids.contains(&(upstream.to_string(), id))
        }
    }

    /// Parks notification `id` of `f` after its policy failed with `e`.
    async fn park(&self, f: &Follow, id: i64, e: &Error) -> Result<()> {
        let dl = self.dead_letters()?;
        let parked = ParkedNotification {
            upstream: f.name.clone(),
            pipeline_id: self.app.records().pipeline_id(),
            notification_id: id,
            error: e.to_string(),
            parked_at_micros: now_micros(),
        };
        dl.park(&parked).await?;
        log_parked(self.app.name(), &parked);
        self.parked_ids().insert((f.name.clone(), id));
        Ok(())
    }

    /// Processes notifications of `f`, then writes the tracking records left deferred (also
    /// after a failure: what was passed over before it stays passed over).
    async fn pull_follow(&self, f: &mut Follow, budget: usize) -> Result<Progress> {
        let pulled = self.pull_follow_deferring(f, budget).await;
        let flushed = self.flush_deferred(f).await;
        let done = pulled?;
        flushed.map(|()| done)
    }

    async fn pull_follow_deferring(&self, f: &mut Follow, budget: usize) -> Result<Progress> {
        self.position(f).await?;
        let mut done = Progress::default();
        'pages: while done.processed + done.skipped < budget {
            let want = self.page_size.min(budget - done.processed - done.skipped);
            let page = f.source.read(want).await?;
            let last_page = page.len() < want;
            if page.is_empty() {
                break;
            }
            for n in page {
                let id = n.id;
                if self.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    f.source.seek(id - 1)?;
                    return Ok(done);
                }
                if self.is_parked(&f.name, id) {
                    done.skipped += 1;
                    continue;
                }
                let met = match self.dependencies_met(&f.name, &n).await {
                    Ok(met) => met,
                    Err(e) => {
                        f.source.seek(id - 1)?;
                        return Err(self.processing_error(&f.name, id, e));
                    }
                };
                if !met {
                    // Not yet: the next pull starts with this notification again.
                    f.source.seek(id - 1)?;
                    done.waiting = true;
                    return Ok(done);
                }
                let span = crate::telemetry::span!(INFO, "es.process", application = self.app.name(), upstream = %f.name, notification_id = id, events = tracing::field::Empty, attempts = tracing::field::Empty);
                match crate::telemetry::timed(span, self.process(f, n)).await {
                    Ok(Outcome::Recorded(events)) => {
                        done.processed += 1;
                        done.events += events;
                    }
                    Ok(Outcome::Ignored) => {
                        done.processed += 1;
                        f.deferred.push(Tracking {
                            upstream_application: f.name.clone(),
                            notification_id: id,
                        });
                    }
                    Ok(Outcome::AlreadyTracked) => {
                        done.skipped += 1;
                        // Someone else is ahead: continue after what they have tracked.
                        let tracked = self.app.records().max_tracking_id(&f.name).await?;
                        if tracked > id {
                            f.source.seek(tracked)?;
                            continue 'pages;
                        }
                    }
                    Err(e) if self.dead_letters.is_some() && !is_transient(&e) => {
                        if let Err(p) = self.park(f, id, &e).await {
                            f.source.seek(id - 1)?;
                            return Err(self.processing_error(&f.name, id, p));
                        }
                        done.parked += 1;
                    }
                    Err(e) => {
                        // Not processed: the next pull starts with this notification again.
                        f.source.seek(id - 1)?;
                        return Err(self.processing_error(&f.name, id, e));
                    }
                }
            }
            if last_page {
                break;
            }
        }
        Ok(done)
    }

    /// Writes the deferred tracking records of `f` in one transaction. Those another
    /// instance wrote first (a conflict) are dropped: they only said "nothing to do".
    pub(super) async fn flush_deferred(&self, f: &mut Follow) -> Result<()> {
        if f.deferred.is_empty() {
            return Ok(());
        }
        self.app.write_tracking(&f.deferred).await?;
        f.deferred.clear();
        Ok(())
    }

    /// One process event: the policy's response to one notification, recorded atomically
    /// with its tracking record.
    pub(super) async fn process(&self, f: &mut Follow, n: Notification) -> Result<Outcome> {
        let event = f.mapper.from_item(&n.item)?;
        if self.policy.ignores(event.topic()) {
            crate::telemetry::count_processed(
                self.app.name(),
                &f.name,
                event.timestamp().as_micros(),
            );
            return Ok(Outcome::Ignored);
        }
        let tracking = Tracking {
            upstream_application: f.name.clone(),
            notification_id: n.id,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ctx = ProcessContext::for_notification(self.app.clone(), &f.name, n.id);
            if let Err(e) = self.policy.handle(ctx.clone(), event.clone()).await {
                // Run again on state that already holds its results (another instance got
                // there first, or a rewind), a policy may well fail: then it is done.
                if self.is_tracked(f, n.id).await? {
                    return Ok(Outcome::AlreadyTracked);
                }
                return Err(e);
            }
            let mut touched = ctx.take();
            let tx = ctx.take_tx().await;
            let events = touched.iter().map(|t| t.pending().len()).sum();
            let deps = self.dependencies_of(&touched).await?;
            let mut saveables: Vec<&mut dyn Saveable> =
                touched.iter_mut().map(|t| t.saveable()).collect();
            match self
                .app
                .save_processed(
                    &mut saveables,
                    Some(tracking.clone()),
                    deps,
                    tx,
                    &f.deferred,
                )
                .await
            {
                Ok(()) => {
                    f.deferred.clear();
                    crate::telemetry::record("events", events as u64);
                    crate::telemetry::record("attempts", attempt as u64);
                    crate::telemetry::count_processed(
                        self.app.name(),
                        &f.name,
                        event.timestamp().as_micros(),
                    );
                    return Ok(Outcome::Recorded(events));
                }
                Err(e) if e.is_conflict() => {
                    if self.is_tracked(f, n.id).await? {
                        return Ok(Outcome::AlreadyTracked);
                    }
                    if !f.deferred.is_empty() {
                        // Perhaps a deferred record that another instance wrote first: those
                        // only said "nothing to do", so go on without them.
                        f.deferred.clear();
                        continue;
                    }
                    if attempt >= self.attempts {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn is_tracked(&self, f: &Follow, notification_id: i64) -> Result<bool> {
        self.app
            .records()
            .has_tracking_record(&f.name, notification_id)
            .await
    }
}
