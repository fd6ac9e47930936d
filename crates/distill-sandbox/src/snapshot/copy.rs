//! The copying snapshotter: apply the parents into a directory, let the step write there,
//! then compute the diff by comparison.
//!
//! Change detection uses the inode change time (ctime), which no process can set: `prepare`
//! copies everything, notes a ctime taken after the last copy and waits for the filesystem's
//! clock to move past it. Anything the step creates, writes, renames, links, chmods or
//! chowns then has a later ctime, exactly the set overlayfs would have copied up; deleted
//! names are those the parents show and the directory no longer has. Copies keep owners,
//! modes, times, xattrs (except overlayfs's own), device numbers and hard links.
//! This module never follows a symlink: every metadata call works on the link itself.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

use crate::error::{Error, Result};

/// Seconds and nanoseconds of an inode change time.
pub(super) type ChangeTime = (i64, i64);

/// Opaque-directory xattrs recognised in parents (either namespace, whoever wrote them).
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// Longest wait for the filesystem clock to tick (filesystems with 1-second timestamps).
const CLOCK_WAIT: Duration = Duration::from_secs(3);

/// Hard-linked sources already copied: (device, inode) → the copy.
type Links = HashMap<(u64, u64), PathBuf>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |error| Error::io(path, error)
}

fn errno(path: &Path) -> impl FnOnce(rustix::io::Errno) -> Error + '_ {
    move |errno| Error::io(path, errno)
}

fn change_time(metadata: &std::fs::Metadata) -> ChangeTime {
    (metadata.ctime(), metadata.ctime_nsec())
}

fn is_whiteout(metadata: &std::fs::Metadata) -> bool {
    FileType::from_raw_mode(metadata.mode()) == FileType::CharacterDevice && metadata.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|name| {
        let mut value = [0u8; 8];
        matches!(rustix::fs::lgetxattr(path, *name, &mut value[..]), Ok(1) if value[0] == b'y')
    })
}

fn lstat(path: &Path) -> Result<Option<std::fs::Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) => Ok(Some(metadata)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Error::io(path, error)),
    }
}

fn remove_any(path: &Path) -> Result<()> {
    match lstat(path)? {
        None => Ok(()),
        Some(metadata) if metadata.is_dir() => std::fs::remove_dir_all(path).map_err(io(path)),
        Some(_) => std::fs::remove_file(path).map_err(io(path)),
    }
}

fn sorted_names(dir: &Path) -> Result<Vec<OsString>> {
    let mut names = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io(dir))?;
    names.sort();
    Ok(names)
}

/// What `prepare` leaves for `diff`.
#[derive(Debug)]
pub(super) struct Prepared {
    /// Anything with a later change time was touched by the step.
    changed_after: ChangeTime,
    /// The inode of every directory the parents put in the root, by root-relative path.
    /// Moving a directory leaves its entries' change times alone, so a directory found at a
    /// path it was not prepared at was moved or made there by the step, and all it holds
    /// belongs to the diff.
    directories: HashMap<PathBuf, u64>,
}

/// Where the copy lives in the scratch directory.
pub(super) fn rootfs_in(work: &Path) -> PathBuf {
    work.join("rootfs")
}

/// Applies `parents` (bottom first) into `WORK/rootfs` and notes what `diff` will need.
pub(super) fn prepare(parents: &[PathBuf], work: &Path) -> Result<Prepared> {
    let rootfs = rootfs_in(work);
    std::fs::create_dir(&rootfs).map_err(io(&rootfs))?;
    let mut links = Links::new();
    for parent in parents {
        apply_layer(parent, &rootfs, &mut links)?;
    }
    let mut directories = HashMap::new();
    record_directories(&rootfs, Path::new(""), &mut directories)?;
    // Every copy is older than this marker; wait until the clock has moved past it, so what
    // the step touches is strictly newer.
    let marker = work.join("prepared");
    std::fs::write(&marker, b"").map_err(io(&marker))?;
    let prepared_at = change_time(&std::fs::symlink_metadata(&marker).map_err(io(&marker))?);
    let tick = work.join("tick");
    let started = Instant::now();
    loop {
        std::fs::write(&tick, b"").map_err(io(&tick))?;
        let now = change_time(&std::fs::symlink_metadata(&tick).map_err(io(&tick))?);
        if now > prepared_at {
            break;
        }
        if started.elapsed() > CLOCK_WAIT {
            return Err(Error::io(
                &tick,
                std::io::Error::other("the filesystem's change time does not advance"),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for file in [&marker, &tick] {
        std::fs::remove_file(file).map_err(io(file))?;
    }
    Ok(Prepared {
        changed_after: prepared_at,
        directories,
    })
}

fn record_directories(rootfs: &Path, rel: &Path, found: &mut HashMap<PathBuf, u64>) -> Result<()> {
    let here = rootfs.join(rel);
    for name in sorted_names(&here)? {
        let path = here.join(&name);
        let metadata = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        if metadata.is_dir() {
            let child = rel.join(&name);
            found.insert(child.clone(), metadata.ino());
            record_directories(rootfs, &child, found)?;
        }
    }
    Ok(())
}

/// Applies one layer in overlayfs format onto `target`.
fn apply_layer(layer: &Path, target: &Path, links: &mut Links) -> Result<()> {
    for name in sorted_names(layer)? {
        let source = layer.join(&name);
        let destination = target.join(&name);
        let metadata = std::fs::symlink_metadata(&source).map_err(io(&source))?;
        if is_whiteout(&metadata) {
            remove_any(&destination)?;
            continue;
        }
        if metadata.is_dir() {
            let existing = lstat(&destination)?;
            let keep = existing.is_some_and(|existing| existing.is_dir()) && !is_opaque(&source);
            if !keep {
                remove_any(&destination)?;
                std::fs::create_dir(&destination).map_err(io(&destination))?;
            }
            apply_layer(&source, &destination, links)?;
            copy_metadata(&source, &destination, &metadata)?;
        } else {
            remove_any(&destination)?;
            copy_entry(&source, &destination, &metadata, links)?;
        }
    }
    Ok(())
}

/// Copies one non-directory (regular file, symlink, device, fifo, socket) with its metadata.
fn copy_entry(
    source: &Path,
    destination: &Path,
    metadata: &std::fs::Metadata,
    links: &mut Links,
) -> Result<()> {
    let file_type = FileType::from_raw_mode(metadata.mode());
    let key = (metadata.dev(), metadata.ino());
    if file_type != FileType::Directory && metadata.nlink() > 1 {
        if let Some(first) = links.get(&key) {
            return std::fs::hard_link(first, destination).map_err(io(destination));
        }
    }
    match file_type {
        FileType::RegularFile => {
            std::fs::copy(source, destination).map_err(io(source))?;
        }
        FileType::Symlink => {
            let points_to = std::fs::read_link(source).map_err(io(source))?;
            std::os::unix::fs::symlink(points_to, destination).map_err(io(destination))?;
        }
        FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo | FileType::Socket => {
            rustix::fs::mknodat(
                CWD,
                destination,
                file_type,
                Mode::from_raw_mode(metadata.mode() & 0o7777),
                metadata.rdev(),
            )
            .map_err(errno(destination))?;
        }
        FileType::Directory | FileType::Unknown => {
            return Err(Error::io(
                source,
                std::io::Error::other("unexpected file type"),
            ));
        }
    }
    copy_metadata(source, destination, metadata)?;
    if metadata.nlink() > 1 {
        links.insert(key, destination.to_owned());
    }
    Ok(())
}

/// Moves a non-directory into the diff: a rename keeps its owner, mode, times, xattrs and
/// hard links (the other names of a touched inode are touched too, and moved alike) without
/// copying a byte.
fn move_entry(source: &Path, destination: &Path, metadata: &std::fs::Metadata) -> Result<()> {
    match std::fs::rename(source, destination) {
        Ok(()) => Ok(()),
        // Different filesystems (a view spread over mounts): copy instead.
        Err(error) if error.raw_os_error() == Some(libc::EXDEV) => {
            copy_entry(source, destination, metadata, &mut Links::new())
        }
        Err(error) => Err(Error::io(source, error)),
    }
}

/// Owner, xattrs, mode and times of `source` onto `destination` (in that order: `chown`
/// clears set-id bits, and each change moves the times).
fn copy_metadata(source: &Path, destination: &Path, metadata: &std::fs::Metadata) -> Result<()> {
    let file_type = FileType::from_raw_mode(metadata.mode());
    let current = std::fs::symlink_metadata(destination).map_err(io(destination))?;
    if current.uid() != metadata.uid() || current.gid() != metadata.gid() {
        rustix::fs::chownat(
            CWD,
            destination,
            Some(rustix::fs::Uid::from_raw(metadata.uid())),
            Some(rustix::fs::Gid::from_raw(metadata.gid())),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|errno| {
            Error::io(
                destination,
                std::io::Error::other(format!(
                    "cannot give it owner {}:{} ({errno}); the copying snapshotter needs root \
                     for files owned by other ids",
                    metadata.uid(),
                    metadata.gid()
                )),
            )
        })?;
    }
    copy_xattrs(source, destination)?;
    if file_type != FileType::Symlink {
        rustix::fs::chmodat(
            CWD,
            destination,
            Mode::from_raw_mode(metadata.mode() & 0o7777),
            AtFlags::empty(),
        )
        .map_err(errno(destination))?;
    }
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: metadata.atime(),
            tv_nsec: metadata.atime_nsec() as _,
        },
        last_modification: Timespec {
            tv_sec: metadata.mtime(),
            tv_nsec: metadata.mtime_nsec() as _,
        },
    };
    rustix::fs::utimensat(CWD, destination, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno(destination))
}

fn copy_xattrs(source: &Path, destination: &Path) -> Result<()> {
    let mut names = vec![0u8; 4096];
    let length = loop {
        match rustix::fs::llistxattr(source, &mut names[..]) {
            Ok(length) => break length,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            // The filesystem has no xattrs at all.
            Err(rustix::io::Errno::NOTSUP) => return Ok(()),
            Err(errno) => return Err(Error::io(source, errno)),
        }
    };
    for name in names[..length]
        .split(|&byte| byte == 0)
        .filter(|name| !name.is_empty())
    {
        let name = OsStr::from_bytes(name);
        let text = name.to_string_lossy();
        if text.starts_with("trusted.overlay.") || text.starts_with("user.overlay.") {
            continue;
        }
        let mut value = vec![0u8; 4096];
        let size = loop {
            match rustix::fs::lgetxattr(source, name, &mut value[..]) {
                Ok(size) => break size,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(errno) => return Err(Error::io(source, errno)),
            }
        };
        rustix::fs::lsetxattr(
            destination,
            name,
            &value[..size],
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|errno| {
            Error::io(
                destination,
                std::io::Error::other(format!("setting xattr {text}: {errno}")),
            )
        })?;
    }
    Ok(())
}

/// What the parents show at one name of a directory.
enum Lower {
    /// A directory, built from these layer directories (top first).
    Dir(Vec<PathBuf>),
    /// Something else (file, symlink, device).
    Other,
}

/// The names the parents show in a directory made of `layers` (top first).
fn merged_listing(layers: &[PathBuf]) -> Result<BTreeMap<OsString, Lower>> {
    let mut seen: BTreeMap<OsString, Option<Lower>> = BTreeMap::new();
    for (depth, layer) in layers.iter().enumerate() {
        for name in sorted_names(layer)? {
            if seen.contains_key(&name) {
                continue;
            }
            let path = layer.join(&name);
            let metadata = std::fs::symlink_metadata(&path).map_err(io(&path))?;
            let shown = if is_whiteout(&metadata) {
                None
            } else if metadata.is_dir() {
                Some(Lower::Dir(directory_layers(&name, &layers[depth..])?))
            } else {
                Some(Lower::Other)
            };
            seen.insert(name, shown);
        }
    }
    Ok(seen
        .into_iter()
        .filter_map(|(name, shown)| shown.map(|shown| (name, shown)))
        .collect())
}

/// The layer directories that make up directory `name`, given the layers of its parent from
/// the topmost one that has it: downwards until an opaque one or one where it is not a
/// directory.
fn directory_layers(name: &OsStr, layers: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for layer in layers {
        let path = layer.join(name);
        let Some(metadata) = lstat(&path)? else {
            continue;
        };
        if !metadata.is_dir() {
            break;
        }
        let opaque = is_opaque(&path);
        found.push(path);
        if opaque {
            break;
        }
    }
    Ok(found)
}

/// Moves into `upper` what the step changed in `rootfs` relative to `parents`, leaving
/// `rootfs` to be thrown away. Deletions are whiteouts; a directory the step put where the
/// parents had one is marked opaque with `opaque_xattr` (whiteouts for what it hides if the
/// filesystem refuses the xattr).
pub(super) fn diff(
    parents: &[PathBuf],
    rootfs: &Path,
    upper: &Path,
    prepared: &Prepared,
    opaque_xattr: &str,
) -> Result<()> {
    std::fs::create_dir_all(upper).map_err(io(upper))?;
    // Read before entries are moved out of it.
    let root_metadata = std::fs::symlink_metadata(rootfs).map_err(io(rootfs))?;
    let layers: Vec<PathBuf> = parents.iter().rev().cloned().collect();
    let mut differ = Differ {
        rootfs: rootfs.to_owned(),
        upper: upper.to_owned(),
        prepared,
        opaque_xattr,
    };
    differ.directory(Path::new(""), &layers, false)?;
    if change_time(&root_metadata) > prepared.changed_after {
        copy_metadata(rootfs, upper, &root_metadata)?;
    }
    Ok(())
}

struct Differ<'a> {
    rootfs: PathBuf,
    upper: PathBuf,
    prepared: &'a Prepared,
    opaque_xattr: &'a str,
}

impl Differ<'_> {
    /// Compares directory `rel` of the step's root with the parents' (made of `layers`);
    /// `moved`: the step put this directory here, so everything in it is new. Returns
    /// whether it wrote anything under `upper/rel`.
    fn directory(&mut self, rel: &Path, layers: &[PathBuf], moved: bool) -> Result<bool> {
        let here = self.rootfs.join(rel);
        let mut lower = merged_listing(layers)?;
        let mut wrote = false;
        for name in sorted_names(&here)? {
            let shown = lower.remove(&name);
            let child_rel = rel.join(&name);
            let path = here.join(&name);
            let metadata = std::fs::symlink_metadata(&path).map_err(io(&path))?;
            let touched = change_time(&metadata) > self.prepared.changed_after;
            if metadata.is_dir() {
                let child_moved =
                    moved || self.prepared.directories.get(&child_rel) != Some(&metadata.ino());
                let child_layers = match shown {
                    Some(Lower::Dir(child_layers)) => child_layers,
                    _ => Vec::new(),
                };
                let changed = touched || child_moved;
                if changed {
                    self.ensure_dir(&child_rel)?;
                }
                let below = self.directory(&child_rel, &child_layers, child_moved)?;
                if changed || below {
                    copy_metadata(&path, &self.upper.join(&child_rel), &metadata)?;
                    wrote = true;
                }
            } else if moved || touched || shown.is_none() {
                if let Some(parent) = child_rel.parent() {
                    self.ensure_dir(parent)?;
                }
                move_entry(&path, &self.upper.join(&child_rel), &metadata)?;
                wrote = true;
            }
        }
        if moved && !lower.is_empty() {
            // It replaced a directory of the parents: hide that one whole, as overlayfs does.
            self.ensure_dir(rel)?;
            let dir = self.upper.join(rel);
            let marked = rustix::fs::lsetxattr(
                &dir,
                self.opaque_xattr,
                b"y",
                rustix::fs::XattrFlags::empty(),
            );
            if marked.is_ok() {
                return Ok(true);
            }
        }
        for (name, _) in lower {
            self.ensure_dir(rel)?;
            let whiteout = self.upper.join(rel).join(&name);
            rustix::fs::mknodat(CWD, &whiteout, FileType::CharacterDevice, Mode::empty(), 0)
                .map_err(errno(&whiteout))?;
            wrote = true;
        }
        Ok(wrote)
    }

    fn ensure_dir(&self, rel: &Path) -> Result<()> {
        let path = self.upper.join(rel);
        std::fs::create_dir_all(&path).map_err(io(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(path: &Path, content: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }

    fn whiteout(path: &Path) {
        rustix::fs::mknodat(CWD, path, FileType::CharacterDevice, Mode::empty(), 0)
            .expect("whiteout");
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(current) = stack.pop() {
            for entry in std::fs::read_dir(&current).expect("read_dir") {
                let entry = entry.expect("entry");
                let path = entry.path();
                let metadata = std::fs::symlink_metadata(&path).expect("lstat");
                let rel = path
                    .strip_prefix(dir)
                    .expect("prefix")
                    .display()
                    .to_string();
                let kind = if is_whiteout(&metadata) {
                    "whiteout".to_owned()
                } else if metadata.is_dir() {
                    stack.push(path.clone());
                    "dir".to_owned()
                } else {
                    format!(
                        "file:{}",
                        std::fs::read_to_string(&path).unwrap_or_default()
                    )
                };
                found.push(format!("{rel} {kind}"));
            }
        }
        found.sort();
        found
    }

    /// Needs whiteouts to be creatable: root, or Linux ≥ 5.8.
    #[test]
    fn applies_layers_and_diffs_changes() {
        let temp = tempfile::tempdir().expect("tempdir");
        let base = temp.path().join("base");
        let top = temp.path().join("top");
        write(&base.join("etc/keep"), "keep");
        write(&base.join("etc/gone"), "gone");
        write(&base.join("etc/edit"), "old");
        write(&base.join("opt/a/x"), "x");
        write(&base.join("var/old"), "old");
        write(&base.join("site/index"), "new");
        write(&base.join("srv/index"), "old");
        write(&base.join("srv/other"), "old");
        write(&top.join("var/new"), "new");
        std::fs::create_dir_all(top.join("etc")).expect("mkdir");
        whiteout(&top.join("etc/gone"));
        std::fs::create_dir_all(top.join("opt")).expect("mkdir");
        whiteout(&top.join("opt/a"));
        let view = temp.path().join("view");
        std::fs::create_dir(&view).expect("mkdir");
        let prepared = prepare(&[base.clone(), top.clone()], &view).expect("prepare");
        let rootfs = view.join("rootfs");
        assert_eq!(
            listing(&rootfs),
            [
                "etc dir",
                "etc/edit file:old",
                "etc/keep file:keep",
                "opt dir",
                "site dir",
                "site/index file:new",
                "srv dir",
                "srv/index file:old",
                "srv/other file:old",
                "var dir",
                "var/new file:new",
                "var/old file:old",
            ]
        );
        // The step: edit, delete a lower file, delete a directory, add a file, chmod, and
        // move a directory over another (its entries keep their change times).
        std::fs::write(rootfs.join("etc/edit"), "new").expect("edit");
        std::fs::remove_file(rootfs.join("var/old")).expect("rm");
        std::fs::remove_dir(rootfs.join("opt")).expect("rmdir");
        write(&rootfs.join("data/file"), "data");
        std::fs::set_permissions(
            rootfs.join("etc/keep"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        std::fs::remove_dir_all(rootfs.join("srv")).expect("rm srv");
        std::fs::rename(rootfs.join("site"), rootfs.join("srv")).expect("mv");
        let upper = view.join("upper");
        diff(
            &[base, top],
            &rootfs,
            &upper,
            &prepared,
            "user.overlay.opaque",
        )
        .expect("diff");
        assert_eq!(
            listing(&upper),
            [
                "data dir",
                "data/file file:data",
                "etc dir",
                "etc/edit file:new",
                "etc/keep file:keep",
                "opt whiteout",
                "site whiteout",
                "srv dir",
                "srv/index file:new",
                "var dir",
                "var/old whiteout",
            ]
        );
        let mode = std::fs::symlink_metadata(upper.join("etc/keep"))
            .expect("lstat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            is_opaque(&upper.join("srv")),
            "the moved directory hides the old one"
        );
        assert!(!is_opaque(&upper.join("etc")));
    }
}
