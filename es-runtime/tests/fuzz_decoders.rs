//! Seeded random fuzzing of the decoders (issue 12, "Fuzzing stays"): JSON states, section ids,
//! section JSON, ciphertext and compressed data. Every input, valid, damaged or random, must
//! give a value or a typed error, never a panic; valid inputs must round-trip.
//!
//! Runs inside `cargo test`, each target bounded by a count and a time budget (about a second
//! by default). `ES_FUZZ_SECS` sets the budget per target, `ES_FUZZ_SEED` the seed (printed, so
//! that a failure can be replayed).

mod common;

use common::Started;
use es_runtime::domain::aggregate::create;
use es_runtime::mapper::{Cipher, Mapper};
use es_runtime::notify::{decode_section, encode_section, Section, SectionId};
use es_runtime::prelude::*;
use es_runtime::record::{Notification, SequencedItem};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// xorshift64*: small, fast and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// `input` damaged a few times: bytes flipped, replaced, inserted, removed, or cut off.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(v.len() + 1);
            match self.below(6) {
                0 if at < v.len() => v[at] ^= 1 << self.below(8),
                1 if at < v.len() => v[at] = self.next() as u8,
                2 => {
                    let punctuation = b"{}[]\",:0-9e.\\";
                    v.insert(at, punctuation[self.below(punctuation.len())]);
                }
                3 if at < v.len() => {
                    v.remove(at);
                }
                4 => v.truncate(at),
                _ => {
                    let extra = self.bytes(8);
                    v.splice(at..at, extra);
                }
            }
        }
        v
    }
}

/// Runs `case` with a fresh random source until the budget or 200,000 cases are used up;
/// returns how many ran.
fn fuzz(name: &str, mut case: impl FnMut(&mut Rng)) -> usize {
    let secs: f64 = std::env::var("ES_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let seed: u64 = std::env::var("ES_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0fe5);
    eprintln!("fuzz {name}: seed {seed}");
    let budget = Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut rng = Rng(seed | 1);
    let mut n = 0;
    while n < 200_000 && started.elapsed() < budget {
        case(&mut rng);
        n += 1;
    }
    eprintln!("fuzz {name}: {n} cases in {:?}", started.elapsed());
    assert!(n > 0);
    n
}

/// A valid stored item of a registered event.
fn valid_item(mapper: &Mapper, count: i64) -> SequencedItem {
    let c = create(Uuid::new_v4(), Started { count }).unwrap();
    mapper.to_item(c.pending_events()[0].as_ref()).unwrap()
}

#[test]
fn fuzz_json_states() {
    let mapper = Mapper::new();
    let item = valid_item(&mapper, 7);
    let back = mapper.from_item(&item).unwrap();
    assert_eq!(back.topic(), item.topic);
    fuzz("json state", |rng| {
        let state = if rng.below(10) == 0 {
            rng.bytes(64)
        } else {
            rng.mutate(&item.state)
        };
        let damaged = SequencedItem {
            state: state.into(),
            ..item.clone()
        };
        // A damaged state must never decode to a different event silently: it is either the
        // same event (an insignificant change, such as white space) or an error.
        if let Ok(e) = mapper.from_item(&damaged) {
            assert_eq!(e.meta().originator_id, item.sequence_id);
        }
    });
}

#[test]
fn fuzz_section_ids() {
    fuzz("section id", |rng| {
        let alphabet = b"0123456789,- +current";
        let s: String = (0..rng.below(24))
            .map(|_| alphabet[rng.below(alphabet.len())] as char)
            .collect();
        match SectionId::parse(&s) {
            Ok(SectionId::Range { first, last }) => {
                assert!(1 <= first && first <= last, "{s:?}");
                // What parses formats back to an id that parses the same.
                let again = SectionId::parse(&SectionId::format(first, last)).unwrap();
                assert_eq!(again, SectionId::Range { first, last });
            }
            Ok(SectionId::Current) => assert_eq!(s, "current"),
            Err(e) => assert!(matches!(e, Error::BadSection(_)), "{e:?}"),
        }
        // Numbers at the edges of i64.
        let edge = [0, 1, i64::MAX, i64::MIN, -1][rng.below(5)];
        let _ = SectionId::parse(&format!("{edge},{}", rng.next() as i64));
    });
}

#[test]
fn fuzz_section_json() {
    let mapper = Mapper::new();
    let items: Vec<Notification> = (1..=3)
        .map(|id| Notification {
            id,
            item: valid_item(&mapper, id),
            causal_dependencies: (id == 2).then(|| "{\"a\":1}".to_string()),
        })
        .collect();
    let section = Section {
        section_id: "1,5".into(),
        items,
        previous_id: None,
        next_id: Some("6,10".into()),
    };
    let json = encode_section(&section).unwrap();
    // The view serves compact states in their self-contained JSON form (the reference
    // library's wire format), so the section reads back with its states expanded.
    let mut expanded = section.clone();
    for n in &mut expanded.items {
        n.item.state = es_runtime::domain::state::expand_item(&n.item)
            .into_owned()
            .into();
    }
    assert_eq!(
        decode_section::<Notification>(json.as_bytes()).unwrap(),
        expanded
    );
    fuzz("section json", |rng| {
        let input = if rng.below(10) == 0 {
            rng.bytes(128)
        } else {
            rng.mutate(json.as_bytes())
        };
        match decode_section::<Notification>(&input) {
            Ok(s) => {
                // Whatever decodes encodes again.
                encode_section(&s).unwrap();
            }
            Err(e) => assert!(matches!(e, Error::BadSection(_)), "{e:?}"),
        }
        let _ = decode_section::<serde_json::Value>(&input);
    });
}

#[test]
fn fuzz_ciphertext() {
    let cipher = Cipher::from_base64(&Cipher::random_key(32).unwrap()).unwrap();
    let mapper = Mapper::new().with_cipher(cipher.clone());
    let plain = br#"{"some":"state"}"#;
    let sealed = cipher.encrypt(plain).unwrap();
    assert_eq!(cipher.decrypt(&sealed).unwrap(), plain);
    let item = valid_item(&mapper, 3);
    fuzz("ciphertext", |rng| {
        let input = match rng.below(3) {
            0 => rng.bytes(64),
            1 => rng.mutate(&sealed),
            _ => rng.mutate(&item.state),
        };
        // Authenticated encryption: any change is refused as a cipher error.
        if input != sealed {
            if let Ok(p) = cipher.decrypt(&input) {
                assert_eq!(input, item.state.to_vec(), "forged: {p:?}");
            }
        }
        match mapper.decode_bytes(&input) {
            Ok(_) => assert!(input == sealed || input == item.state.to_vec()),
            Err(e) => assert!(matches!(e, Error::DataIntegrity(_)), "{e:?}"),
        }
        let topic = String::from_utf8_lossy(&rng.bytes(40)).into_owned();
        let _ = mapper.decode_topic(&topic);
    });
}

#[test]
fn fuzz_compressed_data() {
    let mapper = Mapper::new()
        .with_compression(16)
        .with_max_state_size(1 << 16);
    let json = br#"{"a":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","b":[1,2,3,4,5,6,7,8,9]}"#;
    let packed = mapper.encode_bytes(json.to_vec()).unwrap();
    assert_eq!(packed[0], 1, "compressed");
    assert_eq!(&mapper.decode_bytes(&packed).unwrap()[..], &json[..]);
    fuzz("compressed", |rng| {
        let input = match rng.below(4) {
            0 => {
                let mut v = vec![1u8];
                v.extend(rng.bytes(64));
                v
            }
            _ => rng.mutate(&packed),
        };
        match mapper.decode_bytes(&input) {
            Ok(out) => assert!(out.len() <= 1 << 16),
            Err(e) => assert!(matches!(e, Error::DataIntegrity(_)), "{e:?}"),
        }
        // Round trip of random content, compressed or not.
        let mut content = b"{".to_vec();
        content.extend(rng.bytes(200));
        let stored = mapper.encode_bytes(content.clone()).unwrap();
        assert_eq!(&mapper.decode_bytes(&stored).unwrap()[..], &content[..]);
    });
}
