//! The store's errors. Messages are for users: they say what was wrong and with what.

use std::path::PathBuf;

use distill_image::{Digest, FormatError, ReferenceError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("ambiguous image ID prefix {prefix:?}: it matches {count} images")]
    AmbiguousId { prefix: String, count: usize },
    #[error("image {digest} has no manifest for platform {platform} in the store")]
    NoPlatform { platform: String, digest: Digest },
    #[error("content {digest} is not in the store")]
    MissingBlob { digest: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("digest mismatch: expected {expected}, content is {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("the store keeps sha256 content only, not {0}")]
    UnsupportedAlgorithm(Digest),
    #[error("refusing to create a tag with a digest reference: {0}")]
    TagWithDigest(String),
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    ReferencedInMultipleRepositories { id: String },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("malformed {what} {digest}")]
    Format {
        what: &'static str,
        digest: Digest,
        #[source]
        source: FormatError,
    },
    #[error("corrupt store file {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Adds what was being done and to which path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, action: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}
