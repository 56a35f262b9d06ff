//! Parked notifications: a follower's dead letters.
//!
//! When a process application is configured to park failures
//! ([`OnPolicyError::Park`]), a notification its policy cannot process is recorded here with
//! the error, and processing goes on with the next one. Parked notifications are listed, and
//! retried or discarded one at a time, through
//! [`ProcessApplication`](super::ProcessApplication) (`parked`, `retry_parked`,
//! `discard_parked`).
//!
//! They are stored in the database's snapshot table, under the application name
//! `{application}#dead-letters`: one record per (upstream, pipeline, notification id), with
//! the upstream as its topic and the details as JSON. Every backend has that table, so parking
//! needs no schema of its own; the reserved name keeps the records apart from the
//! application's own snapshots.

use super::application::{Outcome, ProcessApplication, Progress};
use crate::application::Database;
use crate::error::{Error, Result};
use crate::record::{Bytes, RecordBatch, RecordKind, RecordManager, SequencedItem, Tracking};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// What a process application does when its policy fails on a notification (an error that
/// retrying as it is cannot fix: see [`is_transient`](super::is_transient)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnPolicyError {
    /// Stop processing and report the error (the default): nothing after the notification is
    /// processed until the cause is fixed and the application restarted.
    #[default]
    Stop,
    /// Park the notification in the dead-letter records with its error, and go on.
    Park,
}

/// A notification a process application parked instead of processing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedNotification {
    /// The upstream application whose notification it is.
    pub upstream: String,
    /// The pipeline.
    pub pipeline_id: i64,
    /// The notification id.
    pub notification_id: i64,
    /// The error the policy gave (its text).
    pub error: String,
    /// When it was parked, in microseconds since the Unix epoch.
    pub parked_at_micros: i64,
}

/// The dead-letter records of one process application.
#[derive(Clone)]
pub(crate) struct DeadLetters {
    pub(super) records: Arc<dyn RecordManager>,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("name", &self.records.application_name())
            .finish()
    }
}

const NAMESPACE: Uuid = Uuid::from_u128(0x6573_6465_6164_6c65_7474_6572_7300_0001);

fn key(upstream: &str, pipeline_id: i64, notification_id: i64) -> Uuid {
    let name = format!("{upstream}\u{0}{pipeline_id}\u{0}{notification_id}");
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

impl DeadLetters {
    /// The dead letters of `application` in `db`.
    pub(crate) fn new(db: &dyn Database, application: &str) -> Self {
        DeadLetters {
            records: db.record_manager(
                RecordKind::Snapshots,
                &format!("{application}#dead-letters"),
                0,
            ),
        }
    }

    /// Records `p` (replacing an earlier record of the same notification).
    pub(crate) async fn park(&self, p: &ParkedNotification) -> Result<()> {
        let id = key(&p.upstream, p.pipeline_id, p.notification_id);
        let state = serde_json::to_vec(p)?;
        let item = SequencedItem {
            sequence_id: id,
            position: 0,
            topic: p.upstream.clone().into(),
            state: Bytes::from(state),
        };
        match self
            .records
            .write(&RecordBatch::items(vec![item.clone()]))
            .await
        {
            Err(e) if e.is_conflict() => {
                self.records.delete_item(id, 0).await?;
                self.records.write(&RecordBatch::items(vec![item])).await
            }
            other => other,
        }
    }

    /// Every parked notification of `pipeline_id`, by upstream and notification id.
    pub(crate) async fn list(&self, pipeline_id: i64) -> Result<Vec<ParkedNotification>> {
        let mut out = Vec::new();
        for id in self.records.list_sequence_ids().await? {
            let item = match self.records.get_item(id, 0).await {
                Ok(i) => i,
                Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let p: ParkedNotification = serde_json::from_slice(&item.state).map_err(|e| {
                Error::DataIntegrity(crate::IntegrityError::Corrupt(format!(
                    "dead letter {id} of {}: {e}",
                    self.records.application_name()
                )))
            })?;
            if p.pipeline_id == pipeline_id {
                out.push(p);
            }
        }
        out.sort_by(|a, b| (&a.upstream, a.notification_id).cmp(&(&b.upstream, b.notification_id)));
        Ok(out)
    }

    /// The parked notification, if it is parked.
    pub(crate) async fn get(
        &self,
        upstream: &str,
        pipeline_id: i64,
        notification_id: i64,
    ) -> Result<Option<ParkedNotification>> {
        let id = key(upstream, pipeline_id, notification_id);
        match self.records.get_item(id, 0).await {
            Ok(item) => Ok(serde_json::from_slice(&item.state).ok()),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets the record of a notification (retried or discarded).
    pub(crate) async fn remove(
        &self,
        upstream: &str,
        pipeline_id: i64,
        notification_id: i64,
    ) -> Result<()> {
        self.records
            .delete_item(key(upstream, pipeline_id, notification_id), 0)
            .await
    }
}

/// Microseconds since the Unix epoch, now.
pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// The calls on parked notifications.
impl ProcessApplication {
    /// The notifications of this pipeline that are parked, by upstream and id.
    pub async fn parked(&self) -> Result<Vec<ParkedNotification>> {
        self.ready().await?;
        self.dead_letters()?
            .list(self.app.records().pipeline_id())
            .await
    }

    /// Processes a parked notification again (after the cause was fixed): on success it is
    /// recorded with its tracking record as any other and no longer parked; on failure it
    /// stays parked with the new error, which is returned. [`Error::NotFound`] if it is not
    /// parked.
    pub async fn retry_parked(&self, upstream: &str, notification_id: i64) -> Result<Progress> {
        self.ready().await?;
        let dl = self.dead_letters()?;
        let pipeline = self.app.records().pipeline_id();
        let Some(mut parked) = dl.get(upstream, pipeline, notification_id).await? else {
            return Err(Error::NotFound(format!(
                "notification {notification_id} of {upstream} is not parked by {}",
                self.app.name()
            )));
        };
        let mut follows = self.follows.lock().await;
        let f = follows
            .iter_mut()
            .find(|f| f.name == upstream)
            .ok_or_else(|| {
                Error::Configuration(format!("{} does not follow {upstream}", self.app.name()))
            })?;
        let n = f.source.fetch(notification_id).await?;
        let mut done = Progress::default();
        match self.process(f, n).await {
            Ok(Outcome::Recorded(events)) => {
                done.processed = 1;
                done.events = events;
            }
            Ok(Outcome::AlreadyTracked) => done.skipped = 1,
            Ok(Outcome::Ignored) => {
                // The policy no longer handles it: tracked, with nothing written.
                f.deferred.push(Tracking {
                    upstream_application: upstream.to_string(),
                    notification_id,
                });
                self.flush_deferred(f).await?;
                done.processed = 1;
            }
            Err(e) => {
                parked.error = e.to_string();
                parked.parked_at_micros = now_micros();
                dl.park(&parked).await?;
                return Err(self.processing_error(upstream, notification_id, e));
            }
        }
        dl.remove(upstream, pipeline, notification_id).await?;
        self.parked_ids()
            .remove(&(upstream.to_string(), notification_id));
        drop(follows);
        if done.events > 0 {
            self.prompt().await?;
        }
        Ok(done)
    }

    /// Gives up on a parked notification: it is tracked as processed, without any new events,
    /// and no longer parked. [`Error::NotFound`] if it is not parked.
    pub async fn discard_parked(&self, upstream: &str, notification_id: i64) -> Result<()> {
        self.ready().await?;
        let dl = self.dead_letters()?;
        let pipeline = self.app.records().pipeline_id();
        if dl.get(upstream, pipeline, notification_id).await?.is_none() {
            return Err(Error::NotFound(format!(
                "notification {notification_id} of {upstream} is not parked by {}",
                self.app.name()
            )));
        }
        let tracking = Tracking {
            upstream_application: upstream.to_string(),
            notification_id,
        };
        match self.app.save_tracked(&mut [], Some(tracking), None).await {
            Ok(()) => {}
            // Tracked already (another instance discarded it first): done as well.
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(e),
        }
        dl.remove(upstream, pipeline, notification_id).await?;
        self.parked_ids()
            .remove(&(upstream.to_string(), notification_id));
        Ok(())
    }
}
