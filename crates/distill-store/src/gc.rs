//! Garbage collection (`prune`) and disk usage (`df`).
//!
//! Collection runs under the exclusive `gc` lock, so no process is writing (writers hold it
//! shared): everything in `ingest/` is an orphan of a crash or an abandoned write, and any blob
//! or snapshot that neither an image record nor a live build-cache step record reaches can go
//! (see `build_cache.rs`: the build cache is a root, as BuildKit's is in Docker). It never
//! removes anything an image record or a live step record reaches.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use distill_image::{media_type, Descriptor, Digest, ImageConfig, Manifest};

use crate::atomic;
use crate::build_cache::BuildCacheUsage;
use crate::error::{IoContext, Result};
use crate::lock::{LockGuard, LockMode};
use crate::refs::RefDb;
use crate::store::Store;

/// What `prune` should remove besides unreferenced content.
#[derive(Clone, Copy, Debug, Default)]
pub struct PruneOptions {
    /// Also remove images without any name (`<none>:<none>`).
    pub untagged_images: bool,
}

/// What a collection removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Image records removed (their target digests).
    pub deleted_images: Vec<Digest>,
    pub deleted_blobs: usize,
    pub deleted_snapshots: usize,
    /// Orphaned temporary files and directories, and build-cache step records whose layer
    /// has gone (they could only miss).
    pub deleted_temporaries: usize,
    pub reclaimed_bytes: u64,
}

/// The content reachable from some roots.
#[derive(Debug, Default)]
pub(crate) struct Reachable {
    pub blobs: BTreeSet<Digest>,
    pub diff_ids: BTreeSet<Digest>,
}

impl Store {
    /// Removes unreferenced blobs and snapshots and crash leftovers (and, if asked, untagged
    /// images). Waits for other processes' leases to end.
    pub fn prune(&self, options: PruneOptions) -> Result<PruneReport> {
        let guard = self.lock("gc", LockMode::Exclusive)?;
        let mut deleted_images = Vec::new();
        if options.untagged_images {
            let _refs = self.lock("refs", LockMode::Exclusive)?;
            let mut db = self.read_db()?;
            let before = db.records.len();
            db.records.retain(|digest, record| {
                let keep = !record.names.is_empty();
                if !keep {
                    deleted_images.push(digest.clone());
                }
                keep
            });
            if db.records.len() != before {
                self.write_db(&db)?;
            }
        }
        let mut report = collect(self, &guard, true)?;
        report.deleted_images = deleted_images;
        Ok(report)
    }

    /// What the image records reach (the build cache not included).
    pub(crate) fn reachable(&self, db: &RefDb) -> Reachable {
        let mut reachable = Reachable::default();
        let mut pending: Vec<Descriptor> = db.records.values().map(|r| r.target.clone()).collect();
        while let Some(descriptor) = pending.pop() {
            if !reachable.blobs.insert(descriptor.digest.clone()) {
                continue;
            }
            let is_document = media_type::is_manifest(&descriptor.media_type)
                || media_type::is_index(&descriptor.media_type);
            if !is_document || !self.has_blob(&descriptor.digest) {
                continue;
            }
            // An unreadable manifest keeps only itself: we cannot know its children.
            match self.read_manifest(&descriptor) {
                Ok(Manifest::Index(index)) => pending.extend(index.manifests),
                Ok(Manifest::Image(manifest)) => {
                    reachable.blobs.insert(manifest.config.digest.clone());
                    reachable
                        .blobs
                        .extend(manifest.layers.iter().map(|l| l.digest.clone()));
                    if let Ok(bytes) = self.read_blob(&manifest.config) {
                        if let Ok(config) = ImageConfig::parse(&bytes) {
                            reachable.diff_ids.extend(config.rootfs.diff_ids);
                        }
                    }
                }
                Err(_) => {}
            }
        }
        reachable
    }
}

/// Deletes what neither the image records nor live step records reach. `_gc` proves the
/// caller holds the exclusive lock. Without `clear_ingest` (after `rmi`), orphans in `ingest/`
/// and dead step records are left for `prune`.
pub(crate) fn collect(store: &Store, _gc: &LockGuard, clear_ingest: bool) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let db = store.read_db()?;
    let mut reachable = store.reachable(&db);
    let cache_entries = store.build_cache_entries()?;
    store.add_build_cache_roots(&cache_entries, &mut reachable);
    if clear_ingest {
        let (removed, bytes) = store.remove_dead_step_records(&cache_entries)?;
        report.deleted_temporaries += removed;
        report.reclaimed_bytes += bytes;
    }

    let blobs_dir = store.blobs_dir();
    for entry in fs::read_dir(&blobs_dir).at("listing", &blobs_dir)? {
        let entry = entry.at("listing", &blobs_dir)?;
        let name = entry.file_name();
        let Some(digest) = name
            .to_str()
            .and_then(|hex| Digest::from_sha256_hex(hex).ok())
        else {
            continue; // not content we wrote; leave it alone
        };
        if !reachable.blobs.contains(&digest) {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(entry.path()).at("removing", &entry.path())?;
            report.deleted_blobs += 1;
            report.reclaimed_bytes += size;
        }
    }
    atomic::sync_dir(&blobs_dir).at("syncing", &blobs_dir)?;

    let snapshots_dir = store.snapshots_dir();
    for entry in fs::read_dir(&snapshots_dir).at("listing", &snapshots_dir)? {
        let entry = entry.at("listing", &snapshots_dir)?;
        let path = entry.path();
        let keep = match store.snapshot_meta_at(&path) {
            Some(meta) => {
                reachable.diff_ids.contains(&meta.diff_id) && path.ends_with(meta.diff_id.hex())
            }
            None => false,
        };
        if !keep {
            report.reclaimed_bytes += atomic::tree_size(&path).unwrap_or(0);
            store.remove_snapshot_dir(&path)?;
            report.deleted_snapshots += 1;
        }
    }

    // Remembered sizes of layers nothing keeps any more.
    let layer_records = store.layer_records_dir();
    if let Ok(entries) = fs::read_dir(&layer_records) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let keep = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|hex| Digest::from_sha256_hex(hex).ok())
                .is_some_and(|diff_id| reachable.diff_ids.contains(&diff_id));
            if !keep {
                fs::remove_file(entry.path()).at("removing", &entry.path())?;
            }
        }
    }

    if clear_ingest {
        let ingest = store.ingest_dir();
        for entry in fs::read_dir(&ingest).at("listing", &ingest)? {
            let path = entry.at("listing", &ingest)?.path();
            let meta = fs::symlink_metadata(&path).at("inspecting", &path)?;
            if meta.is_dir() {
                let is_trash = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("trash-"));
                if !is_trash {
                    report.reclaimed_bytes += atomic::tree_size(&path).unwrap_or(0);
                }
                atomic::remove_tree(&path).at("removing", &path)?;
            } else {
                report.reclaimed_bytes += meta.len();
                fs::remove_file(&path).at("removing", &path)?;
            }
            report.deleted_temporaries += 1;
        }
    } else {
        // Trash from our own snapshot removals is ours to finish.
        let ingest = store.ingest_dir();
        for entry in fs::read_dir(&ingest).at("listing", &ingest)?.flatten() {
            let path = entry.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("trash-"))
            {
                atomic::remove_tree(&path).at("removing", &path)?;
            }
        }
    }
    Ok(report)
}

/// Disk usage of the store, as `df` shows it.
#[derive(Clone, Debug, Default)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    /// Docker's "Images" line: `total` images, `active` of them with a name, `size` the
    /// unpacked sizes of the distinct layers (by diff ID) of all images, `reclaimable` those
    /// of layers only unnamed images have.
    pub image_layers: Usage,
    /// All blobs on disk (compressed layers, configs, manifests).
    pub blobs: Usage,
    /// Unpacked layers on disk.
    pub snapshots: Usage,
    /// Step records, cache mounts and context hashes, and the bytes only they keep.
    pub build_cache: BuildCacheUsage,
    /// Leftovers in `ingest/` (in-progress writes or crash orphans).
    pub temporary_bytes: u64,
}

/// Counts and bytes of one kind of content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub total: usize,
    /// How many are reachable from named images.
    pub active: usize,
    pub size: u64,
    /// What `prune -a` would free (the build cache's content stays).
    pub reclaimable: u64,
}

/// One image's footprint in unpacked layer bytes, as `docker system df -v`: its size, the
/// part in layers other images also have, and the rest.
#[derive(Clone, Debug)]
pub struct ImageUsage {
    pub record: crate::ImageRecord,
    pub id: Option<Digest>,
    pub size: u64,
    pub shared: u64,
    pub unique: u64,
    pub created: Option<time::OffsetDateTime>,
}

impl Store {
    /// Measures the store (reads every manifest and config, walks the snapshots; a layer's
    /// unpacked size is measured once, then remembered).
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let _lease = self.lease()?;
        let db = self.read_db()?;
        let mut usage = DiskUsage::default();

        // Blob sizes on disk.
        let mut blob_sizes: BTreeMap<Digest, u64> = BTreeMap::new();
        let blobs_dir = self.blobs_dir();
        for entry in fs::read_dir(&blobs_dir).at("listing", &blobs_dir)? {
            let entry = entry.at("listing", &blobs_dir)?;
            if let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|h| Digest::from_sha256_hex(h).ok())
            {
                blob_sizes.insert(digest, entry.metadata().map(|m| m.len()).unwrap_or(0));
            }
        }

        // Which images have which layers (by diff ID), and how big each layer is unpacked.
        let mut layer_sizes: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut images = Vec::new();
        let mut users: BTreeMap<Digest, usize> = BTreeMap::new();
        let mut named_layers: BTreeSet<Digest> = BTreeSet::new();
        for record in db.records.values() {
            let (layers, id, created) = match self.image(record) {
                Ok(image) => {
                    let mut layers = BTreeSet::new();
                    for (layer, diff_id) in image
                        .manifest
                        .layers
                        .iter()
                        .zip(&image.config.rootfs.diff_ids)
                    {
                        if !layer_sizes.contains_key(diff_id) {
                            let size = self.unpacked_size(layer, diff_id).unwrap_or(layer.size);
                            layer_sizes.insert(diff_id.clone(), size);
                        }
                        layers.insert(diff_id.clone());
                    }
                    (layers, Some(image.id().clone()), image.created())
                }
                Err(_) => (BTreeSet::new(), None, None),
            };
            for layer in &layers {
                *users.entry(layer.clone()).or_default() += 1;
            }
            if !record.names.is_empty() {
                named_layers.extend(layers.iter().cloned());
            }
            images.push((record.clone(), id, created, layers));
        }
        let size_of = |d: &Digest| layer_sizes.get(d).copied().unwrap_or(0);
        for (record, id, created, layers) in images {
            let size: u64 = layers.iter().map(size_of).sum();
            let shared: u64 = layers.iter().filter(|d| users[*d] > 1).map(size_of).sum();
            usage.images.push(ImageUsage {
                record,
                id,
                size,
                shared,
                unique: size - shared,
                created,
            });
        }
        usage
            .images
            .sort_by_key(|u| std::cmp::Reverse(u.record.added));
        usage.image_layers = Usage {
            total: usage.images.len(),
            active: db.records.values().filter(|r| !r.names.is_empty()).count(),
            size: layer_sizes.values().sum(),
            reclaimable: layer_sizes
                .iter()
                .filter(|(diff_id, _)| !named_layers.contains(*diff_id))
                .map(|(_, size)| size)
                .sum(),
        };

        // Active = reachable from named images; the build cache's content is not reclaimable
        // by `prune`.
        let mut named = RefDb::default();
        for (digest, record) in &db.records {
            if !record.names.is_empty() {
                named.records.insert(digest.clone(), record.clone());
            }
        }
        let active = self.reachable(&named);
        let all_images = self.reachable(&db);
        let cache_entries = self.build_cache_entries()?;
        let mut kept = Reachable::default();
        self.add_build_cache_roots(&cache_entries, &mut kept);
        usage.blobs.total = blob_sizes.len();
        for (digest, size) in &blob_sizes {
            usage.blobs.size += size;
            if active.blobs.contains(digest) {
                usage.blobs.active += 1;
            } else if !kept.blobs.contains(digest) {
                usage.blobs.reclaimable += size;
            }
        }

        for snapshot in self.snapshots()? {
            let diff_id = &snapshot.meta.diff_id;
            usage.snapshots.total += 1;
            usage.snapshots.size += snapshot.meta.size;
            if active.diff_ids.contains(diff_id) {
                usage.snapshots.active += 1;
            } else if !kept.diff_ids.contains(diff_id) {
                usage.snapshots.reclaimable += snapshot.meta.size;
            }
        }

        usage.build_cache = self.build_cache_usage(&cache_entries, &all_images);
        usage.temporary_bytes = atomic::tree_size(&self.ingest_dir()).unwrap_or(0);
        Ok(usage)
    }

    fn snapshot_meta_at(&self, dir: &std::path::Path) -> Option<crate::SnapshotMeta> {
        let bytes = fs::read(dir.join("meta.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
