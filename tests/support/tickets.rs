//! The aggregates of the causal-order tests (`process_causal`, `process_multiprocess`):
//! tickets that make or touch items. Included by path by those two suites only.

use es_runtime::prelude::*;

/// A command: make a new item (`item: None`) or touch an existing one.
#[aggregate]
pub struct Ticket {
    item: Option<Uuid>,
}

#[aggregate]
impl Ticket {
    #[event(Created)]
    pub fn create(item: Option<Uuid>) -> Self {
        Ticket { item }
    }
}

/// What the items application keeps.
#[aggregate]
pub struct Item {
    touches: u32,
}

#[aggregate]
impl Item {
    #[event(Created)]
    pub fn create() -> Self {
        Item { touches: 0 }
    }

    #[event(Touched)]
    pub fn touch(&mut self) {
        self.touches += 1;
    }
}
