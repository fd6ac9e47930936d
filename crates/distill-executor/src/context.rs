//! Content hashes of the files a step reads, for cache keys, with a metadata cache so that a
//! rebuild of an unchanged context does not read the files again.
//!
//! A file's hash is remembered with its size, modification and change times and inode
//! number; while all four are the same the file is not read. A touched file (new mtime, same
//! bytes) is read again and hashes the same, so the step stays cached. Files are hashed in
//! parallel (rayon). The cache is one compact binary file per context directory in the store's
//! `cache/context/`, read in the background while the build plans and rewritten at the end of
//! a build if anything changed; losing it (or a damaged one) only costs rereading.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use distill_context::Matcher;
use distill_layer::EntryKind;
use distill_store::Store;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::copy::{CopyPlan, Data, HostFile};
use crate::rootview::{Found, RootView};

/// What says a file is unchanged without reading it: while its size, modification and change
/// times and inode number are the same, its remembered hash holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }
}

#[derive(Clone, Debug)]
struct Remembered {
    stamp: Stamp,
    sha256: [u8; 32],
}

/// Remembered hashes by host path (bytes: hashing an `OsString` is hashing its bytes, where a
/// `PathBuf` hashes component by component).
type Entries = HashMap<OsString, Remembered, BuildHasherDefault<PathHasher>>;

/// A fast hash for paths (FxHash's multiply-rotate over 8-byte words): the table holds every
/// file of the context and is looked up once per file per build, where SipHash's resistance to
/// chosen keys buys nothing (the context's author also writes the build's `RUN` steps).
#[derive(Default)]
struct PathHasher(u64);

impl PathHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(PathHasher::K);
    }
}

impl Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Remembered content hashes of host files, by path.
#[derive(Debug, Default)]
pub struct ContextHashes {
    file: Option<PathBuf>,
    /// The context directory, canonical: its files' hashes are kept from build to build.
    context: PathBuf,
    /// The cache file being read in the background (so that reading it overlaps planning);
    /// joined into `entries` on first use.
    loading: Option<JoinHandle<Entries>>,
    entries: Entries,
    /// Files outside the context looked at in this build (others are forgotten on save).
    used: HashSet<OsString>,
    changed: bool,
    /// [`SETTLE_NS`] (tests set less).
    settle_ns: i128,
}

/// How [`EntryKind`]'s `Display` names a kind (the digest's spelling).
fn kind_name(kind: EntryKind) -> &'static [u8] {
    match kind {
        EntryKind::File => b"file",
        EntryKind::Dir => b"directory",
        EntryKind::Symlink => b"symlink",
        EntryKind::Hardlink => b"hardlink",
        EntryKind::CharDevice => b"character device",
        EntryKind::BlockDevice => b"block device",
        EntryKind::Fifo => b"fifo",
    }
}

/// Appends `number` in `radix` (8 or 10) digits, as `{}` and `{:o}` format it.
fn push_number(out: &mut Vec<u8>, mut number: u64, radix: u64) {
    let mut digits = [0u8; 24];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (number % radix) as u8;
        number /= radix;
        if number == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A SHA-256 digest as lowercase hex, without allocating.
fn hex_digest(digest: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 64];
    for (index, byte) in digest.iter().enumerate() {
        text[2 * index] = DIGITS[usize::from(byte >> 4)];
        text[2 * index + 1] = DIGITS[usize::from(byte & 0xf)];
    }
    text
}

/// The SHA-256 of a file's content.
fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().into())
}

/// How long after its last change a file's hash may be remembered (see
/// [`ContextHashes::hashes`]); far more than the few milliseconds a tick of the kernel's
/// file clock lasts, and short enough that only files being edited are read again.
const SETTLE_NS: i128 = 1_000_000_000;

/// Now, in nanoseconds since the epoch (the clock file times are taken from).
fn now_ns() -> i128 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => since.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

/// The first bytes of a cache file; another version's file is ignored (and rewritten).
const MAGIC: &[u8] = b"distill context hashes 1\n";

/// The cache file's bytes: [`MAGIC`], then per file the path's length (u32), the path, size
/// (u64), mtime and ctime in nanoseconds (i128), inode (u64) and the SHA-256, little-endian.
fn encode<'a>(entries: impl Iterator<Item = (&'a OsString, &'a Remembered)>) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    for (path, remembered) in entries {
        let path = path.as_bytes();
        let Ok(len) = u32::try_from(path.len()) else {
            continue;
        };
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(path);
        let stamp = &remembered.stamp;
        bytes.extend_from_slice(&stamp.size.to_le_bytes());
        bytes.extend_from_slice(&stamp.mtime_ns.to_le_bytes());
        bytes.extend_from_slice(&stamp.ctime_ns.to_le_bytes());
        bytes.extend_from_slice(&stamp.ino.to_le_bytes());
        bytes.extend_from_slice(&remembered.sha256);
    }
    bytes
}

/// The entries of a cache file; `None` if it is not one or is cut short.
fn decode(bytes: &[u8]) -> Option<Entries> {
    fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
        let (head, tail) = rest.split_first_chunk::<N>()?;
        *rest = tail;
        Some(*head)
    }
    let mut rest = bytes.strip_prefix(MAGIC)?;
    // Entries are about 100 bytes each: one allocation for the table.
    let mut entries = Entries::with_capacity_and_hasher(rest.len() / 100, Default::default());
    while !rest.is_empty() {
        let len = usize::try_from(u32::from_le_bytes(take(&mut rest)?)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (path, tail) = rest.split_at(len);
        rest = tail;
        let stamp = Stamp {
            size: u64::from_le_bytes(take(&mut rest)?),
            mtime_ns: i128::from_le_bytes(take(&mut rest)?),
            ctime_ns: i128::from_le_bytes(take(&mut rest)?),
            ino: u64::from_le_bytes(take(&mut rest)?),
        };
        let sha256 = take(&mut rest)?;
        entries.insert(
            OsString::from_vec(path.to_vec()),
            Remembered { stamp, sha256 },
        );
    }
    Some(entries)
}

impl ContextHashes {
    /// The remembered hashes for `context_dir` (none if the cache is missing or unreadable),
    /// read in the background until first needed.
    pub fn load(store: &Store, context_dir: &Path) -> ContextHashes {
        let absolute = fs::canonicalize(context_dir).unwrap_or_else(|_| context_dir.to_path_buf());
        let name = hex(&Sha256::digest(absolute.as_os_str().as_encoded_bytes()));
        let dir = store.cache_dir().join("context");
        // The JSON file of earlier versions is forgotten.
        let _ = fs::remove_file(dir.join(format!("{name}.json")));
        let file = dir.join(format!("{name}.bin"));
        let read_from = file.clone();
        let read = move || {
            fs::read(&read_from)
                .ok()
                .and_then(|bytes| decode(&bytes))
                .unwrap_or_default()
        };
        // Without a thread (none left), read it now.
        let (loading, entries) = match std::thread::Builder::new()
            .name("context-hashes".to_string())
            .spawn(read.clone())
        {
            Ok(handle) => (Some(handle), Entries::default()),
            Err(_) => (None, read()),
        };
        ContextHashes {
            file: Some(file),
            context: absolute,
            loading,
            entries,
            used: HashSet::new(),
            changed: false,
            settle_ns: SETTLE_NS,
        }
    }

    /// The remembered entries, once the background read is done.
    fn loaded(&mut self) -> &mut Entries {
        if let Some(loading) = self.loading.take() {
            self.entries = loading.join().unwrap_or_default();
        }
        &mut self.entries
    }

    /// Writes the remembered hashes back, if anything changed.
    pub fn save(&self, _store: &Store) {
        let Some(file) = &self.file else { return };
        // Nothing changes before the entries are loaded, so `entries` is complete here.
        if !self.changed {
            return;
        }
        // Files of stage snapshots are remembered only while builds use them.
        let bytes = encode(
            self.entries
                .iter()
                .filter(|(path, _)| self.in_context(path) || self.used.contains(*path)),
        );
        if let Some(dir) = file.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let temp = file.with_extension(format!("tmp-{}", std::process::id()));
        if fs::write(&temp, bytes).is_ok() && fs::rename(&temp, file).is_err() {
            let _ = fs::remove_file(&temp);
        }
    }

    /// Whether the host file `path` is inside the context directory.
    fn in_context(&self, path: &OsStr) -> bool {
        let (path, context) = (path.as_bytes(), self.context.as_os_str().as_bytes());
        path.starts_with(context)
            && (context.ends_with(b"/") || path.get(context.len()).is_none_or(|&b| b == b'/'))
    }

    /// Hashes of `files` (host files with the stamps their walk saw), reading only those
    /// whose stamp differs from the remembered one.
    ///
    /// A hash read is remembered with the walk's stamp: a file changed after the walk has
    /// another stamp by the next build, which reads it again. A file changed less than
    /// [`SETTLE_NS`] before this build is not remembered: a later change within the same tick
    /// of the kernel's file clock would keep its stamp.
    fn hashes(&mut self, files: &[&HostFile]) -> io::Result<Vec<[u8; 32]>> {
        let mut results: Vec<Option<[u8; 32]>> = Vec::with_capacity(files.len());
        let mut to_read: Vec<usize> = Vec::new();
        {
            let entries = &*self.loaded();
            for (index, file) in files.iter().enumerate() {
                match entries.get(file.path.as_os_str()) {
                    Some(known) if known.stamp == file.stamp => results.push(Some(known.sha256)),
                    _ => {
                        to_read.push(index);
                        results.push(None);
                    }
                }
            }
        }
        // Files inside the context are kept on save anyway; only others need marking.
        for file in files {
            let path = file.path.as_os_str();
            if !self.in_context(path) && !self.used.contains(path) {
                self.used.insert(path.to_owned());
            }
        }
        if to_read.is_empty() {
            return Ok(results.into_iter().map(Option::unwrap_or_default).collect());
        }
        let read_one = |index: usize| (index, hash_file(&files[index].path));
        // One file (a changed source) is read here: a thread pool would cost more.
        let read: Vec<(usize, io::Result<[u8; 32]>)> = if to_read.len() > 1 {
            to_read.par_iter().map(|&index| read_one(index)).collect()
        } else {
            to_read.iter().map(|&index| read_one(index)).collect()
        };
        let settled_before = now_ns() - self.settle_ns;
        for (index, hashed) in read {
            let hash = hashed?;
            let file = files[index];
            let path = file.path.as_os_str();
            if file.stamp.mtime_ns.max(file.stamp.ctime_ns) < settled_before {
                let remembered = Remembered {
                    stamp: file.stamp.clone(),
                    sha256: hash,
                };
                self.entries.insert(path.to_owned(), remembered);
                self.changed = true;
            } else if self.entries.remove(path).is_some() {
                self.changed = true;
            }
            results[index] = Some(hash);
        }
        // Every index was either known or read above.
        Ok(results.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// A digest of everything a copy writes except times: paths, kinds, modes, owners, link
    /// targets and contents.
    pub fn plan_digest(&mut self, plan: &CopyPlan, _from_context: bool) -> io::Result<Vec<u8>> {
        let files: Vec<&HostFile> = plan
            .entries
            .values()
            .filter_map(|p| match &p.data {
                Data::Host(file) => Some(file),
                _ => None,
            })
            .collect();
        let mut hashes = self.hashes(&files)?.into_iter();
        let mut hasher = Sha256::new();
        // Each entry's fields as `kind:mode(octal):uid:gid:size:major:minor`, written without
        // the formatting machinery (this runs for every file of the context on every build).
        let mut fields: Vec<u8> = Vec::with_capacity(96);
        for planned in plan.entries.values() {
            let header = &planned.header;
            hasher.update((header.path.len() as u64).to_le_bytes());
            hasher.update(&header.path);
            fields.clear();
            fields.extend_from_slice(kind_name(header.kind));
            fields.push(b':');
            push_number(&mut fields, u64::from(header.mode), 8);
            for number in [
                header.uid,
                header.gid,
                header.size,
                u64::from(header.dev_major),
                u64::from(header.dev_minor),
            ] {
                fields.push(b':');
                push_number(&mut fields, number, 10);
            }
            hasher.update(&fields);
            hasher.update((header.link_target.len() as u64).to_le_bytes());
            hasher.update(&header.link_target);
            match &planned.data {
                Data::Host(_) => hasher.update(hex_digest(&hashes.next().unwrap_or_default())),
                Data::Bytes(bytes) => hasher.update(Sha256::digest(bytes)),
                Data::None => {}
            }
        }
        Ok(hasher.finalize().to_vec())
    }

    /// A digest of a directory tree of the context (a bind mount's source).
    pub fn tree_digest(
        &mut self,
        view: &RootView,
        root: &Found,
        ignore: &Matcher,
    ) -> io::Result<Vec<u8>> {
        let mut entries: Vec<Found> = Vec::new();
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            if !dir.meta.is_dir() {
                entries.push(dir);
                continue;
            }
            for child in view.list(&dir)? {
                let rel: Vec<u8> = child.display().trim_start_matches('/').as_bytes().to_vec();
                if ignore.is_excluded_bytes(&rel) {
                    continue;
                }
                if child.meta.is_dir() {
                    pending.push(child.clone());
                }
                entries.push(child);
            }
        }
        entries.sort_by_key(|e| e.display());
        let files: Vec<HostFile> = entries
            .iter()
            .filter(|e| e.meta.is_file())
            .map(|e| HostFile {
                path: e.host.clone(),
                stamp: Stamp::of(&e.meta),
            })
            .collect();
        let files: Vec<&HostFile> = files.iter().collect();
        let mut hashes = self.hashes(&files)?.into_iter();
        let mut hasher = Sha256::new();
        for entry in &entries {
            hasher.update(entry.display());
            hasher.update(format!(
                ":{:o}:{}:{}",
                entry.meta.mode(),
                entry.meta.uid(),
                entry.meta.gid()
            ));
            if entry.meta.is_file() {
                hasher.update(hex_digest(&hashes.next().unwrap_or_default()));
            } else if entry.meta.file_type().is_symlink() {
                hasher.update(fs::read_link(&entry.host)?.as_os_str().as_encoded_bytes());
            }
        }
        Ok(hasher.finalize().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The remembered hashes, remembering even files changed just now.
    fn settled(store: &Store, context: &Path) -> ContextHashes {
        let mut hashes = ContextHashes::load(store, context);
        hashes.settle_ns = 0;
        hashes
    }

    /// A host file as a walk would find it now.
    fn walked(path: &Path) -> HostFile {
        HostFile {
            path: path.to_path_buf(),
            stamp: Stamp::of(&fs::symlink_metadata(path).unwrap()),
        }
    }

    #[test]
    fn remembered_hashes_survive_a_save_and_outside_files_are_dropped_when_unused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let context = dir.path().join("ctx");
        fs::create_dir_all(&context).unwrap();
        let context = fs::canonicalize(&context).unwrap();
        let inside = context.join("a");
        let outside = dir.path().join("snapshot-file");
        fs::write(&inside, "a").unwrap();
        fs::write(&outside, "b").unwrap();

        let mut hashes = settled(&store, &context);
        let first = hashes
            .hashes(&[&walked(&inside), &walked(&outside)])
            .unwrap();
        assert_eq!(first[0], <[u8; 32]>::from(Sha256::digest(b"a")));
        hashes.save(&store);

        // Reloaded: both remembered (the outside file was used by the build that saved).
        let mut reloaded = settled(&store, &context);
        assert_eq!(reloaded.loaded().len(), 2);
        // A touched file is read again and hashes the same.
        fs::write(&inside, "a").unwrap();
        assert_eq!(reloaded.hashes(&[&walked(&inside)]).unwrap(), [first[0]]);
        reloaded.save(&store);
        let mut last = settled(&store, &context);
        assert!(last.loaded().contains_key(inside.as_os_str()));
        assert!(!last.loaded().contains_key(outside.as_os_str()));
    }

    /// Sets a file's modification time (its change time moves to now as well).
    fn set_mtime(path: &Path, seconds: i64) {
        let time = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: seconds,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: seconds,
                tv_nsec: 0,
            },
        };
        rustix::fs::utimensat(rustix::fs::CWD, path, &time, rustix::fs::AtFlags::empty()).unwrap();
    }

    #[test]
    fn a_stamp_from_the_walk_decides_whether_a_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let context = fs::canonicalize(dir.path()).unwrap().join("ctx");
        fs::create_dir_all(&context).unwrap();
        let file = context.join("f");
        fs::write(&file, "one").unwrap();
        set_mtime(&file, 1_000);
        let mut hashes = settled(&store, &context);
        let one = hashes.hashes(&[&walked(&file)]).unwrap()[0];
        assert_eq!(one, <[u8; 32]>::from(Sha256::digest(b"one")));
        hashes.save(&store);

        // Same size, same mtime, but a new change time: the content is read again.
        let mut hashes = settled(&store, &context);
        fs::write(&file, "two").unwrap();
        set_mtime(&file, 1_000);
        let two = hashes.hashes(&[&walked(&file)]).unwrap()[0];
        assert_eq!(two, <[u8; 32]>::from(Sha256::digest(b"two")));

        // Same size, a new mtime: read again too.
        fs::write(&file, "333").unwrap();
        set_mtime(&file, 2_000);
        let three = hashes.hashes(&[&walked(&file)]).unwrap()[0];
        assert_eq!(three, <[u8; 32]>::from(Sha256::digest(b"333")));

        // While the stamp the walk saw is the remembered one, the file is not read: a
        // remembered hash is trusted (here it is made up, to tell reading from not).
        let stamp = walked(&file).stamp;
        hashes.entries.insert(
            file.clone().into_os_string(),
            Remembered {
                stamp: stamp.clone(),
                sha256: [7; 32],
            },
        );
        assert_eq!(hashes.hashes(&[&walked(&file)]).unwrap()[0], [7; 32]);

        // A file replaced by another one (new inode) with the same size and times is read.
        let replacement = context.join("g");
        fs::write(&replacement, "333").unwrap();
        fs::rename(&replacement, &file).unwrap();
        set_mtime(&file, 2_000);
        let replaced = walked(&file);
        assert_ne!(replaced.stamp.ino, stamp.ino);
        assert_eq!(hashes.hashes(&[&replaced]).unwrap()[0], three);

        // The stamp remembered is the walk's: a file that changed after the walk saw it
        // (here: a stamp the file never had) has another stamp next time and is read again.
        let stale = HostFile {
            path: file.clone(),
            stamp: Stamp {
                size: 3,
                mtime_ns: 1,
                ctime_ns: 1,
                ino: 0,
            },
        };
        hashes.hashes(&[&stale]).unwrap();
        hashes.entries.get_mut(file.as_os_str()).unwrap().sha256 = [9; 32];
        assert_eq!(hashes.hashes(&[&walked(&file)]).unwrap()[0], three);
    }

    #[test]
    fn files_changed_just_now_are_hashed_but_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let context = fs::canonicalize(dir.path()).unwrap().join("ctx");
        fs::create_dir_all(&context).unwrap();
        let (fresh, old) = (context.join("fresh"), context.join("old"));
        fs::write(&fresh, "fresh").unwrap();
        fs::write(&old, "old").unwrap();
        let mut hashes = ContextHashes::load(&store, &context);
        // An old file: its stamp is made to look older than the settling time.
        let mut old_file = walked(&old);
        old_file.stamp.mtime_ns -= 10 * SETTLE_NS;
        old_file.stamp.ctime_ns -= 10 * SETTLE_NS;
        let got = hashes.hashes(&[&walked(&fresh), &old_file]).unwrap();
        assert_eq!(got[0], <[u8; 32]>::from(Sha256::digest(b"fresh")));
        assert_eq!(got[1], <[u8; 32]>::from(Sha256::digest(b"old")));
        assert!(!hashes.entries.contains_key(fresh.as_os_str()));
        assert!(hashes.entries.contains_key(old.as_os_str()));
        // A fresh file's outdated hash is dropped rather than kept.
        let mut stale = walked(&fresh);
        stale.stamp.size = 99;
        hashes.entries.insert(
            fresh.clone().into_os_string(),
            Remembered {
                stamp: stale.stamp,
                sha256: [1; 32],
            },
        );
        hashes.hashes(&[&walked(&fresh)]).unwrap();
        assert!(!hashes.entries.contains_key(fresh.as_os_str()));
    }

    #[test]
    fn digest_fields_are_spelled_as_formatting_spells_them() {
        for (number, radix) in [(0u64, 10), (7, 8), (0o755, 8), (0o4755, 8), (u64::MAX, 10)] {
            let mut out = Vec::new();
            push_number(&mut out, number, radix);
            let expected = if radix == 8 {
                format!("{number:o}")
            } else {
                number.to_string()
            };
            assert_eq!(out, expected.as_bytes());
        }
        for kind in [
            EntryKind::File,
            EntryKind::Dir,
            EntryKind::Symlink,
            EntryKind::Hardlink,
            EntryKind::CharDevice,
            EntryKind::BlockDevice,
            EntryKind::Fifo,
        ] {
            assert_eq!(kind_name(kind), kind.to_string().as_bytes());
        }
    }

    #[test]
    fn files_under_the_context_are_told_apart_from_neighbours() {
        let mut hashes = ContextHashes {
            context: PathBuf::from("/work/ctx"),
            ..ContextHashes::default()
        };
        assert!(hashes.in_context(OsStr::new("/work/ctx/a")));
        assert!(hashes.in_context(OsStr::new("/work/ctx")));
        assert!(!hashes.in_context(OsStr::new("/work/ctx2/a")));
        assert!(!hashes.in_context(OsStr::new("/work/other")));
        hashes.context = PathBuf::from("/");
        assert!(hashes.in_context(OsStr::new("/anything")));
    }

    #[test]
    fn the_cache_file_round_trips_and_a_damaged_one_is_refused() {
        let mut entries = Entries::default();
        entries.insert(
            OsString::from("/ctx/dir/f\u{e9}.txt"),
            Remembered {
                stamp: Stamp {
                    size: 7,
                    mtime_ns: -1_500_000_000,
                    ctime_ns: 1_700_000_000_123_456_789,
                    ino: u64::MAX,
                },
                sha256: [0xab; 32],
            },
        );
        entries.insert(
            OsString::from("/ctx/empty"),
            Remembered {
                stamp: Stamp {
                    size: 0,
                    mtime_ns: 0,
                    ctime_ns: 0,
                    ino: 3,
                },
                sha256: [0; 32],
            },
        );
        let bytes = encode(entries.iter());
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.len(), 2);
        for (path, remembered) in &entries {
            let back = &decoded[path];
            assert_eq!(back.stamp, remembered.stamp);
            assert_eq!(back.sha256, remembered.sha256);
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode(b"[]").is_none());
        assert!(decode(MAGIC).unwrap().is_empty());
    }

    #[test]
    fn hex_digest_is_lowercase_hex() {
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(&hex_digest(&digest)[..], hex(&digest).as_bytes());
    }
}
