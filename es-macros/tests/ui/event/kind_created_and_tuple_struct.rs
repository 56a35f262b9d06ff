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

#[event(aggregate = Order, kind = Created)]
pub struct Shipped(String);

fn main() {}
