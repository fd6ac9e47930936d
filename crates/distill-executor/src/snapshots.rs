//! An image's layers as snapshot directories: what a RUN step (or `distill run`) mounts as the
//! lower directories of its overlay.
//!
//! A layer is unpacked once into the store's snapshots (keyed by its diff ID, whiteouts in
//! overlayfs's format, the diff ID checked while unpacking) and shared by every image and step
//! that uses it. Nothing here writes to a committed snapshot or keeps a half-unpacked one: an
//! unpacking that fails leaves its directory in the store's `ingest/`.

use std::io;
use std::path::PathBuf;

use distill_layer::{ExtractOptions, OverlayXattrs, Whiteouts};
use distill_store::{Image, Store};

use crate::error::{BuildError, OrBuild, Result};
use crate::LayerRef;

/// The xattrs opaque directories carry in snapshots: `trusted.overlay.*` as real root,
/// `user.overlay.*` otherwise (what overlayfs reads in a user namespace).
pub fn overlay_xattrs() -> OverlayXattrs {
    if rustix::process::geteuid().is_root() {
        OverlayXattrs::Trusted
    } else {
        OverlayXattrs::User
    }
}

/// The layers of `image`, bottom first, each with its diff ID from the config.
pub fn image_layers(image: &Image) -> Result<Vec<LayerRef>> {
    let diff_ids = &image.config.rootfs.diff_ids;
    if diff_ids.len() != image.manifest.layers.len() {
        return Err(BuildError::message(format!(
            "image {} has {} layers but its config lists {} diff IDs",
            image.id(),
            image.manifest.layers.len(),
            diff_ids.len()
        )));
    }
    Ok(image
        .manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| LayerRef {
            digest: layer.digest.clone(),
            diff_id: diff_id.clone(),
            size: layer.size,
            media_type: layer.media_type.clone(),
        })
        .collect())
}

/// The snapshot directory of `layer`, unpacking its blob when there is none yet.
pub fn layer_snapshot(store: &Store, layer: &LayerRef) -> Result<PathBuf> {
    if let Some(snapshot) = store
        .snapshot(&layer.diff_id)
        .or_build(|| format!("reading snapshot {}", layer.diff_id))?
    {
        return Ok(snapshot.fs_dir());
    }
    let prepared = store
        .prepare_snapshot()
        .or_build(|| "preparing a snapshot")?;
    let blob = store
        .open_blob(&layer.digest)
        .or_build(|| format!("opening layer {}", layer.digest))?;
    let options = ExtractOptions {
        whiteouts: Whiteouts::Overlay(overlay_xattrs()),
        expected_diff_id: distill_layer::Sha256Digest::parse(&layer.diff_id.to_string()),
        expected_digest: None,
    };
    distill_layer::extract(io::BufReader::new(blob), &prepared.fs_dir(), &options)
        .or_build(|| format!("unpacking layer {}", layer.digest))?;
    let snapshot = prepared
        .commit(&layer.diff_id)
        .or_build(|| format!("committing snapshot {}", layer.diff_id))?;
    Ok(snapshot.fs_dir())
}

/// The snapshot directories of every layer of `image`, bottom first (unpacked as needed).
pub fn image_snapshots(store: &Store, image: &Image) -> Result<Vec<PathBuf>> {
    image_layers(image)?
        .iter()
        .map(|layer| layer_snapshot(store, layer))
        .collect()
}
