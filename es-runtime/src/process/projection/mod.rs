//! Projections: read models in the user's own tables, written exactly once (manual §11).
//!
//! A [`Projection`] turns events into rows. Declare one with `#[projection]` on an impl block
//! whose methods are handlers: `async fn(&self, tx: &mut Tx, e: &T) -> Result<()>` (or
//! `e: &Event<T>` / `e: Event<T>` to read the originator id and version too), one per event
//! type. A [`Projector`] follows the notification logs of one or more applications and calls
//! the handlers with each decoded event and the backend's open write transaction
//! ([`Tx`]); the rows the handlers write and the tracking records of the
//! notifications commit together, so each notification is applied exactly once, also across
//! crashes and restarts.
//!
//! - Position: the tracking records, kept under the projection's name (several projections of
//!   one upstream keep independent positions). A restart resumes after the last commit.
//! - Batches: up to [`Projector::batch_size`] notifications per transaction (each still has
//!   its own tracking record, so two instances can never both apply one).
//! - Failure: a handler's error rolls its batch back; the notifications before the failing
//!   one are then committed on their own, and the error ([`Error::Processing`] around
//!   [`Error::Handler`]) names the notification and the handler. Nothing of the failing
//!   notification is written, and it is the next one processed.
//! - Rebuild: [`Projector::rebuild`] empties the tables (the `#[reset]` method) and the
//!   tracking records in one transaction, then replays from notification 1, reporting
//!   progress.
//! - Running: [`Projector::start`] spawns a task that runs the same follower loop as the
//!   runners' process applications: woken by every save through the upstream application
//!   objects, by prompts from other processes ([`Projector::prompts`]: PostgreSQL `NOTIFY`),
//!   or by polling as the fallback; transient failures retried with backoff
//!   ([`Projector::backoff`]); one active instance across processes and hosts
//!   ([`Projector::leases`]), standbys taking over. The [`ProjectionHandle`] reports its
//!   [`Health`](crate::process::Health), stops it, reads the lag and waits for it to catch
//!   up.
//!
//! Why a separate `#[projection]` rather than `#[policy]` handlers taking a transaction: a
//! projection may be replayed from notification 1 at any time, which is only right for code
//! that writes rows and no events (a policy replayed would emit its events again), and a
//! projection's notifications can be committed in batches because they produce no events
//! whose order others follow. The type says which contract a handler is written against.
//! Policies reach the same transaction through [`ProcessContext::tx`](super::ProcessContext::tx)
//! for outbox rows.
//!
//! ```
//! use es_runtime::prelude::*;
//! use es_runtime::process::projection::Projector;
//! use es_runtime::record::memory::InMemoryDatabase;
//! use es_runtime::record::tx::Tx;
//! use es_runtime::application::Application;
//! use std::sync::Arc;
//!
//! #[aggregate]
//! pub struct Account { balance: i64 }
//! #[aggregate]
//! impl Account {
//!     #[event(Opened)]
//!     pub fn open() -> Self { Account { balance: 0 } }
//!     #[event(Deposited)]
//!     pub fn deposit(&mut self, amount: i64) { self.balance += amount; }
//! }
//!
//! #[derive(Default)]
//! pub struct Balances;
//!
//! #[projection(name = "balances")]
//! impl Balances {
//!     async fn opened(&self, tx: &mut Tx, e: &Event<account::Opened>) -> Result<()> {
//!         let id = e.originator_id().to_string();
//!         tx.memory(move |rows| { rows.put("balances", id, 0.into()); Ok(()) })
//!     }
//!     async fn deposited(&self, tx: &mut Tx, e: &Event<account::Deposited>) -> Result<()> {
//!         let (id, amount) = (e.originator_id().to_string(), e.amount);
//!         tx.memory(move |rows| {
//!             let now = rows.get("balances", &id).and_then(|v| v.as_i64()).unwrap_or(0);
//!             rows.put("balances", id, (now + amount).into());
//!             Ok(())
//!         })
//!     }
//! }
//!
//! # async fn demo() -> es_runtime::Result<()> {
//! let db = InMemoryDatabase::new();
//! let accounts = Application::builder("accounts").database(Arc::new(db.clone())).build().await?;
//! let mut a = Account::open()?;
//! a.deposit(30)?;
//! accounts.save(&mut a).await?;
//!
//! let balances = Projector::new(Balances, Arc::new(db.clone())).following(&accounts)?;
//! let progress = balances.catch_up().await?;
//! assert_eq!(progress.applied, 2);
//! assert_eq!(db.table("balances")[&a.id().to_string()], 30);
//! assert_eq!(balances.lag().await?, 0);
//! # Ok(()) }
//! # fn main() { tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap() }
//! ```

mod handle;
mod projector;

pub use handle::ProjectionHandle;
pub use projector::{Projector, RebuildProgress, DEFAULT_BATCH};

use crate::domain::event::AnyEvent;
use crate::error::{Error, Result};
use crate::record::tx::Tx;
use std::future::Future;
use std::pin::Pin;

/// The future a projection's handler returns once boxed.
pub type ProjectionFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// A read model written from events: what `#[projection]` implements for its type.
///
/// Implement it by hand for dispatch of your own; call [`Projection::apply`] with a
/// transaction and an event to test a handler without a projector.
pub trait Projection: Send + Sync + 'static {
    /// The name its tracking records are kept under.
    fn name(&self) -> &str;

    /// True if events of `topic` have a handler (others are tracked and skipped, without
    /// being decoded).
    fn handles(&self, topic: &str) -> bool;

    /// Applies one event in `tx`; an event without a handler is `Ok` and does nothing.
    fn apply<'a>(&'a self, tx: &'a mut Tx, event: &'a dyn AnyEvent) -> ProjectionFuture<'a>;

    /// Empties the projection's tables in `tx` before a rebuild (the `#[reset]` method of a
    /// `#[projection]`; by default nothing).
    fn reset<'a>(&'a self, tx: &'a mut Tx) -> ProjectionFuture<'a> {
        let _ = tx;
        Box::pin(async { Ok(()) })
    }
}

/// What a catch-up did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Notifications tracked (applied or without a handler).
    pub notifications: usize,
    /// Notifications given to a handler.
    pub applied: usize,
    /// Transactions committed.
    pub commits: usize,
}

impl Progress {
    fn add(&mut self, other: Progress) {
        self.notifications += other.notifications;
        self.applied += other.applied;
        self.commits += other.commits;
    }
}

/// The error of an event given to a handler of another type (a dispatch bug).
pub fn mismatched(handler: &str, event: &dyn AnyEvent) -> Error {
    Error::handler(
        handler,
        Error::MismatchedEvent(format!("{} given to {handler}", event.topic())),
    )
}
