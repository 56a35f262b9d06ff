use es_runtime::prelude::*;

#[aggregate(topic = "shop.Cart", snapshot = true)]
pub struct Cart {
    items: Vec<String>,
}

#[aggregate(events = "cart_events", table = "carts")]
impl Cart {
    #[event(Created, color = "blue")]
    pub fn create() -> Self {
        Cart { items: vec![] }
    }
}

fn main() {}
