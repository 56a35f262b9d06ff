//! The JSON form of sections, wire-compatible with the reference library's
//! `NotificationLogView` / `RemoteNotificationLog` (eventsourcing 7.1.1).
//!
//! A section is one JSON object with exactly the keys `items`, `next_id`, `previous_id` and
//! `section_id` (the reference client builds its section from them and rejects other keys).
//! Keys are sorted, separators are compact, non-ASCII characters are escaped: the bytes are
//! those the reference library's `json_dumps` writes for the same section. A record
//! notification is an object with the keys
//!
//! | key | value |
//! | --- | --- |
//! | `causal_dependencies` | `null` or a string (JSON text) |
//! | `id` | the notification id (integer) |
//! | `originator_id` | `{"UUID": "<32 lowercase hex digits>"}` (the reference `UUID` encoding) |
//! | `originator_version` | integer |
//! | `state` | the stored state as a string when it is UTF-8 text (plain JSON states are); otherwise (encrypted or compressed states) `{"__bytes__": "<base64>"}` |
//! | `topic` | string (base64 text when the application encrypts) |
//!
//! Decoding also accepts `sequence_id` / `position` for `originator_id` / `originator_version`
//! (the reference library's other sequenced item type), a UUID as a plain string, a missing
//! `causal_dependencies`, and a non-string one (kept as its JSON text).
//!
//! ```
//! # async fn demo() -> es_runtime::Result<()> {
//! use es_runtime::notify::{decode_section, NotificationLogView, RecordNotificationLog};
//! use es_runtime::record::{memory::InMemoryDatabase, Notification, RecordKind};
//! use std::sync::Arc;
//! let records = Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "app", 0));
//! let view = NotificationLogView::new(Arc::new(RecordNotificationLog::new(records, 5)?));
//! let (json, archived) = view.present_section("current").await?;
//! assert_eq!(json, r#"{"items":[],"next_id":null,"previous_id":null,"section_id":"1,5"}"#);
//! assert!(!archived);
//! let section = decode_section::<Notification>(json.as_bytes())?;
//! assert_eq!(section.section_id, "1,5");
//! # Ok(()) }
//! ```

use super::section::{Section, SectionId};
use super::NotificationLog;
use crate::error::{Error, Result};
use crate::record::{Notification, SequencedItem};
use base64::Engine;
use serde::de::{DeserializeOwned, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// Presents the sections of a local log as JSON (for an HTTP server, a file, a queue).
pub struct NotificationLogView<I = Notification> {
    log: Arc<dyn NotificationLog<I>>,
}

impl<I> Clone for NotificationLogView<I> {
    fn clone(&self) -> Self {
        NotificationLogView {
            log: self.log.clone(),
        }
    }
}

impl<I> std::fmt::Debug for NotificationLogView<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotificationLogView")
    }
}

impl<I: Serialize + Send + 'static> NotificationLogView<I> {
    /// A view of `log`.
    pub fn new(log: Arc<dyn NotificationLog<I>>) -> Self {
        NotificationLogView { log }
    }

    /// The section named `section_id` as JSON, and whether it is archived (full: its JSON
    /// will never change).
    pub async fn present_section(&self, section_id: &str) -> Result<(String, bool)> {
        let section = self.log.section(section_id).await?;
        let archived = section.is_archived();
        Ok((encode_section(&section)?, archived))
    }
}

/// The JSON of a section, in the reference library's format.
pub fn encode_section<I: Serialize>(section: &Section<I>) -> Result<String> {
    #[derive(Serialize)]
    struct Wire<'a, I> {
        items: &'a [I],
        next_id: &'a Option<String>,
        previous_id: &'a Option<String>,
        section_id: &'a str,
    }
    let wire = Wire {
        items: &section.items,
        next_id: &section.next_id,
        previous_id: &section.previous_id,
        section_id: &section.section_id,
    };
    let mut out = Vec::with_capacity(256 + 512 * section.items.len());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    wire.serialize(&mut ser)?;
    // The formatter writes ASCII only.
    String::from_utf8(out).map_err(|e| Error::Encoding(e.to_string()))
}

/// Decodes a section from JSON written by [`NotificationLogView`] or by the reference
/// library. Anything else is [`Error::BadSection`].
pub fn decode_section<I: DeserializeOwned>(json: &[u8]) -> Result<Section<I>> {
    #[derive(Deserialize)]
    struct Wire<I> {
        section_id: String,
        items: Vec<I>,
        #[serde(default)]
        previous_id: Option<String>,
        #[serde(default)]
        next_id: Option<String>,
    }
    let w: Wire<I> = serde_json::from_slice(json)
        .map_err(|e| Error::BadSection(format!("malformed section: {e}")))?;
    if !matches!(SectionId::parse(&w.section_id)?, SectionId::Range { .. }) {
        return Err(Error::BadSection(format!(
            "section id {:?} is not a range",
            w.section_id
        )));
    }
    for link in [&w.previous_id, &w.next_id].into_iter().flatten() {
        SectionId::parse(link)?;
    }
    Ok(Section {
        section_id: w.section_id,
        items: w.items,
        previous_id: w.previous_id,
        next_id: w.next_id,
    })
}

/// Writes JSON as Python's `json.dumps` does by default: non-ASCII characters as `\uXXXX`.
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if fragment.is_ascii() {
            return w.write_all(fragment.as_bytes());
        }
        let mut buf = [0u16; 2];
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut buf) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

struct PyUuid(Uuid);

impl Serialize for PyUuid {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("UUID", &format_args!("{}", self.0.simple()))?;
        m.end()
    }
}

struct PyState<'a>(&'a [u8]);

impl Serialize for PyState<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(
                    "__bytes__",
                    &base64::engine::general_purpose::STANDARD.encode(self.0),
                )?;
                m.end()
            }
        }
    }
}

impl Serialize for Notification {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("causal_dependencies", &self.causal_dependencies)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("originator_id", &PyUuid(self.item.sequence_id))?;
        m.serialize_entry("originator_version", &self.item.position)?;
        // A compact state goes out as the self-contained JSON state of the same event (what
        // the reference library's readers and older es readers expect; its hash verifies as
        // it is). Not an encrypted item's: its topic column is ciphertext (base64).
        let item = &self.item;
        let clear_topic = item
            .topic
            .bytes()
            .any(|b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='))
            || crate::domain::topic::resolve(&item.topic).is_ok();
        let state = if clear_topic {
            crate::domain::state::expand_item(item)
        } else {
            std::borrow::Cow::Borrowed(&item.state[..])
        };
        m.serialize_entry("state", &PyState(&state))?;
        m.serialize_entry("topic", &self.item.topic)?;
        m.end()
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireUuid {
    Dict {
        #[serde(rename = "UUID")]
        uuid: String,
    },
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireState {
    Text(String),
    Bytes {
        #[serde(rename = "__bytes__")]
        bytes: String,
    },
}

#[derive(Deserialize)]
struct WireNotification {
    id: i64,
    #[serde(alias = "sequence_id")]
    originator_id: WireUuid,
    #[serde(alias = "position")]
    originator_version: i64,
    topic: String,
    state: WireState,
    #[serde(default)]
    causal_dependencies: Option<serde_json::Value>,
}

impl<'de> Deserialize<'de> for Notification {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let w = WireNotification::deserialize(d)?;
        let text = match w.originator_id {
            WireUuid::Dict { uuid } | WireUuid::Text(uuid) => uuid,
        };
        let sequence_id = Uuid::parse_str(&text)
            .map_err(|e| D::Error::custom(format!("originator_id {text:?}: {e}")))?;
        let state =
            match w.state {
                WireState::Text(t) => t.into_bytes(),
                WireState::Bytes { bytes } => base64::engine::general_purpose::STANDARD
                    .decode(bytes)
                    .map_err(|e| D::Error::custom(format!("state bytes: {e}")))?,
            };
        let causal_dependencies = match w.causal_dependencies {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
        };
        Ok(Notification {
            id: w.id,
            item: SequencedItem {
                sequence_id,
                position: w.originator_version,
                topic: w.topic.into(),
                state: state.into(),
            },
            causal_dependencies,
        })
    }
}
