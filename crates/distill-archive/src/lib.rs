//! Image archives: what `distill save`, `load` and `import` do, as `docker save/load/import`.
//!
//! - [`save`] writes images of the store as one tar stream: a Docker archive (`manifest.json`
//!   beside an OCI layout, the layout Docker 25+ writes, which `docker load` of every version
//!   reads) or an OCI archive (`oci-layout`, `index.json`, `blobs/sha256/…`).
//! - [`load`] reads such an archive (Docker old or new layout, OCI; plain, gzip or zstd): a
//!   [`StagedArchive`] stages every file once while hashing it, [`load::plan`] checks every digest
//!   and says what to add, and only then does anything enter the store.
//! - [`import`] makes a one-layer image of a rootfs tarball, with `--change` instructions.
//!
//! Never holds a layer in memory: layers stream from file to file. Never trusts a name in an
//! archive (see [`stage`]). Never leaves the store half-changed by a refused archive.

pub mod changes;
pub mod compression;
pub mod docker;
pub mod error;
pub mod import;
pub mod load;
pub mod oci;
pub mod save;
pub mod stage;
mod store_io;

pub use error::{ArchiveError, Result};
pub use stage::StagedArchive;
pub use store_io::{import_into, load_into, resolve_for_save, save_from, Imported};

/// containerd's (and Docker's) annotation for an image's full name in an OCI layout.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming an index entry (Docker and BuildKit write the tag alone).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
