//! Snapshotters: a writable view on parent snapshots for one step, and the diff it leaves.
//!
//! The interface is containerd's: `prepare` a [`View`] on parents, run the step on its
//! [`View::rootfs`], then `commit` it to a [`Diff`] (or `remove` it). Parents and diffs share
//! one format, overlayfs's upper directory: a deleted path is a character device 0/0 of the
//! same name, a directory that hides everything below it carries the opaque xattr
//! ([`Snapshotter::opaque_xattr`]) set to `y`. A committed diff can be the parent of the next
//! step as is. Two kinds sit behind the interface:
//! - [`SnapshotterKind::Overlay`]: the upper directory of an overlayfs mount is the diff;
//!   nothing is copied.
//! - [`SnapshotterKind::Copy`], where overlayfs cannot be mounted (kernel older than 5.11 in
//!   a user namespace, snapshots on a filesystem overlayfs refuses as upper): the parents are
//!   applied into a plain directory, the step runs there, and the diff is computed by
//!   comparing that directory with the parents (see `copy`).
//!
//! A snapshotter never writes to a parent.

mod copy;

use std::path::{Path, PathBuf};

use crate::cleanup::remove_tree;
use crate::error::{Error, Result};
use crate::run::Sandbox;
use crate::spec::Rootfs;

/// Which way views are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotterKind {
    Overlay,
    Copy,
}

/// Makes views on parent snapshots.
#[derive(Clone, Debug)]
pub struct Snapshotter {
    kind: SnapshotterKind,
    opaque_xattr: &'static str,
}

impl Snapshotter {
    /// Overlayfs when a probe mount in `scratch` (on the filesystem the snapshots live on)
    /// works, copying otherwise; the second value says why overlayfs was not chosen.
    pub fn detect(sandbox: &Sandbox, scratch: &Path) -> Result<(Snapshotter, Option<String>)> {
        let refusal = sandbox.probe_overlay(scratch)?;
        let kind = if refusal.is_none() {
            SnapshotterKind::Overlay
        } else {
            SnapshotterKind::Copy
        };
        Ok((Snapshotter::new(sandbox, kind), refusal))
    }

    /// A snapshotter of the given kind for `sandbox`'s id mapping.
    pub fn new(sandbox: &Sandbox, kind: SnapshotterKind) -> Snapshotter {
        Snapshotter {
            kind,
            opaque_xattr: sandbox.overlay_opaque_xattr(),
        }
    }

    pub fn kind(&self) -> SnapshotterKind {
        self.kind
    }

    /// The xattr that marks an opaque directory in parents and diffs.
    pub fn opaque_xattr(&self) -> &'static str {
        self.opaque_xattr
    }

    /// A writable view on `parents` (bottom first) kept in `dir`, which must not exist yet
    /// or be empty.
    pub fn prepare(&self, parents: &[PathBuf], dir: &Path) -> Result<View> {
        std::fs::create_dir_all(dir).map_err(|error| Error::io(dir, error))?;
        let is_empty = std::fs::read_dir(dir)
            .map_err(|error| Error::io(dir, error))?
            .next()
            .is_none();
        if !is_empty {
            return Err(Error::io(
                dir,
                std::io::Error::other("a new snapshot's directory must be empty"),
            ));
        }
        let prepared = match self.kind {
            SnapshotterKind::Overlay => {
                for sub in ["upper", "work"] {
                    let path = dir.join(sub);
                    std::fs::create_dir(&path).map_err(|error| Error::io(&path, error))?;
                }
                None
            }
            SnapshotterKind::Copy => Some(copy::prepare(parents, dir)?),
        };
        Ok(View {
            kind: self.kind,
            parents: parents.to_vec(),
            dir: dir.to_owned(),
            prepared,
            opaque_xattr: self.opaque_xattr,
        })
    }
}

/// A writable view on parent snapshots, for one step.
#[derive(Debug)]
pub struct View {
    kind: SnapshotterKind,
    parents: Vec<PathBuf>,
    dir: PathBuf,
    /// Copy kind: what the comparison after the step needs.
    prepared: Option<copy::Prepared>,
    opaque_xattr: &'static str,
}

impl View {
    /// The root to give the sandbox.
    pub fn rootfs(&self) -> Rootfs {
        match self.kind {
            SnapshotterKind::Overlay => Rootfs::Overlay {
                lower: self.parents.clone(),
                upper: self.dir.join("upper"),
                work: self.dir.join("work"),
            },
            SnapshotterKind::Copy => Rootfs::Directory(self.dir.join("rootfs")),
        }
    }

    /// Turns the view into its diff, `DIR/upper`, and drops everything else.
    pub fn commit(self) -> Result<Diff> {
        let upper = self.dir.join("upper");
        match (self.kind, &self.prepared) {
            (SnapshotterKind::Overlay, _) => remove_tree(&self.dir.join("work"))?,
            (SnapshotterKind::Copy, Some(prepared)) => {
                let rootfs = self.dir.join("rootfs");
                copy::diff(&self.parents, &rootfs, &upper, prepared, self.opaque_xattr)?;
                remove_tree(&rootfs)?;
            }
            (SnapshotterKind::Copy, None) => {
                return Err(Error::io(
                    &self.dir,
                    std::io::Error::other("copy view without its preparation record"),
                ))
            }
        }
        Ok(Diff {
            path: upper,
            opaque_xattr: self.opaque_xattr,
        })
    }

    /// Throws the view away.
    pub fn remove(self) -> Result<()> {
        remove_tree(&self.dir)
    }
}

/// What a step changed, in overlayfs's upper directory format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    pub path: PathBuf,
    /// The xattr marking opaque directories in `path`.
    pub opaque_xattr: &'static str,
}
