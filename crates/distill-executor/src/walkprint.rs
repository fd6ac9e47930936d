//! A COPY's shortcut on a rebuild: the fingerprint of the context files it names, from their
//! names and stat data alone, remembered with the content digest the full plan gave.
//!
//! Planning a COPY of a large context (listing, `.dockerignore`, the plan's entries, the hashes
//! of every file) costs far more than looking at the files: when nothing changed, a rebuild
//! only needs to know that. [`fingerprint`] walks each literal source below the context root
//! and hashes every entry's relative path, type, mode, owner, size, inode, device, mtime and
//! ctime (a content, mode, owner or link change moves the ctime; a hard link moves the
//! link count, which moves the ctime too), together with everything else the plan depends on
//! (the step's parent key, its instruction, the ignore patterns). [`Remembered`] maps that
//! fingerprint to the plan's content digest, so an unchanged COPY finds its cache key without
//! planning.
//!
//! It is only a shortcut, never a second source of truth: any doubt (a wildcard, a `..`, a
//! symlink on the way to a source, a missing source, an unreadable entry) gives no fingerprint
//! and the full plan runs; a walk that sees a file changed within the last second is not
//! remembered (its times could still move within one tick of the file clock); the walk covers
//! ignored files too, so it only ever misses more often than the plan would.

use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use distill_context::Matcher;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

/// A fingerprint, and whether it may be remembered (no entry changed in the last second).
pub struct Fingerprint {
    pub digest: [u8; 32],
    pub settled: bool,
}

/// Times within this many nanoseconds of the walk are racy: the entry is not remembered.
const SETTLE_NS: i128 = 1_000_000_000;

/// Walks `sources` (as written in the COPY, relative to the context `root`) and hashes them
/// with `salt` (everything else the step's plan depends on). `None` when the shortcut does
/// not apply (see the module's documentation).
///
/// Entries `ignore` excludes are left out when it has no exception (`!pattern`): the plan
/// never copies them nor anything below them, and a COPY of a context whose large ignored
/// directories (`node_modules`, `target`) would otherwise be walked on every build.
pub fn fingerprint(
    root: &Path,
    sources: &[String],
    ignore: &Matcher,
    salt: &[u8],
) -> Option<Fingerprint> {
    let ignore = (!ignore.is_empty() && !ignore.has_exceptions()).then_some(ignore);
    let mut walk = Walk {
        hasher: Sha256::new(),
        newest_ns: i128::MIN,
        ignore,
    };
    walk.hasher.update(b"distill-walkprint-v1\0");
    walk.hasher.update((salt.len() as u64).to_le_bytes());
    walk.hasher.update(salt);
    for source in sources {
        let relative = literal_path(source)?;
        let meta = lstat_components(root, &relative)?;
        walk.hasher.update(b"\0source\0");
        walk.hasher.update(source.as_bytes());
        walk.entry(&relative, &meta);
        if meta.is_dir() {
            walk.tree(&root.join(&relative), &relative).ok()?;
        }
    }
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    Some(Fingerprint {
        digest: walk.hasher.finalize().into(),
        settled: walk.newest_ns < now_ns - SETTLE_NS,
    })
}

struct Walk<'a> {
    hasher: Sha256,
    newest_ns: i128,
    ignore: Option<&'a Matcher>,
}

impl Walk<'_> {
    fn entry(&mut self, relative: &Path, meta: &fs::Metadata) {
        let path = relative.as_os_str().as_bytes();
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        let ctime_ns = i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec());
        self.newest_ns = self.newest_ns.max(mtime_ns).max(ctime_ns);
        let mut record = [0u8; 8 * 9 + 32];
        let fields: [u64; 9] = [
            path.len() as u64,
            u64::from(meta.mode()),
            u64::from(meta.uid()),
            u64::from(meta.gid()),
            meta.size(),
            meta.ino(),
            meta.dev(),
            meta.rdev(),
            meta.nlink(),
        ];
        for (slot, field) in record.chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&field.to_le_bytes());
        }
        record[72..88].copy_from_slice(&mtime_ns.to_le_bytes());
        record[88..104].copy_from_slice(&ctime_ns.to_le_bytes());
        self.hasher.update(record);
        self.hasher.update(path);
    }

    /// Every entry below the directory `host` (`relative` to the context), sorted by name;
    /// symlinks are entries, never followed. Each subdirectory's entries are hashed on their
    /// own, in parallel, and its digest is added in order after its parent's entries.
    fn tree(&mut self, host: &Path, relative: &Path) -> io::Result<()> {
        let mut children: Vec<(std::ffi::OsString, fs::DirEntry)> = fs::read_dir(host)?
            .map(|child| child.map(|child| (child.file_name(), child)))
            .collect::<io::Result<_>>()?;
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut subdirectories: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (name, child) in children {
            let child_relative = relative.join(name);
            if let Some(ignore) = self.ignore {
                if ignore.is_excluded_bytes(child_relative.as_os_str().as_bytes()) {
                    continue;
                }
            }
            let meta = child.metadata()?;
            self.entry(&child_relative, &meta);
            if meta.is_dir() {
                subdirectories.push((child.path(), child_relative));
            }
        }
        let subtrees: Vec<([u8; 32], i128)> = subdirectories
            .par_iter()
            .map(|(host, relative)| {
                let mut walk = Walk {
                    hasher: Sha256::new(),
                    newest_ns: i128::MIN,
                    ignore: self.ignore,
                };
                walk.tree(host, relative)?;
                Ok((walk.hasher.finalize().into(), walk.newest_ns))
            })
            .collect::<io::Result<_>>()?;
        for (digest, newest_ns) in subtrees {
            self.hasher.update(digest);
            self.newest_ns = self.newest_ns.max(newest_ns);
        }
        Ok(())
    }
}

/// The source as a plain relative path below the context root, or `None` when it has a
/// wildcard or a `..` (the plan resolves those).
fn literal_path(source: &str) -> Option<PathBuf> {
    if source.contains(['*', '?', '[', '\\']) {
        return None;
    }
    let mut path = PathBuf::new();
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            name => path.push(name),
        }
    }
    Some(path)
}

/// The metadata of `root/relative`, `None` if it or a directory on the way is missing, is a
/// symlink (the plan follows those inside the context) or cannot be read.
fn lstat_components(root: &Path, relative: &Path) -> Option<fs::Metadata> {
    let mut host = root.to_path_buf();
    let mut meta = fs::symlink_metadata(&host).ok()?;
    for part in relative.iter() {
        if !meta.is_dir() {
            return None;
        }
        host.push(part);
        meta = fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            return None;
        }
    }
    Some(meta)
}

/// The content digests of earlier plans, by fingerprint: one small file each in `dir` (the
/// store's `cache/copy-walks/`, emptied by `distill builder prune` with the rest of `cache/`).
pub struct Remembered {
    dir: PathBuf,
}

impl Remembered {
    pub fn new(dir: PathBuf) -> Remembered {
        Remembered { dir }
    }

    fn path(&self, fingerprint: &[u8; 32]) -> PathBuf {
        self.dir.join(hex(fingerprint))
    }

    /// The content digest remembered for `fingerprint`, if any (a damaged record is none).
    pub fn get(&self, fingerprint: &[u8; 32]) -> Option<Vec<u8>> {
        let text = fs::read(self.path(fingerprint)).ok()?;
        if text.len() != 64 {
            return None;
        }
        let mut digest = Vec::with_capacity(32);
        for pair in text.chunks_exact(2) {
            let pair = std::str::from_utf8(pair).ok()?;
            digest.push(u8::from_str_radix(pair, 16).ok()?);
        }
        Some(digest)
    }

    /// Remembers `content` for `fingerprint`, atomically; a failure only costs a later plan.
    pub fn put(&self, fingerprint: &[u8; 32], content: &[u8]) {
        let write = || -> io::Result<()> {
            fs::create_dir_all(&self.dir)?;
            let path = self.path(fingerprint);
            // Unique per writer: two stages of one build may remember the same fingerprint.
            static WRITERS: AtomicU64 = AtomicU64::new(0);
            let temporary = self.dir.join(format!(
                ".tmp-{}-{}-{}",
                std::process::id(),
                WRITERS.fetch_add(1, Ordering::Relaxed),
                hex(fingerprint)
            ));
            let mut file = fs::File::create(&temporary)?;
            file.write_all(hex(content).as_bytes())?;
            drop(file);
            fs::rename(&temporary, path)
        };
        let _ = write();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src/deep")).unwrap();
        fs::write(dir.path().join("src/a.txt"), "a").unwrap();
        fs::write(dir.path().join("src/deep/b.txt"), "b").unwrap();
        fs::write(dir.path().join("top.txt"), "top").unwrap();
        dir
    }

    fn print(root: &Path, sources: &[&str]) -> Option<[u8; 32]> {
        let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
        fingerprint(root, &sources, &Matcher::default(), b"salt").map(|f| f.digest)
    }

    #[test]
    fn the_same_tree_gives_the_same_fingerprint() {
        let dir = context();
        let first = print(dir.path(), &["src", "top.txt"]).unwrap();
        assert_eq!(print(dir.path(), &["src", "top.txt"]), Some(first));
        assert!(print(dir.path(), &["./src/", "top.txt"]).is_some());
        assert_ne!(print(dir.path(), &["src"]), Some(first));
    }

    #[test]
    fn any_change_below_a_source_changes_it() {
        let dir = context();
        let before = print(dir.path(), &["src"]).unwrap();
        // Same size, new content: mtime and ctime move (a tick of the file clock later; a
        // change within the same tick is what `settled` guards against).
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(dir.path().join("src/deep/b.txt"), "c").unwrap();
        let after_content = print(dir.path(), &["src"]).unwrap();
        assert_ne!(before, after_content);
        // Mode only.
        let path = dir.path().join("src/a.txt");
        let mut permissions = fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
        fs::set_permissions(&path, permissions).unwrap();
        let after_mode = print(dir.path(), &["src"]).unwrap();
        assert_ne!(after_content, after_mode);
        // A new empty file.
        fs::write(dir.path().join("src/new"), "").unwrap();
        assert_ne!(print(dir.path(), &["src"]).unwrap(), after_mode);
        // A file outside the sources changes nothing.
        let stable = print(dir.path(), &["src"]).unwrap();
        fs::write(dir.path().join("top.txt"), "other").unwrap();
        assert_eq!(print(dir.path(), &["src"]), Some(stable));
    }

    #[test]
    fn doubtful_sources_give_no_fingerprint() {
        let dir = context();
        symlink("src", dir.path().join("link")).unwrap();
        for source in [
            "*.txt",
            "src/[ab].txt",
            "../x",
            "src/../top.txt",
            "link",
            "link/a.txt",
            "missing",
            "top.txt/x",
        ] {
            assert_eq!(print(dir.path(), &[source]), None, "{source}");
        }
        // A symlink inside a copied tree is an entry, not a detour.
        symlink("../top.txt", dir.path().join("src/up")).unwrap();
        assert!(print(dir.path(), &["src"]).is_some());
    }

    #[test]
    fn only_settled_walks_may_be_remembered() {
        let dir = context();
        let sources = vec!["top.txt".to_string()];
        assert!(
            !fingerprint(dir.path(), &sources, &Matcher::default(), b"")
                .unwrap()
                .settled
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(
            fingerprint(dir.path(), &sources, &Matcher::default(), b"")
                .unwrap()
                .settled
        );
    }

    #[test]
    fn remembered_digests_round_trip_and_damaged_records_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let remembered = Remembered::new(dir.path().join("copy-walks"));
        let key = [7u8; 32];
        assert_eq!(remembered.get(&key), None);
        remembered.put(&key, &[0xab; 32]);
        assert_eq!(remembered.get(&key), Some(vec![0xab; 32]));
        fs::write(remembered.path(&key), "zz").unwrap();
        assert_eq!(remembered.get(&key), None);
    }

    #[test]
    fn ignored_entries_are_left_out_unless_an_exception_exists() {
        let dir = context();
        let ignore = Matcher::new(["src/deep"]).unwrap();
        let sources = vec!["src".to_string()];
        let of = |ignore: &Matcher| {
            fingerprint(dir.path(), &sources, ignore, b"")
                .unwrap()
                .digest
        };
        let before = of(&ignore);
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(dir.path().join("src/deep/b.txt"), "changed").unwrap();
        assert_eq!(of(&ignore), before);
        let with_exception = Matcher::new(["src/deep", "!src/deep/b.txt"]).unwrap();
        let before = of(&with_exception);
        fs::write(dir.path().join("src/deep/b.txt"), "changed again").unwrap();
        assert_ne!(of(&with_exception), before);
    }
}
