//! The domain core used without macros: what `#[aggregate]` generates, written out by hand.

mod common;
use common::{Added, Counter, Started};
use es_runtime::domain::aggregate::{create, replay, trigger};
use es_runtime::domain::event::decode_event;
use es_runtime::prelude::*;

fn history() -> (Counter, Vec<Box<dyn AnyEvent>>) {
    let mut c = create(Uuid::new_v4(), Started { count: 1 }).unwrap();
    trigger(&mut c, Added { by: 2 }).unwrap();
    trigger(&mut c, Added { by: 3 }).unwrap();
    let events = c.collect_pending();
    (c, events)
}

#[test]
fn trigger_applies_and_replay_rebuilds_the_same_state_and_head() {
    let (c, events) = history();
    assert_eq!(c.count, 6);
    assert_eq!(c.version(), 3);
    assert_eq!(events.len(), 3);
    let stored: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| (e.topic().to_string(), e.to_state()))
        .collect();
    let decoded: Vec<Box<dyn AnyEvent>> = stored
        .iter()
        .map(|(t, s)| decode_event(t, s).unwrap())
        .collect();
    for (a, b) in events.iter().zip(&decoded) {
        assert!(**a == **b);
    }
    let copy: Counter = replay(decoded).unwrap().unwrap();
    assert_eq!(copy, c);
    assert_eq!(copy.head(), events[2].meta().hash);
}

#[test]
fn damaged_state_is_an_event_hash_error() {
    let (_, events) = history();
    let mut state = events[1].to_state();
    let s = String::from_utf8(state.clone())
        .unwrap()
        .replace("\"by\":2", "\"by\":9");
    state = s.into_bytes();
    match decode_event(events[1].topic(), &state) {
        Err(Error::DataIntegrity(IntegrityError::EventHash { .. })) => {}
        other => panic!("expected EventHash, got {other:?}"),
    }
}

#[test]
fn broken_chain_and_wrong_version_are_typed_errors() {
    let (_, events) = history();
    let without_second = vec![events[0].clone(), events[2].clone()];
    match replay::<Counter>(without_second) {
        Err(Error::DataIntegrity(IntegrityError::OriginatorVersion { .. })) => {}
        other => panic!("expected OriginatorVersion, got {other:?}"),
    }
    let (_, other_events) = history();
    let mixed = vec![events[0].clone(), other_events[1].clone()];
    match replay::<Counter>(mixed) {
        Err(Error::DataIntegrity(IntegrityError::OriginatorId { .. })) => {}
        other => panic!("expected OriginatorId, got {other:?}"),
    }
}

#[test]
fn discarded_aggregate_rejects_commands() {
    let (mut c, _) = history();
    c.discard().unwrap();
    assert!(c.is_discarded());
    let before = c.clone();
    assert!(matches!(
        trigger(&mut c, Added { by: 1 }),
        Err(Error::EntityIsDiscarded(_))
    ));
    assert_eq!(c, before);
}

#[test]
fn unknown_topic_is_a_topic_resolution_error() {
    let (_, events) = history();
    let state = String::from_utf8(events[1].to_state()).unwrap();
    let err = decode_event("tests::Nope", state.as_bytes()).unwrap_err();
    assert!(matches!(err, Error::DataIntegrity(_)), "{err}");
    assert!(matches!(
        es_runtime::domain::topic::resolve("tests::Nope"),
        Err(Error::TopicResolution(_))
    ));
}
