//! Manual 7.1 (domain events): events as immutable values, publish/subscribe with predicates,
//! the event library (timestamps, time UUIDs, Created / AttributeChanged / Discarded kinds),
//! custom events.

use es_runtime::domain::library::{time_uuid, timestamp_of, EventWithTimeUuid, EventWithTimestamp};
use es_runtime::domain::pubsub::{self, PubSub};
use es_runtime::prelude::*;
use std::sync::{Arc, Mutex};

#[aggregate]
pub struct Thing {
    #[attribute]
    a: i64,
}

#[aggregate]
impl Thing {
    #[event(Created)]
    pub fn create(a: i64) -> Self {
        Thing { a }
    }
    #[event(Bumped)]
    pub fn bump(&mut self, by: i64) {
        self.a += by;
    }
}

/// A message appended to a log.
#[event(aggregate = Thing, kind = Logged)]
pub struct MessageLogged {
    pub message: String,
}

fn events() -> Vec<Box<dyn AnyEvent>> {
    let mut t = Thing::create(1).unwrap();
    t.set_a(2).unwrap();
    t.bump(3).unwrap();
    t.trigger(MessageLogged {
        message: "hello".into(),
    })
    .unwrap();
    t.discard().unwrap();
    t.collect_pending()
}

#[test]
fn events_compare_as_values_and_expose_read_only_payloads() {
    let p = thing::Bumped { by: 1 };
    assert_eq!(p, thing::Bumped { by: 1 });
    assert_ne!(p, thing::Bumped { by: 2 });
    let evs = events();
    let bumped = evs[2].downcast_ref::<thing::Bumped>().unwrap();
    // The envelope derefs to the payload; there is no way to change either through it.
    assert_eq!(bumped.by, 3);
    let copy = bumped.clone();
    assert_eq!(&copy, bumped);
    // Same payload, different envelope: different events.
    let mut other = Thing::create(1).unwrap();
    other.bump(3).unwrap();
    let other_evs = other.collect_pending();
    assert_ne!(
        other_evs[1].downcast_ref::<thing::Bumped>().unwrap(),
        bumped
    );
}

#[test]
fn subscribe_with_predicate_publish_and_unsubscribe() {
    let hub = PubSub::new();
    let received: Arc<Mutex<Vec<Box<dyn AnyEvent>>>> = Arc::default();
    let r = received.clone();
    let id = hub.subscribe(
        move |evs| r.lock().unwrap().extend(evs.iter().cloned()),
        pubsub::is_kind(EventKind::Created),
    );
    let evs = events();
    hub.publish(&evs[..1]);
    assert_eq!(received.lock().unwrap().len(), 1);
    assert!(*received.lock().unwrap()[0] == *evs[0]);
    // The predicate rejects non-Created events.
    hub.publish(&evs[1..2]);
    assert_eq!(received.lock().unwrap().len(), 1);
    assert!(hub.unsubscribe(id));
    assert!(!hub.unsubscribe(id), "already unsubscribed");
    hub.publish(&evs[..1]);
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "no more events after unsubscribing"
    );
    assert!(hub.is_empty());
}

#[test]
fn handlers_run_synchronously_in_subscription_order() {
    let hub = PubSub::new();
    let log: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let (a, b, c) = (log.clone(), log.clone(), log.clone());
    hub.subscribe(move |_| a.lock().unwrap().push("first"), None);
    let second = hub.subscribe(move |_| b.lock().unwrap().push("second"), None);
    hub.subscribe(move |_| c.lock().unwrap().push("third"), None);
    let evs = events();
    hub.publish(&evs);
    // Synchronous: everything ran before publish returned.
    assert_eq!(*log.lock().unwrap(), ["first", "second", "third"]);
    hub.unsubscribe(second);
    hub.publish(&evs);
    assert_eq!(log.lock().unwrap()[3..], ["first", "third"]);
}

#[test]
fn a_handler_may_subscribe_while_being_called() {
    let hub = Arc::new(PubSub::new());
    let h = hub.clone();
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    hub.subscribe(
        move |_| {
            let c = c.clone();
            h.subscribe(move |_| *c.lock().unwrap() += 1, None);
        },
        None,
    );
    hub.publish(&events());
    assert_eq!(
        *count.lock().unwrap(),
        0,
        "a new subscription starts with the next publication"
    );
    hub.publish(&events());
    assert_eq!(*count.lock().unwrap(), 1);
}

#[test]
fn the_process_wide_hub_receives_published_lists() {
    let received: Arc<Mutex<usize>> = Arc::default();
    let r = received.clone();
    let mut t = Thing::create(5).unwrap();
    let id = pubsub::subscribe(
        move |evs| *r.lock().unwrap() += evs.len(),
        pubsub::from_originator(t.id()),
    );
    t.bump(1).unwrap();
    t.publish_pending();
    assert_eq!(*received.lock().unwrap(), 2);
    assert!(pubsub::unsubscribe(id));
}

#[test]
fn kinds_work_as_predicates() {
    let evs = events();
    let kinds: Vec<EventKind> = evs.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Created,
            EventKind::AttributeChanged,
            EventKind::Custom,
            EventKind::Logged,
            EventKind::Discarded
        ]
    );
    let is_created = |e: &dyn AnyEvent| e.is_created();
    assert!(is_created(evs[0].as_ref()));
    assert!(!is_created(evs[4].as_ref()));
    assert!(evs[1].is_attribute_changed());
    assert!(evs[3].is_logged());
    assert!(evs[4].is_discarded());
    assert!(!evs[0].is_discarded());
    assert!(evs[4].is::<thing::Discarded>());
    assert!(evs[3].is::<MessageLogged>());
    assert_eq!(
        evs[3].downcast_ref::<MessageLogged>().unwrap().message,
        "hello"
    );
}

#[test]
fn timestamped_and_time_uuid_events() {
    // Automatic timestamp, strictly increasing.
    let seen = EventWithTimestamp::new("job #1 seen");
    let done = EventWithTimestamp::new("job #1 done");
    assert!(done.timestamp > seen.timestamp);
    assert!(seen.timestamp.as_secs_f64() > 1.5e9);
    // Automatic time-based (v1) UUID, in time order.
    let first = EventWithTimeUuid::new(1);
    let second = EventWithTimeUuid::new(2);
    assert_eq!(first.event_id.get_version_num(), 1);
    assert_ne!(first.event_id, second.event_id);
    assert!(second.timestamp() > first.timestamp());
    assert_eq!(*second, 2);
    let t = time_uuid();
    assert!(timestamp_of(&t).unwrap() > second.timestamp());
    assert!(timestamp_of(&Uuid::new_v4()).is_none());
}

#[test]
fn every_event_carries_originator_id_version_timestamp_and_hashes() {
    let evs = events();
    let id = evs[0].originator_id();
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e.originator_id(), id);
        assert_eq!(e.originator_version(), i as u64);
        assert_eq!(e.hash().len(), 64);
        if i > 0 {
            assert_eq!(e.meta().previous_hash, evs[i - 1].hash());
            assert!(e.timestamp() > evs[i - 1].timestamp());
        }
    }
}
