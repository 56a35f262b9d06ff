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

/// Replays counter `id` (created at 0, then `Added` 1 to 9: ten events) in pages of many sizes,
/// whole and up to several versions: each replay must give the counter as far as it read.
pub async fn assert_paged_replays(store: &es_runtime::store::EventStore, id: Uuid) {
    use es_runtime::store::EventQuery;
    for page in [1, 2, 3, 9, 10, 11, 5000] {
        for lt in [None, Some(1), Some(4), Some(10)] {
            let mut q = EventQuery::all().page_size(page);
            if let Some(v) = lt {
                q = q.lt(v);
            }
            let mut target: Option<Counter> = None;
            store.replay_into(id, &q, &mut target).await.unwrap();
            let n = lt.unwrap_or(10);
            let got = target.unwrap();
            assert_eq!(got.version(), n as u64, "page {page}, lt {lt:?}");
            assert_eq!(got.count, (0..n).sum::<i64>(), "page {page}, lt {lt:?}");
        }
    }
}
