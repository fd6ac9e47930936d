//! `save`: images of the store as one tar stream, in the layout `docker save` of Docker 25+
//! writes (`manifest.json` and `repositories` beside an OCI layout) or as a plain OCI layout.
//!
//! The stream is deterministic: entries in a fixed order (blobs by digest, then `index.json`,
//! `manifest.json`, `oci-layout`, `repositories`, as Docker orders them), ustar headers with
//! mtime 0, owner 0:0, mode 0644 (0755 for directories). Every blob is copied from the store
//! through a reader that checks its size and digest, so a damaged store blob fails the save
//! instead of producing an archive `docker load` would refuse later. Never reads a layer into
//! memory.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use distill_image::media_type;
use distill_image::{
    Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest, Manifest, Platform, Reference,
    Sha256Hasher,
};

use crate::docker::{self, ManifestItem};
use crate::error::{ArchiveError, Result};
use crate::load::METADATA_LIMIT;
use crate::{oci, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};

/// Where `save` reads blobs from (the store, in the CLI).
pub trait BlobSource {
    /// A reader over the blob `digest` and its size.
    fn open_blob(&self, digest: &Digest) -> Result<(Box<dyn Read + '_>, u64)>;
}

/// The archive layout to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `docker load`'s format: manifest.json + OCI layout. One platform per image.
    Docker,
    /// An OCI image layout in a tar: every manifest of an index is kept.
    Oci,
}

/// One image to save: what it points to and the names to give it in the archive.
#[derive(Clone, Debug)]
pub struct SaveImage {
    /// The image's manifest or index descriptor, as the store records it.
    pub target: Descriptor,
    /// Tags for the archive (each with a tag, no digest). Empty to save it unnamed.
    pub names: Vec<Reference>,
}

/// What a finished save wrote, for the caller's report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    pub blobs: usize,
    pub bytes: u64,
}

/// Writes `images` to `out` as one tar stream in `format`.
pub fn save<W: Write>(
    source: &dyn BlobSource,
    images: &[SaveImage],
    format: Format,
    out: W,
) -> Result<Saved> {
    if images.is_empty() {
        return Err(ArchiveError::invalid("no image to save"));
    }
    let merged = merge_by_target(images);
    let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut index_entries = Vec::new();
    let mut manifest_items = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

    for image in &merged {
        match format {
            Format::Oci => {
                collect_tree(source, &image.target, &mut blobs, 0)?;
                index_entries.extend(named_descriptors(&image.target, &image.names));
            }
            Format::Docker => {
                let (mut descriptor, manifest) = single_platform(source, &image.target)?;
                let config = read_config(source, &manifest)?;
                // Docker 25+ names the platform of each index.json entry; loaders filter on it.
                if descriptor.platform.is_none() {
                    descriptor.platform = config.as_ref().map(ImageConfig::platform);
                }
                blobs.insert(descriptor.digest.clone(), descriptor.size);
                blobs.insert(manifest.config.digest.clone(), manifest.config.size);
                for layer in &manifest.layers {
                    blobs.insert(layer.digest.clone(), layer.size);
                }
                index_entries.extend(named_descriptors(&descriptor, &image.names));
                manifest_items.push(ManifestItem {
                    config: blob_path(&manifest.config.digest),
                    repo_tags: image.names.iter().map(Reference::familiar).collect(),
                    layers: manifest
                        .layers
                        .iter()
                        .map(|layer| blob_path(&layer.digest))
                        .collect(),
                    parent: None,
                    layer_sources: None,
                });
                let top = config.and_then(|config| config.rootfs.diff_ids.last().cloned());
                if let Some(top) = top {
                    for name in &image.names {
                        if let Some(tag) = name.tag() {
                            repositories
                                .entry(name.familiar_name())
                                .or_default()
                                .insert(tag.to_string(), top.hex().to_string());
                        }
                    }
                }
            }
        }
    }

    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut saved = Saved::default();
    append_directory(&mut tar, "blobs/")?;
    append_directory(&mut tar, "blobs/sha256/")?;
    for (digest, size) in &blobs {
        let (reader, stored_size) = source.open_blob(digest)?;
        if stored_size != *size {
            return Err(ArchiveError::invalid(format!(
                "blob {digest} is {stored_size} bytes in the store, its descriptor says {size}"
            ))
            .with_hint("the store is damaged: remove the image and load or build it again"));
        }
        let verified = Verified::new(reader, digest.clone(), *size);
        append_file(&mut tar, &blob_path(digest), *size, verified)?;
        saved.blobs += 1;
        saved.bytes += size;
    }
    let index = ImageIndex::new_oci(index_entries).to_json();
    append_bytes(&mut tar, oci::INDEX_JSON, &index)?;
    if format == Format::Docker {
        let manifest = serde_json::to_vec(&manifest_items)
            .map_err(|err| ArchiveError::invalid(format!("writing manifest.json: {err}")))?;
        append_bytes(&mut tar, docker::MANIFEST_JSON, &manifest)?;
    }
    append_bytes(&mut tar, oci::OCI_LAYOUT, &oci::layout_file())?;
    if format == Format::Docker && !repositories.is_empty() {
        let bytes = serde_json::to_vec(&repositories)
            .map_err(|err| ArchiveError::invalid(format!("writing repositories: {err}")))?;
        append_bytes(&mut tar, docker::REPOSITORIES, &bytes)?;
    }
    let mut out = tar
        .into_inner()
        .map_err(|err| ArchiveError::io("finishing the archive", err))?;
    out.flush()
        .map_err(|err| ArchiveError::io("writing the archive", err))?;
    Ok(saved)
}

/// Images asked for twice (two tags of one image) become one entry with both names.
fn merge_by_target(images: &[SaveImage]) -> Vec<SaveImage> {
    let mut merged: Vec<SaveImage> = Vec::new();
    for image in images {
        match merged
            .iter_mut()
            .find(|m| m.target.digest == image.target.digest)
        {
            Some(existing) => {
                for name in &image.names {
                    if !existing.names.contains(name) {
                        existing.names.push(name.clone());
                    }
                }
            }
            None => merged.push(image.clone()),
        }
    }
    merged
}

/// The index.json entries of one image: one per name, or one unnamed.
fn named_descriptors(target: &Descriptor, names: &[Reference]) -> Vec<Descriptor> {
    let mut base = Descriptor::new(
        target.media_type.clone(),
        target.digest.clone(),
        target.size,
    );
    base.platform = target.platform.clone();
    if names.is_empty() {
        return vec![base];
    }
    names
        .iter()
        .map(|name| {
            let mut entry = base.clone();
            entry
                .annotations
                .insert(ANNOTATION_IMAGE_NAME.to_string(), name.to_string());
            if let Some(tag) = name.tag() {
                entry
                    .annotations
                    .insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
            }
            entry
        })
        .collect()
}

fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex())
}

/// A small document of the store (manifest, index, config), checked against its digest.
fn read_document(source: &dyn BlobSource, descriptor: &Descriptor) -> Result<Vec<u8>> {
    if descriptor.size > METADATA_LIMIT {
        return Err(ArchiveError::invalid(format!(
            "{} {} is {} bytes, too large for a manifest or config",
            descriptor.media_type, descriptor.digest, descriptor.size
        )));
    }
    let (reader, _) = source.open_blob(&descriptor.digest)?;
    let mut bytes = Vec::new();
    Verified::new(reader, descriptor.digest.clone(), descriptor.size)
        .read_to_end(&mut bytes)
        .map_err(|err| ArchiveError::io(format!("reading {}", descriptor.digest), err))?;
    Ok(bytes)
}

fn parse_manifest(source: &dyn BlobSource, descriptor: &Descriptor) -> Result<Manifest> {
    let bytes = read_document(source, descriptor)?;
    Manifest::parse(&bytes, Some(&descriptor.media_type))
        .map_err(|err| ArchiveError::caused(format!("manifest {}", descriptor.digest), err))
}

/// Adds the manifest or index at `descriptor` and everything it references to `blobs`.
fn collect_tree(
    source: &dyn BlobSource,
    descriptor: &Descriptor,
    blobs: &mut BTreeMap<Digest, u64>,
    depth: usize,
) -> Result<()> {
    if depth > 4 {
        return Err(ArchiveError::invalid(format!(
            "index {} nests too deep",
            descriptor.digest
        )));
    }
    blobs.insert(descriptor.digest.clone(), descriptor.size);
    match parse_manifest(source, descriptor)? {
        Manifest::Image(manifest) => {
            blobs.insert(manifest.config.digest.clone(), manifest.config.size);
            for layer in &manifest.layers {
                blobs.insert(layer.digest.clone(), layer.size);
            }
        }
        Manifest::Index(index) => {
            for child in &index.manifests {
                collect_tree(source, child, blobs, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// The image manifest a Docker archive can hold for `target`: itself, or for an index the
/// entry of the host's platform.
fn single_platform(
    source: &dyn BlobSource,
    target: &Descriptor,
) -> Result<(Descriptor, ImageManifest)> {
    let mut descriptor = target.clone();
    for _ in 0..4 {
        match parse_manifest(source, &descriptor)? {
            Manifest::Image(manifest) => {
                let mut plain = Descriptor::new(
                    descriptor.media_type.clone(),
                    descriptor.digest.clone(),
                    descriptor.size,
                );
                plain.platform = descriptor.platform.clone();
                return Ok((plain, manifest));
            }
            Manifest::Index(index) => {
                let host = Platform::host();
                let chosen = index.select(&host).ok_or_else(|| {
                    ArchiveError::invalid(format!(
                        "image index {} has no manifest for {host}",
                        descriptor.digest
                    ))
                    .with_hint("save it with --format oci to keep every platform")
                })?;
                descriptor = chosen.clone();
            }
        }
    }
    Err(ArchiveError::invalid(format!(
        "index {} nests too deep",
        target.digest
    )))
}

/// The config of an image manifest, `None` for an artifact whose config is not an image's.
fn read_config(source: &dyn BlobSource, manifest: &ImageManifest) -> Result<Option<ImageConfig>> {
    if !media_type::is_config(&manifest.config.media_type) {
        return Ok(None);
    }
    let bytes = read_document(source, &manifest.config)?;
    ImageConfig::parse(&bytes).map(Some).map_err(|err| {
        ArchiveError::caused(format!("image config {}", manifest.config.digest), err)
    })
}

fn header(path: &str, size: u64, mode: u32, kind: tar::EntryType) -> Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(path)
        .map_err(|err| ArchiveError::io(format!("naming {path} in the archive"), err))?;
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(kind);
    header.set_cksum();
    Ok(header)
}

fn append_directory<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let header = header(path, 0, 0o755, tar::EntryType::Directory)?;
    tar.append(&header, io::empty())
        .map_err(|err| ArchiveError::io(format!("writing {path}"), err))
}

fn append_file<W: Write, R: Read>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    content: R,
) -> Result<()> {
    let header = header(path, size, 0o644, tar::EntryType::Regular)?;
    tar.append(&header, content)
        .map_err(|err| ArchiveError::io(format!("writing {path}"), err))
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<()> {
    append_file(tar, path, bytes.len() as u64, bytes)
}

/// Passes a blob through, failing the read if it turns out longer, shorter or different from
/// what its digest promises (the error surfaces before the archive is finished).
struct Verified<R> {
    inner: R,
    digest: Digest,
    size: u64,
    hasher: Sha256Hasher,
}

impl<R: Read> Verified<R> {
    fn new(inner: R, digest: Digest, size: u64) -> Verified<R> {
        Verified {
            inner,
            digest,
            size,
            hasher: Sha256Hasher::new(),
        }
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.size - self.hasher.len();
        // Read one byte past the end, to notice content longer than promised.
        let want = buf
            .len()
            .min(usize::try_from(remaining + 1).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..want])?;
        if read as u64 > remaining {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} is longer than its {} bytes",
                    self.digest, self.size
                ),
            ));
        }
        self.hasher.update(&buf[..read]);
        if read == 0 || read as u64 == remaining {
            if self.hasher.len() < self.size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "blob {} ends after {} of its {} bytes",
                        self.digest,
                        self.hasher.len(),
                        self.size
                    ),
                ));
            }
            let actual = self.hasher.clone().finish();
            if actual != self.digest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob {} has content of digest {actual}", self.digest),
                ));
            }
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(reader: impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut reader = reader;
        // Small reads, to cross the end of the blob in several steps.
        let mut buf = [0u8; 3];
        loop {
            let read = reader.read(&mut buf)?;
            if read == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..read]);
        }
    }

    #[test]
    fn verified_passes_exact_content_and_refuses_anything_else() {
        let content = b"layer content".to_vec();
        let digest = Digest::sha256_of(&content);
        let size = content.len() as u64;
        let ok = Verified::new(&content[..], digest.clone(), size);
        assert_eq!(read_all(ok).unwrap(), content);

        let short = Verified::new(&content[..5], digest.clone(), size);
        assert!(read_all(short)
            .unwrap_err()
            .to_string()
            .contains("ends after 5"));

        let mut longer = content.clone();
        longer.push(b'!');
        let long = Verified::new(&longer[..], digest.clone(), size);
        assert!(read_all(long).unwrap_err().to_string().contains("longer"));

        let mut changed = content.clone();
        changed[0] ^= 1;
        let wrong = Verified::new(&changed[..], digest, size);
        assert!(read_all(wrong)
            .unwrap_err()
            .to_string()
            .contains("has content of digest"));
    }

    #[test]
    fn names_become_index_annotations_like_docker_writes_them() {
        let target = Descriptor::for_bytes(media_type::OCI_MANIFEST, b"{}");
        let names = [
            Reference::parse_normalized("busybox:1").unwrap(),
            Reference::parse_normalized("localhost:5000/a/b:c").unwrap(),
        ];
        let entries = named_descriptors(&target, &names);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].annotations[ANNOTATION_IMAGE_NAME],
            "docker.io/library/busybox:1"
        );
        assert_eq!(entries[0].annotations[ANNOTATION_REF_NAME], "1");
        assert_eq!(
            entries[1].annotations[ANNOTATION_IMAGE_NAME],
            "localhost:5000/a/b:c"
        );
        let unnamed = named_descriptors(&target, &[]);
        assert_eq!(unnamed.len(), 1);
        assert!(unnamed[0].annotations.is_empty());
    }

    #[test]
    fn two_tags_of_one_image_are_saved_once() {
        let target = Descriptor::for_bytes(media_type::OCI_MANIFEST, b"{}");
        let image = |name: &str| SaveImage {
            target: target.clone(),
            names: vec![Reference::parse_normalized(name).unwrap()],
        };
        let merged = merge_by_target(&[image("a:1"), image("b:2"), image("a:1")]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].names.len(), 2);
    }
}
