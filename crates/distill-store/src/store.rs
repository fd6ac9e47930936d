//! [`Store`]: the directory tree, blobs in and out, and image records.
//!
//! ```text
//! <root>/oci-layout             {"imageLayoutVersion":"1.0.0"}
//! <root>/index.json             image records (see refs.rs)
//! <root>/blobs/sha256/<hex>     content, named by its digest, read-only
//! <root>/snapshots/sha256/<hex> unpacked layers by diff ID (see snapshot.rs)
//! <root>/cache/                 the build cache (steps/, mounts/, context/; see build_cache.rs)
//! <root>/layers/sha256/<hex>    unpacked layer sizes by diff ID (see layer_size.rs)
//! <root>/ingest/                temporary files and directories, all reclaimable by prune
//! <root>/locks/{gc,refs}.lock   flock(2) locks (see lock.rs)
//! ```

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use distill_image::{
    media_type, Algorithm, Descriptor, Digest, ImageConfig, ImageManifest, Manifest, Platform,
    Reference,
};
use time::OffsetDateTime;

use crate::atomic;
use crate::blob::{BlobWriter, Expected};
use crate::error::{IoContext, Result, StoreError};
use crate::lock::{LockGuard, LockMode};
use crate::refs::{ImageRecord, RefDb};

/// Manifests and configs are read whole; anything claiming to be larger is refused.
const MAX_DOCUMENT_SIZE: u64 = 64 << 20;

/// A local image store rooted at one directory. Cheap to clone; holds no lock itself.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// Holding a lease keeps garbage collection out: content written under it stays until the
/// image referencing it is recorded. Take one before writing blobs that an image will name,
/// and keep it until [`Store::add_image`] returns.
#[derive(Debug)]
pub struct Lease {
    _guard: LockGuard,
}

/// An image record with its manifest and config read and parsed.
#[derive(Clone, Debug)]
pub struct Image {
    pub record: ImageRecord,
    /// The single-platform manifest: the record's target, or the entry chosen from its index.
    pub manifest_descriptor: Descriptor,
    pub manifest: ImageManifest,
    /// The config exactly as stored (its digest is the image ID).
    pub config_bytes: Vec<u8>,
    pub config: ImageConfig,
}

impl Image {
    /// The image ID: the config's digest, as Docker defines it.
    pub fn id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    /// Bytes of content the image consists of: manifest, config and layer blobs (compressed).
    pub fn content_size(&self) -> u64 {
        // Sizes come from manifests, which anyone can write: never overflow on them.
        self.manifest.layers.iter().fold(
            self.manifest_descriptor
                .size
                .saturating_add(self.manifest.config.size),
            |sum, l| sum.saturating_add(l.size),
        )
    }

    /// Every blob the image needs, including the index when the record points at one.
    pub fn blobs(&self) -> BTreeSet<Digest> {
        let mut blobs = BTreeSet::from([
            self.record.target.digest.clone(),
            self.manifest_descriptor.digest.clone(),
            self.manifest.config.digest.clone(),
        ]);
        blobs.extend(self.manifest.layers.iter().map(|l| l.digest.clone()));
        blobs
    }

    /// The creation time from the config, if it has a valid one.
    pub fn created(&self) -> Option<OffsetDateTime> {
        let text = self.config.created.as_deref()?;
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
    }
}

/// What a removal did, in order, for printing like `docker rmi`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    Untagged(Reference),
    /// The image (by ID) is gone from the store.
    Deleted(Digest),
}

/// How precisely [`Store::touch`] records when an image was last used.
const LAST_USED_PRECISION: time::Duration = time::Duration::minutes(1);

impl Store {
    /// Opens the store at `root`, creating the layout if it is not there yet.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        for dir in [
            store.root.clone(),
            store.blobs_dir(),
            store.ingest_dir(),
            store.root.join("snapshots/sha256"),
            store.cache_dir(),
            store.root.join("locks"),
        ] {
            fs::create_dir_all(&dir).at("creating", &dir)?;
        }
        // Writes stage in ingest/, which garbage collection clears unless leased.
        let _lease = store.lease()?;
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            atomic::write_file(
                &store.ingest_dir(),
                &layout,
                br#"{"imageLayoutVersion":"1.0.0"}"#,
            )
            .at("writing", &layout)?;
        }
        if !store.index_path().exists() {
            let _refs = store.lock("refs", LockMode::Exclusive)?;
            if !store.index_path().exists() {
                store.write_db(&RefDb::default())?;
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory the build cache may use; `df` reports its size.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub(crate) fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    pub(crate) fn lock(&self, name: &str, mode: LockMode) -> Result<LockGuard> {
        let path = self.root.join("locks").join(format!("{name}.lock"));
        LockGuard::acquire(&path, mode).at("locking", &path)
    }

    pub(crate) fn try_lock(&self, name: &str, mode: LockMode) -> Result<Option<LockGuard>> {
        let path = self.root.join("locks").join(format!("{name}.lock"));
        LockGuard::try_acquire(&path, mode).at("locking", &path)
    }

    /// Keeps garbage collection away while held (see [`Lease`]).
    pub fn lease(&self) -> Result<Lease> {
        Ok(Lease {
            _guard: self.lock("gc", LockMode::Shared)?,
        })
    }

    // ---- blobs ----

    /// Where the blob with `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        digest.algorithm() == Algorithm::Sha256 && self.blob_path(digest).is_file()
    }

    /// A writer that will only commit content with this digest and size.
    pub fn writer(&self, expected: Expected) -> Result<BlobWriter> {
        let lease = self.lock("gc", LockMode::Shared)?;
        BlobWriter::new(&self.ingest_dir(), self.blobs_dir(), Some(expected), lease)
    }

    /// A writer for content whose digest is learnt while writing (a layer being compressed);
    /// [`BlobWriter::commit`] returns it.
    pub fn ingest(&self) -> Result<BlobWriter> {
        let lease = self.lock("gc", LockMode::Shared)?;
        BlobWriter::new(&self.ingest_dir(), self.blobs_dir(), None, lease)
    }

    /// Stores `bytes` and returns their sha256 digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256_of(bytes);
        if self.has_blob(&digest) {
            return Ok(digest);
        }
        let mut writer = self.writer(Expected::new(digest, bytes.len() as u64))?;
        writer.write_all(bytes).at("writing", &self.ingest_dir())?;
        Ok(writer.commit()?.0)
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => StoreError::MissingBlob {
                digest: digest.clone(),
            },
            _ => StoreError::Io {
                action: "opening",
                path,
                source: err,
            },
        })
    }

    /// Reads a small blob (manifest, config) whole, checking its size and digest.
    pub fn read_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        if descriptor.size > MAX_DOCUMENT_SIZE {
            return Err(StoreError::SizeMismatch {
                digest: descriptor.digest.to_string(),
                expected: MAX_DOCUMENT_SIZE,
                actual: descriptor.size,
            });
        }
        let path = self.blob_path(&descriptor.digest);
        let mut bytes = Vec::with_capacity(descriptor.size as usize);
        self.open_blob(&descriptor.digest)?
            .take(descriptor.size + 1)
            .read_to_end(&mut bytes)
            .at("reading", &path)?;
        if bytes.len() as u64 != descriptor.size {
            return Err(StoreError::SizeMismatch {
                digest: descriptor.digest.to_string(),
                expected: descriptor.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = Digest::sha256_of(&bytes);
        if actual != descriptor.digest {
            return Err(StoreError::DigestMismatch {
                expected: descriptor.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Reads and parses the manifest or index `descriptor` points to.
    pub fn read_manifest(&self, descriptor: &Descriptor) -> Result<Manifest> {
        let bytes = self.read_blob(descriptor)?;
        Manifest::parse(&bytes, Some(&descriptor.media_type)).map_err(|source| StoreError::Format {
            what: "manifest",
            digest: descriptor.digest.clone(),
            source,
        })
    }

    // ---- images ----

    /// Every image record, sorted by when it was added, newest first (as `docker images`).
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let db = RefDb::read(&self.index_path())?;
        let mut records: Vec<ImageRecord> = db.records.into_values().collect();
        records.sort_by(|a, b| {
            b.added
                .cmp(&a.added)
                .then_with(|| a.target.digest.cmp(&b.target.digest))
        });
        Ok(records)
    }

    /// Reads the manifest and config of a record, choosing this machine's platform from an
    /// index (or the first entry present locally).
    pub fn image(&self, record: &ImageRecord) -> Result<Image> {
        self.read_image(record, &Platform::host(), false)
    }

    /// Like [`Store::image`], but an index must hold a manifest for `platform` (for
    /// `--platform`): no other platform is taken instead.
    pub fn image_for_platform(&self, record: &ImageRecord, platform: &Platform) -> Result<Image> {
        self.read_image(record, platform, true)
    }

    fn read_image(&self, record: &ImageRecord, platform: &Platform, strict: bool) -> Result<Image> {
        let (manifest_descriptor, manifest) =
            self.platform_manifest(&record.target, platform, strict, 0)?;
        let config_bytes = self.read_blob(&manifest.config)?;
        let config = ImageConfig::parse(&config_bytes).map_err(|source| StoreError::Format {
            what: "image config",
            digest: manifest.config.digest.clone(),
            source,
        })?;
        Ok(Image {
            record: record.clone(),
            manifest_descriptor,
            manifest,
            config_bytes,
            config,
        })
    }

    fn platform_manifest(
        &self,
        descriptor: &Descriptor,
        platform: &Platform,
        strict: bool,
        depth: usize,
    ) -> Result<(Descriptor, ImageManifest)> {
        match self.read_manifest(descriptor)? {
            Manifest::Image(manifest) => Ok((descriptor.clone(), manifest)),
            Manifest::Index(_) if depth > 4 => Err(StoreError::Corrupt {
                path: self.blob_path(&descriptor.digest),
                message: "indexes nested too deep".into(),
            }),
            Manifest::Index(index) => {
                let preferred = index.select(platform).filter(|d| self.has_blob(&d.digest));
                if strict && preferred.is_none() {
                    return Err(StoreError::NoPlatform {
                        platform: platform.to_string(),
                        digest: descriptor.digest.clone(),
                    });
                }
                let chosen = preferred.or_else(|| {
                    index.manifests.iter().find(|d| {
                        (media_type::is_manifest(&d.media_type)
                            || media_type::is_index(&d.media_type))
                            && self.has_blob(&d.digest)
                    })
                });
                match chosen {
                    Some(child) => self.platform_manifest(child, platform, strict, depth + 1),
                    None => Err(StoreError::MissingBlob {
                        digest: index
                            .manifests
                            .first()
                            .map_or_else(|| descriptor.digest.clone(), |d| d.digest.clone()),
                    }),
                }
            }
        }
    }

    /// Finds the image a user means, as Docker does: a full or short image ID, a manifest
    /// digest, `name@digest`, or a name (`python` meaning `python:latest`).
    pub fn find(&self, text: &str) -> Result<ImageRecord> {
        let db = RefDb::read(&self.index_path())?;
        self.find_in(&db, text).map(|found| found.record)
    }

    pub(crate) fn find_in(&self, db: &RefDb, text: &str) -> Result<Found> {
        let not_found = || StoreError::NoSuchImage(text.to_string());
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        let is_hex = !hex.is_empty()
            && hex.len() <= 64
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if is_hex && (hex.len() == 64 || text.starts_with("sha256:")) {
            return self
                .find_by_id_prefix(db, hex)
                .and_then(|f| f.ok_or_else(not_found));
        }
        match Reference::parse_normalized(text) {
            Ok(reference) => {
                if let Some(digest) = reference.digest() {
                    if let Some(record) = db.records.get(digest) {
                        return Ok(Found::by_id(record.clone()));
                    }
                    return Err(not_found());
                }
                if let Some(record) = db.by_name(&reference) {
                    return Ok(Found {
                        record: record.clone(),
                        name: Some(reference),
                    });
                }
            }
            Err(err) if !is_hex => return Err(err.into()),
            Err(_) => {}
        }
        if is_hex {
            if let Some(found) = self.find_by_id_prefix(db, hex)? {
                return Ok(found);
            }
        }
        Err(not_found())
    }

    /// Records whose image ID (config digest) or target digest starts with `prefix`.
    fn find_by_id_prefix(&self, db: &RefDb, prefix: &str) -> Result<Option<Found>> {
        let mut matches: Vec<&ImageRecord> = Vec::new();
        let mut ids = BTreeSet::new();
        for record in db.records.values() {
            let id = self.image_id(record);
            let id_matches = id.as_ref().is_some_and(|id| id.hex().starts_with(prefix));
            if id_matches || record.target.digest.hex().starts_with(prefix) {
                matches.push(record);
                ids.insert(id.unwrap_or_else(|| record.target.digest.clone()));
            }
        }
        match matches.len() {
            0 => Ok(None),
            1 => Ok(Some(Found::by_id(matches[0].clone()))),
            _ if ids.len() == 1 && prefix.len() == 64 => Ok(Some(Found::by_id(matches[0].clone()))),
            count => Err(StoreError::AmbiguousId {
                prefix: prefix.to_string(),
                count,
            }),
        }
    }

    /// The image ID of a record, if its manifest can be read.
    pub fn image_id(&self, record: &ImageRecord) -> Option<Digest> {
        self.platform_manifest(&record.target, &Platform::host(), false, 0)
            .ok()
            .map(|(_, manifest)| manifest.config.digest)
    }

    /// Checks that everything `target` needs is present: for a manifest its config and layers,
    /// for an index every child present locally (at least one must be).
    pub fn check_complete(&self, target: &Descriptor) -> Result<()> {
        self.check_complete_at(target, 0)
    }

    fn check_complete_at(&self, target: &Descriptor, depth: usize) -> Result<()> {
        match self.read_manifest(target)? {
            Manifest::Image(manifest) => {
                self.read_blob(&manifest.config)?;
                for layer in &manifest.layers {
                    if !self.has_blob(&layer.digest) {
                        return Err(StoreError::MissingBlob {
                            digest: layer.digest.clone(),
                        });
                    }
                }
                Ok(())
            }
            Manifest::Index(index) => {
                let present: Vec<&Descriptor> = index
                    .manifests
                    .iter()
                    .filter(|d| self.has_blob(&d.digest))
                    .collect();
                if present.is_empty() || depth > 4 {
                    return Err(StoreError::MissingBlob {
                        digest: index
                            .manifests
                            .first()
                            .map_or_else(|| target.digest.clone(), |d| d.digest.clone()),
                    });
                }
                for child in present {
                    if media_type::is_manifest(&child.media_type)
                        || media_type::is_index(&child.media_type)
                    {
                        self.check_complete_at(child, depth + 1)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Records an image whose blobs are all in the store, with `names` (tags, which move
    /// here from any image that had them). Adding an image that is already there only adds
    /// the names. Nothing changes if any check fails.
    pub fn add_image(&self, target: &Descriptor, names: &[Reference]) -> Result<ImageRecord> {
        for name in names {
            check_taggable(name)?;
        }
        let _lease = self.lease()?;
        self.check_complete(target)?;
        let _refs = self.lock("refs", LockMode::Exclusive)?;
        let mut db = RefDb::read(&self.index_path())?;
        // A rebuild of the same image under the same names changes nothing: no rewrite.
        if let Some(record) = db.records.get(&target.digest) {
            if names.iter().all(|name| record.names.contains(name)) {
                return Ok(record.clone());
            }
        }
        let now = OffsetDateTime::now_utc();
        db.records
            .entry(target.digest.clone())
            .or_insert_with(|| ImageRecord {
                target: target.clone(),
                names: Vec::new(),
                added: now,
                last_used: None,
            });
        for name in names {
            db.set_name(name, &target.digest);
        }
        self.write_db(&db)?;
        Ok(db.records[&target.digest].clone())
    }

    /// `docker tag SOURCE TARGET`: points the name `target` at the image `source` finds.
    pub fn tag(&self, source: &str, target: &str) -> Result<Reference> {
        let name = Reference::parse_normalized(target)?;
        check_taggable(&name)?;
        let _lease = self.lease()?;
        let _refs = self.lock("refs", LockMode::Exclusive)?;
        let mut db = RefDb::read(&self.index_path())?;
        let found = self.find_in(&db, source)?;
        db.set_name(&name, &found.record.target.digest);
        self.write_db(&db)?;
        Ok(name)
    }

    /// Marks an image as used now (builds and runs call this on their base images), to the
    /// minute: a use within a minute of the recorded one rewrites nothing, so back-to-back
    /// builds do not each rewrite and sync `index.json`.
    pub fn touch(&self, target: &Digest) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        let fresh = |used: Option<OffsetDateTime>| {
            used.is_some_and(|used| (now - used).abs() < LAST_USED_PRECISION)
        };
        // A first look without the lock: usually nothing is to be written.
        if RefDb::read(&self.index_path())?
            .records
            .get(target)
            .is_some_and(|record| fresh(record.last_used))
        {
            return Ok(());
        }
        let _lease = self.lease()?;
        let _refs = self.lock("refs", LockMode::Exclusive)?;
        let mut db = RefDb::read(&self.index_path())?;
        if let Some(record) = db.records.get_mut(target) {
            if fresh(record.last_used) {
                return Ok(());
            }
            record.last_used = Some(now);
            self.write_db(&db)?;
        }
        Ok(())
    }

    /// `docker rmi [-f] REF...`: by name, removes the name (and the image with its last name);
    /// by ID, removes the image with all its names (an image named in several repositories
    /// needs `force`). Every reference is resolved before anything changes, so a bad one
    /// leaves the store as it was. Content no longer referenced is collected at once unless
    /// another process holds a lease (then `prune` will).
    pub fn remove_images(&self, texts: &[&str], force: bool) -> Result<Vec<Removal>> {
        let events = {
            let _lease = self.lease()?;
            let _refs = self.lock("refs", LockMode::Exclusive)?;
            let mut db = RefDb::read(&self.index_path())?;
            let mut plans = Vec::new();
            for text in texts {
                let found = self.find_in(&db, text)?;
                if found.name.is_none() && !force {
                    let repositories: BTreeSet<String> =
                        found.record.names.iter().map(Reference::name).collect();
                    if repositories.len() > 1 {
                        let id = self
                            .image_id(&found.record)
                            .unwrap_or_else(|| found.record.target.digest.clone());
                        return Err(StoreError::ReferencedInMultipleRepositories {
                            id: id.short().to_string(),
                        });
                    }
                }
                plans.push(found);
            }
            let mut events = Vec::new();
            for found in plans {
                let digest = found.record.target.digest.clone();
                let Some(record) = db.records.get_mut(&digest) else {
                    continue; // an earlier argument already removed this image
                };
                let untag: Vec<Reference> = match &found.name {
                    Some(name) if record.names.contains(name) => vec![name.clone()],
                    Some(_) => continue,
                    None => record.names.clone(),
                };
                record.names.retain(|n| !untag.contains(n));
                events.extend(untag.into_iter().map(Removal::Untagged));
                if record.names.is_empty() {
                    let id = self.image_id(record).unwrap_or_else(|| digest.clone());
                    db.records.remove(&digest);
                    events.push(Removal::Deleted(id));
                }
            }
            self.write_db(&db)?;
            events
        };
        if events.iter().any(|e| matches!(e, Removal::Deleted(_))) {
            if let Some(guard) = self.try_lock("gc", LockMode::Exclusive)? {
                crate::gc::collect(self, &guard, false)?;
            }
        }
        Ok(events)
    }

    pub(crate) fn write_db(&self, db: &RefDb) -> Result<()> {
        let path = self.index_path();
        atomic::write_file(&self.ingest_dir(), &path, &db.to_json()).at("writing", &path)
    }

    pub(crate) fn read_db(&self) -> Result<RefDb> {
        RefDb::read(&self.index_path())
    }
}

/// The result of finding an image: the record, and the name used if it was found by name.
pub(crate) struct Found {
    pub record: ImageRecord,
    pub name: Option<Reference>,
}

impl Found {
    fn by_id(record: ImageRecord) -> Found {
        Found { record, name: None }
    }
}

fn check_taggable(name: &Reference) -> Result<()> {
    if name.digest().is_some() {
        return Err(StoreError::TagWithDigest(name.familiar()));
    }
    if name.tag().is_none() {
        return Err(StoreError::Reference(
            distill_image::ReferenceError::TagInvalidFormat,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestImage;
    use std::os::unix::fs::MetadataExt;

    /// Which `index.json` is there (a rewrite replaces the file, so its inode changes).
    fn index_identity(store: &Store) -> (u64, i64, i64) {
        let meta = fs::metadata(store.index_path()).unwrap();
        (meta.ino(), meta.mtime(), meta.mtime_nsec())
    }

    #[test]
    fn repeated_uses_and_identical_adds_leave_the_index_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let image = TestImage::new()
            .layer(&[("a", b"a")])
            .commit(&store, &["base"])
            .unwrap();
        let record = store.find("base").unwrap();
        let digest = record.target.digest.clone();
        assert_eq!(record.last_used, None);

        store.touch(&digest).unwrap();
        let used = store.find("base").unwrap().last_used.unwrap();
        let before = index_identity(&store);
        store.touch(&digest).unwrap();
        assert_eq!(
            index_identity(&store),
            before,
            "a second use within a minute"
        );
        assert_eq!(store.find("base").unwrap().last_used, Some(used));

        // The same image under a name it has: nothing to write. A new name is written.
        store
            .add_image(
                &record.target,
                &[Reference::parse_normalized("base").unwrap()],
            )
            .unwrap();
        assert_eq!(index_identity(&store), before, "an identical add");
        let other = Reference::parse_normalized("other:tag").unwrap();
        let added = store
            .add_image(&record.target, std::slice::from_ref(&other))
            .unwrap();
        assert!(added.names.contains(&other));
        assert_ne!(index_identity(&store), before);
        assert_eq!(store.find("other:tag").unwrap().target, image.record.target);
    }

    #[test]
    fn a_use_older_than_a_minute_is_recorded_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        TestImage::new()
            .layer(&[("a", b"a")])
            .commit(&store, &["base"])
            .unwrap();
        let digest = store.find("base").unwrap().target.digest;
        let long_ago = OffsetDateTime::now_utc() - time::Duration::minutes(5);
        {
            let _refs = store.lock("refs", LockMode::Exclusive).unwrap();
            let mut db = RefDb::read(&store.index_path()).unwrap();
            db.records.get_mut(&digest).unwrap().last_used = Some(long_ago);
            store.write_db(&db).unwrap();
        }
        store.touch(&digest).unwrap();
        let used = store.find("base").unwrap().last_used.unwrap();
        assert!(
            used - long_ago >= time::Duration::minutes(4),
            "{used} vs {long_ago}"
        );
    }
}
