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

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use distill_context::Matcher;
use distill_layer::{EntryHeader, EntryKind, LayerWriter};
use distill_plan::Chmod;

use crate::rootview::{components, Found, RootView};
use crate::users::Ids;

/// Where the data of a planned file comes from.
#[derive(Clone, Debug)]
pub enum Data {
    None,
    /// A file on the host (inside a view), read when the layer is written.
    Host(PathBuf),
    /// Bytes at hand (a heredoc, an extracted archive member).
    Bytes(Vec<u8>),
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
    pub entries: BTreeMap<Vec<Vec<u8>>, Planned>,
    /// Planned files whose source has other links: (source number, device, inode).
    inodes: BTreeMap<Vec<Vec<u8>>, (usize, u64, u64)>,
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

fn key_of(path: &[OsString]) -> Vec<Vec<u8>> {
    path.iter().map(|p| p.as_bytes().to_vec()).collect()
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
    fn header_for(&self, meta: &Metadata, kind: EntryKind, path: &[OsString]) -> EntryHeader {
        let mut header = EntryHeader::new(path_bytes(path), kind);
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

    /// Adds `found` (a source's contents) under `target`, recursively.
    fn add_tree(
        &self,
        plan: &mut CopyPlan,
        dir: &Found,
        target: &[OsString],
        base: usize,
        source_number: usize,
    ) -> Result<(), String> {
        for child in self.source.list(dir).map_err(|e| e.to_string())? {
            let Some(name) = child.path.last().cloned() else {
                continue;
            };
            // `.dockerignore` paths are relative to the context, `--exclude` paths to the
            // source being copied.
            let ignored = self.excluded(&child.path);
            let relative = path_bytes(&child.path[base.min(child.path.len())..]);
            let dropped = self
                .exclude
                .is_some_and(|matcher| matcher.is_excluded_bytes(&relative));
            let excluded = ignored || dropped;
            let mut child_target = target.to_vec();
            child_target.push(name);
            let Some(kind) = kind_of(&child.meta) else {
                continue;
            };
            if kind == EntryKind::Dir {
                let ignore_allows = !ignored
                    || self
                        .ignore
                        .is_none_or(|m| m.may_include_under(&path_bytes(&child.path)));
                let exclude_allows =
                    !dropped || self.exclude.is_none_or(|m| m.may_include_under(&relative));
                if !excluded {
                    let header = self.header_for(&child.meta, kind, &child_target);
                    plan.insert(&child_target, header, Data::None);
                }
                if ignore_allows && exclude_allows {
                    self.add_tree(plan, &child, &child_target, base, source_number)?;
                }
                continue;
            }
            if excluded {
                continue;
            }
            self.add_leaf(plan, &child, kind, &child_target, source_number)?;
        }
        Ok(())
    }

    fn add_leaf(
        &self,
        plan: &mut CopyPlan,
        found: &Found,
        kind: EntryKind,
        target: &[OsString],
        source_number: usize,
    ) -> Result<(), String> {
        let mut header = self.header_for(&found.meta, kind, target);
        let data = match kind {
            EntryKind::File => {
                header.size = found.meta.len();
                if found.meta.nlink() > 1 {
                    let inode = (source_number, found.meta.dev(), found.meta.ino());
                    plan.insert(target, header, Data::Host(found.host.clone()));
                    plan.inodes.insert(key_of(target), inode);
                    return Ok(());
                }
                Data::Host(found.host.clone())
            }
            EntryKind::Symlink => {
                let link =
                    fs::read_link(&found.host).map_err(|e| format!("{}: {e}", found.display()))?;
                header.link_target = link.into_os_string().into_vec();
                Data::None
            }
            _ => Data::None,
        };
        plan.insert(target, header, data);
        Ok(())
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
                    // The destination directory is made as a parent is (fsutil's
                    // `MkdirAll(dest, 0755)` before copying the contents), never with the
                    // source directory's metadata; an existing one keeps its own.
                    if !dest.is_empty() && !dest_exists {
                        let header = self.created_dir(&dest);
                        plan.insert(&dest, header, Data::None);
                    }
                    self.add_tree(&mut plan, &found, &dest, found.path.len(), source_number)?;
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
                self.add_leaf(&mut plan, &found, kind, &target, source_number)?;
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
        let keys: Vec<Vec<Vec<u8>>> = plan.entries.keys().cloned().collect();
        for key in keys {
            for depth in 1..key.len() {
                let parent = &key[..depth];
                if plan.entries.contains_key(parent) {
                    continue;
                }
                let parts: Vec<OsString> = parent
                    .iter()
                    .map(|p| OsString::from_vec(p.clone()))
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
                    parent.to_vec(),
                    Planned {
                        header,
                        data: Data::None,
                    },
                );
            }
        }
        Ok(())
    }
}

impl CopyPlan {
    fn insert(&mut self, path: &[OsString], header: EntryHeader, data: Data) {
        let key = key_of(path);
        self.inodes.remove(&key);
        // A later source replaces an earlier one, except that a directory stays a directory
        // when another source's contents land in it.
        if header.kind == EntryKind::Dir {
            if let Some(existing) = self.entries.get(&key) {
                if existing.header.kind == EntryKind::Dir {
                    return;
                }
            }
        }
        // Replacing a directory with a file drops what was planned inside it.
        if header.kind != EntryKind::Dir {
            let inside: Vec<Vec<Vec<u8>>> = self
                .entries
                .range(key.clone()..)
                .skip(1)
                .take_while(|(k, _)| k.starts_with(&key))
                .map(|(k, _)| k.clone())
                .collect();
            for k in inside {
                self.entries.remove(&k);
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
                Data::Host(path) => {
                    let file = open_no_follow(path)
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
        let key: Vec<Vec<u8>> = path.split('/').map(|p| p.as_bytes().to_vec()).collect();
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
    fn symbolic_modes() {
        assert_eq!(apply_symbolic(0o644, "u+x", false), 0o744);
        assert_eq!(apply_symbolic(0o777, "go-w", false), 0o755);
        assert_eq!(apply_symbolic(0o600, "a=rX", true), 0o555);
        assert_eq!(apply_symbolic(0o600, "a=rX", false), 0o444);
        assert_eq!(apply_symbolic(0o640, "o=g", false), 0o644);
    }
}
