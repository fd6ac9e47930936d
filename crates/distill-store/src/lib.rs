//! The local image store: content-addressed blobs in an OCI image layout, image records
//! (tags), unpacked layer snapshots, inter-process locks and garbage collection.
//!
//! - A [`Store`] is opened on a root directory ([`Store::open`]). Blobs are written with a
//!   [`BlobWriter`]: [`Store::writer`] takes the [`Expected`] digest and size up front and
//!   refuses to commit anything else; [`Store::ingest`] learns the digest while writing (a
//!   layer being compressed) and [`BlobWriter::commit`] returns it; [`Store::put_blob`] stores
//!   bytes at hand. [`Store::read_blob`] reads a manifest or config back, verified.
//! - An [`ImageRecord`] points a manifest or index at names (tags). [`Store::add_image`]
//!   records an image once all its blobs are in; [`Store::find`] resolves what a user typed
//!   (name, `name@digest`, full or short ID); [`Store::image`] reads the manifest and config
//!   into an [`Image`], whose [`Image::id`] is the config digest, like Docker's image ID.
//!   [`Store::tag`], [`Store::remove_images`] and [`Store::touch`] change records.
//! - A snapshot is one layer unpacked, keyed by diff ID and shared by all images:
//!   [`Store::prepare_snapshot`] gives a directory to fill, [`PreparedSnapshot::commit`]
//!   publishes it, [`Store::snapshot`] finds it.
//! - The build cache's [`StepRecord`]s (`cache/steps/`) are garbage-collection roots like
//!   image records: [`Store::prune`] removes what neither reaches (blobs, snapshots) and crash
//!   leftovers; [`Store::prune_build_cache`] drops build cache (`docker builder prune`);
//!   [`Store::disk_usage`] measures.
//! - [`Store::image_size`] and [`Store::unpacked_size`] give sizes as Docker shows them (the
//!   layers' unpacked files), remembered per layer so listings never decompress twice.
//!
//! Concurrency: hold a [`Lease`] ([`Store::lease`]) from the first blob you write until the
//! image that references it is recorded; garbage collection waits for leases. Every file is
//! published by rename after fsync, so a crash (even `kill -9`) leaves the store readable and
//! only orphans in `ingest/`, which `prune` reclaims. The store never holds a blob under a
//! name that is not its digest, and never rewrites a manifest or config it did not create.
//!
//! ```no_run
//! use std::io::Write;
//! use distill_store::{Expected, Store};
//! # fn main() -> Result<(), distill_store::StoreError> {
//! let store = Store::open("/tmp/distill")?;
//! let _lease = store.lease()?;
//! let mut layer = store.ingest()?;
//! layer.write_all(b"...").unwrap();
//! let (layer_digest, layer_size) = layer.commit()?;
//! # let _ = (layer_digest, layer_size, Expected::new);
//! // ... put the config and manifest with put_blob, then:
//! // store.add_image(&manifest_descriptor, &[reference])?;
//! # Ok(()) }
//! ```

mod atomic;
mod blob;
mod build_cache;
mod error;
mod gc;
mod layer_size;
mod lock;
mod refs;
mod snapshot;
mod store;
pub mod testing;

pub use blob::{BlobWriter, Expected};
pub use build_cache::{
    BuildCacheEntry, BuildCachePruneOptions, BuildCachePruneReport, BuildCacheUsage, CachedLayer,
    StepRecord,
};
pub use error::{Result, StoreError};
pub use gc::{DiskUsage, ImageUsage, PruneOptions, PruneReport, Usage};
pub use lock::{LockGuard, LockMode};
pub use refs::ImageRecord;
pub use snapshot::{PreparedSnapshot, Snapshot, SnapshotMeta};
pub use store::{Image, Lease, Removal, Store};

/// Seconds since the Unix epoch of an RFC 3339 time (as image configs and histories write
/// them); `None` if the text is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}
