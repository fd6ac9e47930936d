//! Errors of writing, reading and extracting layers. Each names what it is about: the file on
//! disk, or the archive entry (its index and path), so a user can find the culprit.

use std::io;
use std::path::PathBuf;

use crate::digest::Sha256Digest;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A file of the tree being archived could not be read.
    #[error("reading {path}: {source}")]
    Source { path: String, source: io::Error },

    /// A file of the tree changed while it was being archived.
    #[error("{path}: {reason}")]
    Changed { path: String, reason: String },

    /// A file cannot be described in a tar header.
    #[error("{path}: cannot be stored in a layer: {reason}")]
    Unrepresentable { path: String, reason: String },

    /// The tree holds something a layer must not carry silently.
    #[error("{path}: {reason}")]
    Unsupported { path: String, reason: String },

    /// Writing the layer to its destination failed.
    #[error("writing the layer: {0}")]
    Write(#[source] io::Error),

    /// Reading or decompressing the layer failed (a truncated or corrupt stream lands here).
    #[error("reading the layer: {0}")]
    Read(#[source] io::Error),

    /// The bytes are not a valid tar stream.
    #[error("malformed tar archive at byte {offset}: {reason}")]
    Malformed { offset: u64, reason: String },

    /// An entry is refused: it would land outside the target, or it cannot be applied.
    #[error("layer entry {index} `{path}`: {reason}")]
    Refused {
        index: u64,
        path: String,
        reason: String,
    },

    /// The filesystem refused an operation while extracting an entry.
    #[error("layer entry {index} `{path}`: {operation}: {source}")]
    Extract {
        index: u64,
        path: String,
        operation: String,
        source: io::Error,
    },

    /// The extraction target cannot be used.
    #[error("{path}: {source}")]
    Target { path: PathBuf, source: io::Error },

    /// The uncompressed stream does not hash to the expected diff ID.
    #[error("diff ID mismatch: the layer's uncompressed content is {actual}, expected {expected}")]
    DiffIdMismatch {
        expected: Sha256Digest,
        actual: Sha256Digest,
    },

    /// The compressed blob does not hash to the expected digest.
    #[error("digest mismatch: the layer blob is {actual}, expected {expected}")]
    DigestMismatch {
        expected: Sha256Digest,
        actual: Sha256Digest,
    },
}
