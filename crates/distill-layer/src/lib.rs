//! Image layers: a directory tree to a compressed, digested tar blob, and back.
//!
//! Writing: a [`LayerWriter`] streams tar entries through a diff-ID hasher, a [`Compression`]
//! (parallel gzip or zstd) and a blob hasher into any [`std::io::Write`]; [`write_tree`] feeds it
//! a snapshot or an overlayfs upper directory in a fixed order, converting overlay whiteouts.
//! [`LayerWriter::finish`] gives a [`LayerDescriptor`] (digest, diff ID, size, media type).
//!
//! Reading: a [`LayerReader`] detects the compression, decompresses and hashes as it goes;
//! [`TarReader`] yields entries; [`extract`] applies a layer to a snapshot directory without ever
//! writing outside it, and checks the diff ID once the stream has been read.
//!
//! ```no_run
//! use distill_layer::{extract, write_layer, Compression, ExtractOptions, TreeOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A layer from an overlay upper dir, timestamps clamped to SOURCE_DATE_EPOCH.
//! let blob = std::fs::File::create("/tmp/layer.tar.gz")?;
//! let options = TreeOptions::new().overlay_upper(true).clamp_mtime(1_700_000_000);
//! let layer = write_layer("/upper".as_ref(), &options, blob, Compression::gzip())?;
//! println!("{} {} {} bytes", layer.digest, layer.diff_id, layer.size);
//!
//! // Back into a snapshot directory, checking the diff ID.
//! let blob = std::fs::File::open("/tmp/layer.tar.gz")?;
//! let options = ExtractOptions { expected_diff_id: Some(layer.diff_id), ..Default::default() };
//! let report = extract(blob, "/snapshot".as_ref(), &options)?;
//! # let _ = report; Ok(()) }
//! ```
//!
//! Snapshotters that stack one directory per layer under overlayfs extract with
//! [`Whiteouts::Overlay`] (whiteouts become 0/0 devices and `overlay.opaque` xattrs); extracting
//! layers on top of each other into one directory uses the default [`Whiteouts::Apply`].
//! [`Sha256Digest`] prints as `sha256:<hex>`, so `distill_image::Digest::parse(&d.to_string())`
//! converts it.
//!
//! Never holds a layer in memory: memory use is bounded by the compressor's in-flight blocks
//! (2 × threads × 1 MiB for gzip, a few 2 MiB jobs per zstd worker) and small per-entry
//! bookkeeping (about 20 bytes per extracted entry, the path of each directory), whatever the
//! layer's size. Never writes outside an extraction target, never follows a symlink out of it.

mod compress;
mod digest;
mod error;
mod extract;
mod layer;
mod read;
mod tar;
mod tree;
mod xattr;

pub use compress::{Compression, Compressor, GzipWriter};
pub use digest::{HashingReader, HashingWriter, Sha256Digest};
pub use error::LayerError;
pub use extract::{extract, ExtractOptions, ExtractReport, OverlayXattrs, Whiteouts};
pub use layer::{write_layer, LayerDescriptor, LayerWriter};
pub use read::{Detected, LayerReader, ReadDigests};
pub use tar::{Entry, EntryData, EntryHeader, EntryKind, TarReader, TarWriter};
pub use tree::{write_tree, Owners, Timestamps, TreeOptions, Xattrs};
