//! The SHA-256 hash chain that protects every event.
//!
//! Each event's hash is `SHA-256(salt || canonical state)`, where the canonical state is the
//! event's JSON without its own hash, and the state includes the previous event's hash: so an
//! aggregate's `head` hash commits to its whole history. The salt and the genesis hash (the
//! "previous hash" of a first event) belong to an application: give them with
//! [`ApplicationBuilder::hashing`](crate::application::ApplicationBuilder::hashing) (or
//! [`Mapper::with_hashing`](crate::mapper::Mapper::with_hashing)). An application given none
//! uses the process's default, read from the environment variables `SALT_FOR_DATA_INTEGRITY`
//! and `GENESIS_HASH` or set by [`configure`] before first use. Aggregates made outside any
//! application hash with the default; an application that saves them re-hashes their pending
//! events with its own settings, and aggregates it loads hash with its settings from then on.

use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};

/// Hash settings: one application's, or the process's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashConfig {
    /// Bytes mixed into every hash; keep them secret to make forging a chain infeasible.
    pub salt: Vec<u8>,
    /// The previous hash given to every aggregate's first event.
    pub genesis_hash: String,
}

impl HashConfig {
    /// Reads `SALT_FOR_DATA_INTEGRITY` and `GENESIS_HASH` (both optional).
    pub fn from_env() -> Self {
        HashConfig {
            salt: crate::application::config::env_var("SALT_FOR_DATA_INTEGRITY")
                .unwrap_or_default()
                .into_bytes(),
            genesis_hash: crate::application::config::env_var("GENESIS_HASH").unwrap_or_default(),
        }
    }
}

impl HashConfig {
    /// Settings with this salt and genesis hash.
    ///
    /// ```
    /// use es_runtime::domain::integrity::HashConfig;
    /// let c = HashConfig::new("secret salt", "genesis");
    /// assert_eq!(c.salt, b"secret salt");
    /// assert_eq!(c.genesis_hash, "genesis");
    /// ```
    pub fn new(salt: impl Into<Vec<u8>>, genesis_hash: impl Into<String>) -> Self {
        HashConfig {
            salt: salt.into(),
            genesis_hash: genesis_hash.into(),
        }
    }
}

static CONFIG: OnceLock<Arc<HashConfig>> = OnceLock::new();

/// Sets the process's default hash settings explicitly. Returns `false` (and changes nothing)
/// when they were already fixed, by an earlier call or by first use, which reads the
/// environment.
pub fn configure(config: HashConfig) -> bool {
    CONFIG.set(Arc::new(config)).is_ok()
}

/// The process's default hash settings.
pub fn config() -> &'static HashConfig {
    shared_default()
}

/// The process's default hash settings, shared.
pub fn shared_default() -> &'static Arc<HashConfig> {
    CONFIG.get_or_init(|| Arc::new(HashConfig::from_env()))
}

/// The settings `hashing` names, or the process's default for `None`.
pub fn or_default(hashing: Option<&Arc<HashConfig>>) -> &Arc<HashConfig> {
    hashing.unwrap_or_else(|| shared_default())
}

/// True when two settings hash alike (`None` is the process's default).
pub fn same(a: Option<&Arc<HashConfig>>, b: Option<&Arc<HashConfig>>) -> bool {
    let (a, b) = (or_default(a), or_default(b));
    Arc::ptr_eq(a, b) || a == b
}

/// The process's default genesis hash.
pub fn genesis_hash() -> &'static str {
    &config().genesis_hash
}

/// The SHA-256 of `salt` followed by each of `parts`.
pub fn digest(salt: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Parses 64 lower-case hex digits into 32 bytes; `None` for anything else.
pub fn parse_hex(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Hex SHA-256 of the salt followed by `canonical`.
pub fn hash_canonical(canonical: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(&config().salt);
    h.update(canonical);
    hex(&h.finalize())
}

/// Writes the lower-case hex SHA-256 of the salt followed by `canonical` into `out`, without
/// allocating.
pub fn hash_canonical_into(canonical: &[u8], out: &mut [u8; 64]) {
    let mut h = Sha256::new();
    h.update(&config().salt);
    h.update(canonical);
    hex_into(&h.finalize(), out);
}

/// Each byte's two lower-case hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 15]];
        i += 1;
    }
    t
};

/// Writes the lower-case hex of 32 bytes into a 64-byte buffer.
pub fn hex_into(bytes: &[u8], out: &mut [u8; 64]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes.iter().take(32)) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.extend_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
    // Hex digits are ASCII.
    String::from_utf8(s).unwrap_or_default()
}
