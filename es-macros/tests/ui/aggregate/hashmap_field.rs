use es_runtime::prelude::*;
use std::collections::{HashMap, HashSet};

#[aggregate]
pub struct Index {
    words: Vec<String>,
}

#[aggregate]
impl Index {
    #[event(Created)]
    pub fn create(seed: HashSet<String>) -> Self {
        Index { words: seed.into_iter().collect() }
    }
    #[event(Counted)]
    pub fn count(&mut self, counts: Vec<HashMap<String, u32>>) {
        self.words.extend(counts.into_iter().flat_map(|m| m.into_keys()));
    }
}

fn main() {}
