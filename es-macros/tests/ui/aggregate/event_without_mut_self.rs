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
    #[event(Looked)]
    pub fn look(&self, at: u64) {
        let _ = (self.n, at);
    }
    #[event(Consumed)]
    pub fn consume(self) {}
}

fn main() {}
