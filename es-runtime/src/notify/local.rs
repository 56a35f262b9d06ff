//! Local notification logs: over a record manager, and over a big array.

use super::section::{make_section, section_start, Section, SectionId};
use super::NotificationLog;
use crate::error::{Error, Result};
use crate::model::bigarray::BigArray;
use crate::record::{Notification, RecordKind, RecordManager};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;

/// The section size used when none is given (the reference library's default).
pub const DEFAULT_SECTION_SIZE: usize = 20;

fn check_size(section_size: usize) -> Result<i64> {
    if section_size == 0 || section_size > i32::MAX as usize {
        return Err(Error::Configuration(format!(
            "section size must be between 1 and {}, not {section_size}",
            i32::MAX
        )));
    }
    Ok(section_size as i64)
}

/// The notification log of a record manager of kind [`RecordKind::Events`]: an
/// application's stored events, numbered by their notification ids (manual §10.4.1).
#[derive(Clone)]
pub struct RecordNotificationLog {
    records: Arc<dyn RecordManager>,
    size: i64,
}

impl std::fmt::Debug for RecordNotificationLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordNotificationLog")
            .field("application", &self.records.application_name())
            .field("section_size", &self.size)
            .finish()
    }
}

impl RecordNotificationLog {
    /// The log of `records` in sections of `section_size`. The record manager must be of kind
    /// [`RecordKind::Events`] (only event tables number their records).
    pub fn new(records: Arc<dyn RecordManager>, section_size: usize) -> Result<Self> {
        if records.kind() != RecordKind::Events {
            return Err(Error::Configuration(format!(
                "a notification log needs an event record manager, not {:?}",
                records.kind()
            )));
        }
        Ok(RecordNotificationLog {
            records,
            size: check_size(section_size)?,
        })
    }

    /// The log of an application's events.
    pub fn for_application(
        app: &crate::application::Application,
        section_size: usize,
    ) -> Result<Self> {
        Self::new(app.records().clone(), section_size)
    }

    /// The section size.
    pub fn section_size(&self) -> usize {
        self.size as usize
    }

    /// The record manager read from.
    pub fn records(&self) -> &Arc<dyn RecordManager> {
        &self.records
    }
}

#[async_trait]
impl NotificationLog for RecordNotificationLog {
    async fn section(&self, section_id: &str) -> Result<Section> {
        let id = SectionId::parse(section_id)?;
        let next = match id {
            SectionId::Current => self.records.max_notification_id().await?,
            SectionId::Range { .. } => 0,
        };
        let start = section_start(id, self.size, next)?;
        let end = start + self.size;
        let mut items: Vec<Notification> =
            self.records.get_notifications(start + 1, end, None).await?;
        // Archived once the log reaches the section's last number. When the items fall short
        // of it but the log is already past it, they were read before later commits became
        // visible (or the missing numbers belong to deleted records): read them again, now
        // that every number up to the maximum is visible, so that a reader following the
        // next link never skips one.
        let full = if items.last().is_some_and(|n| n.id >= end) {
            true
        } else {
            let max = match id {
                SectionId::Current => next,
                SectionId::Range { .. } => self.records.max_notification_id().await?,
            };
            if max >= end {
                items = self.records.get_notifications(start + 1, end, None).await?;
                true
            } else {
                false
            }
        };
        Ok(make_section(start, self.size, items, full))
    }

    fn section_size(&self) -> Option<usize> {
        Some(self.size as usize)
    }

    /// Reads the notifications after `position` straight from the record manager
    /// ([`RecordManager::for_each_notification`]: on PostgreSQL one statement whose rows are
    /// handed to `f` as they arrive, elsewhere pages of
    /// [`crate::record::NOTIFICATION_PAGE`]).
    async fn stream_after(
        &self,
        position: i64,
        f: &mut (dyn FnMut(i64, Notification) -> Result<()> + Send),
    ) -> Result<Option<usize>> {
        if position < 0 {
            return Err(Error::BadSection(format!(
                "position {position} is below zero"
            )));
        }
        let mut after = position;
        let handed = self
            .records
            .for_each_notification(position.saturating_add(1), i64::MAX, None, &mut |n| {
                if n.id <= after {
                    return Err(Error::DataIntegrity(crate::error::IntegrityError::Corrupt(
                        format!("notification {} came after {after}", n.id),
                    )));
                }
                after = n.id;
                f(n.id, n)
            })
            .await?;
        Ok(Some(handed))
    }
}

/// The notification log of a [`BigArray`]: its items, `None` where a position is unassigned
/// (manual §10.4.3).
pub struct BigArrayNotificationLog<T> {
    array: Arc<BigArray<T>>,
    size: i64,
}

impl<T> std::fmt::Debug for BigArrayNotificationLog<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigArrayNotificationLog")
            .field("array", &self.array)
            .field("section_size", &self.size)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> BigArrayNotificationLog<T> {
    /// The log of `array` in sections of `section_size`.
    pub fn new(array: Arc<BigArray<T>>, section_size: usize) -> Result<Self> {
        Ok(BigArrayNotificationLog {
            array,
            size: check_size(section_size)?,
        })
    }

    /// The section size.
    pub fn section_size(&self) -> usize {
        self.size as usize
    }
}

#[async_trait]
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> NotificationLog<Option<T>>
    for BigArrayNotificationLog<T>
{
    async fn section(&self, section_id: &str) -> Result<Section<Option<T>>> {
        let id = SectionId::parse(section_id)?;
        let next = self.array.next_position().await?;
        let start = section_start(id, self.size, next)?;
        let end = start + self.size;
        let stop = end.min(next).max(start);
        let mut items: Vec<Option<T>> = (start..stop).map(|_| None).collect();
        for (index, value) in self.array.slice(start..stop).await? {
            if let Some(slot) = usize::try_from(index - start)
                .ok()
                .and_then(|i| items.get_mut(i))
            {
                *slot = Some(value);
            }
        }
        Ok(make_section(start, self.size, items, next >= end))
    }

    fn section_size(&self) -> Option<usize> {
        Some(self.size as usize)
    }
}
