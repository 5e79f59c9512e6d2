//! Envelope encryption of what citizens sent (AES-256-GCM).
//!
//! Every stored message (the raw mail, so its photos, and its inspection)
//! is sealed with a data key of its own. Data keys are stored wrapped by
//! the desk's master key, which never enters the database: the database
//! alone reads as noise. Purging a request deletes its messages' data keys,
//! so every copy of their blobs (free pages, WAL, replicas, backups) is
//! noise for good, even to someone who holds the master key.
//!
//! This module is pure: no I/O. Where the master key comes from is
//! `store::keys`.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The first bytes of a sealed blob (and of a wrapped key): a format
/// version, so a later format can be told apart.
const MAGIC: &[u8; 5] = b"HTKS1";
const NONCE: usize = 12;

/// What went wrong opening sealed data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not sealed data of this format.
    #[error("not sealed data of this desk's format")]
    Format,
    /// The key is not the one it was sealed with, or the data was changed.
    #[error("sealed data does not open with this key (wrong key, or the data was changed)")]
    Open,
    /// A master key file or variable that does not hold a key.
    #[error("not a master key: {0}")]
    BadKey(String),
}

/// A 256-bit key that is wiped from memory when dropped.
type KeyBytes = Zeroizing<[u8; 32]>;

fn cipher(key: &KeyBytes) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_slice()))
}

fn seal_with(key: &KeyBytes, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed = cipher(key)
        .encrypt(&nonce, Payload { msg: plain, aad })
        .expect("AES-GCM seals any input under 64 GiB");
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE + sealed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

fn open_with(key: &KeyBytes, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    let rest = sealed
        .strip_prefix(MAGIC.as_slice())
        .ok_or(SealError::Format)?;
    if rest.len() < NONCE + 16 {
        return Err(SealError::Format);
    }
    let (nonce, body) = rest.split_at(NONCE);
    cipher(key)
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .map_err(|_| SealError::Open)
}

/// The key one stored message is sealed with.
pub struct DataKey(KeyBytes);

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> DataKey {
        DataKey(Zeroizing::new(Aes256Gcm::generate_key(&mut OsRng).into()))
    }

    /// Seals `plain`; `aad` names what it is (the blob cannot be moved to
    /// another row or column and still open).
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        seal_with(&self.0, aad, plain)
    }

    /// Opens what [`DataKey::seal`] sealed under the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        open_with(&self.0, aad, sealed)
    }
}

/// The desk's master key: it only wraps data keys.
pub struct MasterKey {
    id: String,
    key: KeyBytes,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// How a master key is written in its file or variable.
const KEY_PREFIX: &str = "huytk-master-key-v1:";

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> MasterKey {
        MasterKey::from_bytes(Aes256Gcm::generate_key(&mut OsRng).into())
    }

    fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        let key = Zeroizing::new(bytes);
        // The id names the key without revealing it.
        let mut h = Sha256::new();
        h.update(b"huytk master key id\0");
        h.update(key.as_slice());
        let id = hex::encode(&h.finalize()[..8]);
        MasterKey { id, key }
    }

    /// Its id (16 hex digits), recorded beside every key it wraps.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The text form, as it is kept in a file or the environment.
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{KEY_PREFIX}{}\n",
            base64::engine::general_purpose::STANDARD.encode(self.key.as_slice())
        ))
    }

    /// Reads the text form (surrounding white space ignored).
    pub fn decode(text: &str) -> Result<MasterKey, SealError> {
        let body = text
            .trim()
            .strip_prefix(KEY_PREFIX)
            .ok_or_else(|| SealError::BadKey(format!("it does not start with {KEY_PREFIX}")))?;
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .map_err(|e| SealError::BadKey(e.to_string()))?,
        );
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealError::BadKey(format!("{} bytes, not 32", bytes.len())))?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// Wraps a data key for the message `owner`.
    pub fn wrap(&self, key: &DataKey, owner: &str) -> Vec<u8> {
        seal_with(&self.key, &wrap_aad(owner), key.0.as_slice())
    }

    /// Unwraps a data key wrapped for `owner`.
    pub fn unwrap(&self, wrapped: &[u8], owner: &str) -> Result<DataKey, SealError> {
        let plain = Zeroizing::new(open_with(&self.key, &wrap_aad(owner), wrapped)?);
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| SealError::Format)?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }
}

fn wrap_aad(owner: &str) -> Vec<u8> {
    [b"huytk data key\0".as_slice(), owner.as_bytes()].concat()
}

/// The master keys this process holds: the one new data keys are wrapped
/// with, and others still needed to unwrap (during a rotation).
#[derive(Debug)]
pub struct Keyring {
    current: MasterKey,
    others: Vec<MasterKey>,
}

impl Keyring {
    /// A ring whose new wraps use `current`.
    pub fn new(current: MasterKey, others: Vec<MasterKey>) -> Keyring {
        Keyring { current, others }
    }

    /// The key new data keys are wrapped with.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// The key of this id, if held.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.others)
            .find(|k| k.id == id)
    }

    /// The ids of every key held.
    pub fn ids(&self) -> Vec<&str> {
        std::iter::once(&self.current)
            .chain(&self.others)
            .map(|k| k.id.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_opens_with_its_key_and_aad_only() {
        let k = DataKey::generate();
        let sealed = k.seal(b"raw:abc", b"Subject: hello");
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        assert_eq!(k.open(b"raw:abc", &sealed).unwrap(), b"Subject: hello");
        assert_eq!(k.open(b"raw:abd", &sealed), Err(SealError::Open));
        assert_eq!(
            DataKey::generate().open(b"raw:abc", &sealed),
            Err(SealError::Open)
        );
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert_eq!(k.open(b"raw:abc", &changed), Err(SealError::Open));
        assert_eq!(
            k.open(b"raw:abc", b"Subject: hello"),
            Err(SealError::Format)
        );
    }

    #[test]
    fn a_data_key_unwraps_only_with_its_master_key_and_owner() {
        let m = MasterKey::generate();
        let d = DataKey::generate();
        let w = m.wrap(&d, "sha1");
        let back = m.unwrap(&w, "sha1").unwrap();
        assert_eq!(back.open(b"x", &d.seal(b"x", b"1")).unwrap(), b"1");
        assert!(m.unwrap(&w, "sha2").is_err());
        assert!(MasterKey::generate().unwrap(&w, "sha1").is_err());
    }

    #[test]
    fn the_text_form_reads_back_with_the_same_id() {
        let m = MasterKey::generate();
        let again = MasterKey::decode(&m.encode()).unwrap();
        assert_eq!(again.id(), m.id());
        assert_eq!(m.id().len(), 16);
        assert!(MasterKey::decode("huytk-master-key-v1:AAAA").is_err());
        assert!(MasterKey::decode("hello").is_err());
        assert!(!format!("{m:?}").contains(&m.encode()[KEY_PREFIX.len()..30]));
    }
}
