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
/// **A log is checked, not trusted.** Every section must be the one asked for, hold only
/// items of its own range, in ascending order, and continue the log exactly where the reader
/// is: item `position + 1` first, without a gap (an archived section must hold its last item).
/// `next_id` must name the section right after, `previous_id` one before. Anything else (a gap,
/// items out of order, links that go back or loop) is [`Error::BadSection`], and the position
/// stays where it was. Walking back over `previous_id` links, and over sections without new
/// items, stops after [`NotificationLogReader::with_max_walk`] sections (10,000 by default).
/// A log whose records were deleted by hand has gaps for good: read it with
/// [`NotificationLogReader::allowing_gaps`].
///
/// **Prefetching.** With [`NotificationLogReader::with_prefetch`]`(n)`, once the reader has
/// read a full (archived) section it fetches the next `n` sections in the background (each as
/// a tokio task, so a PostgreSQL or remote log answers them on connections of their own) while
/// their predecessors are being used. Sections are contiguous and numbered in advance, so the
/// ids to fetch are known before the current section arrives. A prefetched section is used only
/// if the one before it was full: when a section comes back partial (the end of the log as it
/// was then), the sections fetched after it are dropped and the reader asks again, so it never
/// sees item n+1 before item n, whatever commits in between. Positions, links and errors are
/// exactly as without prefetching.
///
/// **Catching up.** [`NotificationLogReader::for_each`] hands every item after the position to
/// a callback. On a local log it skips sections altogether and reads straight from the record
/// manager (on PostgreSQL one statement, rows handed over as they arrive): the fastest way to
/// read a whole log.
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
    /// How many sections to fetch ahead.
    prefetch: usize,
    /// Sections being fetched ahead, in order: the first is `next_link`'s.
    ahead: VecDeque<Ahead<I>>,
    /// True until the reader meets the end of the log (after creation or a seek): then the
    /// sections after the one it looks for are fetched ahead at once, before it is known to
    /// be full.
    catching_up: bool,
    /// Sections walked over without new items before giving up.
    max_walk: usize,
    /// Whether missing numbers are passed over instead of refused.
    allow_gaps: bool,
}

/// The numbered items taken from a section, and its next link.
type Taken<I> = (Vec<(i64, I)>, Option<String>);

/// The default of [`NotificationLogReader::with_max_walk`].
const DEFAULT_MAX_WALK: usize = 10_000;

/// A section being fetched in the background.
struct Ahead<I> {
    first: i64,
    task: tokio::task::JoinHandle<Result<Section<I>>>,
}

impl<I> Drop for NotificationLogReader<I> {
    fn drop(&mut self) {
        for a in self.ahead.drain(..) {
            a.task.abort();
        }
    }
}

impl<I> std::fmt::Debug for NotificationLogReader<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationLogReader")
            .field("position", &self.position)
            .field("section_size", &self.section_size)
            .field("buffered", &self.buffer.len())
            .field("prefetch", &self.prefetch)
            .finish()
    }
}

impl<I: LogItem> NotificationLogReader<I> {
    /// A reader of `log` at position 0 (before the first item).
    pub fn new(log: Arc<dyn NotificationLog<I>>) -> Self {
        NotificationLogReader {
            section_size: log
                .section_size()
                .and_then(|s| i64::try_from(s).ok())
                .filter(|s| *s > 0),
            log,
            position: 0,
            buffer: VecDeque::new(),
            next_link: None,
            sections_read: 0,
            prefetch: 0,
            ahead: VecDeque::new(),
            catching_up: true,
            max_walk: DEFAULT_MAX_WALK,
            allow_gaps: false,
        }
    }

    /// Gives up with [`Error::BadSection`] after walking over `sections` sections in a row
    /// that hold no new items (following `previous_id` back to the one wanted, or `next_id`
    /// past empty ones): a log whose links never arrive bounds the reader's work. 10,000 by
    /// default; at least 1.
    ///
    /// ```
    /// # use es_runtime::notify::{NotificationLogReader, RecordNotificationLog};
    /// # use es_runtime::record::{memory::InMemoryDatabase, RecordKind};
    /// # use std::sync::Arc;
    /// # let records = Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "app", 0));
    /// let log = Arc::new(RecordNotificationLog::new(records, 5)?);
    /// let reader = NotificationLogReader::new(log).with_max_walk(100);
    /// # let _ = reader; Ok::<(), es_runtime::Error>(())
    /// ```
    pub fn with_max_walk(mut self, sections: usize) -> Self {
        self.max_walk = sections.max(1);
        self
    }

    /// Passes over missing numbers instead of refusing them: for a log whose records were
    /// deleted (the reference library's logs pass over such holes). Order, ranges and links
    /// are checked all the same.
    ///
    /// ```
    /// # use es_runtime::notify::{NotificationLogReader, RecordNotificationLog};
    /// # use es_runtime::record::{memory::InMemoryDatabase, RecordKind};
    /// # use std::sync::Arc;
    /// # let records = Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "app", 0));
    /// let log = Arc::new(RecordNotificationLog::new(records, 5)?);
    /// let reader = NotificationLogReader::new(log).allowing_gaps();
    /// # let _ = reader; Ok::<(), es_runtime::Error>(())
    /// ```
    pub fn allowing_gaps(mut self) -> Self {
        self.allow_gaps = true;
        self
    }

    /// Fetches up to `sections` sections ahead while the current one is used (0, the
    /// default, fetches each section when it is needed). One or two are enough to keep a
    /// database busy while the items of the current section are processed. Each section
    /// being fetched takes a database connection of its own (for a PostgreSQL log), so the
    /// first sections fetched ahead may wait for new connections to open.
    ///
    /// ```
    /// # async fn demo(app: &es_runtime::application::Application) -> es_runtime::Result<()> {
    /// use es_runtime::notify::{NotificationLogReader, RecordNotificationLog};
    /// let log = RecordNotificationLog::for_application(app, 1000)?;
    /// let mut reader = NotificationLogReader::new(std::sync::Arc::new(log)).with_prefetch(2);
    /// while let Some(notification) = reader.next_item().await? {
    ///     let event = app.mapper().from_item(&notification.item)?;
    ///     println!("{} {}", notification.id, event.topic());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_prefetch(mut self, sections: usize) -> Self {
        self.prefetch = sections;
        self
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
        self.forget_fetched();
        self.catching_up = true;
        Ok(())
    }

    /// Cancels the sections being fetched ahead.
    fn drop_ahead(&mut self) {
        for a in self.ahead.drain(..) {
            a.task.abort();
        }
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

    /// Hands every item after the position to `f`, in order, up to the end of the log as it
    /// is now, and returns how many it handed out. The position moves on with each item `f`
    /// accepts: when `f` fails, the position is the item before the one it failed on (that
    /// item is read again next time), and the error is returned.
    ///
    /// This is the fastest way to follow a local log: a [`super::RecordNotificationLog`] is
    /// read straight from its record manager, a few statements for the whole log instead of
    /// one per section, and on PostgreSQL each row is handed to `f` as it arrives, so that
    /// decoding overlaps the transfer ([`super::NotificationLog::stream_after`]). Other logs
    /// are read section by section, as [`NotificationLogReader::next_item`] does (with the
    /// sections fetched ahead, if any).
    ///
    /// ```
    /// # async fn demo(app: &es_runtime::application::Application) -> es_runtime::Result<()> {
    /// use es_runtime::notify::{NotificationLogReader, RecordNotificationLog};
    /// let log = RecordNotificationLog::for_application(app, 1000)?;
    /// let mut reader = NotificationLogReader::new(std::sync::Arc::new(log));
    /// let mapper = app.mapper();
    /// let read = reader
    ///     .for_each(|notification| {
    ///         let event = mapper.from_item(&notification.item)?;
    ///         println!("{} {}", notification.id, event.topic());
    ///         Ok(())
    ///     })
    ///     .await?;
    /// assert_eq!(reader.position(), read as i64);
    /// # Ok(()) }
    /// ```
    pub async fn for_each(&mut self, mut f: impl FnMut(I) -> Result<()> + Send) -> Result<usize> {
        let mut count = 0;
        // Items fetched already come first.
        while let Some((n, item)) = self.buffer.pop_front() {
            if let Err(e) = f(item) {
                self.forget_fetched();
                return Err(e);
            }
            self.position = n;
            count += 1;
        }
        self.forget_fetched();
        let log = self.log.clone();
        let mut position = self.position;
        let allow_gaps = self.allow_gaps;
        let streamed = log
            .stream_after(position, &mut |n, item| {
                if n <= position || (!allow_gaps && n != position + 1) {
                    return Err(Error::BadSection(format!(
                        "the log handed out item {n} after item {position}"
                    )));
                }
                f(item)?;
                position = n;
                count += 1;
                Ok(())
            })
            .await;
        self.position = position;
        match streamed? {
            Some(_) => {
                self.catching_up = false;
                Ok(count)
            }
            None => {
                loop {
                    let before = self.position;
                    let Some(item) = self.next_item().await? else {
                        break;
                    };
                    if let Err(e) = f(item) {
                        // Not taken: read it again next time.
                        self.position = before;
                        self.forget_fetched();
                        return Err(e);
                    }
                    count += 1;
                }
                Ok(count)
            }
        }
    }

    /// Drops the items and sections fetched after the position: the next read starts from
    /// the position.
    fn forget_fetched(&mut self) {
        self.buffer.clear();
        self.next_link = None;
        self.drop_ahead();
    }

    /// All items after the position.
    pub async fn read_all(&mut self) -> Result<Vec<I>> {
        self.read(usize::MAX).await
    }

    /// At most `limit` items after the position. On error nothing is consumed: the position is
    /// unchanged.
    pub async fn read(&mut self, limit: usize) -> Result<Vec<I>> {
        let position = self.position;
        let mut out = Vec::new();
        let mut numbers = Vec::new();
        while out.len() < limit {
            if self.buffer.is_empty() {
                match self.fill().await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        // A section is fetched only when the buffer is empty: put back what
                        // this call took, in order. The link that failed stays the next one.
                        self.buffer.extend(numbers.into_iter().zip(out));
                        self.position = position;
                        self.drop_ahead();
                        return Err(e);
                    }
                }
            }
            let want = limit - out.len();
            for (n, item) in self.buffer.drain(..want.min(self.buffer.len())) {
                self.position = n;
                numbers.push(n);
                out.push(item);
            }
        }
        Ok(out)
    }

    /// The section `section_id`, fetched now or taken from the ones fetched ahead.
    async fn fetch(&mut self, section_id: &str) -> Result<(i64, Section<I>)> {
        let wanted = SectionId::parse(section_id)?.first();
        let front = self.ahead.front().map(|a| a.first);
        let section = if front.is_some() && front == wanted {
            match self.ahead.pop_front() {
                Some(a) => a.task.await.map_err(|e| {
                    Error::Operational(format!("fetching section {section_id} ahead failed: {e}"))
                })??,
                None => self.log.section(section_id).await?,
            }
        } else {
            // Keep what is being fetched only if it starts right after this section.
            let follows = match (wanted, self.section_size) {
                (Some(w), Some(size)) => front.is_some() && front == w.checked_add(size),
                _ => false,
            };
            if !follows {
                self.drop_ahead();
            }
            self.sections_read += 1;
            self.log.section(section_id).await?
        };
        let first = match section.id()? {
            SectionId::Range { first, last } => {
                if wanted.is_some_and(|w| w < first || w > last) {
                    return Err(Error::BadSection(format!(
                        "asked for section {section_id}, the log answered with section {}",
                        section.section_id
                    )));
                }
                self.section_size.get_or_insert(last - first + 1);
                first
            }
            SectionId::Current => {
                return Err(Error::BadSection(
                    "the log answered with a section named \"current\"".into(),
                ))
            }
        };
        if section.is_archived() {
            self.fetch_ahead(first);
        } else {
            // The end of the log as it was: what was fetched after it may have moved on.
            self.drop_ahead();
            self.catching_up = false;
        }
        Ok((first, section))
    }

    /// Starts fetching the sections after the (full) section starting at `first`, up to
    /// `prefetch` of them.
    fn fetch_ahead(&mut self, first: i64) {
        let (Some(size), Ok(runtime)) = (self.section_size, tokio::runtime::Handle::try_current())
        else {
            return;
        };
        if self
            .ahead
            .front()
            .is_some_and(|a| Some(a.first) != first.checked_add(size))
        {
            self.drop_ahead();
        }
        let Some(mut next) = self
            .ahead
            .back()
            .map_or(first, |a| a.first)
            .checked_add(size)
        else {
            return;
        };
        while self.ahead.len() < self.prefetch {
            let Some(last) = next.checked_add(size - 1) else {
                return;
            };
            let log = self.log.clone();
            let id = SectionId::format(next, last);
            let task = runtime.spawn(async move { log.section(&id).await });
            self.sections_read += 1;
            self.ahead.push_back(Ahead { first: next, task });
            next = last + 1;
        }
    }

    /// The section holding item `target`.
    async fn locate(&mut self, target: i64) -> Result<(i64, Section<I>)> {
        let mut found = match self.section_size {
            Some(size) => {
                let first = (target - 1) / size * size + 1;
                if self.catching_up {
                    // Most likely far from the end: fetch the next sections at once too.
                    self.fetch_ahead(first);
                }
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
            let mut walked = 0;
            while found.0 > target {
                let Some(previous) = found.1.previous_id.clone() else {
                    break;
                };
                let here = &found.1.section_id;
                match SectionId::parse(&previous)? {
                    SectionId::Range { last, .. } if last < found.0 => {}
                    _ => {
                        return Err(Error::BadSection(format!(
                            "section {here} links back to {previous:?}, which is not before it"
                        )))
                    }
                }
                walked += 1;
                if walked > self.max_walk {
                    return Err(Error::BadSection(format!(
                        "walked back over {} sections from {here} without reaching item \
                         {target}",
                        self.max_walk
                    )));
                }
                found = self.fetch(&previous).await?;
            }
        }
        Ok(found)
    }

    /// Fetches sections until there are items after the position; false at the end of the log.
    /// On error nothing is taken: the buffer stays empty and the link that was to be followed
    /// is followed next time.
    async fn fill(&mut self) -> Result<bool> {
        let mut walked = 0;
        loop {
            let link = self.next_link.take();
            let taken = match &link {
                Some(link) => self.fetch(link).await,
                None => self.locate(self.position + 1).await,
            }
            .and_then(|(first, section)| self.take_section(first, section));
            let (items, next) = match taken {
                Ok(taken) => taken,
                Err(e) => {
                    self.next_link = link;
                    return Err(e);
                }
            };
            self.buffer.extend(items);
            self.next_link = next;
            if !self.buffer.is_empty() {
                return Ok(true);
            }
            if self.next_link.is_none() {
                return Ok(false);
            }
            walked += 1;
            if walked >= self.max_walk {
                self.next_link = link;
                return Err(Error::BadSection(format!(
                    "followed {} sections after item {} without finding the next item",
                    self.max_walk, self.position
                )));
            }
        }
    }

    /// The items of `section` (which starts at `first`) after the position, numbered, and its
    /// next link, after checking that they continue the log: see the type's documentation.
    fn take_section(&self, first: i64, section: Section<I>) -> Result<Taken<I>> {
        let Section {
            section_id,
            items,
            next_id,
            ..
        } = section;
        let bad = |why: String| Err(Error::BadSection(format!("section {section_id}: {why}")));
        let last = match SectionId::parse(&section_id)? {
            SectionId::Range { last, .. } => last,
            SectionId::Current => first,
        };
        // Numbers first: in range and ascending.
        let mut numbers = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let n = match item.notification_id() {
                Some(n) => n,
                None => match i64::try_from(i).ok().and_then(|i| first.checked_add(i)) {
                    Some(n) => n,
                    None => return bad(format!("item {i} is past the end of the log")),
                },
            };
            if n < first || n > last {
                return bad(format!("holds item {n}, outside its range"));
            }
            if let Some(p) = numbers.last().filter(|p| n <= **p) {
                return bad(format!("items out of order: {n} comes after {p}"));
            }
            numbers.push(n);
        }
        // Then those after the position: each the one after the last.
        let previous = numbers.last().copied();
        let mut expected = self.position.saturating_add(1);
        let mut taken: Vec<(i64, I)> = Vec::new();
        for (n, item) in numbers.into_iter().zip(items) {
            if n < expected {
                continue;
            }
            if n != expected && !self.allow_gaps {
                return bad(format!("gap in the log: item {n} where {expected} is next"));
            }
            taken.push((n, item));
            expected = n.saturating_add(1);
        }
        if let Some(next) = &next_id {
            if !self.allow_gaps && previous != Some(last) && last > self.position {
                return bad(format!(
                    "archived, but its last item {last} is missing (it ends at {})",
                    previous.map_or("nothing".into(), |p| p.to_string())
                ));
            }
            match SectionId::parse(next)?.first() {
                Some(n) if Some(n) == last.checked_add(1) => {}
                _ => {
                    return bad(format!(
                        "links forward to {next:?}, not to the section after it"
                    ))
                }
            }
        }
        Ok((taken, next_id))
    }
}
