//! A hand-written aggregate (what `#[aggregate]` generates), shared by the runtime's tests.
#![allow(dead_code)]

use es_runtime::__private::{inventory, EventType};
use es_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    #[serde(skip)]
    pub meta: es_runtime::__private::AggregateMeta,
    pub count: i64,
}

impl Aggregate for Counter {
    const TOPIC: &'static str = "tests::Counter";
    const ATTRIBUTE_CHANGED_TOPIC: &'static str = "tests::Counter.AttributeChanged";
    const DISCARDED_TOPIC: &'static str = "tests::Counter.Discarded";
    fn meta(&self) -> &es_runtime::__private::AggregateMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut es_runtime::__private::AggregateMeta {
        &mut self.meta
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Started {
    pub count: i64,
}
impl EventPayload for Started {
    type Aggregate = Counter;
    const TOPIC: &'static str = "tests::Counter.Started";
    const KIND: EventKind = EventKind::Created;
    fn construct(self) -> Result<Counter> {
        Ok(Counter {
            meta: Default::default(),
            count: self.count,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Added {
    pub by: i64,
}
impl EventPayload for Added {
    type Aggregate = Counter;
    const TOPIC: &'static str = "tests::Counter.Added";
    fn mutate(self, c: &mut Counter) -> Result<()> {
        c.count += self.by;
        Ok(())
    }
}

inventory::submit! { EventType::of::<Started>("Started") }
inventory::submit! { EventType::of::<Added>("Added") }
inventory::submit! { EventType::of::<Discarded<Counter>>("Discarded<Counter>") }
