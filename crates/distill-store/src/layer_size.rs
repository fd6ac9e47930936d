//! A layer's unpacked size, as Docker reports image sizes.
//!
//! Docker 20.10 (overlay2) measures each layer once, when it applies it: the sizes of the
//! files in the layer's diff directory, directories not counted, each hardlinked inode once,
//! a symlink counting the length of its target (moby's `directory.Size`). `docker images`
//! SIZE is the sum over the image's layers. distill computes the same number:
//!
//! - from a snapshot (one layer unpacked on its own, as overlay2's diff directory): its
//!   `meta.json` size, measured the same way when it is committed;
//! - from the blob otherwise: the sizes of the tar's regular files plus the lengths of its
//!   symlink targets (a hardlink entry adds nothing; a path written twice in one layer counts
//!   twice, where unpacking would keep the last).
//!
//! The number is remembered per diff ID in `layers/sha256/<diff-id hex>.json`, written when a
//! snapshot is committed or the first time a listing needs it, so listing images never
//! decompresses a layer twice. Garbage collection drops records of layers nothing keeps.

use std::fs;
use std::io::BufReader;
use std::path::PathBuf;

use distill_image::{Descriptor, Digest};
use distill_layer::{EntryKind, LayerReader, TarReader};
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::error::{IoContext, Result, StoreError};
use crate::store::{Image, Store};

/// `layers/sha256/<diff-id hex>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct LayerSizeRecord {
    diff_id: Digest,
    unpacked_size: u64,
}

impl Store {
    pub(crate) fn layer_records_dir(&self) -> PathBuf {
        self.root().join("layers/sha256")
    }

    fn layer_record_path(&self, diff_id: &Digest) -> PathBuf {
        self.layer_records_dir()
            .join(format!("{}.json", diff_id.hex()))
    }

    /// The remembered unpacked size of the layer with `diff_id`, if known.
    pub fn known_unpacked_size(&self, diff_id: &Digest) -> Option<u64> {
        let bytes = fs::read(self.layer_record_path(diff_id)).ok()?;
        let record: LayerSizeRecord = serde_json::from_slice(&bytes).ok()?;
        (record.diff_id == *diff_id).then_some(record.unpacked_size)
    }

    /// Remembers the unpacked size of the layer with `diff_id` (writers that know it call
    /// this; snapshots do it when committed).
    pub fn record_unpacked_size(&self, diff_id: &Digest, unpacked_size: u64) -> Result<()> {
        let dir = self.layer_records_dir();
        fs::create_dir_all(&dir).at("creating", &dir)?;
        let path = self.layer_record_path(diff_id);
        let record = LayerSizeRecord {
            diff_id: diff_id.clone(),
            unpacked_size,
        };
        let json = serde_json::to_vec(&record).map_err(|err| StoreError::Corrupt {
            path: path.clone(),
            message: err.to_string(),
        })?;
        atomic::write_file(&self.ingest_dir(), &path, &json).at("writing", &path)
    }

    /// The unpacked size of `layer` (whose uncompressed digest is `diff_id`), as Docker shows
    /// it: remembered, or measured once from its snapshot or its blob and remembered.
    pub fn unpacked_size(&self, layer: &Descriptor, diff_id: &Digest) -> Result<u64> {
        if let Some(size) = self.known_unpacked_size(diff_id) {
            return Ok(size);
        }
        let size = match self.snapshot(diff_id)? {
            Some(snapshot) => snapshot.meta.size,
            None => self.measure_blob(&layer.digest)?,
        };
        // Not remembering (a read-only store) only costs measuring again next time.
        let _ = self.record_unpacked_size(diff_id, size);
        Ok(size)
    }

    /// Docker's SIZE of an image: the unpacked sizes of its layers, summed. A layer that
    /// cannot be measured (its blob is missing) counts its compressed size.
    pub fn image_size(&self, image: &Image) -> u64 {
        let diff_ids = &image.config.rootfs.diff_ids;
        image
            .manifest
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                diff_ids
                    .get(index)
                    .and_then(|diff_id| self.unpacked_size(layer, diff_id).ok())
                    .unwrap_or(layer.size)
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Reads a layer blob through, adding up its files' sizes and its symlinks' targets.
    fn measure_blob(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        let corrupt = |err: distill_layer::LayerError| StoreError::Corrupt {
            path: path.clone(),
            message: err.to_string(),
        };
        let blob = self.open_blob(digest)?;
        let reader =
            LayerReader::new(BufReader::with_capacity(256 * 1024, blob)).map_err(corrupt)?;
        let mut tar = TarReader::new(reader);
        let mut size = 0u64;
        while let Some(entry) = tar.next_entry().map_err(corrupt)? {
            size = size.saturating_add(match entry.header.kind {
                EntryKind::File => entry.header.size,
                EntryKind::Symlink => entry.header.link_target.len() as u64,
                _ => 0,
            });
        }
        Ok(size)
    }
}
