//! The image model: what an image is, independent of where it is kept.
//!
//! - A [`Reference`] names an image the way Docker does (`python` is
//!   `docker.io/library/python:latest`).
//! - A [`Digest`] names content (`sha256:…`); [`Sha256Hasher`] computes one while bytes stream.
//! - A [`Manifest`] is either an [`ImageManifest`] (a config [`Descriptor`] and layer
//!   descriptors) or an [`ImageIndex`] (one manifest per [`Platform`]); an [`ImageConfig`] holds
//!   the runtime defaults, the layers' diff IDs and the history. [`media_type`] has the OCI and
//!   Docker schema 2 names.
//!
//! Both media-type families are read; the store writes OCI. These types parse what others wrote
//! and serialise what we create, but never re-serialise someone else's document: digests are
//! of the exact bytes read, so those bytes are what gets stored.
//!
//! Why our own serde types and not `oci-spec` (0.10): its config has no Healthcheck, OnBuild or
//! Shell, and it drops unknown fields, which Docker-built images rely on.

pub mod config;
pub mod digest;
pub mod manifest;
pub mod media_type;
pub mod reference;

pub use config::{EmptyObject, HealthConfig, History, ImageConfig, RootFs, RuntimeConfig};
pub use digest::{Algorithm, Digest, DigestError, Sha256Hasher};
pub use manifest::{Descriptor, FormatError, ImageIndex, ImageManifest, Manifest, Platform};
pub use reference::{Reference, ReferenceError};
