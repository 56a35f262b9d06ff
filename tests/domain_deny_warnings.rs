//! The generated code compiles without a single warning (and with docs on everything public) in
//! a crate that denies them, for public and private aggregates, unused generated methods,
//! attributes, free-standing and logged events.
#![deny(warnings, missing_docs)]

use es_runtime::prelude::*;

/// A public aggregate.
#[aggregate]
pub struct Ledger {
    entries: Vec<i64>,
    #[attribute]
    owner: String,
}

#[aggregate]
impl Ledger {
    /// Opens a ledger.
    #[event(Opened)]
    pub fn open(owner: String) -> Self {
        Ledger {
            entries: Vec::new(),
            owner,
        }
    }

    /// Records an entry.
    #[event(Recorded)]
    pub fn record(&mut self, mut amount: i64) {
        amount *= 1;
        self.entries.push(amount);
    }
}

/// A free-standing event.
#[event(aggregate = Ledger)]
pub struct Audited {
    /// Who audited.
    pub by: String,
}

impl Mutate<Ledger> for Audited {
    fn mutate(&self, _ledger: &mut Ledger) {}
}

// A private aggregate whose generated methods are partly unused.
#[aggregate]
struct Scratch {
    #[attribute]
    value: u8,
    #[attribute]
    unused: bool,
}

#[aggregate]
impl Scratch {
    #[event(Created)]
    fn create() -> Self {
        Scratch {
            value: 0,
            unused: false,
        }
    }
    #[event]
    fn tweak(&mut self) {
        self.value += 1;
    }
}

#[test]
fn generated_code_is_warning_free() {
    let mut l = Ledger::open("me".into()).unwrap();
    l.record(3).unwrap();
    l.set_owner("you".into()).unwrap();
    l.trigger(Audited { by: "them".into() }).unwrap();
    assert_eq!(l.entries, [3]);
    assert_eq!(l.owner, "you");
    assert_eq!(l.collect_pending().len(), 4);

    let mut s = Scratch::create().unwrap();
    s.tweak().unwrap();
    s.set_value(9).unwrap();
    assert_eq!(s.value, 9);
    assert!(!s.unused);
    assert!(s.pending_events()[1].is::<scratch::Tweak>());
}
