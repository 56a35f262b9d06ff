//! The quick start, end to end: an event-sourced `World` saved in a real database.
//!
//! Runs on the embedded default (an SQLite database in memory) or on the database named by
//! `DB_URI` / `ES_DATABASE_URL` (`sqlite:…`, `postgres://…`, `mysql://…`, `memory:`). Set
//! `CIPHER_KEY` (base64, 16/24/32 bytes) to encrypt; without one, the example makes a key.
//! It prints each check and exits non-zero if any fails.

#[path = "checks/mod.rs"]
mod checks;

use checks::Checks;
use es_runtime::application::Application;
use es_runtime::mapper::Cipher;
use es_runtime::notify::{to_events, NotificationLogReader};
use es_runtime::prelude::*;
use es_runtime::store::EventQuery;
use std::process::ExitCode;

#[aggregate]
pub struct World {
    history: Vec<String>,
    #[attribute]
    ruler: String,
}

#[aggregate]
impl World {
    #[event(Created)]
    pub fn create(ruler: String) -> Self {
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

#[tokio::main]
async fn main() -> ExitCode {
    checks::exit_code(run().await)
}

async fn run() -> Result<usize> {
    use es_runtime::application::config::env_var;
    if env_var("DB_URI").is_none() && env_var("ES_DATABASE_URL").is_none() {
        let embedded = if cfg!(feature = "sqlite") {
            "sqlite::memory:"
        } else {
            "memory:"
        };
        std::env::set_var("DB_URI", embedded);
    }
    if env_var("CIPHER_KEY").is_none() {
        std::env::set_var("CIPHER_KEY", Cipher::random_key(32)?);
    }
    let app = Application::from_env(format!(
        "quickstart{}",
        &Uuid::new_v4().simple().to_string()[..6]
    ))
    .await?;
    println!(
        "application {} on {}",
        app.name(),
        env_var("DB_URI")
            .or_else(|| env_var("ES_DATABASE_URL"))
            .unwrap_or_default()
    );
    let mut c = Checks::new();

    // Create, command, assign.
    let mut world = World::create("gods".into())?;
    world.make_it_so("dinosaurs".into())?;
    world.make_it_so("trucks".into())?;
    let version = world.version();
    world.make_it_so("internet".into())?;
    world.set_ruler("money".into())?;
    c.check(world.ruler == "money", "ruler assigned");
    c.check(
        world.history == ["dinosaurs", "trucks", "internet"],
        "history from three commands",
    );
    app.save(&mut world).await?;
    c.check(
        world.pending_events().is_empty(),
        "save clears pending events",
    );

    // Retrieve: replay stored events.
    let copy: World = app.get(world.id()).await?;
    c.check(
        copy.ruler == "money" && copy.history == world.history,
        "retrieved state equals saved state",
    );
    c.check(
        copy.head() == world.head(),
        "retrieved head hash equals saved head hash",
    );

    // Discard.
    world.discard()?;
    app.save(&mut world).await?;
    c.check(
        !app.repository::<World>().contains(world.id()).await?,
        "discarded aggregate is not in the repository",
    );
    c.check(
        matches!(app.get::<World>(world.id()).await, Err(Error::NotFound(_))),
        "getting it is NotFound",
    );

    // Historical state.
    let mut old: World = app.repository().get_at_version(world.id(), version).await?;
    c.check(
        old.history == ["dinosaurs", "trucks"] && old.ruler == "gods",
        "state at an earlier version",
    );

    // Optimistic concurrency: no branches.
    old.make_it_so("future".into())?;
    c.check(
        matches!(app.save(&mut old).await, Err(Error::Concurrency(_))),
        "saving a stale copy is a ConcurrencyError",
    );

    // Data integrity: every event's hash, and the chain up to head.
    let events = app
        .event_store()
        .get_events(world.id(), &EventQuery::all())
        .await?;
    let mut last = es_runtime::domain::integrity::genesis_hash().to_string();
    let mut chain_ok = true;
    for e in &events {
        chain_ok &= e.verify_hash().is_ok() && e.meta().previous_hash == last;
        last = e.meta().hash.clone();
    }
    c.check(
        chain_ok && events.len() == 6,
        "every event's hash verifies and links to the one before",
    );
    c.check(
        last == world.head(),
        "the chain ends at the aggregate's head hash",
    );

    // Notifications: follow the application's log with a reader.
    let log = app.notification_log(20)?;
    let mut reader = NotificationLogReader::new(std::sync::Arc::new(log));
    let notifications = reader.read_all().await?;
    let ids: Vec<i64> = notifications.iter().map(|n| n.id).collect();
    c.check(ids == [1, 2, 3, 4, 5, 6], "notification ids are 1..6");
    let events = to_events(app.mapper(), &notifications)?;
    c.check(
        events.iter().all(|e| e.originator_id() == world.id()),
        "notifications decode (and decrypt) back into the world's events",
    );
    c.check(
        reader.read_all().await?.is_empty(),
        "a second read returns nothing new",
    );

    // Encryption: nothing readable in the stored records.
    let items = app
        .records()
        .get_items(world.id(), &Default::default())
        .await?;
    let plain = items.iter().any(|i| {
        let s = String::from_utf8_lossy(&i.state);
        ["dinosaurs", "trucks", "internet", "money"]
            .iter()
            .any(|w| s.contains(w))
            || i.topic.contains("World")
    });
    c.check(
        items.len() == 6 && !plain,
        "stored records reveal none of the plaintext",
    );
    Ok(c.failed)
}
