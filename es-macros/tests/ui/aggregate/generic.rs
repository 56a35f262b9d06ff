use es_runtime::prelude::*;

#[aggregate]
pub struct Bag<T> {
    items: Vec<T>,
}

fn main() {}
