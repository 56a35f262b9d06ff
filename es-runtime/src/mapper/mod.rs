//! The sequenced item mapper: domain events ⇄ stored items.
//!
//! Writing an event: its compact state (made once, when the event was triggered; see
//! [`crate::domain::state`]) → optional compression (only above a size threshold: small events
//! do not shrink enough to pay for it) → optional AES-GCM encryption → [`SequencedItem`].
//! Reading reverses the layers, verifies the event's hash (with the mapper's salt) from the
//! fields parsed once, checks that the item's sequence and position agree with the event,
//! resolves the topic and decodes (upcasting older schemas). States written before the compact
//! format (self-contained JSON) are recognised by their first byte and read as before.
//!
//! **Hash settings.** A mapper hashes with its own salt and genesis hash
//! ([`Mapper::with_hashing`]), or with the process's default.
//!
//! **Transcoding.** JSON through serde is the transcoder: to store a value type of your own,
//! give it `Serialize`/`Deserialize` implementations (derived, hand-written, or with
//! `#[serde(with = ...)]`); nothing else needs registering. For a transformation of the stored
//! bytes as a whole (another compression, an envelope of your own), add a [`StateCodec`].
//!
//! **Encryption.** With a cipher, the state and the topic are both encrypted; the sequence id and
//! position stay in clear (they are the primary key). Reading with no key, a wrong key or damaged
//! bytes is a [`IntegrityError::Cipher`] or [`IntegrityError::Corrupt`] error.

pub mod cipher;
pub mod inspect;

pub use cipher::Cipher;
pub use inspect::RawEvent;

use crate::domain::event::{decode_parsed_any, AnyEvent, StateRef};
use crate::domain::integrity::{self, HashConfig};
use crate::domain::state::{self, Columns, Compact};
use crate::error::{Error, IntegrityError, Result};
use crate::record::{Bytes, SequencedItem};
use base64::Engine;
use std::borrow::Cow;
use std::io::{Read, Write};
use std::sync::Arc;

/// Marks a zlib-compressed state (JSON never starts with this byte).
const COMPRESSED: u8 = 1;

/// The default of [`Mapper::with_max_state_size`]: 64 MiB.
pub const DEFAULT_MAX_STATE_SIZE: usize = 64 << 20;

/// A reversible transformation of stored state bytes, applied after compression and before
/// encryption.
pub trait StateCodec: Send + Sync + 'static {
    /// Transforms bytes on the way to storage.
    fn encode(&self, data: Vec<u8>) -> Result<Vec<u8>>;
    /// Reverses [`StateCodec::encode`].
    fn decode(&self, data: Vec<u8>) -> Result<Vec<u8>>;
}

/// What an item's position means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PositionKind {
    /// The position is the event's originator version (aggregates' event tables).
    #[default]
    Version,
    /// The position is the event's timestamp in microseconds (timestamp-sequenced tables).
    Timestamp,
}

/// Maps events to items and back. Cheap to clone.
#[derive(Clone, Default)]
pub struct Mapper {
    cipher: Option<Cipher>,
    compress_above: Option<usize>,
    codec: Option<Arc<dyn StateCodec>>,
    position: PositionKind,
    /// The inflation limit; `None` is [`DEFAULT_MAX_STATE_SIZE`].
    max_state_size: Option<usize>,
    hashing: Option<Arc<HashConfig>>,
}

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapper")
            .field("cipher", &self.cipher)
            .field("compress_above", &self.compress_above)
            .field("codec", &self.codec.is_some())
            .field("position", &self.position)
            .field("max_state_size", &self.max_state_size())
            .field("custom_hashing", &self.hashing.is_some())
            .finish()
    }
}

impl Mapper {
    /// Plain JSON, no compression, no encryption.
    pub fn new() -> Self {
        Self::default()
    }
    /// Encrypts topic and state with this cipher.
    pub fn with_cipher(mut self, cipher: Cipher) -> Self {
        self.cipher = Some(cipher);
        self
    }
    /// Compresses states longer than `threshold` bytes (zlib).
    pub fn with_compression(mut self, threshold: usize) -> Self {
        self.compress_above = Some(threshold);
        self
    }
    /// Adds a custom byte-level codec.
    pub fn with_codec(mut self, codec: Arc<dyn StateCodec>) -> Self {
        self.codec = Some(codec);
        self
    }
    /// Sets what positions mean (versions by default, timestamps for timestamp-sequenced stores).
    pub fn with_position(mut self, position: PositionKind) -> Self {
        self.position = position;
        self
    }
    /// Sets the largest state a compressed state may inflate to, in bytes
    /// ([`DEFAULT_MAX_STATE_SIZE`] by default). A stored state that inflates past it (damaged
    /// data, or a decompression bomb) is [`IntegrityError::Corrupt`], found after inflating at
    /// most this much. The limit holds whether or not this mapper compresses.
    ///
    /// ```
    /// use es_runtime::mapper::Mapper;
    /// let mapper = Mapper::new().with_compression(1024).with_max_state_size(1 << 20);
    /// let stored = mapper.encode_bytes(vec![b' '; 2 << 20])?;
    /// assert!(stored.len() < 100_000);
    /// assert!(matches!(
    ///     mapper.decode_bytes(&stored),
    ///     Err(es_runtime::Error::DataIntegrity(es_runtime::IntegrityError::Corrupt(_)))
    /// ));
    /// # Ok::<(), es_runtime::Error>(())
    /// ```
    pub fn with_max_state_size(mut self, bytes: usize) -> Self {
        self.max_state_size = Some(bytes);
        self
    }
    /// The largest state a compressed state may inflate to ([`Mapper::with_max_state_size`]).
    pub fn max_state_size(&self) -> usize {
        self.max_state_size.unwrap_or(DEFAULT_MAX_STATE_SIZE)
    }
    /// Hashes (and verifies) with these settings instead of the process's default.
    pub fn with_hashing(mut self, hashing: HashConfig) -> Self {
        self.hashing = Some(Arc::new(hashing));
        self
    }
    /// The hash settings in force: the mapper's own, or the process's default.
    pub fn hashing(&self) -> &Arc<HashConfig> {
        integrity::or_default(self.hashing.as_ref())
    }
    /// True if this mapper encrypts.
    pub fn encrypts(&self) -> bool {
        self.cipher.is_some()
    }

    /// Maps one event to a stored item. An event hashed with other settings than the mapper's
    /// is refused ([`Error::Configuration`]): saved through an application it is re-hashed
    /// first.
    pub fn to_item(&self, event: &dyn AnyEvent) -> Result<SequencedItem> {
        let meta = event.meta();
        let position = match self.position {
            PositionKind::Version => i64::try_from(meta.originator_version)
                .map_err(|_| Error::Encoding("originator version exceeds i64".into()))?,
            PositionKind::Timestamp => meta.timestamp.0,
        };
        if !integrity::same(event.hashing(), self.hashing.as_ref()) {
            return Err(Error::Configuration(format!(
                "{} of {} was hashed with other hash settings than this store's: save it \
                 through the application (which re-hashes it) or re-hash it",
                event.topic(),
                meta.originator_id
            )));
        }
        let mut flags = 0;
        if self.position == PositionKind::Timestamp {
            flags |= state::HAS_VERSION | state::NO_TIMESTAMP;
        }
        if self.cipher.is_some() {
            flags |= state::HAS_TOPIC;
        }
        let compact = if flags == 0 {
            event.state_bytes()
        } else {
            Bytes::from(relayout(event, flags)?)
        };
        Ok(SequencedItem {
            sequence_id: meta.originator_id,
            position,
            topic: self.encode_topic(event.topic())?,
            state: self.encode_shared(compact)?,
        })
    }

    /// Maps one event to an item type of your own, with its own field names (§8.1 of the
    /// manual): any type that converts from [`SequencedItem`], such as
    /// [`StoredEvent`](crate::record::StoredEvent).
    pub fn to_item_as<T: From<SequencedItem>>(&self, event: &dyn AnyEvent) -> Result<T> {
        Ok(T::from(self.to_item(event)?))
    }

    /// Maps an item of your own type back to its event.
    pub fn from_item_as<T: Into<SequencedItem>>(&self, item: T) -> Result<Box<dyn AnyEvent>> {
        self.from_item(&item.into())
    }

    /// Maps several events, in order.
    pub fn to_items(&self, events: &[Box<dyn AnyEvent>]) -> Result<Vec<SequencedItem>> {
        events.iter().map(|e| self.to_item(e.as_ref())).collect()
    }

    /// Maps a stored item back to its event: decrypts, decompresses, verifies the hash, checks
    /// sequence and position, resolves the topic and decodes.
    pub fn from_item(&self, item: &SequencedItem) -> Result<Box<dyn AnyEvent>> {
        let json = self.decode_bytes(&item.state)?;
        let parsed = self.check(item, &json)?;
        decode_parsed_any(&parsed)
    }

    /// Adds, to an unreadable state's error, that a mapper without a cipher may be reading
    /// encrypted states: a ciphertext can begin with any byte, also one of a plain state's.
    fn unreadable(&self, e: Error) -> Error {
        match e {
            Error::DataIntegrity(IntegrityError::Corrupt(m)) if self.cipher.is_none() => {
                IntegrityError::Corrupt(format!("{m} ({ENCRYPTED_HINT})")).into()
            }
            other => other,
        }
    }

    /// Decodes a stored item and applies it to an `Option<A>` passed as `&mut dyn Any`, with
    /// the same checks as [`Mapper::from_item`] but without building the event (replay).
    pub fn apply_item(&self, item: &SequencedItem, target: &mut dyn std::any::Any) -> Result<()> {
        let json = self.decode_bytes(&item.state)?;
        let parsed = self.check(item, &json)?;
        let ty = crate::domain::topic::resolve(&parsed.topic)?;
        (ty.apply)(&parsed, target)
    }

    fn check<'j>(&'j self, item: &'j SequencedItem, json: &'j [u8]) -> Result<StateRef<'j>> {
        let columns = Columns {
            topic: self.cipher.is_none().then_some(&*item.topic),
            sequence_id: item.sequence_id,
            position: item.position,
        };
        let parsed = StateRef::parse_with(json, Some(columns), self.hashing())
            .map_err(|e| self.unreadable(e))?;
        if self.cipher.is_none() && parsed.topic != item.topic {
            return Err(IntegrityError::Corrupt(format!(
                "stored topic {:?} does not match the topic {:?} inside the state",
                item.topic, parsed.topic
            ))
            .into());
        }
        let position = match self.position {
            PositionKind::Version => parsed.originator_version as i64,
            PositionKind::Timestamp => parsed.timestamp.0,
        };
        if parsed.originator_id != item.sequence_id || position != item.position {
            return Err(IntegrityError::Corrupt(format!(
                "item at {}#{} holds the event of {}#{}",
                item.sequence_id, item.position, parsed.originator_id, position
            ))
            .into());
        }
        Ok(parsed)
    }

    /// Maps several items, in order.
    pub fn from_items(&self, items: &[SequencedItem]) -> Result<Vec<Box<dyn AnyEvent>>> {
        items.iter().map(|i| self.from_item(i)).collect()
    }

    /// The topic of a stored item in clear (decrypting it if the mapper encrypts).
    pub fn decode_topic(&self, stored: &str) -> Result<String> {
        match &self.cipher {
            None => Ok(stored.to_string()),
            Some(c) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(stored)
                    .map_err(|_| IntegrityError::Cipher("encrypted topic is not base64".into()))?;
                String::from_utf8(c.decrypt(&bytes)?).map_err(|_| {
                    IntegrityError::Corrupt("decrypted topic is not UTF-8".into()).into()
                })
            }
        }
    }

    /// The topic as stored (encrypted if the mapper encrypts).
    pub fn encode_topic(&self, topic: &'static str) -> Result<Cow<'static, str>> {
        match &self.cipher {
            None => Ok(Cow::Borrowed(topic)),
            Some(c) => Ok(Cow::Owned(
                base64::engine::general_purpose::STANDARD.encode(c.encrypt(topic.as_bytes())?),
            )),
        }
    }

    /// [`Mapper::encode_bytes`] for a state that is already shared: when no layer applies
    /// (no cipher, no codec, no compression at this size) the same bytes are returned, uncopied.
    pub fn encode_shared(&self, json: Bytes) -> Result<Bytes> {
        let compresses = self.compress_above.is_some_and(|t| json.len() > t);
        if self.cipher.is_none() && self.codec.is_none() && !compresses {
            return Ok(json);
        }
        self.encode_bytes(json.to_vec()).map(Bytes::from)
    }

    /// Applies the byte layers (compression, codec, cipher) to a JSON state.
    pub fn encode_bytes(&self, json: Vec<u8>) -> Result<Vec<u8>> {
        let mut data = json;
        if let Some(t) = self.compress_above {
            if data.len() > t {
                let mut enc =
                    flate2::write::ZlibEncoder::new(vec![COMPRESSED], flate2::Compression::fast());
                enc.write_all(&data)
                    .and_then(|_| enc.finish())
                    .map(|z| data = z)
                    .map_err(|e| Error::Encoding(format!("compression failed: {e}")))?;
            }
        }
        if let Some(codec) = &self.codec {
            data = codec.encode(data)?;
        }
        if let Some(c) = &self.cipher {
            data = c.encrypt(&data)?;
        }
        Ok(data)
    }

    /// Reverses [`Mapper::encode_bytes`].
    pub fn decode_bytes<'a>(&self, stored: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        let mut data: Cow<'a, [u8]> = match &self.cipher {
            Some(c) => Cow::Owned(c.decrypt(stored)?),
            None => Cow::Borrowed(stored),
        };
        if let Some(codec) = &self.codec {
            data = Cow::Owned(codec.decode(data.into_owned())?);
        }
        match data.first() {
            Some(b'{' | &state::COMPACT) => Ok(data),
            Some(&COMPRESSED) => {
                let limit = self.max_state_size();
                let mut out = Vec::with_capacity(data.len().saturating_mul(3).min(limit));
                // One byte more than the limit tells a state at the limit from one past it.
                flate2::read::ZlibDecoder::new(&data[1..])
                    .take(limit as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        self.unreadable(
                            IntegrityError::Corrupt(format!("compressed state is damaged: {e}"))
                                .into(),
                        )
                    })?;
                if out.len() > limit {
                    return Err(IntegrityError::Corrupt(format!(
                        "compressed state inflates past the limit of {limit} bytes \
                         (Mapper::with_max_state_size)"
                    ))
                    .into());
                }
                Ok(Cow::Owned(out))
            }
            _ => Err(self.unreadable(
                IntegrityError::Corrupt(if self.cipher.is_none() {
                    "state is neither an event state nor a compressed one".into()
                } else {
                    "decrypted state is neither an event state nor a compressed one".into()
                })
                .into(),
            )),
        }
    }
}

/// What an unreadable state's error says when the mapper has no cipher.
const ENCRYPTED_HINT: &str = "is it encrypted? configure the cipher key";

/// The compact state of `event` with other `flags` (the version or topic inside).
fn relayout(event: &dyn AnyEvent, flags: u8) -> Result<Vec<u8>> {
    let meta = event.meta();
    let hash = integrity::parse_hex(meta.hash.as_bytes()).ok_or_else(|| {
        IntegrityError::Corrupt(format!("hash {:?} is not a SHA-256 in hex", meta.hash))
    })?;
    let data = event.data_json();
    let mut out = Vec::with_capacity(96 + event.topic().len() + data.len());
    Compact {
        flags,
        schema: meta.schema,
        version: meta.originator_version,
        timestamp: meta.timestamp,
        previous_hash: &meta.previous_hash,
        hash,
        topic: event.topic(),
    }
    .write(&mut out);
    out.extend_from_slice(data.as_bytes());
    Ok(out)
}
