//! Listing what a build may see of its context directory: every entry the ignore patterns leave
//! in, with the metadata a layer or a cache key needs, in path order.
//!
//! The walker never follows a symlink (a symlink is listed as one, with its target), never
//! leaves the context directory (each directory is opened relative to its parent's descriptor
//! and refused if it is a symlink), and never descends into an excluded directory unless an
//! exception could re-include something inside it. As in BuildKit, an excluded directory that
//! holds a re-included entry is listed too, so that every listed path has its parents.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::Error;
use crate::ignorefile::{find_ignore_file, IgnoreFile};
use crate::matcher::Matcher;

/// What kind of file an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// A modification time as the file system keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileTime {
    /// Seconds since the Unix epoch (negative before it).
    pub sec: i64,
    /// Nanoseconds within the second, below 1,000,000,000.
    pub nsec: u32,
}

/// One file, directory, symlink or special file of the context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context directory, `/`-separated, never empty, never `.` or `..`.
    pub path: PathBuf,
    pub kind: FileKind,
    /// Permission bits with set-user-ID, set-group-ID and sticky bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Length in bytes for a regular file, 0 for everything else.
    pub size: u64,
    pub mtime: FileTime,
    /// Where a symlink points, exactly as stored; `None` for other kinds.
    pub link_target: Option<PathBuf>,
    /// The device number of a character or block device, 0 for other kinds.
    pub rdev: u64,
    /// Device and inode of the file, with its link count.
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    /// For a non-directory with more than one link, the path of the first listed entry that
    /// is the same file (BuildKit sends such an entry as a hard link to that path).
    pub hardlink_of: Option<PathBuf>,
    /// Extended attributes, sorted by name, without macOS's `com.apple.*` ones (as BuildKit).
    pub xattrs: Vec<Xattr>,
}

/// An extended attribute of a file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// A build context: its directory and the ignore patterns that apply to it.
#[derive(Clone, Debug)]
pub struct Context {
    dir: PathBuf,
    ignore_file: Option<PathBuf>,
    matcher: Matcher,
}

impl Context {
    /// The context at `dir` for a build of `dockerfile`, with the ignore file BuildKit would
    /// choose (see [`find_ignore_file`]) read and compiled.
    pub fn open(dir: impl Into<PathBuf>, dockerfile: &Path) -> Result<Context, Error> {
        let dir = dir.into();
        let ignore_file = find_ignore_file(&dir, dockerfile);
        let matcher = match &ignore_file {
            Some(path) => Matcher::from_ignore_file(&IgnoreFile::read(path)?)?,
            None => Matcher::default(),
        };
        Ok(Context {
            dir,
            ignore_file,
            matcher,
        })
    }

    /// The context at `dir` filtered by `matcher`.
    pub fn with_matcher(dir: impl Into<PathBuf>, matcher: Matcher) -> Context {
        Context {
            dir: dir.into(),
            ignore_file: None,
            matcher,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ignore file in use, if any.
    pub fn ignore_file(&self) -> Option<&Path> {
        self.ignore_file.as_deref()
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Every entry the ignore patterns leave in; see [`walk`].
    pub fn walk(&self) -> Result<Vec<Entry>, Error> {
        walk(&self.dir, &self.matcher)
    }
}

/// Every entry of `context_dir` that `matcher` leaves in, sorted by path component by
/// component (a directory comes right before its contents), the context directory itself
/// not included.
pub fn walk(context_dir: &Path, matcher: &Matcher) -> Result<Vec<Entry>, Error> {
    let root = rustix::fs::open(
        context_dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| Error::io("open directory", context_dir, errno.into()))?;
    let mut walker = Walker {
        root: context_dir,
        matcher,
        words: matcher.word_count(),
        path: Vec::new(),
        infos: Vec::new(),
        pending: Vec::new(),
        entries: Vec::new(),
        first_links: HashMap::new(),
        xattr_names: vec![0; XATTR_START],
        xattr_value: vec![0; XATTR_START],
        proc_fd: Path::new("/proc/self/fd").is_dir(),
    };
    walker.walk_dir(&root, 0)?;
    Ok(walker.entries)
}

struct Walker<'a> {
    root: &'a Path,
    matcher: &'a Matcher,
    /// Words of a per-pattern bit set.
    words: usize,
    /// The current entry's relative path.
    path: Vec<u8>,
    /// One per-pattern bit set per depth: what matched the directory at that depth.
    infos: Vec<u64>,
    /// Excluded directories being walked for exceptions, listed once something inside is.
    pending: Vec<Entry>,
    entries: Vec<Entry>,
    /// The first listed path of each multiply-linked file, by device and inode.
    first_links: HashMap<(u64, u64), PathBuf>,
    /// Buffers for extended attribute names and values, grown as needed: the kernel allocates
    /// as much as the buffer offered on every call, so they start small.
    xattr_names: Vec<u8>,
    xattr_value: Vec<u8>,
    /// Whether `/proc/self/fd` can name a file relative to a directory descriptor.
    proc_fd: bool,
}

/// Linux's limit on the size of an extended attribute list and of one value.
const XATTR_MAX: usize = 64 * 1024;

/// The first size tried for extended attribute buffers.
const XATTR_START: usize = 256;

/// Calls `read` with `buffer`, growing the buffer up to [`XATTR_MAX`] while it is too small.
fn with_growing(
    buffer: &mut Vec<u8>,
    mut read: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
) -> rustix::io::Result<usize> {
    loop {
        match read(&mut buffer[..]) {
            Err(Errno::RANGE) if buffer.len() < XATTR_MAX => {
                let larger = (buffer.len() * 4).min(XATTR_MAX);
                buffer.resize(larger, 0);
            }
            other => return other,
        }
    }
}

impl Walker<'_> {
    fn walk_dir(&mut self, dir: &OwnedFd, depth: usize) -> Result<(), Error> {
        let mut names = self.read_names(dir)?;
        // How the entries of this directory are named for the calls that take a path.
        let via_proc = self
            .proc_fd
            .then(|| format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes());
        names.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let base = self.path.len();
        for (name, hint) in names {
            self.path.truncate(base);
            if base > 0 {
                self.path.push(b'/');
            }
            self.path.extend_from_slice(name.as_bytes());
            let excluded = self.decide(depth);
            if excluded {
                // Only a directory an exception may reach into is worth a look.
                let maybe_dir = matches!(hint, FileType::Directory | FileType::Unknown);
                if !maybe_dir || !self.matcher.may_include_under(&self.path) {
                    continue;
                }
            }
            let stat = match rustix::fs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                // Gone since it was listed, or not ours to see while excluded anyway.
                Err(Errno::NOENT) => continue,
                Err(_) if excluded => continue,
                Err(errno) => return Err(self.error("stat", errno)),
            };
            let kind = kind_of(FileType::from_raw_mode(stat.st_mode as _));
            if excluded {
                if kind == FileKind::Dir {
                    let mark = self.pending.len();
                    let mut entry = self.entry(&stat, kind, None);
                    entry.xattrs = self.read_xattrs(via_proc.as_deref(), &name)?;
                    self.pending.push(entry);
                    // BuildKit skips what it cannot read inside an excluded directory.
                    if let Ok(subdir) = open_subdir(dir, &name) {
                        self.walk_dir(&subdir, depth + 1)?;
                    }
                    self.pending.truncate(mark);
                }
                continue;
            }
            let link_target = if kind == FileKind::Symlink {
                match rustix::fs::readlinkat(dir, name.as_c_str(), Vec::new()) {
                    Ok(target) => Some(PathBuf::from(OsString::from_vec(target.into_bytes()))),
                    Err(Errno::NOENT) => continue,
                    Err(errno) => return Err(self.error("read link", errno)),
                }
            } else {
                None
            };
            let mut entry = self.entry(&stat, kind, link_target);
            entry.xattrs = self.read_xattrs(via_proc.as_deref(), &name)?;
            if kind != FileKind::Dir && entry.nlink > 1 {
                match self.first_links.get(&(entry.dev, entry.ino)) {
                    Some(first) => entry.hardlink_of = Some(first.clone()),
                    None => {
                        self.first_links
                            .insert((entry.dev, entry.ino), entry.path.clone());
                    }
                }
            }
            self.entries.append(&mut self.pending);
            self.entries.push(entry);
            if kind == FileKind::Dir {
                match open_subdir(dir, &name) {
                    Ok(subdir) => self.walk_dir(&subdir, depth + 1)?,
                    Err(Errno::NOENT) => {}
                    Err(errno) => return Err(self.error("open directory", errno)),
                }
            }
        }
        self.path.truncate(base);
        Ok(())
    }

    /// The names in `dir` (without `.` and `..`) and the type the directory listing gives.
    fn read_names(&self, dir: &OwnedFd) -> Result<Vec<(CString, FileType)>, Error> {
        let listing = Dir::read_from(dir).map_err(|errno| self.error("read directory", errno))?;
        let mut names = Vec::new();
        for item in listing {
            let item = item.map_err(|errno| self.error("read directory", errno))?;
            let name = item.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            names.push((name.to_owned(), item.file_type()));
        }
        Ok(names)
    }

    /// Whether the current path is excluded; records what matched it for its children.
    fn decide(&mut self, depth: usize) -> bool {
        if self.words == 0 {
            return false;
        }
        let needed = (depth + 1) * self.words;
        if self.infos.len() < needed {
            self.infos.resize(needed, 0);
        }
        let (parents, rest) = self.infos.split_at_mut(depth * self.words);
        let out = &mut rest[..self.words];
        out.fill(0);
        let parent = depth
            .checked_sub(1)
            .map(|up| &parents[up * self.words..depth * self.words]);
        self.matcher.decide(&self.path, parent, out)
    }

    #[allow(clippy::unnecessary_cast)] // `Stat`'s field types differ between targets.
    fn entry(&self, stat: &rustix::fs::Stat, kind: FileKind, link: Option<PathBuf>) -> Entry {
        let device = matches!(kind, FileKind::CharDevice | FileKind::BlockDevice);
        Entry {
            path: PathBuf::from(OsStr::from_bytes(&self.path)),
            kind,
            mode: (stat.st_mode as u32) & 0o7777,
            uid: stat.st_uid as u32,
            gid: stat.st_gid as u32,
            size: if kind == FileKind::File {
                stat.st_size as u64
            } else {
                0
            },
            mtime: FileTime {
                sec: stat.st_mtime as i64,
                nsec: stat.st_mtime_nsec as u32,
            },
            link_target: link,
            rdev: if device { stat.st_rdev as u64 } else { 0 },
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
            nlink: stat.st_nlink as u64,
            hardlink_of: None,
            xattrs: Vec::new(),
        }
    }

    /// The extended attributes of entry `name` of the current directory, read without
    /// following a symlink. With `via_proc` (`/proc/self/fd/N/` for the directory's descriptor)
    /// the file is reached through the descriptor, so never outside the context.
    fn read_xattrs(&mut self, via_proc: Option<&[u8]>, name: &CStr) -> Result<Vec<Xattr>, Error> {
        let mut path = Vec::with_capacity(64 + name.to_bytes().len());
        if let Some(prefix) = via_proc {
            path.extend_from_slice(prefix);
            path.extend_from_slice(name.to_bytes());
        } else {
            // Without /proc, name the file from the context root instead.
            path.extend_from_slice(
                self.root
                    .join(OsStr::from_bytes(&self.path))
                    .as_os_str()
                    .as_bytes(),
            );
        }
        let path = OsStr::from_bytes(&path);
        let len = match with_growing(&mut self.xattr_names, |buf| {
            rustix::fs::llistxattr(path, buf)
        }) {
            Ok(len) => len,
            Err(Errno::NOTSUP | Errno::NOENT) => return Ok(Vec::new()),
            Err(errno) => return Err(self.error("list extended attributes of", errno)),
        };
        let mut xattrs = Vec::new();
        for key in self.xattr_names[..len].split(|&b| b == 0) {
            if key.is_empty() || key.starts_with(b"com.apple.") {
                continue;
            }
            // As BuildKit: an attribute that cannot be read (gone, or not permitted) is left out.
            let value = with_growing(&mut self.xattr_value, |buf| {
                rustix::fs::lgetxattr(path, key, buf)
            });
            if let Ok(size) = value {
                xattrs.push(Xattr {
                    name: key.to_vec(),
                    value: self.xattr_value[..size].to_vec(),
                });
            }
        }
        xattrs.sort();
        Ok(xattrs)
    }

    fn error(&self, op: &'static str, errno: Errno) -> Error {
        let path = self.root.join(OsStr::from_bytes(&self.path));
        Error::io(op, &path, io::Error::from(errno))
    }
}

/// Opens a subdirectory by name, refusing a symlink (so the walk cannot leave the context even
/// if a directory is swapped for a link while it runs).
fn open_subdir(parent: &OwnedFd, name: &CString) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        parent,
        name.as_c_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn kind_of(file_type: FileType) -> FileKind {
    match file_type {
        FileType::Directory => FileKind::Dir,
        FileType::Symlink => FileKind::Symlink,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        FileType::CharacterDevice => FileKind::CharDevice,
        FileType::BlockDevice => FileKind::BlockDevice,
        FileType::RegularFile | FileType::Unknown => FileKind::File,
    }
}
