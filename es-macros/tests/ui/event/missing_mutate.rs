use es_runtime::prelude::*;

#[aggregate]
pub struct Order {
    shipped: bool,
}

#[aggregate]
impl Order {
    #[event(Created)]
    pub fn create() -> Self {
        Order { shipped: false }
    }
}

#[event(aggregate = Order)]
pub struct Shipped {
    pub tracking: String,
}

fn main() {}
