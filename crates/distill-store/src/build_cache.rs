//! The build cache as the store sees it: a garbage-collection root, and what `distill builder
//! prune` removes.
//!
//! ```text
//! cache/steps/<key hex>.json   one step record per cache key: the layer the step produced
//! cache/mounts/<id>/           RUN --mount=type=cache directories
//! cache/context/<hash>.bin     remembered content hashes of a build context
//! cache/http/<url hash>.json   what ADD <url> downloaded last (ETag, checksum)
//! ```
//!
//! Every entry of every directory under `cache/` is one build-cache entry; only step records
//! hold content of the store (other kinds are whatever their directory holds).
//!
//! A *live* step record (its layer blob is in the store) keeps that blob and the layer's
//! snapshot from collection, as BuildKit's cache records keep their snapshots from Docker's
//! image garbage collection: `rmi` and `prune` never make a cached step rebuild. A record
//! whose blob has gone (edited by hand, lost in a crash) roots nothing; the build treats it as
//! a miss and `prune` deletes it. Only [`Store::prune_build_cache`] drops live records.
//!
//! Records are written by the build (the solver's `StepCache`, holding a lease), so every
//! function here that deletes runs under the exclusive `gc` lock: no build is running then.
//! The last use of a record is its file's modification time, which the step cache renews on
//! every hit.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use distill_image::Digest;
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::error::{IoContext, Result};
use crate::gc::{collect, Reachable};
use crate::lock::LockMode;
use crate::store::Store;

/// What the build cache records for one step (`cache/steps/<key hex>.json`): the layer it
/// produced. The executor writes it through the solver's step cache; garbage collection reads
/// it to keep the layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub layer: CachedLayer,
    /// Seconds since the epoch the step was built (absent in records of older versions).
    #[serde(default)]
    pub created: Option<i64>,
}

/// A layer in the store, as a step record names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    /// The compressed blob.
    pub digest: Digest,
    /// The uncompressed tar's digest (the snapshot's name).
    pub diff_id: Digest,
    /// The blob's size.
    pub size: u64,
    pub media_type: String,
}

/// What [`Store::prune_build_cache`] removes.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildCachePruneOptions {
    /// Also records whose layer an image uses (`docker builder prune -a`). Without it only
    /// "dangling" cache goes: records whose layer no image has, and every other entry (cache
    /// mounts, remembered context hashes, download records).
    pub all: bool,
    /// Only entries not used for at least this long (`--filter until=24h`).
    pub unused_for: Option<Duration>,
    /// Stop once the build cache holds at most this many bytes, removing the least recently
    /// used entries first (`--keep-storage`).
    pub keep_bytes: Option<u64>,
}

/// What [`Store::prune_build_cache`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildCachePruneReport {
    /// The entries removed, least recently used first: step keys, the names of other entries
    /// (a cache mount's directory, a context-hash or download file without its extension).
    pub deleted: Vec<String>,
    /// Bytes freed: the entries and the layers (blobs and snapshots) nothing else keeps.
    pub reclaimed_bytes: u64,
}

/// Counts and sizes of the build cache, as `docker system df`'s "Build Cache" line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildCacheUsage {
    /// Entries: step records, cache mounts, context-hash and download files.
    pub total: usize,
    /// Step records whose layer an image also uses (their layer bytes are the image's).
    pub shared: usize,
    /// Bytes only the build cache holds: records, the blobs and snapshots of layers no image
    /// uses, cache mounts, context hashes. All of it is reclaimable by `builder prune -a`.
    pub size: u64,
}

/// One build-cache entry as `docker system df -v` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildCacheEntry {
    /// The step key's hex, or the entry's name.
    pub id: String,
    /// BuildKit's record type: `regular` (a step), `exec.cachemount`, `source.local` (context
    /// hashes) or `internal`.
    pub kind: &'static str,
    /// The entry's bytes, with its layer's blob and snapshot unless an image has the layer.
    pub size: u64,
    /// When the step was built (step records that say so).
    pub created: Option<i64>,
    /// Seconds since the epoch of its last use.
    pub last_used: i64,
    /// Whether an image has the step's layer.
    pub shared: bool,
}

/// One entry of the build cache.
#[derive(Debug)]
pub(crate) struct CacheEntry {
    /// The step key's hex, or the mount's or context file's name.
    pub id: String,
    pub path: PathBuf,
    pub kind: EntryKind,
    /// Bytes of the entry itself (the record file, the mount's tree).
    pub own_bytes: u64,
    pub last_used: SystemTime,
}

#[derive(Debug)]
pub(crate) enum EntryKind {
    /// A step record whose layer blob is in the store.
    LiveStep(StepRecord),
    /// A step record that cannot be read or whose layer blob has gone: garbage.
    DeadStep,
    /// A cache mount, remembered context hashes, a download's record: bytes of its own only.
    Other,
}

impl CacheEntry {
    /// The layer a live step record keeps.
    fn live_layer(&self) -> Option<&CachedLayer> {
        match &self.kind {
            EntryKind::LiveStep(record) => Some(&record.layer),
            _ => None,
        }
    }

    fn is_dead_step(&self) -> bool {
        matches!(self.kind, EntryKind::DeadStep)
    }
}

impl Store {
    /// Where step records live; the build's step cache is opened here.
    pub fn step_records_dir(&self) -> PathBuf {
        self.cache_dir().join("steps")
    }

    /// Every build-cache entry, in no particular order. Unreadable records are listed (as
    /// garbage); temporary files of records being written are not.
    pub(crate) fn build_cache_entries(&self) -> Result<Vec<CacheEntry>> {
        let mut entries = Vec::new();
        let steps = self.step_records_dir();
        for (name, path, meta) in list(&steps)? {
            let Some(key) = name.strip_suffix(".json") else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let record = fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<StepRecord>(&bytes).ok());
            let kind = match record {
                Some(record) if self.has_blob(&record.layer.digest) => EntryKind::LiveStep(record),
                _ => EntryKind::DeadStep,
            };
            entries.push(CacheEntry {
                id: key.to_string(),
                kind,
                own_bytes: meta.len(),
                last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                path,
            });
        }
        for (kind, kind_path, kind_meta) in list(&self.cache_dir())? {
            if kind == "steps" {
                continue;
            }
            let members = if kind_meta.is_dir() {
                list(&kind_path)?
            } else {
                vec![(kind.clone(), kind_path, kind_meta)]
            };
            for (name, path, meta) in members {
                // A file's name without its extension; a directory's (a mount's id) whole.
                let id = match name.rsplit_once('.') {
                    Some((stem, _)) if !stem.is_empty() && !meta.is_dir() => stem.to_string(),
                    _ => name,
                };
                entries.push(CacheEntry {
                    id,
                    kind: EntryKind::Other,
                    own_bytes: if meta.is_dir() {
                        atomic::tree_size(&path).unwrap_or(0)
                    } else {
                        meta.len()
                    },
                    last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    path,
                });
            }
        }
        Ok(entries)
    }

    /// Adds what live step records keep to `reachable`.
    pub(crate) fn add_build_cache_roots(&self, entries: &[CacheEntry], reachable: &mut Reachable) {
        for entry in entries {
            if let Some(layer) = entry.live_layer() {
                reachable.blobs.insert(layer.digest.clone());
                reachable.diff_ids.insert(layer.diff_id.clone());
            }
        }
    }

    /// `docker builder prune`: removes build-cache entries (see [`BuildCachePruneOptions`]),
    /// then the layers no image and no remaining record keeps. Waits for running builds.
    pub fn prune_build_cache(
        &self,
        options: BuildCachePruneOptions,
    ) -> Result<BuildCachePruneReport> {
        let guard = self.lock("gc", LockMode::Exclusive)?;
        let db = self.read_db()?;
        let images = self.reachable(&db);
        let entries = self.build_cache_entries()?;
        let mut sizes = LayerBytes::new(self, &entries, &images);

        let now = SystemTime::now();
        let old_enough = |entry: &CacheEntry| match options.unused_for {
            Some(age) => now
                .duration_since(entry.last_used)
                .is_ok_and(|since| since >= age),
            None => true,
        };
        let mut candidates: Vec<&CacheEntry> = entries
            .iter()
            .filter(|entry| {
                let shared = entry
                    .live_layer()
                    .is_some_and(|layer| images.blobs.contains(&layer.digest));
                // Garbage goes whatever the filters say: it is no cache.
                entry.is_dead_step() || (old_enough(entry) && (options.all || !shared))
            })
            .collect();
        candidates.sort_by(|a, b| a.last_used.cmp(&b.last_used).then(a.id.cmp(&b.id)));

        let mut report = BuildCachePruneReport::default();
        for entry in candidates {
            if let Some(keep) = options.keep_bytes {
                if !entry.is_dead_step() && sizes.total <= keep {
                    continue;
                }
            }
            remove_entry(self, entry)?;
            sizes.release(entry);
            report.deleted.push(entry.id.clone());
            report.reclaimed_bytes += entry.own_bytes;
        }
        let collected = collect(self, &guard, false)?;
        report.reclaimed_bytes += collected.reclaimed_bytes;
        Ok(report)
    }

    /// Every build-cache entry, most recently used first (`docker system df -v`).
    pub fn build_cache(&self) -> Result<Vec<BuildCacheEntry>> {
        let _lease = self.lease()?;
        let db = self.read_db()?;
        let images = self.reachable(&db);
        let entries = self.build_cache_entries()?;
        let sizes = LayerBytes::new(self, &entries, &images);
        let mut out: Vec<BuildCacheEntry> = entries
            .iter()
            .map(|entry| {
                let layer = entry.live_layer();
                let layer_bytes = layer
                    .and_then(|layer| sizes.layers.get(&layer.digest))
                    .map_or(0, |(bytes, _)| *bytes);
                let kind = match (&entry.kind, entry.path.parent().and_then(Path::file_name)) {
                    (EntryKind::LiveStep(_) | EntryKind::DeadStep, _) => "regular",
                    (EntryKind::Other, Some(dir)) if dir == "mounts" => "exec.cachemount",
                    (EntryKind::Other, Some(dir)) if dir == "context" => "source.local",
                    (EntryKind::Other, _) => "internal",
                };
                BuildCacheEntry {
                    id: entry.id.clone(),
                    kind,
                    size: entry.own_bytes + layer_bytes,
                    created: match &entry.kind {
                        EntryKind::LiveStep(record) => record.created,
                        _ => None,
                    },
                    last_used: entry
                        .last_used
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64),
                    shared: layer.is_some_and(|layer| images.blobs.contains(&layer.digest)),
                }
            })
            .collect();
        out.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The build cache's usage, given what images reach.
    pub(crate) fn build_cache_usage(
        &self,
        entries: &[CacheEntry],
        images: &Reachable,
    ) -> BuildCacheUsage {
        let sizes = LayerBytes::new(self, entries, images);
        BuildCacheUsage {
            total: entries.len(),
            shared: entries
                .iter()
                .filter(|e| {
                    e.live_layer()
                        .is_some_and(|layer| images.blobs.contains(&layer.digest))
                })
                .count(),
            size: sizes.total,
        }
    }

    /// Removes step records whose blob has gone, unreadable ones and temporary files of
    /// interrupted writes. The caller holds the exclusive `gc` lock.
    pub(crate) fn remove_dead_step_records(&self, entries: &[CacheEntry]) -> Result<(usize, u64)> {
        let mut removed = 0;
        let mut bytes = 0;
        for entry in entries {
            if entry.is_dead_step() {
                remove_entry(self, entry)?;
                removed += 1;
                bytes += entry.own_bytes;
            }
        }
        let steps = self.step_records_dir();
        for (name, path, meta) in list(&steps)? {
            if name.starts_with(".tmp-") && meta.is_file() {
                fs::remove_file(&path).at("removing", &path)?;
                removed += 1;
                bytes += meta.len();
            }
        }
        Ok((removed, bytes))
    }
}

/// Bytes the build cache alone holds, and which layers each record keeps, so that removing
/// records one by one knows when a layer's bytes are freed (the last record holding it goes).
struct LayerBytes {
    total: u64,
    /// Per layer blob only the build cache keeps: its bytes (blob and snapshot) and how many
    /// records still hold it.
    layers: BTreeMap<Digest, (u64, usize)>,
}

impl LayerBytes {
    fn new(store: &Store, entries: &[CacheEntry], images: &Reachable) -> LayerBytes {
        let mut layers: BTreeMap<Digest, (u64, usize)> = BTreeMap::new();
        let mut snapshots_counted = BTreeSet::new();
        let mut total = 0;
        for entry in entries {
            total += entry.own_bytes;
            let Some(layer) = entry.live_layer() else {
                continue;
            };
            if images.blobs.contains(&layer.digest) {
                continue;
            }
            let slot = layers.entry(layer.digest.clone()).or_insert_with(|| {
                let blob = fs::metadata(store.blob_path(&layer.digest)).map_or(0, |m| m.len());
                // A snapshot an image also has stays with the image.
                let snapshot = if images.diff_ids.contains(&layer.diff_id)
                    || !snapshots_counted.insert(layer.diff_id.clone())
                {
                    0
                } else {
                    store
                        .snapshot(&layer.diff_id)
                        .ok()
                        .flatten()
                        .map_or(0, |s| s.meta.size)
                };
                (blob + snapshot, 0)
            });
            slot.1 += 1;
        }
        total += layers.values().map(|(bytes, _)| bytes).sum::<u64>();
        LayerBytes { total, layers }
    }

    /// `entry` is gone: its bytes, and its layer's when no other record holds it.
    fn release(&mut self, entry: &CacheEntry) {
        self.total = self.total.saturating_sub(entry.own_bytes);
        let Some(layer) = entry.live_layer() else {
            return;
        };
        if let Some((bytes, holders)) = self.layers.get_mut(&layer.digest) {
            *holders -= 1;
            if *holders == 0 {
                self.total = self.total.saturating_sub(*bytes);
            }
        }
    }
}

/// Deletes one entry: a record file, or a directory moved out of sight first.
fn remove_entry(store: &Store, entry: &CacheEntry) -> Result<()> {
    match entry.kind {
        EntryKind::LiveStep(_) | EntryKind::DeadStep => match fs::remove_file(&entry.path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err).at("removing", &entry.path),
        },
        EntryKind::Other => {
            let is_dir = fs::symlink_metadata(&entry.path).is_ok_and(|m| m.is_dir());
            if is_dir {
                store.remove_snapshot_dir(&entry.path)
            } else {
                fs::remove_file(&entry.path).at("removing", &entry.path)
            }
        }
    }
}

/// The entries of `dir` (none if it does not exist): name, path and metadata (not following
/// symlinks). Names that are not UTF-8 are skipped: the build cache never writes them.
fn list(dir: &Path) -> Result<Vec<(String, PathBuf, fs::Metadata)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).at("listing", dir),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.at("listing", dir)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue; // removed meanwhile
        };
        out.push((name, path, meta));
    }
    Ok(out)
}
