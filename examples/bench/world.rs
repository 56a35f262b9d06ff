//! The benchmark's aggregate: the manual's `World`, written out by hand (what `#[aggregate]`
//! generates) so the bench measures the runtime only.

use es_runtime::__private::{inventory, AggregateMeta, EventType};
use es_runtime::domain::aggregate::{create, trigger};
use es_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct World {
    #[serde(skip)]
    meta: AggregateMeta,
    pub history: Vec<String>,
    pub ruler: String,
}

impl Aggregate for World {
    const TOPIC: &'static str = "bench::World";
    const ATTRIBUTE_CHANGED_TOPIC: &'static str = "bench::World.AttributeChanged";
    const DISCARDED_TOPIC: &'static str = "bench::World.Discarded";
    fn meta(&self) -> &AggregateMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut AggregateMeta {
        &mut self.meta
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Created {
    pub ruler: String,
}
impl EventPayload for Created {
    type Aggregate = World;
    const TOPIC: &'static str = "bench::World.Created";
    const KIND: EventKind = EventKind::Created;
    fn construct(self) -> Result<World> {
        Ok(World {
            meta: Default::default(),
            history: vec![],
            ruler: self.ruler,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SomethingHappened {
    pub what: String,
}
impl EventPayload for SomethingHappened {
    type Aggregate = World;
    const TOPIC: &'static str = "bench::World.SomethingHappened";
    fn mutate(self, w: &mut World) -> Result<()> {
        w.history.push(self.what);
        Ok(())
    }
}

inventory::submit! { EventType::of::<Created>("Created") }
inventory::submit! { EventType::of::<SomethingHappened>("SomethingHappened") }

impl World {
    pub fn create(ruler: &str) -> Result<World> {
        create(
            Uuid::new_v4(),
            Created {
                ruler: ruler.to_string(),
            },
        )
    }
    pub fn make_it_so(&mut self, what: String) -> Result<()> {
        trigger(self, SomethingHappened { what })
    }
}
