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
    #[event(Changed)]
    pub fn increment(&mut self) {
        self.n += 1;
    }
    #[event(Changed)]
    pub fn decrement(&mut self) {
        self.n -= 1;
    }
}

fn main() {}
