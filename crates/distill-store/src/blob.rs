//! Writing blobs, containerd style: a [`BlobWriter`] streams into a temporary file in
//! `ingest/`, hashing as it goes, and [`BlobWriter::commit`] renames it to
//! `blobs/sha256/<hex>` only if the content has the digest (and size) it was promised.
//!
//! A blob is never visible under a name that is not its digest, and never half written.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use distill_image::{Algorithm, Digest, Sha256Hasher};

use crate::atomic::{create_temp, sync_dir};
use crate::error::{IoContext, Result, StoreError};
use crate::lock::LockGuard;

/// What a blob must turn out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub digest: Digest,
    /// `None` when only the digest is known.
    pub size: Option<u64>,
}

impl Expected {
    pub fn new(digest: Digest, size: u64) -> Expected {
        Expected {
            digest,
            size: Some(size),
        }
    }
}

/// A blob being written. Dropping it without [`commit`](BlobWriter::commit) discards it.
pub struct BlobWriter {
    file: Option<BufWriter<File>>,
    temp_path: PathBuf,
    blobs_dir: PathBuf,
    hasher: Sha256Hasher,
    expected: Option<Expected>,
    /// Keeps garbage collection away from our temporary file until we are done.
    _lease: LockGuard,
}

impl BlobWriter {
    pub(crate) fn new(
        ingest_dir: &std::path::Path,
        blobs_dir: PathBuf,
        expected: Option<Expected>,
        lease: LockGuard,
    ) -> Result<BlobWriter> {
        if let Some(expected) = &expected {
            if expected.digest.algorithm() != Algorithm::Sha256 {
                return Err(StoreError::UnsupportedAlgorithm(expected.digest.clone()));
            }
        }
        let (file, temp_path) =
            create_temp(ingest_dir, "blob").at("creating a file in", ingest_dir)?;
        Ok(BlobWriter {
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
            temp_path,
            blobs_dir,
            hasher: Sha256Hasher::new(),
            expected,
            _lease: lease,
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Checks the content against what was expected, then publishes it. Returns the digest and
    /// size. If the blob already exists (same digest, so same bytes) ours is discarded.
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        let size = self.hasher.len();
        let digest = self.hasher.clone().finish();
        if let Some(expected) = &self.expected {
            if let Some(expected_size) = expected.size {
                if expected_size != size {
                    return Err(StoreError::SizeMismatch {
                        digest: expected.digest.to_string(),
                        expected: expected_size,
                        actual: size,
                    });
                }
            }
            if expected.digest != digest {
                return Err(StoreError::DigestMismatch {
                    expected: expected.digest.clone(),
                    actual: digest,
                });
            }
        }
        let Some(buffered) = self.file.take() else {
            return Err(StoreError::Io {
                action: "committing",
                path: self.temp_path.clone(),
                source: io::Error::other("writer already finished"),
            });
        };
        let file = buffered
            .into_inner()
            .map_err(|err| err.into_error())
            .at("writing", &self.temp_path)?;
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .at("setting permissions on", &self.temp_path)?;
        file.sync_all().at("syncing", &self.temp_path)?;
        drop(file);
        let target = self.blobs_dir.join(digest.hex());
        if target.exists() {
            fs::remove_file(&self.temp_path).at("removing", &self.temp_path)?;
        } else {
            fs::rename(&self.temp_path, &target).at("publishing", &target)?;
            sync_dir(&self.blobs_dir).at("syncing", &self.blobs_dir)?;
        }
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(Expected {
            size: Some(limit),
            digest,
        }) = &self.expected
        {
            if self.hasher.len() + buf.len() as u64 > *limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("content for {digest} is larger than the expected {limit} bytes"),
                ));
            }
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("writer already finished"))?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() || self.temp_path.exists() {
            self.file = None;
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}
