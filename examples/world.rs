//! The `World` aggregate of the manual's chapter 3, without any infrastructure: commands trigger
//! events, the events are replayed into an equal copy, and the hash chain is checked. Prints
//! each check and exits with status 1 if one fails.

use es_runtime::domain::aggregate::replay;
use es_runtime::prelude::*;

/// A world with a history of things that happened in it, and a ruler.
#[aggregate]
#[derive(PartialEq)]
pub struct World {
    history: Vec<String>,
    #[attribute]
    ruler: String,
}

#[aggregate]
impl World {
    /// Creates a world ruled by `ruler`.
    #[event(Created)]
    pub fn create(ruler: String) -> Self {
        World {
            history: vec![],
            ruler,
        }
    }

    /// Something happened.
    #[event(SomethingHappened)]
    pub fn make_it_so(&mut self, what: String) {
        self.history.push(what);
    }

    /// Several things happened (one event each).
    pub fn make_things_so(&mut self, whats: &[&str]) -> Result<()> {
        for w in whats {
            self.make_it_so(w.to_string())?;
        }
        Ok(())
    }

    /// What happened, in order.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Who rules.
    pub fn ruler(&self) -> &str {
        &self.ruler
    }
}

fn run() -> Result<Vec<(&'static str, bool)>> {
    let mut checks = Vec::new();
    let mut world = World::create("gods".into())?;
    world.make_it_so("dinosaurs".into())?;
    world.make_things_so(&["trucks", "internet"])?;
    world.set_ruler("money".into())?;
    checks.push((
        "history is dinosaurs, trucks, internet",
        world.history() == ["dinosaurs", "trucks", "internet"],
    ));
    checks.push(("ruler is money", world.ruler() == "money"));
    checks.push(("version counts five events", world.version() == 5));

    let events = world.collect_pending();
    checks.push(("five events are pending", events.len() == 5));
    checks.push((
        "the first is the Created event",
        events[0].is::<world::Created>(),
    ));
    checks.push((
        "the last is an AttributeChanged event",
        events[4].is_attribute_changed(),
    ));
    checks.push((
        "nothing is pending after collecting",
        world.pending_events().is_empty(),
    ));

    let copy: World =
        replay(events.iter().cloned())?.ok_or(Error::NotFound("empty history".into()))?;
    checks.push(("replay rebuilds an equal world", copy == world));
    checks.push((
        "the copy's head hash is the last event's hash",
        copy.head() == events[4].hash(),
    ));

    let mut damaged = events.clone();
    damaged.remove(2);
    checks.push((
        "a history with a missing event is rejected",
        matches!(replay::<World>(damaged), Err(Error::DataIntegrity(_))),
    ));

    world.discard()?;
    checks.push((
        "a discarded world refuses commands",
        matches!(
            world.make_it_so("more".into()),
            Err(Error::EntityIsDiscarded(_))
        ),
    ));
    checks.push(("and its history is unchanged", world.history().len() == 3));
    Ok(checks)
}

fn main() {
    match run() {
        Ok(checks) => {
            let mut failed = 0;
            for (what, ok) in &checks {
                println!("{} {what}", if *ok { "ok  " } else { "FAIL" });
                failed += usize::from(!ok);
            }
            if failed > 0 {
                eprintln!("{failed} of {} checks failed", checks.len());
                std::process::exit(1);
            }
            println!("all {} checks passed", checks.len());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
