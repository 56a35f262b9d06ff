//! The SHA-256 hash chain that protects every event.
//!
//! Each event's hash is `SHA-256(salt || canonical state)`, where the canonical state is the
//! event's JSON without its own hash, and the state includes the previous event's hash: so an
//! aggregate's `head` hash commits to its whole history. The salt and the genesis hash (the
//! "previous hash" of a first event) come from the environment variables
//! `SALT_FOR_DATA_INTEGRITY` and `GENESIS_HASH`, or from [`configure`] before first use.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The process-wide hash settings.
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

static CONFIG: OnceLock<HashConfig> = OnceLock::new();

/// Sets the hash settings explicitly. Returns `false` (and changes nothing) when they were already
/// fixed, by an earlier call or by first use, which reads the environment.
pub fn configure(config: HashConfig) -> bool {
    CONFIG.set(config).is_ok()
}

/// The hash settings in force.
pub fn config() -> &'static HashConfig {
    CONFIG.get_or_init(HashConfig::from_env)
}

/// The genesis hash in force.
pub fn genesis_hash() -> &'static str {
    &config().genesis_hash
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

/// Writes the lower-case hex of 32 bytes into a 64-byte buffer.
pub fn hex_into(bytes: &[u8], out: &mut [u8; 64]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().take(32).enumerate() {
        out[2 * i] = DIGITS[(b >> 4) as usize];
        out[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
