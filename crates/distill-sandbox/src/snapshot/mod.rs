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
    /// or be empty: the diff will be `DIR/upper`, the snapshotter's scratch is `DIR/work`.
    pub fn prepare(&self, parents: &[PathBuf], dir: &Path) -> Result<View> {
        std::fs::create_dir_all(dir).map_err(|error| Error::io(dir, error))?;
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for path in [&upper, &work] {
            std::fs::create_dir(path).map_err(|error| Error::io(path, error))?;
        }
        let mut view = self.prepare_in(parents, &upper, &work)?;
        view.dir = Some(dir.to_owned());
        Ok(view)
    }

    /// A writable view on `parents` (bottom first) whose diff goes to `upper`, with `work`
    /// as the snapshotter's scratch (overlayfs's work directory, or the copy): both must
    /// exist, be empty and be on one filesystem. For a store that lays out its own
    /// directories; `commit` and `remove` leave both directories in place.
    pub fn prepare_in(&self, parents: &[PathBuf], upper: &Path, work: &Path) -> Result<View> {
        for path in [upper, work] {
            let is_empty = std::fs::read_dir(path)
                .map_err(|error| Error::io(path, error))?
                .next()
                .is_none();
            if !is_empty {
                return Err(Error::io(
                    path,
                    std::io::Error::other("a new snapshot's directories must be empty"),
                ));
            }
        }
        let parents = topmost_occurrences(parents);
        let prepared = match self.kind {
            SnapshotterKind::Overlay => None,
            SnapshotterKind::Copy => Some(copy::prepare(&parents, work)?),
        };
        Ok(View {
            kind: self.kind,
            parents,
            upper: upper.to_owned(),
            work: work.to_owned(),
            dir: None,
            prepared,
            opaque_xattr: self.opaque_xattr,
        })
    }
}

/// `parents` (bottom first) with each directory kept only where it is topmost.
///
/// Layers are stored by content, so two steps with the same diff (two `RUN true`, or a
/// `WORKDIR` that exists) share one directory, and overlayfs refuses a lower directory named
/// twice (ELOOP). Dropping the lower occurrences changes nothing a process sees: every path,
/// whiteout and opaque mark of the lower copy is also in the upper one, which covers it.
fn topmost_occurrences(parents: &[PathBuf]) -> Vec<PathBuf> {
    let mut kept: Vec<PathBuf> = Vec::with_capacity(parents.len());
    for (index, parent) in parents.iter().enumerate() {
        if !parents[index + 1..].contains(parent) {
            kept.push(parent.clone());
        }
    }
    kept
}

/// A writable view on parent snapshots, for one step.
#[derive(Debug)]
pub struct View {
    kind: SnapshotterKind,
    parents: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
    /// The directory `prepare` made, removed with the view.
    dir: Option<PathBuf>,
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
                upper: self.upper.clone(),
                work: self.work.clone(),
            },
            SnapshotterKind::Copy => Rootfs::Directory(copy::rootfs_in(&self.work)),
        }
    }

    /// Turns the view into its diff (the upper directory) and empties the scratch.
    pub fn commit(self) -> Result<Diff> {
        if let (SnapshotterKind::Copy, Some(prepared)) = (self.kind, &self.prepared) {
            let rootfs = copy::rootfs_in(&self.work);
            copy::diff(
                &self.parents,
                &rootfs,
                &self.upper,
                prepared,
                self.opaque_xattr,
            )?;
        }
        self.clear_work()?;
        Ok(Diff {
            path: self.upper.clone(),
            opaque_xattr: self.opaque_xattr,
        })
    }

    /// Throws the view away: all of `prepare`'s directory, or the scratch of `prepare_in`'s
    /// (the caller owns the upper directory then).
    pub fn remove(self) -> Result<()> {
        match &self.dir {
            Some(dir) => remove_tree(dir),
            None => self.clear_work(),
        }
    }

    /// Empties the scratch directory; removes it too when `prepare` made it.
    fn clear_work(&self) -> Result<()> {
        if self.dir.is_some() {
            return remove_tree(&self.work);
        }
        let entries =
            std::fs::read_dir(&self.work).map_err(|error| Error::io(&self.work, error))?;
        for entry in entries {
            let entry = entry.map_err(|error| Error::io(&self.work, error))?;
            remove_tree(&entry.path())?;
        }
        Ok(())
    }
}

/// What a step changed, in overlayfs's upper directory format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    pub path: PathBuf,
    /// The xattr marking opaque directories in `path`.
    pub opaque_xattr: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_named_twice_is_kept_where_it_is_topmost() {
        let paths = |names: &[&str]| names.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            topmost_occurrences(&paths(&["base", "empty", "a", "empty", "b"])),
            paths(&["base", "a", "empty", "b"])
        );
        assert_eq!(
            topmost_occurrences(&paths(&["base", "x", "x"])),
            paths(&["base", "x"])
        );
    }
}
