//! Writing a layer blob: tar entries → diff-ID hash → compressor → blob hash → sink, one pass.
//!
//! Nothing is buffered beyond the compressor's blocks: a layer of any size streams to its sink.

use std::io::{Read, Write};
use std::path::Path;

use crate::compress::{Compression, Compressor};
use crate::digest::{HashingWriter, Sha256Digest};
use crate::error::LayerError;
use crate::tar::{EntryHeader, TarWriter};
use crate::tree::{write_tree, TreeOptions};

/// What an image manifest and config need to know about a written layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDescriptor {
    /// sha256 of the compressed blob: the layer's name in manifests and the store.
    pub digest: Sha256Digest,
    /// sha256 of the uncompressed tar: the config's `rootfs.diff_ids` entry.
    pub diff_id: Sha256Digest,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
    /// The files' size unpacked, as Docker reports layer sizes ([`TarWriter::unpacked_size`]).
    pub unpacked_size: u64,
    /// OCI media type for the compression used.
    pub media_type: &'static str,
    pub compression: Compression,
}

/// Writes one layer to `W`. Append entries with [`LayerWriter::append_tree`] and
/// [`LayerWriter::append`], then [`LayerWriter::finish`]. To keep the sink after finishing
/// (to fsync and rename it), pass `&mut sink`.
pub struct LayerWriter<W: Write> {
    tar: TarWriter<HashingWriter<Compressor<HashingWriter<W>>>>,
    compression: Compression,
    entries: u64,
}

impl<W: Write> LayerWriter<W> {
    pub fn new(sink: W, compression: Compression) -> Result<LayerWriter<W>, LayerError> {
        let compressor =
            Compressor::new(HashingWriter::new(sink), compression).map_err(LayerError::Write)?;
        Ok(LayerWriter {
            tar: TarWriter::new(HashingWriter::new(compressor)),
            compression,
            entries: 0,
        })
    }

    /// Appends every entry under `root` (see [`write_tree`]).
    pub fn append_tree(&mut self, root: &Path, options: &TreeOptions) -> Result<(), LayerError> {
        self.entries += write_tree(root, options, &mut self.tar)?;
        Ok(())
    }

    /// Appends one entry; `data` gives exactly `header.size` bytes for files. Callers are
    /// responsible for the order of entries (parents first).
    pub fn append(&mut self, header: &EntryHeader, data: impl Read) -> Result<(), LayerError> {
        self.tar.append(header, data)?;
        self.entries += 1;
        Ok(())
    }

    /// Entries appended so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Ends the tar and the compressed stream and returns the layer's descriptor.
    pub fn finish(self) -> Result<LayerDescriptor, LayerError> {
        let unpacked_size = self.tar.unpacked_size();
        let uncompressed = self.tar.finish()?;
        let (diff_id, uncompressed_size, compressor) = uncompressed.finish();
        let mut compressed = compressor.finish().map_err(LayerError::Write)?;
        compressed.flush().map_err(LayerError::Write)?;
        let (digest, size, _sink) = compressed.finish();
        Ok(LayerDescriptor {
            digest,
            diff_id,
            size,
            uncompressed_size,
            unpacked_size,
            media_type: self.compression.oci_media_type(),
            compression: self.compression,
        })
    }
}

/// Writes the layer of the tree at `root` to `sink`: the common case in one call.
pub fn write_layer<W: Write>(
    root: &Path,
    options: &TreeOptions,
    sink: W,
    compression: Compression,
) -> Result<LayerDescriptor, LayerError> {
    let mut writer = LayerWriter::new(sink, compression)?;
    writer.append_tree(root, options)?;
    writer.finish()
}
