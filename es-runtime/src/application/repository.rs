//! The repository: aggregates by id, rebuilt from their events (and the nearest snapshot).

use super::Application;
use crate::domain::aggregate::Aggregate;
use crate::domain::event::AnyEvent;
use crate::domain::integrity;
use crate::error::{Error, Result};
use crate::store::EventQuery;
use std::marker::PhantomData;
use uuid::Uuid;

/// Aggregates of type `A` in an application. Get one from [`Application::repository`].
pub struct Repository<'a, A> {
    pub(super) app: &'a Application,
    pub(super) _a: PhantomData<fn() -> A>,
}

impl<A: Aggregate> Repository<'_, A> {
    /// The current state of aggregate `id`; [`Error::NotFound`] if it does not exist or was
    /// discarded.
    pub async fn get(&self, id: Uuid) -> Result<A> {
        let span = crate::telemetry::span!(INFO, "es.get", application = self.app.name(), aggregate = A::TOPIC, aggregate_id = %id, version = tracing::field::Empty);
        let found = crate::telemetry::timed(span.clone(), self.get_untraced(id)).await;
        found.inspect(|a| {
            span.record("version", a.version());
        })
    }

    async fn get_untraced(&self, id: Uuid) -> Result<A> {
        if let Some(cached) = self.app.cached::<A>(id) {
            let mut target = Some(cached);
            let from = target.as_ref().map(|a| a.version() as i64).unwrap_or(0);
            self.replay_from(id, &mut target, from, None).await?;
            return self.found(id, target, true);
        }
        let target = self.load(id, None).await?;
        self.found(id, target, true)
    }

    /// The state of aggregate `id` after its first `version` events (historical state).
    /// [`Error::NotFound`] if it had fewer events, or did not exist.
    ///
    /// Versions count events: `get_at_version(id, 1)` is the aggregate as created, where the
    /// reference library 7.1.1 numbers that state 0 (its `__version__` is one less than es's
    /// [`Aggregate::version`]; see [the domain docs](crate::domain#versions)). Version 0 is
    /// before creation: [`Error::NotFound`].
    ///
    /// ```
    /// # async fn demo<A: es_runtime::domain::aggregate::Aggregate>(
    /// #     app: &es_runtime::application::Application, id: uuid::Uuid) -> es_runtime::Result<()> {
    /// let repo = app.repository::<A>();
    /// let created = repo.get_at_version(id, 1).await?; // 7.1.1: version 0
    /// assert_eq!(created.version(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn get_at_version(&self, id: Uuid, version: u64) -> Result<A> {
        let target = self.load(id, Some(version)).await?;
        match target {
            Some(a) if a.version() == version => self.found(id, Some(a), false),
            _ => Err(Error::NotFound(format!(
                "{} {id} at version {version}",
                A::TOPIC
            ))),
        }
    }

    /// True if aggregate `id` exists and is not discarded.
    pub async fn contains(&self, id: Uuid) -> Result<bool> {
        match self.get(id).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The events of aggregate `id`.
    pub async fn events(&self, id: Uuid, query: &EventQuery) -> Result<Vec<Box<dyn AnyEvent>>> {
        self.app.events.get_events(id, query).await
    }

    fn found(&self, id: Uuid, target: Option<A>, cache: bool) -> Result<A> {
        match target {
            Some(mut a) if !a.is_discarded() => {
                // Events triggered from now on hash with this application's settings.
                let hashing = self.app.events.mapper().hashing();
                if !integrity::same(a.meta().hashing(), Some(hashing)) {
                    a.meta_mut().set_hashing(Some(hashing.clone()));
                }
                if cache {
                    self.app.cache_put(&a);
                }
                Ok(a)
            }
            Some(_) => {
                self.app.cache_remove(id);
                Err(Error::NotFound(format!("{} {id} (discarded)", A::TOPIC)))
            }
            None => Err(Error::NotFound(format!("{} {id}", A::TOPIC))),
        }
    }

    /// Nearest snapshot at or below `at` (if snapshotting), then the events after it.
    pub(super) async fn load(&self, id: Uuid, at: Option<u64>) -> Result<Option<A>> {
        let mut target: Option<A> = None;
        let mut from = 0i64;
        if let Some(a) = self.app.get_snapshot::<A>(id, at).await? {
            from = a.version() as i64;
            target = Some(a);
        }
        self.replay_from(id, &mut target, from, at).await?;
        Ok(target)
    }

    async fn replay_from(
        &self,
        id: Uuid,
        target: &mut Option<A>,
        from: i64,
        at: Option<u64>,
    ) -> Result<()> {
        let mut q = EventQuery::all().gte(from).page_size(self.app.page_size);
        if let Some(v) = at {
            q = q.lt(v as i64);
        }
        self.app.events.replay_into(id, &q, target).await
    }
}
