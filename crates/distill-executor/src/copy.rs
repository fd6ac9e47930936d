//! COPY and ADD as file operations done by distill itself: the sources are matched in a
//! [`RootView`] (the build context after `.dockerignore`, or another stage's layers), placed
//! under the destination with BuildKit's rules, and become a layer's tar entries directly
//! (owners and modes are written in the headers, so no privilege is needed to `--chown`).
//!
//! Rules (BuildKit's `dockerfile2llb` and fsutil's copy): a directory source copies its
//! contents; the destination is a directory when it ends with `/`, when it already is one,
//! or when a directory is copied; several sources need a destination ending with `/`;
//! wildcards (Go's `filepath.Match`, per component) may match nothing; symlinks inside a
//! copied tree are kept as symlinks, a source path that is itself a symlink is followed
//! inside the view; missing parents are created (mode 0755, owned by `--chown`'s ids).
//! Files of one source sharing an inode stay one hardlink group (the first path in walk order
//! holds the data, the others link to it), as fsutil's copier keeps them; sources are copied
//! one by one, so files of different sources never become links.
//!
//! The destination directory a directory source's contents go into is, when it does not
//! exist yet, created as a parent is (0755, `--chown`'s ids, the build's time): it never
//! takes the source directory's metadata nor `--chmod`, which apply to what is inside.
//! `ADD` of a local archive creates its destination the same way and extracts the members
//! into it with the archive's owners (`--chown` does not apply to them); the archive's own
//! root entry (`./`) never changes the destination.
//!
//! Never reads outside the view it is given: `../` and symlinks pointing out resolve inside.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::ops::Bound;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use distill_context::Matcher;
use distill_layer::{EntryHeader, EntryKind, LayerWriter};
use distill_plan::Chmod;
use rayon::prelude::*;

use crate::context::Stamp;
use crate::rootview::{components, Entry, Found, RootView};
use crate::users::Ids;

/// Where the data of a planned file comes from.
#[derive(Clone, Debug)]
pub enum Data {
    None,
    /// A file on the host (inside a view), read when the layer is written.
    Host(HostFile),
    /// Bytes at hand (a heredoc, an extracted archive member).
    Bytes(Vec<u8>),
}

/// A host file a copy reads, with the stamp the walk saw (so hashing it needs no second
/// `stat`: a remembered hash is reused only while the file still has this stamp).
#[derive(Clone, Debug)]
pub struct HostFile {
    pub path: PathBuf,
    pub stamp: Stamp,
}

impl HostFile {
    fn of(found: Source<'_>) -> HostFile {
        HostFile {
            stamp: Stamp::of(found.meta),
            path: found.host,
        }
    }
}

/// Identifies a source file with other links: (source number, device, inode).
type SharedInode = (usize, u64, u64);

/// An entry a walk planned, with its source inode when other links share it.
type Walked = (PlanKey, Planned, Option<SharedInode>);

/// A directory's entries as [`CopyRequest::read_tree`] read them, each directory the walk
/// goes into with its own listing (`below[i]` for `entries[i]`).
struct Listing {
    entries: Vec<Entry>,
    below: Vec<Option<Listing>>,
    /// Entries here and below.
    total: usize,
}

/// A source entry being copied: what a walk knows of it.
struct Source<'a> {
    meta: &'a Metadata,
    host: PathBuf,
    /// The path in the source view, `/`-separated, for messages.
    path: &'a [u8],
}

/// A planned entry's place in a [`CopyPlan`]: its path's components joined by NUL bytes.
/// NUL sorts before every byte a name can hold, so the keys order like the component lists
/// they stand for (Go's `filepath.Walk` order: a directory right before its contents), and a
/// directory's descendants are exactly the keys starting with it and a NUL.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlanKey(Vec<u8>);

impl PlanKey {
    /// The key of a path given as components.
    pub fn of<S: AsRef<OsStr>>(parts: &[S]) -> PlanKey {
        let mut key = Vec::new();
        for part in parts {
            key.push_component(part.as_ref().as_bytes());
        }
        PlanKey(key)
    }

    /// The components, in order (each is stored after a NUL, the first one too).
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&byte| byte == 0).skip(1)
    }
}

impl Borrow<[u8]> for PlanKey {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

/// Builds a key from components, as a collected path: `parts.iter().map(..).collect()`.
impl FromIterator<Vec<u8>> for PlanKey {
    fn from_iter<I: IntoIterator<Item = Vec<u8>>>(parts: I) -> PlanKey {
        let mut key = Vec::new();
        for part in parts {
            key.push_component(&part);
        }
        PlanKey(key)
    }
}

/// Appending components to `/`-separated paths and NUL-separated keys alike.
trait PushComponent {
    fn push_component(&mut self, part: &[u8]);
}

impl PushComponent for Vec<u8> {
    fn push_component(&mut self, part: &[u8]) {
        self.push(0);
        self.extend_from_slice(part);
    }
}

/// Where a walk is, kept in buffers that grow and shrink as it goes down and up (one
/// allocation per walk rather than several per entry): the destination path (`/`-separated,
/// as a tar header holds it), its plan key, and the source path (`/`-separated, relative to
/// the source root, as `.dockerignore` patterns see it).
struct WalkPaths {
    target: Vec<u8>,
    key: Vec<u8>,
    source: Vec<u8>,
}

/// The buffers' lengths before a [`WalkPaths::push`], to return to.
#[derive(Clone, Copy)]
struct WalkMark {
    target: usize,
    key: usize,
    source: usize,
}

impl WalkPaths {
    fn new(target: &[OsString], source: &[OsString]) -> WalkPaths {
        WalkPaths {
            target: path_bytes(target),
            key: PlanKey::of(target).0,
            source: path_bytes(source),
        }
    }

    fn push(&mut self, name: &[u8]) -> WalkMark {
        let mark = WalkMark {
            target: self.target.len(),
            key: self.key.len(),
            source: self.source.len(),
        };
        for buffer in [&mut self.target, &mut self.source] {
            if !buffer.is_empty() {
                buffer.push(b'/');
            }
            buffer.extend_from_slice(name);
        }
        self.key.push_component(name);
        mark
    }

    fn pop(&mut self, mark: WalkMark) {
        self.target.truncate(mark.target);
        self.key.truncate(mark.key);
        self.source.truncate(mark.source);
    }
}

/// One entry of the layer a COPY makes.
#[derive(Clone, Debug)]
pub struct Planned {
    pub header: EntryHeader,
    pub data: Data,
}

/// The entries a COPY writes, in the order of Go's `filepath.Walk` (components compared
/// bytewise, a directory before its contents).
#[derive(Debug, Default)]
pub struct CopyPlan {
    pub entries: BTreeMap<PlanKey, Planned>,
    /// Planned files whose source has other links: (source number, device, inode).
    inodes: BTreeMap<PlanKey, SharedInode>,
}

/// A file whose content is at hand: a heredoc source (mode 0644) or an `ADD` download
/// (mode 0600, its `Last-Modified` time), as BuildKit writes them.
#[derive(Clone, Debug)]
pub struct InlineFile {
    pub name: String,
    pub content: Vec<u8>,
    pub mode: u32,
    /// Modification time; the build's time when `None`.
    pub mtime: Option<i64>,
}

/// What to copy from where.
pub struct CopyRequest<'a> {
    /// Source paths as written (expanded), relative to the source root.
    pub sources: &'a [String],
    /// Files at hand (heredocs, downloads).
    pub inline: &'a [InlineFile],
    /// The destination as written (expanded).
    pub dest: &'a str,
    /// The stage's working directory.
    pub workdir: &'a str,
    pub source: &'a RootView,
    /// The context's `.dockerignore`, when copying from the context.
    pub ignore: Option<&'a Matcher>,
    /// `--exclude` patterns, relative to each source.
    pub exclude: Option<&'a Matcher>,
    /// Copying from the context: owners become 0:0 unless `--chown`.
    pub from_context: bool,
    /// The destination stage, to find existing directories and parents' metadata.
    pub dest_view: &'a RootView,
    pub chown: Option<Ids>,
    pub chmod: Option<&'a Chmod>,
    /// Modification time for created and copied entries (SOURCE_DATE_EPOCH), if set.
    pub epoch: Option<i64>,
    /// Now, for directories created without an epoch.
    pub now: i64,
    /// ADD: extract local tar archives into the destination.
    pub unpack_archives: bool,
}

/// The destination relative to the working directory, as BuildKit's
/// `pathRelativeToWorkingDir`: absolute, cleaned, keeping a trailing `/` (and `.` means `./`).
pub fn dest_path(workdir: &str, dest: &str) -> String {
    let dest = if dest.is_empty() || dest == "." {
        "./"
    } else {
        dest
    };
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", workdir.trim_end_matches('/'))
    };
    let mut clean = clean_path(&joined);
    let dir_form = dest.ends_with('/') || dest.ends_with("/.") || dest == ".";
    if dir_form && !clean.ends_with('/') {
        clean.push('/');
    }
    clean
}

/// Go's `path.Clean`, as BuildKit cleans image paths.
pub use distill_golang::path::clean as clean_path;

/// Whether a source has Go `filepath.Match` wildcards (`\` escapes).
pub fn has_wildcards(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'*' | b'?' | b'[' => return true,
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Go's `filepath.Match` for one path component.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    fn class(pattern: &[u8], c: u8) -> Option<(bool, usize)> {
        // Returns (matched, bytes of the class consumed after '[').
        let mut i = 0;
        let negate = matches!(pattern.first(), Some(b'^') | Some(b'!'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        loop {
            let &start = pattern.get(i)?;
            if start == b']' && !first {
                i += 1;
                break;
            }
            first = false;
            let (low, next) = if start == b'\\' {
                (*pattern.get(i + 1)?, i + 2)
            } else {
                (start, i + 1)
            };
            i = next;
            let high = if pattern.get(i) == Some(&b'-') && pattern.get(i + 1) != Some(&b']') {
                let h = *pattern.get(i + 1)?;
                if h == b'\\' {
                    let h = *pattern.get(i + 2)?;
                    i += 3;
                    h
                } else {
                    i += 2;
                    h
                }
            } else {
                low
            };
            if low <= c && c <= high {
                matched = true;
            }
        }
        Some((matched != negate, i))
    }
    let (mut p, mut n) = (0usize, 0usize);
    let (mut star_p, mut star_n) = (usize::MAX, 0usize);
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star_p = p;
                    star_n = n;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((true, used)) = class(&pattern[p + 1..], name[n]) {
                        p += 1 + used;
                        n += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == name[n] => {
                    p += 2;
                    n += 1;
                    continue;
                }
                b'\\' if p + 1 < pattern.len() => {}
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        if star_p != usize::MAX {
            p = star_p + 1;
            star_n += 1;
            n = star_n;
            continue;
        }
        return false;
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

fn kind_of(meta: &Metadata) -> Option<EntryKind> {
    let file_type = meta.file_type();
    Some(if file_type.is_dir() {
        EntryKind::Dir
    } else if file_type.is_symlink() {
        EntryKind::Symlink
    } else if file_type.is_file() {
        EntryKind::File
    } else if file_type.is_char_device() {
        EntryKind::CharDevice
    } else if file_type.is_block_device() {
        EntryKind::BlockDevice
    } else {
        // Fifos and sockets: Docker 20.10's copier skips them ("unsupported mode").
        return None;
    })
}

/// Applies a symbolic chmod (`u+x,go-w`, `a=rX`, `g=u`) to `mode`.
pub fn apply_symbolic(mode: u32, spec: &str, is_dir: bool) -> u32 {
    let mut mode = mode & 0o7777;
    for clause in spec.split(',') {
        let who_end = clause
            .find(|c: char| !matches!(c, 'u' | 'g' | 'o' | 'a'))
            .unwrap_or(clause.len());
        let who = &clause[..who_end];
        let mut mask = 0u32;
        if who.is_empty() || who.contains('a') {
            mask = 0o7777;
        } else {
            if who.contains('u') {
                mask |= 0o4700;
            }
            if who.contains('g') {
                mask |= 0o2070;
            }
            if who.contains('o') {
                mask |= 0o1007;
            }
        }
        let mut rest = clause[who_end..].chars().peekable();
        while let Some(op) = rest.next() {
            let mut bits = 0u32;
            match rest.peek() {
                Some(&c @ ('u' | 'g' | 'o')) => {
                    rest.next();
                    let shift = match c {
                        'u' => 6,
                        'g' => 3,
                        _ => 0,
                    };
                    let perm = (mode >> shift) & 7;
                    bits = perm << 6 | perm << 3 | perm;
                }
                _ => {
                    while let Some(&c) = rest.peek() {
                        match c {
                            'r' => bits |= 0o444,
                            'w' => bits |= 0o222,
                            'x' => bits |= 0o111,
                            'X' => {
                                if is_dir || mode & 0o111 != 0 {
                                    bits |= 0o111
                                }
                            }
                            's' => bits |= 0o6000,
                            't' => bits |= 0o1000,
                            _ => break,
                        }
                        rest.next();
                    }
                }
            }
            let bits = bits & mask;
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                '=' => mode = (mode & !(mask & 0o777 | mask & 0o7000)) | bits,
                _ => {}
            }
        }
    }
    mode
}

fn path_bytes(path: &[OsString]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (index, part) in path.iter().enumerate() {
        if index > 0 {
            bytes.push(b'/');
        }
        bytes.extend_from_slice(part.as_bytes());
    }
    bytes
}

impl CopyRequest<'_> {
    fn header_for(&self, meta: &Metadata, kind: EntryKind, path: Vec<u8>) -> EntryHeader {
        let mut header = EntryHeader::new(path, kind);
        let mut mode = meta.permissions().mode() & 0o7777;
        if kind != EntryKind::Symlink {
            match self.chmod {
                // Docker 20.10 replaces the permission bits only: a setuid source copied
                // with --chmod=0750 is 4750.
                Some(Chmod::Octal(octal)) => mode = (mode & 0o7000) | (*octal & 0o777),
                Some(Chmod::Symbolic(spec)) => {
                    mode = apply_symbolic(mode, spec, kind == EntryKind::Dir)
                }
                None => {}
            }
        }
        header.mode = mode;
        let (uid, gid) = match self.chown {
            Some(ids) => (ids.uid, ids.gid),
            None if self.from_context => (0, 0),
            None => (meta.uid(), meta.gid()),
        };
        header.uid = u64::from(uid);
        header.gid = u64::from(gid);
        header.mtime = self.epoch.unwrap_or(meta.mtime());
        if matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
            // Docker 20.10's copier hands Go's file mode to mknod, which finds no file type
            // in it and makes a regular file: a copied device is an empty file (with the
            // device's mode and owner). Its data is never read.
            header.kind = EntryKind::File;
            header.size = 0;
        }
        header
    }

    fn excluded(&self, path: &[OsString]) -> bool {
        match self.ignore {
            Some(matcher) if !path.is_empty() => matcher.is_excluded_bytes(&path_bytes(path)),
            _ => false,
        }
    }

    /// Sources matched: wildcard patterns may match nothing; other paths must exist.
    fn matches(&self, source: &str) -> Result<Vec<Found>, String> {
        let missing = || {
            if self.from_context {
                format!(
                    "\"{source}\": not found in the build context (or excluded by .dockerignore)"
                )
            } else {
                format!("\"{source}\": not found")
            }
        };
        if !has_wildcards(source) {
            let found = self
                .source
                .resolve(Path::new(source), true)
                .map_err(|error| format!("{source}: {error}"))?
                .ok_or_else(missing)?;
            if self.excluded(&found.path) && !found.meta.is_dir() {
                return Err(missing());
            }
            return Ok(vec![found]);
        }
        let root = self
            .source
            .resolve(Path::new("/"), true)
            .map_err(|error| error.to_string())?
            .ok_or_else(missing)?;
        let mut current = vec![root];
        for part in components(Path::new(source)) {
            let mut next = Vec::new();
            for dir in &current {
                if !dir.meta.is_dir() {
                    continue;
                }
                if has_wildcards(&part.to_string_lossy()) {
                    for child in self.source.list(dir).map_err(|e| e.to_string())? {
                        let name = child.path.last().cloned().unwrap_or_default();
                        if glob_match(part.as_bytes(), name.as_bytes())
                            && !self.excluded(&child.path)
                        {
                            // A matched symlink is followed, as a named source is.
                            let resolved = if child.meta.file_type().is_symlink() {
                                let path: PathBuf = std::iter::once(OsString::from("/"))
                                    .chain(child.path.iter().cloned())
                                    .collect();
                                self.source
                                    .resolve(&path, true)
                                    .map_err(|e| e.to_string())?
                            } else {
                                Some(child)
                            };
                            next.extend(resolved);
                        }
                    }
                } else {
                    let path: PathBuf = std::iter::once(OsString::from("/"))
                        .chain(dir.path.iter().cloned())
                        .chain(std::iter::once(part.clone()))
                        .collect();
                    if let Some(found) = self
                        .source
                        .resolve(&path, true)
                        .map_err(|e| e.to_string())?
                    {
                        next.push(found);
                    }
                }
            }
            current = next;
        }
        Ok(current)
    }

    /// Whether a walk goes into the directory at `source` (relative to the source root;
    /// `base` is where the copied source's own path ends in it): unless `.dockerignore` or
    /// `--exclude` excludes it with no exception possible below.
    fn descends(&self, source: &[u8], base: usize) -> bool {
        let relative = source.get(base..).unwrap_or_default();
        let ignore_allows = self
            .ignore
            .is_none_or(|m| !m.is_excluded_bytes(source) || m.may_include_under(source));
        let exclude_allows = self
            .exclude
            .is_none_or(|m| !m.is_excluded_bytes(relative) || m.may_include_under(relative));
        ignore_allows && exclude_allows
    }

    /// Reads the directory `dir` (at `source`) and, in parallel, every directory below it
    /// that the walk goes into: the system calls are most of what planning a large copy
    /// costs, and the listings are then turned into the plan in order.
    fn read_tree(&self, dir: &Found, source: &[u8], base: usize) -> Result<Listing, String> {
        let entries = self
            .source
            .entries(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut below: Vec<(usize, Found, Vec<u8>)> = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            if !entry.meta.is_dir() {
                continue;
            }
            let mut path = source.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(entry.name.as_bytes());
            if self.descends(&path, base) {
                below.push((index, entry.clone().into_found(dir), path));
            }
        }
        let read = |(index, found, path): (usize, Found, Vec<u8>)| {
            self.read_tree(&found, &path, base)
                .map(|listing| (index, listing))
        };
        let listings: Vec<(usize, Listing)> = if below.len() > 1 {
            below
                .into_par_iter()
                .map(read)
                .collect::<Result<_, String>>()?
        } else {
            below.into_iter().map(read).collect::<Result<_, String>>()?
        };
        let mut below: Vec<Option<Listing>> = Vec::new();
        below.resize_with(entries.len(), || None);
        let mut total = entries.len();
        for (index, listing) in listings {
            total += listing.total;
            below[index] = Some(listing);
        }
        Ok(Listing {
            entries,
            below,
            total,
        })
    }

    /// Plans the contents of a directory read by [`CopyRequest::read_tree`] under
    /// `paths.target`, in walk order, onto `walked`.
    fn add_tree(
        &self,
        walked: &mut Vec<Walked>,
        listing: Listing,
        paths: &mut WalkPaths,
        base: usize,
        source_number: usize,
    ) -> Result<(), String> {
        for (child, below) in listing.entries.into_iter().zip(listing.below) {
            let Some(kind) = kind_of(&child.meta) else {
                continue;
            };
            let mark = paths.push(child.name.as_bytes());
            let result = self.add_child(walked, child, below, kind, paths, base, source_number);
            paths.pop(mark);
            result?;
        }
        Ok(())
    }

    /// One entry of [`CopyRequest::add_tree`]'s walk, at `paths`; `below`: its listing when
    /// it is a directory the walk goes into.
    #[allow(clippy::too_many_arguments)]
    fn add_child(
        &self,
        walked: &mut Vec<Walked>,
        child: Entry,
        below: Option<Listing>,
        kind: EntryKind,
        paths: &mut WalkPaths,
        base: usize,
        source_number: usize,
    ) -> Result<(), String> {
        // `.dockerignore` paths are relative to the context, `--exclude` paths to the
        // source being copied.
        let relative = paths.source.get(base..).unwrap_or_default();
        let ignored = self
            .ignore
            .is_some_and(|matcher| matcher.is_excluded_bytes(&paths.source));
        let dropped = self
            .exclude
            .is_some_and(|matcher| matcher.is_excluded_bytes(relative));
        let excluded = ignored || dropped;
        if kind == EntryKind::Dir {
            if !excluded {
                let header = self.header_for(&child.meta, kind, paths.target.clone());
                let planned = Planned {
                    header,
                    data: Data::None,
                };
                walked.push((PlanKey(paths.key.clone()), planned, None));
            }
            if let Some(below) = below {
                self.add_tree(walked, below, paths, base, source_number)?;
            }
            return Ok(());
        }
        if excluded {
            return Ok(());
        }
        let source = Source {
            meta: &child.meta,
            host: child.host,
            path: &paths.source,
        };
        let (planned, inode) = self.leaf(source, kind, paths.target.clone(), source_number)?;
        walked.push((PlanKey(paths.key.clone()), planned, inode));
        Ok(())
    }

    /// The planned entry of a copied non-directory, and its inode when other links share it.
    fn leaf(
        &self,
        found: Source<'_>,
        kind: EntryKind,
        target: Vec<u8>,
        source_number: usize,
    ) -> Result<(Planned, Option<SharedInode>), String> {
        let mut header = self.header_for(found.meta, kind, target);
        let mut inode = None;
        let data = match kind {
            EntryKind::File => {
                header.size = found.meta.len();
                if found.meta.nlink() > 1 {
                    inode = Some((source_number, found.meta.dev(), found.meta.ino()));
                }
                Data::Host(HostFile::of(found))
            }
            EntryKind::Symlink => {
                let link = fs::read_link(&found.host)
                    .map_err(|e| format!("/{}: {e}", String::from_utf8_lossy(found.path)))?;
                header.link_target = link.into_os_string().into_vec();
                Data::None
            }
            _ => Data::None,
        };
        Ok((Planned { header, data }, inode))
    }

    /// Where the destination is in the destination stage: its components, whether it is a
    /// directory, whether it exists already.
    fn destination(&self) -> Result<(Vec<OsString>, bool, bool), String> {
        let dest = dest_path(self.workdir, self.dest);
        let dir_form = dest.ends_with('/');
        let existing = self
            .dest_view
            .resolve(Path::new(&dest), true)
            .map_err(|e| format!("{dest}: {e}"))?;
        if let Some(found) = existing {
            let is_dir = found.meta.is_dir();
            // `COPY a /etc/passwd/`: Docker's copier cannot make the directory.
            if dir_form && !is_dir {
                return Err(format!("mkdir {dest}: not a directory"));
            }
            return Ok((found.path, is_dir || dir_form, true));
        }
        // Resolve every symlink on the way, a dangling one's target too, so files land where
        // the stage will see them.
        let path = self
            .dest_view
            .resolve_for_create(Path::new(&dest))
            .map_err(|e| format!("{dest}: {e}"))?;
        Ok((path, dir_form, false))
    }

    /// Docker 20.10's copier merges a copied directory into a directory the stage has, and
    /// refuses ("cannot copy to non-directory") where the stage has anything else: a file, or
    /// a symlink, which it does not follow below the destination. Only a directory whose
    /// parent the stage has as a directory can meet something, so the walk's directories
    /// are looked up shallowest first and those under a new directory are skipped.
    fn refuse_directories_over_non_directories(
        &self,
        dest: &[OsString],
        walked: &[Walked],
    ) -> Result<(), String> {
        let root = PlanKey::of(dest);
        let mut existing: HashSet<&[u8]> = HashSet::new();
        existing.insert(&root.0);
        let mut dirs: Vec<&PlanKey> = walked
            .iter()
            .filter(|(_, planned, _)| planned.header.kind == EntryKind::Dir)
            .map(|(key, _, _)| key)
            .collect();
        // A parent's key is a prefix of its children's: shorter keys come first.
        dirs.sort_by_key(|key| key.0.len());
        for key in dirs {
            let parent_end = key.0.iter().rposition(|&byte| byte == 0).unwrap_or(0);
            if !existing.contains(&key.0[..parent_end]) {
                continue;
            }
            let path: PathBuf = std::iter::once(OsStr::new("/"))
                .chain(key.components().map(OsStr::from_bytes))
                .collect();
            match self
                .dest_view
                .resolve(&path, false)
                .map_err(|e| format!("{}: {e}", path.display()))?
            {
                Some(found) if found.meta.is_dir() => {
                    existing.insert(&key.0);
                }
                Some(_) => return Err(format!("cannot copy to non-directory: {}", path.display())),
                None => {}
            }
        }
        Ok(())
    }

    /// Plans the whole copy.
    pub fn plan(&self) -> Result<CopyPlan, String> {
        let mut plan = CopyPlan::default();
        let (dest, dest_is_dir, dest_exists) = self.destination()?;
        let total = self.sources.len() + self.inline.len();
        if total > 1 && !dest_is_dir {
            return Err(
                "When using COPY with more than one source file, the destination must be a directory and end with a /"
                    .to_string(),
            );
        }
        for (source_number, source) in self.sources.iter().enumerate() {
            let matches = self.matches(source)?;
            if matches.len() > 1 && !dest_is_dir {
                return Err(format!(
                    "\"{source}\" matches {} files: the destination must be a directory and end with a /",
                    matches.len()
                ));
            }
            for found in matches {
                let Some(kind) = kind_of(&found.meta) else {
                    continue;
                };
                if kind != EntryKind::Dir {
                    let name = path_bytes(&found.path[found.path.len().saturating_sub(1)..]);
                    if self.exclude.is_some_and(|m| m.is_excluded_bytes(&name)) {
                        continue;
                    }
                }
                if kind == EntryKind::Dir {
                    if dest_exists && !dest_is_dir {
                        let path: PathBuf = std::iter::once(OsStr::new("/"))
                            .chain(dest.iter().map(OsString::as_os_str))
                            .collect();
                        return Err(format!("cannot copy to non-directory: {}", path.display()));
                    }
                    // The destination directory is made as a parent is (fsutil's
                    // `MkdirAll(dest, 0755)` before copying the contents), never with the
                    // source directory's metadata; an existing one keeps its own.
                    if !dest.is_empty() && !dest_exists {
                        let header = self.created_dir(&dest);
                        plan.insert(&dest, header, Data::None);
                    }
                    let mut paths = WalkPaths::new(&dest, &found.path);
                    let base = if paths.source.is_empty() {
                        0
                    } else {
                        paths.source.len() + 1
                    };
                    let listing = self.read_tree(&found, &paths.source, base)?;
                    let mut walked = Vec::with_capacity(listing.total);
                    self.add_tree(&mut walked, listing, &mut paths, base, source_number)?;
                    if dest_exists {
                        self.refuse_directories_over_non_directories(&dest, &walked)?;
                    }
                    plan.insert_walked(walked);
                    continue;
                }
                if self.unpack_archives && kind == EntryKind::File {
                    if let Some(()) = self.try_unpack(&mut plan, &found, &dest)? {
                        // BuildKit's unpack makes the destination first (`MkdirAll(dest,
                        // 0755)` with `--chown`'s ids), then extracts into it.
                        if !dest.is_empty() && !dest_exists {
                            let header = self.created_dir(&dest);
                            plan.insert(&dest, header, Data::None);
                        }
                        continue;
                    }
                }
                let mut target = dest.clone();
                if dest_is_dir {
                    let name = found.path.last().cloned().unwrap_or_default();
                    target.push(name);
                }
                let source_path = path_bytes(&found.path);
                let source = Source {
                    meta: &found.meta,
                    host: found.host.clone(),
                    path: &source_path,
                };
                let (planned, inode) =
                    self.leaf(source, kind, path_bytes(&target), source_number)?;
                plan.insert_walked(vec![(PlanKey::of(&target), planned, inode)]);
            }
        }
        for file in self.inline {
            let mut target = dest.clone();
            if dest_is_dir {
                target.push(OsString::from(&file.name));
            }
            let content = &file.content;
            let mut header = EntryHeader::new(path_bytes(&target), EntryKind::File);
            header.mode = match self.chmod {
                Some(Chmod::Octal(mode)) => *mode,
                Some(Chmod::Symbolic(spec)) => apply_symbolic(file.mode, spec, false),
                None => file.mode,
            };
            if let Some(ids) = self.chown {
                header.uid = u64::from(ids.uid);
                header.gid = u64::from(ids.gid);
            }
            header.mtime = self.epoch.unwrap_or(file.mtime.unwrap_or(self.now));
            header.size = content.len() as u64;
            plan.insert(&target, header, Data::Bytes(content.clone()));
        }
        plan.link_shared_inodes();
        self.finish_parents(&mut plan)?;
        Ok(plan)
    }

    /// A directory the copy creates: mode 0755, `--chown`'s ids (else 0:0), the epoch or now.
    fn created_dir(&self, path: &[OsString]) -> EntryHeader {
        let mut header = EntryHeader::new(path_bytes(path), EntryKind::Dir);
        header.mode = 0o755;
        if let Some(ids) = self.chown {
            header.uid = u64::from(ids.uid);
            header.gid = u64::from(ids.gid);
        }
        header.mtime = self.epoch.unwrap_or(self.now);
        header
    }

    /// Extracts a local tar archive (plain, gzip, bzip2 or xz) into `dest`; `None` when the file
    /// is not one (it is then copied as a file).
    fn try_unpack(
        &self,
        plan: &mut CopyPlan,
        found: &Found,
        dest: &[OsString],
    ) -> Result<Option<()>, String> {
        let mut file =
            fs::File::open(&found.host).map_err(|e| format!("{}: {e}", found.display()))?;
        let head = distill_archive::compression::read_head(&mut file)
            .map_err(|e| format!("{}: {e}", found.display()))?;
        // Docker 20.10's untar knows gzip, bzip2 and xz only: a zstd tar is copied as a file.
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return Ok(None);
        }
        let reader = io::Cursor::new(head.clone()).chain(file);
        // gzip and plain tar through distill-archive; bzip2 and xz as BuildKit also unpacks
        // them (xz is decompressed whole: lzma-rs has no streaming reader).
        let mut stream: Box<dyn Read> = if head.starts_with(b"BZh") {
            Box::new(bzip2::read::MultiBzDecoder::new(reader))
        } else if head.starts_with(b"\xfd7zXZ\x00") {
            let mut plain = Vec::new();
            let mut buffered = io::BufReader::new(reader);
            if lzma_rs::xz_decompress(&mut buffered, &mut plain).is_err() {
                return Ok(None);
            }
            Box::new(io::Cursor::new(plain))
        } else {
            match distill_archive::compression::decompressed(reader, "archive") {
                Ok((_, stream)) => stream,
                Err(_) => return Ok(None),
            }
        };
        // A tar stream has "ustar" at offset 257 of its first block.
        let mut first = vec![0u8; 512];
        let mut filled = 0;
        while filled < first.len() {
            match stream.read(&mut first[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(_) => return Ok(None),
            }
        }
        if filled < 512 || &first[257..262] != b"ustar" {
            return Ok(None);
        }
        let mut tar = distill_layer::TarReader::new(io::Cursor::new(first).chain(stream));
        let mut entries = Vec::new();
        loop {
            let mut entry = match tar.next_entry() {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(error) => return Err(format!("{}: {error}", found.display())),
            };
            let mut header = entry.header.clone();
            let mut data = Vec::new();
            entry
                .data
                .read_to_end(&mut data)
                .map_err(|e| format!("{}: {e}", found.display()))?;
            let inner = String::from_utf8_lossy(&header.path).into_owned();
            let mut target = dest.to_vec();
            for part in components(Path::new(&inner)) {
                if part == ".." {
                    target.pop();
                } else {
                    target.push(part);
                }
            }
            // The archive's root (`./`) or anything resolving above it: Docker's untar keeps
            // an existing destination as it is.
            if target.len() <= dest.len() {
                continue;
            }
            header.path = path_bytes(&target);
            if header.kind == EntryKind::Hardlink {
                let mut link = dest.to_vec();
                let inner_link = String::from_utf8_lossy(&header.link_target).into_owned();
                link.extend(components(Path::new(&inner_link)));
                header.link_target = path_bytes(&link);
            }
            if let Some(epoch) = self.epoch {
                header.mtime = header.mtime.min(epoch);
            }
            entries.push((target, header, data));
        }
        for (target, header, data) in entries {
            if target.is_empty() {
                continue;
            }
            let data = if header.kind == EntryKind::File {
                Data::Bytes(data)
            } else {
                Data::None
            };
            plan.insert(&target, header, data);
        }
        Ok(Some(()))
    }

    /// Every parent of a planned entry is in the layer: with the destination stage's metadata
    /// where it exists, created otherwise.
    pub fn finish_parents(&self, plan: &mut CopyPlan) -> Result<(), String> {
        // Keys come in walk order, so siblings share a parent: its ancestors are checked once.
        let mut missing: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut checked: Option<&[u8]> = None;
        for key in plan.entries.keys() {
            let key = key.0.as_slice();
            let parent_end = key.iter().rposition(|&byte| byte == 0).unwrap_or(0);
            let parent = &key[..parent_end];
            if parent.is_empty() || checked == Some(parent) {
                continue;
            }
            for end in (1..=parent_end).filter(|&end| key[end] == 0) {
                let ancestor = &key[..end];
                if !plan.entries.contains_key(ancestor) {
                    missing.insert(ancestor.to_vec());
                }
            }
            checked = Some(parent);
        }
        for parent in missing {
            let parent = PlanKey(parent);
            let parts: Vec<OsString> = parent
                .components()
                .map(|part| OsString::from_vec(part.to_vec()))
                .collect();
            let path: PathBuf = std::iter::once(OsString::from("/"))
                .chain(parts.iter().cloned())
                .collect();
            let existing = self
                .dest_view
                .resolve(&path, false)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let header = match existing {
                Some(found) if found.meta.is_dir() => {
                    let mut header = EntryHeader::new(path_bytes(&parts), EntryKind::Dir);
                    header.mode = found.meta.permissions().mode() & 0o7777;
                    header.uid = u64::from(found.meta.uid());
                    header.gid = u64::from(found.meta.gid());
                    header.mtime = self.epoch.unwrap_or(found.meta.mtime());
                    header
                }
                _ => self.created_dir(&parts),
            };
            plan.entries.insert(
                parent,
                Planned {
                    header,
                    data: Data::None,
                },
            );
        }
        Ok(())
    }
}

impl CopyPlan {
    fn insert(&mut self, path: &[OsString], header: EntryHeader, data: Data) {
        self.insert_key(PlanKey::of(path), header, data);
    }

    /// Adds what a walk planned (in walk order); when it all comes after the planned
    /// entries, as for a copy's first source, the map is built in one pass.
    fn insert_walked(&mut self, walked: Vec<Walked>) {
        let after_last = match (self.entries.last_key_value(), walked.first()) {
            (Some((last, _)), Some((first, _, _))) => last < first,
            _ => true,
        };
        if after_last && walked.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            let mut entries = Vec::with_capacity(walked.len());
            for (key, planned, inode) in walked {
                if let Some(inode) = inode {
                    self.inodes.insert(key.clone(), inode);
                }
                entries.push((key, planned));
            }
            // Sorted input: `collect` finds it sorted and builds the tree bottom up.
            let mut more: BTreeMap<PlanKey, Planned> = entries.into_iter().collect();
            self.entries.append(&mut more);
            return;
        }
        for (key, planned, inode) in walked {
            self.insert_key(key.clone(), planned.header, planned.data);
            if let Some(inode) = inode {
                self.inodes.insert(key, inode);
            }
        }
    }

    fn insert_key(&mut self, key: PlanKey, header: EntryHeader, data: Data) {
        if !self.inodes.is_empty() {
            self.inodes.remove(&key);
        }
        // A walk inserts in order: after the last key there is nothing to replace.
        let after_last = self
            .entries
            .last_key_value()
            .is_none_or(|(last, _)| *last < key);
        if after_last {
            self.entries.insert(key, Planned { header, data });
            return;
        }
        // A later source replaces an earlier one, except that a directory stays a directory
        // when another source's contents land in it.
        if header.kind == EntryKind::Dir {
            if let Some(existing) = self.entries.get(&key) {
                if existing.header.kind == EntryKind::Dir {
                    return;
                }
            }
        }
        // Replacing a directory with a file drops what was planned inside it: the keys
        // right after this one that start with it and a NUL.
        if header.kind != EntryKind::Dir {
            loop {
                let inside = self
                    .entries
                    .range::<[u8], _>((Bound::Excluded(key.0.as_slice()), Bound::Unbounded))
                    .next()
                    .filter(|(k, _)| k.0.len() > key.0.len() && k.0.starts_with(&key.0))
                    .filter(|(k, _)| k.0[key.0.len()] == 0)
                    .map(|(k, _)| k.clone());
                match inside {
                    Some(k) => {
                        self.entries.remove(&k);
                    }
                    None => break,
                }
            }
        }
        self.entries.insert(key, Planned { header, data });
    }

    /// Turns the second and later paths (in walk order) of each source inode into hardlinks
    /// to the first, as the tar of Docker's layer records them.
    fn link_shared_inodes(&mut self) {
        let mut first_paths: BTreeMap<(usize, u64, u64), Vec<u8>> = BTreeMap::new();
        for (key, inode) in &self.inodes {
            let Some(planned) = self.entries.get_mut(key) else {
                continue;
            };
            if planned.header.kind != EntryKind::File {
                continue;
            }
            match first_paths.get(inode) {
                Some(first) => {
                    planned.header.kind = EntryKind::Hardlink;
                    planned.header.link_target = first.clone();
                    planned.header.size = 0;
                    planned.data = Data::None;
                }
                None => {
                    first_paths.insert(*inode, planned.header.path.clone());
                }
            }
        }
    }

    /// Writes every entry to `writer`, in order.
    pub fn write<W: io::Write>(&self, writer: &mut LayerWriter<W>) -> Result<(), String> {
        for planned in self.entries.values() {
            let header = &planned.header;
            match &planned.data {
                Data::None => writer
                    .append(header, io::empty())
                    .map_err(|e| format!("{}: {e}", header.display_path()))?,
                Data::Bytes(bytes) => writer
                    .append(header, bytes.as_slice())
                    .map_err(|e| format!("{}: {e}", header.display_path()))?,
                Data::Host(host) => {
                    let file = open_no_follow(&host.path)
                        .map_err(|e| format!("{}: {e}", header.display_path()))?;
                    let len = file
                        .metadata()
                        .map_err(|e| format!("{}: {e}", header.display_path()))?
                        .len();
                    if len != header.size {
                        return Err(format!(
                            "{} changed while it was being copied",
                            header.display_path()
                        ));
                    }
                    writer
                        .append(header, io::BufReader::with_capacity(256 * 1024, file))
                        .map_err(|e| format!("{}: {e}", header.display_path()))?;
                }
            }
        }
        Ok(())
    }
}

fn open_no_follow(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_like_buildkit() {
        assert_eq!(dest_path("/", "."), "/");
        assert_eq!(dest_path("/app", "."), "/app/");
        assert_eq!(dest_path("/app", "bin/"), "/app/bin/");
        assert_eq!(dest_path("/app", "x"), "/app/x");
        assert_eq!(dest_path("/app", "/etc/../x"), "/x");
        assert_eq!(dest_path("/app", "../../.."), "/");
    }

    #[test]
    fn go_globs() {
        assert!(glob_match(b"*.c", b"hello.c"));
        assert!(!glob_match(b"*.c", b"hello.h"));
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(glob_match(b"[a-c]x", b"bx"));
        assert!(!glob_match(b"[^a-c]x", b"bx"));
        assert!(glob_match(b"\\*", b"*"));
        assert!(glob_match(b"*", b".hidden"));
        assert!(has_wildcards("a/*.c") && !has_wildcards("a\\*b"));
    }

    /// Plans `COPY sources dest` from `context` into an empty stage.
    fn plan_copy(
        context: &Path,
        sources: &[&str],
        dest: &str,
        chmod: Option<&Chmod>,
        unpack_archives: bool,
    ) -> CopyPlan {
        let stage = tempfile::tempdir().expect("a stage directory");
        let source = RootView::of_dir(context);
        let dest_view = RootView::of_dir(stage.path());
        let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
        let request = CopyRequest {
            sources: &sources,
            inline: &[],
            dest,
            workdir: "/",
            source: &source,
            ignore: None,
            exclude: None,
            from_context: true,
            dest_view: &dest_view,
            chown: Some(Ids {
                uid: 1000,
                gid: 1000,
            }),
            chmod,
            epoch: None,
            now: 1_700_000_000,
            unpack_archives,
        };
        request.plan().expect("a copy plan")
    }

    fn planned<'a>(plan: &'a CopyPlan, path: &str) -> &'a EntryHeader {
        let key: PlanKey = path.split('/').map(|p| p.as_bytes().to_vec()).collect();
        &plan.entries.get(&key).expect(path).header
    }

    #[test]
    fn files_sharing_an_inode_stay_one_hardlink_group() {
        let context = tempfile::tempdir().expect("a context");
        let links = context.path().join("links");
        fs::create_dir(&links).expect("links/");
        fs::write(links.join("one"), "shared\n").expect("links/one");
        fs::hard_link(links.join("one"), links.join("two")).expect("links/two");
        fs::hard_link(links.join("one"), links.join("three")).expect("links/three");
        fs::write(context.path().join("alone"), "x").expect("alone");
        fs::hard_link(context.path().join("alone"), context.path().join("other")).expect("other");

        let plan = plan_copy(context.path(), &["links"], "/links/", None, false);
        let one = planned(&plan, "links/one");
        assert_eq!((one.kind, one.size), (EntryKind::File, 7));
        for later in ["links/three", "links/two"] {
            let header = planned(&plan, later);
            assert_eq!(header.kind, EntryKind::Hardlink, "{later}");
            assert_eq!(header.link_target, b"links/one", "{later}");
            assert_eq!(header.size, 0);
        }

        // Different sources are copied one by one: never linked to each other.
        let plan = plan_copy(context.path(), &["alone", "other"], "/d/", None, false);
        assert_eq!(planned(&plan, "d/alone").kind, EntryKind::File);
        assert_eq!(planned(&plan, "d/other").kind, EntryKind::File);
    }

    #[test]
    fn a_copied_directory_destination_is_created_like_a_parent() {
        let context = tempfile::tempdir().expect("a context");
        let files = context.path().join("files");
        fs::create_dir_all(files.join("sub")).expect("files/sub");
        fs::write(files.join("one.txt"), "1").expect("one.txt");
        fs::set_permissions(&files, fs::Permissions::from_mode(0o750)).expect("chmod");

        let chmod = Chmod::Octal(0o700);
        let plan = plan_copy(
            context.path(),
            &["files"],
            "/chmod/dir/",
            Some(&chmod),
            false,
        );
        let dir = planned(&plan, "chmod/dir");
        assert_eq!((dir.mode, dir.uid, dir.gid), (0o755, 1000, 1000));
        assert_eq!(dir.mtime, 1_700_000_000);
        assert_eq!(planned(&plan, "chmod/dir/sub").mode, 0o700);
        assert_eq!(planned(&plan, "chmod/dir/one.txt").mode, 0o700);
        assert_eq!(planned(&plan, "chmod").mode, 0o755);
    }

    #[test]
    fn added_archives_keep_their_owners_but_not_their_root() {
        let context = tempfile::tempdir().expect("a context");
        let mut archive = Vec::new();
        {
            let mut tar = distill_layer::TarWriter::new(&mut archive);
            let mut root = EntryHeader::new(b"./".to_vec(), EntryKind::Dir);
            root.mode = 0o700;
            root.uid = 1000;
            root.gid = 1000;
            tar.append(&root, io::empty()).expect("./");
            let mut file = EntryHeader::new(b"./q.txt".to_vec(), EntryKind::File);
            file.mode = 0o640;
            file.uid = 1000;
            file.gid = 1000;
            file.size = 2;
            tar.append(&file, &b"q\n"[..]).expect("q.txt");
            tar.finish().expect("the archive's end");
        }
        fs::write(context.path().join("plain.tar"), &archive).expect("plain.tar");

        let plan = plan_copy(
            context.path(),
            &["plain.tar"],
            "/unpacked/plain/",
            None,
            true,
        );
        let dest = planned(&plan, "unpacked/plain");
        assert_eq!((dest.mode, dest.uid, dest.gid), (0o755, 1000, 1000));
        let member = planned(&plan, "unpacked/plain/q.txt");
        assert_eq!((member.mode, member.uid, member.gid), (0o640, 1000, 1000));
    }

    #[test]
    fn plan_keys_order_like_component_lists() {
        let paths = ["a", "a/b", "a/b/c", "a-b", "a.b", "a0", "ab", "b"];
        let mut keys: Vec<PlanKey> = paths
            .iter()
            .map(|p| PlanKey::of(&components(Path::new(p))))
            .collect();
        let mut lists: Vec<Vec<Vec<u8>>> = paths
            .iter()
            .map(|p| p.split('/').map(|c| c.as_bytes().to_vec()).collect())
            .collect();
        keys.reverse();
        lists.reverse();
        keys.sort();
        lists.sort();
        let back: Vec<Vec<Vec<u8>>> = keys
            .iter()
            .map(|k| k.components().map(<[u8]>::to_vec).collect())
            .collect();
        assert_eq!(back, lists);
        assert_eq!(PlanKey::of::<&str>(&[]).components().count(), 0);
    }

    #[test]
    fn a_file_replacing_a_directory_drops_what_was_planned_inside() {
        let context = tempfile::tempdir().expect("a context");
        fs::create_dir_all(context.path().join("one/x/deep")).expect("one/x/deep");
        fs::write(context.path().join("one/x/deep/f"), "f").expect("one/x/deep/f");
        fs::write(context.path().join("one/x-y"), "neighbour").expect("one/x-y");
        fs::create_dir_all(context.path().join("two")).expect("two");
        fs::write(context.path().join("two/x"), "file").expect("two/x");
        let plan = plan_copy(context.path(), &["one", "two"], "/d/", None, false);
        let paths: Vec<String> = plan
            .entries
            .values()
            .map(|p| p.header.display_path())
            .collect();
        assert_eq!(paths, ["d", "d/x", "d/x-y"]);
        assert_eq!(planned(&plan, "d/x").kind, EntryKind::File);

        // The other way round: a directory's contents land in it, the file is replaced.
        let plan = plan_copy(context.path(), &["two", "one"], "/d/", None, false);
        let paths: Vec<String> = plan
            .entries
            .values()
            .map(|p| p.header.display_path())
            .collect();
        assert_eq!(paths, ["d", "d/x", "d/x/deep", "d/x/deep/f", "d/x-y"]);
        assert_eq!(planned(&plan, "d/x").kind, EntryKind::Dir);
    }

    #[test]
    fn a_walk_skips_ignored_directories_but_enters_those_with_exceptions() {
        let context = tempfile::tempdir().expect("a context");
        for dir in ["keep", "skip/inner", "partly/inner"] {
            fs::create_dir_all(context.path().join(dir)).expect(dir);
        }
        for file in ["keep/a", "skip/inner/b", "partly/inner/c", "partly/d"] {
            fs::write(context.path().join(file), file).expect(file);
        }
        let ignore = Matcher::new(["skip", "partly", "!partly/inner/c"]).expect("patterns");
        let stage = tempfile::tempdir().expect("a stage directory");
        let source = RootView::of_dir(context.path());
        let dest_view = RootView::of_dir(stage.path());
        let sources = vec![".".to_string()];
        let request = CopyRequest {
            sources: &sources,
            inline: &[],
            dest: "/",
            workdir: "/",
            source: &source,
            ignore: Some(&ignore),
            exclude: None,
            from_context: true,
            dest_view: &dest_view,
            chown: None,
            chmod: None,
            epoch: None,
            now: 0,
            unpack_archives: false,
        };
        let plan = request.plan().expect("a copy plan");
        let paths: Vec<String> = plan
            .entries
            .values()
            .map(|p| p.header.display_path())
            .collect();
        assert_eq!(
            paths,
            ["keep", "keep/a", "partly", "partly/inner", "partly/inner/c"]
        );
    }

    #[test]
    fn symbolic_modes() {
        assert_eq!(apply_symbolic(0o644, "u+x", false), 0o744);
        assert_eq!(apply_symbolic(0o777, "go-w", false), 0o755);
        assert_eq!(apply_symbolic(0o600, "a=rX", true), 0o555);
        assert_eq!(apply_symbolic(0o600, "a=rX", false), 0o444);
        assert_eq!(apply_symbolic(0o640, "o=g", false), 0o644);
    }
}
