//! Content hashes of the files a step reads, for cache keys, with a metadata cache so that a
//! rebuild of an unchanged context does not read the files again.
//!
//! A file's hash is remembered with its size, modification and change times and inode
//! number; while all four are the same the file is not read. A touched file (new mtime, same
//! bytes) is read again and hashes the same, so the step stays cached. Files are hashed in
//! parallel (rayon). The cache is one JSON file per context directory in the store's
//! `cache/context/`, rewritten at the end of a build; losing it only costs rereading.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use distill_context::Matcher;
use distill_store::Store;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::copy::{CopyPlan, Data};
use crate::rootview::{Found, RootView};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Remembered {
    stamp: Stamp,
    sha256: String,
}

/// Remembered content hashes of host files, by path.
#[derive(Debug, Default)]
pub struct ContextHashes {
    file: Option<PathBuf>,
    /// The context directory, canonical: its files' hashes are kept from build to build.
    context: PathBuf,
    entries: HashMap<PathBuf, Remembered>,
    /// Files looked at in this build (others outside the context are forgotten on save).
    used: HashSet<PathBuf>,
    changed: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_file(path: &Path) -> io::Result<String> {
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
    Ok(hex(&hasher.finalize()))
}

impl ContextHashes {
    /// The remembered hashes for `context_dir` (none if the cache is missing or unreadable).
    pub fn load(store: &Store, context_dir: &Path) -> ContextHashes {
        let absolute = fs::canonicalize(context_dir).unwrap_or_else(|_| context_dir.to_path_buf());
        let name = hex(&Sha256::digest(absolute.as_os_str().as_encoded_bytes()));
        let file = store
            .cache_dir()
            .join("context")
            .join(format!("{name}.json"));
        let entries = fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Vec<(PathBuf, Remembered)>>(&bytes).ok())
            .map(|list| list.into_iter().collect())
            .unwrap_or_default();
        ContextHashes {
            file: Some(file),
            context: absolute,
            entries,
            used: HashSet::new(),
            changed: false,
        }
    }

    /// Writes the remembered hashes back, if anything changed.
    pub fn save(&self, _store: &Store) {
        let Some(file) = &self.file else { return };
        if !self.changed {
            return;
        }
        // Files of stage snapshots are remembered only while builds use them.
        let list: Vec<(&PathBuf, &Remembered)> = self
            .entries
            .iter()
            .filter(|(path, _)| path.starts_with(&self.context) || self.used.contains(*path))
            .collect();
        let Ok(bytes) = serde_json::to_vec(&list) else {
            return;
        };
        if let Some(dir) = file.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let temp = file.with_extension(format!("tmp-{}", std::process::id()));
        if fs::write(&temp, bytes).is_ok() && fs::rename(&temp, file).is_err() {
            let _ = fs::remove_file(&temp);
        }
    }

    /// Hashes of `paths` (host files), reading only those whose stamp changed.
    fn hashes(&mut self, paths: &[PathBuf]) -> io::Result<Vec<String>> {
        let stamps: Vec<io::Result<Stamp>> = paths
            .iter()
            .map(|p| fs::symlink_metadata(p).map(|m| Stamp::of(&m)))
            .collect();
        self.used.extend(paths.iter().cloned());
        let mut results: Vec<Option<String>> = vec![None; paths.len()];
        let mut to_read: Vec<usize> = Vec::new();
        for (index, stamp) in stamps.iter().enumerate() {
            let stamp = stamp
                .as_ref()
                .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
            match self.entries.get(&paths[index]) {
                Some(known) if &known.stamp == stamp => results[index] = Some(known.sha256.clone()),
                _ => to_read.push(index),
            }
        }
        let read: Vec<(usize, io::Result<String>)> = to_read
            .par_iter()
            .map(|&index| (index, hash_file(&paths[index])))
            .collect();
        for (index, hash) in read {
            let hash = hash?;
            if let Ok(stamp) = &stamps[index] {
                self.entries.insert(
                    paths[index].clone(),
                    Remembered {
                        stamp: stamp.clone(),
                        sha256: hash.clone(),
                    },
                );
                self.changed = true;
            }
            results[index] = Some(hash);
        }
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
                Data::Host(_) => hasher.update(hashes.next().unwrap_or_default()),
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
                hasher.update(hashes.next().unwrap_or_default());
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
        assert_eq!(first[0], hex(&Sha256::digest(b"a")));
        hashes.save(&store);

        // Reloaded: both remembered (the outside file was used by the build that saved).
        let mut reloaded = ContextHashes::load(&store, &context);
        assert_eq!(reloaded.entries.len(), 2);
        // A touched file is read again and hashes the same.
        fs::write(&inside, "a").unwrap();
        assert_eq!(
            reloaded.hashes(std::slice::from_ref(&inside)).unwrap(),
            [first[0].clone()]
        );
        reloaded.save(&store);
        let last = ContextHashes::load(&store, &context);
        assert!(last.entries.contains_key(&inside));
        assert!(!last.entries.contains_key(&outside));
    }
}
