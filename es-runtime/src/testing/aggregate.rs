//! Given / when / then for one aggregate.

use super::{assert_payloads, Events, Payload};
use crate::domain::aggregate::Aggregate;
use std::fmt::Debug;
use uuid::Uuid;

/// An aggregate with a history, before the command under test. Made by [`given`] or
/// [`given_command`].
#[derive(Debug)]
#[must_use = "a test goes on with .when(..)"]
pub struct Given<A> {
    aggregate: Option<A>,
    id: Uuid,
}

/// The history of an aggregate: these events (the first a created event), as if loaded from
/// the store. Panics if they cannot be applied (say, the first is not a created event).
pub fn given<A: Aggregate>(events: impl Events<A>) -> Given<A> {
    Given {
        aggregate: None,
        id: Uuid::new_v4(),
    }
    .and(events)
}

/// The history a creation command makes (for example `given_command(Account::open)`).
/// Panics if the command fails.
pub fn given_command<A: Aggregate, E: Debug>(create: impl FnOnce() -> Result<A, E>) -> Given<A> {
    match create() {
        Ok(mut a) => {
            a.meta_mut().pending.clear();
            Given {
                id: a.id(),
                aggregate: Some(a),
            }
        }
        Err(e) => panic!("given: the creation command failed: {e:?}"),
    }
}

/// A creation command under test: `when_created(|| Account::open("ann".into()))`, then
/// its events or its error.
pub fn when_created<A: Aggregate, E>(create: impl FnOnce() -> Result<A, E>) -> Then<A, A, E> {
    match create() {
        Ok(mut a) => {
            let events = a
                .pending_events()
                .iter()
                .map(|e| Payload::of_event(e.as_ref()))
                .collect();
            a.meta_mut().pending.clear();
            Then {
                aggregate: Some(a.clone()),
                outcome: Ok(a),
                events,
            }
        }
        Err(e) => Then {
            aggregate: None,
            outcome: Err(e),
            events: Vec::new(),
        },
    }
}

impl<A: Aggregate> Given<A> {
    /// More history: these events, after the ones before.
    pub fn and(mut self, events: impl Events<A>) -> Self {
        let shown = events.payloads();
        if let Err(e) = events.trigger_on(self.id, &mut self.aggregate) {
            let list: Vec<String> = shown.iter().map(ToString::to_string).collect();
            panic!(
                "given: the events [{}] cannot be applied: {e}",
                list.join(", ")
            );
        }
        if let Some(a) = &mut self.aggregate {
            a.meta_mut().pending.clear();
        }
        self
    }

    /// More history: what this command does (panics if it fails).
    pub fn and_command<T, E: Debug>(
        mut self,
        command: impl FnOnce(&mut A) -> Result<T, E>,
    ) -> Self {
        let a = self.existing("and_command");
        if let Err(e) = command(a) {
            panic!("given: a command of the history failed: {e:?}");
        }
        a.meta_mut().pending.clear();
        self
    }

    /// The aggregate as the history left it.
    pub fn aggregate(&self) -> Option<&A> {
        self.aggregate.as_ref()
    }

    /// The command under test.
    pub fn when<T, E>(mut self, command: impl FnOnce(&mut A) -> Result<T, E>) -> Then<A, T, E> {
        let a = self.existing("when");
        let outcome = command(a);
        let events = a
            .pending_events()
            .iter()
            .map(|e| Payload::of_event(e.as_ref()))
            .collect();
        a.meta_mut().pending.clear();
        Then {
            aggregate: self.aggregate,
            outcome,
            events,
        }
    }

    fn existing(&mut self, what: &str) -> &mut A {
        match &mut self.aggregate {
            Some(a) => a,
            None => panic!("{what}: the history is empty: given(..) needs a created event first"),
        }
    }
}

/// What a command did: its result and its new events. Assert with [`Then::then`] or
/// [`Then::then_error`].
#[derive(Debug)]
#[must_use = "a test ends with .then(..) or .then_error()"]
pub struct Then<A, T, E> {
    aggregate: Option<A>,
    outcome: Result<T, E>,
    events: Vec<Payload>,
}

impl<A: Aggregate, T, E: Debug> Then<A, T, E> {
    /// Asserts the command succeeded with exactly these new events (compared by type and
    /// payload), and returns the aggregate after it. `then(())` asserts it changed nothing.
    #[track_caller]
    pub fn then(self, expected: impl Events<A>) -> A {
        let (value, aggregate, events) = self.ok("then");
        drop(value);
        assert_payloads("then", &expected.payloads(), &events);
        aggregate
    }

    /// Asserts the command succeeded, and returns what it returned with the aggregate after
    /// it (check the events with [`Then::events`] first, if they matter).
    #[track_caller]
    pub fn then_ok(self) -> (T, A) {
        let (value, aggregate, _) = self.ok("then_ok");
        (value, aggregate)
    }

    /// The payloads of the new events (whatever the outcome).
    pub fn events(&self) -> &[Payload] {
        &self.events
    }

    /// The command's result.
    pub fn outcome(&self) -> &Result<T, E> {
        &self.outcome
    }

    #[track_caller]
    fn ok(self, what: &str) -> (T, A, Vec<Payload>) {
        match (self.outcome, self.aggregate) {
            (Ok(v), Some(a)) => (v, a, self.events),
            (Err(e), _) => panic!("{what}: expected the command to succeed, it failed: {e:?}"),
            (Ok(_), None) => panic!("{what}: the command left no aggregate"),
        }
    }
}

impl<A: Aggregate, T: Debug, E> Then<A, T, E> {
    /// Asserts the command failed, and returns its error (match on it, or compare it). Its
    /// events, if it triggered any before failing, would not be saved.
    #[track_caller]
    pub fn then_error(self) -> E {
        match self.outcome {
            Err(e) => e,
            Ok(v) => {
                let list: Vec<String> = self.events.iter().map(ToString::to_string).collect();
                panic!(
                    "then_error: expected the command to fail, it succeeded with {v:?} and events [{}]",
                    list.join(", ")
                )
            }
        }
    }
}
