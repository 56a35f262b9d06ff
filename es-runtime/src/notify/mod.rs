//! Notification logs: an application's events as a sequence of linked sections (manual §10).
//!
//! A notification log presents a sequence of items (for an application: its stored events with
//! their notification ids) in sections of a fixed size. A section is named by the numbers of its
//! first and last items, `"1,5"`, `"6,10"`, ...; the special id `"current"` names the section
//! holding the next item to be written. Each section links to the one before (`previous_id`)
//! and, once it is full ("archived"), to the one after (`next_id`). A requested id is
//! normalised to the section containing its first number: with sections of 5, `"1,10"` is
//! `"1,5"` and `"7,8"` is `"6,10"`.
//!
//! - [`RecordNotificationLog`]: the log of a record manager's notifications (an application's
//!   event table).
//! - [`BigArrayNotificationLog`]: the log of the items of a [`crate::model::bigarray::BigArray`].
//! - [`NotificationLogReader`]: follows any log from a position, never skipping nor repeating;
//!   its `for_each` streams the rest of a local log straight from the records.
//! - [`NotificationLogView`]: a section as JSON, in the reference library's wire format.
//! - `http` feature: `http::router` serves a log, `RemoteNotificationLog` reads one.
//! - [`RecordReplicator`]: copies an application's records into a replica (§11.3.1).
//!
//! ```
//! # async fn demo() -> es_runtime::Result<()> {
//! use es_runtime::notify::{NotificationLogReader, RecordNotificationLog};
//! use es_runtime::record::{memory::InMemoryDatabase, RecordKind};
//! use std::sync::Arc;
//! let records = Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "app", 0));
//! let log = Arc::new(RecordNotificationLog::new(records, 5)?);
//! let mut reader = NotificationLogReader::new(log);
//! assert!(reader.read_all().await?.is_empty());
//! assert_eq!(reader.position(), 0);
//! # Ok(()) }
//! ```

mod events;
#[cfg(feature = "http")]
pub mod http;
mod local;
mod reader;
#[cfg(feature = "http")]
mod remote;
mod replicate;
mod section;
mod view;

pub use events::{to_events, to_events_with_ids};
pub use local::{BigArrayNotificationLog, RecordNotificationLog, DEFAULT_SECTION_SIZE};
pub use reader::NotificationLogReader;
#[cfg(feature = "http")]
pub use remote::{RemoteNotificationLog, DEFAULT_MAX_BODY};
pub use replicate::RecordReplicator;
pub use section::{LogItem, Section, SectionId};
pub use view::{decode_section, encode_section, NotificationLogView};

use crate::error::Result;
use async_trait::async_trait;

/// Anything that hands out sections by id: local logs, remote logs, adapters.
///
/// `I` is the item type: for application logs the default, [`crate::record::Notification`].
#[async_trait]
pub trait NotificationLog<I = crate::record::Notification>: Send + Sync {
    /// The section named `section_id` (`"current"` or `"first,last"`), normalised to the
    /// log's section size. A malformed id is [`crate::Error::BadSection`].
    async fn section(&self, section_id: &str) -> Result<Section<I>>;

    /// The section size, when the log knows it without being asked for a section (local logs
    /// do): a [`NotificationLogReader`] then goes straight to the section it needs.
    fn section_size(&self) -> Option<usize> {
        None
    }

    /// Hands the items numbered after `position` to `f` with their numbers, in order, as far
    /// as the log goes now, and returns how many it handed out; stops
    /// at the first error of `f`. A log that keeps its items locally reads them straight from
    /// where they are kept instead of section by section (a log of a PostgreSQL table decodes
    /// each row as it arrives). Like sections, it never hands out item n+1 unless item n is
    /// there too.
    ///
    /// `Ok(None)` means the log is read by sections only (the default, and remote logs): then
    /// `f` was not called. [`NotificationLogReader::for_each`] uses this when it can.
    async fn stream_after(
        &self,
        position: i64,
        f: &mut (dyn FnMut(i64, I) -> Result<()> + Send),
    ) -> Result<Option<usize>> {
        let _ = (position, f);
        Ok(None)
    }
}

#[async_trait]
impl<I: Send + 'static, L: NotificationLog<I> + ?Sized> NotificationLog<I> for std::sync::Arc<L> {
    async fn section(&self, section_id: &str) -> Result<Section<I>> {
        (**self).section(section_id).await
    }
    fn section_size(&self) -> Option<usize> {
        (**self).section_size()
    }
    async fn stream_after(
        &self,
        position: i64,
        f: &mut (dyn FnMut(i64, I) -> Result<()> + Send),
    ) -> Result<Option<usize>> {
        (**self).stream_after(position, f).await
    }
}
