//! Reading a layer blob: compression detected from its first bytes, the uncompressed stream and
//! the blob hashed as they are read, and both checked against what the caller expects.
//!
//! Detection: `1f 8b` is gzip (several concatenated members are read as one, like Go's reader),
//! `28 b5 2f fd` is zstd, anything else is taken as a plain tar (the tar reader refuses it if it
//! is not). Verification happens at [`LayerReader::finish`], after the whole stream was read: a
//! caller extracting while reading must treat its output as untrusted until then.

use std::io::{self, BufReader, Chain, Cursor, Read};

use crate::digest::{HashingReader, Sha256Digest};
use crate::error::LayerError;

/// The compression a blob turned out to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    None,
    Gzip,
    Zstd,
}

type Raw<R> = HashingReader<Chain<Cursor<Vec<u8>>, R>>;

enum Decoder<R: Read> {
    None(Raw<R>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<Raw<R>>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Raw<R>>>),
}

impl<R: Read> Decoder<R> {
    fn raw(&mut self) -> &mut Raw<R> {
        match self {
            Decoder::None(raw) => raw,
            Decoder::Gzip(decoder) => decoder.get_mut().get_mut(),
            Decoder::Zstd(decoder) => decoder.get_mut().get_mut(),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(raw) => raw.read(buf),
            Decoder::Gzip(decoder) => decoder.read(buf),
            Decoder::Zstd(decoder) => decoder.read(buf),
        }
    }
}

/// The digests of a layer that was read to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadDigests {
    /// sha256 of the blob as read.
    pub digest: Sha256Digest,
    /// sha256 of the uncompressed stream.
    pub diff_id: Sha256Digest,
    /// Size of the blob.
    pub size: u64,
    pub uncompressed_size: u64,
    pub compression: Detected,
}

/// The uncompressed content of a layer blob, through [`Read`].
pub struct LayerReader<R: Read> {
    decoder: Decoder<R>,
    uncompressed: sha2::Sha256,
    uncompressed_size: u64,
    compression: Detected,
    expected_diff_id: Option<Sha256Digest>,
    expected_digest: Option<Sha256Digest>,
}

impl<R: Read> LayerReader<R> {
    /// Starts reading `blob`, detecting its compression from its first bytes.
    pub fn new(mut blob: R) -> Result<LayerReader<R>, LayerError> {
        let mut magic = Vec::with_capacity(4);
        (&mut blob)
            .take(4)
            .read_to_end(&mut magic)
            .map_err(LayerError::Read)?;
        let compression = match magic.as_slice() {
            [0x1f, 0x8b, ..] => Detected::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd] => Detected::Zstd,
            _ => Detected::None,
        };
        let raw = HashingReader::new(Cursor::new(magic).chain(blob));
        let decoder = match compression {
            Detected::None => Decoder::None(raw),
            Detected::Gzip => Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(
                BufReader::with_capacity(64 * 1024, raw),
            ))),
            Detected::Zstd => Decoder::Zstd(
                zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(
                    zstd::stream::read::Decoder::<BufReader<Raw<R>>>::recommended_output_size(),
                    raw,
                ))
                .map_err(LayerError::Read)?,
            ),
        };
        Ok(LayerReader {
            decoder,
            uncompressed: sha2::Digest::new(),
            uncompressed_size: 0,
            compression,
            expected_diff_id: None,
            expected_digest: None,
        })
    }

    /// [`LayerReader::finish`] fails unless the uncompressed stream hashes to `diff_id`.
    pub fn expect_diff_id(mut self, diff_id: Sha256Digest) -> LayerReader<R> {
        self.expected_diff_id = Some(diff_id);
        self
    }

    /// [`LayerReader::finish`] fails unless the blob hashes to `digest`.
    pub fn expect_digest(mut self, digest: Sha256Digest) -> LayerReader<R> {
        self.expected_digest = Some(digest);
        self
    }

    pub fn compression(&self) -> Detected {
        self.compression
    }

    /// Reads what is left (which also checks the gzip or zstd trailer), then checks the
    /// expected digests.
    pub fn finish(mut self) -> Result<ReadDigests, LayerError> {
        io::copy(&mut self, &mut io::sink()).map_err(LayerError::Read)?;
        let (digest, size) = self.decoder.raw().drain().map_err(LayerError::Read)?;
        let diff_id = Sha256Digest(sha2::Digest::finalize(self.uncompressed).into());
        if let Some(expected) = self.expected_diff_id {
            if expected != diff_id {
                return Err(LayerError::DiffIdMismatch {
                    expected,
                    actual: diff_id,
                });
            }
        }
        if let Some(expected) = self.expected_digest {
            if expected != digest {
                return Err(LayerError::DigestMismatch {
                    expected,
                    actual: digest,
                });
            }
        }
        Ok(ReadDigests {
            digest,
            diff_id,
            size,
            uncompressed_size: self.uncompressed_size,
            compression: self.compression,
        })
    }
}

impl<R: Read> Read for LayerReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.decoder.read(buf).map_err(|err| {
            let format = match self.compression {
                Detected::None => return err,
                Detected::Gzip => "gzip",
                Detected::Zstd => "zstd",
            };
            io::Error::new(
                err.kind(),
                format!("the {format} stream is truncated or corrupt: {err}"),
            )
        })?;
        sha2::Digest::update(&mut self.uncompressed, &buf[..read]);
        self.uncompressed_size += read as u64;
        Ok(read)
    }
}
