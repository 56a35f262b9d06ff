//! Causal dependencies between pipelines (manual §12.3.5): recorded with the first new event
//! of a process event, checked against the follower's own tracking records before a
//! notification is processed.

use super::policy::Touched;
use crate::application::{Application, Database};
use crate::error::{Error, Result};
use crate::record::{Notification, RecordKind, RecordManager};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Causal dependencies between pipelines: the tracking records of this application in each
/// pipeline, to check that a notification's dependencies have been processed.
pub(super) struct Causal {
    db: Arc<dyn Database>,
    tracking: Mutex<HashMap<i64, Arc<dyn RecordManager>>>,
    /// The notification that waits for its dependencies, if one does.
    waiting: Mutex<Option<(String, i64)>>,
}

/// One causal dependency, as stored (JSON, a list of these): the notification of the same
/// upstream application in another pipeline that must be processed first.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
struct Dependency {
    pipeline_id: i64,
    notification_id: i64,
}

/// The causal dependencies of aggregates a process event of `app` saves (JSON): the
/// notifications of other pipelines their last events came from, the newest per pipeline;
/// `None` if there are none.
pub(super) async fn dependencies_of(
    app: &Application,
    touched: &[Box<dyn Touched>],
) -> Result<Option<String>> {
    let own = app.records().pipeline_id();
    let mut newest: BTreeMap<i64, i64> = BTreeMap::new();
    for t in touched {
        let Some(first) = t.pending().first() else {
            continue;
        };
        let v = first.meta().originator_version;
        if v == 0 {
            continue;
        }
        let Ok(last) = i64::try_from(v - 1) else {
            continue;
        };
        if let Some((p, id)) = app.records().notification_of(t.id(), last).await? {
            if p != own {
                let slot = newest.entry(p).or_default();
                *slot = (*slot).max(id);
            }
        }
    }
    if newest.is_empty() {
        return Ok(None);
    }
    let deps: Vec<Dependency> = newest
        .into_iter()
        .map(|(pipeline_id, notification_id)| Dependency {
            pipeline_id,
            notification_id,
        })
        .collect();
    Ok(Some(serde_json::to_string(&deps)?))
}

impl Causal {
    pub(super) fn new(db: Arc<dyn Database>) -> Self {
        Causal {
            db,
            tracking: Mutex::new(HashMap::new()),
            waiting: Mutex::new(None),
        }
    }

    /// The notification (upstream, id) waiting for its dependencies, if one is.
    pub(super) fn waiting_on(&self) -> Option<(String, i64)> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True if every causal dependency of notification `n` of `upstream` has been processed
    /// by `application` (its tracking records in the dependencies' pipelines).
    pub(super) async fn met(
        &self,
        application: &str,
        upstream: &str,
        n: &Notification,
    ) -> Result<bool> {
        let c = self;
        let Some(json) = &n.causal_dependencies else {
            return Ok(true);
        };
        let deps: Vec<Dependency> = serde_json::from_str(json).map_err(|e| {
            Error::DataIntegrity(crate::IntegrityError::Corrupt(format!(
                "causal dependencies of notification {} of {upstream}: {e}",
                n.id
            )))
        })?;
        for d in deps {
            let tracking = {
                let mut map = c.tracking.lock().unwrap_or_else(|p| p.into_inner());
                map.entry(d.pipeline_id)
                    .or_insert_with(|| {
                        c.db.record_manager(RecordKind::Events, application, d.pipeline_id)
                    })
                    .clone()
            };
            if !tracking
                .has_tracking_record(upstream, d.notification_id)
                .await?
            {
                *c.waiting.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((upstream.to_string(), n.id));
                return Ok(false);
            }
        }
        *c.waiting.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(true)
    }
}
