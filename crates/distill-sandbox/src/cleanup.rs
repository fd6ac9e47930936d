//! Host-side clean-up after a run: remove the mount points the init had to create, and
//! remove whole scratch trees.
//!
//! The directories cleaned were written by the sandboxed command, which may have planted
//! symlinks anywhere: every lookup here uses `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`
//! from the directory's own descriptor and never follows a symlink.

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timestamps};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::proto::{MountStub, SavedTimes};

fn open_beneath(root: &OwnedFd, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let path: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        root,
        path,
        flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS,
    )
}

/// Removes, from the directory that received the run's writes, each stub that is still
/// empty, newest first (only the files with `keep_directories`), then restores the times of
/// the directories they were created in.
pub(crate) fn remove_stubs(
    writable: &Path,
    stubs: &[MountStub],
    parents: &[SavedTimes],
    keep_directories: bool,
) -> Result<()> {
    if stubs.is_empty() {
        return Ok(());
    }
    let root = rustix::fs::open(
        writable,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| Error::io(writable, errno))?;
    // The directories' times as the command left them, before removing stubs changes them.
    let as_left: Vec<Option<rustix::fs::Stat>> = parents
        .iter()
        .map(|saved| {
            open_beneath(&root, &saved.path, OFlags::PATH | OFlags::DIRECTORY)
                .and_then(rustix::fs::fstat)
                .ok()
        })
        .collect();
    for stub in stubs.iter().rev() {
        let (Some(parent), Some(name)) = (stub.path.parent(), stub.path.file_name()) else {
            continue;
        };
        let Ok(parent_fd) = open_beneath(&root, parent, OFlags::PATH | OFlags::DIRECTORY) else {
            continue;
        };
        let Ok(stat) = rustix::fs::statat(&parent_fd, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let file_type = FileType::from_raw_mode(stat.st_mode);
        let removal = if stub.is_dir && keep_directories {
            continue;
        } else if stub.is_dir && file_type == FileType::Directory {
            rustix::fs::unlinkat(&parent_fd, name, AtFlags::REMOVEDIR)
        } else if !stub.is_dir && file_type == FileType::RegularFile && stat.st_size == 0 {
            rustix::fs::unlinkat(&parent_fd, name, AtFlags::empty())
        } else {
            continue;
        };
        match removal {
            // Not empty any more: the command put something there, it belongs to the diff.
            Ok(()) | Err(Errno::NOTEMPTY) | Err(Errno::NOENT) => {}
            Err(errno) => return Err(Error::io(writable.join(&stub.path), errno)),
        }
    }
    for (saved, as_left) in parents.iter().zip(as_left) {
        let Some(as_left) = as_left else { continue };
        let Ok(dir) = open_beneath(&root, &saved.path, OFlags::RDONLY | OFlags::DIRECTORY) else {
            continue;
        };
        let left_mtime = (as_left.st_mtime, as_left.st_mtime_nsec as i64);
        let ((atime_sec, atime_nsec), (mtime_sec, mtime_nsec)) =
            if left_mtime == saved.mtime_with_stubs {
                (saved.atime, saved.mtime)
            } else {
                ((as_left.st_atime, as_left.st_atime_nsec as i64), left_mtime)
            };
        let times = Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: atime_sec,
                tv_nsec: atime_nsec as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: mtime_sec,
                tv_nsec: mtime_nsec as _,
            },
        };
        rustix::fs::futimens(&dir, &times)
            .map_err(|errno| Error::io(writable.join(&saved.path), errno))?;
    }
    Ok(())
}

/// Removes `path` and everything under it, making directories writable where an unprivileged
/// owner needs that (overlayfs leaves its `work/work` directory with mode 000). A missing
/// `path` is not an error.
pub fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(Error::io(path, error)),
        Ok(metadata) if !metadata.is_dir() => {
            return std::fs::remove_file(path).map_err(|error| Error::io(path, error))
        }
        Ok(_) => {}
    }
    if let Err(first) = std::fs::remove_dir_all(path) {
        if first.kind() != std::io::ErrorKind::PermissionDenied {
            return Err(Error::io(path, first));
        }
        make_directories_writable(path)?;
        std::fs::remove_dir_all(path).map_err(|error| Error::io(path, error))?;
    }
    Ok(())
}

fn make_directories_writable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::symlink_metadata(dir).map_err(|error| Error::io(dir, error))?;
    if !metadata.is_dir() {
        return Ok(());
    }
    let mode = metadata.permissions().mode();
    if mode & 0o700 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700))
            .map_err(|error| Error::io(dir, error))?;
    }
    let entries = std::fs::read_dir(dir).map_err(|error| Error::io(dir, error))?;
    for entry in entries {
        let entry = entry.map_err(|error| Error::io(dir, error))?;
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            make_directories_writable(&entry.path())?;
        }
    }
    Ok(())
}
