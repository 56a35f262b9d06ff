use es_runtime::prelude::*;

#[aggregate]
pub struct Counter {
    n: u64,
}

#[aggregate]
impl Counter {
    #[event(Created)]
    pub fn create() -> Self {
        Counter { n: 0 }
    }
    #[event(Incremented)]
    pub fn increment(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

fn main() {}
