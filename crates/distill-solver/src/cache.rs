//! The step cache: what a step produced, by [`CacheKey`], kept between builds.
//!
//! One small JSON file per key in a directory the caller chooses (the store's
//! `cache/steps/`, whose records the store's garbage collection treats as roots).
//! Records are written to a temporary file and renamed, so a reader sees a whole record or
//! none, and a crash leaves at most a temporary file behind. The cache records results; it
//! never holds the content itself (layers live in the store), so a record whose content has
//! since gone is the caller's miss to detect. A hit renews the record's modification time:
//! that is its last use, by which build-cache pruning orders records.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::key::CacheKey;

/// Results of earlier steps, by key.
#[derive(Clone, Debug)]
pub struct StepCache {
    dir: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl StepCache {
    /// A cache kept in `dir` (created if missing).
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<StepCache> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(StepCache { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// The record for `key`; `None` when there is none or it cannot be read (an unreadable
    /// record is a miss: the step runs again and replaces it). A record found is marked used
    /// now.
    pub fn get<T: DeserializeOwned>(&self, key: &CacheKey) -> Option<T> {
        let path = self.path(key);
        let bytes = fs::read(&path).ok()?;
        let value = serde_json::from_slice(&bytes).ok()?;
        // Only an age for pruning: a store we cannot write to still gives its hits.
        if let Ok(file) = fs::OpenOptions::new().write(true).open(&path) {
            let _ = file.set_modified(SystemTime::now());
        }
        Some(value)
    }

    /// Records `value` for `key`, replacing any earlier record.
    pub fn put<T: Serialize>(&self, key: &CacheKey, value: &T) -> io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
        let temp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&temp, self.path(key))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Forgets `key` (a record whose content is gone).
    pub fn remove(&self, key: &CacheKey) {
        let _ = fs::remove_file(self.path(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyBuilder;

    #[test]
    fn records_round_trip_and_bad_ones_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StepCache::open(dir.path().join("steps")).unwrap();
        let key = KeyBuilder::new("t").text("a", "1").finish();
        assert_eq!(cache.get::<Vec<String>>(&key), None);
        cache.put(&key, &vec!["x".to_string()]).unwrap();
        assert_eq!(cache.get::<Vec<String>>(&key), Some(vec!["x".to_string()]));
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(cache.path(&key))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(cache.get::<Vec<String>>(&key).is_some());
        let used = fs::metadata(cache.path(&key)).unwrap().modified().unwrap();
        assert!(used > old, "a hit marks the record used");
        fs::write(cache.path(&key), b"{not json").unwrap();
        assert_eq!(cache.get::<Vec<String>>(&key), None);
        cache.remove(&key);
        assert!(!cache.path(&key).exists());
    }
}
