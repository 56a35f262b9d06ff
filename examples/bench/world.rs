//! The benchmark's aggregate: the manual's `World`, as a user writes it.

use es_runtime::prelude::*;

#[aggregate]
pub struct World {
    pub history: Vec<String>,
    #[attribute]
    pub ruler: String,
}

#[aggregate]
impl World {
    #[event(Created)]
    pub fn create_world(ruler: String) -> Self {
        World {
            history: vec![],
            ruler,
        }
    }

    #[event(SomethingHappened)]
    pub fn make_it_so(&mut self, what: String) {
        self.history.push(what);
    }
}

impl World {
    /// A new world ruled by `ruler`.
    pub fn create(ruler: &str) -> Result<World> {
        World::create_world(ruler.to_string())
    }
}
