//! Domain events: an immutable envelope ([`Event`]) around a payload the user defines.
//!
//! The payload (`P: EventPayload`) holds the domain facts; the envelope adds what every event
//! carries: originator id and version, timestamp, previous hash and its own hash. The payload is
//! serialised and the event hashed once, when it is triggered; what is stored is the compact
//! state of [`crate::domain::state`] (payload behind a small binary header), and
//! [`AnyEvent::write_state`] gives the self-contained JSON state (format 1) on demand.

use crate::domain::aggregate::Aggregate;
use crate::domain::integrity::{self, HashConfig};
use crate::domain::state::{canonical_digest, corrupt, write_header, Compact};
pub use crate::domain::state::{HashRef, StateRef};
use crate::error::{Error, IntegrityError, Result};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;
use uuid::Uuid;

/// Microseconds since the Unix epoch.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time. Strictly increasing within a process: two calls never return the same
    /// value, so events triggered one after another always have increasing timestamps.
    pub fn now() -> Self {
        use std::sync::atomic::{AtomicI64, Ordering};
        static LAST: AtomicI64 = AtomicI64::new(0);
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let wall = d.as_micros() as i64;
        let mut prev = LAST.load(Ordering::Relaxed);
        loop {
            let next = if wall > prev { wall } else { prev + 1 };
            match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Timestamp(next),
                Err(seen) => prev = seen,
            }
        }
    }
    /// Microseconds since the Unix epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }
    /// Seconds since the Unix epoch, as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

/// What kind of event this is, for predicates ("is this a Created event?").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The first event of an aggregate: it constructs the aggregate.
    Created,
    /// An event-sourced attribute was assigned.
    AttributeChanged,
    /// The aggregate was discarded.
    Discarded,
    /// A message appended to a log (see the domain library's time-bucketed logs).
    Logged,
    /// Any other event.
    Custom,
}

/// The envelope fields every event carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventMeta {
    /// Id of the aggregate (originator) that triggered the event.
    pub originator_id: Uuid,
    /// Version of the aggregate before this event (a Created event has version 0).
    pub originator_version: u64,
    /// When the event was triggered.
    pub timestamp: Timestamp,
    /// Hash of the event before it in the aggregate's sequence (the genesis hash for the first).
    pub previous_hash: String,
    /// This event's own hash.
    pub hash: String,
    /// The payload schema version the event was written with.
    pub schema: u32,
}

/// A payload type: the domain facts of one kind of event of one aggregate type.
///
/// Normally implemented by `#[event]`; implement it by hand only for special cases.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event type",
    label = "not an event type",
    note = "handlers take events declared with `#[event(..)]` on an `#[aggregate]` method or with `#[event(aggregate = ..)]` on a struct: `&order::Created`, `&Event<order::Created>` or `Event<order::Created>`"
)]
pub trait EventPayload:
    Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// The aggregate type this event belongs to.
    type Aggregate: Aggregate;
    /// The stable topic of this event type (what is stored beside each event).
    const TOPIC: &'static str;
    /// The kind of event.
    const KIND: EventKind = EventKind::Custom;
    /// The current schema version of the payload. Stored events of older versions are passed
    /// through [`EventPayload::upcast`] before they are decoded.
    const VERSION: u32 = 1;

    /// Rewrites the JSON payload of schema `from_version` into schema `from_version + 1`.
    fn upcast(from_version: u32, data: &mut serde_json::Value) -> Result<()> {
        let _ = data;
        Err(Error::Upcast(format!(
            "{} has no upcaster from schema version {from_version}",
            Self::TOPIC
        )))
    }

    /// For a `Created` kind: builds the aggregate's state (the runtime sets id and version).
    fn construct(self) -> Result<Self::Aggregate> {
        Err(Error::MismatchedEvent(format!(
            "{} cannot create an aggregate",
            Self::TOPIC
        )))
    }

    /// For other kinds: changes the aggregate's state.
    fn mutate(self, aggregate: &mut Self::Aggregate) -> Result<()> {
        let _ = aggregate;
        Err(Error::MismatchedEvent(format!(
            "{} cannot change an existing aggregate",
            Self::TOPIC
        )))
    }
}

/// A JSON value: what upcast functions rewrite.
pub type JsonValue = serde_json::Value;

/// A user-written mutation for a free-standing event type (see `#[event(aggregate = ...)]`).
#[diagnostic::on_unimplemented(
    message = "event `{Self}` has no mutation for `{A}`",
    label = "`{Self}` needs `impl Mutate<{A}> for {Self}`",
    note = "write `impl Mutate<{A}> for {Self} {{ fn mutate(&self, aggregate: &mut {A}) {{ .. }} }}`, or use `kind = Logged` for an event that changes nothing"
)]
pub trait Mutate<A> {
    /// Changes the aggregate according to this event.
    fn mutate(&self, aggregate: &mut A);
}

/// A domain event: envelope plus payload. Immutable once made; read the payload through `Deref`.
#[derive(Clone, Debug)]
pub struct Event<P> {
    meta: EventMeta,
    data: P,
    /// The compact stored state (header and payload JSON), written once and shared (not
    /// copied) with the items it is stored as.
    state: Bytes,
    /// Where the payload JSON lies in `state`.
    data_at: (usize, usize),
    /// The hash settings the event was hashed with (`None`: the process's default).
    hashing: Option<Arc<HashConfig>>,
}

impl<P: PartialEq> PartialEq for Event<P> {
    fn eq(&self, other: &Self) -> bool {
        self.meta == other.meta && self.data == other.data
    }
}

impl<P> std::ops::Deref for Event<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.data
    }
}

/// An event's envelope fields, for sealing.
struct Envelope<'a> {
    topic: &'a str,
    id: Uuid,
    version: u64,
    timestamp: Timestamp,
    previous_hash: &'a str,
    schema: u32,
}

/// A sealed event: its compact state, where its payload lies, and its hash.
struct Sealed {
    state: Bytes,
    data_at: (usize, usize),
    hash: [u8; 32],
}

/// Writes the compact header, the payload (by `payload`) and the hash.
fn seal(
    e: &Envelope<'_>,
    hashing: &HashConfig,
    payload_hint: usize,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<Sealed> {
    let mut buf = Vec::with_capacity(48 + 34 + e.previous_hash.len().min(64) + payload_hint);
    Compact {
        flags: 0,
        schema: e.schema,
        version: e.version,
        timestamp: e.timestamp,
        previous_hash: e.previous_hash,
        hash: [0; 32],
        topic: e.topic,
    }
    .write(&mut buf);
    let start = buf.len();
    payload(&mut buf)?;
    let end = buf.len();
    let hash = canonical_digest(
        &hashing.salt,
        e.topic,
        e.id,
        e.version,
        e.timestamp,
        e.previous_hash,
        e.schema,
        &buf[start..end],
    );
    buf[start - 32..start].copy_from_slice(&hash);
    Ok(Sealed {
        state: Bytes::from(buf),
        data_at: (start, end),
        hash,
    })
}

impl<P: EventPayload> Event<P> {
    /// Makes a new event hashed with the process's default settings: serialises the payload
    /// once and computes the hash.
    pub fn new(
        originator_id: Uuid,
        originator_version: u64,
        timestamp: Timestamp,
        previous_hash: String,
        data: P,
    ) -> Result<Self> {
        Self::new_with(
            originator_id,
            originator_version,
            timestamp,
            previous_hash,
            data,
            None,
        )
    }

    /// [`Event::new`] with the given hash settings (`None`: the process's default).
    pub fn new_with(
        originator_id: Uuid,
        originator_version: u64,
        timestamp: Timestamp,
        previous_hash: String,
        data: P,
        hashing: Option<&Arc<HashConfig>>,
    ) -> Result<Self> {
        let sealed = seal(
            &Envelope {
                topic: P::TOPIC,
                id: originator_id,
                version: originator_version,
                timestamp,
                previous_hash: &previous_hash,
                schema: P::VERSION,
            },
            integrity::or_default(hashing),
            96,
            |buf| {
                let start = buf.len();
                serde_json::to_writer(&mut *buf, &data)?;
                crate::domain::finite::check_written(P::TOPIC, &data, &buf[start..])
            },
        )?;
        Ok(Event {
            meta: EventMeta {
                originator_id,
                originator_version,
                timestamp,
                previous_hash,
                hash: integrity::hex(&sealed.hash),
                schema: P::VERSION,
            },
            data,
            state: sealed.state,
            data_at: sealed.data_at,
            hashing: hashing.cloned(),
        })
    }

    /// Decodes one event of this type from its self-contained (format 1, JSON) state, verifying
    /// its hash with the process's default settings.
    pub fn from_state(state: &[u8]) -> Result<Self> {
        let parsed = StateRef::parse(state)?;
        if parsed.topic != P::TOPIC {
            return Err(Error::TopicResolution(format!(
                "state has topic {:?}, expected {:?}",
                parsed.topic,
                P::TOPIC
            )));
        }
        Self::from_parsed(&parsed)
    }

    /// Decodes from parsed (and already hash-verified) state, upcasting older schemas. The
    /// event keeps the payload JSON as stored (the hash covers it) in a compact state.
    pub fn from_parsed(s: &StateRef<'_>) -> Result<Self> {
        let data = decode_data::<P>(s)?;
        let mut buf = [0u8; 64];
        let previous_hash = s.previous_hash.as_str(&mut buf).to_string();
        let hash = match &s.hash {
            HashRef::Digest(d) => *d,
            HashRef::Text(t) => integrity::parse_hex(t.as_bytes())
                .ok_or_else(|| corrupt(format!("hash {t:?} is not a SHA-256 in hex")))?,
        };
        let hashing = s.hashing;
        let hashing = (!Arc::ptr_eq(hashing, integrity::shared_default())).then(|| hashing.clone());
        let meta = EventMeta {
            originator_id: s.originator_id,
            originator_version: s.originator_version,
            timestamp: s.timestamp,
            previous_hash,
            hash: s.hash.to_text(),
            schema: s.schema,
        };
        // A compact state in the layout events keep (no optional fields) is kept as it is.
        if s.bytes.len() > 1 && s.bytes[0] == crate::domain::state::COMPACT && s.bytes[1] == 0 {
            let start = (s.data.as_ptr() as usize).wrapping_sub(s.bytes.as_ptr() as usize);
            let end = start + s.data.len();
            if end > s.bytes.len() {
                return Err(corrupt("payload lies outside the state".into()));
            }
            return Ok(Event {
                meta,
                data,
                state: Bytes::copy_from_slice(s.bytes),
                data_at: (start, end),
                hashing,
            });
        }
        let mut state = Vec::with_capacity(48 + 34 + meta.previous_hash.len() + s.data.len());
        Compact {
            flags: 0,
            schema: s.schema,
            version: s.originator_version,
            timestamp: s.timestamp,
            previous_hash: &meta.previous_hash,
            hash,
            topic: P::TOPIC,
        }
        .write(&mut state);
        let start = state.len();
        state.extend_from_slice(s.data.as_bytes());
        let end = state.len();
        Ok(Event {
            meta,
            data,
            state: Bytes::from(state),
            data_at: (start, end),
            hashing,
        })
    }

    /// The payload.
    pub fn data(&self) -> &P {
        &self.data
    }

    /// Splits into envelope and payload.
    pub fn into_parts(self) -> (EventMeta, P) {
        (self.meta, self.data)
    }

    /// The hash settings the event was hashed with (`None`: the process's default).
    pub fn hashing(&self) -> Option<&Arc<HashConfig>> {
        self.hashing.as_ref()
    }

    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            topic: P::TOPIC,
            id: self.meta.originator_id,
            version: self.meta.originator_version,
            timestamp: self.meta.timestamp,
            previous_hash: &self.meta.previous_hash,
            schema: self.meta.schema,
        }
    }
}

impl<P> Event<P> {
    /// The envelope.
    pub fn meta(&self) -> &EventMeta {
        &self.meta
    }
    /// Id of the aggregate that triggered the event.
    pub fn originator_id(&self) -> Uuid {
        self.meta.originator_id
    }
    /// Version of the aggregate before this event.
    pub fn originator_version(&self) -> u64 {
        self.meta.originator_version
    }
    /// When the event was triggered.
    pub fn timestamp(&self) -> Timestamp {
        self.meta.timestamp
    }
    /// The hash of the previous event in the sequence.
    pub fn previous_hash(&self) -> &str {
        &self.meta.previous_hash
    }
    /// This event's hash.
    pub fn hash(&self) -> &str {
        &self.meta.hash
    }
    /// This event's hash as its 32 bytes (they lie just before the payload in its compact
    /// state).
    pub(crate) fn digest(&self) -> [u8; 32] {
        let at = self.data_at.0;
        self.state
            .get(at.wrapping_sub(32)..at)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default()
    }

    /// The payload JSON exactly as it was hashed.
    pub fn data_json(&self) -> &str {
        std::str::from_utf8(&self.state[self.data_at.0..self.data_at.1]).unwrap_or_default()
    }

    /// The compact stored state (see [`crate::domain::state`]).
    pub fn state(&self) -> &[u8] {
        &self.state
    }
}

/// An event of any type, as stored, published and replayed without knowing its type.
pub trait AnyEvent: Debug + Send + Sync + 'static {
    /// The event type's topic.
    fn topic(&self) -> &'static str;
    /// The topic of the aggregate type it belongs to.
    fn aggregate_topic(&self) -> &'static str;
    /// The kind of event.
    fn kind(&self) -> EventKind;
    /// The envelope.
    fn meta(&self) -> &EventMeta;
    /// The payload JSON exactly as hashed.
    fn data_json(&self) -> &str;
    /// Appends the self-contained JSON state (format 1, with its hash) to `out`: what
    /// [`decode_event`] reads.
    fn write_state(&self, out: &mut Vec<u8>);
    /// The compact stored state ([`crate::domain::state`]), shared rather than copied.
    fn state_bytes(&self) -> Bytes;
    /// Recomputes the hash from the event's content and compares.
    fn verify_hash(&self) -> Result<()>;
    /// The hash settings the event was hashed with (`None`: the process's default).
    fn hashing(&self) -> Option<&Arc<HashConfig>>;
    /// The same event hashed with other settings after `previous_hash` (an application
    /// saving an aggregate made outside it re-hashes the pending events with its own salt).
    fn rehashed(&self, previous_hash: &str, hashing: &Arc<HashConfig>)
        -> Result<Box<dyn AnyEvent>>;
    /// For downcasting to `Event<P>`.
    fn as_any(&self) -> &dyn Any;
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn AnyEvent>;
    /// Applies the event to an `Option<A>` passed as `&mut dyn Any` (replay).
    fn apply_to(self: Box<Self>, target: &mut dyn Any) -> Result<()>;
    /// Value equality across types.
    fn eq_dyn(&self, other: &dyn AnyEvent) -> bool;
}

impl<P: EventPayload> AnyEvent for Event<P> {
    fn topic(&self) -> &'static str {
        P::TOPIC
    }
    fn aggregate_topic(&self) -> &'static str {
        <P::Aggregate as Aggregate>::TOPIC
    }
    fn kind(&self) -> EventKind {
        P::KIND
    }
    fn meta(&self) -> &EventMeta {
        &self.meta
    }
    fn data_json(&self) -> &str {
        Event::data_json(self)
    }
    fn write_state(&self, out: &mut Vec<u8>) {
        let e = self.envelope();
        write_header(
            out,
            e.topic,
            e.id,
            e.version,
            e.timestamp,
            e.previous_hash,
            e.schema,
        );
        out.extend_from_slice(self.data_json().as_bytes());
        out.extend_from_slice(b",\"hash\":\"");
        out.extend_from_slice(self.meta.hash.as_bytes());
        out.extend_from_slice(b"\"}");
    }
    fn state_bytes(&self) -> Bytes {
        self.state.clone()
    }
    fn verify_hash(&self) -> Result<()> {
        let e = self.envelope();
        let computed = canonical_digest(
            &integrity::or_default(self.hashing.as_ref()).salt,
            e.topic,
            e.id,
            e.version,
            e.timestamp,
            e.previous_hash,
            e.schema,
            self.data_json().as_bytes(),
        );
        if integrity::parse_hex(self.meta.hash.as_bytes()) != Some(computed) {
            return Err(Error::DataIntegrity(IntegrityError::EventHash {
                originator_id: self.meta.originator_id,
                version: self.meta.originator_version,
                stored: self.meta.hash.clone(),
                computed: integrity::hex(&computed),
            }));
        }
        Ok(())
    }
    fn hashing(&self) -> Option<&Arc<HashConfig>> {
        self.hashing.as_ref()
    }
    fn rehashed(
        &self,
        previous_hash: &str,
        hashing: &Arc<HashConfig>,
    ) -> Result<Box<dyn AnyEvent>> {
        let e = Envelope {
            previous_hash,
            ..self.envelope()
        };
        let payload = self.data_json().as_bytes();
        let sealed = seal(&e, hashing, payload.len(), |buf| {
            buf.extend_from_slice(payload);
            Ok(())
        })?;
        let mut meta = self.meta.clone();
        meta.previous_hash = previous_hash.to_string();
        meta.hash = integrity::hex(&sealed.hash);
        Ok(Box::new(Event {
            meta,
            data: self.data.clone(),
            state: sealed.state,
            data_at: sealed.data_at,
            hashing: Some(hashing.clone()),
        }))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn AnyEvent> {
        Box::new(self.clone())
    }
    fn apply_to(self: Box<Self>, target: &mut dyn Any) -> Result<()> {
        match target.downcast_mut::<Option<P::Aggregate>>() {
            Some(t) => crate::domain::aggregate::apply_event(*self, t),
            None => Err(Error::MismatchedEvent(format!(
                "{} belongs to {}, not to the aggregate being replayed",
                P::TOPIC,
                <P::Aggregate as Aggregate>::TOPIC
            ))),
        }
    }
    fn eq_dyn(&self, other: &dyn AnyEvent) -> bool {
        other
            .as_any()
            .downcast_ref::<Self>()
            .is_some_and(|o| o == self)
    }
}

impl Clone for Box<dyn AnyEvent> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

impl PartialEq for dyn AnyEvent {
    fn eq(&self, other: &Self) -> bool {
        self.eq_dyn(other)
    }
}

impl dyn AnyEvent {
    /// The event as `Event<P>`, if it is one.
    pub fn downcast_ref<P: EventPayload>(&self) -> Option<&Event<P>> {
        self.as_any().downcast_ref::<Event<P>>()
    }
    /// True if the event is an `Event<P>`.
    pub fn is<P: EventPayload>(&self) -> bool {
        self.as_any().is::<Event<P>>()
    }
    /// True for a Created event (the first event of an aggregate).
    pub fn is_created(&self) -> bool {
        self.kind() == EventKind::Created
    }
    /// True for an AttributeChanged event.
    pub fn is_attribute_changed(&self) -> bool {
        self.kind() == EventKind::AttributeChanged
    }
    /// True for a Discarded event.
    pub fn is_discarded(&self) -> bool {
        self.kind() == EventKind::Discarded
    }
    /// True for a Logged event.
    pub fn is_logged(&self) -> bool {
        self.kind() == EventKind::Logged
    }
    /// When the event was triggered.
    pub fn timestamp(&self) -> Timestamp {
        self.meta().timestamp
    }
    /// This event's hash.
    pub fn hash(&self) -> &str {
        &self.meta().hash
    }
    /// Id of the aggregate that triggered the event.
    pub fn originator_id(&self) -> Uuid {
        self.meta().originator_id
    }
    /// Version of the aggregate before this event.
    pub fn originator_version(&self) -> u64 {
        self.meta().originator_version
    }
    /// The self-contained JSON state (format 1, with its hash) as a new vector.
    pub fn to_state(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(256);
        self.write_state(&mut v);
        v
    }
}

/// Decodes a stored event of any registered type: verifies its hash, resolves its topic, and
/// decodes (upcasting if needed). `topic` is the topic stored beside the state; it must agree
/// with the topic inside the state.
pub fn decode_event(topic: &str, state: &[u8]) -> Result<Box<dyn AnyEvent>> {
    let parsed = StateRef::parse(state)?;
    if parsed.topic != topic {
        return Err(corrupt(format!(
            "stored topic {topic:?} does not match the topic {:?} inside the state",
            parsed.topic
        )));
    }
    decode_parsed_any(&parsed)
}

/// Decodes a parsed, hash-verified state of any registered type (resolving its topic).
pub fn decode_parsed_any(parsed: &StateRef<'_>) -> Result<Box<dyn AnyEvent>> {
    let ty = crate::domain::topic::resolve(&parsed.topic)?;
    (ty.decode)(parsed)
}

/// Decodes the payload of a parsed state (upcasting older schemas) without building an event.
fn decode_data<P: EventPayload>(s: &StateRef<'_>) -> Result<P> {
    if s.schema == P::VERSION {
        return serde_json::from_str(s.data)
            .map_err(|e| corrupt(format!("payload of {}: {e}", P::TOPIC)));
    }
    if s.schema > P::VERSION {
        return Err(Error::Upcast(format!(
            "{} stored with schema {} but this build knows only up to {}",
            P::TOPIC,
            s.schema,
            P::VERSION
        )));
    }
    let mut value: serde_json::Value = serde_json::from_str(s.data)
        .map_err(|e| corrupt(format!("payload of {}: {e}", P::TOPIC)))?;
    for v in s.schema..P::VERSION {
        P::upcast(v, &mut value)?;
    }
    serde_json::from_value(value).map_err(|e| {
        Error::Upcast(format!(
            "{} upcast from schema {} did not give schema {}: {e}",
            P::TOPIC,
            s.schema,
            P::VERSION
        ))
    })
}

/// The replay function registered for each event type: decodes the payload of a parsed,
/// hash-verified state and applies it to an `Option<A>` passed as `&mut dyn Any`, without
/// building an [`Event`] (the repository's fast path).
pub fn apply_parsed<P: EventPayload>(s: &StateRef<'_>, target: &mut dyn Any) -> Result<()> {
    let Some(t) = target.downcast_mut::<Option<P::Aggregate>>() else {
        return Err(Error::MismatchedEvent(format!(
            "{} belongs to {}, not to the aggregate being replayed",
            P::TOPIC,
            <P::Aggregate as Aggregate>::TOPIC
        )));
    };
    let data = decode_data::<P>(s)?;
    let m = crate::domain::aggregate::MetaRef {
        originator_id: s.originator_id,
        originator_version: s.originator_version,
        timestamp: s.timestamp,
        previous_hash: s.previous_hash.clone(),
        hash: s.hash.clone(),
        hashing: Some(s.hashing),
    };
    crate::domain::aggregate::apply_data(m, data, t)
}

/// The decode function registered for each event type.
pub fn decode_parsed<P: EventPayload>(s: &StateRef<'_>) -> Result<Box<dyn AnyEvent>> {
    Ok(Box::new(Event::<P>::from_parsed(s)?))
}
