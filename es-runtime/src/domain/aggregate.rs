//! Aggregates: consistency boundaries whose state comes only from their events.

use crate::domain::event::{AnyEvent, Event, EventKind, EventPayload, HashRef, Timestamp};
use crate::domain::integrity::{self, HashConfig};
use crate::error::{Error, IntegrityError, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use uuid::Uuid;

/// An aggregate's head hash: a SHA-256 digest kept in binary (its hex is made when it is asked
/// for), or text that is not one (a genesis hash, which can be anything). Replaying checks and
/// moves the head without making any hex.
#[derive(Clone, Default)]
pub(crate) struct Head {
    digest: Option<[u8; 32]>,
    /// The text: made from the digest when first asked for, or the text itself.
    text: std::sync::OnceLock<String>,
}

impl Head {
    /// A head from its text (a 64-digit lower-case hex text is kept as its digest too).
    pub(crate) fn from_text(text: String) -> Self {
        Head {
            digest: integrity::parse_hex(text.as_bytes()),
            text: std::sync::OnceLock::from(text),
        }
    }

    /// A head from an event's hash.
    fn of(hash: &HashRef<'_>) -> Self {
        match hash {
            HashRef::Digest(d) => Head {
                digest: Some(*d),
                text: std::sync::OnceLock::new(),
            },
            HashRef::Text(t) => Head::from_text(t.to_string()),
        }
    }

    /// Moves the head to an event's hash.
    fn set(&mut self, hash: &HashRef<'_>) {
        match hash {
            HashRef::Digest(d) => {
                self.digest = Some(*d);
                if self.text.get().is_some() {
                    self.text = std::sync::OnceLock::new();
                }
            }
            HashRef::Text(_) => *self = Head::of(hash),
        }
    }

    /// The head as text.
    pub(crate) fn as_str(&self) -> &str {
        match &self.digest {
            Some(d) => self.text.get_or_init(|| integrity::hex(d)),
            None => self.text.get().map_or("", String::as_str),
        }
    }

    /// The head as a hash (a digest, or the text borrowed).
    pub(crate) fn as_hash(&self) -> HashRef<'_> {
        match self.digest {
            Some(d) => HashRef::Digest(d),
            None => HashRef::Text(std::borrow::Cow::Borrowed(self.as_str())),
        }
    }

    /// True when an event's previous hash is this head.
    fn matches(&self, hash: &HashRef<'_>) -> bool {
        match (&self.digest, hash) {
            (Some(a), HashRef::Digest(b)) => a == b,
            _ => self.as_str() == hash.as_str(&mut [0u8; 64]),
        }
    }
}

/// The bookkeeping every aggregate carries: id, version, timestamps, head hash, pending events.
///
/// `#[aggregate]` adds one of these to the user's struct; read it through [`Aggregate`]'s methods.
#[derive(Clone, Default)]
pub struct AggregateMeta {
    pub(crate) id: Uuid,
    pub(crate) version: u64,
    pub(crate) created_on: Timestamp,
    pub(crate) last_modified: Timestamp,
    pub(crate) head: Head,
    pub(crate) discarded: bool,
    pub(crate) pending: Vec<Box<dyn AnyEvent>>,
    /// The hash settings new events are hashed with (`None`: the process's default): those of
    /// the application the aggregate was loaded from or saved to.
    pub(crate) hashing: Option<Arc<HashConfig>>,
}

impl fmt::Debug for AggregateMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregateMeta")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("head", &self.head.as_str())
            .field("discarded", &self.discarded)
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// Two aggregates' bookkeeping is equal when id, version, timestamps, head and discarded agree
/// (pending events are not compared).
impl PartialEq for AggregateMeta {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id
            && self.version == o.version
            && self.created_on == o.created_on
            && self.last_modified == o.last_modified
            && self.head.as_str() == o.head.as_str()
            && self.discarded == o.discarded
    }
}

impl AggregateMeta {
    /// Bookkeeping restored from a snapshot.
    pub fn restore(
        id: Uuid,
        version: u64,
        created_on: Timestamp,
        last_modified: Timestamp,
        head: String,
        discarded: bool,
    ) -> Self {
        AggregateMeta {
            id,
            version,
            created_on,
            last_modified,
            head: Head::from_text(head),
            discarded,
            pending: Vec::new(),
            hashing: None,
        }
    }

    /// The hash settings new events are hashed with (`None`: the process's default).
    pub fn hashing(&self) -> Option<&Arc<HashConfig>> {
        self.hashing.as_ref()
    }

    /// Makes new events hash with these settings. Does not re-hash pending events (an
    /// application's save does that, see [`rehash_pending`]).
    pub fn set_hashing(&mut self, hashing: Option<Arc<HashConfig>>) {
        self.hashing = hashing;
    }
}

/// Re-hashes an aggregate's pending events with `hashing` when they were hashed with other
/// settings, chaining them from the genesis hash of `hashing` (for a new aggregate) or from the
/// previous hash of the first pending event, and makes the aggregate hash with `hashing` from
/// then on. Applications call this as they save.
pub fn rehash_pending(meta: &mut AggregateMeta, hashing: &Arc<HashConfig>) -> Result<()> {
    if integrity::same(meta.hashing.as_ref(), Some(hashing)) {
        meta.hashing = Some(hashing.clone());
        return Ok(());
    }
    if let Some(first) = meta.pending.first() {
        let mut previous = if first.meta().originator_version == 0 {
            hashing.genesis_hash.clone()
        } else {
            first.meta().previous_hash.clone()
        };
        let mut rehashed = Vec::with_capacity(meta.pending.len());
        for e in &meta.pending {
            let r = e.rehashed(&previous, hashing)?;
            previous.clone_from(&r.meta().hash);
            rehashed.push(r);
        }
        meta.pending = rehashed;
        meta.head = Head::from_text(previous);
    }
    meta.hashing = Some(hashing.clone());
    Ok(())
}

/// An event-sourced aggregate. Implemented by `#[aggregate]`.
///
/// Its state (without the bookkeeping) is serde-serialisable so that snapshots can be taken.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregate",
    label = "`{Self}` needs `#[aggregate]` on its struct",
    note = "add `#[aggregate]` to `struct {Self}` as well as to its `impl` block: the struct's attribute implements `Aggregate`"
)]
pub trait Aggregate:
    Clone + fmt::Debug + Serialize + serde::de::DeserializeOwned + Send + Sync + 'static
{
    /// The aggregate type's stable topic.
    const TOPIC: &'static str;
    /// Topic of this aggregate's [`AttributeChanged`] events.
    const ATTRIBUTE_CHANGED_TOPIC: &'static str;
    /// Topic of this aggregate's [`Discarded`] events.
    const DISCARDED_TOPIC: &'static str;

    /// The bookkeeping.
    fn meta(&self) -> &AggregateMeta;
    /// The bookkeeping, mutably (for the runtime).
    fn meta_mut(&mut self) -> &mut AggregateMeta;

    /// Assigns an event-sourced attribute by name from a JSON value (replay of AttributeChanged).
    fn set_attribute_value(&mut self, name: &str, value: serde_json::Value) -> Result<()> {
        let _ = value;
        Err(Error::UnknownAttribute {
            aggregate: Self::TOPIC,
            name: name.to_string(),
        })
    }

    /// The aggregate's id.
    fn id(&self) -> Uuid {
        self.meta().id
    }
    /// How many events the aggregate has had applied: 1 after creation. The reference
    /// library 7.1.1's `__version__` is one less (0 after creation); see
    /// [the domain docs](crate::domain#versions).
    fn version(&self) -> u64 {
        self.meta().version
    }
    /// When the aggregate was created.
    fn created_on(&self) -> Timestamp {
        self.meta().created_on
    }
    /// When the last event was applied.
    fn last_modified(&self) -> Timestamp {
        self.meta().last_modified
    }
    /// Hash of the last event: determined by the whole history.
    fn head(&self) -> &str {
        self.meta().head.as_str()
    }
    /// True once discarded.
    fn is_discarded(&self) -> bool {
        self.meta().discarded
    }
    /// Events triggered but not yet collected (saved).
    fn pending_events(&self) -> &[Box<dyn AnyEvent>] {
        &self.meta().pending
    }
    /// Takes all pending events, in order; a second call returns none.
    fn collect_pending(&mut self) -> Vec<Box<dyn AnyEvent>> {
        std::mem::take(&mut self.meta_mut().pending)
    }
    /// Discards the aggregate (triggers [`Discarded`]).
    fn discard(&mut self) -> Result<()> {
        trigger(self, Discarded::<Self>::new())
    }
    /// Triggers an event of this aggregate: makes it (hashed, chained), applies its mutation
    /// and appends it to the pending events. Fails with [`Error::EntityIsDiscarded`] once
    /// discarded. Used for free-standing `#[event(aggregate = ...)]` types:
    /// `order.trigger(Reserved { reservation_id })?`.
    fn trigger<P: EventPayload<Aggregate = Self>>(&mut self, event: P) -> Result<()> {
        trigger(self, event)
    }
    /// Publishes all pending events as one list to the process-wide publish/subscribe
    /// mechanism ([`crate::domain::pubsub`]) and clears them; returns how many there were.
    fn publish_pending(&mut self) -> usize {
        let events = self.collect_pending();
        let n = events.len();
        if n > 0 {
            crate::domain::pubsub::publish(&events);
        }
        n
    }
}

/// The envelope of an event being applied, borrowed.
#[derive(Clone, Debug)]
pub struct MetaRef<'a> {
    /// Aggregate id.
    pub originator_id: Uuid,
    /// Aggregate version before the event.
    pub originator_version: u64,
    /// When it happened.
    pub timestamp: Timestamp,
    /// Hash of the previous event.
    pub previous_hash: HashRef<'a>,
    /// The event's own hash.
    pub hash: HashRef<'a>,
    /// The hash settings the event was verified with (`None`: the process's default); the
    /// genesis hash of a first event is theirs, and an aggregate it creates hashes with them.
    pub hashing: Option<&'a Arc<HashConfig>>,
}

impl<'a> MetaRef<'a> {
    /// The envelope's id, version and timestamp, with empty hashes (for the caller to set).
    fn from_envelope(m: &crate::domain::event::EventMeta) -> Self {
        MetaRef {
            originator_id: m.originator_id,
            originator_version: m.originator_version,
            timestamp: m.timestamp,
            previous_hash: HashRef::Text(std::borrow::Cow::Borrowed("")),
            hash: HashRef::Text(std::borrow::Cow::Borrowed("")),
            hashing: None,
        }
    }
}

impl<'a> From<&'a crate::domain::event::EventMeta> for MetaRef<'a> {
    fn from(m: &'a crate::domain::event::EventMeta) -> Self {
        MetaRef {
            originator_id: m.originator_id,
            originator_version: m.originator_version,
            timestamp: m.timestamp,
            previous_hash: HashRef::from(m.previous_hash.as_str()),
            hash: HashRef::from(m.hash.as_str()),
            hashing: None,
        }
    }
}

/// Triggers an event on an existing aggregate: makes it (hashed, chained), applies it, and
/// appends it to the pending events. Fails on a discarded aggregate.
pub fn trigger<A: Aggregate, P: EventPayload<Aggregate = A>>(
    aggregate: &mut A,
    data: P,
) -> Result<()> {
    let m = aggregate.meta();
    if m.discarded {
        return Err(Error::EntityIsDiscarded(m.id));
    }
    let previous = m.head.as_hash();
    let event = Event::new_with(
        m.id,
        m.version,
        Timestamp::now(),
        previous.to_text(),
        data,
        m.hashing.as_ref(),
    )?;
    let previous = match previous {
        HashRef::Digest(d) => HashRef::Digest(d),
        HashRef::Text(_) => HashRef::from(event.previous_hash()),
    };
    let meta = MetaRef {
        previous_hash: previous,
        hash: HashRef::Digest(event.digest()),
        hashing: None,
        ..MetaRef::from_envelope(event.meta())
    };
    apply_existing(meta, event.data().clone(), aggregate)?;
    aggregate.meta_mut().pending.push(Box::new(event));
    Ok(())
}

/// Creates a new aggregate from a `Created` payload, with the given id; the Created event is
/// pending.
pub fn create<P: EventPayload>(id: Uuid, data: P) -> Result<P::Aggregate> {
    let event = Event::new(
        id,
        0,
        Timestamp::now(),
        integrity::genesis_hash().to_string(),
        data,
    )?;
    let mut target = None;
    let meta = MetaRef {
        previous_hash: HashRef::from(event.previous_hash()),
        hash: HashRef::Digest(event.digest()),
        ..MetaRef::from_envelope(event.meta())
    };
    apply_data(meta, event.data().clone(), &mut target)?;
    let mut aggregate =
        target.ok_or_else(|| Error::MismatchedEvent("created event built nothing".into()))?;
    aggregate.meta_mut().pending.push(Box::new(event));
    Ok(aggregate)
}

/// Applies an event to an aggregate that may not exist yet (replay). Checks the chain: the
/// first event must be a Created event at version 0 following the genesis hash; later events
/// must carry the aggregate's id, its next version and its head as previous hash.
pub fn apply_event<P: EventPayload>(
    event: Event<P>,
    target: &mut Option<P::Aggregate>,
) -> Result<()> {
    let hashing = event.hashing().cloned();
    let (meta, data) = event.into_parts();
    let m = MetaRef {
        hashing: hashing.as_ref(),
        ..MetaRef::from(&meta)
    };
    apply_data(m, data, target)
}

/// [`apply_event`] with the envelope borrowed and the payload given apart.
pub fn apply_data<P: EventPayload>(
    m: MetaRef<'_>,
    data: P,
    target: &mut Option<P::Aggregate>,
) -> Result<()> {
    match target {
        Some(aggregate) => apply_existing(m, data, aggregate),
        None => {
            if P::KIND != EventKind::Created {
                return Err(Error::MismatchedEvent(format!(
                    "{} cannot start the history of {}: the first event must be a created event",
                    P::TOPIC,
                    m.originator_id
                )));
            }
            if m.originator_version != 0 {
                return Err(IntegrityError::OriginatorVersion {
                    originator_id: m.originator_id,
                    event: m.originator_version,
                    expected: 0,
                }
                .into());
            }
            let genesis = &integrity::or_default(m.hashing).genesis_hash;
            if m.previous_hash.as_str(&mut [0u8; 64]) != genesis {
                return Err(IntegrityError::HeadHash {
                    originator_id: m.originator_id,
                    version: 0,
                    expected: genesis.clone(),
                    actual: m.previous_hash.to_text(),
                }
                .into());
            }
            let mut aggregate = data.construct()?;
            *aggregate.meta_mut() = AggregateMeta {
                id: m.originator_id,
                version: 1,
                created_on: m.timestamp,
                last_modified: m.timestamp,
                head: Head::of(&m.hash),
                discarded: false,
                pending: Vec::new(),
                hashing: m
                    .hashing
                    .filter(|h| !Arc::ptr_eq(h, integrity::shared_default()))
                    .cloned(),
            };
            *target = Some(aggregate);
            Ok(())
        }
    }
}

fn apply_existing<A: Aggregate, P: EventPayload<Aggregate = A>>(
    m: MetaRef<'_>,
    data: P,
    aggregate: &mut A,
) -> Result<()> {
    let am = aggregate.meta();
    if m.originator_id != am.id {
        return Err(IntegrityError::OriginatorId {
            event: m.originator_id,
            aggregate: am.id,
        }
        .into());
    }
    if m.originator_version != am.version {
        return Err(IntegrityError::OriginatorVersion {
            originator_id: am.id,
            event: m.originator_version,
            expected: am.version,
        }
        .into());
    }
    if !am.head.matches(&m.previous_hash) {
        return Err(IntegrityError::HeadHash {
            originator_id: am.id,
            version: m.originator_version,
            expected: am.head.as_str().to_string(),
            actual: m.previous_hash.to_text(),
        }
        .into());
    }
    data.mutate(aggregate)?;
    let am = aggregate.meta_mut();
    am.version += 1;
    am.last_modified = m.timestamp;
    am.head.set(&m.hash);
    if P::KIND == EventKind::Discarded {
        am.discarded = true;
    }
    Ok(())
}

/// Replays stored events (of any type) into an aggregate, verifying each event's hash and the
/// chain. Returns `None` for an empty history.
pub fn replay<A: Aggregate>(
    events: impl IntoIterator<Item = Box<dyn AnyEvent>>,
) -> Result<Option<A>> {
    let mut target: Option<A> = None;
    replay_onto(&mut target, events)?;
    Ok(target)
}

/// Replays further events onto an existing state (for example one restored from a snapshot).
pub fn replay_onto<A: Aggregate>(
    target: &mut Option<A>,
    events: impl IntoIterator<Item = Box<dyn AnyEvent>>,
) -> Result<()> {
    for e in events {
        e.verify_hash()?;
        e.apply_to(target)?;
    }
    Ok(())
}

/// Built-in event: an event-sourced attribute was assigned.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct AttributeChanged<A> {
    /// The attribute's name.
    pub name: String,
    /// The new value.
    pub value: serde_json::Value,
    #[serde(skip)]
    _a: PhantomData<fn() -> A>,
}

impl<A> AttributeChanged<A> {
    /// A change of attribute `name` to `value`.
    pub fn new(name: impl Into<String>, value: serde_json::Value) -> Self {
        AttributeChanged {
            name: name.into(),
            value,
            _a: PhantomData,
        }
    }
}

impl<A> Clone for AttributeChanged<A> {
    fn clone(&self) -> Self {
        AttributeChanged::new(self.name.clone(), self.value.clone())
    }
}
impl<A> fmt::Debug for AttributeChanged<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttributeChanged")
            .field("name", &self.name)
            .field("value", &self.value)
            .finish()
    }
}
impl<A> PartialEq for AttributeChanged<A> {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.value == o.value
    }
}

impl<A: Aggregate> EventPayload for AttributeChanged<A> {
    type Aggregate = A;
    const TOPIC: &'static str = A::ATTRIBUTE_CHANGED_TOPIC;
    const KIND: EventKind = EventKind::AttributeChanged;
    fn mutate(self, aggregate: &mut A) -> Result<()> {
        aggregate.set_attribute_value(&self.name, self.value)
    }
}

/// Built-in event: the aggregate was discarded.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Discarded<A> {
    #[serde(skip)]
    _a: PhantomData<fn() -> A>,
}

impl<A> Discarded<A> {
    /// A discard.
    pub fn new() -> Self {
        Discarded { _a: PhantomData }
    }
}
impl<A> Default for Discarded<A> {
    fn default() -> Self {
        Self::new()
    }
}
impl<A> Clone for Discarded<A> {
    fn clone(&self) -> Self {
        Self::new()
    }
}
impl<A> fmt::Debug for Discarded<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Discarded")
    }
}
impl<A> PartialEq for Discarded<A> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<A: Aggregate> EventPayload for Discarded<A> {
    type Aggregate = A;
    const TOPIC: &'static str = A::DISCARDED_TOPIC;
    const KIND: EventKind = EventKind::Discarded;
    fn mutate(self, _aggregate: &mut A) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn heads_compare_as_text_whatever_their_form() {
        let d = [0xabu8; 32];
        let hex = integrity::hex(&d);
        let from_digest = Head::of(&HashRef::Digest(d));
        let from_text = Head::from_text(hex.clone());
        assert_eq!(from_digest.as_str(), hex);
        assert_eq!(from_text.as_str(), hex);
        for h in [&from_digest, &from_text] {
            assert!(h.matches(&HashRef::Digest(d)));
            assert!(h.matches(&HashRef::Text(Cow::Borrowed(&hex))));
            assert!(!h.matches(&HashRef::Digest([0xac; 32])));
            assert!(!h.matches(&HashRef::Text(Cow::Borrowed(&hex.to_uppercase()))));
        }
        // Text that is not a digest (a genesis hash) is kept and compared as it is.
        let genesis = Head::from_text("genesis".into());
        assert_eq!(genesis.as_str(), "genesis");
        assert!(genesis.matches(&HashRef::Text(Cow::Borrowed("genesis"))));
        assert!(!genesis.matches(&HashRef::Digest(d)));
        assert_eq!(Head::default().as_str(), "");
        // Moving a head that was shown as text forgets the old text.
        let mut h = Head::of(&HashRef::Digest(d));
        assert_eq!(h.as_str(), hex);
        h.set(&HashRef::Digest([1; 32]));
        assert_eq!(h.as_str(), integrity::hex(&[1; 32]));
        h.set(&HashRef::Text(Cow::Borrowed("x")));
        assert_eq!(h.as_str(), "x");
        assert!(h.matches(&HashRef::Text(Cow::Borrowed("x"))));
    }
}
