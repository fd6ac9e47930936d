//! Recognising compressed streams by their first bytes, as `docker load` and `docker import` do,
//! and decompressing them while they stream: an archive or a rootfs tarball may come plain,
//! gzipped or zstd-compressed, and nobody tells us which.
//!
//! Never buffers a whole stream: readers wrap readers.

use std::io::{self, BufReader, Read};

use distill_image::media_type::Compression;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const BZIP2_MAGIC: &[u8] = b"BZh";

/// What the first bytes of a stream say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    /// One we can read: plain, gzip or zstd.
    Known(Compression),
    /// A compression docker knows and we do not read: its name, for the error message.
    Unsupported(&'static str),
}

/// How many leading bytes [`detect`] needs to decide.
pub const MAGIC_LEN: usize = 6;

/// The compression of a stream starting with `head` (at least [`MAGIC_LEN`] bytes unless the
/// stream is shorter).
pub fn detect(head: &[u8]) -> Detected {
    if head.starts_with(GZIP_MAGIC) {
        Detected::Known(Compression::Gzip)
    } else if head.starts_with(ZSTD_MAGIC) {
        Detected::Known(Compression::Zstd)
    } else if head.starts_with(XZ_MAGIC) {
        Detected::Unsupported("xz")
    } else if head.starts_with(BZIP2_MAGIC) {
        Detected::Unsupported("bzip2")
    } else {
        Detected::Known(Compression::None)
    }
}

/// Reads `input` decompressed, whatever of plain, gzip (one or more members) or zstd it is.
/// `what` names the stream in errors ("archive.tar.gz", "standard input").
pub fn decompressed<'a, R: Read + 'a>(
    mut input: R,
    what: &str,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let head = read_head(&mut input)?;
    let compression = match detect(&head) {
        Detected::Known(compression) => compression,
        Detected::Unsupported(name) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{what} is compressed with {name}, which distill does not read; \
                     decompress it first (`{name} -dc FILE | distill ...`)"
                ),
            ))
        }
    };
    // The bytes read to detect the format go back in front of the rest.
    let whole = BufReader::with_capacity(256 * 1024, io::Cursor::new(head).chain(input));
    let reader: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(whole)?),
    };
    Ok((compression, reader))
}

/// The first [`MAGIC_LEN`] bytes of `input`, fewer only if it ends sooner. (One `read` may
/// return fewer bytes than are coming, e.g. from a pipe.)
pub fn read_head<R: Read>(input: &mut R) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(MAGIC_LEN);
    input.take(MAGIC_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn round_trip(bytes: &[u8]) -> (Compression, Vec<u8>) {
        let (compression, mut reader) = decompressed(bytes, "test").unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        (compression, out)
    }

    #[test]
    fn reads_plain_gzip_and_zstd_alike() {
        let content = b"hello archive world".repeat(100);
        assert_eq!(round_trip(&content), (Compression::None, content.clone()));

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&content).unwrap();
        assert_eq!(
            round_trip(&gz.finish().unwrap()),
            (Compression::Gzip, content.clone())
        );

        let zst = zstd::stream::encode_all(&content[..], 3).unwrap();
        assert_eq!(round_trip(&zst), (Compression::Zstd, content.clone()));
    }

    #[test]
    fn short_and_empty_streams_are_plain() {
        assert_eq!(round_trip(b""), (Compression::None, Vec::new()));
        assert_eq!(round_trip(b"ab"), (Compression::None, b"ab".to_vec()));
    }

    #[test]
    fn xz_and_bzip2_are_named_in_the_error() {
        let xz = [0xfd, b'7', b'z', b'X', b'Z', 0x00, 1, 2];
        let err = decompressed(&xz[..], "rootfs.tar.xz").err().unwrap();
        assert!(
            err.to_string()
                .contains("rootfs.tar.xz is compressed with xz"),
            "{err}"
        );
        let err = decompressed(&b"BZh91AY"[..], "x").err().unwrap();
        assert!(err.to_string().contains("bzip2"), "{err}");
    }
}
