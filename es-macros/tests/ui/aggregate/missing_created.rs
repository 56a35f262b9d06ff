use es_runtime::prelude::*;

#[aggregate]
pub struct Counter {
    n: u64,
}

#[aggregate]
impl Counter {
    #[event(Incremented)]
    pub fn increment(&mut self) {
        self.n += 1;
    }
}

fn main() {}
