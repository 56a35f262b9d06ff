//! Applications: an event store, a repository, snapshots and a notification log, together.
//!
//! ```
//! # use es_runtime::application::Application;
//! # async fn demo() -> es_runtime::Result<()> {
//! let app = Application::builder("bank").memory().snapshot_period(50).build().await?;
//! # let _ = app; Ok(()) }
//! ```

pub mod commands;
pub mod config;
pub mod own_tx;
pub mod repository;
pub mod snapshot;
pub(crate) mod tables;

pub use commands::Retry;
pub use config::{connect, connect_backend, Config};
pub use own_tx::{OwnTransaction, Saved};
pub use repository::Repository;

use crate::domain::aggregate::Aggregate;
use crate::domain::event::AnyEvent;
use crate::domain::integrity::HashConfig;
use crate::domain::pubsub::PubSub;
use crate::error::{Error, Result};
use crate::mapper::{Cipher, Mapper};
use crate::record::mapped::TableSpec;
use crate::record::memory::InMemoryDatabase;
use crate::record::{RecordBatch, RecordKind, RecordManager, Table, Tracking};
use crate::store::EventStore;
use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Which events an application persists.
pub type PersistFilter = Arc<dyn Fn(&dyn AnyEvent) -> bool + Send + Sync>;

/// The batch of a save to be written in a transaction of your own
/// ([`Application::prepare_batch`]); dereferences to the [`RecordBatch`]. The aggregates'
/// events stay pending until [`PreparedBatch::confirm`], so a transaction that rolls back
/// (or a prepared batch that is dropped) leaves them as they were.
#[must_use = "call confirm() once the transaction has committed"]
pub struct PreparedBatch<'a, 's> {
    app: &'a Application,
    aggregates: Vec<&'s mut dyn Saveable>,
    batch: RecordBatch,
}

impl std::fmt::Debug for PreparedBatch<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedBatch")
            .field("items", &self.batch.items.len())
            .field("aggregates", &self.aggregates.len())
            .finish()
    }
}

impl std::ops::Deref for PreparedBatch<'_, '_> {
    type Target = RecordBatch;
    fn deref(&self) -> &RecordBatch {
        &self.batch
    }
}

impl PreparedBatch<'_, '_> {
    /// Call once the transaction that wrote the batch has committed: the events are no longer
    /// pending, and the application does what a save does afterwards (refreshes its cache,
    /// takes the snapshots that are due).
    pub async fn confirm(self) -> Result<()> {
        let mut aggregates = self.aggregates;
        self.app.saved(&mut aggregates).await
    }
}

/// Something whose pending events can be saved: every [`Aggregate`].
pub trait Saveable: Send {
    /// The pending events, in order.
    fn pending(&self) -> &[Box<dyn AnyEvent>];
    /// Forgets the pending events (once they are saved), keeping the list's capacity.
    fn clear_pending(&mut self);
    /// The aggregate's current version.
    fn current_version(&self) -> u64;
    /// A snapshot item of the current state.
    fn snapshot_item(&self, mapper: &Mapper) -> Result<crate::record::SequencedItem>;
    /// Drops or refreshes cached copies after a save.
    fn cache_into(&self, app: &Application);
    /// Re-hashes the pending events with `hashing` if they were hashed with other settings
    /// (see [`rehash_pending`](crate::domain::aggregate::rehash_pending)).
    fn rehash(&mut self, hashing: &Arc<HashConfig>) -> Result<()>;
}

impl<A: Aggregate> Saveable for A {
    fn pending(&self) -> &[Box<dyn AnyEvent>] {
        self.pending_events()
    }
    fn clear_pending(&mut self) {
        self.meta_mut().pending.clear();
    }
    fn current_version(&self) -> u64 {
        self.version()
    }
    fn snapshot_item(&self, mapper: &Mapper) -> Result<crate::record::SequencedItem> {
        snapshot::to_item(mapper, self)
    }
    fn rehash(&mut self, hashing: &Arc<HashConfig>) -> Result<()> {
        crate::domain::aggregate::rehash_pending(self.meta_mut(), hashing)
    }
    fn cache_into(&self, app: &Application) {
        if self.is_discarded() {
            app.cache_remove(self.id());
        } else {
            app.cache_put(self);
        }
    }
}

/// An event-sourced application. Build one with [`Application::builder`] or
/// [`Application::from_env`].
pub struct Application {
    name: String,
    events: EventStore,
    snapshots: Option<Arc<dyn RecordManager>>,
    snapshot_period: Option<u64>,
    persist: Option<PersistFilter>,
    cache: Option<Mutex<HashMap<Uuid, Box<dyn Any + Send + Sync>>>>,
    page_size: usize,
    /// Counts saves through this object: followers in this process wait on it.
    writes: tokio::sync::watch::Sender<u64>,
    subscribers: PubSub,
    /// Whether features configured on this application create their tables.
    create_tables: bool,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("name", &self.name)
            .field("events", &self.events)
            .field("snapshots", &self.snapshots.is_some())
            .field("snapshot_period", &self.snapshot_period)
            .field("cache", &self.cache.is_some())
            .finish()
    }
}

/// Record managers an application can be built on.
pub trait Database: Send + Sync + 'static {
    /// A record manager for one table kind, application and pipeline.
    fn record_manager(
        &self,
        kind: RecordKind,
        application_name: &str,
        pipeline_id: i64,
    ) -> Arc<dyn RecordManager>;

    /// A record manager over a table of yours (see [`crate::record::mapped`]); a database
    /// that cannot map tables (in memory) says so with [`Error::Configuration`].
    fn table_record_manager(
        &self,
        spec: &TableSpec,
        application_name: &str,
        pipeline_id: i64,
    ) -> Result<Arc<dyn RecordManager>> {
        let _ = (application_name, pipeline_id);
        Err(Error::Configuration(format!(
            "this database cannot map table {}: use SQLite, PostgreSQL or MySQL",
            spec.table_name()
        )))
    }

    /// True when the features built on this database create the tables they need (as
    /// [`ApplicationBuilder::create_tables`] does): databases made by [`connect`]. False by
    /// default.
    fn creates_tables(&self) -> bool {
        false
    }
}

impl Database for InMemoryDatabase {
    fn record_manager(
        &self,
        kind: RecordKind,
        application_name: &str,
        pipeline_id: i64,
    ) -> Arc<dyn RecordManager> {
        Arc::new(InMemoryDatabase::record_manager(
            self,
            kind,
            application_name,
            pipeline_id,
        ))
    }
}

/// Builds an [`Application`].
pub struct ApplicationBuilder {
    name: String,
    database: Option<Arc<dyn Database>>,
    records: Option<Arc<dyn RecordManager>>,
    snapshot_records: Option<Arc<dyn RecordManager>>,
    tables: [Option<TableSpec>; 2],
    cipher: Option<Cipher>,
    compress_above: Option<usize>,
    snapshotting: bool,
    snapshot_period: Option<u64>,
    persist: Option<PersistFilter>,
    cache: bool,
    pipeline_id: i64,
    page_size: usize,
    hashing: Option<HashConfig>,
    create_tables: bool,
    prompts: Option<Arc<dyn crate::process::prompt::Prompts>>,
}

impl ApplicationBuilder {
    /// With `true`, [`build`](ApplicationBuilder::build) creates the tables this application
    /// needs if they are missing, and only those: its event table, plus the snapshot table
    /// when snapshotting is on ([`Table`] lists them). Features configured later create
    /// their own in turn: a [`ProcessApplication`](crate::process::ProcessApplication) on
    /// this application its tracking table (and the snapshot table for parked
    /// notifications), a [`Projector`](crate::process::projection::Projector) on a creating
    /// database its tracking table.
    /// The schema version is recorded as the migrations record it.
    ///
    /// By default it creates nothing: a missing table is an [`Error::Configuration`] naming
    /// it, and the tables come from the backend's `setup` / `setup_tables`, its `ddl()` or the
    /// migrations in `es-runtime/migrations` (usable with `sqlx migrate`). Databases made by
    /// [`connect`] (so [`Application::from_env`]) create the tables of every feature that
    /// uses them, as this option does.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # async fn demo() -> es_runtime::Result<()> {
    /// use es_runtime::application::Application;
    /// use es_runtime::record::sqlite::SqliteDatabase;
    /// use std::sync::Arc;
    /// let db = Arc::new(SqliteDatabase::memory()?.with_table_prefix("es_")?);
    /// let e = Application::builder("bank").database(db.clone()).build().await.unwrap_err();
    /// assert!(e.to_string().contains("no such table: es_stored_events"));
    /// let app = Application::builder("bank").database(db).create_tables(true).build().await?;
    /// # let _ = app; Ok(()) }
    /// # #[cfg(feature = "sqlite")]
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn create_tables(mut self, create: bool) -> Self {
        self.create_tables = create;
        self
    }

    /// Hashes this application's events with its own salt and genesis hash, instead of the
    /// process's default (`SALT_FOR_DATA_INTEGRITY` / `GENESIS_HASH`): several applications in
    /// one process can each have their own.
    ///
    /// ```
    /// use es_runtime::application::Application;
    /// use es_runtime::domain::integrity::HashConfig;
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let app = Application::builder("accounts")
    ///     .hashing(HashConfig::new("the accounts' salt", "accounts genesis"))
    ///     .build()
    ///     .await?;
    /// assert_eq!(app.mapper().hashing().genesis_hash, "accounts genesis");
    /// # Ok::<(), es_runtime::Error>(()) }).unwrap();
    /// ```
    pub fn hashing(mut self, hashing: HashConfig) -> Self {
        self.hashing = Some(hashing);
        self
    }
    /// Stores in memory (a new private database).
    pub fn memory(self) -> Self {
        self.database(Arc::new(InMemoryDatabase::new()))
    }
    /// Stores in this database.
    pub fn database(mut self, db: Arc<dyn Database>) -> Self {
        self.database = Some(db);
        self
    }
    /// Stores events with this record manager (instead of a database's).
    pub fn records(mut self, records: Arc<dyn RecordManager>) -> Self {
        self.records = Some(records);
        self
    }
    /// Stores snapshots with this record manager (turns snapshotting on).
    pub fn snapshot_records(mut self, records: Arc<dyn RecordManager>) -> Self {
        self.snapshot_records = Some(records);
        self.snapshotting = true;
        self
    }
    /// Stores events in a table of yours, described by `spec` (in the builder's database:
    /// see [`crate::record::mapped`]).
    pub fn table(mut self, spec: TableSpec) -> Self {
        self.tables[0] = Some(spec);
        self
    }
    /// Stores snapshots in a table of yours (turns snapshotting on).
    pub fn snapshot_table(mut self, spec: TableSpec) -> Self {
        self.tables[1] = Some(spec.kind(RecordKind::Snapshots));
        self.snapshotting = true;
        self
    }
    /// Encrypts topics, states and snapshots.
    pub fn cipher(mut self, cipher: Cipher) -> Self {
        self.cipher = Some(cipher);
        self
    }
    /// Compresses states longer than `threshold` bytes.
    pub fn compress_above(mut self, threshold: usize) -> Self {
        self.compress_above = Some(threshold);
        self
    }
    /// Keeps a snapshot table, so snapshots can be taken by hand.
    pub fn snapshotting(mut self) -> Self {
        self.snapshotting = true;
        self
    }
    /// Takes a snapshot automatically every `n` events (turns snapshotting on).
    pub fn snapshot_period(mut self, n: u64) -> Self {
        self.snapshotting = true;
        self.snapshot_period = Some(n.max(1));
        self
    }
    /// Persists only the events for which `filter` is true.
    pub fn persist_if(
        mut self,
        filter: impl Fn(&dyn AnyEvent) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.persist = Some(Arc::new(filter));
        self
    }
    /// Persists only events of aggregates of type `A` (call once per type; types accumulate).
    pub fn persist_aggregate<A: Aggregate>(mut self) -> Self {
        let prev = self.persist.take();
        self.persist = Some(Arc::new(move |e: &dyn AnyEvent| {
            e.aggregate_topic() == A::TOPIC || prev.as_ref().is_some_and(|p| p(e))
        }));
        self
    }
    /// Keeps the latest state of aggregates in memory; a get still reads any newer events, so
    /// a copy saved elsewhere is never returned stale.
    pub fn cache(mut self) -> Self {
        self.cache = true;
        self
    }
    /// The pipeline id this application writes notifications in.
    pub fn pipeline_id(mut self, id: i64) -> Self {
        self.pipeline_id = id;
        self
    }
    /// How many events replay reads at a time.
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Prompts followers in other processes after saves through this application object
    /// (on PostgreSQL a `NOTIFY` on the channel of this application and pipeline: see
    /// [`prompt`](crate::process::prompt)), so that a runner's process application or a
    /// projection there wakes within milliseconds instead of at its next poll. Sent after the
    /// commit by a task of its own, one prompt for each burst of saves, so a save never waits
    /// for it; a lost prompt only delays followers until they poll.
    pub fn prompts(mut self, prompts: Arc<dyn crate::process::prompt::Prompts>) -> Self {
        self.prompts = Some(prompts);
        self
    }

    /// Builds the application.
    pub async fn build(self) -> Result<Application> {
        let db = self
            .database
            .unwrap_or_else(|| Arc::new(InMemoryDatabase::new()));
        let [table, snapshot_table] = &self.tables;
        let records = match (self.records, table) {
            (Some(r), _) => r,
            (None, Some(t)) => db.table_record_manager(t, &self.name, self.pipeline_id)?,
            (None, None) => db.record_manager(RecordKind::Events, &self.name, self.pipeline_id),
        };
        let snapshots = match (self.snapshot_records, self.snapshotting) {
            (Some(r), _) => Some(r),
            (None, true) if snapshot_table.is_some() => snapshot_table
                .as_ref()
                .map(|t| db.table_record_manager(t, &self.name, self.pipeline_id))
                .transpose()?,
            (None, true) => {
                Some(db.record_manager(RecordKind::Snapshots, &self.name, self.pipeline_id))
            }
            (None, false) => None,
        };
        let create_tables = self.create_tables || db.creates_tables();
        if create_tables {
            tables::create(records.as_ref(), &[Table::of(records.kind())]).await?;
            if let Some(s) = &snapshots {
                tables::create(s.as_ref(), &[Table::of(s.kind())]).await?;
            }
        }
        // One cheap read now, so a missing table or an unreachable database is an error of
        // construction rather than of the first command.
        let missing = |e| tables::missing(&self.name, e);
        records.check().await.map_err(missing)?;
        if let Some(s) = &snapshots {
            tables::check_items(s.as_ref(), &self.name).await?;
        }
        let mut mapper = Mapper::new();
        if let Some(c) = self.cipher {
            mapper = mapper.with_cipher(c);
        }
        if let Some(t) = self.compress_above {
            mapper = mapper.with_compression(t);
        }
        if let Some(h) = self.hashing {
            mapper = mapper.with_hashing(h);
        }
        let writes = tokio::sync::watch::Sender::new(0);
        if let Some(prompts) = self.prompts {
            forward_prompts(writes.subscribe(), prompts, &self.name, self.pipeline_id)?;
        }
        Ok(Application {
            name: self.name,
            events: EventStore::new(records, mapper),
            snapshots,
            snapshot_period: self.snapshot_period,
            persist: self.persist,
            cache: self.cache.then(|| Mutex::new(HashMap::new())),
            page_size: self.page_size,
            writes,
            subscribers: PubSub::new(),
            create_tables,
        })
    }
}

/// Sends a prompt after each burst of saves (the watch keeps only the latest change), until
/// the application is dropped.
fn forward_prompts(
    mut writes: tokio::sync::watch::Receiver<u64>,
    prompts: Arc<dyn crate::process::prompt::Prompts>,
    name: &str,
    pipeline_id: i64,
) -> Result<()> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        Error::Configuration("prompts need a tokio runtime to send them from".into())
    })?;
    let name = name.to_string();
    runtime.spawn(async move {
        while writes.changed().await.is_ok() {
            if let Err(e) = prompts.notify(&name, pipeline_id).await {
                tracing::warn!(application = name.as_str(), pipeline = pipeline_id, error = %e, "prompt not sent");
            }
        }
    });
    Ok(())
}

impl Application {
    /// Starts building an application called `name` (the name separates its records from
    /// other applications' in a shared database).
    pub fn builder(name: impl Into<String>) -> ApplicationBuilder {
        ApplicationBuilder {
            name: name.into(),
            database: None,
            records: None,
            snapshot_records: None,
            tables: [None, None],
            cipher: None,
            compress_above: None,
            snapshotting: false,
            snapshot_period: None,
            persist: None,
            cache: false,
            pipeline_id: 0,
            page_size: 5000,
            hashing: None,
            create_tables: false,
            prompts: None,
        }
    }

    /// An application configured from the environment: see [`Config::from_env`].
    pub async fn from_env(name: impl Into<String>) -> Result<Application> {
        Self::from_config(name, Config::from_env()?).await
    }

    /// An application configured by a [`Config`]: connects (creating the tables it needs),
    /// and checks the tables can be read, so configuration errors show at construction time.
    pub async fn from_config(name: impl Into<String>, config: Config) -> Result<Application> {
        let mut b = Application::builder(name).database(connect(&config.database_url).await?);
        if let Some(c) = config.cipher {
            b = b.cipher(c);
        }
        if let Some(n) = config.snapshot_period {
            b = b.snapshot_period(n);
        }
        b.build().await
    }

    /// The application's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it was built to create its tables
    /// ([`ApplicationBuilder::create_tables`], or a database made by [`connect`]): the
    /// features configured on it then create theirs too.
    pub fn creates_tables(&self) -> bool {
        self.create_tables
    }

    /// A prompt for followers in this process: changes after every save through this
    /// application object (writes from elsewhere are found by polling).
    pub fn watch_writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writes.subscribe()
    }

    /// The event store.
    pub fn event_store(&self) -> &EventStore {
        &self.events
    }

    /// The record manager of the event table (notifications are read from it).
    pub fn records(&self) -> &Arc<dyn RecordManager> {
        self.events.records()
    }

    /// The application's notification log, in sections of `section_size` notifications (the
    /// reference library's default is 20); read it with a
    /// [`NotificationLogReader`](crate::notify::NotificationLogReader) and turn items back into
    /// events with [`to_events`](crate::notify::to_events) and [`Application::mapper`].
    pub fn notification_log(
        &self,
        section_size: usize,
    ) -> Result<crate::notify::RecordNotificationLog> {
        crate::notify::RecordNotificationLog::new(self.records().clone(), section_size)
    }

    /// The mapper (to decode notifications' items into events).
    pub fn mapper(&self) -> &Mapper {
        self.events.mapper()
    }

    /// The repository of aggregates of type `A`.
    pub fn repository<A: Aggregate>(&self) -> Repository<'_, A> {
        Repository {
            app: self,
            _a: PhantomData,
        }
    }

    /// Shorthand for `repository::<A>().get(id)`.
    pub async fn get<A: Aggregate>(&self, id: Uuid) -> Result<A> {
        self.repository::<A>().get(id).await
    }

    /// Saves one aggregate's pending events atomically. A stale aggregate (someone saved a
    /// newer version) is [`Error::Concurrency`], and nothing is written.
    pub async fn save<A: Aggregate>(&self, aggregate: &mut A) -> Result<()> {
        self.save_all(&mut [aggregate as &mut dyn Saveable]).await
    }

    /// Saves the pending events of several aggregates in one transaction.
    pub async fn save_all(&self, aggregates: &mut [&mut dyn Saveable]) -> Result<()> {
        self.save_tracked(aggregates, None, None).await
    }

    /// Saves with a tracking record and causal dependencies, in one transaction (process
    /// applications).
    pub async fn save_tracked(
        &self,
        aggregates: &mut [&mut dyn Saveable],
        tracking: Option<Tracking>,
        causal_dependencies: Option<String>,
    ) -> Result<()> {
        self.save_tracked_in(aggregates, tracking, causal_dependencies, None)
            .await
    }

    /// [`Application::save_tracked`], written in `tx` (and committing it) when given: rows
    /// user code wrote in the transaction commit with the events and the tracking record.
    pub async fn save_tracked_in(
        &self,
        aggregates: &mut [&mut dyn Saveable],
        tracking: Option<Tracking>,
        causal_dependencies: Option<String>,
        tx: Option<crate::record::tx::Tx>,
    ) -> Result<()> {
        self.save_processed(aggregates, tracking, causal_dependencies, tx, &[])
            .await
    }

    /// [`Application::save_tracked_in`], with the tracking records `more` (notifications a
    /// process application had nothing to do for) written in the same transaction.
    pub(crate) async fn save_processed(
        &self,
        aggregates: &mut [&mut dyn Saveable],
        tracking: Option<Tracking>,
        causal_dependencies: Option<String>,
        tx: Option<crate::record::tx::Tx>,
        more: &[Tracking],
    ) -> Result<()> {
        let tx = match tx {
            None if !more.is_empty() => match self.records().begin_tx().await {
                Ok(tx) => Some(tx),
                // A record manager of the user's own without transactions: the records first.
                Err(Error::Configuration(_)) => {
                    self.write_tracking_each(more).await?;
                    None
                }
                Err(e) => return Err(e),
            },
            tx => tx,
        };
        // The events stay pending until the write succeeds: a failed save leaves the
        // aggregates as they were (re-hashed with this application's settings, if they were
        // made outside it).
        self.rehash(aggregates)?;
        let batch = self.events.batch(
            aggregates
                .iter()
                .flat_map(|a| a.pending())
                .map(|e| e.as_ref())
                .filter(|e| self.persists(*e)),
            tracking,
            causal_dependencies,
        )?;
        match (batch, tx) {
            (Some(batch), None) => self.events.write_batch(&batch).await?,
            (batch, Some(tx)) => {
                let written = async {
                    tx.commit_tracked(batch.as_ref(), more)
                        .await
                        .map_err(|e| match e {
                            Error::RecordConflict(m) => Error::Concurrency(m),
                            other => other,
                        })
                };
                match &batch {
                    // Traced and counted like any other save.
                    Some(b) => {
                        let app = self.records().application_name();
                        let span = crate::telemetry::save_span(app, b);
                        let written = crate::telemetry::timed(span, written).await;
                        crate::telemetry::count_save(app, b, written)?
                    }
                    None => written.await?,
                }
            }
            (None, None) => {}
        }
        self.writes.send_modify(|n| *n = n.wrapping_add(1));
        if !self.subscribers.is_empty() {
            self.publish_saved(self.stored_lists(aggregates)).await;
        }
        self.saved(aggregates).await
    }

    /// Writes tracking records with no events, in one transaction where the record manager
    /// has them (one write each otherwise). Records already written (by another instance of
    /// a process application) are left as they are.
    pub(crate) async fn write_tracking(&self, rows: &[Tracking]) -> Result<()> {
        match self.records().begin_tx().await {
            Ok(tx) => ignore_conflict(tx.commit_tracked(None, rows).await),
            Err(Error::Configuration(_)) => self.write_tracking_each(rows).await,
            Err(e) => Err(e),
        }
    }

    /// [`Application::write_tracking`] for a record manager without transactions: one write
    /// each.
    async fn write_tracking_each(&self, rows: &[Tracking]) -> Result<()> {
        for t in rows {
            let batch = RecordBatch {
                items: Vec::new(),
                tracking: Some(t.clone()),
                causal_dependencies: None,
            };
            ignore_conflict(self.records().write(&batch).await)?;
        }
        Ok(())
    }

    /// After the events of `aggregates` are stored: forgets them, refreshes the cache and
    /// takes the snapshots that are due.
    async fn saved(&self, aggregates: &mut [&mut dyn Saveable]) -> Result<()> {
        for a in aggregates.iter_mut() {
            let v = a.current_version();
            let before = v - a.pending().len() as u64;
            a.clear_pending();
            a.cache_into(self);
            if let (Some(period), Some(snaps)) = (self.snapshot_period, &self.snapshots) {
                if v / period > before / period {
                    let item = a.snapshot_item(self.events.mapper())?;
                    write_snapshot(snaps.as_ref(), item).await?;
                }
            }
        }
        Ok(())
    }

    /// The application's subscribers: after each save commits, they get the events it stored
    /// (one list per aggregate, in order), sync handlers called and async handlers awaited in
    /// subscription order before the save returns. A failed save publishes nothing. A slow
    /// async handler slows the save: spawn a task in it to hand work off.
    ///
    /// ```
    /// # use es_runtime::application::Application;
    /// # async fn demo() -> es_runtime::Result<()> {
    /// let app = Application::builder("bank").memory().build().await?;
    /// app.subscribers().subscribe(|events| println!("stored {} events", events.len()), None);
    /// app.subscribers().subscribe_async(|events| async move { let _ = events.len(); }, None);
    /// # Ok(()) }
    /// ```
    pub fn subscribers(&self) -> &PubSub {
        &self.subscribers
    }

    /// Copies of the events a save stores, one list per aggregate that has any.
    fn stored_lists(&self, aggregates: &[&mut dyn Saveable]) -> Vec<Vec<Box<dyn AnyEvent>>> {
        aggregates
            .iter()
            .map(|a| {
                a.pending()
                    .iter()
                    .filter(|e| self.persists(e.as_ref()))
                    .map(|e| e.clone_box())
                    .collect::<Vec<_>>()
            })
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Publishes the lists of a save that has committed.
    async fn publish_saved(&self, lists: Vec<Vec<Box<dyn AnyEvent>>>) {
        for list in lists {
            self.subscribers.publish_async(&list).await;
        }
    }

    fn rehash(&self, aggregates: &mut [&mut dyn Saveable]) -> Result<()> {
        let hashing = self.events.mapper().hashing();
        aggregates.iter_mut().try_for_each(|a| a.rehash(hashing))
    }

    /// True if this application stores `event` (see [`ApplicationBuilder::persist_if`]).
    fn persists(&self, event: &dyn AnyEvent) -> bool {
        self.persist.as_ref().is_none_or(|p| p(event))
    }

    /// The batch a save of these aggregates would write, for writing inside a transaction of
    /// your own with a backend's `write_in_transaction` method. The events stay pending until
    /// the transaction has committed and you call [`PreparedBatch::confirm`]; if it rolls back,
    /// drop the prepared batch: the aggregates are as they were, and can be saved again.
    /// ([`Application::save_in`] writes in your transaction for you.)
    ///
    /// ```
    /// # async fn demo(app: &es_runtime::application::Application,
    /// #     account: &mut impl es_runtime::application::Saveable) -> es_runtime::Result<()> {
    /// use es_runtime::application::Saveable;
    /// let prepared = app.prepare_batch([account as &mut dyn Saveable])?;
    /// // records.write_in_transaction(&mut tx, &prepared).await?; tx.commit().await?;
    /// assert!(!prepared.items.is_empty());
    /// prepared.confirm().await?; // only after the commit
    /// # Ok(()) }
    /// ```
    pub fn prepare_batch<'a, 's>(
        &'a self,
        aggregates: impl IntoIterator<Item = &'s mut dyn Saveable>,
    ) -> Result<PreparedBatch<'a, 's>> {
        let mut aggregates: Vec<_> = aggregates.into_iter().collect();
        self.rehash(&mut aggregates)?;
        let items = aggregates
            .iter()
            .flat_map(|a| a.pending())
            .filter(|e| self.persists(e.as_ref()))
            .map(|e| self.events.mapper().to_item(e.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(PreparedBatch {
            app: self,
            aggregates,
            batch: RecordBatch::items(items),
        })
    }

    /// Takes a snapshot of aggregate `id` now (at its current version, or at `version`).
    /// Returns the snapshot's version.
    pub async fn take_snapshot<A: Aggregate>(&self, id: Uuid, version: Option<u64>) -> Result<u64> {
        let snaps = self.snapshots.as_ref().ok_or_else(|| {
            Error::Configuration(format!("application {} has no snapshot table", self.name))
        })?;
        let repo = self.repository::<A>();
        let a: A = match version {
            Some(v) => repo.get_at_version(id, v).await?,
            None => match repo.load(id, None).await? {
                Some(a) => a,
                None => return Err(Error::NotFound(format!("{} {id}", A::TOPIC))),
            },
        };
        let item = snapshot::to_item(self.events.mapper(), &a)?;
        write_snapshot(snaps.as_ref(), item).await?;
        Ok(a.version())
    }

    /// The latest snapshot of aggregate `id` at or below version `lte` (the latest of all when
    /// `None`), or `None` if there is none.
    pub async fn get_snapshot<A: Aggregate>(
        &self,
        id: Uuid,
        lte: Option<u64>,
    ) -> Result<Option<A>> {
        let Some(snaps) = &self.snapshots else {
            return Ok(None);
        };
        let q = crate::record::ItemQuery {
            lte: lte.map(|v| v as i64),
            limit: Some(1),
            query_descending: true,
            results_descending: true,
            ..Default::default()
        };
        match snaps.get_items(id, &q).await?.first() {
            Some(item) => Ok(Some(snapshot::from_item(self.events.mapper(), item)?)),
            None => Ok(None),
        }
    }

    /// The snapshot record manager, if snapshotting.
    pub fn snapshot_records(&self) -> Option<&Arc<dyn RecordManager>> {
        self.snapshots.as_ref()
    }

    fn cached<A: Aggregate>(&self, id: Uuid) -> Option<A> {
        let cache = self.cache.as_ref()?.lock().ok()?;
        cache.get(&id)?.downcast_ref::<A>().cloned()
    }

    fn cache_put<A: Aggregate>(&self, a: &A) {
        if let Some(Ok(mut c)) = self.cache.as_ref().map(|c| c.lock()) {
            let mut copy = a.clone();
            copy.meta_mut().pending.clear();
            c.insert(a.id(), Box::new(copy));
        }
    }

    fn cache_remove(&self, id: Uuid) {
        if let Some(Ok(mut c)) = self.cache.as_ref().map(|c| c.lock()) {
            c.remove(&id);
        }
    }
}

/// Writes a snapshot; one that already exists at that version is left as it is.
async fn write_snapshot(
    snaps: &dyn RecordManager,
    item: crate::record::SequencedItem,
) -> Result<()> {
    match snaps.write(&RecordBatch::items(vec![item])).await {
        Ok(()) | Err(Error::RecordConflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A write refused because the record is there already counts as done: tracking records of
/// notifications with nothing to do, written first by another instance.
fn ignore_conflict(r: Result<()>) -> Result<()> {
    match r {
        Err(Error::RecordConflict(_)) | Err(Error::Concurrency(_)) => Ok(()),
        other => other,
    }
}
