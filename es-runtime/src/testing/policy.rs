//! Given / when / then for policies (and, through [`Downstream`], anything else that responds
//! to upstream events).

use super::{assert_payloads, Events, Payload};
use crate::application::{Application, Saveable};
use crate::domain::aggregate::Aggregate;
use crate::domain::event::AnyEvent;
use crate::error::{Error, Result};
use crate::process::{Policy, ProcessContext};
use async_trait::async_trait;
use std::sync::Arc;
use uuid::Uuid;

/// Something that responds to upstream events by writing to an application: what
/// [`PolicyTest`] drives. [`Policy`] implements it as a process application runs it (the
/// handlers of one event with a fresh [`ProcessContext`], then one save of the aggregates they
/// saved). A projection implements it by writing its rows (in `app`'s database or its own),
/// and a test then reads the rows back.
#[async_trait]
pub trait Downstream: Send + Sync {
    /// Responds to one upstream event; returns the new events it saved (empty if none).
    async fn respond(
        &self,
        app: &Arc<Application>,
        event: Box<dyn AnyEvent>,
    ) -> Result<Vec<Box<dyn AnyEvent>>>;
}

#[async_trait]
impl Downstream for Policy {
    async fn respond(
        &self,
        app: &Arc<Application>,
        event: Box<dyn AnyEvent>,
    ) -> Result<Vec<Box<dyn AnyEvent>>> {
        let ctx = ProcessContext::new(app.clone());
        self.handle(ctx.clone(), event).await?;
        let events = ctx.pending_events();
        let mut touched = ctx.take();
        let mut saveables: Vec<&mut dyn Saveable> =
            touched.iter_mut().map(|t| t.saveable()).collect();
        app.save_all(&mut saveables).await?;
        Ok(events)
    }
}

/// The events of an upstream aggregate with id `id`, made from payloads (the first a created
/// event), for [`PolicyTest::given`] and [`PolicyTest::when`]. Panics if they cannot be
/// applied.
pub fn upstream_events<A: Aggregate>(id: Uuid, events: impl Events<A>) -> Vec<Box<dyn AnyEvent>> {
    let mut target: Option<A> = None;
    if let Err(e) = events.trigger_on(id, &mut target) {
        panic!("upstream_events: the events cannot be applied: {e}");
    }
    target.map(|mut a| a.collect_pending()).unwrap_or_default()
}

/// A policy (or any [`Downstream`]) under test, on an application of its own: given upstream
/// events (already processed), when more upstream events arrive, then these saved
/// aggregates and events, or this error.
///
/// ```
/// use es_runtime::prelude::*;
/// use es_runtime::process::Policy;
/// use es_runtime::testing::{upstream_events, PolicyTest};
///
/// #[aggregate]
/// pub struct Order { total: u64 }
/// #[aggregate]
/// impl Order {
///     #[event(Placed)]
///     pub fn place(total: u64) -> Self { Order { total } }
/// }
///
/// #[aggregate]
/// pub struct Invoice { order_id: Uuid, amount: u64 }
/// #[aggregate]
/// impl Invoice {
///     #[event(Issued)]
///     pub fn issue(order_id: Uuid, amount: u64) -> Self { Invoice { order_id, amount } }
/// }
///
/// fn invoicing() -> Policy {
///     Policy::new().on(|ctx, e: Event<order::Placed>| async move {
///         if e.total == 0 {
///             return Err(Error::domain(std::io::Error::other("nothing to invoice")));
///         }
///         ctx.save(Invoice::issue(e.originator_id(), e.total)?);
///         Ok(())
///     })
/// }
///
/// # async fn demo() {
/// let order = Uuid::new_v4();
/// let then = PolicyTest::new(invoicing()).await
///     .when(upstream_events::<Order>(order, order::Placed { total: 30 })).await;
/// then.then_events::<Invoice>(invoice::Issued { order_id: order, amount: 30 });
/// let invoices: Vec<Invoice> = then.then_saved().await;
/// assert_eq!(invoices[0].amount, 30);
///
/// // A refusal: the error, and nothing saved.
/// let then = PolicyTest::new(invoicing()).await
///     .when(upstream_events::<Order>(Uuid::new_v4(), order::Placed { total: 0 })).await;
/// assert_eq!(then.then_error().to_string(), "nothing to invoice");
/// # }
/// # fn main() { tokio::runtime::Runtime::new().unwrap().block_on(demo()) }
/// ```
pub struct PolicyTest<D = Policy> {
    app: Arc<Application>,
    downstream: D,
}

impl<D> std::fmt::Debug for PolicyTest<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyTest")
            .field("app", &self.app.name())
            .finish()
    }
}

impl<D: Downstream> PolicyTest<D> {
    /// `downstream` on a new application in memory.
    pub async fn new(downstream: D) -> Self {
        let app = Application::builder("policy-test").memory().build().await;
        match app {
            Ok(app) => Self::on(Arc::new(app), downstream),
            Err(e) => panic!("PolicyTest: cannot build an application in memory: {e}"),
        }
    }

    /// `downstream` writing to `app` (a database of your choice, aggregates saved beforehand).
    pub fn on(app: Arc<Application>, downstream: D) -> Self {
        PolicyTest { app, downstream }
    }

    /// The application the downstream writes to.
    pub fn app(&self) -> &Arc<Application> {
        &self.app
    }

    /// Upstream events already processed: each is responded to in order (panics if one
    /// fails).
    pub async fn given(self, events: Vec<Box<dyn AnyEvent>>) -> Self {
        for e in events {
            let topic = e.topic();
            if let Err(err) = self.downstream.respond(&self.app, e).await {
                panic!("given: the response to {topic} failed: {err}");
            }
        }
        self
    }

    /// Upstream events under test, responded to in order until one fails.
    pub async fn when(self, events: Vec<Box<dyn AnyEvent>>) -> PolicyThen {
        let mut saved = Vec::new();
        let mut outcome = Ok(());
        for e in events {
            match self.downstream.respond(&self.app, e).await {
                Ok(new) => saved.extend(new),
                Err(err) => {
                    outcome = Err(err);
                    break;
                }
            }
        }
        PolicyThen {
            app: self.app,
            outcome,
            saved,
        }
    }
}

/// What the upstream events under test led to.
#[derive(Debug)]
#[must_use = "a test ends with .then_events(..), .then_saved() or .then_error()"]
pub struct PolicyThen {
    app: Arc<Application>,
    outcome: Result<()>,
    saved: Vec<Box<dyn AnyEvent>>,
}

impl PolicyThen {
    /// Asserts every response succeeded and the new events of aggregates of type `A` are
    /// exactly these (by type and payload, in order); events of other types are not compared.
    #[track_caller]
    pub fn then_events<A: Aggregate>(&self, expected: impl Events<A>) -> &Self {
        self.succeeded("then_events");
        let actual: Vec<Payload> = self
            .saved
            .iter()
            .filter(|e| e.aggregate_topic() == A::TOPIC)
            .map(|e| Payload::of_event(e.as_ref()))
            .collect();
        assert_payloads("then_events", &expected.payloads(), &actual);
        self
    }

    /// Asserts every response succeeded, and returns the aggregates of type `A` that were
    /// saved, as stored now (loaded from the application), in the order they were first
    /// saved.
    pub async fn then_saved<A: Aggregate>(&self) -> Vec<A> {
        self.succeeded("then_saved");
        let mut ids: Vec<Uuid> = Vec::new();
        for e in self
            .saved
            .iter()
            .filter(|e| e.aggregate_topic() == A::TOPIC)
        {
            if !ids.contains(&e.originator_id()) {
                ids.push(e.originator_id());
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.app.get::<A>(id).await {
                Ok(a) => out.push(a),
                Err(e) => panic!("then_saved: {} {id} cannot be read back: {e}", A::TOPIC),
            }
        }
        out
    }

    /// Asserts a response failed, and returns its error (what a process application would
    /// wrap in [`Error::Processing`]). Nothing of the failed response was saved.
    #[track_caller]
    pub fn then_error(self) -> Error {
        match self.outcome {
            Err(e) => e,
            Ok(()) => panic!(
                "then_error: expected a response to fail, all succeeded with events [{}]",
                self.payload_list()
            ),
        }
    }

    /// Every new event saved, of any aggregate type.
    pub fn events(&self) -> &[Box<dyn AnyEvent>] {
        &self.saved
    }

    /// The application written to.
    pub fn app(&self) -> &Arc<Application> {
        &self.app
    }

    #[track_caller]
    fn succeeded(&self, what: &str) {
        if let Err(e) = &self.outcome {
            panic!("{what}: expected every response to succeed, one failed: {e}");
        }
    }

    fn payload_list(&self) -> String {
        let list: Vec<String> = self
            .saved
            .iter()
            .map(|e| Payload::of_event(e.as_ref()).to_string())
            .collect();
        list.join(", ")
    }
}
