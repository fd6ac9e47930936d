//! sha256 digests of layer streams, computed while the bytes pass through.
//!
//! [`HashingWriter`] and [`HashingReader`] wrap a stream and hash every byte that crosses them,
//! so a layer's blob digest, diff ID and size come out of the one pass that writes or reads it.
//! They never buffer: what is hashed is exactly what the inner stream accepted or returned.

use std::fmt;
use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

/// A sha256 digest, shown as `sha256:<64 lowercase hex digits>` like OCI descriptors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(Sha256::digest(bytes).into())
    }

    /// Parses `sha256:<64 lowercase hex digits>`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Sha256Digest> {
        let hex = text.strip_prefix("sha256:")?;
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Sha256Digest(bytes))
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            text.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
        }
        text
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Hashes and counts every byte written through it to the inner writer.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The digest and count of the bytes written so far, and the inner writer.
    pub fn finish(self) -> (Sha256Digest, u64, W) {
        (
            Sha256Digest(self.hasher.finalize().into()),
            self.count,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes and counts every byte read through it from the inner reader.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> HashingReader<R> {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reads the inner stream to its end (hashing it) and returns the digest and count of all
    /// the bytes it gave.
    pub fn drain(&mut self) -> io::Result<(Sha256Digest, u64)> {
        io::copy(self, &mut io::sink())?;
        Ok((
            Sha256Digest(self.hasher.clone().finalize().into()),
            self.count,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.count += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_has_the_well_known_digest() {
        let digest = Sha256Digest::of(b"");
        assert_eq!(
            digest.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Sha256Digest::parse(&digest.to_string()), Some(digest));
    }

    #[test]
    fn parse_refuses_malformed_text() {
        assert_eq!(Sha256Digest::parse("sha256:abc"), None);
        assert_eq!(
            Sha256Digest::parse(&format!("sha512:{}", "0".repeat(64))),
            None
        );
        assert_eq!(
            Sha256Digest::parse(&format!("sha256:{}", "A".repeat(64))),
            None
        );
    }

    #[test]
    fn hashing_writer_and_reader_agree() {
        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(b"hello layer").unwrap();
        let (written_digest, written_count, bytes) = writer.finish();
        let mut reader = HashingReader::new(&bytes[..]);
        let (read_digest, read_count) = reader.drain().unwrap();
        assert_eq!(written_digest, Sha256Digest::of(b"hello layer"));
        assert_eq!((read_digest, read_count), (written_digest, written_count));
    }
}
