//! Manual 7.2 (domain entities): id, version, timestamps, entity events, factory, triggering,
//! discarding, custom attributes, custom commands and custom events.

use es_runtime::domain::aggregate::{apply_event, replay};
use es_runtime::domain::pubsub;
use es_runtime::prelude::*;
use es_runtime::testing::{given, given_command};
use std::sync::{Arc, Mutex};

/// An entity with two event-sourced attributes.
#[aggregate]
pub struct Entity {
    #[attribute]
    full_name: String,
    #[attribute]
    c: i64,
}

#[aggregate]
impl Entity {
    #[event(Created)]
    pub fn create() -> Self {
        Entity {
            full_name: String::new(),
            c: 0,
        }
    }
}

#[test]
fn entities_have_id_version_and_timestamps() {
    let id = Uuid::new_v4();
    let entity = Entity::create_with_id(id).unwrap();
    assert_eq!(entity.id(), id);
    assert_eq!(
        entity.version(),
        1,
        "one event applied (the Created event has originator version 0)"
    );
    assert_eq!(entity.created_on(), entity.last_modified());
    assert!(entity.created_on().as_micros() > 0);
    // Each created entity has its own id.
    assert_ne!(
        Entity::create().unwrap().id(),
        Entity::create().unwrap().id()
    );
}

#[test]
fn entity_events_chain_and_mutate() {
    let mut entity = Entity::create_with_id(Uuid::from_u128(0xb81d)).unwrap();
    entity.set_c(1).unwrap();
    entity.set_full_name("Mr Boots".into()).unwrap();
    entity.discard().unwrap();
    let events = entity.collect_pending();
    assert_eq!(events.len(), 4);
    // Applying the events one by one: created makes the entity, the others mutate it.
    let mut target: Option<Entity> = None;
    let created = events[0].downcast_ref::<entity::Created>().unwrap().clone();
    apply_event(created, &mut target).unwrap();
    assert_eq!(target.as_ref().unwrap().id(), Uuid::from_u128(0xb81d));
    assert_eq!(target.as_ref().unwrap().version(), 1);
    let a = events[1]
        .downcast_ref::<entity::AttributeChanged>()
        .unwrap()
        .clone();
    assert_eq!(
        (a.name.as_str(), a.value.clone()),
        ("c", serde_json::json!(1))
    );
    apply_event(a, &mut target).unwrap();
    assert_eq!(target.as_ref().unwrap().c, 1);
    assert_eq!(target.as_ref().unwrap().version(), 2);
    let b = events[2]
        .downcast_ref::<entity::AttributeChanged>()
        .unwrap()
        .clone();
    apply_event(b, &mut target).unwrap();
    assert_eq!(target.as_ref().unwrap().full_name, "Mr Boots");
    let d = events[3]
        .downcast_ref::<entity::Discarded>()
        .unwrap()
        .clone();
    apply_event(d, &mut target).unwrap();
    assert!(target.as_ref().unwrap().is_discarded());
    assert_eq!(target.as_ref().unwrap().version(), 4);
    assert_eq!(
        target.as_ref().unwrap().last_modified(),
        events[3].timestamp()
    );
}

#[test]
fn triggering_an_attribute_change_updates_value_version_and_last_modified() {
    let entity = given(entity::Created {})
        .when(|e| e.set_c(3))
        .then(entity::AttributeChanged::new("c", serde_json::json!(3)));
    assert_eq!(entity.c, 3);
    assert_eq!(entity.version(), 2);
    assert!(entity.last_modified() > entity.created_on());
}

#[test]
fn created_and_attribute_changed_events_reach_a_subscriber() {
    let received: Arc<Mutex<Vec<Box<dyn AnyEvent>>>> = Arc::default();
    let r = received.clone();
    let id = Uuid::new_v4();
    let sub = pubsub::subscribe(
        move |evs| r.lock().unwrap().extend(evs.iter().cloned()),
        pubsub::from_originator(id),
    );
    let mut entity = Entity::create_with_id(id).unwrap();
    entity.publish_pending();
    entity.set_full_name("Mr Boots".into()).unwrap();
    entity.publish_pending();
    assert_eq!(entity.full_name, "Mr Boots");
    let got = received.lock().unwrap();
    assert_eq!(got.len(), 2);
    assert!(got[0].is::<entity::Created>());
    assert_eq!(got[0].originator_id(), id);
    assert_eq!(got[0].originator_version(), 0);
    let changed = got[1].downcast_ref::<entity::AttributeChanged>().unwrap();
    assert_eq!(changed.name, "full_name");
    assert_eq!(changed.value, "Mr Boots");
    assert_eq!(changed.originator_version(), 1);
    drop(got);
    assert!(pubsub::unsubscribe(sub));
}

#[test]
fn a_discarded_entity_refuses_changes_and_keeps_its_state() {
    let history = (
        entity::Created {},
        entity::AttributeChanged::new("full_name", serde_json::json!("Mrs Boots")),
        entity::Discarded::new(),
    );
    let err = given(history.clone())
        .when(|e| e.set_full_name("Mr Boots".into()))
        .then_error();
    assert!(matches!(err, Error::EntityIsDiscarded(_)), "{err}");
    let err = given(history.clone()).when(|e| e.discard()).then_error();
    assert!(matches!(err, Error::EntityIsDiscarded(_)), "{err}");
    // The refused commands changed nothing: no event, the same state and version.
    let then = given(history).when(|e| e.set_full_name("Mr Boots".into()));
    assert!(then.events().is_empty());
    assert!(then.outcome().is_err());
}

/// Custom attributes and custom commands (manual 7.2.8, 7.2.9): a user whose password is stored
/// encoded, through an attribute changed by a command.
#[aggregate]
pub struct User {
    #[attribute]
    full_name: String,
    #[attribute]
    password: Option<String>,
}

#[aggregate]
impl User {
    #[event(Created)]
    pub fn create(full_name: String) -> Self {
        User {
            full_name,
            password: None,
        }
    }

    pub fn set_raw_password(&mut self, raw: &str) -> Result<()> {
        let encoded = encode(raw);
        self.set_password(Some(encoded))
    }

    pub fn check_password(&self, raw: &str) -> bool {
        self.password.as_deref() == Some(encode(raw).as_str())
    }
}

fn encode(raw: &str) -> String {
    raw.chars().rev().collect()
}

#[test]
fn custom_attributes_and_commands() {
    let mut user = User::create("Mrs Boots".into()).unwrap();
    user.set_full_name("Mr Boots".into()).unwrap();
    assert_eq!(user.full_name, "Mr Boots");
    user.set_raw_password("password").unwrap();
    assert!(user.check_password("password"));
    assert!(!user.check_password("drowssap"));
    assert_eq!(user.password.as_deref(), Some("drowssap"));
    let events = user.collect_pending();
    let created = events[0].downcast_ref::<user::Created>().unwrap();
    assert_eq!(created.full_name, "Mrs Boots");
    let pw = events[2].downcast_ref::<user::AttributeChanged>().unwrap();
    assert_eq!(
        (pw.name.as_str(), &pw.value),
        ("password", &serde_json::json!("drowssap"))
    );
    let copy: User = replay(events).unwrap().unwrap();
    assert!(copy.check_password("password"));
    assert_eq!(copy.full_name, "Mr Boots");
}

/// Custom events (manual 7.2.10): the command's body is the event's mutation.
#[aggregate]
pub struct World {
    history: Vec<String>,
}

#[aggregate]
impl World {
    #[event(Created)]
    pub fn create() -> Self {
        World {
            history: Vec::new(),
        }
    }
    #[event(SomethingHappened)]
    pub fn make_it_so(&mut self, what: String) {
        self.history.push(what);
    }
}

#[test]
fn custom_events_mutate_through_the_command_body() {
    let world = given_command(World::create)
        .when(|w| {
            w.make_it_so("dinosaurs".into())?;
            w.make_it_so("trucks".into())?;
            w.make_it_so("internet".into())
        })
        .then([
            world::SomethingHappened {
                what: "dinosaurs".into(),
            },
            world::SomethingHappened {
                what: "trucks".into(),
            },
            world::SomethingHappened {
                what: "internet".into(),
            },
        ]);
    assert_eq!(world.history, ["dinosaurs", "trucks", "internet"]);
}

#[test]
fn replaying_an_unknown_attribute_is_a_typed_error() {
    let mut entity = Entity::create().unwrap();
    entity
        .trigger(entity::AttributeChanged::new("nope", serde_json::json!(1)))
        .unwrap_err();
    assert!(matches!(
        entity.trigger(entity::AttributeChanged::new("nope", serde_json::json!(1))),
        Err(Error::UnknownAttribute { .. })
    ));
    assert!(matches!(
        entity.trigger(entity::AttributeChanged::new(
            "c",
            serde_json::json!("not a number")
        )),
        Err(Error::Encoding(_))
    ));
    assert_eq!(entity.version(), 1, "failed mutations change nothing");
    assert_eq!(entity.pending_events().len(), 1);
}
