//! The PostgreSQL notification sequencer run in the background after writes.

use super::conn::{on_conn, Connections};
use crate::error::Result;
use sqlx::Row;
use std::sync::Arc;

/// What identifies one notification sequence to the sequencer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct SequenceKey {
    pub(super) application_name: Arc<str>,
    pub(super) pipeline_id: i64,
    pub(super) lock_key: i64,
}

/// The background sequencer of one database: after each write, a task (spawned on first use, on
/// the caller's tokio runtime) assigns the new rows their ids, coalescing prompts that arrive
/// while it works. Readers still sequence before they read; this only makes ids appear sooner
/// and takes that work off the read path.
#[derive(Debug)]
pub(super) struct Background {
    pub(super) enabled: bool,
    pub(super) sender: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<SequenceKey>>>,
}

impl Background {
    pub(super) fn new(enabled: bool) -> Arc<Self> {
        Arc::new(Background {
            enabled,
            sender: std::sync::Mutex::new(None),
        })
    }
}

/// At most this many rows get ids in one sequencer run, so that the lock and the transaction
/// stay short even after a large backlog of writes; later runs (or reads) number the rest.
pub(super) const SEQUENCER_BATCH: usize = 10_000;

/// Runs the sequencer (`sql` calls the `{p}sequence_notifications` function) until a run numbers
/// fewer rows than [`SEQUENCER_BATCH`], that is until every row committed before the last run
/// has its id; returns the highest id.
pub(super) async fn sequence_all(
    conns: &Arc<Connections>,
    sql: &str,
    key: &SequenceKey,
) -> Result<i64> {
    let mut previous: Option<i64> = None;
    loop {
        let max = on_conn!(conns, c => sqlx::query(crate::record::sql::dynamic(sql))
            .bind(&*key.application_name)
            .bind(key.pipeline_id)
            .bind(key.lock_key)
            .fetch_one(c)
            .await
            .and_then(|row| row.try_get::<i64, _>(0)))?;
        if previous.is_some_and(|p| max - p < SEQUENCER_BATCH as i64) {
            return Ok(max);
        }
        previous = Some(max);
    }
}

/// How long the background sequencer waits after a prompt before it runs.
const SEQUENCER_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

pub(super) async fn run_sequencer(
    conns: Arc<Connections>,
    function: String,
    mut prompts: tokio::sync::mpsc::UnboundedReceiver<SequenceKey>,
) {
    let sql = format!("SELECT {function}($1, $2, $3)");
    while let Some(first) = prompts.recv().await {
        // Let a few more writes land first: one run then numbers them all, and the sequencer's
        // own commits (each a WAL flush) stay few next to the writers' commits.
        tokio::time::sleep(SEQUENCER_DELAY).await;
        let mut keys = vec![first];
        while let Ok(k) = prompts.try_recv() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        for k in keys {
            // Best effort: readers assign ids themselves before reading, so a failure here only
            // leaves the work to them.
            let _ = sequence_all(&conns, &sql, &k).await;
        }
    }
}
