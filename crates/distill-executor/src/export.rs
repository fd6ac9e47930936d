//! The built image and its outputs: config and manifest assembly (times, labels, diff IDs),
//! then the sinks: the store (with tags), OCI and Docker archives (distill-archive's
//! writers), a tar of the final file system, or the file system in a local directory.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use distill_archive::save::{save, Format, SaveImage};
use distill_image::{
    media_type, Descriptor, Digest, History, ImageConfig, ImageManifest, Platform, Reference,
    RuntimeConfig,
};
use distill_layer::{Compression, ExtractOptions, LayerWriter, TreeOptions};
use distill_plan::Plan;
use distill_store::Store;

use crate::engine::{Engine, StageOutput};
use crate::error::{BuildError, OrBuild, Result};
use crate::LayerRef;

/// A built image whose blobs are all in the store.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    pub manifest: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub config: ImageConfig,
    pub config_digest: Digest,
    pub layers: Vec<LayerRef>,
}

/// Where a build's result goes (docker buildx's `-o type=...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The local store, with these names.
    Image { names: Vec<Reference> },
    /// An OCI image layout in a tar file.
    Oci {
        dest: PathBuf,
        names: Vec<Reference>,
    },
    /// What `docker load` reads.
    Docker {
        dest: PathBuf,
        names: Vec<Reference>,
    },
    /// The final file system as a tar file.
    Tar { dest: PathBuf },
    /// The final file system in a directory.
    Local { dest: PathBuf },
}

pub(crate) fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// Gives history entries without a time (metadata steps) the time of a neighbour, as
/// BuildKit's exporter does: the entries of the first gap take the next dated entry's
/// time, those of later gaps the previous dated entry's. Nothing dated, nothing changes.
fn date_metadata_steps(history: &mut [History]) {
    let Some(first_gap) = history.iter().position(|h| h.created.is_none()) else {
        return;
    };
    let mut known = history[first_gap..]
        .iter()
        .find_map(|h| h.created.clone())
        .or_else(|| history[..first_gap].last().and_then(|h| h.created.clone()));
    for entry in &mut history[first_gap..] {
        match &entry.created {
            Some(created) => known = Some(created.clone()),
            None => entry.created = known.clone(),
        }
    }
}

pub(crate) fn assemble(
    engine: &Engine<'_>,
    plan: &Plan,
    output: StageOutput,
) -> Result<BuiltImage> {
    let options = engine.options;
    let store = &options.store;
    let StageOutput {
        mut config,
        layers,
        new_history,
        ..
    } = output;
    if let Some(epoch) = options.source_date_epoch {
        let first_new = config.history.len().saturating_sub(new_history);
        for entry in config.history.iter_mut().skip(first_new) {
            entry.created = Some(rfc3339(epoch));
        }
    }
    date_metadata_steps(&mut config.history);
    // The image is as old as its last step, so a fully cached rebuild gives the same bytes.
    let created = match options.source_date_epoch {
        Some(epoch) => rfc3339(epoch),
        None => match config.history.iter().rev().find_map(|h| h.created.clone()) {
            Some(last) => last,
            None => rfc3339(engine.now),
        },
    };
    config.created = Some(created);
    if !options.labels.is_empty() {
        let runtime = config.config.get_or_insert_with(RuntimeConfig::default);
        let labels = runtime.labels.get_or_insert_with(Default::default);
        for (key, value) in &options.labels {
            labels.insert(key.clone(), value.clone());
        }
    }
    let platform = &plan.target_stage().platform;
    if config.os.is_empty() {
        config.os = platform.os.clone();
        config.architecture = platform.architecture.clone();
    }
    config.rootfs.kind = "layers".to_string();
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
    let config_bytes = config.to_json();
    let config_digest = store
        .put_blob(&config_bytes)
        .or_build(|| "storing the image config")?;
    let config_descriptor = Descriptor::new(
        media_type::OCI_CONFIG,
        config_digest.clone(),
        config_bytes.len() as u64,
    );
    let layer_descriptors = layers
        .iter()
        .map(|l| Descriptor::new(l.media_type.clone(), l.digest.clone(), l.size))
        .collect();
    let manifest = ImageManifest::new_oci(config_descriptor, layer_descriptors);
    let manifest_bytes = manifest.to_json();
    let manifest_digest = store
        .put_blob(&manifest_bytes)
        .or_build(|| "storing the image manifest")?;
    let mut descriptor = Descriptor::new(
        media_type::OCI_MANIFEST,
        manifest_digest,
        manifest_bytes.len() as u64,
    );
    descriptor.platform = Some(Platform::new(
        &config.os,
        &config.architecture,
        config.variant.as_deref(),
    ));
    Ok(BuiltImage {
        manifest: descriptor,
        manifest_bytes,
        config,
        config_digest,
        layers,
    })
}

impl BuiltImage {
    /// The image ID (the config's digest), as Docker prints it.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }

    /// Writes the image to `output`.
    pub fn export(&self, store: &Store, output: &Output, epoch: Option<i64>) -> Result<()> {
        match output {
            Output::Image { names } => {
                store
                    .add_image(&self.manifest, names)
                    .or_build(|| "recording the image")?;
                Ok(())
            }
            Output::Oci { dest, names } => self.archive(store, dest, names, Format::Oci),
            Output::Docker { dest, names } => self.archive(store, dest, names, Format::Docker),
            Output::Local { dest } => {
                fs::create_dir_all(dest).or_build(|| format!("creating {}", dest.display()))?;
                self.unpack(store, dest)
            }
            Output::Tar { dest } => {
                let staging = store
                    .root()
                    .join("ingest")
                    .join(format!("export-{}", std::process::id()));
                let _ = fs::remove_dir_all(&staging);
                fs::create_dir_all(&staging).or_build(|| "preparing the tar export")?;
                let result = (|| {
                    self.unpack(store, &staging)?;
                    let mut options = TreeOptions::new();
                    if let Some(epoch) = epoch {
                        options = options.clamp_mtime(epoch);
                    }
                    write_atomically(dest, |file| {
                        let mut writer =
                            LayerWriter::new(file, Compression::None).map_err(io::Error::other)?;
                        writer
                            .append_tree(&staging, &options)
                            .map_err(io::Error::other)?;
                        writer.finish().map_err(io::Error::other)?;
                        Ok(())
                    })
                })();
                let _ = distill_sandbox::remove_tree(&staging);
                result
            }
        }
    }

    fn unpack(&self, store: &Store, dest: &Path) -> Result<()> {
        for layer in &self.layers {
            let blob = store
                .open_blob(&layer.digest)
                .or_build(|| format!("opening layer {}", layer.digest))?;
            distill_layer::extract(io::BufReader::new(blob), dest, &ExtractOptions::default())
                .or_build(|| format!("unpacking layer {} into {}", layer.digest, dest.display()))?;
        }
        Ok(())
    }

    fn archive(
        &self,
        store: &Store,
        dest: &Path,
        names: &[Reference],
        format: Format,
    ) -> Result<()> {
        let image = SaveImage {
            target: self.manifest.clone(),
            names: names.to_vec(),
        };
        write_atomically(dest, |file| {
            save(store, &[image], format, file).map_err(io::Error::other)?;
            Ok(())
        })
    }
}

/// Writes `dest` through a temporary file beside it, renamed once complete.
fn write_atomically(
    dest: &Path,
    fill: impl FnOnce(&mut io::BufWriter<fs::File>) -> io::Result<()>,
) -> Result<()> {
    if dest == Path::new("-") {
        return Err(
            BuildError::message("writing an output to standard output is not supported")
                .with_hint("give dest=FILE"),
        );
    }
    let temp = dest.with_file_name(format!(
        ".{}.distill-{}",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let result = (|| {
        let file = fs::File::create(&temp)?;
        let mut writer = io::BufWriter::new(file);
        fill(&mut writer)?;
        writer.flush()?;
        writer.get_ref().sync_all()?;
        fs::rename(&temp, dest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.or_build(|| format!("writing {}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dated(times: &[Option<&str>]) -> Vec<Option<String>> {
        let mut history: Vec<History> = times
            .iter()
            .map(|t| History {
                created: t.map(str::to_string),
                ..History::default()
            })
            .collect();
        date_metadata_steps(&mut history);
        history.into_iter().map(|h| h.created).collect()
    }

    #[test]
    fn metadata_steps_take_a_neighbours_time() {
        // The first gap looks forward, later gaps look back.
        assert_eq!(
            dated(&[Some("1"), None, Some("2"), None, None, Some("3"), None]),
            [
                Some("1"),
                Some("2"),
                Some("2"),
                Some("2"),
                Some("2"),
                Some("3"),
                Some("3")
            ]
            .map(|t| t.map(str::to_string))
        );
        // Leading gap with nothing after it: the time before it.
        assert_eq!(
            dated(&[Some("1"), None]),
            [Some("1"), Some("1")].map(|t| t.map(str::to_string))
        );
        // Nothing dated: nothing invented.
        assert_eq!(dated(&[None, None]), [None, None]);
    }
}
