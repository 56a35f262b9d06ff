//! Commands: load an aggregate, run a command on it and save it, again on fresh state when
//! another writer saved the aggregate first.
//!
//! ```
//! use es_runtime::application::Application;
//! use es_runtime::prelude::*;
//!
//! #[aggregate]
//! pub struct Account { balance: u64 }
//! #[aggregate]
//! impl Account {
//!     #[event(Opened)]
//!     pub fn open() -> Self { Account { balance: 0 } }
//!     #[event(Deposited)]
//!     pub fn deposit(&mut self, amount: u64) { self.balance += amount; }
//! }
//!
//! # async fn demo() -> es_runtime::Result<()> {
//! let app = Application::builder("bank").memory().build().await?;
//! let mut account = Account::open()?;
//! app.save(&mut account).await?;
//! let id = account.id();
//! // Name the type on the closure's argument, or use the repository: `app.repository::<Account>().update(..)`.
//! app.update(id, |a: &mut Account| a.deposit(10)).await?;
//! let balance = app.repository::<Account>().update(id, |a| { a.deposit(5)?; Ok::<_, Error>(a.balance) }).await?;
//! assert_eq!(balance, 15);
//! # Ok(()) }
//! # fn main() { tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap() }
//! ```

use super::{Application, Repository};
use crate::domain::aggregate::Aggregate;
use crate::error::Error;
use std::time::Duration;
use uuid::Uuid;

/// How often [`Application::update`] runs a command again when its save loses a race.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    attempts: usize,
    delay: Duration,
}

impl Default for Retry {
    /// 5 attempts, waiting 1 ms before the second and twice as long before each next one.
    fn default() -> Self {
        Retry {
            attempts: 5,
            delay: Duration::from_millis(1),
        }
    }
}

impl Retry {
    /// At most `n` attempts in all (at least one).
    pub fn attempts(n: usize) -> Self {
        Retry {
            attempts: n.max(1),
            ..Retry::default()
        }
    }

    /// One attempt: a conflict is returned at once.
    pub fn never() -> Self {
        Retry::attempts(1)
    }

    /// Waits `delay` before the second attempt, doubling it each time after.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The number of attempts.
    pub fn max_attempts(&self) -> usize {
        self.attempts
    }
}

impl Application {
    /// Loads aggregate `id`, runs `command` on it and saves its new events; when the save
    /// fails with [`Error::Concurrency`] (another writer saved the aggregate meanwhile), loads
    /// it again and runs the command again on the fresh state, up to 5 attempts in all (see
    /// [`Application::update_with`]). Returns what the command returned.
    ///
    /// The command's error type `E` is yours: anything that es errors convert into
    /// (`es_runtime::Error` itself, or an enum of your own with a `From<es_runtime::Error>`
    /// variant). When the command fails, nothing is saved and its error is returned as it is,
    /// without retrying; to carry a domain error of your own inside `es_runtime::Error` (say,
    /// for the `axum` feature's 422), return [`Error::domain`]. Only conflicts are retried: an
    /// [`Error::Operational`] failure of the save is returned, because the save may have been
    /// committed before the connection was lost, and running the command again would apply
    /// it twice. A missing or discarded aggregate is [`Error::NotFound`].
    pub async fn update<A, T, E>(
        &self,
        id: Uuid,
        command: impl FnMut(&mut A) -> Result<T, E>,
    ) -> Result<T, E>
    where
        A: Aggregate,
        E: From<Error>,
    {
        self.update_with(Retry::default(), id, command).await
    }

    /// [`Application::update`] with a retry policy of your own.
    pub async fn update_with<A, T, E>(
        &self,
        retry: Retry,
        id: Uuid,
        mut command: impl FnMut(&mut A) -> Result<T, E>,
    ) -> Result<T, E>
    where
        A: Aggregate,
        E: From<Error>,
    {
        let mut wait = retry.delay;
        let mut attempt = 1;
        loop {
            let mut aggregate: A = self.get(id).await?;
            let out = command(&mut aggregate)?;
            match self.save(&mut aggregate).await {
                Ok(()) => return Ok(out),
                Err(Error::Concurrency(m)) if attempt < retry.attempts => {
                    tracing::debug!(application = %self.name(), aggregate_id = %id, attempt, conflict = %m, "es: command conflicted, retrying");
                    metrics::counter!("es_command_retries_total", "application" => self.name().to_string()).increment(1);
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl<A: Aggregate> Repository<'_, A> {
    /// [`Application::update`] for this repository's aggregate type, so that the closure needs
    /// no type annotation: `app.repository::<Account>().update(id, |a| a.deposit(5))`.
    pub async fn update<T, E: From<Error>>(
        &self,
        id: Uuid,
        command: impl FnMut(&mut A) -> Result<T, E>,
    ) -> Result<T, E> {
        self.app.update(id, command).await
    }
}
