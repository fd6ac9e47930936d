//! Unpacked layers ("snapshots"), one directory per diff ID, shared by every image that has the
//! layer. Each is one layer's content on its own (whiteouts included, as the layer crate writes
//! them), to be stacked as overlay lower directories.
//!
//! ```text
//! snapshots/sha256/<diff-id hex>/fs/         the layer's files
//! snapshots/sha256/<diff-id hex>/meta.json   diff ID, size, creation and last use
//! layers/sha256/<diff-id hex>.json           the size, remembered beyond the snapshot
//! ingest/snapshot-…/fs/                      a snapshot being prepared
//! ```
//!
//! A snapshot is prepared in `ingest/`, filled by the caller (the layer crate extracts into
//! [`PreparedSnapshot::fs_dir`], or a RUN step writes its upper directory there), then committed
//! under its diff ID by one rename. Removal renames it back into `ingest/` before deleting, so a
//! crash never leaves a half-deleted snapshot under a diff ID. This module never extracts.

use std::fs;
use std::path::{Path, PathBuf};

use distill_image::Digest;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::atomic;
use crate::error::{IoContext, Result, StoreError};
use crate::refs::format_time;
use crate::store::{Lease, Store};

/// What `meta.json` records about a committed snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub diff_id: Digest,
    /// Bytes of files under `fs/` (each inode once).
    pub size: u64,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
}

/// A committed snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The snapshot's directory (holding `fs/` and `meta.json`).
    pub dir: PathBuf,
    pub meta: SnapshotMeta,
}

impl Snapshot {
    /// The layer's files.
    pub fn fs_dir(&self) -> PathBuf {
        self.dir.join("fs")
    }
}

/// A snapshot being filled. Dropped without commit, it is deleted.
#[derive(Debug)]
pub struct PreparedSnapshot {
    store: Store,
    dir: PathBuf,
    committed: bool,
    _lease: Lease,
}

impl PreparedSnapshot {
    /// Fill this directory with the layer's files.
    pub fn fs_dir(&self) -> PathBuf {
        self.dir.join("fs")
    }

    /// An empty directory beside [`fs_dir`](Self::fs_dir) on the same filesystem, for
    /// overlayfs's `workdir` when `fs_dir` is the upper directory. Removed at commit.
    pub fn work_dir(&self) -> Result<PathBuf> {
        let work = self.dir.join("work");
        match fs::create_dir(&work) {
            Ok(()) => Ok(work),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(work),
            Err(err) => Err(err).at("creating", &work),
        }
    }

    /// Publishes the snapshot under `diff_id`. If another process committed the same diff ID
    /// first, ours is discarded and theirs returned: both hold the same layer.
    pub fn commit(mut self, diff_id: &Digest) -> Result<Snapshot> {
        let snapshots = self.store.snapshots_dir();
        let target = snapshots.join(diff_id.hex());
        if let Some(existing) = read_snapshot(&target)? {
            return Ok(existing);
        }
        let work = self.dir.join("work");
        atomic::remove_tree(&work).at("removing", &work)?;
        let size = atomic::tree_size(&self.fs_dir()).at("measuring", &self.dir)?;
        let meta = SnapshotMeta {
            diff_id: diff_id.clone(),
            size,
            created: format_time(OffsetDateTime::now_utc()),
            last_used: None,
        };
        let meta_path = self.dir.join("meta.json");
        let meta_json = serde_json::to_vec(&meta).map_err(|err| StoreError::Corrupt {
            path: meta_path.clone(),
            message: err.to_string(),
        })?;
        fs::write(&meta_path, meta_json).at("writing", &meta_path)?;
        // Make the layer's files durable before the rename makes them visible.
        let dir = fs::File::open(&self.dir).at("opening", &self.dir)?;
        rustix::fs::syncfs(&dir)
            .map_err(std::io::Error::from)
            .at("syncing", &self.dir)?;
        match fs::rename(&self.dir, &target) {
            Ok(()) => {}
            Err(_) if read_snapshot(&target)?.is_some() => {
                // Lost a race with another process committing the same layer.
                return read_snapshot(&target)?.ok_or_else(|| StoreError::Corrupt {
                    path: target.clone(),
                    message: "snapshot vanished while committing".into(),
                });
            }
            Err(err) => return Err(err).at("publishing", &target),
        }
        self.committed = true;
        atomic::sync_dir(&snapshots).at("syncing", &snapshots)?;
        // Measured as Docker measures a layer: remember it for `images` and `df`.
        let _ = self.store.record_unpacked_size(diff_id, size);
        Ok(Snapshot { dir: target, meta })
    }
}

impl Drop for PreparedSnapshot {
    fn drop(&mut self) {
        if !self.committed {
            let _ = atomic::remove_tree(&self.dir);
        }
    }
}

impl Store {
    pub(crate) fn snapshots_dir(&self) -> PathBuf {
        self.root().join("snapshots/sha256")
    }

    /// The committed snapshot for `diff_id`, if there is one.
    pub fn snapshot(&self, diff_id: &Digest) -> Result<Option<Snapshot>> {
        read_snapshot(&self.snapshots_dir().join(diff_id.hex()))
    }

    /// Starts a new snapshot in `ingest/`; garbage collection stays away until it is committed
    /// or dropped.
    pub fn prepare_snapshot(&self) -> Result<PreparedSnapshot> {
        let lease = self.lease()?;
        let ingest = self.ingest_dir();
        let dir = ingest.join(atomic::unique_name("snapshot"));
        fs::create_dir(&dir).at("creating", &dir)?;
        fs::create_dir(dir.join("fs")).at("creating", &dir)?;
        Ok(PreparedSnapshot {
            store: self.clone(),
            dir,
            committed: false,
            _lease: lease,
        })
    }

    /// Every committed snapshot, in diff ID order. Directories without a readable `meta.json`
    /// are skipped (garbage collection removes them).
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let dir = self.snapshots_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).at("listing", &dir)? {
            let entry = entry.at("listing", &dir)?;
            if let Some(snapshot) = read_snapshot(&entry.path()).ok().flatten() {
                out.push(snapshot);
            }
        }
        out.sort_by(|a, b| a.meta.diff_id.cmp(&b.meta.diff_id));
        Ok(out)
    }

    /// Records that a snapshot was used now.
    pub fn touch_snapshot(&self, diff_id: &Digest) -> Result<()> {
        let _lease = self.lease()?;
        let Some(mut snapshot) = self.snapshot(diff_id)? else {
            return Ok(());
        };
        snapshot.meta.last_used = Some(format_time(OffsetDateTime::now_utc()));
        let path = snapshot.dir.join("meta.json");
        let json = serde_json::to_vec(&snapshot.meta).map_err(|err| StoreError::Corrupt {
            path: path.clone(),
            message: err.to_string(),
        })?;
        atomic::write_file(&self.ingest_dir(), &path, &json).at("writing", &path)
    }

    /// Moves a snapshot directory out of sight, then deletes it.
    pub(crate) fn remove_snapshot_dir(&self, dir: &Path) -> Result<()> {
        let trash = self.ingest_dir().join(atomic::unique_name("trash"));
        fs::rename(dir, &trash).at("removing", dir)?;
        atomic::remove_tree(&trash).at("removing", &trash)
    }
}

/// Reads a snapshot directory; `None` if absent or incomplete.
fn read_snapshot(dir: &Path) -> Result<Option<Snapshot>> {
    let meta_path = dir.join("meta.json");
    let bytes = match fs::read(&meta_path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).at("reading", &meta_path),
    };
    let meta: SnapshotMeta = serde_json::from_slice(&bytes).map_err(|err| StoreError::Corrupt {
        path: meta_path.clone(),
        message: err.to_string(),
    })?;
    Ok(Some(Snapshot {
        dir: dir.to_path_buf(),
        meta,
    }))
}
