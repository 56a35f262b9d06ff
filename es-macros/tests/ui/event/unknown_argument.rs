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

#[event(aggregate = Order, priority = 3, version = "two")]
pub struct Shipped {
    pub tracking: String,
}

impl Mutate<Order> for Shipped {
    fn mutate(&self, o: &mut Order) {
        o.shipped = true;
    }
}

fn main() {}
