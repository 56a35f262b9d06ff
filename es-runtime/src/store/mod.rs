//! The event store: domain events in, domain events out, over a record manager and a mapper.

use crate::domain::event::AnyEvent;
use crate::error::{Error, Result};
use crate::mapper::Mapper;
use crate::record::{ItemQuery, RecordBatch, RecordManager, SequencedItem, Tracking};
use crate::telemetry;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Bounds, limit, order and paging for reading one aggregate's events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Positions (versions) and limit and order, as for items.
    pub items: ItemQuery,
    /// Read in pages of this many items (bounded memory for long sequences).
    pub page_size: Option<usize>,
}

impl EventQuery {
    /// All events, ascending.
    pub fn all() -> Self {
        Self::default()
    }
    /// Only positions greater than `v`.
    pub fn gt(mut self, v: i64) -> Self {
        self.items.gt = Some(v);
        self
    }
    /// Only positions at or above `v`.
    pub fn gte(mut self, v: i64) -> Self {
        self.items.gte = Some(v);
        self
    }
    /// Only positions below `v`.
    pub fn lt(mut self, v: i64) -> Self {
        self.items.lt = Some(v);
        self
    }
    /// Only positions at or below `v`.
    pub fn lte(mut self, v: i64) -> Self {
        self.items.lte = Some(v);
        self
    }
    /// At most `n` events.
    pub fn limit(mut self, n: usize) -> Self {
        self.items.limit = Some(n);
        self
    }
    /// Select from the end, and return in descending order.
    pub fn descending(mut self) -> Self {
        self.items.query_descending = true;
        self.items.results_descending = true;
        self
    }
    /// Read in pages of `n` items.
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = Some(n.max(1));
        self
    }
}

/// Stores and retrieves domain events.
#[derive(Clone)]
pub struct EventStore {
    records: Arc<dyn RecordManager>,
    mapper: Mapper,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("application", &self.records.application_name())
            .field("kind", &self.records.kind())
            .field("mapper", &self.mapper)
            .finish()
    }
}

fn conflict_to_concurrency(e: Error) -> Error {
    match e {
        Error::RecordConflict(m) => Error::Concurrency(m),
        other => other,
    }
}

impl EventStore {
    /// An event store over these records, mapping with `mapper`.
    pub fn new(records: Arc<dyn RecordManager>, mapper: Mapper) -> Self {
        EventStore { records, mapper }
    }

    /// The record manager.
    pub fn records(&self) -> &Arc<dyn RecordManager> {
        &self.records
    }

    /// The mapper.
    pub fn mapper(&self) -> &Mapper {
        &self.mapper
    }

    /// Stores one event. A taken position is [`Error::Concurrency`].
    pub async fn store(&self, event: &dyn AnyEvent) -> Result<()> {
        let item = self.mapper.to_item(event)?;
        self.records
            .write(&RecordBatch::items(vec![item]))
            .await
            .map_err(conflict_to_concurrency)
    }

    /// Stores events atomically: all or none. A taken position is [`Error::Concurrency`].
    pub async fn store_all(&self, events: &[Box<dyn AnyEvent>]) -> Result<()> {
        self.store_batch(events, None, None).await
    }

    /// Stores events atomically with a tracking record and causal dependencies (process
    /// applications).
    pub async fn store_batch(
        &self,
        events: &[Box<dyn AnyEvent>],
        tracking: Option<Tracking>,
        causal_dependencies: Option<String>,
    ) -> Result<()> {
        self.store_events(
            events.iter().map(|e| e.as_ref()),
            tracking,
            causal_dependencies,
        )
        .await
    }

    /// [`EventStore::store_batch`] for events given by reference (for example the ones a filter
    /// lets through), without copying them.
    pub async fn store_events<'a>(
        &self,
        events: impl IntoIterator<Item = &'a dyn AnyEvent>,
        tracking: Option<Tracking>,
        causal_dependencies: Option<String>,
    ) -> Result<()> {
        match self.batch(events, tracking, causal_dependencies)? {
            Some(batch) => self.write_batch(&batch).await,
            None => Ok(()),
        }
    }

    /// Maps events into the batch [`EventStore::store_events`] writes, or `None` when there is
    /// nothing to write (no events and no tracking record).
    pub fn batch<'a>(
        &self,
        events: impl IntoIterator<Item = &'a dyn AnyEvent>,
        tracking: Option<Tracking>,
        causal_dependencies: Option<String>,
    ) -> Result<Option<RecordBatch>> {
        let items = events
            .into_iter()
            .map(|e| self.mapper.to_item(e))
            .collect::<Result<Vec<_>>>()?;
        if items.is_empty() && tracking.is_none() {
            return Ok(None);
        }
        Ok(Some(RecordBatch {
            items,
            tracking,
            causal_dependencies,
        }))
    }

    /// Writes a batch atomically; a taken position is [`Error::Concurrency`].
    pub async fn write_batch(&self, batch: &RecordBatch) -> Result<()> {
        let app = self.records.application_name();
        let written = telemetry::timed(telemetry::save_span(app, batch), async {
            self.records
                .write(batch)
                .await
                .map_err(conflict_to_concurrency)
        });
        telemetry::count_save(app, batch, written.await)
    }

    /// Events of one aggregate, as the query asks, decoded and verified.
    pub async fn get_events(
        &self,
        originator_id: Uuid,
        query: &EventQuery,
    ) -> Result<Vec<Box<dyn AnyEvent>>> {
        let mut out = Vec::new();
        self.for_each_page(originator_id, query, |page| {
            out.extend(page);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Replays the events the query selects onto `target` (an `Option<A>` as `&mut dyn Any`),
    /// page by page, without building event objects: the repository's fast path. (`Send`, so
    /// that the future is: repositories are read from spawned tasks.)
    pub async fn replay_into(
        &self,
        originator_id: Uuid,
        query: &EventQuery,
        target: &mut (dyn std::any::Any + Send),
    ) -> Result<()> {
        let app = self.records.application_name();
        let from = query
            .items
            .gte
            .or(query.items.gt.map(|v| v + 1))
            .unwrap_or(0);
        let span = telemetry::span!(DEBUG, "es.replay", application = app, aggregate_id = %originator_id, from, events = tracing::field::Empty);
        let events = telemetry::timed(
            span.clone(),
            self.replay_counted(originator_id, query, target),
        );
        telemetry::count_replay(&span, app, events.await?);
        Ok(())
    }

    async fn replay_counted(
        &self,
        originator_id: Uuid,
        query: &EventQuery,
        target: &mut (dyn std::any::Any + Send),
    ) -> Result<u64> {
        let mapper = &self.mapper;
        let mut applied = 0u64;
        let mut apply = |i: &SequencedItem| {
            applied += 1;
            mapper.apply_item(i, &mut *target)
        };
        let Some(mut pager) = Pager::new(query) else {
            self.records
                .for_each_item(originator_id, &query.items, &mut apply)
                .await?;
            return Ok(applied);
        };
        // Page by page as `for_each_item_page`, each item applied as it is read.
        while let Some(q) = pager.next_query() {
            let mut last = None;
            let n = self
                .records
                .for_each_item(originator_id, &q, &mut |i| {
                    last = Some(i.position);
                    apply(i)
                })
                .await?;
            if !pager.advance(n, last) {
                break;
            }
        }
        Ok(applied)
    }

    /// Reads the events page by page and hands each decoded page to `f` (bounded memory).
    pub async fn for_each_page(
        &self,
        originator_id: Uuid,
        query: &EventQuery,
        mut f: impl FnMut(Vec<Box<dyn AnyEvent>>) -> Result<()>,
    ) -> Result<()> {
        let mapper = &self.mapper;
        self.for_each_item_page(originator_id, query, |items| f(mapper.from_items(items)?))
            .await
    }

    async fn for_each_item_page(
        &self,
        originator_id: Uuid,
        query: &EventQuery,
        mut f: impl FnMut(&[SequencedItem]) -> Result<()>,
    ) -> Result<()> {
        let Some(mut pager) = Pager::new(query) else {
            let items = self.records.get_items(originator_id, &query.items).await?;
            return f(&items);
        };
        while let Some(q) = pager.next_query() {
            let items: Vec<SequencedItem> = self.records.get_items(originator_id, &q).await?;
            let last = items.last().map(|i| i.position);
            if last.is_some() {
                f(&items)?;
            }
            if !pager.advance(items.len(), last) {
                break;
            }
        }
        Ok(())
    }

    /// One event; [`Error::NotFound`] if there is none at that version.
    pub async fn get_event(&self, originator_id: Uuid, version: i64) -> Result<Box<dyn AnyEvent>> {
        let item = self.records.get_item(originator_id, version).await?;
        self.mapper.from_item(&item)
    }

    /// The most recent event, optionally below position `lt`.
    pub async fn get_most_recent_event(
        &self,
        originator_id: Uuid,
        lt: Option<i64>,
    ) -> Result<Option<Box<dyn AnyEvent>>> {
        let q = ItemQuery {
            lt,
            limit: Some(1),
            query_descending: true,
            results_descending: true,
            ..Default::default()
        };
        let items = self.records.get_items(originator_id, &q).await?;
        items.first().map(|i| self.mapper.from_item(i)).transpose()
    }

    /// Every event of every aggregate, grouped by aggregate.
    pub async fn all_events(&self) -> Result<Vec<Box<dyn AnyEvent>>> {
        let mut out = Vec::new();
        for id in self.records.list_sequence_ids().await? {
            out.extend(self.get_events(id, &EventQuery::all()).await?);
        }
        Ok(out)
    }
}

/// Runs `f` until it succeeds or fails with something other than a concurrency conflict, at
/// most `attempts` times, sleeping `delay` (doubling) between attempts. For commands that
/// reload an aggregate, change it and save it.
pub async fn retry<T, F, Fut>(attempts: usize, delay: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut wait = delay;
    let mut n = 0;
    loop {
        n += 1;
        match f().await {
            Err(e) if e.is_conflict() && n < attempts.max(1) => {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            other => return other,
        }
    }
}

/// The cursor of a paged read: the query of each page, in the direction of the query (results
/// come in that direction too), up to the query's limit.
struct Pager {
    q: ItemQuery,
    page: usize,
    remaining: usize,
}

impl Pager {
    /// `None` when the query is not paged.
    fn new(query: &EventQuery) -> Option<Self> {
        let page = query.page_size?;
        let mut q = query.items;
        q.results_descending = q.query_descending;
        Some(Pager {
            remaining: q.limit.unwrap_or(usize::MAX),
            q,
            page,
        })
    }

    /// The query of the next page, or `None` once the limit is reached.
    fn next_query(&mut self) -> Option<ItemQuery> {
        (self.remaining > 0).then(|| {
            self.q.limit = Some(self.page.min(self.remaining));
            self.q
        })
    }

    /// Moves past a page of `n` items ending at position `last`; `false` when it was the last.
    fn advance(&mut self, n: usize, last: Option<i64>) -> bool {
        let Some(last) = last else {
            return false;
        };
        self.remaining = self.remaining.saturating_sub(n);
        if n < self.page {
            return false;
        }
        if self.q.query_descending {
            self.q.lt = Some(last);
            self.q.lte = None;
        } else {
            self.q.gt = Some(last);
            self.q.gte = None;
        }
        true
    }
}
