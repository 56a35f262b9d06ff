//! Stored event states, in two formats with one hash.
//!
//! **Format 1 (JSON)**, self-contained, what es wrote before format 2 and what the notification
//! log's JSON view serves (byte-compatible with the reference library's wire):
//!
//! ```text
//! {"topic":"…","originator_id":"…","originator_version":0,"timestamp":…,"previous_hash":"…",
//!  "schema":1,"data":{…payload…},"hash":"…"}
//! ```
//!
//! **Format 2 (compact)**, what es stores: the payload behind a small binary header, holding
//! nothing a column of the row already holds (topic, originator id, and the position: the
//! version, or for timestamp-sequenced items the timestamp):
//!
//! ```text
//! 0x02 | flags | schema (varint) | [version (varint)] | [timestamp (i64 LE)]
//!      | previous hash: 0x00 + 32 bytes, or 0x01 + varint length + text | hash (32 bytes)
//!      | [topic: varint length + text] | payload JSON
//! ```
//!
//! The flags say which optional fields are present ([`HAS_VERSION`], [`NO_TIMESTAMP`],
//! [`HAS_TOPIC`]: an encrypting mapper keeps the topic inside, since its topic column is
//! ciphertext). Both formats carry the same hash, `SHA-256(salt || format-1 state without its
//! "hash" member, closed)`: a compact state expands into exactly the format-1 state of the same
//! event, which any reader verifies, and the two formats chain into each other freely.

use crate::domain::event::Timestamp;
use crate::domain::integrity::{self, HashConfig};
use crate::error::{Error, IntegrityError, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::Arc;
use uuid::Uuid;

/// First byte of a compact (format 2) state. JSON starts with `{`, a compressed state with 1.
pub const COMPACT: u8 = 2;
/// Flag: the version is in the state (the row's position is the timestamp).
pub const HAS_VERSION: u8 = 1;
/// Flag: the timestamp is not in the state (the row's position is the timestamp).
pub const NO_TIMESTAMP: u8 = 2;
/// Flag: the topic is in the state (the row's topic column is encrypted).
pub const HAS_TOPIC: u8 = 4;
const KNOWN_FLAGS: u8 = HAS_VERSION | NO_TIMESTAMP | HAS_TOPIC;

/// A hash as stored: 32 bytes (format 2) or text (format 1, and genesis hashes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashRef<'a> {
    /// A SHA-256 digest; its text is its lower-case hex.
    Digest([u8; 32]),
    /// Text as stored.
    Text(Cow<'a, str>),
}

impl HashRef<'_> {
    /// The hash as text, using `buf` for a digest's hex.
    pub fn as_str<'b>(&'b self, buf: &'b mut [u8; 64]) -> &'b str {
        match self {
            HashRef::Text(t) => t,
            HashRef::Digest(d) => {
                integrity::hex_into(d, buf);
                // Hex digits are ASCII.
                std::str::from_utf8(&buf[..]).unwrap_or_default()
            }
        }
    }
    /// The hash as owned text.
    pub fn to_text(&self) -> String {
        let mut buf = [0u8; 64];
        self.as_str(&mut buf).to_string()
    }
}

impl<'a> From<&'a str> for HashRef<'a> {
    /// A 64-digit lower-case hex text becomes a digest, anything else stays text.
    fn from(s: &'a str) -> Self {
        match integrity::parse_hex(s.as_bytes()) {
            Some(d) => HashRef::Digest(d),
            None => HashRef::Text(Cow::Borrowed(s)),
        }
    }
}

/// What the row holds beside a compact state: topic (clear, or `None` when encrypted), sequence
/// id and position.
#[derive(Clone, Copy, Debug)]
pub struct Columns<'a> {
    /// The topic column in clear; `None` when it is encrypted (the state then holds the topic).
    pub topic: Option<&'a str>,
    /// The sequence (originator) id.
    pub sequence_id: Uuid,
    /// The position: the version, or the timestamp when the state says so.
    pub position: i64,
}

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
    pub previous_hash: HashRef<'a>,
    /// Payload schema version.
    pub schema: u32,
    /// The payload: its JSON text, unparsed (a slice of `bytes`).
    pub data: &'a str,
    /// The event's hash.
    pub hash: HashRef<'a>,
    /// The whole state the fields were parsed from.
    pub bytes: &'a [u8],
    /// The hash settings it was verified with.
    pub hashing: &'a Arc<HashConfig>,
}

pub(crate) fn corrupt(msg: String) -> Error {
    Error::DataIntegrity(IntegrityError::Corrupt(msg))
}

impl<'a> StateRef<'a> {
    /// Parses and verifies a self-contained (format 1, JSON) state with the process's default
    /// hash settings.
    pub fn parse(state: &'a [u8]) -> Result<Self> {
        Self::parse_with(state, None, integrity::shared_default())
    }

    /// Parses and verifies a state of either format. A compact state needs the row's
    /// `columns`; a format-1 state is self-contained (its fields are checked against the
    /// columns by the caller).
    pub fn parse_with(
        state: &'a [u8],
        columns: Option<Columns<'a>>,
        hashing: &'a Arc<HashConfig>,
    ) -> Result<Self> {
        if state.first() != Some(&COMPACT) {
            return parse_json(state, hashing);
        }
        let cols = columns
            .ok_or_else(|| corrupt("a compact state is read with its row's columns".into()))?;
        let parsed = parse_compact(state, cols, hashing)?;
        parsed.verify_compact()?;
        Ok(parsed)
    }

    /// Recomputes the hash of a compact state from its fields and compares.
    fn verify_compact(&self) -> Result<()> {
        let mut buf = [0u8; 64];
        let computed = canonical_digest(
            &self.hashing.salt,
            &self.topic,
            self.originator_id,
            self.originator_version,
            self.timestamp,
            self.previous_hash.as_str(&mut buf),
            self.schema,
            self.data.as_bytes(),
        );
        self.compare(computed)
    }

    fn compare(&self, computed: [u8; 32]) -> Result<()> {
        let ok = match &self.hash {
            HashRef::Digest(d) => *d == computed,
            HashRef::Text(t) => integrity::parse_hex(t.as_bytes()) == Some(computed),
        };
        if ok {
            return Ok(());
        }
        Err(Error::DataIntegrity(IntegrityError::EventHash {
            originator_id: self.originator_id,
            version: self.originator_version,
            stored: self.hash.to_text(),
            computed: integrity::hex(&computed),
        }))
    }

    /// The envelope as owned values.
    pub fn meta(&self) -> crate::domain::event::EventMeta {
        crate::domain::event::EventMeta {
            originator_id: self.originator_id,
            originator_version: self.originator_version,
            timestamp: self.timestamp,
            previous_hash: self.previous_hash.to_text(),
            hash: self.hash.to_text(),
            schema: self.schema,
        }
    }
}

thread_local! {
    /// Scratch for hashing (no allocation per event).
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// A hasher already fed with what stays the same across the events of one type of one
/// aggregate: the salt and `{"topic":…,"originator_id":"…","originator_version":`.
struct Prefix {
    salt: Vec<u8>,
    topic: String,
    id: Uuid,
    hasher: Sha256,
}

/// How many prefixes each thread keeps (an aggregate's event types, a few aggregates).
const PREFIXES: usize = 8;

/// Per-thread scratch for hashing: recent prefixes and a buffer for the rest of the header.
#[derive(Default)]
struct Scratch {
    prefixes: Vec<Prefix>,
    /// The slot the next new prefix takes once all are used.
    next: usize,
    buf: Vec<u8>,
}

impl Scratch {
    /// The index of the prefix of (`salt`, `topic`, `id`), fed now if it is not kept.
    fn prefix(&mut self, salt: &[u8], topic: &str, id: Uuid) -> usize {
        if let Some(i) = self
            .prefixes
            .iter()
            .position(|p| p.id == id && p.topic == topic && p.salt == salt)
        {
            return i;
        }
        self.buf.clear();
        write_prefix(&mut self.buf, topic, id);
        let mut hasher = Sha256::new();
        hasher.update(salt);
        hasher.update(&self.buf);
        if self.prefixes.len() < PREFIXES {
            self.prefixes.push(Prefix {
                salt: salt.to_vec(),
                topic: topic.to_string(),
                id,
                hasher,
            });
            return self.prefixes.len() - 1;
        }
        let i = self.next;
        self.next = (i + 1) % PREFIXES;
        let p = &mut self.prefixes[i];
        p.salt.clear();
        p.salt.extend_from_slice(salt);
        p.topic.clear();
        p.topic.push_str(topic);
        p.id = id;
        p.hasher = hasher;
        i
    }

    #[allow(clippy::too_many_arguments)]
    fn digest(
        &mut self,
        salt: &[u8],
        topic: &str,
        id: Uuid,
        version: u64,
        timestamp: Timestamp,
        previous_hash: &str,
        schema: u32,
        payload: &[u8],
    ) -> [u8; 32] {
        let i = self.prefix(salt, topic, id);
        let mut h = self.prefixes[i].hasher.clone();
        self.buf.clear();
        write_rest(&mut self.buf, version, timestamp, previous_hash, schema);
        h.update(&self.buf);
        h.update(payload);
        h.update(b"}");
        h.finalize().into()
    }
}

/// The hash of an event: `SHA-256(salt || format-1 header || payload || "}")`.
///
/// Each thread keeps the hasher fed with the salt and the header's start (topic and
/// originator id) for the last few (topic, originator id) pairs it hashed, so the events of an
/// aggregate being replayed or triggered hash only the rest of their header and their payload.
#[allow(clippy::too_many_arguments)]
pub fn canonical_digest(
    salt: &[u8],
    topic: &str,
    id: Uuid,
    version: u64,
    timestamp: Timestamp,
    previous_hash: &str,
    schema: u32,
    payload: &[u8],
) -> [u8; 32] {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => s.digest(
            salt,
            topic,
            id,
            version,
            timestamp,
            previous_hash,
            schema,
            payload,
        ),
        // Not reached (nothing hashes while hashing); a fresh scratch gives the same digest.
        Err(_) => Scratch::default().digest(
            salt,
            topic,
            id,
            version,
            timestamp,
            previous_hash,
            schema,
            payload,
        ),
    })
}

/// Writes a JSON string: copied as is when nothing in it needs escaping (topics and hashes).
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
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

/// Writes the start of a format-1 state, up to and including `"data":`.
pub(crate) fn write_header(
    out: &mut Vec<u8>,
    topic: &str,
    id: Uuid,
    version: u64,
    timestamp: Timestamp,
    previous_hash: &str,
    schema: u32,
) {
    write_prefix(out, topic, id);
    write_rest(out, version, timestamp, previous_hash, schema);
}

/// The header's start, the same for every event of one type of one aggregate: up to and
/// including `"originator_version":`.
fn write_prefix(out: &mut Vec<u8>, topic: &str, id: Uuid) {
    out.extend_from_slice(b"{\"topic\":");
    write_json_str(out, topic);
    out.extend_from_slice(b",\"originator_id\":\"");
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(id.as_hyphenated().encode_lower(&mut text).as_bytes());
    out.extend_from_slice(b"\",\"originator_version\":");
}

/// The header's rest: from the version's value up to and including `"data":`.
fn write_rest(
    out: &mut Vec<u8>,
    version: u64,
    timestamp: Timestamp,
    previous_hash: &str,
    schema: u32,
) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(num.format(version).as_bytes());
    out.extend_from_slice(b",\"timestamp\":");
    out.extend_from_slice(num.format(timestamp.0).as_bytes());
    out.extend_from_slice(b",\"previous_hash\":");
    write_json_str(out, previous_hash);
    out.extend_from_slice(b",\"schema\":");
    out.extend_from_slice(num.format(schema).as_bytes());
    out.extend_from_slice(b",\"data\":");
}

/// Writes the format-1 (JSON) state of a parsed event.
pub fn write_json(out: &mut Vec<u8>, s: &StateRef<'_>) {
    let mut buf = [0u8; 64];
    write_header(
        out,
        &s.topic,
        s.originator_id,
        s.originator_version,
        s.timestamp,
        s.previous_hash.as_str(&mut buf),
        s.schema,
    );
    out.extend_from_slice(s.data.as_bytes());
    out.extend_from_slice(b",\"hash\":\"");
    out.extend_from_slice(s.hash.as_str(&mut buf).as_bytes());
    out.extend_from_slice(b"\"}");
}

/// The fields of a compact header, for writing one.
pub(crate) struct Compact<'a> {
    pub flags: u8,
    pub schema: u32,
    pub version: u64,
    pub timestamp: Timestamp,
    pub previous_hash: &'a str,
    pub hash: [u8; 32],
    pub topic: &'a str,
}

impl Compact<'_> {
    /// Writes the header; the payload follows it. Fails for a previous hash (a genesis hash)
    /// longer than a varint of 2 bytes can say, which no one configures.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(COMPACT);
        out.push(self.flags);
        put_varint(out, u64::from(self.schema));
        if self.flags & HAS_VERSION != 0 {
            put_varint(out, self.version);
        }
        if self.flags & NO_TIMESTAMP == 0 {
            out.extend_from_slice(&self.timestamp.0.to_le_bytes());
        }
        match integrity::parse_hex(self.previous_hash.as_bytes()) {
            Some(d) => {
                out.push(0);
                out.extend_from_slice(&d);
            }
            None => {
                out.push(1);
                put_varint(out, self.previous_hash.len() as u64);
                out.extend_from_slice(self.previous_hash.as_bytes());
            }
        }
        out.extend_from_slice(&self.hash);
        if self.flags & HAS_TOPIC != 0 {
            put_varint(out, self.topic.len() as u64);
            out.extend_from_slice(self.topic.as_bytes());
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over a compact header.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| corrupt("compact state is cut short".into()))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("compact state has an overlong number".into()))
    }
    fn text(&mut self) -> Result<&'a str> {
        let n = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        std::str::from_utf8(self.take(n)?)
            .map_err(|_| corrupt("compact state has text that is not UTF-8".into()))
    }
}

fn parse_compact<'a>(
    state: &'a [u8],
    cols: Columns<'a>,
    hashing: &'a Arc<HashConfig>,
) -> Result<StateRef<'a>> {
    let mut r = Reader { b: state, at: 1 };
    let flags = r.byte()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(corrupt(format!(
            "compact state has unknown flags {flags:#x}"
        )));
    }
    let schema = u32::try_from(r.varint()?)
        .map_err(|_| corrupt("compact state has a schema beyond u32".into()))?;
    let bad_position = || corrupt(format!("position {} is not a version", cols.position));
    let version = if flags & HAS_VERSION != 0 {
        r.varint()?
    } else if flags & NO_TIMESTAMP != 0 {
        return Err(corrupt(
            "compact state holds neither version nor timestamp".into(),
        ));
    } else {
        u64::try_from(cols.position).map_err(|_| bad_position())?
    };
    let timestamp = if flags & NO_TIMESTAMP != 0 {
        Timestamp(cols.position)
    } else {
        let b: [u8; 8] = r.take(8)?.try_into().unwrap_or_default();
        Timestamp(i64::from_le_bytes(b))
    };
    let previous_hash = match r.byte()? {
        0 => HashRef::Digest(r.take(32)?.try_into().unwrap_or_default()),
        1 => HashRef::Text(Cow::Borrowed(r.text()?)),
        other => {
            return Err(corrupt(format!(
                "compact state has previous-hash tag {other}"
            )))
        }
    };
    let hash = HashRef::Digest(r.take(32)?.try_into().unwrap_or_default());
    let topic = if flags & HAS_TOPIC != 0 {
        r.text()?
    } else {
        cols.topic
            .ok_or_else(|| corrupt("compact state without its topic, and no topic column".into()))?
    };
    let data =
        std::str::from_utf8(&state[r.at..]).map_err(|_| corrupt("payload is not UTF-8".into()))?;
    if flags & HAS_VERSION != 0 && flags & NO_TIMESTAMP == 0 && cols.position != version as i64 {
        return Err(corrupt(format!(
            "item at {}#{} holds the event at version {version}",
            cols.sequence_id, cols.position
        )));
    }
    Ok(StateRef {
        topic: Cow::Borrowed(topic),
        originator_id: cols.sequence_id,
        originator_version: version,
        timestamp,
        previous_hash,
        schema,
        data,
        hash,
        bytes: state,
        hashing,
    })
}

/// Length of `,"hash":"<64 hex>"}` at the end of a format-1 state.
const HASH_SUFFIX_LEN: usize = 75;
const HASH_PREFIX: &[u8] = b",\"hash\":\"";

/// The general shape of a format-1 state, for states not in the layout es writes.
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

/// Reads the format-1 layout es writes (see [`write_header`]) field by field; `None` for
/// anything else (other key order, escapes, spaces), which the general parser then reads.
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

/// The fast path of format 1: `state` minus its hash suffix, in es's own layout.
fn parse_layout<'a>(
    state: &'a [u8],
    hash: &'a str,
    hashing: &'a Arc<HashConfig>,
) -> Option<StateRef<'a>> {
    let n = state.len();
    let s = std::str::from_utf8(&state[..n - HASH_SUFFIX_LEN]).ok()?;
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
        previous_hash: HashRef::Text(Cow::Borrowed(previous_hash)),
        schema,
        data,
        hash: HashRef::Text(Cow::Borrowed(hash)),
        bytes: state,
        hashing,
    })
}

/// Parses a format-1 state and verifies its hash over the exact bytes stored (everything
/// before its `"hash"` member, closed), so a payload needs no canonical form.
fn parse_json<'a>(state: &'a [u8], hashing: &'a Arc<HashConfig>) -> Result<StateRef<'a>> {
    let n = state.len();
    if n < HASH_SUFFIX_LEN + 2
        || &state[n - HASH_SUFFIX_LEN..n - HASH_SUFFIX_LEN + HASH_PREFIX.len()] != HASH_PREFIX
        || &state[n - 2..] != b"\"}"
    {
        return Err(corrupt("event state does not end with its hash".into()));
    }
    let computed = integrity::digest(&hashing.salt, &[&state[..n - HASH_SUFFIX_LEN], b"}"]);
    let stored = &state[n - 66..n - 2];
    let parsed = match std::str::from_utf8(stored)
        .ok()
        .and_then(|hash| parse_layout(state, hash, hashing))
    {
        Some(p) => p,
        None => parse_general(state, hashing)?,
    };
    if parsed.hash.as_str(&mut [0u8; 64]).as_bytes() != stored {
        // Two hash members: the one at the end is the one that counts, and it is not this.
        return Err(Error::DataIntegrity(IntegrityError::EventHash {
            originator_id: parsed.originator_id,
            version: parsed.originator_version,
            stored: parsed.hash.to_text(),
            computed: integrity::hex(&computed),
        }));
    }
    parsed.compare(computed)?;
    Ok(parsed)
}

fn parse_general<'a>(state: &'a [u8], hashing: &'a Arc<HashConfig>) -> Result<StateRef<'a>> {
    let g: StateSerde<'a> = serde_json::from_slice(state)
        .map_err(|e| corrupt(format!("event state is not valid: {e}")))?;
    Ok(StateRef {
        topic: g.topic,
        originator_id: g.originator_id,
        originator_version: g.originator_version,
        timestamp: g.timestamp,
        previous_hash: HashRef::Text(g.previous_hash),
        schema: g.schema,
        data: g.data.get(),
        hash: HashRef::Text(g.hash),
        bytes: state,
        hashing,
    })
}

/// The format-1 (JSON) state of a stored item's state, for serving it to readers that expect
/// self-contained JSON states (the notification log's JSON view): a compact state is expanded
/// with the row's columns, without verifying its hash (the reader verifies); anything else is
/// returned as it is.
pub fn expand<'a>(state: &'a [u8], columns: Columns<'_>) -> Cow<'a, [u8]> {
    if state.first() != Some(&COMPACT) {
        return Cow::Borrowed(state);
    }
    let hashing = integrity::shared_default();
    match parse_compact(state, columns, hashing) {
        Ok(parsed) => {
            let mut out = Vec::with_capacity(state.len() + 256);
            write_json(&mut out, &parsed);
            Cow::Owned(out)
        }
        Err(_) => Cow::Borrowed(state),
    }
}

/// [`expand`] for a stored item whose topic column is in clear (not encrypted).
///
/// ```
/// use es_runtime::domain::state::expand_item;
/// use es_runtime::prelude::*;
///
/// #[aggregate]
/// pub struct Note {
///     text: String,
/// }
///
/// #[aggregate]
/// impl Note {
///     #[event(Written)]
///     pub fn write(text: String) -> Self {
///         Note { text }
///     }
/// }
///
/// fn main() -> es_runtime::Result<()> {
///     let mut note = Note::write("hello".into())?;
///     let event = note.collect_pending().remove(0);
///     let item = es_runtime::mapper::Mapper::new().to_item(event.as_ref())?;
///     let json = expand_item(&item).into_owned();
///     assert_eq!(json, event.to_state());
///     Ok(())
/// }
/// ```
pub fn expand_item(item: &crate::record::SequencedItem) -> Cow<'_, [u8]> {
    expand(
        &item.state,
        Columns {
            topic: Some(&item.topic),
            sequence_id: item.sequence_id,
            position: item.position,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest made from scratch, without the per-thread prefixes.
    #[allow(clippy::too_many_arguments)]
    fn plain(
        salt: &[u8],
        topic: &str,
        id: Uuid,
        version: u64,
        ts: i64,
        prev: &str,
        schema: u32,
        payload: &[u8],
    ) -> [u8; 32] {
        let mut header = Vec::new();
        write_header(&mut header, topic, id, version, Timestamp(ts), prev, schema);
        integrity::digest(salt, &[&header, payload, b"}"])
    }

    #[test]
    fn kept_prefixes_give_the_digest_made_from_scratch() {
        let ids: Vec<Uuid> = (0..PREFIXES as u128 + 3).map(Uuid::from_u128).collect();
        let topics = ["a::B.C", "a::B.Created", "with \"quote\"", ""];
        let salts: [&[u8]; 3] = [b"", b"salt", &[7u8; 200]];
        // Interleaved, more pairs than are kept, each seen again after others evicted it.
        for round in 0..3u64 {
            for (i, id) in ids.iter().enumerate() {
                for topic in topics {
                    for salt in salts {
                        let prev = if i % 2 == 0 { "" } else { "00ff" };
                        let payload = format!("{{\"n\":{round}}}");
                        let got = canonical_digest(
                            salt,
                            topic,
                            *id,
                            round,
                            Timestamp(i as i64),
                            prev,
                            1,
                            payload.as_bytes(),
                        );
                        let want = plain(
                            salt,
                            topic,
                            *id,
                            round,
                            i as i64,
                            prev,
                            1,
                            payload.as_bytes(),
                        );
                        assert_eq!(got, want, "{topic:?} {id} {salt:?} {round}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_header_is_the_prefix_and_the_rest() {
        let id = Uuid::from_u128(42);
        let mut whole = Vec::new();
        write_header(&mut whole, "t::T", id, 3, Timestamp(-5), "g", 2);
        let mut parts = Vec::new();
        write_prefix(&mut parts, "t::T", id);
        write_rest(&mut parts, 3, Timestamp(-5), "g", 2);
        assert_eq!(whole, parts);
        assert_eq!(
            String::from_utf8(whole).unwrap(),
            "{\"topic\":\"t::T\",\"originator_id\":\"00000000-0000-0000-0000-00000000002a\",\
             \"originator_version\":3,\"timestamp\":-5,\"previous_hash\":\"g\",\"schema\":2,\"data\":"
        );
    }
}
