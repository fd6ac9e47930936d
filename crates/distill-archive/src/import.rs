//! `import`: a root filesystem tarball (plain, gzip or zstd) as a one-layer image, like
//! `docker import`.
//!
//! The layer is the tarball's own bytes, decompressed: its diff ID is the sha256 of exactly what
//! the user gave, as with `docker import`, so both tools agree on it. On the way through, a tar
//! reader walks the entries to refuse what no image layer may hold (absolute names, `..`
//! components, links that climb out) and a truncated or non-tar input. The bytes are then
//! compressed (with `distill_layer::Compressor`) into the blob writer given, while the diff ID is
//! computed in the same pass. Never holds the layer in memory; never extracts anything.

use std::io::{self, Read, Write};

use distill_image::{Digest, History, ImageConfig, Platform, RootFs, RuntimeConfig, Sha256Hasher};
use distill_layer::{Compression, Compressor};
use serde_json::Value;

use crate::compression::decompressed;
use crate::error::{ArchiveError, Result};
use crate::stage::normalize_name;

/// The layer an import wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// OCI media type of the blob written.
    pub media_type: &'static str,
    /// Number of tar entries.
    pub entries: u64,
    /// The files' size unpacked, as Docker reports layer sizes: regular files' lengths and
    /// symlinks' target lengths.
    pub unpacked_size: u64,
}

/// Reads the tarball `input` (`what` names it in errors), checks it, and writes it compressed
/// as `compression` says into `out`. Returns the layer facts and `out` back (e.g. to commit it).
pub fn write_layer<R: Read, W: Write>(
    input: R,
    what: &str,
    compression: Compression,
    out: W,
) -> Result<(ImportedLayer, W)> {
    let (_, tar_stream) = decompressed(input, what)
        .map_err(|err| ArchiveError::io(format!("reading {what}"), err))?;
    let compressor = Compressor::new(out, compression)
        .map_err(|err| ArchiveError::io("starting the layer compressor", err))?;
    let mut tee = Tee {
        inner: tar_stream,
        hasher: Sha256Hasher::new(),
        sink: compressor,
    };
    let (entries, unpacked_size) = check_entries(&mut tee, what)?;
    // The end-of-archive blocks and anything after them belong to the layer too: they are part
    // of what was given, and of its digest (docker keeps them as well).
    io::copy(&mut tee, &mut io::sink())
        .map_err(|err| ArchiveError::io(format!("reading {what}"), err))?;
    if tee.hasher.is_empty() {
        return Err(ArchiveError::invalid(format!(
            "{what} is empty, not a tar archive"
        )));
    }
    let diff_id = tee.hasher.finish();
    let out = tee
        .sink
        .finish()
        .map_err(|err| ArchiveError::io("finishing the layer", err))?;
    Ok((
        ImportedLayer {
            diff_id,
            media_type: compression.oci_media_type(),
            entries,
            unpacked_size,
        },
        out,
    ))
}

/// Walks the tar entries of `stream`, refusing unsafe names. Returns how many there were and
/// their unpacked size.
fn check_entries<R: Read>(stream: &mut R, what: &str) -> Result<(u64, u64)> {
    let read_error = |err: io::Error| {
        ArchiveError::io(format!("{what}: reading the tarball"), err)
            .with_hint("the file is truncated or is not a tar archive")
    };
    let mut archive = tar::Archive::new(stream);
    let mut count = 0;
    let mut unpacked_size = 0u64;
    for entry in archive.entries().map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        count += 1;
        let name = entry.path_bytes();
        let kind = entry.header().entry_type();
        unpacked_size = unpacked_size.saturating_add(match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => entry.size(),
            tar::EntryType::Symlink => entry.link_name_bytes().map_or(0, |t| t.len() as u64),
            _ => 0,
        });
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        // `./` (the root itself) is a common first entry: fine.
        if name.as_ref() != b"./" && name.as_ref() != b"." {
            check_name(&name).map_err(|why| {
                ArchiveError::invalid(format!(
                    "{what}: entry {:?} {why}",
                    String::from_utf8_lossy(&name)
                ))
                .with_hint("a layer's names are relative to the image root and stay inside it")
            })?;
        }
        if kind == tar::EntryType::Link {
            if let Some(target) = entry.link_name_bytes() {
                check_name(&target).map_err(|why| {
                    ArchiveError::invalid(format!(
                        "{what}: hard link {:?} -> {:?}: target {why}",
                        String::from_utf8_lossy(&name),
                        String::from_utf8_lossy(&target)
                    ))
                })?;
            }
        }
    }
    Ok((count, unpacked_size))
}

/// A layer entry name: relative, no `..`. (Non-UTF-8 names are fine in a layer.)
fn check_name(name: &[u8]) -> std::result::Result<(), String> {
    match normalize_name(name) {
        Ok(_) => Ok(()),
        Err(why) if why.contains("UTF-8") => {
            if name.starts_with(b"/") {
                Err("is an absolute path".into())
            } else if name.split(|b| *b == b'/').any(|part| part == b"..") {
                Err("has a `..` component (path traversal)".into())
            } else {
                Ok(())
            }
        }
        Err(why) => Err(why),
    }
}

/// Passes every byte read through a hasher and a writer.
struct Tee<R, W> {
    inner: R,
    hasher: Sha256Hasher,
    sink: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.sink.write_all(&buf[..read])?;
        Ok(read)
    }
}

/// What the image config of an import says besides its layer.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// `--change` instructions, in order.
    pub changes: Vec<String>,
    /// `--message`: the history comment (default "Imported from -", as docker writes it).
    pub message: Option<String>,
    /// The image's platform (the host's by default, as docker does).
    pub platform: Platform,
    /// RFC 3339 creation time.
    pub created: String,
}

/// The runtime config the `--change` instructions of `options` make.
pub fn runtime_config(options: &ImportOptions) -> Result<RuntimeConfig> {
    let mut runtime = RuntimeConfig::default();
    crate::changes::apply(&mut runtime, &options.changes)?;
    Ok(runtime)
}

/// The config of an imported image with layer `diff_id` and runtime defaults `runtime`.
pub fn image_config(
    diff_id: Digest,
    runtime: RuntimeConfig,
    options: &ImportOptions,
) -> ImageConfig {
    let comment = options
        .message
        .clone()
        .unwrap_or_else(|| "Imported from -".to_string());
    let mut config = ImageConfig {
        created: Some(options.created.clone()),
        architecture: options.platform.architecture.clone(),
        os: options.platform.os.clone(),
        variant: options.platform.variant.clone(),
        config: Some(runtime),
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids: vec![diff_id],
        },
        history: vec![History {
            created: Some(options.created.clone()),
            comment: Some(comment.clone()),
            ..History::default()
        }],
        ..ImageConfig::default()
    };
    config
        .extra
        .insert("comment".to_string(), Value::String(comment));
    config
}

/// The creation time to record: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now,
/// in RFC 3339 with nanoseconds as Docker writes it.
pub fn creation_time() -> Result<String> {
    let now = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.is_empty() => {
            let seconds: i64 = text.trim().parse().map_err(|_| {
                ArchiveError::invalid(format!(
                    "SOURCE_DATE_EPOCH={text:?} is not a number of seconds"
                ))
            })?;
            time::OffsetDateTime::from_unix_timestamp(seconds)
                .map_err(|err| ArchiveError::caused(format!("SOURCE_DATE_EPOCH={text:?}"), err))?
        }
        _ => time::OffsetDateTime::now_utc(),
    };
    now.format(&time::format_description::well_known::Rfc3339)
        .map_err(|err| ArchiveError::caused("formatting the creation time", err))
}
