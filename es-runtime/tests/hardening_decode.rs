//! Decompression is bounded (issue 12, defect 3): a stored state that inflates past the
//! mapper's limit is a typed integrity error, found without inflating all of it, whether or
//! not the mapper compresses.

use es_runtime::mapper::{Mapper, DEFAULT_MAX_STATE_SIZE};
use es_runtime::record::SequencedItem;
use es_runtime::{Error, IntegrityError};
use std::io::Write;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A compressed state (the mapper's marker byte, then zlib) of `len` bytes of JSON-ish filler.
fn bomb(len: usize) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(vec![1u8], flate2::Compression::fast());
    enc.write_all(b"{\"x\":\"").unwrap();
    let block = vec![b'a'; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len());
        enc.write_all(&block[..n]).unwrap();
        left -= n;
    }
    enc.finish().unwrap()
}

fn is_limit_error(e: &Error) -> bool {
    matches!(e, Error::DataIntegrity(IntegrityError::Corrupt(m)) if m.contains("limit"))
}

#[test]
fn a_zlib_bomb_is_refused_at_the_configured_limit_without_compression_configured() {
    let stored = bomb(32 << 20);
    assert!(stored.len() < 1 << 20, "{} bytes", stored.len());
    // The mapper does not compress, and still inflates what is marked as compressed: bounded.
    let mapper = Mapper::new().with_max_state_size(1 << 20);
    let started = Instant::now();
    let err = mapper.decode_bytes(&stored).unwrap_err();
    assert!(is_limit_error(&err), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Through from_item, the same error.
    let item = SequencedItem {
        sequence_id: Uuid::new_v4(),
        position: 0,
        topic: "tests::Thing.Created".into(),
        state: stored.into(),
    };
    let err = mapper.from_item(&item).unwrap_err();
    assert!(is_limit_error(&err), "{err:?}");
}

#[test]
fn a_state_at_the_limit_inflates_and_one_byte_more_does_not() {
    let limit = 100_000;
    let mapper = Mapper::new()
        .with_compression(10)
        .with_max_state_size(limit);
    let exact = mapper.encode_bytes(vec![b'{'; limit]).unwrap();
    assert_eq!(exact[0], 1, "compressed");
    assert_eq!(mapper.decode_bytes(&exact).unwrap().len(), limit);
    let over = mapper.encode_bytes(vec![b'{'; limit + 1]).unwrap();
    assert!(is_limit_error(&mapper.decode_bytes(&over).unwrap_err()));
}

#[test]
fn the_default_limit_is_64_mib() {
    assert_eq!(DEFAULT_MAX_STATE_SIZE, 64 << 20);
    assert_eq!(Mapper::new().max_state_size(), 64 << 20);
}

/// A ciphertext can begin with any byte, also with one a plain state begins with (`{`, the
/// compact or the compressed marker): read without the cipher key, every encrypted state
/// says it may be encrypted, whatever its first byte. (The `es` tool's test once met a
/// ciphertext beginning with the compact marker, and its error did not say so.)
#[test]
fn encrypted_states_read_without_the_key_say_they_may_be_encrypted() {
    use es_runtime::mapper::Cipher;
    let cipher = Cipher::from_base64(&Cipher::random_key(32).unwrap()).unwrap();
    let mapper = Mapper::new();
    let mut first_bytes = std::collections::HashSet::new();
    for _ in 0..3000 {
        let stored = cipher
            .encrypt(br#"{"topic":"tests::Thing.Created","data":{}}"#)
            .unwrap();
        first_bytes.insert(stored[0]);
        let item = SequencedItem {
            sequence_id: Uuid::new_v4(),
            position: 0,
            topic: "tests::Thing.Created".into(),
            state: stored.into(),
        };
        let err = mapper.from_item(&item).unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
    }
    // The states that look like plain ones came up too (3000 random first bytes).
    assert!(
        [b'{', 1, 2].iter().all(|b| first_bytes.contains(b)),
        "{first_bytes:?}"
    );
}
