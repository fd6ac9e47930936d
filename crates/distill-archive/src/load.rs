//! `load`: from a staged archive (see [`crate::stage`]) to a [`LoadPlan`] — the blobs to add,
//! the manifests to create and the tags to set — with every digest checked on the way.
//!
//! Three layouts are understood:
//! - Docker ≥ 25: `manifest.json` plus an OCI layout (`index.json`, `blobs/sha256/…`). The paths
//!   of `manifest.json` decide what is loaded, as in `docker load`; the OCI manifest of the same
//!   image is kept byte for byte when the layout has one.
//! - Docker < 25: `manifest.json`, `<id>.json` configs and `<id>/layer.tar` layers (possibly
//!   symlinks to each other). An OCI manifest is created for each image.
//! - OCI image layout: `oci-layout`, `index.json`, `blobs/…`; images are named by their
//!   `io.containerd.image.name` annotation, or by `org.opencontainers.image.ref.name` when it is a
//!   full reference.
//!
//! Checked before anything is stored: every file under `blobs/<alg>/` has the digest of its name;
//! every descriptor's digest and size match the blob it points to; every layer's decompressed
//! content has the diff ID its config lists, in order; manifests, configs and indexes parse.
//! Planning never writes to the store: a refused archive leaves it unchanged.

use std::collections::BTreeMap;

use distill_image::media_type::{self, Compression};
use distill_image::{
    Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest, Manifest, Platform, Reference,
};

use crate::docker::{self, ManifestItem};
use crate::error::{ArchiveError, Result};
use crate::stage::{StagedArchive, StagedFile};
use crate::{oci, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};

/// The largest metadata document (manifest.json, index.json, a manifest or a config) we read.
pub const METADATA_LIMIT: u64 = 16 * 1024 * 1024;
/// How deep indexes may nest inside an OCI layout.
const MAX_INDEX_DEPTH: usize = 4;

/// Where a blob of the plan comes from.
#[derive(Debug)]
pub enum BlobSource<'a> {
    /// A file of the archive, already hashed.
    Staged(&'a StagedFile),
    /// A document we created (an OCI manifest for an old-layout Docker image).
    Created(Vec<u8>),
}

/// One image the archive holds.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedImage {
    /// The manifest (or index) to tag.
    pub target: Descriptor,
    /// The image ID: the digest of the config (of the host's platform, for an index).
    pub id: Digest,
    /// The tags to set, in archive order. Empty when the archive names none.
    pub references: Vec<Reference>,
}

/// What loading an archive adds to the store. Every digest in it has been checked.
#[derive(Debug)]
pub struct LoadPlan<'a> {
    /// Every blob to add, by digest: layers, configs, manifests, indexes.
    pub blobs: BTreeMap<Digest, (u64, BlobSource<'a>)>,
    pub images: Vec<LoadedImage>,
}

impl<'a> LoadPlan<'a> {
    fn add_staged(&mut self, file: &'a StagedFile) {
        self.blobs
            .entry(file.digest.clone())
            .or_insert((file.size, BlobSource::Staged(file)));
    }
}

/// Checks a staged archive and says what loading it adds.
pub fn plan(archive: &StagedArchive) -> Result<LoadPlan<'_>> {
    check_blob_names(archive)?;
    let mut plan = LoadPlan {
        blobs: BTreeMap::new(),
        images: Vec::new(),
    };
    if archive.contains(docker::MANIFEST_JSON) {
        plan_docker(archive, &mut plan)?;
    } else if archive.contains(oci::INDEX_JSON) {
        plan_oci(archive, &mut plan)?;
    } else {
        return Err(ArchiveError::invalid(format!(
            "{}: neither {} nor {} found: not a docker or OCI image archive",
            archive.what(),
            docker::MANIFEST_JSON,
            oci::INDEX_JSON
        ))
        .with_hint("make the archive with `distill save`, `docker save` or `skopeo copy ... oci-archive:FILE`"));
    }
    Ok(plan)
}

/// Every file under `blobs/sha256/` must have the digest its name says.
fn check_blob_names(archive: &StagedArchive) -> Result<()> {
    for name in archive.file_names() {
        let Some(hex) = name.strip_prefix("blobs/sha256/") else {
            continue;
        };
        let file = archive.file(name)?;
        if file.digest.hex() != hex {
            return Err(ArchiveError::invalid(format!(
                "{}: {name} has content of digest {}, not the digest its name says",
                archive.what(),
                file.digest
            ))
            .with_hint("the archive is corrupt or was modified"));
        }
    }
    Ok(())
}

/// The archive path of the blob `digest` in an OCI layout.
fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex())
}

/// The staged blob a descriptor points to, checked against its digest and size.
fn described_blob<'a>(
    archive: &'a StagedArchive,
    descriptor: &Descriptor,
    what: &str,
) -> Result<&'a StagedFile> {
    let path = blob_path(&descriptor.digest);
    let file = archive.file(&path).map_err(|err| {
        ArchiveError::invalid(format!(
            "{}: {what} {}: {err}",
            archive.what(),
            descriptor.digest
        ))
    })?;
    if file.digest != descriptor.digest {
        // Only sha256 is computed; any other algorithm cannot be verified, so it is refused.
        return Err(ArchiveError::invalid(format!(
            "{}: {what} {} cannot be verified: only sha256 digests are supported",
            archive.what(),
            descriptor.digest
        )));
    }
    if file.size != descriptor.size {
        return Err(ArchiveError::invalid(format!(
            "{}: {what} {} is {} bytes, its descriptor says {}",
            archive.what(),
            descriptor.digest,
            file.size,
            descriptor.size
        )));
    }
    Ok(file)
}

fn read_config(archive: &StagedArchive, file: &StagedFile) -> Result<ImageConfig> {
    let bytes = archive.read_small(&file.name, METADATA_LIMIT)?;
    ImageConfig::parse(&bytes).map_err(|err| {
        ArchiveError::caused(
            format!("{}: image config {}", archive.what(), file.name),
            err,
        )
    })
}

/// Checks that layer `index` of an image, stored in `file`, decompresses to `expected`.
fn check_diff_id(
    archive: &StagedArchive,
    file: &StagedFile,
    index: usize,
    expected: &Digest,
) -> Result<()> {
    match &file.diff_id {
        Ok(actual) if actual == expected => Ok(()),
        Ok(actual) => Err(ArchiveError::invalid(format!(
            "{}: layer {} ({}) has diff ID {actual}, but the image config lists {expected}",
            archive.what(),
            index + 1,
            file.name
        ))
        .with_hint("the archive is corrupt or was modified")),
        Err(why) => Err(ArchiveError::invalid(format!(
            "{}: layer {} ({}) cannot be decompressed: {why}",
            archive.what(),
            index + 1,
            file.name
        ))),
    }
}

fn layer_media_type(file: &StagedFile) -> &'static str {
    media_type::oci_layer(file.compression)
}

/// Docker archives, old and new layouts.
fn plan_docker<'a>(archive: &'a StagedArchive, plan: &mut LoadPlan<'a>) -> Result<()> {
    let bytes = archive.read_small(docker::MANIFEST_JSON, METADATA_LIMIT)?;
    let items = docker::parse_manifest(&bytes)
        .map_err(|why| ArchiveError::invalid(format!("{}: {why}", archive.what())))?;
    // Docker ≥ 25 writes the same images as OCI manifests too: reuse them byte for byte.
    let oci_manifests = if archive.contains(oci::INDEX_JSON) {
        oci_manifests_by_config(archive)?
    } else {
        Vec::new()
    };
    for (position, item) in items.iter().enumerate() {
        let image = plan_docker_item(archive, plan, item, &oci_manifests).map_err(|err| {
            if items.len() > 1 {
                err.context(format!(
                    "image {} of {}",
                    position + 1,
                    docker::MANIFEST_JSON
                ))
            } else {
                err
            }
        })?;
        plan.images.push(image);
    }
    Ok(())
}

fn plan_docker_item<'a>(
    archive: &'a StagedArchive,
    plan: &mut LoadPlan<'a>,
    item: &ManifestItem,
    oci_manifests: &[(Descriptor, ImageManifest)],
) -> Result<LoadedImage> {
    let config_file = archive.file(&item.config)?;
    check_named_digest(archive, &item.config, config_file)?;
    let config = read_config(archive, config_file)?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != item.layers.len() {
        return Err(ArchiveError::invalid(format!(
            "{}: {} lists {} layers for {}, its config has {} diff IDs",
            archive.what(),
            docker::MANIFEST_JSON,
            item.layers.len(),
            item.config,
            diff_ids.len()
        )));
    }
    let mut layer_files = Vec::with_capacity(item.layers.len());
    for (index, (layer, diff_id)) in item.layers.iter().zip(diff_ids).enumerate() {
        let file = archive.file(layer)?;
        check_named_digest(archive, layer, file)?;
        check_diff_id(archive, file, index, diff_id)?;
        layer_files.push(file);
    }
    let references = item
        .repo_tags
        .iter()
        .map(|tag| parse_tag(archive, tag))
        .collect::<Result<Vec<_>>>()?;

    plan.add_staged(config_file);
    for file in &layer_files {
        plan.add_staged(file);
    }
    let existing = oci_manifests.iter().find(|(_, manifest)| {
        manifest.config.digest == config_file.digest
            && manifest.layers.len() == layer_files.len()
            && manifest
                .layers
                .iter()
                .zip(&layer_files)
                .all(|(descriptor, file)| descriptor.digest == file.digest)
    });
    let target = match existing {
        Some((descriptor, _)) => {
            let file = described_blob(archive, descriptor, "manifest")?;
            plan.add_staged(file);
            Descriptor::new(
                descriptor.media_type.clone(),
                file.digest.clone(),
                file.size,
            )
        }
        None => {
            let config_descriptor = Descriptor::new(
                media_type::OCI_CONFIG,
                config_file.digest.clone(),
                config_file.size,
            );
            let layers = layer_files
                .iter()
                .map(|file| Descriptor::new(layer_media_type(file), file.digest.clone(), file.size))
                .collect();
            let bytes = ImageManifest::new_oci(config_descriptor, layers).to_json();
            let descriptor = Descriptor::for_bytes(media_type::OCI_MANIFEST, &bytes);
            plan.blobs
                .entry(descriptor.digest.clone())
                .or_insert((descriptor.size, BlobSource::Created(bytes)));
            descriptor
        }
    };
    Ok(LoadedImage {
        target,
        id: config_file.digest.clone(),
        references,
    })
}

/// Paths that name a digest (`blobs/sha256/<hex>`, `<hex>.json`) must name the content's.
fn check_named_digest(archive: &StagedArchive, path: &str, file: &StagedFile) -> Result<()> {
    let named = path
        .strip_prefix("blobs/sha256/")
        .or_else(|| path.strip_suffix(".json").filter(|hex| !hex.contains('/')));
    match named {
        Some(hex) if hex.len() == 64 && hex != file.digest.hex() => {
            Err(ArchiveError::invalid(format!(
                "{}: {path} has content of digest {}, not the digest its name says",
                archive.what(),
                file.digest
            ))
            .with_hint("the archive is corrupt or was modified"))
        }
        _ => Ok(()),
    }
}

/// A `RepoTags` entry: a reference with a tag (`:latest` when none is written), no digest.
fn parse_tag(archive: &StagedArchive, text: &str) -> Result<Reference> {
    let reference = Reference::parse_normalized(text).map_err(|err| {
        ArchiveError::caused(
            format!(
                "{}: invalid tag {text:?} in {}",
                archive.what(),
                docker::MANIFEST_JSON
            ),
            err,
        )
    })?;
    if reference.digest().is_some() {
        return Err(ArchiveError::invalid(format!(
            "{}: invalid tag {text:?} in {}: a tag cannot hold a digest",
            archive.what(),
            docker::MANIFEST_JSON
        )));
    }
    Ok(reference)
}

fn read_index_json(archive: &StagedArchive) -> Result<ImageIndex> {
    if archive.contains(oci::OCI_LAYOUT) {
        let bytes = archive.read_small(oci::OCI_LAYOUT, METADATA_LIMIT)?;
        oci::check_layout_file(&bytes)
            .map_err(|why| ArchiveError::invalid(format!("{}: {why}", archive.what())))?;
    }
    let bytes = archive.read_small(oci::INDEX_JSON, METADATA_LIMIT)?;
    match Manifest::parse(&bytes, None) {
        Ok(Manifest::Index(index)) => Ok(index),
        Ok(Manifest::Image(_)) => Err(ArchiveError::invalid(format!(
            "{}: {} is an image manifest, not an index",
            archive.what(),
            oci::INDEX_JSON
        ))),
        Err(err) => Err(ArchiveError::caused(
            format!("{}: {} is malformed", archive.what(), oci::INDEX_JSON),
            err,
        )),
    }
}

/// The image manifests directly listed in index.json, for matching Docker's manifest.json items.
fn oci_manifests_by_config(archive: &StagedArchive) -> Result<Vec<(Descriptor, ImageManifest)>> {
    let index = read_index_json(archive)?;
    let mut found = Vec::new();
    for descriptor in &index.manifests {
        if !media_type::is_manifest(&descriptor.media_type) {
            continue;
        }
        let file = described_blob(archive, descriptor, "manifest")?;
        let bytes = archive.read_small(&file.name, METADATA_LIMIT)?;
        if let Ok(Manifest::Image(manifest)) = Manifest::parse(&bytes, Some(&descriptor.media_type))
        {
            found.push((descriptor.clone(), manifest));
        }
    }
    Ok(found)
}

/// OCI image layouts.
fn plan_oci<'a>(archive: &'a StagedArchive, plan: &mut LoadPlan<'a>) -> Result<()> {
    let index = read_index_json(archive)?;
    if index.manifests.is_empty() {
        return Err(ArchiveError::invalid(format!(
            "{}: {} lists no images",
            archive.what(),
            oci::INDEX_JSON
        )));
    }
    // Several entries may be the same image under different names: one LoadedImage per target.
    let mut by_target: Vec<LoadedImage> = Vec::new();
    for descriptor in &index.manifests {
        let id = plan_oci_tree(archive, plan, descriptor, 0)?;
        let reference = reference_from_annotations(archive, descriptor)?;
        let target = Descriptor::new(
            descriptor.media_type.clone(),
            descriptor.digest.clone(),
            descriptor.size,
        );
        match by_target
            .iter_mut()
            .find(|image| image.target.digest == target.digest)
        {
            Some(image) => image.references.extend(reference),
            None => by_target.push(LoadedImage {
                target,
                id,
                references: reference.into_iter().collect(),
            }),
        }
    }
    plan.images.extend(by_target);
    Ok(())
}

/// Checks the manifest or index at `descriptor` and everything below it, adds them to the
/// plan, and returns the image ID (for an index: of the host's platform, else the first image).
fn plan_oci_tree<'a>(
    archive: &'a StagedArchive,
    plan: &mut LoadPlan<'a>,
    descriptor: &Descriptor,
    depth: usize,
) -> Result<Digest> {
    if depth > MAX_INDEX_DEPTH {
        return Err(ArchiveError::invalid(format!(
            "{}: indexes nest more than {MAX_INDEX_DEPTH} deep",
            archive.what()
        )));
    }
    let kind = if media_type::is_index(&descriptor.media_type) {
        "index"
    } else if media_type::is_manifest(&descriptor.media_type) {
        "manifest"
    } else {
        return Err(ArchiveError::invalid(format!(
            "{}: {} lists {} of media type {:?}, which is not an image",
            archive.what(),
            oci::INDEX_JSON,
            descriptor.digest,
            descriptor.media_type
        )));
    };
    let file = described_blob(archive, descriptor, kind)?;
    let bytes = archive.read_small(&file.name, METADATA_LIMIT)?;
    let manifest = Manifest::parse(&bytes, Some(&descriptor.media_type)).map_err(|err| {
        ArchiveError::caused(
            format!("{}: {kind} {}", archive.what(), descriptor.digest),
            err,
        )
    })?;
    plan.add_staged(file);
    match manifest {
        Manifest::Image(manifest) => plan_oci_image(archive, plan, &manifest),
        Manifest::Index(index) => {
            // An index may list platforms whose manifests were not exported (Docker 25+
            // saves only the platforms it has): those are skipped, as the store allows. Every
            // manifest that is present is checked.
            let mut ids = Vec::new();
            for child in &index.manifests {
                if !archive.contains(&blob_path(&child.digest)) {
                    continue;
                }
                ids.push((
                    child.clone(),
                    plan_oci_tree(archive, plan, child, depth + 1)?,
                ));
            }
            let chosen = index
                .select(&Platform::host())
                .and_then(|chosen| ids.iter().find(|(d, _)| d.digest == chosen.digest))
                .or(ids.first());
            chosen.map(|(_, id)| id.clone()).ok_or_else(|| {
                ArchiveError::invalid(format!(
                    "{}: none of the {} manifests of index {} is in the archive",
                    archive.what(),
                    index.manifests.len(),
                    descriptor.digest
                ))
                .with_hint("the archive is truncated or was not written completely")
            })
        }
    }
}

fn plan_oci_image<'a>(
    archive: &'a StagedArchive,
    plan: &mut LoadPlan<'a>,
    manifest: &ImageManifest,
) -> Result<Digest> {
    let config_file = described_blob(archive, &manifest.config, "config")?;
    plan.add_staged(config_file);
    let layers: Vec<&StagedFile> = manifest
        .layers
        .iter()
        .map(|layer| described_blob(archive, layer, "layer"))
        .collect::<Result<_>>()?;
    if media_type::is_config(&manifest.config.media_type) {
        let config = read_config(archive, config_file)?;
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(ArchiveError::invalid(format!(
                "{}: manifest lists {} layers, config {} has {} diff IDs",
                archive.what(),
                layers.len(),
                manifest.config.digest,
                config.rootfs.diff_ids.len()
            )));
        }
        for (index, ((file, descriptor), diff_id)) in layers
            .iter()
            .zip(&manifest.layers)
            .zip(&config.rootfs.diff_ids)
            .enumerate()
        {
            if let Some(declared) = media_type::layer_compression(&descriptor.media_type) {
                if declared != Compression::None && declared != file.compression {
                    return Err(ArchiveError::invalid(format!(
                        "{}: layer {} is declared {} but its content is {:?}",
                        archive.what(),
                        descriptor.digest,
                        descriptor.media_type,
                        file.compression
                    )));
                }
            }
            check_diff_id(archive, file, index, diff_id)?;
        }
    }
    for file in layers {
        plan.add_staged(file);
    }
    Ok(config_file.digest.clone())
}

/// The name an OCI layout gives an index entry, if any.
fn reference_from_annotations(
    archive: &StagedArchive,
    descriptor: &Descriptor,
) -> Result<Option<Reference>> {
    let invalid = |text: &str, err| {
        ArchiveError::caused(
            format!(
                "{}: invalid image name {text:?} in {}",
                archive.what(),
                oci::INDEX_JSON
            ),
            err,
        )
    };
    if let Some(name) = descriptor.annotations.get(ANNOTATION_IMAGE_NAME) {
        return Reference::parse_normalized(name)
            .map(Some)
            .map_err(|err| invalid(name, err));
    }
    // ref.name is often only a tag ("1.0"); use it only when it is clearly a whole reference.
    match descriptor.annotations.get(ANNOTATION_REF_NAME) {
        Some(name) if name.contains('/') || name.contains(':') => Reference::parse_normalized(name)
            .map(Some)
            .map_err(|err| invalid(name, err)),
        _ => Ok(None),
    }
}
