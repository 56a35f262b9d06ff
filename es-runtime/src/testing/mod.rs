//! Given / when / then tests for aggregates and policies.
//!
//! Test support: its assertions panic with a message that shows what was expected and what
//! happened, as `assert_eq!` does. Events are compared by type and payload only: ids,
//! versions, timestamps and hashes are the runtime's business, not the test's.
//!
//! # Aggregates
//!
//! [`given`] some events (payloads, as a tuple, an array or a `Vec`; the first must be a
//! created event), [`when`](Given::when) a command, [`then`](Then::then) these new events, or
//! [`then_error`](Then::then_error):
//!
//! ```
//! use es_runtime::prelude::*;
//! use es_runtime::testing::{given, when_created};
//!
//! #[aggregate]
//! pub struct Account { balance: u64 }
//!
//! #[aggregate]
//! impl Account {
//!     #[event(Opened)]
//!     pub fn open() -> Self { Account { balance: 0 } }
//!     #[event(Deposited)]
//!     pub fn deposit(&mut self, amount: u64) { self.balance += amount; }
//!     #[event(Withdrawn)]
//!     fn withdrawn(&mut self, amount: u64) { self.balance -= amount; }
//!     pub fn withdraw(&mut self, amount: u64) -> Result<()> {
//!         if amount > self.balance {
//!             return Err(Error::domain(std::io::Error::other("insufficient funds")));
//!         }
//!         self.withdrawn(amount)
//!     }
//! }
//!
//! # fn main() {
//! // A creation command.
//! when_created(Account::open).then(account::Opened {});
//!
//! // A command on a history.
//! let account = given((account::Opened {}, account::Deposited { amount: 50 }))
//!     .when(|a| a.withdraw(30))
//!     .then(account::Withdrawn { amount: 30 });
//! assert_eq!(account.balance, 20);
//!
//! // A refused command: its error (and nothing to save).
//! let e = given(account::Opened {})
//!     .when(|a| a.withdraw(5))
//!     .then_error();
//! assert_eq!(e.to_string(), "insufficient funds");
//!
//! // Histories made by commands, too.
//! es_runtime::testing::given_command(Account::open)
//!     .and_command(|a| a.deposit(5))
//!     .when(|a| a.deposit(1))
//!     .then([account::Deposited { amount: 1 }]);
//! # }
//! ```
//!
//! # Policies
//!
//! [`PolicyTest`] runs a [`Policy`](crate::process::Policy) on upstream events, the way a
//! process application does (each event's handlers, then a save of what they saved), and
//! shows what it saved: see its documentation. Projections join through [`Downstream`].

mod aggregate;
mod policy;

pub use aggregate::{given, given_command, when_created, Given, Then};
pub use policy::{upstream_events, Downstream, PolicyTest, PolicyThen};

use crate::domain::aggregate::Aggregate;
use crate::domain::event::{AnyEvent, EventPayload};
use crate::error::Result;
use std::fmt;

/// One event as a test compares it: its topic and its payload as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    /// The event type's topic.
    pub topic: &'static str,
    /// The payload.
    pub data: serde_json::Value,
}

impl Payload {
    /// The payload of a payload value.
    pub fn of<P: EventPayload>(p: &P) -> Self {
        Payload {
            topic: P::TOPIC,
            data: serde_json::to_value(p).unwrap_or_else(|e| serde_json::json!(e.to_string())),
        }
    }

    /// The payload of a stored or pending event.
    pub fn of_event(e: &dyn AnyEvent) -> Self {
        Payload {
            topic: e.topic(),
            data: serde_json::from_str(e.data_json())
                .unwrap_or_else(|_| serde_json::json!(e.data_json())),
        }
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.topic, self.data)
    }
}

/// Payloads of aggregate `A`'s events, as tests write them: one payload, a tuple of up to
/// eight (of different types), an array or a `Vec` (of one type), or `()` for none.
pub trait Events<A: Aggregate> {
    /// The payloads, as compared.
    fn payloads(&self) -> Vec<Payload>;
    /// Triggers the events on `target` in order (the first, on `None`, must be a created
    /// event, which makes the aggregate with id `id`).
    fn trigger_on(self, id: uuid::Uuid, target: &mut Option<A>) -> Result<()>;
}

fn trigger_one<P: EventPayload>(
    p: P,
    id: uuid::Uuid,
    target: &mut Option<P::Aggregate>,
) -> Result<()> {
    match target {
        Some(a) => crate::domain::aggregate::trigger(a, p),
        None => {
            *target = Some(crate::domain::aggregate::create(id, p)?);
            Ok(())
        }
    }
}

impl<A: Aggregate> Events<A> for () {
    fn payloads(&self) -> Vec<Payload> {
        Vec::new()
    }
    fn trigger_on(self, _: uuid::Uuid, _: &mut Option<A>) -> Result<()> {
        Ok(())
    }
}

impl<P: EventPayload> Events<P::Aggregate> for P {
    fn payloads(&self) -> Vec<Payload> {
        vec![Payload::of(self)]
    }
    fn trigger_on(self, id: uuid::Uuid, target: &mut Option<P::Aggregate>) -> Result<()> {
        trigger_one(self, id, target)
    }
}

impl<P: EventPayload> Events<P::Aggregate> for Vec<P> {
    fn payloads(&self) -> Vec<Payload> {
        self.iter().map(Payload::of).collect()
    }
    fn trigger_on(self, id: uuid::Uuid, target: &mut Option<P::Aggregate>) -> Result<()> {
        self.into_iter()
            .try_for_each(|p| trigger_one(p, id, target))
    }
}

impl<P: EventPayload, const N: usize> Events<P::Aggregate> for [P; N] {
    fn payloads(&self) -> Vec<Payload> {
        self.iter().map(Payload::of).collect()
    }
    fn trigger_on(self, id: uuid::Uuid, target: &mut Option<P::Aggregate>) -> Result<()> {
        self.into_iter()
            .try_for_each(|p| trigger_one(p, id, target))
    }
}

macro_rules! tuple_events {
    ($($p:ident $i:tt),+) => {
        impl<A: Aggregate, $($p: EventPayload<Aggregate = A>),+> Events<A> for ($($p,)+) {
            fn payloads(&self) -> Vec<Payload> {
                vec![$(Payload::of(&self.$i)),+]
            }
            fn trigger_on(self, id: uuid::Uuid, target: &mut Option<A>) -> Result<()> {
                $(trigger_one(self.$i, id, target)?;)+
                Ok(())
            }
        }
    };
}

tuple_events!(P0 0);
tuple_events!(P0 0, P1 1);
tuple_events!(P0 0, P1 1, P2 2);
tuple_events!(P0 0, P1 1, P2 2, P3 3);
tuple_events!(P0 0, P1 1, P2 2, P3 3, P4 4);
tuple_events!(P0 0, P1 1, P2 2, P3 3, P4 4, P5 5);
tuple_events!(P0 0, P1 1, P2 2, P3 3, P4 4, P5 5, P6 6);
tuple_events!(P0 0, P1 1, P2 2, P3 3, P4 4, P5 5, P6 6, P7 7);

/// Panics unless `actual` equals `expected`, showing both lists.
pub(crate) fn assert_payloads(what: &str, expected: &[Payload], actual: &[Payload]) {
    if expected == actual {
        return;
    }
    let list = |ps: &[Payload]| -> String {
        if ps.is_empty() {
            return "    (none)\n".to_string();
        }
        ps.iter()
            .enumerate()
            .map(|(i, p)| {
                let mark = match (expected.get(i), actual.get(i)) {
                    (Some(e), Some(a)) if e == a => ' ',
                    _ => '>',
                };
                format!("  {mark} {}. {p}\n", i + 1)
            })
            .collect()
    };
    panic!(
        "{what}: the events differ\nexpected {} event(s):\n{}actual {} event(s):\n{}",
        expected.len(),
        list(expected),
        actual.len(),
        list(actual)
    );
}

#[cfg(test)]
mod tests;
