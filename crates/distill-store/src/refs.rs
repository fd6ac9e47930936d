//! The image records, kept in the layout's `index.json` (an OCI image index), so the store root
//! is also a valid OCI image layout that skopeo or umoci can read.
//!
//! Each name is one entry of the index, annotated with the full reference
//! (`org.opencontainers.image.ref.name` and `io.containerd.image.name`); an image whose names were
//! all taken by other images stays as one entry without a name (Docker's `<none>:<none>`), until
//! removed or pruned. Times are annotations too.
//!
//! The file is only ever replaced whole (see [`crate::atomic`]); callers hold the `refs` lock
//! around each read-modify-write.

use std::collections::BTreeMap;
use std::path::Path;

use distill_image::{media_type, Descriptor, Digest, ImageIndex, Reference};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{IoContext, Result, StoreError};

pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub(crate) const CONTAINERD_NAME: &str = "io.containerd.image.name";
const CREATED: &str = "io.distill.image.created";
const LAST_USED: &str = "io.distill.image.last-used";

/// One image the store knows: the manifest (or index) it points to and the names it has.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRecord {
    /// The manifest or index descriptor, as it appears in `index.json` minus our annotations.
    pub target: Descriptor,
    /// Tags pointing at it, sorted; empty for a dangling image.
    pub names: Vec<Reference>,
    /// When the image entered the store.
    pub added: OffsetDateTime,
    /// When a build or run last used it (`None`: never).
    pub last_used: Option<OffsetDateTime>,
}

/// The parsed `index.json`: records keyed by target digest.
#[derive(Debug, Default)]
pub(crate) struct RefDb {
    pub records: BTreeMap<Digest, ImageRecord>,
}

impl RefDb {
    pub fn read(path: &Path) -> Result<RefDb> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(RefDb::default()),
            Err(err) => return Err(err).at("reading", path),
        };
        let corrupt = |message: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        let index: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|err| corrupt(err.to_string()))?;
        let mut db = RefDb::default();
        for mut descriptor in index.manifests {
            // Our entries carry the full reference in both annotations. A layout written by
            // another tool may carry only `ref.name`, often a bare tag: read it as Docker
            // would read a name, and keep the image unnamed if it is not one.
            let name = match descriptor.annotations.get(CONTAINERD_NAME) {
                Some(text) => Some(
                    Reference::parse(text)
                        .map_err(|err| corrupt(format!("reference {text:?}: {err}")))?,
                ),
                None => descriptor
                    .annotations
                    .get(REF_NAME)
                    .and_then(|text| Reference::parse_normalized(text).ok()),
            };
            let added = parse_time(descriptor.annotations.get(CREATED))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let last_used = parse_time(descriptor.annotations.get(LAST_USED));
            for key in [REF_NAME, CONTAINERD_NAME, CREATED, LAST_USED] {
                descriptor.annotations.remove(key);
            }
            let record = db
                .records
                .entry(descriptor.digest.clone())
                .or_insert_with(|| ImageRecord {
                    target: descriptor,
                    names: Vec::new(),
                    added,
                    last_used,
                });
            record.added = record.added.min(added);
            record.last_used = record.last_used.max(last_used);
            if let Some(name) = name {
                if !record.names.contains(&name) {
                    record.names.push(name);
                    record.names.sort();
                }
            }
        }
        Ok(db)
    }

    /// The whole index as bytes: one entry per name, or one unnamed entry.
    pub fn to_json(&self) -> Vec<u8> {
        let mut manifests = Vec::new();
        for record in self.records.values() {
            let mut base = record.target.clone();
            base.annotations
                .insert(CREATED.into(), format_time(record.added));
            if let Some(used) = record.last_used {
                base.annotations.insert(LAST_USED.into(), format_time(used));
            }
            if record.names.is_empty() {
                manifests.push(base.clone());
            }
            for name in &record.names {
                let mut entry = base.clone();
                entry.annotations.insert(REF_NAME.into(), name.to_string());
                entry
                    .annotations
                    .insert(CONTAINERD_NAME.into(), name.to_string());
                manifests.push(entry);
            }
        }
        let mut index = ImageIndex::new_oci(manifests);
        index.media_type = Some(media_type::OCI_INDEX.to_string());
        index.to_json()
    }

    /// The record a name points to.
    pub fn by_name(&self, name: &Reference) -> Option<&ImageRecord> {
        self.records.values().find(|r| r.names.contains(name))
    }

    /// Points `name` at `digest`, taking it from whichever image had it.
    pub fn set_name(&mut self, name: &Reference, digest: &Digest) {
        for record in self.records.values_mut() {
            record.names.retain(|n| n != name);
        }
        if let Some(record) = self.records.get_mut(digest) {
            record.names.push(name.clone());
            record.names.sort();
        }
    }
}

pub(crate) fn format_time(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

fn parse_time(text: Option<&String>) -> Option<OffsetDateTime> {
    text.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    fn record(n: u8, names: &[&str]) -> ImageRecord {
        ImageRecord {
            target: Descriptor::new(media_type::OCI_MANIFEST, digest(n), 100 + u64::from(n)),
            names: names
                .iter()
                .map(|n| Reference::parse_normalized(n).unwrap())
                .collect(),
            added: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            last_used: None,
        }
    }

    #[test]
    fn round_trips_names_and_dangling_images() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        let mut db = RefDb::default();
        db.records.insert(digest(1), record(1, &["a:1", "b"]));
        db.records.insert(digest(2), record(2, &[]));
        std::fs::write(&path, db.to_json()).unwrap();
        let back = RefDb::read(&path).unwrap();
        assert_eq!(back.records, db.records);
        let text = String::from_utf8(db.to_json()).unwrap();
        assert!(text.contains(r#""org.opencontainers.image.ref.name":"docker.io/library/a:1""#));
    }

    #[test]
    fn moving_a_name_leaves_the_old_image_dangling() {
        let mut db = RefDb::default();
        db.records.insert(digest(1), record(1, &["a"]));
        db.records.insert(digest(2), record(2, &[]));
        let name = Reference::parse_normalized("a").unwrap();
        db.set_name(&name, &digest(2));
        assert!(db.records[&digest(1)].names.is_empty());
        assert_eq!(db.by_name(&name).unwrap().target.digest, digest(2));
    }

    #[test]
    fn layouts_written_by_other_tools_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"mediaType":"{m}","digest":"{d1}","size":1,"annotations":{{"org.opencontainers.image.ref.name":"busybox:1.36"}}}},
              {{"mediaType":"{m}","digest":"{d2}","size":2,"annotations":{{"org.opencontainers.image.ref.name":"Not A Name"}}}}]}}"#,
            m = media_type::OCI_MANIFEST,
            d1 = digest(1),
            d2 = digest(2)
        );
        std::fs::write(&path, text).unwrap();
        let db = RefDb::read(&path).unwrap();
        assert_eq!(
            db.records[&digest(1)].names[0].to_string(),
            "docker.io/library/busybox:1.36"
        );
        assert!(db.records[&digest(2)].names.is_empty());
    }

    #[test]
    fn a_missing_file_is_an_empty_store_and_garbage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        assert!(RefDb::read(&path).unwrap().records.is_empty());
        std::fs::write(&path, b"{").unwrap();
        assert!(matches!(
            RefDb::read(&path),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
