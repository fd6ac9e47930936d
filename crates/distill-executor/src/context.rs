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
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use distill_context::Matcher;
use distill_store::Store;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::copy::{CopyPlan, Data};
use crate::rootview::{Found, RootView};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
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

type Entries = HashMap<PathBuf, Remembered>;

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
    /// Files looked at in this build (others outside the context are forgotten on save).
    used: HashSet<PathBuf>,
    changed: bool,
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

/// The first bytes of a cache file; another version's file is ignored (and rewritten).
const MAGIC: &[u8] = b"distill context hashes 1\n";

/// The cache file's bytes: [`MAGIC`], then per file the path's length (u32), the path, size
/// (u64), mtime and ctime in nanoseconds (i128), inode (u64) and the SHA-256, little-endian.
fn encode<'a>(entries: impl Iterator<Item = (&'a PathBuf, &'a Remembered)>) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    for (path, remembered) in entries {
        let path = path.as_os_str().as_bytes();
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
    let mut entries = Entries::new();
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
        let path = PathBuf::from(OsString::from_vec(path.to_vec()));
        entries.insert(path, Remembered { stamp, sha256 });
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
            Ok(handle) => (Some(handle), Entries::new()),
            Err(_) => (None, read()),
        };
        ContextHashes {
            file: Some(file),
            context: absolute,
            loading,
            entries,
            used: HashSet::new(),
            changed: false,
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
                .filter(|(path, _)| path.starts_with(&self.context) || self.used.contains(*path)),
        );
        if let Some(dir) = file.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let temp = file.with_extension(format!("tmp-{}", std::process::id()));
        if fs::write(&temp, bytes).is_ok() && fs::rename(&temp, file).is_err() {
            let _ = fs::remove_file(&temp);
        }
    }

    /// Hashes of `paths` (host files), reading only those whose stamp changed.
    fn hashes(&mut self, paths: &[PathBuf]) -> io::Result<Vec<[u8; 32]>> {
        // Stat and look up in parallel: on an unchanged context this is all the work there is.
        let entries = &*self.loaded();
        let looked_up: Vec<io::Result<(Stamp, Option<[u8; 32]>)>> = paths
            .par_iter()
            .map(|path| {
                let stamp = Stamp::of(&fs::symlink_metadata(path)?);
                let known = match entries.get(path) {
                    Some(known) if known.stamp == stamp => Some(known.sha256),
                    _ => None,
                };
                Ok((stamp, known))
            })
            .collect();
        // Files inside the context are kept on save anyway; only others need marking.
        self.used.extend(
            paths
                .iter()
                .filter(|path| !path.starts_with(&self.context))
                .cloned(),
        );
        let mut stamps: Vec<Stamp> = Vec::with_capacity(paths.len());
        let mut results: Vec<Option<[u8; 32]>> = Vec::with_capacity(paths.len());
        let mut to_read: Vec<usize> = Vec::new();
        for (index, looked_up) in looked_up.into_iter().enumerate() {
            let (stamp, known) = looked_up?;
            if known.is_none() {
                to_read.push(index);
            }
            stamps.push(stamp);
            results.push(known);
        }
        let read: Vec<(usize, io::Result<[u8; 32]>)> = to_read
            .par_iter()
            .map(|&index| (index, hash_file(&paths[index])))
            .collect();
        for (index, hash) in read {
            let hash = hash?;
            self.entries.insert(
                paths[index].clone(),
                Remembered {
                    stamp: stamps[index].clone(),
                    sha256: hash,
                },
            );
            self.changed = true;
            results[index] = Some(hash);
        }
        // Every index was either known or read above.
        Ok(results.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// A digest of everything a copy writes except times: paths, kinds, modes, owners, link
    /// targets and contents.
    pub fn plan_digest(&mut self, plan: &CopyPlan, _from_context: bool) -> io::Result<Vec<u8>> {
        let files: Vec<PathBuf> = plan
            .entries
            .values()
            .filter_map(|p| match &p.data {
                Data::Host(path) => Some(path.clone()),
                _ => None,
            })
            .collect();
        let mut hashes = self.hashes(&files)?.into_iter();
        let mut hasher = Sha256::new();
        for planned in plan.entries.values() {
            let header = &planned.header;
            hasher.update((header.path.len() as u64).to_le_bytes());
            hasher.update(&header.path);
            hasher.update(format!(
                "{}:{:o}:{}:{}:{}:{}:{}",
                header.kind,
                header.mode,
                header.uid,
                header.gid,
                header.size,
                header.dev_major,
                header.dev_minor
            ));
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
        let files: Vec<PathBuf> = entries
            .iter()
            .filter(|e| e.meta.is_file())
            .map(|e| e.host.clone())
            .collect();
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

        let mut hashes = ContextHashes::load(&store, &context);
        let first = hashes.hashes(&[inside.clone(), outside.clone()]).unwrap();
        assert_eq!(first[0], <[u8; 32]>::from(Sha256::digest(b"a")));
        hashes.save(&store);

        // Reloaded: both remembered (the outside file was used by the build that saved).
        let mut reloaded = ContextHashes::load(&store, &context);
        assert_eq!(reloaded.loaded().len(), 2);
        // A touched file is read again and hashes the same.
        fs::write(&inside, "a").unwrap();
        assert_eq!(
            reloaded.hashes(std::slice::from_ref(&inside)).unwrap(),
            [first[0]]
        );
        reloaded.save(&store);
        let mut last = ContextHashes::load(&store, &context);
        assert!(last.loaded().contains_key(&inside));
        assert!(!last.loaded().contains_key(&outside));
    }

    #[test]
    fn the_cache_file_round_trips_and_a_damaged_one_is_refused() {
        let mut entries = Entries::new();
        entries.insert(
            PathBuf::from("/ctx/dir/f\u{e9}.txt"),
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
            PathBuf::from("/ctx/empty"),
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
