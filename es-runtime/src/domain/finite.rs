//! Refusing numbers that JSON cannot hold.
//!
//! serde_json writes a NaN or infinite `f32`/`f64` as `null`, which reads back as an error (or
//! as something else): an event holding one would be stored and never load again. The rule is
//! that an event es cannot read back is never stored, so [`check`] walks a payload when it is
//! triggered and names the first such field in [`Error::NonFiniteNumber`].
//!
//! The walk is a serializer that writes nothing: it only looks at numbers and keeps the path of
//! field names, indices and map keys that leads to them.

use crate::error::{Error, Result};
use serde::ser::{self, Serialize};
use std::fmt;

/// [`check`], but only when `json`, what serde_json wrote for `value`, holds a `null` (where
/// a NaN or infinity would have gone): payloads without one are not walked at all.
pub(crate) fn check_written<T: Serialize + ?Sized>(
    topic: &str,
    value: &T,
    json: &[u8],
) -> Result<()> {
    if json.windows(4).any(|w| w == b"null") {
        check(topic, value)
    } else {
        Ok(())
    }
}

/// Fails with [`Error::NonFiniteNumber`] if `value` serialises a NaN or infinite `f32`/`f64`
/// anywhere (the error names the field path, such as `readings[2].celsius`); `topic` names the
/// event in the error.
pub(crate) fn check<T: Serialize + ?Sized>(topic: &str, value: &T) -> Result<()> {
    let mut path = Vec::new();
    match value.serialize(Walker { path: &mut path }) {
        Err(Stop::Found { field, value }) => Err(Error::NonFiniteNumber {
            topic: topic.to_string(),
            field,
            value,
        }),
        // Whatever else fails is reported by the real serialisation.
        Ok(()) | Err(Stop::Other(_)) => Ok(()),
    }
}

/// Why the walk stopped.
#[derive(Debug)]
enum Stop {
    /// A number JSON cannot hold, at this path.
    Found { field: String, value: f64 },
    /// A failure of the value's own `Serialize` implementation.
    Other(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Found { field, value } => write!(f, "{field} is {value}"),
            Stop::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Stop::Other(msg.to_string())
    }
}

/// The path so far: segments with their separators (`.name`, `[3]`).
type Path = Vec<String>;

fn found(path: &Path, value: f64) -> Stop {
    let field = path.concat();
    let field = match field.strip_prefix('.') {
        Some(f) => f.to_string(),
        None if field.is_empty() => "(the payload itself)".to_string(),
        None => field,
    };
    Stop::Found { field, value }
}

/// Checks `value` with `segment` added to the path.
fn visit<T: Serialize + ?Sized>(path: &mut Path, segment: String, value: &T) -> Result<(), Stop> {
    path.push(segment);
    let r = value.serialize(Walker { path: &mut *path });
    path.pop();
    r
}

struct Walker<'a> {
    path: &'a mut Path,
}

/// A compound value being walked: its elements are numbered from 0.
struct Compound<'a> {
    path: &'a mut Path,
    index: usize,
    /// A map's key waiting for its value.
    key: String,
    /// The enum variant around a tuple or struct variant's fields (already on the path).
    variant: bool,
}

impl<'a> Compound<'a> {
    fn new(path: &'a mut Path) -> Self {
        Compound {
            path,
            index: 0,
            key: String::new(),
            variant: false,
        }
    }
    fn in_variant(path: &'a mut Path, variant: &'static str) -> Self {
        path.push(format!(".{variant}"));
        Compound {
            variant: true,
            ..Compound::new(path)
        }
    }
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let i = self.index;
        self.index += 1;
        visit(self.path, format!("[{i}]"), value)
    }
    fn end(self) -> Result<(), Stop> {
        if self.variant {
            self.path.pop();
        }
        Ok(())
    }
}

impl<'a> ser::Serializer for Walker<'a> {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_f32(self, v: f32) -> Result<(), Stop> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Stop> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(found(self.path, v))
        }
    }
    fn serialize_bool(self, _: bool) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_i128(self, _: i128) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_u128(self, _: u128) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_char(self, _: char) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        visit(self.path, format!(".{variant}"), value)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Stop> {
        Ok(Compound::new(self.path))
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>, Stop> {
        Ok(Compound::new(self.path))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Stop> {
        Ok(Compound::new(self.path))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Stop> {
        Ok(Compound::in_variant(self.path, variant))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Stop> {
        Ok(Compound::new(self.path))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Stop> {
        Ok(Compound::new(self.path))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Stop> {
        Ok(Compound::in_variant(self.path, variant))
    }
}

/// The sequence-like compounds: each element is checked in turn.
macro_rules! elements {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Stop;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
                self.element(value)
            }
            fn end(self) -> Result<(), Stop> {
                Compound::end(self)
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        // Keys are written as strings: name the entry by its key as JSON shows it.
        self.key = match serde_json::to_value(key) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(_) => "?".to_string(),
        };
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let key = std::mem::take(&mut self.key);
        visit(self.path, format!(".{key}"), value)
    }
    fn end(self) -> Result<(), Stop> {
        Compound::end(self)
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        visit(self.path, format!(".{key}"), value)
    }
    fn end(self) -> Result<(), Stop> {
        Compound::end(self)
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        visit(self.path, format!(".{key}"), value)
    }
    fn end(self) -> Result<(), Stop> {
        Compound::end(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Reading {
        celsius: f64,
    }

    #[derive(Serialize)]
    enum Shape {
        Circle { r: f32 },
        Pair(f64, f64),
        Wrapped(Reading),
    }

    #[derive(Serialize)]
    struct Payload {
        name: String,
        readings: Vec<Reading>,
        by_key: BTreeMap<String, f64>,
        shape: Option<Shape>,
        pair: (u8, f64),
    }

    fn payload() -> Payload {
        Payload {
            name: "x".into(),
            readings: vec![Reading { celsius: 1.0 }, Reading { celsius: 2.0 }],
            by_key: BTreeMap::from([("a".to_string(), 1.0)]),
            shape: None,
            pair: (1, 2.0),
        }
    }

    fn field_of(p: &Payload) -> Option<(String, f64)> {
        match check("t.T", p) {
            Ok(()) => None,
            Err(Error::NonFiniteNumber {
                topic,
                field,
                value,
            }) => {
                assert_eq!(topic, "t.T");
                Some((field, value))
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn finite_payloads_pass_and_the_path_names_the_first_bad_number() {
        assert_eq!(field_of(&payload()), None);
        let mut p = payload();
        p.readings[1].celsius = f64::NAN;
        let (field, v) = field_of(&p).unwrap();
        assert_eq!(field, "readings[1].celsius");
        assert!(v.is_nan());
        let mut p = payload();
        p.by_key.insert("hot".into(), f64::INFINITY);
        assert_eq!(field_of(&p), Some(("by_key.hot".into(), f64::INFINITY)));
        let mut p = payload();
        p.shape = Some(Shape::Circle {
            r: f32::NEG_INFINITY,
        });
        assert_eq!(
            field_of(&p),
            Some(("shape.Circle.r".into(), f64::NEG_INFINITY))
        );
        p.shape = Some(Shape::Pair(1.0, f64::INFINITY));
        assert_eq!(field_of(&p).unwrap().0, "shape.Pair[1]");
        p.shape = Some(Shape::Wrapped(Reading {
            celsius: f64::INFINITY,
        }));
        assert_eq!(field_of(&p).unwrap().0, "shape.Wrapped.celsius");
        let mut p = payload();
        p.pair.1 = f64::NAN;
        assert_eq!(field_of(&p).unwrap().0, "pair[1]");
        assert!(matches!(
            check("t", &f64::NAN),
            Err(Error::NonFiniteNumber { field, .. }) if field == "(the payload itself)"
        ));
    }
}
