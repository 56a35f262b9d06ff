//! The notification log reader (manual §10.6).

use super::section::{LogItem, Section, SectionId};
use super::NotificationLog;
use crate::error::{Error, Result};
use crate::record::Notification;
use std::collections::VecDeque;
use std::sync::Arc;

/// Follows a notification log (local or remote) from a position, yielding each item once, in
/// order, never skipping one: the position is the number of the last item returned, and every
/// read continues after it.
///
/// Sections are fetched one at a time: the reader asks for the section holding the item after
/// its position (learning the log's section size from the first section it sees, it goes
/// there directly instead of walking back from `"current"`), then follows `next_id` links.
/// A read that fails leaves the position where it was.
///
/// ```
/// # async fn demo() -> es_runtime::Result<()> {
/// # use es_runtime::notify::{NotificationLogReader, RecordNotificationLog};
/// # use es_runtime::record::{memory::InMemoryDatabase, RecordKind};
/// # use std::sync::Arc;
/// # let records = Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "app", 0));
/// let mut reader = NotificationLogReader::new(Arc::new(RecordNotificationLog::new(records, 5)?));
/// reader.seek(10)?;
/// assert_eq!(reader.position(), 10);
/// reader.seek(0)?;
/// while let Some(notification) = reader.next_item().await? {
///     println!("{}", notification.id);
/// }
/// # Ok(()) }
/// ```
pub struct NotificationLogReader<I = Notification> {
    log: Arc<dyn NotificationLog<I>>,
    position: i64,
    section_size: Option<i64>,
    /// Fetched items after `position`, with their numbers.
    buffer: VecDeque<(i64, I)>,
    /// The link to follow when the buffer runs out.
    next_link: Option<String>,
    sections_read: u64,
}

impl<I> std::fmt::Debug for NotificationLogReader<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationLogReader")
            .field("position", &self.position)
            .field("section_size", &self.section_size)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl<I: LogItem + Clone> NotificationLogReader<I> {
    /// A reader of `log` at position 0 (before the first item).
    pub fn new(log: Arc<dyn NotificationLog<I>>) -> Self {
        NotificationLogReader {
            log,
            position: 0,
            section_size: None,
            buffer: VecDeque::new(),
            next_link: None,
            sections_read: 0,
        }
    }

    /// The number of the last item read (0 before the first).
    pub fn position(&self) -> i64 {
        self.position
    }

    /// How many sections this reader has fetched so far.
    pub fn sections_read(&self) -> u64 {
        self.sections_read
    }

    /// Sets the position: the next item read is number `position + 1`. A negative position is
    /// [`Error::BadSection`].
    pub fn seek(&mut self, position: i64) -> Result<()> {
        if position < 0 {
            return Err(Error::BadSection(format!(
                "position {position} is below zero"
            )));
        }
        self.position = position;
        self.buffer.clear();
        self.next_link = None;
        Ok(())
    }

    /// The next item, or `None` when there is none yet; reads a section only when the items
    /// already fetched are used up (lazy iteration).
    pub async fn next_item(&mut self) -> Result<Option<I>> {
        if self.buffer.is_empty() && !self.fill().await? {
            return Ok(None);
        }
        Ok(self.buffer.pop_front().map(|(n, item)| {
            self.position = n;
            item
        }))
    }

    /// All items after the position.
    pub async fn read_all(&mut self) -> Result<Vec<I>> {
        self.read(usize::MAX).await
    }

    /// At most `limit` items after the position. On error nothing is consumed: the position is
    /// unchanged.
    pub async fn read(&mut self, limit: usize) -> Result<Vec<I>> {
        let saved = (self.position, self.buffer.clone(), self.next_link.clone());
        let mut out = Vec::new();
        while out.len() < limit {
            match self.next_item().await {
                Ok(Some(item)) => out.push(item),
                Ok(None) => break,
                Err(e) => {
                    (self.position, self.buffer, self.next_link) = saved;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    async fn fetch(&mut self, section_id: &str) -> Result<(i64, Section<I>)> {
        let section = self.log.section(section_id).await?;
        self.sections_read += 1;
        match section.id()? {
            SectionId::Range { first, last } => {
                self.section_size.get_or_insert(last - first + 1);
                Ok((first, section))
            }
            SectionId::Current => Err(Error::BadSection(
                "the log answered with a section named \"current\"".into(),
            )),
        }
    }

    /// The section holding item `target`.
    async fn locate(&mut self, target: i64) -> Result<(i64, Section<I>)> {
        let mut found = match self.section_size {
            Some(size) => {
                let first = (target - 1) / size * size + 1;
                self.fetch(&SectionId::format(first, first + size - 1))
                    .await?
            }
            None => self.fetch("current").await?,
        };
        if found.0 > target {
            // Jump once with the size now known, then walk back if the log sizes differently.
            if let Some(size) = self.section_size {
                let first = (target - 1) / size * size + 1;
                if first < found.0 {
                    found = self
                        .fetch(&SectionId::format(first, first + size - 1))
                        .await?;
                }
            }
            while found.0 > target {
                let Some(previous) = found.1.previous_id.clone() else {
                    break;
                };
                found = self.fetch(&previous).await?;
            }
        }
        Ok(found)
    }

    /// Fetches sections until there are items after the position; false at the end of the log.
    async fn fill(&mut self) -> Result<bool> {
        loop {
            let (first, section) = match self.next_link.take() {
                Some(link) => self.fetch(&link).await?,
                None => self.locate(self.position + 1).await?,
            };
            let mut last = self.position;
            for (i, item) in section.items.into_iter().enumerate() {
                let n = item.notification_id().unwrap_or(first + i as i64);
                if n > last {
                    self.buffer.push_back((n, item));
                    last = n;
                }
            }
            self.next_link = section.next_id;
            if !self.buffer.is_empty() {
                return Ok(true);
            }
            if self.next_link.is_none() {
                return Ok(false);
            }
        }
    }
}
