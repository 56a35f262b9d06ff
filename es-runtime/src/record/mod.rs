//! Record managers: where sequenced items are stored, behind one async trait.
//!
//! A record manager is bound to one table kind ([`RecordKind`]), one application name and one
//! pipeline id. Event tables give each written item a notification id in one gap-free sequence
//! per (application, pipeline); snapshot and timestamp-sequenced tables do not.

pub mod mapped;
pub mod memory;
pub mod migrations;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod parts;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod tx;

use crate::error::Result;
use async_trait::async_trait;
pub use bytes::Bytes;
use std::borrow::Cow;
use uuid::Uuid;

/// The table prefix every backend uses unless told otherwise (`es_stored_events`,
/// `es_snapshots`, ...), whether the database is made by its constructor or by a URL: the
/// prefix keeps es's tables apart from other libraries' tables of the same plain names.
pub const DEFAULT_TABLE_PREFIX: &str = "es_";

/// One of the tables es keeps (the schema version aside), so that a database gets only the
/// tables of the features in use: an application has its [`Table::Events`]; snapshots
/// ([`ApplicationBuilder::snapshot_period`](crate::application::ApplicationBuilder::snapshot_period))
/// and parked notifications add [`Table::Snapshots`]; process applications, runners and
/// projections add [`Table::Tracking`]; the time-bucketed models add
/// [`Table::TimestampSequenced`]. Leases need no table (they are locks).
///
/// Each backend creates a chosen set with its `setup` method (`setup_tables` creates all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// `stored_events` (with PostgreSQL's sequencer functions and MySQL's
    /// `notification_counters`).
    Events,
    /// `notification_tracking`: which upstream notifications a follower has processed.
    Tracking,
    /// `snapshots` (also holds the dead letters of parked notifications).
    Snapshots,
    /// `timestamp_sequenced_items`.
    TimestampSequenced,
}

impl Table {
    /// Every table, in the order the migrations create them.
    pub const ALL: [Table; 4] = [
        Table::Events,
        Table::Tracking,
        Table::Snapshots,
        Table::TimestampSequenced,
    ];

    /// The table's name without the prefix.
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "stored_events",
            Table::Tracking => "notification_tracking",
            Table::Snapshots => "snapshots",
            Table::TimestampSequenced => "timestamp_sequenced_items",
        }
    }

    /// The table a record manager of `kind` reads and writes its items in.
    pub fn of(kind: RecordKind) -> Table {
        match kind {
            RecordKind::Events => Table::Events,
            RecordKind::Snapshots => Table::Snapshots,
            RecordKind::TimestampSequenced => Table::TimestampSequenced,
        }
    }
}

/// One stored item: a position in a sequence, with the topic and (mapped) state of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequencedItem {
    /// The sequence (for aggregates: the originator id).
    pub sequence_id: Uuid,
    /// The position in the sequence (for aggregates: the originator version; for
    /// timestamp-sequenced tables: microseconds since the epoch).
    pub position: i64,
    /// The topic (event type), possibly encrypted by the mapper. Borrowed when it is a
    /// registered type's own topic, so writing and copying items does not copy it.
    pub topic: Cow<'static, str>,
    /// The mapped state: JSON, possibly compressed and encrypted. Shared, not copied, between
    /// an event, its item and an in-memory store.
    pub state: Bytes,
}

/// The same item, named as an aggregate's event: see §8.1 of the manual.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The aggregate id.
    pub originator_id: Uuid,
    /// The aggregate version before the event.
    pub originator_version: i64,
    /// The topic.
    pub topic: Cow<'static, str>,
    /// The mapped state.
    pub state: Bytes,
}

impl From<SequencedItem> for StoredEvent {
    fn from(i: SequencedItem) -> Self {
        StoredEvent {
            originator_id: i.sequence_id,
            originator_version: i.position,
            topic: i.topic,
            state: i.state,
        }
    }
}

impl From<StoredEvent> for SequencedItem {
    fn from(e: StoredEvent) -> Self {
        SequencedItem {
            sequence_id: e.originator_id,
            position: e.originator_version,
            topic: e.topic,
            state: e.state,
        }
    }
}

/// An item of an application's notification log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The notification id: 1, 2, 3, ... without gaps, per (application, pipeline).
    pub id: i64,
    /// The stored item.
    pub item: SequencedItem,
    /// Causal dependencies (JSON), recorded by process applications on their first new event.
    pub causal_dependencies: Option<String>,
}

/// A record that a process application has processed notification `notification_id` of
/// `upstream_application` in its own pipeline: written in the same transaction as the events
/// that processing produced (exactly-once).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tracking {
    /// The application whose notification was processed.
    pub upstream_application: String,
    /// The processed notification id.
    pub notification_id: i64,
}

/// Everything one save writes, atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordBatch {
    /// The items, in order.
    pub items: Vec<SequencedItem>,
    /// The tracking record of a process application, if any.
    pub tracking: Option<Tracking>,
    /// Causal dependencies (JSON), stored with the first item.
    pub causal_dependencies: Option<String>,
}

impl RecordBatch {
    /// A batch of just these items.
    pub fn items(items: Vec<SequencedItem>) -> Self {
        RecordBatch {
            items,
            ..Default::default()
        }
    }
}

/// Which table a record manager serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Aggregate events, with notification ids.
    Events,
    /// Snapshots (one or more per aggregate, by version).
    Snapshots,
    /// Items sequenced by timestamp (no notification ids).
    TimestampSequenced,
}

/// Position bounds, limit and order for reading one sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItemQuery {
    /// Only positions greater than this.
    pub gt: Option<i64>,
    /// Only positions greater than or equal to this.
    pub gte: Option<i64>,
    /// Only positions less than this.
    pub lt: Option<i64>,
    /// Only positions less than or equal to this.
    pub lte: Option<i64>,
    /// At most this many items.
    pub limit: Option<usize>,
    /// Select from the end of the range (descending query).
    pub query_descending: bool,
    /// Return the selected items in descending order.
    pub results_descending: bool,
}

impl ItemQuery {
    /// The whole sequence, ascending.
    pub fn all() -> Self {
        Self::default()
    }
    /// True if `position` is inside the bounds.
    pub fn contains(&self, position: i64) -> bool {
        self.gt.is_none_or(|b| position > b)
            && self.gte.is_none_or(|b| position >= b)
            && self.lt.is_none_or(|b| position < b)
            && self.lte.is_none_or(|b| position <= b)
    }
}

/// How many notifications [`RecordManager::for_each_notification`] reads per page when the
/// backend does not stream them.
pub const NOTIFICATION_PAGE: usize = 1000;

/// Storage of sequenced items in one table of one backend.
///
/// Every backend passes the same conformance suite (`es-runtime/tests/conformance`).
#[async_trait]
pub trait RecordManager: Send + Sync + 'static {
    /// Which table this manager serves.
    fn kind(&self) -> RecordKind;

    /// The manager as its own type, for features of one backend (writing in a caller's
    /// transaction: [`Application::save_in`](crate::application::Application::save_in)).
    /// `None` unless the backend offers such features.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }

    /// The application name records are written under.
    fn application_name(&self) -> &str;

    /// The pipeline id notifications and tracking records are written under.
    fn pipeline_id(&self) -> i64;

    /// Checks, with one cheap read, that the table can be used (an unreachable database or a
    /// missing table or column is an error here rather than at the first command). The
    /// default reads the highest notification id.
    async fn check(&self) -> Result<()> {
        self.max_notification_id().await.map(|_| ())
    }

    /// Writes all items (and the tracking record) in one transaction. If any position is taken
    /// or the tracking record exists, nothing is written and the error is
    /// [`crate::Error::RecordConflict`].
    async fn write(&self, batch: &RecordBatch) -> Result<()>;

    /// One item; [`crate::Error::NotFound`] if there is none at that position.
    async fn get_item(&self, sequence_id: Uuid, position: i64) -> Result<SequencedItem>;

    /// Items of one sequence within the query's bounds, limit and order.
    async fn get_items(&self, sequence_id: Uuid, query: &ItemQuery) -> Result<Vec<SequencedItem>>;

    /// Hands the items [`RecordManager::get_items`] would return to `f`, one at a time and in
    /// the same order, and returns how many there were; stops at the first error of `f`. A
    /// backend that streams rows (PostgreSQL) calls `f` as they arrive, so that the caller
    /// works on the first items (a replay applies them) while the server sends the rest.
    async fn for_each_item(
        &self,
        sequence_id: Uuid,
        query: &ItemQuery,
        f: &mut (dyn for<'i> FnMut(&'i SequencedItem) -> Result<()> + Send),
    ) -> Result<usize> {
        let items = self.get_items(sequence_id, query).await?;
        items.iter().try_for_each(&mut *f)?;
        Ok(items.len())
    }

    /// The ids of all sequences that have items.
    async fn list_sequence_ids(&self) -> Result<Vec<Uuid>>;

    /// Items of every sequence with positions in `start..=end`, ascending by position (then
    /// sequence id), at most `limit`: the application-wide order of a timestamp-sequenced table.
    async fn get_items_in_order(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
    ) -> Result<Vec<SequencedItem>> {
        let _ = (start, end, limit);
        Err(crate::Error::Configuration(
            "this record manager cannot read items across sequences in position order".into(),
        ))
    }

    /// Deletes one item (used to remove snapshots and in tests; events are normally immutable).
    async fn delete_item(&self, sequence_id: Uuid, position: i64) -> Result<()>;

    /// Notifications with ids in `start..=end`, ascending, at most `limit` (event tables only).
    /// Never returns id n+1 unless id n is visible too.
    async fn get_notifications(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
    ) -> Result<Vec<Notification>>;

    /// Hands the notifications [`RecordManager::get_notifications`] would return to `f`, one
    /// at a time, in order and by value, and returns how many there were; stops at the first
    /// error of `f`. The same guarantee holds: `f` never gets id n+1 unless id n is visible
    /// too. The default reads pages of [`NOTIFICATION_PAGE`] with `get_notifications`, each
    /// starting after the last id handed out, so that a long range is never held in memory at
    /// once; a backend that streams rows (PostgreSQL) reads the range in one statement and
    /// calls `f` as rows arrive, so that the caller decodes the first notifications while the
    /// server sends the rest.
    async fn for_each_notification(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
        f: &mut (dyn FnMut(Notification) -> Result<()> + Send),
    ) -> Result<usize> {
        let mut handed = 0usize;
        let mut next = start;
        loop {
            let want = limit.map_or(NOTIFICATION_PAGE, |l| (l - handed).min(NOTIFICATION_PAGE));
            if want == 0 || next > end {
                return Ok(handed);
            }
            let page = self.get_notifications(next, end, Some(want)).await?;
            let got = page.len();
            for n in page {
                next = n.id.saturating_add(1);
                handed += 1;
                f(n)?;
            }
            if got < want || next == i64::MAX {
                return Ok(handed);
            }
        }
    }

    /// Every notification of the log, ascending: `get_notifications(1, i64::MAX, None)`. For a
    /// long log prefer [`RecordManager::for_each_notification`] or
    /// [`NotificationLogReader`](crate::notify::NotificationLogReader), which do not hold it
    /// all in memory.
    async fn all_notifications(&self) -> Result<Vec<Notification>> {
        self.get_notifications(1, i64::MAX, None).await
    }

    /// The highest notification id visible (0 when there is none).
    async fn max_notification_id(&self) -> Result<i64>;

    /// Where the event at `position` of `sequence_id` is in the notification logs: its
    /// pipeline id and notification id (event tables; any pipeline of this application).
    /// `None` when there is no such event, or the backend cannot tell (the default). Process
    /// applications record these as causal dependencies.
    async fn notification_of(
        &self,
        sequence_id: Uuid,
        position: i64,
    ) -> Result<Option<(i64, i64)>> {
        let _ = (sequence_id, position);
        Ok(None)
    }

    /// The highest notification id of `upstream` tracked in this pipeline (0 when none).
    async fn max_tracking_id(&self, upstream_application: &str) -> Result<i64>;

    /// True if notification `notification_id` of `upstream` has been tracked in this pipeline.
    async fn has_tracking_record(
        &self,
        upstream_application: &str,
        notification_id: i64,
    ) -> Result<bool>;

    /// Begins a write transaction in which user code runs before this manager writes a batch
    /// and tracking records ([`tx::Tx`]): how projections and policies write their own rows
    /// exactly once. The default is [`crate::Error::Configuration`]: a record manager that
    /// cannot do this says so.
    async fn begin_tx(&self) -> Result<tx::Tx> {
        Err(crate::Error::Configuration(format!(
            "the record manager of {} cannot run user code in its write transaction",
            self.application_name()
        )))
    }
}

impl dyn RecordManager {
    /// Notifications with ids in `ids` (any range: `1..=10`, `5..`, `..`), ascending, at most
    /// `limit`: [`RecordManager::get_notifications`] without spelling out the bounds.
    ///
    /// ```
    /// # async fn demo() -> es_runtime::Result<()> {
    /// use es_runtime::record::memory::InMemoryDatabase;
    /// use es_runtime::record::{RecordKind, RecordManager};
    /// let records: std::sync::Arc<dyn RecordManager> =
    ///     std::sync::Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "app", 0));
    /// assert!(records.notifications(.., None).await?.is_empty());
    /// assert!(records.notifications(3..=4, Some(1)).await?.is_empty());
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn notifications(
        &self,
        ids: impl std::ops::RangeBounds<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<Notification>> {
        use std::ops::Bound;
        let start = match ids.start_bound() {
            Bound::Included(&s) => s.max(1),
            Bound::Excluded(&s) => s.saturating_add(1).max(1),
            Bound::Unbounded => 1,
        };
        let end = match ids.end_bound() {
            Bound::Included(&e) => e,
            Bound::Excluded(&e) => match e.checked_sub(1) {
                Some(e) => e,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => i64::MAX,
        };
        if end < start {
            return Ok(Vec::new());
        }
        self.get_notifications(start, end, limit).await
    }
}
