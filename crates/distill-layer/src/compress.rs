//! Layer compression: gzip (one gzip member, compressed in parallel blocks) and zstd.
//!
//! Gzip is written the way pigz does it: the input is cut into fixed 1 MiB blocks, each block is
//! deflated on its own (primed with the previous block's last 32 KiB as dictionary, so the ratio
//! matches a single stream) and ends on a byte boundary with a sync flush, and the raw deflate
//! blocks are concatenated inside one gzip header and trailer. Any gzip reader (Go's included)
//! sees one ordinary stream. Block boundaries depend only on the input, never on the number of
//! threads or on timing, so the same tar gives the same blob on every machine.
//!
//! Zstd always runs in libzstd's multithreaded mode (one worker at least) with fixed 2 MiB jobs,
//! whose output does not depend on the number of workers.
//!
//! Memory is bounded: at most `2 × threads` blocks are in flight.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use flate2::{Compress, FlushCompress, Status};

/// The size of the blocks gzip compresses independently. Changing it changes every digest.
const GZIP_BLOCK: usize = 1 << 20;
/// The size of zstd's multithreaded jobs. Changing it changes every zstd digest.
const ZSTD_JOB: usize = 2 << 20;
/// Deflate's window: the most of the previous block a dictionary can use.
const DEFLATE_WINDOW: usize = 32 * 1024;

/// How a layer is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip at `level` (0-9), deflating blocks on `threads` threads. The output does not depend
    /// on `threads`.
    Gzip { level: u32, threads: NonZeroUsize },
    /// zstd at `level` (1-22) with `threads` workers. The output does not depend on `threads`.
    Zstd { level: i32, threads: NonZeroUsize },
}

impl Compression {
    /// gzip at the default level (6, like Go's `gzip.DefaultCompression`) on every CPU.
    pub fn gzip() -> Compression {
        Compression::Gzip {
            level: 6,
            threads: available_threads(),
        }
    }

    /// zstd at level 3 (zstd's default) on every CPU.
    pub fn zstd() -> Compression {
        Compression::Zstd {
            level: 3,
            threads: available_threads(),
        }
    }

    /// The same compression on `threads` threads.
    pub fn with_threads(self, threads: NonZeroUsize) -> Compression {
        match self {
            Compression::None => Compression::None,
            Compression::Gzip { level, .. } => Compression::Gzip { level, threads },
            Compression::Zstd { level, .. } => Compression::Zstd { level, threads },
        }
    }

    /// The OCI media type of a layer compressed this way.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip { .. } => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd { .. } => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The Docker (schema 2) media type; Docker has none for zstd.
    pub fn docker_media_type(self) -> Option<&'static str> {
        match self {
            Compression::None => Some("application/vnd.docker.image.rootfs.diff.tar"),
            Compression::Gzip { .. } => Some("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Compression::Zstd { .. } => None,
        }
    }
}

fn available_threads() -> NonZeroUsize {
    thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// A writer that compresses into `W` as [`Compression`] says.
pub enum Compressor<W: Write> {
    None(W),
    Gzip(GzipWriter<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(inner: W, compression: Compression) -> io::Result<Compressor<W>> {
        Ok(match compression {
            Compression::None => Compressor::None(inner),
            Compression::Gzip { level, threads } => {
                Compressor::Gzip(GzipWriter::new(inner, level, threads))
            }
            Compression::Zstd { level, threads } => {
                let mut encoder = zstd::stream::write::Encoder::new(inner, level)?;
                encoder.multithread(u32::try_from(threads.get()).unwrap_or(u32::MAX))?;
                // libzstd sizes jobs from the window (8 MiB at level 3), and keeps several in
                // flight per worker; fixed smaller jobs bound memory and keep the output
                // independent of the number of workers.
                encoder.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB as u32))?;
                encoder.include_checksum(true)?;
                Compressor::Zstd(encoder)
            }
        })
    }

    /// Ends the compressed stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(inner) => Ok(inner),
            Compressor::Gzip(writer) => writer.finish(),
            Compressor::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(inner) => inner.write(buf),
            Compressor::Gzip(writer) => writer.write(buf),
            Compressor::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(inner) => inner.flush(),
            Compressor::Gzip(writer) => writer.flush(),
            Compressor::Zstd(encoder) => encoder.flush(),
        }
    }
}

/// A block to deflate: its bytes, the dictionary to prime with, whether it ends the stream.
struct Job {
    input: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    reply: mpsc::SyncSender<io::Result<Vec<u8>>>,
}

/// Threads that deflate blocks; they stop when the job channel closes.
struct Workers {
    jobs: Option<mpsc::Sender<Job>>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Workers {
    fn start(count: usize, level: flate2::Compression) -> Workers {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let handles = (0..count)
            .map(|_| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || loop {
                    let job = match queue.lock() {
                        Ok(queue) => match queue.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    let result = deflate_block(level, &job.dictionary, &job.input, job.last);
                    // The writer may have given up (an error elsewhere); nothing to do then.
                    let _ = job.reply.send(result);
                })
            })
            .collect();
        Workers {
            jobs: Some(jobs),
            handles,
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.jobs = None;
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Deflates one block as raw deflate, primed with `dictionary`; ends it with a sync flush (byte
/// aligned, stream continues) or, for the last block, with the final block.
fn deflate_block(
    level: flate2::Compression,
    dictionary: &[u8],
    input: &[u8],
    last: bool,
) -> io::Result<Vec<u8>> {
    let mut deflate = Compress::new(level, false);
    if !dictionary.is_empty() {
        deflate
            .set_dictionary(dictionary)
            .map_err(|err| io::Error::other(format!("deflate dictionary: {err}")))?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(input.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let consumed = deflate.total_in() as usize;
        let status = deflate
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(|err| io::Error::other(format!("deflate: {err}")))?;
        let all_in = deflate.total_in() as usize == input.len();
        match status {
            Status::StreamEnd => return Ok(out),
            // A sync flush is complete once all input is in and deflate left output room.
            _ if !last && all_in && out.len() < out.capacity() => return Ok(out),
            _ => {}
        }
    }
}

/// Parallel block gzip; see the module documentation.
pub struct GzipWriter<W: Write> {
    inner: W,
    level: flate2::Compression,
    /// The block being filled.
    block: Vec<u8>,
    /// The last [`DEFLATE_WINDOW`] bytes of the previous block.
    dictionary: Vec<u8>,
    crc: crc32fast::Hasher,
    total_in: u64,
    /// Results of submitted blocks, oldest first.
    pending: VecDeque<mpsc::Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    workers: Option<Workers>,
    header_written: bool,
}

impl<W: Write> GzipWriter<W> {
    pub fn new(inner: W, level: u32, threads: NonZeroUsize) -> GzipWriter<W> {
        let level = flate2::Compression::new(level.min(9));
        let threads = threads.get();
        GzipWriter {
            inner,
            level,
            block: Vec::with_capacity(GZIP_BLOCK),
            dictionary: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            pending: VecDeque::new(),
            max_pending: 2 * threads,
            workers: (threads > 1).then(|| Workers::start(threads, level)),
            header_written: false,
        }
    }

    /// The 10-byte header Go's `gzip.Writer` writes: no name, mtime 0, XFL from the level,
    /// OS unknown (255).
    fn write_header(&mut self) -> io::Result<()> {
        if self.header_written {
            return Ok(());
        }
        let xfl = match self.level.level() {
            9 => 2,
            1 => 4,
            _ => 0,
        };
        self.inner
            .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
        self.header_written = true;
        Ok(())
    }

    /// Hands the filled block to a worker (or deflates it here with one thread).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        self.write_header()?;
        let input = std::mem::replace(&mut self.block, Vec::with_capacity(GZIP_BLOCK));
        let dictionary = std::mem::take(&mut self.dictionary);
        self.dictionary = input[input.len().saturating_sub(DEFLATE_WINDOW)..].to_vec();
        match &self.workers {
            None => {
                let deflated = deflate_block(self.level, &dictionary, &input, last)?;
                self.inner.write_all(&deflated)?;
            }
            Some(workers) => {
                let (reply, result) = mpsc::sync_channel(1);
                let job = Job {
                    input,
                    dictionary,
                    last,
                    reply,
                };
                workers
                    .jobs
                    .as_ref()
                    .and_then(|jobs| jobs.send(job).ok())
                    .ok_or_else(|| io::Error::other("gzip worker threads stopped"))?;
                self.pending.push_back(result);
                while self.pending.len() > self.max_pending || (last && !self.pending.is_empty()) {
                    self.write_oldest()?;
                }
            }
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(result) = self.pending.pop_front() {
            let deflated = result
                .recv()
                .map_err(|_| io::Error::other("a gzip worker thread died"))??;
            self.inner.write_all(&deflated)?;
        }
        Ok(())
    }

    /// Deflates what is left, writes the trailer (CRC-32, length mod 2³²), returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.to_le_bytes());
        trailer[4..].copy_from_slice(&(self.total_in as u32).to_le_bytes());
        self.inner.write_all(&trailer)?;
        self.inner.flush()?;
        self.workers = None;
        // Move the writer out; `self` has no Drop of its own, so this is allowed.
        let GzipWriter { inner, .. } = self;
        Ok(inner)
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = GZIP_BLOCK - self.block.len();
        let taken = buf.len().min(room);
        self.block.extend_from_slice(&buf[..taken]);
        self.crc.update(&buf[..taken]);
        self.total_in += taken as u64;
        if self.block.len() == GZIP_BLOCK {
            self.submit(false)?;
        }
        Ok(taken)
    }

    /// Blocks are only cut at fixed sizes, so flushing writes out finished blocks only.
    fn flush(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: words from a small xorshift generator.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let words: [&[u8]; 6] = [
            b"layer ",
            b"distill ",
            b"tar ",
            b"\0\0\0\0",
            b"gzip\n",
            b"x",
        ];
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(words[(state % 6) as usize]);
            if (state >> 3) & 7 == 0 {
                out.push((state >> 32) as u8);
            }
        }
        out.truncate(len);
        out
    }

    fn gzip(data: &[u8], threads: usize) -> Vec<u8> {
        let threads = NonZeroUsize::new(threads).unwrap();
        let mut writer = GzipWriter::new(Vec::new(), 6, threads);
        writer.write_all(data).unwrap();
        writer.finish().unwrap()
    }

    #[test]
    fn gzip_output_is_one_stream_independent_of_threads() {
        for len in [0, 10, GZIP_BLOCK, 3 * GZIP_BLOCK + 12345] {
            let data = sample(len);
            let single = gzip(&data, 1);
            let parallel = gzip(&data, 3);
            assert_eq!(single, parallel, "length {len}");
            // A single-member decoder must read it all.
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&single[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, data, "length {len}");
        }
    }

    #[test]
    fn zstd_output_is_independent_of_threads() {
        let data = sample(5 * GZIP_BLOCK);
        let compress = |threads| {
            let compression = Compression::Zstd {
                level: 3,
                threads: NonZeroUsize::new(threads).unwrap(),
            };
            let mut writer = Compressor::new(Vec::new(), compression).unwrap();
            writer.write_all(&data).unwrap();
            writer.finish().unwrap()
        };
        let one = compress(1);
        assert_eq!(one, compress(2));
        assert_eq!(zstd::decode_all(&one[..]).unwrap(), data);
    }
}
