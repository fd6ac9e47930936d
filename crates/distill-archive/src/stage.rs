//! Reading an archive's tar stream once, from front to back, into a staging directory.
//!
//! A docker or OCI archive names its contents in `manifest.json` / `index.json`, which may come
//! first or last in the stream, so nothing can be checked before the stream ends. Every regular
//! file is therefore written to its own file in a private staging directory while its sha256 is
//! computed (and, for a gzip or zstd file, the sha256 of its decompressed content too: a layer's
//! diff ID), all in one pass. [`StagedArchive`] then answers "what is at this path, with which
//! digests" so that the loader can check every digest before anything enters the store.
//!
//! Never trusts an entry name: names are normalised, and absolute names, `..` components,
//! duplicate names and links that leave the archive are refused. File names in the staging
//! directory are counters, never derived from entry names. Never holds a file's content in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use distill_image::media_type::Compression;
use distill_image::{Digest, Sha256Hasher};

use crate::compression::{detect, Detected, MAGIC_LEN};
use crate::error::{ArchiveError, Result};

/// How many symlinks/hard links one lookup may follow before we call it a loop.
const MAX_LINK_HOPS: usize = 16;
/// How many entries an archive may have. A real one has a few per layer (Docker's old layout
/// four), so this is generous; it bounds the staging index a hostile archive could inflate.
const MAX_ENTRIES: usize = 100_000;

/// A regular file of the archive, staged on disk.
#[derive(Debug)]
pub struct StagedFile {
    /// The normalised name it had in the archive.
    pub name: String,
    /// Where its bytes are now.
    pub path: PathBuf,
    pub size: u64,
    /// sha256 of the bytes as they are in the archive.
    pub digest: Digest,
    /// How the bytes are compressed, from their first bytes.
    pub compression: Compression,
    /// sha256 of the decompressed bytes (equal to `digest` when not compressed); an error text
    /// when the compressed data is corrupt, reported only if the file is used as a layer.
    pub diff_id: std::result::Result<Digest, String>,
}

enum Entry {
    File(StagedFile),
    /// A symlink or hard link, with its target already resolved to a normalised archive path.
    Link(String),
}

/// Every file of an archive, staged. Dropping it removes the staging directory.
pub struct StagedArchive {
    /// The archive's name for error messages.
    what: String,
    entries: BTreeMap<String, Entry>,
    _dir: tempfile::TempDir,
}

impl StagedArchive {
    /// Reads the (already decompressed) tar stream `tar` to its end, staging every regular file
    /// under a new directory inside `staging_parent`. `what` names the archive in errors.
    pub fn read<R: Read>(tar: R, staging_parent: &Path, what: &str) -> Result<StagedArchive> {
        std::fs::create_dir_all(staging_parent).map_err(|err| {
            ArchiveError::io(format!("creating {}", staging_parent.display()), err)
        })?;
        let dir = tempfile::Builder::new()
            .prefix("load-")
            .tempdir_in(staging_parent)
            .map_err(|err| {
                ArchiveError::io(
                    format!("creating a directory in {}", staging_parent.display()),
                    err,
                )
            })?;
        let mut entries = BTreeMap::new();
        let read_error = |err: io::Error| {
            ArchiveError::io(format!("{what}: reading the archive"), err)
                .with_hint("the archive is truncated or is not a tar archive")
        };
        let mut archive = tar::Archive::new(tar);
        for (index, entry) in archive.entries().map_err(read_error)?.enumerate() {
            let mut entry = entry.map_err(read_error)?;
            if index >= MAX_ENTRIES {
                return Err(ArchiveError::invalid(format!(
                    "{what}: more than {MAX_ENTRIES} entries: not an image archive"
                )));
            }
            let raw_name = entry.path_bytes().into_owned();
            let kind = entry.header().entry_type();
            // `./`, the archive's root, is a directory entry some tars write first.
            if kind == tar::EntryType::Directory && is_root(&raw_name) {
                continue;
            }
            let name = normalize_name(&raw_name).map_err(|why| {
                ArchiveError::invalid(format!(
                    "{what}: entry {:?} {why}",
                    String::from_utf8_lossy(&raw_name)
                ))
            })?;
            let kind = entry.header().entry_type();
            let staged =
                match kind {
                    tar::EntryType::Directory => continue,
                    // Extended headers are folded into the entries that follow by the tar reader;
                    // a global one applies to nothing we need.
                    tar::EntryType::XGlobalHeader => continue,
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        let path = dir.path().join(index.to_string());
                        Entry::File(stage_file(&mut entry, &path, &name).map_err(|err| {
                            ArchiveError::io(format!("{what}: reading {name}"), err)
                        })?)
                    }
                    tar::EntryType::Symlink | tar::EntryType::Link => {
                        let target = entry.link_name_bytes().ok_or_else(|| {
                            ArchiveError::invalid(format!("{what}: link {name} has no target"))
                        })?;
                        let resolved = if kind == tar::EntryType::Symlink {
                            resolve_symlink(&name, &target)
                        } else {
                            normalize_name(&target)
                        };
                        Entry::Link(resolved.map_err(|why| {
                            ArchiveError::invalid(format!(
                                "{what}: link {name} -> {:?}: target {why}",
                                String::from_utf8_lossy(&target)
                            ))
                        })?)
                    }
                    other => {
                        return Err(ArchiveError::invalid(format!(
                        "{what}: entry {name} is a {other:?}; an image archive holds only files, \
                         directories and links"
                    )))
                    }
                };
            if entries.insert(name.clone(), staged).is_some() {
                return Err(ArchiveError::invalid(format!(
                    "{what}: {name} appears twice in the archive"
                )));
            }
        }
        Ok(StagedArchive {
            what: what.to_string(),
            entries,
            _dir: dir,
        })
    }

    /// The archive's name, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Whether the archive has an entry (file or link) at `name` (normalised).
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The names of all regular files, sorted.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|(name, entry)| match entry {
            Entry::File(_) => Some(name.as_str()),
            Entry::Link(_) => None,
        })
    }

    /// The file at `name` (a name as written in manifest.json or derived from a digest),
    /// following links inside the archive.
    pub fn file(&self, name: &str) -> Result<&StagedFile> {
        let mut current = normalize_name(name.as_bytes()).map_err(|why| {
            ArchiveError::invalid(format!("{}: the path {name:?} {why}", self.what))
        })?;
        for _ in 0..=MAX_LINK_HOPS {
            match self.entries.get(&current) {
                Some(Entry::File(file)) => return Ok(file),
                Some(Entry::Link(target)) => current = target.clone(),
                None => {
                    return Err(ArchiveError::invalid(format!(
                        "{}: {name} is missing from the archive",
                        self.what
                    ))
                    .with_hint("the archive is truncated or was not written completely"))
                }
            }
        }
        Err(ArchiveError::invalid(format!(
            "{}: {name}: too many levels of links",
            self.what
        )))
    }

    /// The content of a small JSON document of the archive, at most `limit` bytes.
    pub fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let file = self.file(name)?;
        if file.size > limit {
            return Err(ArchiveError::invalid(format!(
                "{}: {name} is {} bytes, more than the {limit} a metadata file may have",
                self.what, file.size
            )));
        }
        std::fs::read(&file.path)
            .map_err(|err| ArchiveError::io(format!("{}: reading staged {name}", self.what), err))
    }
}

/// Copies one entry into `path`, hashing it (and its decompressed content) on the way.
fn stage_file<R: Read>(entry: &mut R, path: &Path, name: &str) -> io::Result<StagedFile> {
    let mut out = BufWriter::with_capacity(128 * 1024, File::create(path)?);
    let mut hasher = Sha256Hasher::new();
    let mut buffer = vec![0; 128 * 1024];

    // The first bytes decide whether the file is compressed.
    let mut head = Vec::with_capacity(MAGIC_LEN);
    entry.take(MAGIC_LEN as u64).read_to_end(&mut head)?;
    let compression = match detect(&head) {
        Detected::Known(compression) => compression,
        Detected::Unsupported(_) => Compression::None,
    };
    let mut diff = DiffHasher::new(compression);
    out.write_all(&head)?;
    hasher.update(&head);
    diff.update(&head);
    loop {
        let read = match entry.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        out.write_all(&buffer[..read])?;
        hasher.update(&buffer[..read]);
        diff.update(&buffer[..read]);
    }
    out.into_inner().map_err(|err| err.into_error())?;
    let size = hasher.len();
    let digest = hasher.finish();
    let diff_id = diff.finish(&digest);
    Ok(StagedFile {
        name: name.to_string(),
        path: path.to_path_buf(),
        size,
        digest,
        compression,
        diff_id,
    })
}

/// The sha256 of a stream's decompressed content, fed with compressed bytes as they pass.
/// A decoding error is kept, not raised: the file may not be a layer at all.
enum DiffHasher {
    Plain,
    Gzip(Box<flate2::write::MultiGzDecoder<Sha256Hasher>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Sha256Hasher>>),
    Failed(String),
}

impl DiffHasher {
    fn new(compression: Compression) -> DiffHasher {
        match compression {
            Compression::None => DiffHasher::Plain,
            Compression::Gzip => DiffHasher::Gzip(Box::new(flate2::write::MultiGzDecoder::new(
                Sha256Hasher::new(),
            ))),
            Compression::Zstd => match zstd::stream::write::Decoder::new(Sha256Hasher::new()) {
                Ok(decoder) => DiffHasher::Zstd(Box::new(decoder)),
                Err(err) => DiffHasher::Failed(format!("zstd: {err}")),
            },
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        let result = match self {
            DiffHasher::Plain | DiffHasher::Failed(_) => return,
            DiffHasher::Gzip(decoder) => decoder.write_all(bytes).map_err(|e| format!("gzip: {e}")),
            DiffHasher::Zstd(decoder) => decoder.write_all(bytes).map_err(|e| format!("zstd: {e}")),
        };
        if let Err(why) = result {
            *self = DiffHasher::Failed(why);
        }
    }

    fn finish(self, digest: &Digest) -> std::result::Result<Digest, String> {
        match self {
            DiffHasher::Plain => Ok(digest.clone()),
            DiffHasher::Failed(why) => Err(why),
            DiffHasher::Gzip(decoder) => decoder
                .finish()
                .map(Sha256Hasher::finish)
                .map_err(|e| format!("gzip: {e}")),
            DiffHasher::Zstd(mut decoder) => {
                decoder.flush().map_err(|e| format!("zstd: {e}"))?;
                Ok(decoder.into_inner().finish())
            }
        }
    }
}

/// Whether an entry name is the root itself (`.`, `./`).
fn is_root(name: &[u8]) -> bool {
    name.split(|b| *b == b'/')
        .all(|part| part.is_empty() || part == b".")
}

/// An entry name as a clean relative path: no leading `/`, no `.` or empty components, no `..`.
/// The error completes "entry X ...".
pub fn normalize_name(raw: &[u8]) -> std::result::Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "is not valid UTF-8".to_string())?;
    if text.starts_with('/') {
        return Err("is an absolute path".into());
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("has a `..` component (path traversal)".into()),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("names no file".into());
    }
    Ok(parts.join("/"))
}

/// The archive path a symlink at `link` pointing to `target` designates; refused if absolute or
/// if it climbs out of the archive.
fn resolve_symlink(link: &str, target: &[u8]) -> std::result::Result<String, String> {
    let target = std::str::from_utf8(target).map_err(|_| "is not valid UTF-8".to_string())?;
    if target.starts_with('/') {
        return Err("is an absolute path".into());
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop(); // the link's own name: its target is relative to its directory
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("leaves the archive (path traversal)".into());
                }
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("names no file".into());
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_or_refused() {
        assert_eq!(normalize_name(b"./manifest.json").unwrap(), "manifest.json");
        assert_eq!(
            normalize_name(b"blobs//sha256/./ab").unwrap(),
            "blobs/sha256/ab"
        );
        assert!(normalize_name(b"/etc/passwd")
            .unwrap_err()
            .contains("absolute"));
        assert!(normalize_name(b"blobs/../../x")
            .unwrap_err()
            .contains("traversal"));
        assert!(normalize_name(b"./").is_err());
        assert!(normalize_name(b"\xff").unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn symlinks_resolve_inside_the_archive_only() {
        assert_eq!(
            resolve_symlink("a/layer.tar", b"../b/layer.tar").unwrap(),
            "b/layer.tar"
        );
        assert_eq!(resolve_symlink("a/x", b"y").unwrap(), "a/y");
        assert!(resolve_symlink("a/x", b"../../y")
            .unwrap_err()
            .contains("leaves"));
        assert!(resolve_symlink("a/x", b"/etc/passwd")
            .unwrap_err()
            .contains("absolute"));
    }
}

#[cfg(test)]
mod staging_tests {
    use super::*;

    /// A tar stream built with the tar crate (names it accepts).
    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *content).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn stages_files_with_their_digests_and_diff_ids() {
        let layer = b"plain layer bytes".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&layer).unwrap();
        let gzipped = gz.finish().unwrap();
        let bytes = archive(&[("a/layer.tar", &layer), ("b/layer.tar.gz", &gzipped)]);
        let dir = tempfile::tempdir().unwrap();
        let staged = StagedArchive::read(&bytes[..], dir.path(), "test.tar").unwrap();

        let plain = staged.file("./a//layer.tar").unwrap();
        assert_eq!(plain.digest, Digest::sha256_of(&layer));
        assert_eq!(plain.diff_id.as_ref().unwrap(), &plain.digest);
        assert_eq!(std::fs::read(&plain.path).unwrap(), layer);

        let compressed = staged.file("b/layer.tar.gz").unwrap();
        assert_eq!(compressed.compression, Compression::Gzip);
        assert_eq!(compressed.digest, Digest::sha256_of(&gzipped));
        assert_eq!(
            compressed.diff_id.as_ref().unwrap(),
            &Digest::sha256_of(&layer)
        );
        assert_eq!(
            staged.file_names().collect::<Vec<_>>(),
            ["a/layer.tar", "b/layer.tar.gz"]
        );
    }

    #[test]
    fn refuses_duplicates_and_corrupt_compression_is_kept_as_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let twice = archive(&[("x", b"1"), ("./x", b"2")]);
        let err = StagedArchive::read(&twice[..], dir.path(), "t.tar")
            .err()
            .unwrap();
        assert!(err.to_string().contains("x appears twice"), "{err}");

        let broken_gzip = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff];
        let bytes = archive(&[("layer", &broken_gzip)]);
        let staged = StagedArchive::read(&bytes[..], dir.path(), "t.tar").unwrap();
        assert!(staged.file("layer").unwrap().diff_id.is_err());
        assert!(staged
            .file("missing")
            .unwrap_err()
            .to_string()
            .contains("missing from the archive"));
    }
}
