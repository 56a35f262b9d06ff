//! The in-memory record manager: always available, no I/O, for tests and embedded use.

use super::tx::{roll_back, CommitError, MemoryRows, MemoryWork};
use super::{
    ItemQuery, Notification, RecordBatch, RecordKind, RecordManager, SequencedItem, Tracking,
};
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// One notification log entry: (sequence, position, causal dependencies).
type LogEntry = (Uuid, i64, Option<String>);

/// One table of one application.
#[derive(Default)]
struct Table {
    sequences: HashMap<Uuid, BTreeMap<i64, SequencedItem>, UuidHash>,
    /// pipeline -> notification log
    logs: HashMap<i64, Vec<LogEntry>>,
    /// (upstream, pipeline) -> tracked ids
    tracking: HashMap<(String, i64), BTreeSet<i64>>,
}

/// Hashes a UUID by folding its two halves: ids are random (v4) or time-based, so this is
/// enough for an in-memory store and much cheaper than SipHash. Not for adversarial ids.
#[derive(Clone, Copy, Default)]
struct UuidHash;

impl std::hash::BuildHasher for UuidHash {
    type Hasher = UuidHasher;
    fn build_hasher(&self) -> UuidHasher {
        UuidHasher(0)
    }
}

#[derive(Default)]
struct UuidHasher(u64);

impl std::hash::Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(23) ^ u64::from_le_bytes(w))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

type Tables = HashMap<(String, RecordKind), Arc<Mutex<Table>>>;

/// The user's row tables (projections' read models), shared by a database's managers.
type Rows = Arc<Mutex<super::tx::MemoryTables>>;

/// A database held in memory. Clones share the same data, so several record managers (of
/// several kinds and applications) can use one database, as they would a SQL server.
#[derive(Clone, Default)]
pub struct InMemoryDatabase {
    tables: Arc<Mutex<Tables>>,
    rows: Rows,
}

impl InMemoryDatabase {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// A record manager over this database.
    pub fn record_manager(
        &self,
        kind: RecordKind,
        application_name: &str,
        pipeline_id: i64,
    ) -> InMemoryRecordManager {
        let table = match self.tables.lock() {
            Ok(mut t) => t
                .entry((application_name.to_string(), kind))
                .or_default()
                .clone(),
            // A poisoned registry still holds usable tables.
            Err(p) => p
                .into_inner()
                .entry((application_name.to_string(), kind))
                .or_default()
                .clone(),
        };
        InMemoryRecordManager {
            table,
            rows: self.rows.clone(),
            kind,
            application_name: application_name.to_string(),
            pipeline_id,
        }
    }

    /// A copy of the user rows of `table` (written by projections through
    /// [`Tx::memory`](super::tx::Tx::memory)), by key.
    pub fn table(&self, table: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        rows.get(table).cloned().unwrap_or_default()
    }
}

/// A [`RecordManager`] over an [`InMemoryDatabase`].
#[derive(Clone)]
pub struct InMemoryRecordManager {
    table: Arc<Mutex<Table>>,
    rows: Rows,
    kind: RecordKind,
    application_name: String,
    pipeline_id: i64,
}

impl InMemoryRecordManager {
    /// A record manager over a new, private database.
    pub fn new(kind: RecordKind) -> Self {
        InMemoryDatabase::new().record_manager(kind, "", 0)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Table>> {
        self.table
            .lock()
            .map_err(|_| Error::Operational("in-memory database lock poisoned".into()))
    }

    /// Writes `batch` and the tracking records `more` (after deleting this manager's tracking
    /// records when `clear`), all or nothing.
    pub(crate) fn write_now(
        &self,
        batch: &RecordBatch,
        more: &[Tracking],
        clear: bool,
    ) -> Result<()> {
        let mut guard = self.lock()?;
        let t = &mut *guard;
        // Check everything first, so a conflict writes nothing.
        let mut seen = std::collections::HashSet::new();
        for tr in batch.tracking.iter().chain(more) {
            let fresh = seen.insert((tr.upstream_application.as_str(), tr.notification_id));
            let taken = !clear
                && self
                    .tracked(t, &tr.upstream_application)
                    .is_some_and(|s| s.contains(&tr.notification_id));
            if taken || !fresh {
                return Err(Error::RecordConflict(format!(
                    "notification {} of {} already tracked",
                    tr.notification_id, tr.upstream_application
                )));
            }
        }
        for (n, i) in batch.items.iter().enumerate() {
            let taken = t
                .sequences
                .get(&i.sequence_id)
                .is_some_and(|s| s.contains_key(&i.position));
            let repeated = batch.items[..n]
                .iter()
                .any(|j| j.sequence_id == i.sequence_id && j.position == i.position);
            if taken || repeated {
                return Err(Error::RecordConflict(format!(
                    "position {} of sequence {} is taken",
                    i.position, i.sequence_id
                )));
            }
        }
        for i in &batch.items {
            t.sequences
                .entry(i.sequence_id)
                .or_default()
                .insert(i.position, i.clone());
        }
        if self.kind == RecordKind::Events {
            let log = t.logs.entry(self.pipeline_id).or_default();
            for (n, i) in batch.items.iter().enumerate() {
                let deps = if n == 0 {
                    batch.causal_dependencies.clone()
                } else {
                    None
                };
                log.push((i.sequence_id, i.position, deps));
            }
        }
        if clear {
            let p = self.pipeline_id;
            t.tracking.retain(|(_, pipeline), _| *pipeline != p);
        }
        for tr in batch.tracking.iter().chain(more) {
            t.tracking
                .entry((tr.upstream_application.clone(), self.pipeline_id))
                .or_default()
                .insert(tr.notification_id);
        }
        Ok(())
    }

    /// Runs a transaction's closures on the row tables, then writes (see [`Self::write_now`]);
    /// on any error the rows are put back as they were.
    pub(crate) fn commit_rows(
        &self,
        work: Vec<MemoryWork>,
        clear: bool,
        batch: Option<&RecordBatch>,
        more: &[Tracking],
    ) -> std::result::Result<(), CommitError> {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let mut undo = Vec::new();
        let mut done = Ok(());
        for (scope, w) in work {
            if let Err(e) = w(&mut MemoryRows::new(&mut rows, &mut undo)) {
                done = Err(scope.fail(e));
                break;
            }
        }
        let done = done.and_then(|()| {
            self.write_now(batch.unwrap_or(&RecordBatch::default()), more, clear)
                .map_err(|e| (None, e))
        });
        if done.is_err() {
            roll_back(&mut rows, undo);
        }
        done
    }

    fn tracked<'t>(&self, t: &'t Table, upstream: &str) -> Option<&'t BTreeSet<i64>> {
        // Few upstream applications per table: a scan avoids allocating a key.
        t.tracking
            .iter()
            .find(|((u, p), _)| u == upstream && *p == self.pipeline_id)
            .map(|(_, s)| s)
    }
}

#[async_trait]
impl RecordManager for InMemoryRecordManager {
    fn kind(&self) -> RecordKind {
        self.kind
    }
    fn application_name(&self) -> &str {
        &self.application_name
    }
    fn pipeline_id(&self) -> i64 {
        self.pipeline_id
    }

    async fn write(&self, batch: &RecordBatch) -> Result<()> {
        self.write_now(batch, &[], false)
    }

    async fn begin_tx(&self) -> Result<super::tx::Tx> {
        Ok(super::tx::Tx::memory_of(self.clone()))
    }

    async fn get_item(&self, sequence_id: Uuid, position: i64) -> Result<SequencedItem> {
        let t = self.lock()?;
        t.sequences
            .get(&sequence_id)
            .and_then(|s| s.get(&position))
            .cloned()
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "item at position {position} of sequence {sequence_id}"
                ))
            })
    }

    async fn get_items(&self, sequence_id: Uuid, q: &ItemQuery) -> Result<Vec<SequencedItem>> {
        let t = self.lock()?;
        let Some(seq) = t.sequences.get(&sequence_id) else {
            return Ok(Vec::new());
        };
        let lo = match (q.gt, q.gte) {
            (Some(a), Some(b)) => a.saturating_add(1).max(b),
            (Some(a), None) => a.saturating_add(1),
            (None, Some(b)) => b,
            (None, None) => i64::MIN,
        };
        let hi = match (q.lt, q.lte) {
            (Some(a), Some(b)) => a.saturating_sub(1).min(b),
            (Some(a), None) => a.saturating_sub(1),
            (None, Some(b)) => b,
            (None, None) => i64::MAX,
        };
        if lo > hi {
            return Ok(Vec::new());
        }
        let range = seq.range(lo..=hi).map(|(_, v)| v);
        let limit = q.limit.unwrap_or(usize::MAX);
        let mut out: Vec<SequencedItem> = if q.query_descending {
            range.rev().take(limit).cloned().collect()
        } else {
            range.take(limit).cloned().collect()
        };
        if q.query_descending != q.results_descending {
            out.reverse();
        }
        Ok(out)
    }

    async fn list_sequence_ids(&self) -> Result<Vec<Uuid>> {
        let t = self.lock()?;
        Ok(t.sequences
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(k, _)| *k)
            .collect())
    }

    async fn get_items_in_order(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
    ) -> Result<Vec<SequencedItem>> {
        let t = self.lock()?;
        let mut out: Vec<SequencedItem> = t
            .sequences
            .values()
            .flat_map(|s| s.range(start..=end.max(start)).map(|(_, v)| v))
            .filter(|i| i.position <= end)
            .cloned()
            .collect();
        out.sort_by_key(|i| (i.position, i.sequence_id));
        out.truncate(limit.unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn delete_item(&self, sequence_id: Uuid, position: i64) -> Result<()> {
        let mut t = self.lock()?;
        if let Some(s) = t.sequences.get_mut(&sequence_id) {
            s.remove(&position);
        }
        Ok(())
    }

    async fn get_notifications(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
    ) -> Result<Vec<Notification>> {
        let t = self.lock()?;
        let Some(log) = t.logs.get(&self.pipeline_id) else {
            return Ok(Vec::new());
        };
        let start = start.max(1);
        let end = end.min(log.len() as i64);
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut id = start;
        while id <= end && out.len() < limit {
            let (seq, pos, deps) = &log[(id - 1) as usize];
            // A deleted record leaves its notification id behind without an item.
            if let Some(item) = t.sequences.get(seq).and_then(|s| s.get(pos)) {
                out.push(Notification {
                    id,
                    item: item.clone(),
                    causal_dependencies: deps.clone(),
                });
            }
            id += 1;
        }
        Ok(out)
    }

    async fn notification_of(
        &self,
        sequence_id: Uuid,
        position: i64,
    ) -> Result<Option<(i64, i64)>> {
        let t = self.lock()?;
        // Recent events are looked up most: search each log from its end.
        Ok(t.logs.iter().find_map(|(p, log)| {
            log.iter()
                .rposition(|(s, pos, _)| *s == sequence_id && *pos == position)
                .map(|i| (*p, i as i64 + 1))
        }))
    }

    async fn max_notification_id(&self) -> Result<i64> {
        let t = self.lock()?;
        Ok(t.logs
            .get(&self.pipeline_id)
            .map(|l| l.len() as i64)
            .unwrap_or(0))
    }

    async fn max_tracking_id(&self, upstream: &str) -> Result<i64> {
        let t = self.lock()?;
        Ok(self
            .tracked(&t, upstream)
            .and_then(|s| s.last().copied())
            .unwrap_or(0))
    }

    async fn has_tracking_record(&self, upstream: &str, notification_id: i64) -> Result<bool> {
        let t = self.lock()?;
        Ok(self
            .tracked(&t, upstream)
            .is_some_and(|s| s.contains(&notification_id)))
    }
}
