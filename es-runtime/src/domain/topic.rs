//! The topic registry: stable topic strings <-> event types, filled at compile time.
//!
//! `#[event]` and `#[aggregate]` submit one [`EventType`] per event type with `inventory`.
//! Registration happens at link time: a crate that defines events must be linked into the
//! final binary. If nothing else from it is used, add `use my_events_crate as _;` to the
//! binary. [`register`] is a manual fallback for types registered at run time.

use crate::domain::event::{AnyEvent, EventPayload, StateRef};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

/// One registered event type.
#[derive(Debug)]
pub struct EventType {
    /// The stable topic.
    pub topic: &'static str,
    /// The Rust type's name, for messages.
    pub type_name: &'static str,
    /// Decodes a parsed, hash-verified state of this type.
    pub decode: fn(&StateRef<'_>) -> Result<Box<dyn AnyEvent>>,
    /// Decodes and applies a parsed, hash-verified state to an `Option<Aggregate>` (replay).
    pub apply: fn(&StateRef<'_>, &mut dyn std::any::Any) -> Result<()>,
}

impl EventType {
    /// The registration of payload type `P` (what the macros submit to `inventory`).
    pub const fn of<P: EventPayload>(type_name: &'static str) -> EventType {
        EventType {
            topic: P::TOPIC,
            type_name,
            decode: crate::domain::event::decode_parsed::<P>,
            apply: crate::domain::event::apply_parsed::<P>,
        }
    }
}

inventory::collect!(EventType);

struct Table {
    by_topic: HashMap<&'static str, &'static EventType>,
    conflicts: HashMap<&'static str, (&'static str, &'static str)>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table {
            by_topic: HashMap::new(),
            conflicts: HashMap::new(),
        };
        for ty in inventory::iter::<EventType> {
            if let Some(prev) = t.by_topic.insert(ty.topic, ty) {
                if prev.type_name != ty.type_name {
                    t.conflicts.insert(ty.topic, (prev.type_name, ty.type_name));
                }
            }
        }
        t
    })
}

fn runtime() -> &'static RwLock<HashMap<&'static str, &'static EventType>> {
    static RUNTIME: OnceLock<RwLock<HashMap<&'static str, &'static EventType>>> = OnceLock::new();
    RUNTIME.get_or_init(Default::default)
}

fn conflict(topic: &str, (first, second): (&str, &str)) -> Error {
    Error::TopicConflict {
        topic: topic.to_string(),
        first: first.to_string(),
        second: second.to_string(),
    }
}

thread_local! {
    /// The types this thread resolved last: a replay resolves the same few topics again and
    /// again. A topic, once resolved, always resolves to the same type (registering another
    /// type under it fails), so these never go stale.
    static RECENT: std::cell::Cell<[Option<&'static EventType>; 4]> =
        const { std::cell::Cell::new([None; 4]) };
}

/// Finds the event type registered under `topic`.
pub fn resolve(topic: &str) -> Result<&'static EventType> {
    let recent = RECENT.with(|r| r.get());
    if let Some(ty) = recent.iter().flatten().find(|ty| ty.topic == topic) {
        return Ok(ty);
    }
    let ty = resolve_uncached(topic)?;
    let mut next = recent;
    next.rotate_right(1);
    next[0] = Some(ty);
    RECENT.with(|r| r.set(next));
    Ok(ty)
}

fn resolve_uncached(topic: &str) -> Result<&'static EventType> {
    let t = table();
    if let Some(c) = t.conflicts.get(topic) {
        return Err(conflict(topic, *c));
    }
    if let Some(ty) = t.by_topic.get(topic) {
        return Ok(ty);
    }
    let rt = runtime()
        .read()
        .map_err(|_| Error::TopicResolution("registry lock poisoned".into()))?;
    rt.get(topic).copied().ok_or_else(|| {
        Error::TopicResolution(format!(
            "no event type is registered for topic {topic:?} (is the crate defining it linked into this binary?)"
        ))
    })
}

/// The registered topic string equal to `topic`, if any, without building an error when there
/// is none: record managers share these strings between the items they read instead of
/// allocating one per item. Only the SQL record managers use it.
#[cfg_attr(
    not(any(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code)
)]
pub(crate) fn registered(topic: &str) -> Option<&'static str> {
    if let Some(ty) = table().by_topic.get(topic) {
        return Some(ty.topic);
    }
    runtime().read().ok()?.get(topic).map(|ty| ty.topic)
}

/// Registers an event type at run time (fallback for types `inventory` cannot see).
/// Fails if another type already claims the topic.
pub fn register(ty: EventType) -> Result<()> {
    if let Some(prev) = table().by_topic.get(ty.topic) {
        if prev.type_name != ty.type_name {
            return Err(conflict(ty.topic, (prev.type_name, ty.type_name)));
        }
        return Ok(());
    }
    let mut rt = runtime()
        .write()
        .map_err(|_| Error::TopicResolution("registry lock poisoned".into()))?;
    if let Some(prev) = rt.get(ty.topic) {
        if prev.type_name != ty.type_name {
            return Err(conflict(ty.topic, (prev.type_name, ty.type_name)));
        }
        return Ok(());
    }
    let leaked: &'static EventType = Box::leak(Box::new(ty));
    rt.insert(leaked.topic, leaked);
    Ok(())
}

/// Checks the whole compile-time registry: an error names the first topic claimed twice.
pub fn check() -> Result<()> {
    match table().conflicts.iter().next() {
        Some((topic, c)) => Err(conflict(topic, *c)),
        None => Ok(()),
    }
}

/// All topics registered at compile time.
pub fn topics() -> Vec<&'static str> {
    let mut v: Vec<_> = table().by_topic.keys().copied().collect();
    v.sort_unstable();
    v
}
