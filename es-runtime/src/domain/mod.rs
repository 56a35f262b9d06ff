//! The domain model layer: aggregates, events, the hash chain, topics, publish/subscribe.
//! Synchronous and free of I/O.
//!
//! # A domain model in es
//!
//! ```
//! use es_runtime::prelude::*;
//!
//! #[aggregate]
//! pub struct World {
//!     history: Vec<String>,
//!     #[attribute]
//!     ruler: String, // generates `set_ruler(..)`, which triggers AttributeChanged
//! }
//!
//! #[aggregate]
//! impl World {
//!     #[event(Created)] // a constructor: `World::create(..)` and `World::create_with_id(id, ..)`
//!     pub fn create(ruler: String) -> Self {
//!         World { history: vec![], ruler }
//!     }
//!
//!     #[event(SomethingHappened)] // arguments become the event's fields, the body its mutation
//!     pub fn make_it_so(&mut self, what: String) {
//!         self.history.push(what);
//!     }
//!
//!     pub fn make_things_so(&mut self, whats: &[&str]) -> Result<()> { // a plain command
//!         for w in whats {
//!             self.make_it_so(w.to_string())?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! /// A free-standing event, nameable from anywhere, with its own mutation.
//! #[event(aggregate = World)]
//! pub struct Renamed {
//!     pub ruler: String,
//! }
//! impl Mutate<World> for Renamed {
//!     fn mutate(&self, w: &mut World) {
//!         w.ruler = self.ruler.clone();
//!     }
//! }
//!
//! # fn main() -> Result<()> {
//! let mut world = World::create("gods".into())?;
//! world.make_things_so(&["dinosaurs", "trucks"])?;
//! world.set_ruler("money".into())?;
//! world.trigger(Renamed { ruler: "the people".into() })?;
//! assert_eq!(world.version(), 5);
//!
//! let events = world.collect_pending();                  // all five, in order, once
//! assert!(events[0].is::<world::Created>());             // generated module `world`
//! assert!(events[3].is_attribute_changed());
//! let copy: World = es_runtime::domain::aggregate::replay(events)?.unwrap();
//! assert_eq!(copy.head(), world.head());                 // same history, same head hash
//! # Ok(())
//! # }
//! ```
//!
//! ## `#[aggregate]` on the struct
//!
//! Adds the bookkeeping ([`aggregate::AggregateMeta`]: id, version, created-on and
//! last-modified timestamps, head hash, pending events), implements [`aggregate::Aggregate`],
//! derives `Clone`, `Debug`, serde `Serialize` and `Deserialize` (unless already derived; the
//! bookkeeping is not serialised), and for each `#[attribute]` field generates
//! `set_<field>(value) -> Result<()>`; `#[attribute(setter = "set_password_hash")]` names the
//! setter otherwise, so that a command of your own can own the natural name (say a
//! `set_password` that hashes, then calls `set_password_hash`). The event's attribute name is
//! the field's name either way. Arguments: `topic = "..."` (default
//! `"<module path>::<Name>"`), `crate = "..."` (default `::es_runtime`). Put `#[aggregate]`
//! before other derives. Fields must be serde-serialisable (snapshots store them).
//!
//! ## `#[aggregate]` on the impl block
//!
//! Each `#[event(Name)]` method becomes an event type `Name` in a generated module (the
//! aggregate's name in snake case, or `events = "..."`) whose fields are the method's arguments.
//! The body moves into a hidden method that the event's mutation calls, both when the event is
//! triggered and when it is replayed; the method itself now triggers the event and returns
//! `Result<()>`. A method without `self` that returns `Self` is a created event: it becomes
//! `fn(..) -> Result<Self>` (random v4 id) plus `<name>_with_id(id, ..)`; struct literals of the
//! aggregate inside the impl get the bookkeeping field added. `#[event]` without a name names
//! the event after the method (`make_it_so` -> `MakeItSo`); `#[event(Name, topic = "...")]`
//! overrides the topic (default `"<aggregate topic>.<Name>"`). The module also has
//! `AttributeChanged` and `Discarded` aliases. It is as visible as the created method (`pub fn
//! create` makes `pub mod world`), so other crates can name the events.
//!
//! ## `#[event(aggregate = A)]` on a struct
//!
//! A free-standing event type: derives `Clone`, `Debug`, `PartialEq` and serde, and applies
//! through your `impl Mutate<A>`; trigger it with `aggregate.trigger(Event { .. })`.
//! Arguments: `topic = "..."`, `version = N` with `upcast = path` (a
//! `fn(from_version: u32, data: &mut JsonValue) -> Result<()>` called once per version step for
//! stored events of older schemas), `kind = Logged` (a log entry: no mutation needed),
//! `crate = "..."`.
//!
//! ## Versions
//!
//! An aggregate's version counts its events: it is 1 after creation, 2 after the next event,
//! and so on, and an event's `originator_version` is the version before it (0 for the
//! created event). This is the numbering of the later reference library (8.x) and of most
//! event-sourcing libraries. **In eventsourcing 7.1.1 `__version__` is one less**: 0 after
//! creation. So where the manual's 7.1.1 shows `__version__ == 0` after creating, es shows
//! `version() == 1`; es's `get_at_version(id, v)` is "after the first `v` events", which is
//! 7.1.1's version `v - 1`; a snapshot "at version v" holds the state after `v` events.
//!
//! ```
//! use es_runtime::prelude::*;
//!
//! #[aggregate]
//! pub struct Counter { count: u32 }
//! #[aggregate]
//! impl Counter {
//!     #[event(Created)]
//!     pub fn create() -> Self { Counter { count: 0 } }
//!     #[event(Incremented)]
//!     pub fn increment(&mut self) { self.count += 1; }
//! }
//!
//! # fn main() -> es_runtime::Result<()> {
//! let mut counter = Counter::create()?;
//! // Just created: one event, version 1 (7.1.1: __version__ == 0).
//! assert_eq!(counter.version(), 1);
//! counter.increment()?;
//! assert_eq!(counter.version(), 2); // 7.1.1: 1
//! // Each event carries the version before it: 0 for the created event.
//! let versions: Vec<u64> = counter
//!     .pending_events()
//!     .iter()
//!     .map(|e| e.meta().originator_version)
//!     .collect();
//! assert_eq!(versions, [0, 1]);
//! # Ok(()) }
//! ```
//!
//! ## Linking
//!
//! Event types are registered at link time (see [`topic`]): a crate that defines events must be
//! linked into the binary that decodes them. If the binary uses nothing else from it, add
//! `use that_crate as _;`.

pub mod aggregate;
pub mod event;
pub(crate) mod finite;
pub mod integrity;
pub mod library;
pub mod pubsub;
pub mod state;
pub mod topic;
