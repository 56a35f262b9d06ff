//! Application state replication (manual §11.3.1).

use super::reader::NotificationLogReader;
use super::NotificationLog;
use crate::error::Result;
use crate::record::{Notification, RecordBatch, RecordManager, Tracking};
use std::sync::Arc;

/// Copies the records of an application (read from its notification log, local or remote)
/// into a replica's event record manager, exactly once.
///
/// Each write holds copies of consecutive notifications and a tracking record of the last
/// one, in one transaction; a new replicator starts after the highest tracked notification,
/// which (the replica being written only by replicators) is also the replica's highest
/// notification id. Replicators can run concurrently on the same replica: when two copy the
/// same notifications, the second write conflicts and writes nothing, and that replicator
/// resumes after what the replica holds.
///
/// ```
/// # async fn demo(original: &es_runtime::application::Application,
/// #               replica: &es_runtime::application::Application) -> es_runtime::Result<()> {
/// use es_runtime::notify::{RecordNotificationLog, RecordReplicator};
/// let log = std::sync::Arc::new(RecordNotificationLog::for_application(original, 20)?);
/// let mut replicator = RecordReplicator::new(log, original.name(), replica.records().clone()).await?;
/// let copied = replicator.pull().await?;
/// # let _ = copied; Ok(()) }
/// ```
pub struct RecordReplicator {
    reader: NotificationLogReader,
    replica: Arc<dyn RecordManager>,
    upstream: String,
    page: usize,
}

impl std::fmt::Debug for RecordReplicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReplicator")
            .field("upstream", &self.upstream)
            .field("position", &self.reader.position())
            .finish()
    }
}

impl RecordReplicator {
    /// A replicator of the log of application `upstream` into `replica`, positioned after the
    /// last notification the replica already holds.
    pub async fn new(
        log: Arc<dyn NotificationLog>,
        upstream: &str,
        replica: Arc<dyn RecordManager>,
    ) -> Result<Self> {
        let mut reader = NotificationLogReader::new(log);
        reader.seek(replica.max_tracking_id(upstream).await?)?;
        Ok(RecordReplicator {
            reader,
            replica,
            upstream: upstream.to_string(),
            page: 500,
        })
    }

    /// Copies at most `n` notifications per transaction (500 by default).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page = n.max(1);
        self
    }

    /// The id of the last notification copied (or found copied).
    pub fn position(&self) -> i64 {
        self.reader.position()
    }

    /// Copies every notification not yet in the replica; returns how many this call copied.
    pub async fn pull(&mut self) -> Result<usize> {
        let mut copied = 0;
        'pages: loop {
            let page = self.reader.read(self.page).await?;
            if page.is_empty() {
                return Ok(copied);
            }
            for chunk in split_at_dependencies(page) {
                let first = chunk[0].id;
                let batch = RecordBatch {
                    tracking: chunk.last().map(|n| Tracking {
                        upstream_application: self.upstream.clone(),
                        notification_id: n.id,
                    }),
                    causal_dependencies: chunk[0].causal_dependencies.clone(),
                    items: chunk.into_iter().map(|n| n.item).collect(),
                };
                let n = batch.items.len();
                match self.replica.write(&batch).await {
                    Ok(()) => copied += n,
                    Err(e) if e.is_conflict() => {
                        // Another replicator got there first: continue after what it wrote.
                        let done = self.replica.max_tracking_id(&self.upstream).await?;
                        if done < first {
                            // Not another replicator's work: the replica holds records of
                            // its own at these positions.
                            self.reader.seek(first - 1)?;
                            return Err(e);
                        }
                        self.reader.seek(done)?;
                        continue 'pages;
                    }
                    Err(e) => {
                        self.reader.seek(first - 1)?;
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// Splits notifications into runs that can each be one batch: causal dependencies are
/// stored with a batch's first item, so a notification that has them starts a new run.
fn split_at_dependencies(page: Vec<Notification>) -> Vec<Vec<Notification>> {
    let mut out: Vec<Vec<Notification>> = Vec::new();
    for n in page {
        match out.last_mut() {
            Some(run) if n.causal_dependencies.is_none() => run.push(n),
            _ => out.push(vec![n]),
        }
    }
    out
}
