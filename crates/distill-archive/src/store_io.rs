//! The three commands against a [`Store`]: [`load_into`], [`save_from`], [`import_into`].
//!
//! Order matters for the store's guarantees: a lease is held from the first blob written until
//! the images are recorded (so garbage collection cannot take them), and an archive is checked
//! whole before its first blob is written, so a refused archive changes nothing.

use std::io::{self, Read, Write};

use distill_image::media_type;
use distill_image::{Descriptor, Digest, ImageManifest, Reference};
use distill_layer::Compression;
use distill_store::{Expected, Store};

use crate::compression::decompressed;
use crate::error::{ArchiveError, Result};
use crate::import::{image_config, runtime_config, write_layer, ImportOptions};
use crate::load::{self, BlobSource as LoadSource, LoadedImage};
use crate::save::{self, BlobSource, Format, SaveImage, Saved};
use crate::stage::StagedArchive;

fn store_error(context: impl Into<String>, err: distill_store::StoreError) -> ArchiveError {
    ArchiveError::caused(context, err)
}

impl BlobSource for Store {
    fn open_blob(&self, digest: &Digest) -> Result<(Box<dyn Read + '_>, u64)> {
        let file = Store::open_blob(self, digest)
            .map_err(|err| store_error(format!("reading blob {digest}"), err))?;
        let size = file
            .metadata()
            .map_err(|err| ArchiveError::io(format!("reading blob {digest}"), err))?
            .len();
        Ok((
            Box::new(io::BufReader::with_capacity(256 * 1024, file)),
            size,
        ))
    }
}

/// Loads the archive read from `input` (plain, gzip or zstd; `what` names it in messages) into
/// `store`. Returns the images, in archive order, once all are recorded.
pub fn load_into<R: Read>(store: &Store, input: R, what: &str) -> Result<Vec<LoadedImage>> {
    let _lease = store
        .lease()
        .map_err(|err| store_error("locking the store", err))?;
    let (_, tar_stream) = decompressed(input, what)
        .map_err(|err| ArchiveError::io(format!("reading {what}"), err))?;
    // Staged inside the store's ingest directory: the same file system, and a crash leaves
    // only what `distill prune` reclaims.
    let staged = StagedArchive::read(tar_stream, &store.root().join("ingest"), what)?;
    let plan = load::plan(&staged)?;
    for (digest, (size, source)) in &plan.blobs {
        if store.has_blob(digest) {
            continue;
        }
        let mut writer = store
            .writer(Expected::new(digest.clone(), *size))
            .map_err(|err| store_error(format!("storing {digest}"), err))?;
        match source {
            LoadSource::Staged(file) => {
                let mut reader = std::fs::File::open(&file.path).map_err(|err| {
                    ArchiveError::io(format!("{what}: reading staged {}", file.name), err)
                })?;
                io::copy(&mut reader, &mut writer)
                    .map_err(|err| ArchiveError::io(format!("storing {digest}"), err))?;
            }
            LoadSource::Created(bytes) => writer
                .write_all(bytes)
                .map_err(|err| ArchiveError::io(format!("storing {digest}"), err))?,
        }
        writer
            .commit()
            .map_err(|err| store_error(format!("storing {digest}"), err))?;
    }
    for image in &plan.images {
        store
            .add_image(&image.target, &image.references)
            .map_err(|err| store_error(format!("recording image {}", image.id), err))?;
    }
    Ok(plan.images)
}

/// Resolves what the user named to images to save, as `docker save` does: `name:tag` is saved
/// under that tag, a bare `name` under every tag the repository has (`name:latest` if it has
/// none), an image ID or digest as an unnamed image.
pub fn resolve_for_save(store: &Store, texts: &[String]) -> Result<Vec<SaveImage>> {
    let mut images = Vec::new();
    for text in texts {
        if !looks_like_id(text) {
            if let Ok(repository) = Reference::parse_normalized_name(text) {
                if repository.tag().is_none() && repository.digest().is_none() {
                    let tagged = every_tag_of(store, &repository)?;
                    if !tagged.is_empty() {
                        images.extend(tagged);
                        continue;
                    }
                }
            }
        }
        let record = store
            .find(text)
            .map_err(|err| store_error(format!("cannot save {text}"), err))?;
        let names = match Reference::parse_normalized(text) {
            Ok(reference) if reference.digest().is_none() && !looks_like_id(text) => {
                vec![reference]
            }
            _ => Vec::new(),
        };
        images.push(SaveImage {
            target: record.target,
            names,
        });
    }
    Ok(images)
}

/// The images with a tag in `repository`, each with those tags.
fn every_tag_of(store: &Store, repository: &Reference) -> Result<Vec<SaveImage>> {
    let records = store
        .images()
        .map_err(|err| store_error("reading the image list", err))?;
    Ok(records
        .into_iter()
        .filter_map(|record| {
            let names: Vec<Reference> = record
                .names
                .iter()
                .filter(|name| &name.repository() == repository)
                .cloned()
                .collect();
            (!names.is_empty()).then(|| SaveImage {
                target: record.target,
                names,
            })
        })
        .collect())
}

/// A full or short hex image ID, with or without `sha256:` (as the store's `find` treats it).
fn looks_like_id(text: &str) -> bool {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    !hex.is_empty()
        && hex.len() <= 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (hex.len() == 64 || text.starts_with("sha256:"))
}

/// Writes the images `texts` name as one archive to `out`.
pub fn save_from<W: Write>(
    store: &Store,
    texts: &[String],
    format: Format,
    out: W,
) -> Result<Saved> {
    let _lease = store
        .lease()
        .map_err(|err| store_error("locking the store", err))?;
    let images = resolve_for_save(store, texts)?;
    save::save(store, &images, format, out)
}

/// What an import made.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The image ID (config digest).
    pub id: Digest,
    pub manifest: Descriptor,
    pub diff_id: Digest,
}

/// Imports the rootfs tarball read from `input` as a one-layer image, named `reference` if given.
pub fn import_into<R: Read>(
    store: &Store,
    input: R,
    what: &str,
    reference: Option<&Reference>,
    options: &ImportOptions,
    compression: Compression,
) -> Result<Imported> {
    // Changes are checked before the (possibly long) layer write.
    let runtime = runtime_config(options)?;
    let _lease = store
        .lease()
        .map_err(|err| store_error("locking the store", err))?;
    let writer = store
        .ingest()
        .map_err(|err| store_error("storing the layer", err))?;
    let (layer, writer) = write_layer(input, what, compression, writer)?;
    let (layer_digest, layer_size) = writer
        .commit()
        .map_err(|err| store_error("storing the layer", err))?;
    // For `distill images` (Docker's unpacked sizes); it can measure the layer later.
    let _ = store.record_unpacked_size(&layer.diff_id, layer.unpacked_size);
    let config = image_config(layer.diff_id.clone(), runtime, options).to_json();
    let config_digest = store
        .put_blob(&config)
        .map_err(|err| store_error("storing the image config", err))?;
    let manifest = ImageManifest::new_oci(
        Descriptor::new(
            media_type::OCI_CONFIG,
            config_digest.clone(),
            config.len() as u64,
        ),
        vec![Descriptor::new(layer.media_type, layer_digest, layer_size)],
    )
    .to_json();
    let manifest_descriptor = Descriptor::for_bytes(media_type::OCI_MANIFEST, &manifest);
    store
        .put_blob(&manifest)
        .map_err(|err| store_error("storing the image manifest", err))?;
    let names: Vec<Reference> = reference.into_iter().cloned().collect();
    store
        .add_image(&manifest_descriptor, &names)
        .map_err(|err| store_error("recording the image", err))?;
    Ok(Imported {
        id: config_digest,
        manifest: manifest_descriptor,
        diff_id: layer.diff_id,
    })
}
