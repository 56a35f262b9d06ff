use es_runtime::prelude::*;

#[event]
pub struct Shipped {
    pub tracking: String,
}

fn main() {}
