//! Publish/subscribe: handlers receive the events that are published.
//!
//! Events are published as lists (an aggregate's pending events are published together, as one
//! list, so a subscriber sees every event of a command or none). A handler may have a predicate;
//! it is called only for lists the predicate accepts. Handlers run synchronously, on the
//! publishing thread, in the order they subscribed.
//!
//! Async handlers ([`PubSub::subscribe_async`]) get the list as an `Arc` and return a future.
//! [`PubSub::publish_async`] calls every handler in subscription order and awaits each async
//! one before the next (what [`Application::save`] does after a save commits: see
//! [`Application::subscribers`]); the synchronous [`PubSub::publish`] spawns async handlers on
//! the current tokio runtime instead (without one they are not called).
//!
//! [`PubSub`] is a hub you own; the free functions [`subscribe`], [`unsubscribe`] and
//! [`publish`] use one process-wide hub (what [`Aggregate::publish_pending`] publishes to).
//!
//! ```
//! use es_runtime::domain::pubsub::PubSub;
//! use std::sync::{Arc, Mutex};
//!
//! let hub = PubSub::new();
//! let seen = Arc::new(Mutex::new(0));
//! let s = seen.clone();
//! let id = hub.subscribe(move |events| *s.lock().unwrap() += events.len(), None);
//! hub.publish(&[]);
//! assert!(hub.unsubscribe(id));
//! assert_eq!(*seen.lock().unwrap(), 0);
//! ```
//!
//! [`Aggregate::publish_pending`]: crate::domain::aggregate::Aggregate::publish_pending
//! [`Application::save`]: crate::application::Application::save
//! [`Application::subscribers`]: crate::application::Application::subscribers

use crate::domain::event::{AnyEvent, EventKind};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// A subscribed handler: receives each published list of events.
pub type Handler = Arc<dyn Fn(&[Box<dyn AnyEvent>]) + Send + Sync>;
/// A published list of events, shared with async handlers.
pub type Events = Arc<[Box<dyn AnyEvent>]>;
/// What an async handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// A subscribed async handler.
pub type AsyncHandler = Arc<dyn Fn(Events) -> HandlerFuture + Send + Sync>;
/// Decides whether a handler is called for a published list of events.
pub type Predicate = Arc<dyn Fn(&[Box<dyn AnyEvent>]) -> bool + Send + Sync>;

/// Identifies one subscription, for [`PubSub::unsubscribe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

#[derive(Clone)]
enum Target {
    Sync(Handler),
    Async(AsyncHandler),
}

struct Subscription {
    id: SubscriptionId,
    handler: Target,
    predicate: Option<Predicate>,
}

/// A publish/subscribe hub.
#[derive(Default)]
pub struct PubSub {
    next: AtomicU64,
    subscriptions: RwLock<Vec<Subscription>>,
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub")
            .field("subscriptions", &self.len())
            .finish()
    }
}

impl PubSub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide hub used by the free functions of this module.
    pub fn global() -> &'static PubSub {
        static GLOBAL: OnceLock<PubSub> = OnceLock::new();
        GLOBAL.get_or_init(PubSub::new)
    }

    /// Subscribes `handler`; with a predicate, the handler is called only for the published
    /// lists the predicate accepts.
    pub fn subscribe(
        &self,
        handler: impl Fn(&[Box<dyn AnyEvent>]) + Send + Sync + 'static,
        predicate: Option<Predicate>,
    ) -> SubscriptionId {
        self.add(Target::Sync(Arc::new(handler)), predicate)
    }

    /// Subscribes an async handler: it gets each list it accepts as [`Events`] and returns a
    /// future, awaited by [`PubSub::publish_async`] before the next handler is called.
    ///
    /// ```
    /// use es_runtime::domain::pubsub::PubSub;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let hub = PubSub::new();
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let s = seen.clone();
    /// hub.subscribe_async(
    ///     move |events| {
    ///         let s = s.clone();
    ///         async move {
    ///             tokio::task::yield_now().await;
    ///             s.fetch_add(events.len() + 1, Ordering::SeqCst);
    ///         }
    ///     },
    ///     None,
    /// );
    /// hub.publish_async(&[]).await;
    /// assert_eq!(seen.load(Ordering::SeqCst), 1);
    /// # });
    /// ```
    pub fn subscribe_async<F, Fut>(
        &self,
        handler: F,
        predicate: Option<Predicate>,
    ) -> SubscriptionId
    where
        F: Fn(Events) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: AsyncHandler = Arc::new(move |events| Box::pin(handler(events)));
        self.add(Target::Async(handler), predicate)
    }

    fn add(&self, handler: Target, predicate: Option<Predicate>) -> SubscriptionId {
        let id = SubscriptionId(self.next.fetch_add(1, Ordering::Relaxed));
        let sub = Subscription {
            id,
            handler,
            predicate,
        };
        match self.subscriptions.write() {
            Ok(mut subs) => subs.push(sub),
            Err(poisoned) => poisoned.into_inner().push(sub),
        }
        id
    }

    /// Removes a subscription; returns false if it was not subscribed.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        let mut subs = match self.subscriptions.write() {
            Ok(subs) => subs,
            Err(poisoned) => poisoned.into_inner(),
        };
        let before = subs.len();
        subs.retain(|s| s.id != id);
        subs.len() != before
    }

    /// Calls every subscribed handler whose predicate accepts `events`, in subscription order.
    /// Async handlers are spawned on the current tokio runtime (not called without one).
    /// Handlers may subscribe and unsubscribe while being called; such changes take effect from
    /// the next publication.
    pub fn publish(&self, events: &[Box<dyn AnyEvent>]) {
        let mut shared: Option<Events> = None;
        for handler in self.targets(events) {
            match handler {
                Target::Sync(h) => h(events),
                Target::Async(h) => {
                    if let Ok(rt) = tokio::runtime::Handle::try_current() {
                        let list = shared
                            .get_or_insert_with(|| events.iter().map(|e| e.clone_box()).collect());
                        rt.spawn(h(list.clone()));
                    }
                }
            }
        }
    }

    /// Calls every subscribed handler whose predicate accepts `events`, in subscription order,
    /// awaiting each async handler before calling the next.
    pub async fn publish_async(&self, events: &[Box<dyn AnyEvent>]) {
        let mut shared: Option<Events> = None;
        for handler in self.targets(events) {
            match handler {
                Target::Sync(h) => h(events),
                Target::Async(h) => {
                    let list = shared
                        .get_or_insert_with(|| events.iter().map(|e| e.clone_box()).collect());
                    h(list.clone()).await
                }
            }
        }
    }

    /// The handlers whose predicates accept `events`, in subscription order (taken out of the
    /// lock, so that handlers may subscribe and unsubscribe).
    fn targets(&self, events: &[Box<dyn AnyEvent>]) -> Vec<Target> {
        let subs: Vec<(Target, Option<Predicate>)> = {
            let subs = match self.subscriptions.read() {
                Ok(subs) => subs,
                Err(poisoned) => poisoned.into_inner(),
            };
            subs.iter()
                .map(|s| (s.handler.clone(), s.predicate.clone()))
                .collect()
        };
        subs.into_iter()
            .filter(|(_, p)| p.as_ref().is_none_or(|p| p(events)))
            .map(|(h, _)| h)
            .collect()
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        match self.subscriptions.read() {
            Ok(subs) => subs.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    /// True when nothing is subscribed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Subscribes a handler to the process-wide hub.
pub fn subscribe(
    handler: impl Fn(&[Box<dyn AnyEvent>]) + Send + Sync + 'static,
    predicate: Option<Predicate>,
) -> SubscriptionId {
    PubSub::global().subscribe(handler, predicate)
}

/// Unsubscribes from the process-wide hub.
pub fn unsubscribe(id: SubscriptionId) -> bool {
    PubSub::global().unsubscribe(id)
}

/// Publishes a list of events to the process-wide hub.
pub fn publish(events: &[Box<dyn AnyEvent>]) {
    PubSub::global().publish(events)
}

/// A predicate from a closure.
pub fn predicate(
    f: impl Fn(&[Box<dyn AnyEvent>]) -> bool + Send + Sync + 'static,
) -> Option<Predicate> {
    Some(Arc::new(f))
}

/// A predicate accepting lists in which every event is of `kind` (for example
/// `EventKind::Created`: "is this a Created event?").
pub fn is_kind(kind: EventKind) -> Option<Predicate> {
    predicate(move |events| !events.is_empty() && events.iter().all(|e| e.kind() == kind))
}

/// A predicate accepting lists in which every event comes from aggregate `id`.
pub fn from_originator(id: uuid::Uuid) -> Option<Predicate> {
    predicate(move |events| {
        !events.is_empty() && events.iter().all(|e| e.meta().originator_id == id)
    })
}
