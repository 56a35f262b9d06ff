//! Policies: how a process application responds to the events it reads.

use crate::application::{Application, Saveable};
use crate::domain::aggregate::Aggregate;
use crate::domain::event::{AnyEvent, Event, EventPayload};
use crate::error::{Error, Result};
use crate::record::tx::Tx;
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// The future a policy handler returns once boxed.
pub type PolicyFuture = Pin<Box<dyn Future<Output = Result<()>> + Send + 'static>>;

type Handler = Arc<dyn Fn(ProcessContext, Box<dyn AnyEvent>) -> PolicyFuture + Send + Sync>;

/// How a process application responds to events: one async handler per event type.
///
/// A handler gets a [`ProcessContext`] and the event (typed: `Event<P>` dereferences to the
/// payload `P`). It reads aggregates of its own application with [`ProcessContext::get`],
/// changes or creates aggregates, and hands them to [`ProcessContext::save`]. Nothing is
/// written by the handler itself: when it returns `Ok`, the process application writes every
/// saved aggregate's new events together with the tracking record of the notification, in
/// one transaction. When it returns `Err`, nothing at all is written for that notification.
///
/// Events without a handler are ignored (their notification is still tracked), unless
/// [`Policy::on_other`] gives a fallback. Several handlers for one type run in the order they
/// were added, sharing one context.
///
/// ```
/// use es_runtime::prelude::*;
/// use es_runtime::process::Policy;
///
/// #[aggregate]
/// pub struct Order { paid: bool }
/// #[aggregate]
/// impl Order {
///     #[event(Created)]
///     pub fn create() -> Self { Order { paid: false } }
/// }
///
/// #[aggregate]
/// pub struct Invoice { order_id: Uuid }
/// #[aggregate]
/// impl Invoice {
///     #[event(Created)]
///     pub fn create(order_id: Uuid) -> Self { Invoice { order_id } }
/// }
///
/// # fn main() {
/// // Invoices: every new order gets an invoice.
/// let policy = Policy::new().on(|ctx, e: Event<order::Created>| async move {
///     ctx.save(Invoice::create(e.originator_id())?);
///     Ok(())
/// });
/// assert!(policy.handles(<order::Created as EventPayload>::TOPIC));
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Policy {
    handlers: HashMap<&'static str, Vec<Handler>>,
    other: Option<Handler>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut topics: Vec<_> = self.handlers.keys().collect();
        topics.sort();
        f.debug_struct("Policy")
            .field("handles", &topics)
            .field("other", &self.other.is_some())
            .finish()
    }
}

impl Policy {
    /// A policy that ignores every event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Responds to events with payload `P` (name it on the closure's argument:
    /// `|ctx, e: Event<order::Created>| async move { .. }`).
    pub fn on<P, F, Fut>(mut self, handler: F) -> Self
    where
        P: EventPayload,
        F: Fn(ProcessContext, Event<P>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let h: Handler =
            Arc::new(
                move |ctx, event: Box<dyn AnyEvent>| match event.downcast_ref::<P>() {
                    Some(e) => Box::pin(handler(ctx, e.clone())),
                    None => {
                        let msg = format!("{} given to the handler of {}", event.topic(), P::TOPIC);
                        Box::pin(async move { Err(Error::MismatchedEvent(msg)) })
                    }
                },
            );
        self.handlers.entry(P::TOPIC).or_default().push(h);
        self
    }

    /// Responds to every event that has no handler of its own.
    pub fn on_other<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ProcessContext, Box<dyn AnyEvent>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.other = Some(Arc::new(move |ctx, event| Box::pin(handler(ctx, event))));
        self
    }

    /// Adds `other`'s handlers after this policy's (its fallback is used if this one has none).
    pub fn merge(mut self, other: Policy) -> Self {
        for (topic, hs) in other.handlers {
            self.handlers.entry(topic).or_default().extend(hs);
        }
        if self.other.is_none() {
            self.other = other.other;
        }
        self
    }

    /// True if events of `topic` have a handler of their own.
    pub fn handles(&self, topic: &str) -> bool {
        self.handlers.contains_key(topic)
    }

    /// True if events of `topic` have no handler at all (none of their own, and no
    /// [`Policy::on_other`]): a process application then only tracks them.
    pub fn ignores(&self, topic: &str) -> bool {
        self.other.is_none() && !self.handlers.contains_key(topic)
    }

    /// Runs the handlers of `event` with `ctx` (what a process application does for each
    /// notification; call it directly to test a policy). The aggregates the handlers saved
    /// are then in `ctx` ([`ProcessContext::saved`], [`ProcessContext::pending_events`]).
    pub async fn handle(&self, ctx: ProcessContext, event: Box<dyn AnyEvent>) -> Result<()> {
        match self.handlers.get(event.topic()) {
            Some(hs) => {
                for h in hs {
                    h(ctx.clone(), event.clone()).await?;
                }
                Ok(())
            }
            None => match &self.other {
                Some(h) => h(ctx, event).await,
                None => Ok(()),
            },
        }
    }
}

/// An aggregate a handler saved, kept with its type so `get` can return it again.
pub(crate) trait Touched: Send + Sync {
    fn id(&self) -> Uuid;
    fn as_any(&self) -> &dyn Any;
    fn saveable(&mut self) -> &mut dyn Saveable;
    fn pending(&self) -> &[Box<dyn AnyEvent>];
}

impl<A: Aggregate> Touched for A {
    fn id(&self) -> Uuid {
        Aggregate::id(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn saveable(&mut self) -> &mut dyn Saveable {
        self
    }
    fn pending(&self) -> &[Box<dyn AnyEvent>] {
        self.pending_events()
    }
}

struct Inner {
    app: Arc<Application>,
    upstream: String,
    notification_id: i64,
    touched: Mutex<Vec<Box<dyn Touched>>>,
    tx: tokio::sync::Mutex<Option<Tx>>,
    handler: Mutex<Option<&'static str>>,
}

/// What a policy handler works with while it processes one notification: the process
/// application's own aggregates, and the aggregates it saves.
///
/// Cheap to clone (clones share the saved aggregates). Saving does not write: the process
/// application writes everything saved, with the notification's tracking record, in one
/// transaction once the handlers have returned.
#[derive(Clone)]
pub struct ProcessContext {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ProcessContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessContext")
            .field("application", &self.inner.app.name())
            .field("upstream", &self.inner.upstream)
            .field("notification_id", &self.inner.notification_id)
            .field("saved", &self.lock().len())
            .finish()
    }
}

impl ProcessContext {
    /// A context on `app` outside of any notification (to call a policy in a test).
    pub fn new(app: Arc<Application>) -> Self {
        Self::for_notification(app, "", 0)
    }

    pub(crate) fn for_notification(
        app: Arc<Application>,
        upstream: &str,
        notification_id: i64,
    ) -> Self {
        ProcessContext {
            inner: Arc::new(Inner {
                app,
                upstream: upstream.to_string(),
                notification_id,
                touched: Mutex::new(Vec::new()),
                tx: tokio::sync::Mutex::new(None),
                handler: Mutex::new(None),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Box<dyn Touched>>> {
        // A handler that panicked while saving leaves a usable list.
        self.inner
            .touched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The process application's own application (its repository, its name).
    pub fn app(&self) -> &Application {
        &self.inner.app
    }

    /// The application whose notification is being processed (empty outside a notification).
    pub fn upstream(&self) -> &str {
        &self.inner.upstream
    }

    /// The id of the notification being processed (0 outside a notification).
    pub fn notification_id(&self) -> i64 {
        self.inner.notification_id
    }

    /// Aggregate `id` of this application: the copy saved earlier in this context if there is
    /// one (with its unsaved events), else its stored state. Only the process application's
    /// own aggregates can be read: other applications' state arrives as events.
    pub async fn get<A: Aggregate>(&self, id: Uuid) -> Result<A> {
        if let Some(a) = self.saved_copy::<A>(id)? {
            return Ok(a);
        }
        self.inner.app.get(id).await
    }

    fn saved_copy<A: Aggregate>(&self, id: Uuid) -> Result<Option<A>> {
        let touched = self.lock();
        match touched.iter().find(|t| t.id() == id) {
            Some(t) => match t.as_any().downcast_ref::<A>() {
                Some(a) => Ok(Some(a.clone())),
                None => Err(Error::MismatchedEvent(format!(
                    "aggregate {id} saved in this context is not a {}",
                    A::TOPIC
                ))),
            },
            None => Ok(None),
        }
    }

    /// Saves `aggregate`'s new events with this notification's processing. Saving an aggregate
    /// with the id of one saved before replaces it (get it with [`ProcessContext::get`] to
    /// keep the events of both).
    pub fn save<A: Aggregate>(&self, aggregate: A) {
        let mut touched = self.lock();
        let id = Aggregate::id(&aggregate);
        match touched.iter_mut().find(|t| t.id() == id) {
            Some(slot) => *slot = Box::new(aggregate),
            None => touched.push(Box::new(aggregate)),
        }
    }

    /// Copies of the saved aggregates of type `A`, in the order they were first saved.
    pub fn saved<A: Aggregate>(&self) -> Vec<A> {
        self.lock()
            .iter()
            .filter_map(|t| t.as_any().downcast_ref::<A>().cloned())
            .collect()
    }

    /// The new events of every saved aggregate, in order.
    pub fn pending_events(&self) -> Vec<Box<dyn AnyEvent>> {
        self.lock()
            .iter()
            .flat_map(|t| t.pending().iter().cloned())
            .collect()
    }

    /// Takes the saved aggregates (leaving none).
    pub(crate) fn take(&self) -> Vec<Box<dyn Touched>> {
        std::mem::take(&mut *self.lock())
    }

    /// The write transaction of this notification's processing, begun on first use: rows a
    /// handler writes in it (an outbox row, an integration record: manual §12.5, §12.6)
    /// commit together with the saved aggregates' events and the tracking record, or not at
    /// all. See [`Tx`] for what each backend hands out. Without a call to this method the
    /// processing writes through the record manager as usual.
    pub async fn tx(&self) -> Result<tokio::sync::MappedMutexGuard<'_, Tx>> {
        let mut slot = self.inner.tx.lock().await;
        if slot.is_none() {
            *slot = Some(self.inner.app.records().begin_tx().await?);
        }
        let handler = *self
            .inner
            .handler
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let (Some(h), Some(tx)) = (handler, slot.as_mut()) {
            tx.enter_handler(h);
        }
        tokio::sync::MutexGuard::try_map(slot, Option::as_mut)
            .map_err(|_| Error::Operational("the transaction of this context was taken".into()))
    }

    /// Names the handler that runs next (called by `#[policy]`'s dispatch), so that errors
    /// of the work it adds to [`ProcessContext::tx`] name it.
    pub fn enter_handler(&self, handler: &'static str) {
        *self
            .inner
            .handler
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(handler);
    }

    /// Takes the transaction, if a handler began one.
    pub(crate) async fn take_tx(&self) -> Option<Tx> {
        self.inner.tx.lock().await.take()
    }
}
