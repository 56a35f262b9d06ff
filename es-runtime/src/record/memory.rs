//! The in-memory record manager: always available, no I/O, for tests and embedded use.

use super::{ItemQuery, Notification, RecordBatch, RecordKind, RecordManager, SequencedItem};
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

type Sequences = HashMap<Uuid, BTreeMap<i64, SequencedItem>>;
/// One notification log entry: (sequence, position, causal dependencies).
type LogEntry = (Uuid, i64, Option<String>);

#[derive(Default)]
struct State {
    /// (application, kind) -> sequences
    tables: HashMap<(String, RecordKind), Sequences>,
    /// (application, pipeline) -> notification log: (sequence, position, causal deps)
    logs: HashMap<(String, i64), Vec<LogEntry>>,
    /// (application, upstream, pipeline) -> tracked ids
    tracking: HashMap<(String, String, i64), HashSet<i64>>,
}

/// A database held in memory. Clones share the same data, so several record managers (of
/// several kinds and applications) can use one database, as they would a SQL server.
#[derive(Clone, Default)]
pub struct InMemoryDatabase {
    state: Arc<Mutex<State>>,
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
        InMemoryRecordManager {
            db: self.clone(),
            kind,
            application_name: application_name.to_string(),
            pipeline_id,
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::Operational("in-memory database lock poisoned".into()))
    }
}

/// A [`RecordManager`] over an [`InMemoryDatabase`].
#[derive(Clone)]
pub struct InMemoryRecordManager {
    db: InMemoryDatabase,
    kind: RecordKind,
    application_name: String,
    pipeline_id: i64,
}

impl InMemoryRecordManager {
    /// A record manager over a new, private database.
    pub fn new(kind: RecordKind) -> Self {
        InMemoryDatabase::new().record_manager(kind, "", 0)
    }

    fn key(&self) -> (String, RecordKind) {
        (self.application_name.clone(), self.kind)
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
        let mut st = self.db.lock()?;
        let st = &mut *st;
        let key = self.key();
        // Check everything first, so a conflict writes nothing.
        if let Some(t) = &batch.tracking {
            let tk = (
                self.application_name.clone(),
                t.upstream_application.clone(),
                self.pipeline_id,
            );
            if st
                .tracking
                .get(&tk)
                .is_some_and(|s| s.contains(&t.notification_id))
            {
                return Err(Error::RecordConflict(format!(
                    "notification {} of {} already tracked",
                    t.notification_id, t.upstream_application
                )));
            }
        }
        let table = st.tables.entry(key).or_default();
        let mut seen = HashSet::new();
        for i in &batch.items {
            let taken = table
                .get(&i.sequence_id)
                .is_some_and(|s| s.contains_key(&i.position));
            if taken || !seen.insert((i.sequence_id, i.position)) {
                return Err(Error::RecordConflict(format!(
                    "position {} of sequence {} is taken",
                    i.position, i.sequence_id
                )));
            }
        }
        for i in &batch.items {
            table
                .entry(i.sequence_id)
                .or_default()
                .insert(i.position, i.clone());
        }
        if self.kind == RecordKind::Events {
            let log = st
                .logs
                .entry((self.application_name.clone(), self.pipeline_id))
                .or_default();
            for (n, i) in batch.items.iter().enumerate() {
                let deps = if n == 0 {
                    batch.causal_dependencies.clone()
                } else {
                    None
                };
                log.push((i.sequence_id, i.position, deps));
            }
        }
        if let Some(t) = &batch.tracking {
            st.tracking
                .entry((
                    self.application_name.clone(),
                    t.upstream_application.clone(),
                    self.pipeline_id,
                ))
                .or_default()
                .insert(t.notification_id);
        }
        Ok(())
    }

    async fn get_item(&self, sequence_id: Uuid, position: i64) -> Result<SequencedItem> {
        let st = self.db.lock()?;
        st.tables
            .get(&self.key())
            .and_then(|t| t.get(&sequence_id))
            .and_then(|s| s.get(&position))
            .cloned()
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "item at position {position} of sequence {sequence_id}"
                ))
            })
    }

    async fn get_items(&self, sequence_id: Uuid, q: &ItemQuery) -> Result<Vec<SequencedItem>> {
        let st = self.db.lock()?;
        let Some(seq) = st.tables.get(&self.key()).and_then(|t| t.get(&sequence_id)) else {
            return Ok(Vec::new());
        };
        let lo = match (q.gt, q.gte) {
            (Some(a), Some(b)) => (a + 1).max(b),
            (Some(a), None) => a.saturating_add(1),
            (None, Some(b)) => b,
            (None, None) => i64::MIN,
        };
        let hi = match (q.lt, q.lte) {
            (Some(a), Some(b)) => (a - 1).min(b),
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
        let st = self.db.lock()?;
        Ok(st
            .tables
            .get(&self.key())
            .map(|t| {
                t.iter()
                    .filter(|(_, s)| !s.is_empty())
                    .map(|(k, _)| *k)
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn delete_item(&self, sequence_id: Uuid, position: i64) -> Result<()> {
        let mut st = self.db.lock()?;
        if let Some(s) = st
            .tables
            .get_mut(&self.key())
            .and_then(|t| t.get_mut(&sequence_id))
        {
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
        let st = self.db.lock()?;
        let Some(log) = st
            .logs
            .get(&(self.application_name.clone(), self.pipeline_id))
        else {
            return Ok(Vec::new());
        };
        let table = st.tables.get(&self.key());
        let start = start.max(1);
        let end = end.min(log.len() as i64);
        let mut out = Vec::new();
        let limit = limit.unwrap_or(usize::MAX);
        let mut id = start;
        while id <= end && out.len() < limit {
            let (seq, pos, deps) = &log[(id - 1) as usize];
            // A deleted record leaves its notification id behind without an item.
            if let Some(item) = table.and_then(|t| t.get(seq)).and_then(|s| s.get(pos)) {
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

    async fn max_notification_id(&self) -> Result<i64> {
        let st = self.db.lock()?;
        Ok(st
            .logs
            .get(&(self.application_name.clone(), self.pipeline_id))
            .map(|l| l.len() as i64)
            .unwrap_or(0))
    }

    async fn max_tracking_id(&self, upstream: &str) -> Result<i64> {
        let st = self.db.lock()?;
        Ok(st
            .tracking
            .get(&(
                self.application_name.clone(),
                upstream.to_string(),
                self.pipeline_id,
            ))
            .and_then(|s| s.iter().max().copied())
            .unwrap_or(0))
    }

    async fn has_tracking_record(&self, upstream: &str, notification_id: i64) -> Result<bool> {
        let st = self.db.lock()?;
        Ok(st
            .tracking
            .get(&(
                self.application_name.clone(),
                upstream.to_string(),
                self.pipeline_id,
            ))
            .is_some_and(|s| s.contains(&notification_id)))
    }
}
