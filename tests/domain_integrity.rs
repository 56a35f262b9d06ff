//! Manual 7.3.1 (data integrity): SHA-256 over each event's state including the previous hash,
//! salted, from a configured genesis hash; replay verifies every event and the chain.

use es_runtime::domain::aggregate::{replay, replay_onto};
use es_runtime::domain::event::{decode_event, Event};
use es_runtime::domain::integrity::{self, HashConfig};
use es_runtime::prelude::*;
use sha2::{Digest, Sha256};
use std::sync::Once;

const SALT: &str = "c2FsdCBmb3IgdGVzdHM=";
const GENESIS: &str = "genesis-of-the-integrity-tests";

/// Configures salt and genesis hash from the environment, once, before any event is made.
fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("SALT_FOR_DATA_INTEGRITY", SALT);
        std::env::set_var("GENESIS_HASH", GENESIS);
        let config = HashConfig::from_env();
        assert_eq!(config.salt, SALT.as_bytes());
        assert!(integrity::configure(config));
    });
    assert_eq!(integrity::genesis_hash(), GENESIS);
}

#[aggregate]
#[derive(PartialEq)]
pub struct Account {
    balance: i64,
}

#[aggregate]
impl Account {
    #[event(Opened)]
    pub fn open() -> Self {
        Account { balance: 0 }
    }
    #[event(Credited)]
    pub fn credit(&mut self, amount: i64) {
        self.balance += amount;
    }
}

fn history() -> (Account, Vec<Box<dyn AnyEvent>>) {
    setup();
    let mut a = Account::open().unwrap();
    a.credit(10).unwrap();
    a.credit(5).unwrap();
    let events = a.collect_pending();
    (a, events)
}

#[test]
fn each_hash_is_salted_sha256_of_the_state_with_the_previous_hash() {
    let (account, events) = history();
    assert_eq!(events[0].meta().previous_hash, GENESIS);
    for e in &events {
        let state = e.to_state();
        // The state ends with `,"hash":"<64 hex>"}`; the hash covers everything before it, closed.
        let cut = state.len() - 75;
        let mut canonical = state[..cut].to_vec();
        canonical.push(b'}');
        let mut h = Sha256::new();
        h.update(SALT.as_bytes());
        h.update(&canonical);
        let expected: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(e.hash(), expected);
        let unsalted: String = Sha256::digest(&canonical)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(e.hash(), unsalted, "the salt changes the hash");
        let text = String::from_utf8(canonical).unwrap();
        assert!(text.contains(&format!("\"previous_hash\":\"{}\"", e.meta().previous_hash)));
    }
    assert_eq!(account.head(), events[2].hash());
}

#[test]
fn the_head_is_determined_by_the_history() {
    let (account, events) = history();
    let copy: Account = replay(events.clone()).unwrap().unwrap();
    assert_eq!(copy.head(), account.head());
    assert_eq!(copy, account);
    // Replaying in two steps gives the same head.
    let mut partial: Option<Account> = replay(events[..1].to_vec()).unwrap();
    assert_ne!(partial.as_ref().unwrap().head(), account.head());
    replay_onto(&mut partial, events[1..].to_vec()).unwrap();
    assert_eq!(partial.unwrap().head(), account.head());
    // A different history has a different head.
    let (other, _) = history();
    assert_ne!(other.head(), account.head());
}

#[test]
fn damaged_state_is_an_event_hash_error() {
    let (_, events) = history();
    let state = String::from_utf8(events[1].to_state()).unwrap();
    let damaged = state.replace("\"amount\":10", "\"amount\":99");
    assert_ne!(state, damaged);
    match decode_event(events[1].topic(), damaged.as_bytes()) {
        Err(Error::DataIntegrity(IntegrityError::EventHash { version: 1, .. })) => {}
        other => panic!("expected EventHash, got {other:?}"),
    }
    // Undamaged state decodes to an equal event.
    let decoded = decode_event(events[1].topic(), state.as_bytes()).unwrap();
    assert!(*decoded == *events[1]);
}

#[test]
fn a_broken_chain_is_a_head_hash_error() {
    let (account, events) = history();
    // A well-formed event at the right version whose previous hash is not the head.
    let forged = Event::new(
        account.id(),
        1,
        Timestamp::now(),
        "0".repeat(64),
        account::Credited { amount: 1_000_000 },
    )
    .unwrap();
    let seq: Vec<Box<dyn AnyEvent>> = vec![events[0].clone(), Box::new(forged)];
    match replay::<Account>(seq) {
        Err(Error::DataIntegrity(IntegrityError::HeadHash { version: 1, .. })) => {}
        other => panic!("expected HeadHash, got {other:?}"),
    }
    // A first event that does not follow the genesis hash.
    let bad_start = Event::new(
        account.id(),
        0,
        Timestamp::now(),
        "x".into(),
        account::Opened {},
    )
    .unwrap();
    assert!(matches!(
        replay::<Account>(vec![Box::new(bad_start) as Box<dyn AnyEvent>]),
        Err(Error::DataIntegrity(IntegrityError::HeadHash {
            version: 0,
            ..
        }))
    ));
}

#[test]
fn wrong_originator_id_or_version_are_typed_errors() {
    let (_, events) = history();
    let (_, other) = history();
    match replay::<Account>(vec![events[0].clone(), other[1].clone()]) {
        Err(Error::DataIntegrity(IntegrityError::OriginatorId { .. })) => {}
        other => panic!("expected OriginatorId, got {other:?}"),
    }
    match replay::<Account>(vec![events[0].clone(), events[2].clone()]) {
        Err(Error::DataIntegrity(IntegrityError::OriginatorVersion {
            event: 2,
            expected: 1,
            ..
        })) => {}
        other => panic!("expected OriginatorVersion, got {other:?}"),
    }
    // A history must start with a Created event.
    assert!(matches!(
        replay::<Account>(events[1..].to_vec()),
        Err(Error::MismatchedEvent(_))
    ));
}
