//! Topics registered at compile time: stable strings, resolution to decoders, unknown topics,
//! two types claiming one topic, overrides, schema versions with upcasting, `crate = "..."`.

use es_runtime::domain::aggregate::replay;
use es_runtime::domain::event::{decode_event, Event, JsonValue};
use es_runtime::domain::topic;
use es_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[aggregate(topic = "shop.Cart")]
pub struct Cart {
    items: Vec<(String, u32)>,
}

#[aggregate]
impl Cart {
    #[event(Created)]
    pub fn create() -> Self {
        Cart { items: vec![] }
    }
    #[event(Emptied, topic = "shop.CartWasEmptied")]
    pub fn empty(&mut self) {
        self.items.clear();
    }
}

/// An item was added (schema 2 added the quantity; schema 1 events are upcast with quantity 1).
#[event(aggregate = Cart, version = 2, upcast = upcast_item_added)]
pub struct ItemAdded {
    pub sku: String,
    pub qty: u32,
}

impl Mutate<Cart> for ItemAdded {
    fn mutate(&self, cart: &mut Cart) {
        cart.items.push((self.sku.clone(), self.qty));
    }
}

fn upcast_item_added(from_version: u32, data: &mut JsonValue) -> Result<()> {
    match (from_version, data.as_object_mut()) {
        (1, Some(obj)) => {
            obj.insert("qty".into(), 1.into());
            Ok(())
        }
        _ => Err(Error::Upcast(format!(
            "no upcast from version {from_version}"
        ))),
    }
}

/// What schema 1 of `ItemAdded` looked like (written by hand, not registered).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ItemAddedV1 {
    sku: String,
}
impl EventPayload for ItemAddedV1 {
    type Aggregate = Cart;
    const TOPIC: &'static str = <ItemAdded as EventPayload>::TOPIC;
}

#[test]
fn topics_can_be_overridden() {
    assert_eq!(<Cart as Aggregate>::TOPIC, "shop.Cart");
    assert_eq!(<cart::Created as EventPayload>::TOPIC, "shop.Cart.Created");
    assert_eq!(
        <cart::Emptied as EventPayload>::TOPIC,
        "shop.CartWasEmptied"
    );
    assert_eq!(
        <cart::AttributeChanged as EventPayload>::TOPIC,
        "shop.Cart.AttributeChanged"
    );
    assert_eq!(
        <cart::Discarded as EventPayload>::TOPIC,
        "shop.Cart.Discarded"
    );
    assert_eq!(<ItemAdded as EventPayload>::TOPIC, "shop.Cart.ItemAdded");
    assert_eq!(<ItemAdded as EventPayload>::VERSION, 2);
}

#[test]
fn every_event_type_is_registered_and_resolves_to_its_decoder() {
    let all = topic::topics();
    for t in [
        "shop.Cart.Created",
        "shop.CartWasEmptied",
        "shop.Cart.AttributeChanged",
        "shop.Cart.Discarded",
        "shop.Cart.ItemAdded",
    ] {
        assert!(all.contains(&t), "{t} is registered");
        assert_eq!(topic::resolve(t).unwrap().topic, t);
    }
    let mut cart = Cart::create().unwrap();
    cart.trigger(ItemAdded {
        sku: "tea".into(),
        qty: 2,
    })
    .unwrap();
    cart.empty().unwrap();
    let stored: Vec<(String, Vec<u8>)> = cart
        .collect_pending()
        .iter()
        .map(|e| (e.topic().to_string(), e.to_state()))
        .collect();
    let decoded: Vec<Box<dyn AnyEvent>> = stored
        .iter()
        .map(|(t, s)| decode_event(t, s).unwrap())
        .collect();
    assert_eq!(decoded[1].downcast_ref::<ItemAdded>().unwrap().qty, 2);
    assert!(decoded[2].is::<cart::Emptied>());
    let copy: Cart = replay(decoded).unwrap().unwrap();
    assert!(copy.items.is_empty());
    assert_eq!(copy.version(), 3);
}

#[test]
fn an_unknown_topic_is_a_topic_resolution_error() {
    match topic::resolve("shop.Cart.NeverDefined") {
        Err(Error::TopicResolution(msg)) => {
            assert!(msg.contains("shop.Cart.NeverDefined"), "{msg}")
        }
        other => panic!("expected TopicResolution, got {other:?}"),
    }
}

#[test]
fn older_schema_versions_are_upcast_when_decoded() {
    let cart = Cart::create().unwrap();
    let old = Event::new(
        cart.id(),
        1,
        Timestamp::now(),
        cart.head().to_string(),
        ItemAddedV1 { sku: "tea".into() },
    )
    .unwrap();
    let state = (&old as &dyn AnyEvent).to_state();
    assert!(String::from_utf8_lossy(&state).contains("\"schema\":1"));
    let decoded = decode_event(<ItemAdded as EventPayload>::TOPIC, &state).unwrap();
    let e = decoded.downcast_ref::<ItemAdded>().unwrap();
    assert_eq!((e.sku.as_str(), e.qty), ("tea", 1));
    // The envelope (and so the hash chain) is the stored one.
    assert_eq!(e.meta().schema, 1);
    assert_eq!(e.hash(), old.hash());
}

// Two types claiming one topic.

#[event(aggregate = Cart, topic = "shop.Cart.Duplicated")]
pub struct FirstClaim {}
impl Mutate<Cart> for FirstClaim {
    fn mutate(&self, _: &mut Cart) {}
}

mod elsewhere {
    use super::Cart;
    use es_runtime::prelude::*;

    #[event(aggregate = Cart, topic = "shop.Cart.Duplicated")]
    pub struct SecondClaim {}
    impl Mutate<Cart> for SecondClaim {
        fn mutate(&self, _: &mut Cart) {}
    }
}

#[test]
fn two_types_claiming_one_topic_are_detected() {
    assert_eq!(
        <FirstClaim as EventPayload>::TOPIC,
        <elsewhere::SecondClaim as EventPayload>::TOPIC
    );
    match topic::check() {
        Err(Error::TopicConflict {
            topic,
            first,
            second,
        }) => {
            assert_eq!(topic, "shop.Cart.Duplicated");
            let mut names = [first, second];
            names.sort();
            assert_eq!(
                names,
                [
                    "domain_topics::FirstClaim",
                    "domain_topics::elsewhere::SecondClaim"
                ]
            );
        }
        other => panic!("expected TopicConflict, got {other:?}"),
    }
    assert!(matches!(
        topic::resolve("shop.Cart.Duplicated"),
        Err(Error::TopicConflict { .. })
    ));
    // Registering a third type at run time under a taken topic is refused too.
    let again = topic::register(es_runtime::__private::EventType {
        topic: "shop.Cart.Created",
        ..es_runtime::__private::EventType::of::<ItemAdded>("some::Other")
    });
    assert!(matches!(again, Err(Error::TopicConflict { .. })));
}

// `crate = "..."`: the framework reached through another path.

mod framework {
    pub use es_runtime::*;
}

#[framework::aggregate(crate = "crate::framework")]
pub struct Renamed {
    #[attribute]
    n: u8,
}

#[framework::aggregate(crate = "crate::framework")]
impl Renamed {
    #[event(Created)]
    pub fn create(n: u8) -> Self {
        Renamed { n }
    }
}

#[framework::event(crate = "crate::framework", aggregate = Renamed, kind = Logged)]
pub struct Noted {
    pub text: String,
}

#[test]
fn the_crate_path_can_be_given() {
    let mut r = Renamed::create(1).unwrap();
    r.set_n(2).unwrap();
    r.trigger(Noted { text: "hi".into() }).unwrap();
    assert_eq!(r.n, 2);
    assert_eq!(r.collect_pending().len(), 3);
    assert_eq!(
        <Noted as EventPayload>::TOPIC,
        "domain_topics::Renamed.Noted"
    );
}
