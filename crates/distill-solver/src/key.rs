//! Cache keys: a step's identity, from its parent's key, what the step does and the content of
//! what it reads.
//!
//! A [`KeyBuilder`] hashes labelled fields, each length-prefixed so that no two different
//! sequences of fields can hash alike (`("ab", "c")` and `("a", "bc")` differ). Callers put in
//! only what decides a step's result: never a modification time, never a path on the host.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The identity of a step's result: equal keys mean the step would produce the same files.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key of a step from `kind` alone (a root of the graph, such as an empty file system).
    pub fn root(kind: &str) -> CacheKey {
        KeyBuilder::new(kind).finish()
    }

    /// Lower-case hex, 64 characters.
    pub fn hex(&self) -> String {
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 15)]));
        }
        text
    }

    /// Reads [`CacheKey::hex`]'s form back.
    pub fn from_hex(text: &str) -> Option<CacheKey> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (index, pair) in bytes.chunks(2).enumerate() {
            let high = hex_value(pair[0])?;
            let low = hex_value(pair[1])?;
            key[index] = (high << 4) | low;
        }
        Some(CacheKey(key))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", &self.hex()[..12])
    }
}

impl From<CacheKey> for String {
    fn from(key: CacheKey) -> String {
        key.hex()
    }
}

impl TryFrom<String> for CacheKey {
    type Error = String;

    fn try_from(text: String) -> Result<CacheKey, String> {
        CacheKey::from_hex(&text).ok_or_else(|| format!("not a cache key: {text:?}"))
    }
}

/// Hashes the fields of one step into its [`CacheKey`].
#[derive(Clone)]
pub struct KeyBuilder {
    hasher: Sha256,
}

impl KeyBuilder {
    /// A key for a step of kind `kind` (`"copy"`, `"exec"`, …), versioned so that a change
    /// in how distill builds invalidates old entries.
    pub fn new(kind: &str) -> KeyBuilder {
        let mut builder = KeyBuilder {
            hasher: Sha256::new(),
        };
        builder.field("distill-step-v1", kind.as_bytes());
        builder
    }

    /// A step that starts from `parent`'s result.
    pub fn parent(&mut self, parent: &CacheKey) -> &mut KeyBuilder {
        self.field("parent", parent.as_bytes())
    }

    /// One labelled field.
    pub fn field(&mut self, label: &str, value: &[u8]) -> &mut KeyBuilder {
        self.hasher.update((label.len() as u64).to_le_bytes());
        self.hasher.update(label.as_bytes());
        self.hasher.update((value.len() as u64).to_le_bytes());
        self.hasher.update(value);
        self
    }

    pub fn text(&mut self, label: &str, value: &str) -> &mut KeyBuilder {
        self.field(label, value.as_bytes())
    }

    /// A list of strings, its length included.
    pub fn list<S: AsRef<str>>(&mut self, label: &str, values: &[S]) -> &mut KeyBuilder {
        self.field(label, &(values.len() as u64).to_le_bytes());
        for value in values {
            self.field("item", value.as_ref().as_bytes());
        }
        self
    }

    pub fn key(&mut self, label: &str, key: &CacheKey) -> &mut KeyBuilder {
        self.field(label, key.as_bytes())
    }

    pub fn finish(&self) -> CacheKey {
        CacheKey(self.hasher.clone().finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_unambiguous() {
        let a = KeyBuilder::new("x").text("f", "ab").text("g", "c").finish();
        let b = KeyBuilder::new("x").text("f", "a").text("g", "bc").finish();
        assert_ne!(a, b);
        let c = KeyBuilder::new("x").text("f", "ab").text("g", "c").finish();
        assert_eq!(a, c);
    }

    #[test]
    fn parents_and_kinds_change_the_key() {
        let root = CacheKey::root("scratch");
        let child = KeyBuilder::new("copy").parent(&root).finish();
        let other = KeyBuilder::new("exec").parent(&root).finish();
        assert_ne!(child, other);
        assert_ne!(child, root);
    }

    #[test]
    fn hex_round_trip() {
        let key = CacheKey::root("scratch");
        assert_eq!(CacheKey::from_hex(&key.hex()), Some(key));
        assert_eq!(CacheKey::from_hex("zz"), None);
        assert_eq!(CacheKey::from_hex(&"G".repeat(64)), None);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<CacheKey>(&json).unwrap(), key);
    }
}
