//! Process applications, policies, systems and runners (manual chapter 12).
//!
//! - A [`Policy`] says how to respond to events: one async handler per event type, which
//!   reads and saves aggregates through a [`ProcessContext`].
//! - A [`ProcessApplication`] is an application with a policy that follows the notification
//!   logs of upstream applications. Each notification is processed exactly once: the events
//!   the policy produced and the notification's tracking record are written in one
//!   transaction, and processing resumes from the tracking records.
//! - A [`System`] says who follows whom, with pipeline expressions (`"orders | reservations |
//!   orders"` or `ORDERS | RESERVATIONS | ORDERS`), and how to make each application, without
//!   naming any infrastructure.
//! - A [`Runner`] runs a system on a [`Database`](crate::application::Database):
//!   single-threaded (synchronous propagation) or concurrently (a tokio task per application).
//!
//! Handlers are closures `|ctx, e: Event<P>| async move { .. }` that own their arguments: the
//! event is a typed copy and the context a cheap handle, so handlers need no lifetimes or
//! boxing, their futures are `Send + 'static`, and one policy runs unchanged in a spawned
//! task. A handler never writes: what it gives to [`ProcessContext::save`] is written by the
//! process application, with the tracking record, in one transaction (the manual's "process
//! event", §12.6). Policies are values, so they are tested by calling [`Policy::handle`] with
//! a context and an event, without any runner.
//!
//! ```
//! use es_runtime::prelude::*;
//! use es_runtime::process::{Policy, Runner, System};
//! use std::sync::Arc;
//!
//! #[aggregate]
//! pub struct Order { reserved: bool }
//! #[aggregate]
//! impl Order {
//!     #[event(Created)]
//!     pub fn create() -> Self { Order { reserved: false } }
//! }
//!
//! #[aggregate]
//! pub struct Reservation { order_id: Uuid }
//! #[aggregate]
//! impl Reservation {
//!     #[event(Created)]
//!     pub fn create(order_id: Uuid) -> Self { Reservation { order_id } }
//! }
//!
//! # async fn demo() -> es_runtime::Result<()> {
//! let system = System::new()
//!     .pipeline("orders | reservations")
//!     .process("orders", Policy::new)
//!     .process("reservations", || {
//!         Policy::new().on(|ctx, e: Event<order::Created>| async move {
//!             ctx.save(Reservation::create(e.originator_id())?);
//!             Ok(())
//!         })
//!     });
//! let db = Arc::new(es_runtime::record::memory::InMemoryDatabase::new());
//! let runner = Runner::builder(&system, db).single_threaded().await?;
//! let mut order = Order::create()?;
//! runner.app("orders")?.save(&mut order).await?;
//! // Processed synchronously: the reservation exists now.
//! assert_eq!(runner.app("reservations")?.records().max_notification_id().await?, 1);
//! runner.stop().await?;
//! # Ok(()) }
//! # fn main() { tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap() }
//! ```

mod application;
mod builder;
mod causal;
mod deadletter;
mod follow;
mod health;
pub mod lease;
mod policy;
pub mod projection;
pub mod prompt;
mod registry;
mod retry;
mod runner;
pub mod supervisor;
mod system;
mod worker;

pub use application::{ProcessApplication, Progress, DEFAULT_PAGE_SIZE};
pub use deadletter::{OnPolicyError, ParkedNotification};
pub use health::{Health, State};
pub use policy::{Policy, PolicyFuture, ProcessContext};
pub use registry::{make_default, PolicyDefault, PolicyRegistration, PolicyType};
pub use retry::{is_transient, Backoff};
pub use runner::{Runner, RunnerBuilder};
pub use system::{AppName, Pipeline, ProcessDef, System};
