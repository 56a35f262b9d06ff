//! Manual 7.3 (aggregate root) and the macro surface: commands that trigger many events, pending
//! events published as one list, free-standing events, generated names, topics, replay.

use es_runtime::domain::aggregate::replay;
use es_runtime::domain::pubsub;
use es_runtime::prelude::*;
use std::sync::{Arc, Mutex};

#[aggregate]
#[derive(PartialEq)]
pub struct World {
    history: Vec<String>,
}

#[aggregate]
impl World {
    #[event(Created)]
    pub fn create() -> Self {
        World { history: vec![] }
    }

    #[event(SomethingHappened)]
    pub fn make_it_so(&mut self, what: String) {
        self.history.push(what);
    }

    pub fn make_things_so(&mut self, whats: &[&str]) -> Result<()> {
        for w in whats {
            self.make_it_so(w.to_string())?;
        }
        Ok(())
    }
}

#[test]
fn a_command_with_many_events_publishes_them_as_one_list_on_save() {
    type Batches = Vec<Vec<Box<dyn AnyEvent>>>;
    let received: Arc<Mutex<Batches>> = Arc::default();
    let r = received.clone();
    // Only this test's aggregate type: other tests publish to the same process-wide hub.
    let only_worlds = pubsub::predicate(|evs| {
        evs.iter()
            .all(|e| e.aggregate_topic() == <World as Aggregate>::TOPIC)
    });
    let sub = pubsub::subscribe(move |evs| r.lock().unwrap().push(evs.to_vec()), only_worlds);

    let mut world = World::create().unwrap();
    world
        .make_things_so(&["dinosaurs", "trucks", "internet"])
        .unwrap();

    // State changed, nothing published yet.
    assert!(received.lock().unwrap().is_empty());
    assert_eq!(world.history, ["dinosaurs", "trucks", "internet"]);
    assert_eq!(world.pending_events().len(), 4);

    assert_eq!(world.publish_pending(), 4);
    {
        let got = received.lock().unwrap();
        assert_eq!(got.len(), 1, "one list");
        assert_eq!(got[0].len(), 4, "with four events");
        assert!(got[0][0].is_created());
        let third = got[0][2]
            .downcast_ref::<world::SomethingHappened>()
            .unwrap();
        assert_eq!(third.what, "trucks");
        // Head hash: the hash of the last event.
        assert_eq!(world.head(), got[0][3].hash());
    }
    assert!(world.pending_events().is_empty());
    assert_eq!(world.publish_pending(), 0);
    assert_eq!(received.lock().unwrap().len(), 1, "nothing more published");
    assert!(pubsub::unsubscribe(sub));
}

#[test]
fn pending_events_are_collected_once_in_order() {
    let mut world = World::create().unwrap();
    world.make_things_so(&["a", "b"]).unwrap();
    let events = world.collect_pending();
    let versions: Vec<u64> = events.iter().map(|e| e.originator_version()).collect();
    assert_eq!(versions, [0, 1, 2]);
    assert!(world.collect_pending().is_empty());
    world.make_it_so("c".into()).unwrap();
    let more = world.collect_pending();
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].originator_version(), 3);
    assert_eq!(more[0].meta().previous_hash, events[2].hash());
}

#[test]
fn replay_rebuilds_state_only_from_events() {
    let mut world = World::create().unwrap();
    world.make_things_so(&["x", "y"]).unwrap();
    let events = world.collect_pending();
    let copy: World = replay(events.clone()).unwrap().unwrap();
    assert_eq!(copy, world);
    assert_eq!(copy.history, ["x", "y"]);
    assert_eq!(copy.version(), 3);
    assert_eq!(copy.id(), world.id());
    assert_eq!(copy.created_on(), events[0].timestamp());
    assert_eq!(copy.last_modified(), events[2].timestamp());
    assert!(copy.pending_events().is_empty());
    // A copy replayed from only the first event is the world as created.
    let young: World = replay(events[..1].to_vec()).unwrap().unwrap();
    assert!(young.history.is_empty());
    assert_eq!(young.version(), 1);
}

#[test]
fn events_are_values_with_an_envelope() {
    let mut world = World::create_with_id(Uuid::from_u128(7)).unwrap();
    assert_eq!(world.id(), Uuid::from_u128(7));
    world.make_it_so("rain".into()).unwrap();
    let events = world.collect_pending();
    let e = events[1]
        .downcast_ref::<world::SomethingHappened>()
        .unwrap();
    assert_eq!(e.originator_id(), Uuid::from_u128(7));
    assert_eq!(e.originator_version(), 1);
    assert_eq!(e.previous_hash(), events[0].hash());
    assert_eq!(e.hash().len(), 64);
    assert!(e.timestamp() > events[0].timestamp());
    // The payload compares as a value.
    assert_eq!(
        *e.data(),
        world::SomethingHappened {
            what: "rain".into()
        }
    );
    assert_ne!(
        *e.data(),
        world::SomethingHappened {
            what: "snow".into()
        }
    );
    // Clones of events are equal; events of different types are not.
    assert!(*events[1] == *events[1].clone());
    assert!(*events[0] != *events[1]);
}

// A free-standing event with its own mutation, and the generated module renamed.

#[aggregate]
pub struct Order {
    reservation_id: Option<Uuid>,
    #[attribute]
    note: String,
}

#[aggregate(events = "order_events")]
impl Order {
    #[event(Placed)]
    pub fn place(note: String) -> Self {
        Self {
            reservation_id: None,
            note,
        }
    }
}

/// Published when an order is reserved.
#[event(aggregate = Order)]
pub struct Reserved {
    pub reservation_id: Uuid,
}

impl Mutate<Order> for Reserved {
    fn mutate(&self, o: &mut Order) {
        o.reservation_id = Some(self.reservation_id);
    }
}

#[test]
fn free_standing_events_are_triggered_by_name() {
    let mut order = Order::place("first".into()).unwrap();
    let r = Uuid::new_v4();
    order.trigger(Reserved { reservation_id: r }).unwrap();
    assert_eq!(order.reservation_id, Some(r));
    order.set_note("second".into()).unwrap();
    let events = order.collect_pending();
    assert!(events[0].is::<order_events::Placed>());
    assert_eq!(
        events[1].downcast_ref::<Reserved>().unwrap().reservation_id,
        r
    );
    let changed = events[2]
        .downcast_ref::<order_events::AttributeChanged>()
        .unwrap();
    assert_eq!(changed.name, "note");
    assert_eq!(changed.value, serde_json::json!("second"));
    let copy: Order = replay(events).unwrap().unwrap();
    assert_eq!(copy.reservation_id, Some(r));
    assert_eq!(copy.note, "second");
}

#[test]
fn topics_follow_the_module_path_and_type_names() {
    assert_eq!(<World as Aggregate>::TOPIC, "domain_aggregate::World");
    assert_eq!(
        <world::Created as EventPayload>::TOPIC,
        "domain_aggregate::World.Created"
    );
    assert_eq!(
        <world::SomethingHappened as EventPayload>::TOPIC,
        "domain_aggregate::World.SomethingHappened"
    );
    assert_eq!(
        <world::AttributeChanged as EventPayload>::TOPIC,
        "domain_aggregate::World.AttributeChanged"
    );
    assert_eq!(
        <world::Discarded as EventPayload>::TOPIC,
        "domain_aggregate::World.Discarded"
    );
    assert_eq!(
        <Reserved as EventPayload>::TOPIC,
        "domain_aggregate::Order.Reserved"
    );
    assert_eq!(<world::Created as EventPayload>::KIND, EventKind::Created);
    assert_eq!(
        <world::SomethingHappened as EventPayload>::KIND,
        EventKind::Custom
    );
}

#[test]
fn the_aggregate_serialises_without_its_bookkeeping() {
    let mut order = Order::place("n".into()).unwrap();
    order
        .trigger(Reserved {
            reservation_id: Uuid::from_u128(1),
        })
        .unwrap();
    let json = serde_json::to_value(&order).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"reservation_id": "00000000-0000-0000-0000-000000000001", "note": "n"})
    );
    let back: Order = serde_json::from_value(json).unwrap();
    assert_eq!(back.note, "n");
    assert_eq!(
        back.version(),
        0,
        "bookkeeping is restored separately, from the snapshot's envelope"
    );
}
