use es_runtime::prelude::*;

#[aggregate]
pub struct Counter {
    n: u64,
}

#[aggregate]
impl Counter {
    #[event(Created)]
    pub fn create(n: u64) -> Option<Self> {
        Some(Counter { n })
    }
}

fn main() {}
