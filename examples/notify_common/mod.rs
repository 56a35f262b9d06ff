//! Shared by the notification examples: the aggregate whose events they publish and follow,
//! and argument reading.

#![allow(dead_code)]

use es_runtime::prelude::*;

/// A world where things happen: each command is one event in the application's log. The
/// topic is fixed so that the server and the follower (two programs) agree on it.
#[aggregate(topic = "es_examples::notify::World")]
pub struct World {
    history: Vec<String>,
}

#[aggregate]
impl World {
    /// Creates a world.
    #[event(Created)]
    pub fn create() -> Self {
        World { history: vec![] }
    }

    /// Something happened.
    #[event(SomethingHappened)]
    pub fn make_it_so(&mut self, what: String) {
        self.history.push(what);
    }
}

/// The value after `--name` on the command line, else the environment variable `var`.
pub fn arg(name: &str, var: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(var).ok().filter(|v| !v.is_empty()))
}
