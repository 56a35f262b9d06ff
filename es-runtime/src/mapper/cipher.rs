//! AES-GCM encryption of stored state (application-level encryption, §8.2.2 of the manual).
//!
//! Keys are 16, 24 or 32 random bytes (AES-128/192/256), usually handled as base64 text (the
//! `CIPHER_KEY` environment variable). Each encryption uses a fresh random 96-bit nonce, stored
//! in front of the ciphertext; the 128-bit tag authenticates it, so a damaged ciphertext, a wrong
//! key or truncated data is a [`IntegrityError::Cipher`] error.

use crate::error::{Error, IntegrityError, Result};
use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use base64::Engine;

type Aes192Gcm = AesGcm<Aes192, aes_gcm::aead::consts::U12>;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Clone)]
enum Inner {
    A128(Box<Aes128Gcm>),
    A192(Box<Aes192Gcm>),
    A256(Box<Aes256Gcm>),
}

/// An AES-GCM cipher with one key.
#[derive(Clone)]
pub struct Cipher {
    inner: Inner,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = match self.inner {
            Inner::A128(_) => 128,
            Inner::A192(_) => 192,
            Inner::A256(_) => 256,
        };
        write!(f, "Cipher(AES-{bits}-GCM)")
    }
}

impl Cipher {
    /// A cipher from raw key bytes (16, 24 or 32 of them).
    pub fn new(key: &[u8]) -> Result<Self> {
        let inner = match key.len() {
            16 => Inner::A128(Box::new(Aes128Gcm::new_from_slice(key).map_err(bad_key)?)),
            24 => Inner::A192(Box::new(Aes192Gcm::new_from_slice(key).map_err(bad_key)?)),
            32 => Inner::A256(Box::new(Aes256Gcm::new_from_slice(key).map_err(bad_key)?)),
            n => {
                return Err(Error::Configuration(format!(
                    "cipher key must be 16, 24 or 32 bytes, got {n}"
                )))
            }
        };
        Ok(Cipher { inner })
    }

    /// A cipher from a base64-encoded key (standard alphabet, padding optional).
    pub fn from_base64(key: &str) -> Result<Self> {
        let key = key.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(key))
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(key))
            .map_err(|e| Error::Configuration(format!("cipher key is not valid base64: {e}")))?;
        Self::new(&bytes)
    }

    /// Makes a new random key of `len` bytes (16, 24 or 32), encoded as base64.
    pub fn random_key(len: usize) -> Result<String> {
        if !matches!(len, 16 | 24 | 32) {
            return Err(Error::Configuration(format!(
                "cipher key must be 16, 24 or 32 bytes, not {len}"
            )));
        }
        let mut key = vec![0u8; len];
        use aes_gcm::aead::rand_core::RngCore;
        OsRng.fill_bytes(&mut key);
        Ok(base64::engine::general_purpose::STANDARD.encode(key))
    }

    /// Encrypts: returns nonce || ciphertext || tag.
    ///
    /// Each call draws a fresh random 96-bit nonce from the thread's cryptographic random
    /// generator (`rand`'s `ThreadRng`: ChaCha12, seeded and periodically reseeded from the
    /// operating system), not from a system call per item. That generator is not reseeded
    /// when a process forks: a program that calls `fork()` itself and encrypts on both sides
    /// without `exec` must call `rand::rngs::ThreadRng::reseed` in the child (processes started
    /// with `std::process::Command` begin afresh).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let n = aes_gcm::Nonce::from_slice(&nonce);
        let ct = match &self.inner {
            Inner::A128(c) => c.encrypt(n, plaintext),
            Inner::A192(c) => c.encrypt(n, plaintext),
            Inner::A256(c) => c.encrypt(n, plaintext),
        };
        let ct = ct.map_err(|_| Error::Encoding("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts what [`Cipher::encrypt`] made; any damage is a `DataIntegrity` error.
    pub fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>> {
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(IntegrityError::Cipher(format!(
                "ciphertext of {} bytes is too short (truncated or not encrypted)",
                data.len()
            ))
            .into());
        }
        let (nonce, ct) = data.split_at(NONCE_LEN);
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        let r = match &self.inner {
            Inner::A128(c) => c.decrypt(nonce, ct),
            Inner::A192(c) => c.decrypt(nonce, ct),
            Inner::A256(c) => c.decrypt(nonce, ct),
        };
        r.map_err(|_| {
            IntegrityError::Cipher(
                "decryption failed: wrong key, or damaged or truncated ciphertext".into(),
            )
            .into()
        })
    }
}

fn bad_key(_: aes_gcm::aes::cipher::InvalidLength) -> Error {
    Error::Configuration("invalid cipher key length".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_key_sizes_and_fresh_nonces() {
        for len in [16, 24, 32] {
            let c = Cipher::from_base64(&Cipher::random_key(len).unwrap()).unwrap();
            let a = c.encrypt(b"hello").unwrap();
            let b = c.encrypt(b"hello").unwrap();
            assert_ne!(a, b, "nonce must be fresh");
            assert_eq!(c.decrypt(&a).unwrap(), b"hello");
        }
    }

    /// Nonces come from the thread's generator: none repeats, within a thread or across
    /// threads, over many encryptions.
    #[test]
    fn nonces_do_not_repeat_within_or_across_threads() {
        let c = std::sync::Arc::new(Cipher::new(&[3u8; 32]).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    (0..20_000)
                        .map(|_| c.encrypt(b"x").unwrap()[..NONCE_LEN].to_vec())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for t in threads {
            for nonce in t.join().unwrap() {
                assert!(seen.insert(nonce), "a nonce repeated");
            }
        }
        assert_eq!(seen.len(), 80_000);
    }

    #[test]
    fn damage_wrong_key_and_truncation_are_integrity_errors() {
        let c = Cipher::new(&[7u8; 32]).unwrap();
        let other = Cipher::new(&[8u8; 32]).unwrap();
        let mut ct = c.encrypt(b"secret state").unwrap();
        assert!(matches!(
            other.decrypt(&ct),
            Err(Error::DataIntegrity(IntegrityError::Cipher(_)))
        ));
        assert!(matches!(
            c.decrypt(&ct[..10]),
            Err(Error::DataIntegrity(IntegrityError::Cipher(_)))
        ));
        assert!(matches!(
            c.decrypt(&ct[..ct.len() - 1]),
            Err(Error::DataIntegrity(_))
        ));
        ct[14] ^= 1;
        assert!(matches!(
            c.decrypt(&ct),
            Err(Error::DataIntegrity(IntegrityError::Cipher(_)))
        ));
    }

    #[test]
    fn bad_keys_are_configuration_errors() {
        assert!(matches!(
            Cipher::new(&[0u8; 10]),
            Err(Error::Configuration(_))
        ));
        assert!(matches!(
            Cipher::from_base64("not base64!!"),
            Err(Error::Configuration(_))
        ));
        assert!(matches!(
            Cipher::random_key(20),
            Err(Error::Configuration(_))
        ));
    }
}
