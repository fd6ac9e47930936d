//! Extracting a layer into a snapshot directory, safely.
//!
//! Never writes outside the target directory. Every entry's parent is resolved one component at
//! a time from a descriptor of the target, with `O_NOFOLLOW`; a symlink met on the way is
//! followed only while it stays inside the target (an absolute target, or `..` climbing above the
//! root, is refused), and the final component is created with `*at` calls that do not follow
//! symlinks. Entry names that are absolute or contain `..` are refused, and so are hardlinks to
//! anything not already extracted. A refused archive stops extraction with an error naming the
//! entry; what was extracted before stays in the target, which the caller deletes.
//!
//! OCI whiteouts are either applied ([`Whiteouts::Apply`]: `.wh.x` deletes `x` from lower layers,
//! `.wh..wh..opq` empties its directory of lower content, keeping what this layer wrote) or kept
//! as overlayfs whiteouts ([`Whiteouts::Overlay`]: a 0/0 character device, an `overlay.opaque`
//! xattr) so the directory can serve as an overlay lower layer.
//!
//! Metadata: owner (chown; when the kernel refuses — not root, or ids outside our user namespace
//! — extraction goes on and the report counts it), mode with setuid/setgid/sticky (after chown,
//! which clears them), xattrs, mtimes (directories' last, once their contents are in place).
//! Device nodes that cannot be created are skipped with a warning.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::digest::Sha256Digest;
use crate::error::LayerError;
use crate::read::{LayerReader, ReadDigests};
use crate::tar::{EntryHeader, EntryKind, TarReader};

/// Symlinks followed while resolving one path before giving up, as the kernel's limit.
const MAX_SYMLINKS: usize = 40;
/// Warnings kept in the report; more are only counted.
const MAX_WARNINGS: usize = 100;

/// Which xattr namespace overlayfs reads opaque markers from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayXattrs {
    /// `trusted.overlay.*`: overlayfs mounted by real root.
    Trusted,
    /// `user.overlay.*`: overlayfs mounted with `userxattr` in a user namespace.
    User,
}

/// What to do with OCI whiteouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Whiteouts {
    /// Delete what they name: for extracting layers on top of each other into one directory.
    #[default]
    Apply,
    /// Turn them into overlayfs whiteouts: for a directory holding one layer, to be an overlay
    /// lower directory.
    Overlay(OverlayXattrs),
}

/// How to extract. Defaults: apply whiteouts, check nothing beyond the format.
#[derive(Clone, Debug, Default)]
pub struct ExtractOptions {
    pub whiteouts: Whiteouts,
    /// Fail unless the uncompressed stream hashes to this (checked once all is read).
    pub expected_diff_id: Option<Sha256Digest>,
    /// Fail unless the blob hashes to this (checked once all is read).
    pub expected_digest: Option<Sha256Digest>,
}

/// What an extraction did, beyond the files themselves.
#[derive(Clone, Debug)]
pub struct ExtractReport {
    pub digests: ReadDigests,
    /// Entries in the archive.
    pub entries: u64,
    /// Entries whose owner could not be set (not root, or ids outside our user namespace).
    pub ownership_not_kept: u64,
    /// Device nodes that could not be created.
    pub devices_skipped: u64,
    /// Human-readable notes (skipped devices, xattrs the filesystem refused), at most 100.
    pub warnings: Vec<String>,
    /// Warnings beyond the first 100.
    pub warnings_dropped: u64,
}

/// Extracts the layer `blob` (gzip, zstd or plain tar) into the existing directory `target`.
pub fn extract<R: Read>(
    blob: R,
    target: &Path,
    options: &ExtractOptions,
) -> Result<ExtractReport, LayerError> {
    let mut layer = LayerReader::new(blob)?;
    if let Some(diff_id) = options.expected_diff_id {
        layer = layer.expect_diff_id(diff_id);
    }
    if let Some(digest) = options.expected_digest {
        layer = layer.expect_digest(digest);
    }
    let mut extractor = Extractor::open(target, options.whiteouts)?;
    let entries = {
        let mut tar = TarReader::new(&mut layer);
        while let Some(mut entry) = tar.next_entry()? {
            let index = entry.index();
            extractor.apply(index, &entry.header, &mut entry.data)?;
        }
        tar.drain()?;
        tar.entries_read()
    };
    let digests = layer.finish()?;
    extractor.finish_directories()?;
    Ok(ExtractReport {
        digests,
        entries,
        ownership_not_kept: extractor.ownership_not_kept,
        devices_skipped: extractor.devices_skipped,
        warnings: extractor.warnings,
        warnings_dropped: extractor.warnings_dropped,
    })
}

/// Why an entry could not be applied, before it is given the entry's index and path.
enum Failure {
    Refuse(String),
    Io(&'static str, io::Error),
}

fn io_failure(operation: &'static str) -> impl Fn(Errno) -> Failure {
    move |errno| Failure::Io(operation, errno.into())
}

/// A resolved parent directory: a descriptor and its path from the root (no symlinks in it).
struct Resolved {
    fd: OwnedFd,
    path: Vec<Vec<u8>>,
}

/// A directory whose mode and mtime are set once everything is extracted.
struct PendingDir {
    /// Resolved path, `/`-separated (one allocation per directory).
    path: Vec<u8>,
    mode: u32,
    mtime: i64,
}

/// A set of paths kept as 128-bit keyed hashes: about 20 bytes an entry whatever the paths'
/// lengths, so a layer of millions of files stays small. The keys are random per extraction, so
/// a collision is out of reach of crafted names as well as of chance.
#[derive(Default)]
struct PathSet {
    keys: (RandomState, RandomState),
    hashes: HashSet<u128>,
}

impl PathSet {
    fn key(&self, path: &[u8]) -> u128 {
        (u128::from(self.keys.0.hash_one(path)) << 64) | u128::from(self.keys.1.hash_one(path))
    }

    fn insert(&mut self, path: &[u8]) {
        let key = self.key(path);
        self.hashes.insert(key);
    }

    fn contains(&self, path: &[u8]) -> bool {
        self.hashes.contains(&self.key(path))
    }
}

struct Extractor {
    root: OwnedFd,
    target: PathBuf,
    whiteouts: Whiteouts,
    /// Paths this layer wrote (as resolved), so whiteouts only remove lower content.
    written: PathSet,
    pending_dirs: Vec<PendingDir>,
    /// The last resolved parent, by the entry's literal parent components.
    cache: Option<(Vec<Vec<u8>>, Resolved)>,
    buffer: Vec<u8>,
    ownership_not_kept: u64,
    devices_skipped: u64,
    warnings: Vec<String>,
    warnings_dropped: u64,
}

/// Splits an entry's path into components, dropping empty ones and `.`; refuses absolute paths,
/// `..` and NUL bytes.
fn components(path: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if path.starts_with(b"/") {
        return Err("absolute path: entries must be relative to the layer root".to_string());
    }
    if path.contains(&0) {
        return Err("path contains a NUL byte".to_string());
    }
    let mut out = Vec::new();
    for component in path.split(|&byte| byte == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                return Err("path contains `..`: it could land outside the layer root".to_string())
            }
            _ => out.push(component.to_vec()),
        }
    }
    Ok(out)
}

fn join(path: &[Vec<u8>], name: Option<&[u8]>) -> Vec<u8> {
    let mut out = path.join(&b'/');
    if let Some(name) = name {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(name);
    }
    out
}

fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

fn os(name: &[u8]) -> &std::ffi::OsStr {
    std::ffi::OsStr::from_bytes(name)
}

fn is_dir(stat: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::Directory
}

/// The stat of `name` in `dir`, without following it; `None` if it does not exist.
fn lstat_at(dir: BorrowedFd, name: &[u8]) -> Result<Option<rustix::fs::Stat>, Errno> {
    match rustix::fs::statat(dir, os(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(errno),
    }
}

fn open_dir_path(dir: BorrowedFd, name: &[u8]) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        os(name),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn open_dir_readable(dir: BorrowedFd, name: &[u8]) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        os(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The names in a directory, without `.` and `..`.
fn dir_names(dir: BorrowedFd) -> Result<Vec<Vec<u8>>, Errno> {
    let readable = open_dir_readable(dir, b".")?;
    let mut listing = rustix::fs::Dir::read_from(&readable)?;
    let mut names = Vec::new();
    while let Some(entry) = listing.read() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes `name` in `dir` and, for a directory, everything in it. Never follows symlinks.
fn remove_all(dir: BorrowedFd, name: &[u8]) -> Result<(), Errno> {
    let Some(stat) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if is_dir(&stat) {
        let child = open_dir_path(dir, name)?;
        for grandchild in dir_names(child.as_fd())? {
            remove_all(child.as_fd(), &grandchild)?;
        }
        rustix::fs::unlinkat(dir, os(name), AtFlags::REMOVEDIR)
    } else {
        rustix::fs::unlinkat(dir, os(name), AtFlags::empty())
    }
}

/// `/proc/self/fd/<dir>/<name>`: a path to `name` in `dir` for the calls that take only paths
/// (`lsetxattr`); the final component is still not followed.
fn proc_path(dir: BorrowedFd, name: &[u8]) -> PathBuf {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    PathBuf::from(OsString::from_vec(path))
}

fn timestamps(mtime: i64) -> Timestamps {
    let time = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

impl Extractor {
    fn open(target: &Path, whiteouts: Whiteouts) -> Result<Extractor, LayerError> {
        let root = rustix::fs::open(
            target,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| LayerError::Target {
            path: target.to_path_buf(),
            source: errno.into(),
        })?;
        Ok(Extractor {
            root,
            target: target.to_path_buf(),
            whiteouts,
            written: PathSet::default(),
            pending_dirs: Vec::new(),
            cache: None,
            buffer: vec![0; 256 * 1024],
            ownership_not_kept: 0,
            devices_skipped: 0,
            warnings: Vec::new(),
            warnings_dropped: 0,
        })
    }

    fn warn(&mut self, message: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(message);
        } else {
            self.warnings_dropped += 1;
        }
    }

    fn remember(&mut self, path: Vec<u8>) {
        if self.whiteouts == Whiteouts::Apply {
            self.written.insert(&path);
        }
    }

    /// Resolves `parents` inside the root (see the module documentation). With `create`,
    /// missing directories are made (0755, like Docker); without, a missing one gives `None`.
    fn resolve(&mut self, parents: &[Vec<u8>], create: bool) -> Result<Option<Resolved>, Failure> {
        if let Some((key, resolved)) = &self.cache {
            if key.as_slice() == parents {
                let fd = resolved
                    .fd
                    .try_clone()
                    .map_err(|err| Failure::Io("dup", err))?;
                return Ok(Some(Resolved {
                    fd,
                    path: resolved.path.clone(),
                }));
            }
        }
        let mut fds: Vec<OwnedFd> = Vec::new();
        let mut path: Vec<Vec<u8>> = Vec::new();
        let mut queue: VecDeque<Vec<u8>> = parents.iter().cloned().collect();
        let mut symlinks = 0;
        // The last symlink followed, for the message if the path then climbs out of the root.
        let mut via: Option<(Vec<u8>, Vec<u8>)> = None;
        while let Some(component) = queue.pop_front() {
            match component.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if path.pop().is_none() {
                        let reason = match &via {
                            Some((link, target)) => format!(
                                "parent `{}` is a symlink to `{}`, which leads out of the layer \
                                 root",
                                shown(link),
                                shown(target)
                            ),
                            None => "its path leads out of the layer root".to_string(),
                        };
                        return Err(Failure::Refuse(reason));
                    }
                    fds.pop();
                    continue;
                }
                _ => {}
            }
            let dir = fds.last().map_or(self.root.as_fd(), |fd| fd.as_fd());
            let Some(stat) = lstat_at(dir, &component).map_err(io_failure("stat a parent"))? else {
                if !create {
                    return Ok(None);
                }
                rustix::fs::mkdirat(dir, os(&component), Mode::from_raw_mode(0o755))
                    .map_err(io_failure("create a parent directory"))?;
                let made = join(&path, Some(&component));
                self.remember(made);
                queue.push_front(component);
                continue;
            };
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => {
                    fds.push(open_dir_path(dir, &component).map_err(io_failure("open a parent"))?);
                    path.push(component);
                }
                FileType::Symlink => {
                    let link = join(&path, Some(&component));
                    symlinks += 1;
                    if symlinks > MAX_SYMLINKS {
                        return Err(Failure::Refuse(format!(
                            "too many levels of symlinks resolving parent `{}`",
                            shown(&link)
                        )));
                    }
                    let target = rustix::fs::readlinkat(dir, os(&component), Vec::new())
                        .map_err(io_failure("read a parent symlink"))?
                        .into_bytes();
                    if target.starts_with(b"/") {
                        return Err(Failure::Refuse(format!(
                            "parent `{}` is a symlink to the absolute path `{}`: refusing to \
                             follow it out of the layer root",
                            shown(&link),
                            shown(&target)
                        )));
                    }
                    via = Some((link, target.clone()));
                    for step in target.rsplit(|&byte| byte == b'/') {
                        queue.push_front(step.to_vec());
                    }
                }
                _ => {
                    return Err(Failure::Refuse(format!(
                        "parent `{}` exists and is not a directory",
                        shown(&join(&path, Some(&component)))
                    )))
                }
            }
        }
        let fd = match fds.pop() {
            Some(fd) => fd,
            None => self
                .root
                .try_clone()
                .map_err(|err| Failure::Io("dup", err))?,
        };
        let cached = Resolved {
            fd: fd.try_clone().map_err(|err| Failure::Io("dup", err))?,
            path: path.clone(),
        };
        self.cache = Some((parents.to_vec(), cached));
        Ok(Some(Resolved { fd, path }))
    }

    fn apply(
        &mut self,
        index: u64,
        header: &EntryHeader,
        data: &mut impl Read,
    ) -> Result<(), LayerError> {
        let wrap = |failure: Failure| match failure {
            Failure::Refuse(reason) => LayerError::Refused {
                index,
                path: header.display_path(),
                reason,
            },
            Failure::Io(operation, source) => LayerError::Extract {
                index,
                path: header.display_path(),
                operation: operation.to_string(),
                source,
            },
        };
        self.apply_entry(header, data).map_err(wrap)
    }

    fn apply_entry(&mut self, header: &EntryHeader, data: &mut impl Read) -> Result<(), Failure> {
        let mut parts = components(&header.path).map_err(Failure::Refuse)?;
        let Some(name) = parts.pop() else {
            // The root itself (`./`): the caller owns the target directory's metadata.
            return match header.kind {
                EntryKind::Dir => Ok(()),
                _ => Err(Failure::Refuse(
                    "only a directory can name the layer root".to_string(),
                )),
            };
        };
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            return self.apply_whiteout(&parts, hidden);
        }

        // A hardlink's target is resolved before anything at the entry's path is touched.
        let link_source = if header.kind == EntryKind::Hardlink {
            Some(self.resolve_link_target(&header.link_target)?)
        } else {
            None
        };

        let parent = self
            .resolve(&parts, true)?
            .ok_or_else(|| Failure::Refuse("parent directory missing".to_string()))?;
        let dir = parent.fd.as_fd();
        let full = join(&parent.path, Some(&name));

        if let Some(existing) = lstat_at(dir, &name).map_err(io_failure("stat"))? {
            let merge = header.kind == EntryKind::Dir && is_dir(&existing);
            if !merge {
                if let Some((_, _, source_path)) = &link_source {
                    if *source_path == full {
                        return Err(Failure::Refuse("hardlink to itself".to_string()));
                    }
                }
                remove_all(dir, &name).map_err(io_failure("remove what was there"))?;
                self.cache = None;
            }
        }

        match header.kind {
            EntryKind::File => {
                let fd = rustix::fs::openat(
                    dir,
                    os(&name),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(io_failure("create file"))?;
                let mut file = File::from(fd);
                let mut remaining = header.size;
                while remaining > 0 {
                    let want = remaining.min(self.buffer.len() as u64) as usize;
                    let read = match data.read(&mut self.buffer[..want]) {
                        Ok(0) => {
                            return Err(Failure::Io(
                                "read data",
                                io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "the archive ends inside this entry's data",
                                ),
                            ))
                        }
                        Ok(read) => read,
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                        Err(err) => return Err(Failure::Io("read data", err)),
                    };
                    file.write_all(&self.buffer[..read])
                        .map_err(|err| Failure::Io("write file", err))?;
                    remaining -= read as u64;
                }
                self.chown(
                    rustix::fs::fchown(&file, uid(header.uid)?, gid(header.gid)?),
                    &full,
                )?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(header.mode))
                    .map_err(io_failure("chmod"))?;
                for (key, value) in &header.xattrs {
                    let result = rustix::fs::fsetxattr(&file, os(key), value, XattrFlags::empty());
                    self.xattr_result(result, key, &full)?;
                }
                rustix::fs::futimens(&file, &timestamps(header.mtime))
                    .map_err(io_failure("set times"))?;
            }
            EntryKind::Dir => {
                if lstat_at(dir, &name).map_err(io_failure("stat"))?.is_none() {
                    rustix::fs::mkdirat(dir, os(&name), Mode::from_raw_mode(0o700))
                        .map_err(io_failure("create directory"))?;
                }
                let result = rustix::fs::chownat(
                    dir,
                    os(&name),
                    uid(header.uid)?,
                    gid(header.gid)?,
                    AtFlags::SYMLINK_NOFOLLOW,
                );
                self.chown(result, &full)?;
                if !header.xattrs.is_empty() {
                    let readable =
                        open_dir_readable(dir, &name).map_err(io_failure("open directory"))?;
                    for (key, value) in &header.xattrs {
                        let result =
                            rustix::fs::fsetxattr(&readable, os(key), value, XattrFlags::empty());
                        self.xattr_result(result, key, &full)?;
                    }
                }
                self.pending_dirs.push(PendingDir {
                    path: full.clone(),
                    mode: header.mode,
                    mtime: header.mtime,
                });
            }
            EntryKind::Symlink => {
                if header.link_target.is_empty() || header.link_target.contains(&0) {
                    return Err(Failure::Refuse(
                        "symlink with an empty or invalid target".to_string(),
                    ));
                }
                rustix::fs::symlinkat(os(&header.link_target), dir, os(&name))
                    .map_err(io_failure("create symlink"))?;
                self.cache = None;
                self.set_metadata_at(dir, &name, &full, header, false)?;
            }
            EntryKind::Hardlink => {
                if let Some((source_dir, source_name, _)) = &link_source {
                    rustix::fs::linkat(
                        source_dir,
                        os(source_name),
                        dir,
                        os(&name),
                        AtFlags::empty(),
                    )
                    .map_err(io_failure("create hardlink"))?;
                }
            }
            EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Fifo => {
                let (file_type, dev) = match header.kind {
                    EntryKind::CharDevice => (
                        FileType::CharacterDevice,
                        rustix::fs::makedev(header.dev_major, header.dev_minor),
                    ),
                    EntryKind::BlockDevice => (
                        FileType::BlockDevice,
                        rustix::fs::makedev(header.dev_major, header.dev_minor),
                    ),
                    _ => (FileType::Fifo, 0),
                };
                let made = rustix::fs::mknodat(
                    dir,
                    os(&name),
                    file_type,
                    Mode::from_raw_mode(header.mode & 0o777),
                    dev,
                );
                match made {
                    Ok(()) => self.set_metadata_at(dir, &name, &full, header, true)?,
                    Err(Errno::PERM | Errno::ACCESS) if header.kind != EntryKind::Fifo => {
                        self.devices_skipped += 1;
                        self.warn(format!(
                            "{}: {} {}:{} skipped: device nodes cannot be created here",
                            shown(&full),
                            header.kind,
                            header.dev_major,
                            header.dev_minor
                        ));
                        return Ok(());
                    }
                    Err(errno) => return Err(Failure::Io("create node", errno.into())),
                }
            }
        }
        self.remember(full);
        Ok(())
    }

    /// Owner, mode (unless a symlink), xattrs and mtime of a just-made non-file at `name`.
    fn set_metadata_at(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        full: &[u8],
        header: &EntryHeader,
        chmod: bool,
    ) -> Result<(), Failure> {
        let result = rustix::fs::chownat(
            dir,
            os(name),
            uid(header.uid)?,
            gid(header.gid)?,
            AtFlags::SYMLINK_NOFOLLOW,
        );
        self.chown(result, full)?;
        if chmod {
            rustix::fs::chmodat(
                dir,
                os(name),
                Mode::from_raw_mode(header.mode),
                AtFlags::empty(),
            )
            .map_err(io_failure("chmod"))?;
        }
        if !header.xattrs.is_empty() {
            let path = proc_path(dir, name);
            for (key, value) in &header.xattrs {
                let result = rustix::fs::lsetxattr(&path, os(key), value, XattrFlags::empty());
                self.xattr_result(result, key, full)?;
            }
        }
        rustix::fs::utimensat(
            dir,
            os(name),
            &timestamps(header.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io_failure("set times"))
    }

    fn chown(&mut self, result: Result<(), Errno>, _full: &[u8]) -> Result<(), Failure> {
        match result {
            Ok(()) => Ok(()),
            // Not root, or ids our user namespace does not map: the caller asked for what the
            // kernel allows; the report says how many entries kept their extractor's ownership.
            Err(Errno::PERM | Errno::INVAL) => {
                self.ownership_not_kept += 1;
                Ok(())
            }
            Err(errno) => Err(Failure::Io("chown", errno.into())),
        }
    }

    fn xattr_result(
        &mut self,
        result: Result<(), Errno>,
        key: &[u8],
        full: &[u8],
    ) -> Result<(), Failure> {
        match result {
            Ok(()) => Ok(()),
            Err(errno @ (Errno::PERM | Errno::NOTSUP | Errno::ACCESS | Errno::INVAL)) => {
                self.warn(format!(
                    "{}: xattr `{}` not set: {}",
                    shown(full),
                    shown(key),
                    io::Error::from(errno)
                ));
                Ok(())
            }
            Err(errno) => Err(Failure::Io("set xattr", errno.into())),
        }
    }

    /// The directory, name and path of an existing, non-directory hardlink target.
    fn resolve_link_target(
        &mut self,
        target: &[u8],
    ) -> Result<(OwnedFd, Vec<u8>, Vec<u8>), Failure> {
        let mut parts = components(target).map_err(|reason| {
            Failure::Refuse(format!("hardlink target `{}`: {reason}", shown(target)))
        })?;
        let missing = || {
            Failure::Refuse(format!(
                "hardlink target `{}` does not exist: a hardlink must point to an earlier entry",
                shown(target)
            ))
        };
        let name = parts.pop().ok_or_else(missing)?;
        let parent = self.resolve(&parts, false)?.ok_or_else(missing)?;
        let stat = lstat_at(parent.fd.as_fd(), &name)
            .map_err(io_failure("stat hardlink target"))?
            .ok_or_else(missing)?;
        if is_dir(&stat) {
            return Err(Failure::Refuse(format!(
                "hardlink target `{}` is a directory",
                shown(target)
            )));
        }
        let full = join(&parent.path, Some(&name));
        Ok((parent.fd, name, full))
    }

    fn apply_whiteout(&mut self, parents: &[Vec<u8>], hidden: &[u8]) -> Result<(), Failure> {
        let opaque = hidden == b".wh..opq";
        if !opaque && (hidden.is_empty() || hidden == b"." || hidden == b"..") {
            return Err(Failure::Refuse("invalid whiteout name".to_string()));
        }
        if !opaque && hidden.starts_with(b".wh.") {
            // AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): meaningless here, as for Docker.
            return Ok(());
        }
        match self.whiteouts {
            Whiteouts::Apply => {
                let Some(parent) = self.resolve(parents, false)? else {
                    return Ok(()); // Nothing below to hide.
                };
                self.cache = None;
                if opaque {
                    self.clear_lower(parent.fd.as_fd(), &join(&parent.path, None))
                        .map_err(io_failure("empty an opaque directory"))
                } else if self.written.contains(&join(&parent.path, Some(hidden))) {
                    Ok(()) // Written by this very layer: whiteouts only hide lower layers.
                } else {
                    remove_all(parent.fd.as_fd(), hidden).map_err(io_failure("apply whiteout"))
                }
            }
            Whiteouts::Overlay(namespace) => {
                let parent = self
                    .resolve(parents, true)?
                    .ok_or_else(|| Failure::Refuse("parent directory missing".to_string()))?;
                let dir = parent.fd.as_fd();
                if opaque {
                    let key: &[u8] = match namespace {
                        OverlayXattrs::Trusted => b"trusted.overlay.opaque",
                        OverlayXattrs::User => b"user.overlay.opaque",
                    };
                    let readable =
                        open_dir_readable(dir, b".").map_err(io_failure("open directory"))?;
                    rustix::fs::fsetxattr(&readable, os(key), b"y", XattrFlags::empty())
                        .map_err(io_failure("mark directory opaque"))
                } else {
                    remove_all(dir, hidden).map_err(io_failure("replace with a whiteout"))?;
                    self.cache = None;
                    rustix::fs::mknodat(
                        dir,
                        os(hidden),
                        FileType::CharacterDevice,
                        Mode::empty(),
                        rustix::fs::makedev(0, 0),
                    )
                    .map_err(io_failure("create overlay whiteout"))
                }
            }
        }
    }

    /// Removes from `dir` (at `path`) everything this layer did not write, recursing into the
    /// directories it did write, which may still hold lower content.
    fn clear_lower(&self, dir: BorrowedFd, path: &[u8]) -> Result<(), Errno> {
        for name in dir_names(dir)? {
            let mut child = path.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            if !self.written.contains(&child) {
                remove_all(dir, &name)?;
            } else if lstat_at(dir, &name)?.is_some_and(|stat| is_dir(&stat)) {
                let sub = open_dir_path(dir, &name)?;
                self.clear_lower(sub.as_fd(), &child)?;
            }
        }
        Ok(())
    }

    /// Sets directories' modes and mtimes, children before parents, now that nothing more will
    /// be created in them. When a directory appears twice, its last entry wins; a directory
    /// replaced or removed since is skipped.
    fn finish_directories(&mut self) -> Result<(), LayerError> {
        let pending = std::mem::take(&mut self.pending_dirs);
        let mut done: HashSet<&[u8]> = HashSet::new();
        for dir in pending.iter().rev() {
            if !done.insert(dir.path.as_slice()) {
                continue;
            }
            let components: Vec<&[u8]> = dir.path.split(|&byte| byte == b'/').collect();
            let Some((name, parents)) = components.split_last() else {
                continue;
            };
            let mut fd = match self.root.try_clone() {
                Ok(fd) => fd,
                Err(source) => {
                    return Err(LayerError::Target {
                        path: self.target.clone(),
                        source,
                    })
                }
            };
            let mut reachable = true;
            for component in parents {
                match open_dir_path(fd.as_fd(), component) {
                    Ok(next) => fd = next,
                    Err(_) => {
                        reachable = false;
                        break;
                    }
                }
            }
            if !reachable || !matches!(lstat_at(fd.as_fd(), name), Ok(Some(stat)) if is_dir(&stat))
            {
                continue;
            }
            let full = &dir.path;
            let fail = |operation: &'static str| {
                let path = self.target.join(os(full));
                move |errno: Errno| LayerError::Target {
                    path,
                    source: io::Error::other(format!(
                        "{operation} of a directory after extraction: {}",
                        io::Error::from(errno)
                    )),
                }
            };
            rustix::fs::chmodat(
                fd.as_fd(),
                os(name),
                Mode::from_raw_mode(dir.mode),
                AtFlags::empty(),
            )
            .map_err(fail("chmod"))?;
            rustix::fs::utimensat(
                fd.as_fd(),
                os(name),
                &timestamps(dir.mtime),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(fail("set times"))?;
        }
        Ok(())
    }
}

fn uid(id: u64) -> Result<Option<rustix::fs::Uid>, Failure> {
    u32::try_from(id)
        .ok()
        .filter(|&id| id != u32::MAX)
        .map(|id| Some(rustix::fs::Uid::from_raw(id)))
        .ok_or_else(|| Failure::Refuse(format!("uid {id} is out of range")))
}

fn gid(id: u64) -> Result<Option<rustix::fs::Gid>, Failure> {
    u32::try_from(id)
        .ok()
        .filter(|&id| id != u32::MAX)
        .map(|id| Some(rustix::fs::Gid::from_raw(id)))
        .ok_or_else(|| Failure::Refuse(format!("gid {id} is out of range")))
}
