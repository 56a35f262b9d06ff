//! Domain events: an immutable envelope ([`Event`]) around a payload the user defines.
//!
//! The payload (`P: EventPayload`) holds the domain facts; the envelope adds what every event
//! carries: originator id and version, timestamp, previous hash and its own hash. An event's
//! stored state is one JSON object, written once when the event is triggered:
//!
//! ```text
//! {"topic":"…","originator_id":"…","originator_version":0,"timestamp":…,"previous_hash":"…",
//!  "schema":1,"data":{…payload…},"hash":"…"}
//! ```
//!
//! The hash is `SHA-256(salt || state without its "hash" member)`, so it is checked against the
//! exact bytes that were stored (before any upcasting), and payloads need no canonical form.

use crate::domain::aggregate::Aggregate;
use crate::domain::integrity;
use crate::error::{Error, IntegrityError, Result};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::any::Any;
use std::borrow::Cow;
use std::fmt::Debug;
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
    /// The whole stored state (JSON, with hash), written once and shared (not copied) with
    /// the items it is stored as.
    state: Bytes,
    /// Where the payload JSON lies in `state`.
    data_at: (usize, usize),
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

impl<P: EventPayload> Event<P> {
    /// Makes a new event: serialises the payload once and computes the hash.
    pub fn new(
        originator_id: Uuid,
        originator_version: u64,
        timestamp: Timestamp,
        previous_hash: String,
        data: P,
    ) -> Result<Self> {
        let mut meta = EventMeta {
            originator_id,
            originator_version,
            timestamp,
            previous_hash,
            hash: String::new(),
            schema: P::VERSION,
        };
        // Room for the header, a typical payload and the hash, so the buffer rarely grows.
        let mut buf = Vec::with_capacity(
            HEADER_FIXED_LEN + P::TOPIC.len() + meta.previous_hash.len() + 96 + HASH_SUFFIX_LEN,
        );
        write_header(&mut buf, P::TOPIC, &meta);
        let start = buf.len();
        serde_json::to_writer(&mut buf, &data)?;
        let end = buf.len();
        buf.push(b'}');
        let mut hex = [0u8; 64];
        integrity::hash_canonical_into(&buf, &mut hex);
        buf.pop();
        buf.reserve_exact(HASH_SUFFIX_LEN);
        buf.extend_from_slice(HASH_PREFIX);
        buf.extend_from_slice(&hex);
        buf.extend_from_slice(b"\"}");
        // The digits are ASCII, so this never falls back to the empty string.
        meta.hash = String::from(std::str::from_utf8(&hex).unwrap_or_default());
        Ok(Event {
            meta,
            data,
            state: Bytes::from(buf),
            data_at: (start, end),
        })
    }

    /// Decodes one event of this type from its stored state, verifying its hash.
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

    /// Decodes from parsed (and already hash-verified) state, upcasting older schemas.
    pub fn from_parsed(s: &StateRef<'_>) -> Result<Self> {
        let data = decode_data::<P>(s)?;
        let start = (s.data.as_ptr() as usize).wrapping_sub(s.bytes.as_ptr() as usize);
        let end = start + s.data.len();
        if end > s.bytes.len() {
            return Err(corrupt("payload lies outside the state".into()));
        }
        Ok(Event {
            meta: s.meta(),
            data,
            state: Bytes::copy_from_slice(s.bytes),
            data_at: (start, end),
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
    /// The payload JSON exactly as it was hashed.
    pub fn data_json(&self) -> &str {
        std::str::from_utf8(&self.state[self.data_at.0..self.data_at.1]).unwrap_or_default()
    }

    /// The stored state (JSON with hash) exactly as written.
    pub fn state(&self) -> &[u8] {
        &self.state
    }
}

fn corrupt(msg: String) -> Error {
    Error::DataIntegrity(IntegrityError::Corrupt(msg))
}

/// Length of the fixed parts of a header: keys, quotes, the id and room for three numbers.
const HEADER_FIXED_LEN: usize = 160;

/// Writes a JSON string: copied as is when nothing in it needs escaping (topics and hashes).
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Without early exit, so that the check vectorises.
    let plain = s
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a &str to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Writes the start of an event's state, up to and including `"data":`.
fn write_header(out: &mut Vec<u8>, topic: &str, meta: &EventMeta) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"{\"topic\":");
    write_json_str(out, topic);
    out.extend_from_slice(b",\"originator_id\":\"");
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(
        meta.originator_id
            .as_hyphenated()
            .encode_lower(&mut id)
            .as_bytes(),
    );
    out.extend_from_slice(b"\",\"originator_version\":");
    out.extend_from_slice(num.format(meta.originator_version).as_bytes());
    out.extend_from_slice(b",\"timestamp\":");
    out.extend_from_slice(num.format(meta.timestamp.0).as_bytes());
    out.extend_from_slice(b",\"previous_hash\":");
    write_json_str(out, &meta.previous_hash);
    out.extend_from_slice(b",\"schema\":");
    out.extend_from_slice(num.format(meta.schema).as_bytes());
    out.extend_from_slice(b",\"data\":");
}

/// Length of `,"hash":"<64 hex>"}` at the end of a state.
const HASH_SUFFIX_LEN: usize = 75;
const HASH_PREFIX: &[u8] = b",\"hash\":\"";

/// A stored event state, parsed without copying its payload, after its hash has been verified.
#[derive(Debug)]
pub struct StateRef<'a> {
    /// The event's topic.
    pub topic: Cow<'a, str>,
    /// Aggregate id.
    pub originator_id: Uuid,
    /// Aggregate version before the event.
    pub originator_version: u64,
    /// When it happened.
    pub timestamp: Timestamp,
    /// Hash of the previous event.
    pub previous_hash: Cow<'a, str>,
    /// Payload schema version.
    pub schema: u32,
    /// The payload: its JSON text, unparsed (a slice of `bytes`).
    pub data: &'a str,
    /// The event's hash.
    pub hash: Cow<'a, str>,
    /// The whole state the fields were parsed from.
    pub bytes: &'a [u8],
}

/// The general shape of a state, for states not in the layout es writes.
#[derive(Deserialize)]
struct StateSerde<'a> {
    #[serde(borrow)]
    topic: Cow<'a, str>,
    originator_id: Uuid,
    originator_version: u64,
    timestamp: Timestamp,
    #[serde(borrow)]
    previous_hash: Cow<'a, str>,
    schema: u32,
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(borrow)]
    hash: Cow<'a, str>,
}

/// Reads the layout es writes (see `write_header`) field by field; `None` for anything else
/// (other key order, escapes, spaces), which the general parser then reads.
struct Layout<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Layout<'a> {
    fn key(&mut self, key: &str) -> Option<()> {
        let rest = self.s.get(self.at..)?;
        rest.starts_with(key).then(|| self.at += key.len())
    }
    /// A string without escapes, up to its closing quote (the opening one already read).
    fn plain_str(&mut self) -> Option<&'a str> {
        let rest = self.s.get(self.at..)?;
        let end = rest.find('"')?;
        let v = &rest[..end];
        if v.bytes().any(|b| b == b'\\' || b < 0x20) {
            return None;
        }
        self.at += end + 1;
        Some(v)
    }
    /// An integer: digits with an optional leading minus, as `T`.
    fn int<T: std::str::FromStr>(&mut self) -> Option<T> {
        let rest = self.s.get(self.at..)?;
        let len = rest
            .bytes()
            .enumerate()
            .take_while(|&(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
            .count();
        let v = rest[..len].parse().ok()?;
        self.at += len;
        Some(v)
    }
}

/// The fast path of [`StateRef::parse`]: `state` minus its hash suffix, in es's own layout.
fn parse_layout<'a>(state: &'a [u8], hash: &'a str) -> Option<StateRef<'a>> {
    let s = std::str::from_utf8(&state[..state.len() - HASH_SUFFIX_LEN]).ok()?;
    let mut l = Layout { s, at: 0 };
    l.key("{\"topic\":\"")?;
    let topic = l.plain_str()?;
    l.key(",\"originator_id\":\"")?;
    let originator_id = Uuid::try_parse(l.plain_str()?).ok()?;
    l.key(",\"originator_version\":")?;
    let originator_version = l.int()?;
    l.key(",\"timestamp\":")?;
    let timestamp = Timestamp(l.int()?);
    l.key(",\"previous_hash\":\"")?;
    let previous_hash = l.plain_str()?;
    l.key(",\"schema\":")?;
    let schema = l.int()?;
    l.key(",\"data\":")?;
    // The payload runs to the hash suffix; decoding it checks that it is one JSON value.
    let data = s.get(l.at..)?;
    if data.is_empty() {
        return None;
    }
    Some(StateRef {
        topic: Cow::Borrowed(topic),
        originator_id,
        originator_version,
        timestamp,
        previous_hash: Cow::Borrowed(previous_hash),
        schema,
        data,
        hash: Cow::Borrowed(hash),
        bytes: state,
    })
}

impl<'a> StateRef<'a> {
    /// Verifies the hash over the exact bytes, then parses the envelope.
    pub fn parse(state: &'a [u8]) -> Result<Self> {
        let n = state.len();
        if n < HASH_SUFFIX_LEN + 2
            || &state[n - HASH_SUFFIX_LEN..n - HASH_SUFFIX_LEN + HASH_PREFIX.len()] != HASH_PREFIX
            || &state[n - 2..] != b"\"}"
        {
            return Err(corrupt("event state does not end with its hash".into()));
        }
        let canonical = &state[..n - HASH_SUFFIX_LEN];
        let stored_hash = &state[n - 66..n - 2];
        let digest = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(&integrity::config().salt);
            h.update(canonical);
            h.update(b"}");
            h.finalize()
        };
        let mut computed = [0u8; 64];
        integrity::hex_into(&digest, &mut computed);
        let fast = std::str::from_utf8(stored_hash)
            .ok()
            .and_then(|hash| parse_layout(state, hash));
        let parsed = match fast {
            Some(p) => p,
            None => {
                let g: StateSerde<'a> = serde_json::from_slice(state)
                    .map_err(|e| corrupt(format!("event state is not valid: {e}")))?;
                StateRef {
                    topic: g.topic,
                    originator_id: g.originator_id,
                    originator_version: g.originator_version,
                    timestamp: g.timestamp,
                    previous_hash: g.previous_hash,
                    schema: g.schema,
                    data: g.data.get(),
                    hash: g.hash,
                    bytes: state,
                }
            }
        };
        if computed[..] != *stored_hash || parsed.hash.as_bytes() != stored_hash {
            return Err(Error::DataIntegrity(IntegrityError::EventHash {
                originator_id: parsed.originator_id,
                version: parsed.originator_version,
                stored: parsed.hash.into_owned(),
                computed: String::from_utf8_lossy(&computed).into_owned(),
            }));
        }
        Ok(parsed)
    }

    /// The envelope as owned values.
    pub fn meta(&self) -> EventMeta {
        EventMeta {
            originator_id: self.originator_id,
            originator_version: self.originator_version,
            timestamp: self.timestamp,
            previous_hash: self.previous_hash.clone().into_owned(),
            hash: self.hash.clone().into_owned(),
            schema: self.schema,
        }
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
    /// Appends the stored state (JSON, with hash) to `out`.
    fn write_state(&self, out: &mut Vec<u8>);
    /// The stored state (JSON, with hash), shared rather than copied.
    fn state_bytes(&self) -> Bytes;
    /// Recomputes the hash from the event's content and compares.
    fn verify_hash(&self) -> Result<()>;
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
        out.extend_from_slice(&self.state);
    }
    fn state_bytes(&self) -> Bytes {
        self.state.clone()
    }
    fn verify_hash(&self) -> Result<()> {
        let n = self.state.len().saturating_sub(HASH_SUFFIX_LEN);
        let mut canonical = Vec::with_capacity(n + 1);
        canonical.extend_from_slice(&self.state[..n]);
        canonical.push(b'}');
        let computed = integrity::hash_canonical(&canonical);
        if computed != self.meta.hash {
            return Err(Error::DataIntegrity(IntegrityError::EventHash {
                originator_id: self.meta.originator_id,
                version: self.meta.originator_version,
                stored: self.meta.hash.clone(),
                computed,
            }));
        }
        Ok(())
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
    /// The stored state as a new vector.
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
        previous_hash: &s.previous_hash,
        hash: &s.hash,
    };
    crate::domain::aggregate::apply_data(m, data, t)
}

/// The decode function registered for each event type.
pub fn decode_parsed<P: EventPayload>(s: &StateRef<'_>) -> Result<Box<dyn AnyEvent>> {
    Ok(Box::new(Event::<P>::from_parsed(s)?))
}
