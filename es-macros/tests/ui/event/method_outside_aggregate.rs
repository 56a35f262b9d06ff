use es_runtime::prelude::*;

pub struct Plain {
    n: u64,
}

impl Plain {
    #[event(Bumped)]
    pub fn bump(&mut self) {
        self.n += 1;
    }
}

fn main() {}
