//! distill's executor: runs a build [`Plan`] and turns its target stage into an image.
//!
//! [`build`] replays every reachable stage (independent stages in parallel, through the
//! solver): metadata instructions write the image config and history as BuildKit does,
//! COPY/ADD/WORKDIR are file operations done here (a [`rootview::RootView`] reads the
//! context or a stage's layers, [`copy`] plans the entries, which become a layer directly),
//! and RUN runs in `distill-sandbox` on an overlay of the stage's snapshots, its upper
//! directory becoming the layer. Every file-system step is keyed and cached (see
//! [`engine`]). [`export`] assembles the config and manifest, records the image in the store
//! with its tags, and writes the other outputs (OCI or Docker archive, tar, local directory).
//!
//! The executor never reads outside the build context or a stage's layers, never tags an
//! image whose build failed, and leaves everything it stages in the store's `ingest/`, where
//! `prune` reclaims it after a crash.

pub mod bindview;
pub mod context;
pub mod copy;
pub mod engine;
pub mod error;
pub mod export;
pub mod fetch;
pub mod rootview;
pub mod snapshots;
pub mod users;
pub mod walkprint;

use std::collections::HashMap;
use std::path::PathBuf;

use distill_context::Matcher;
use distill_image::Digest;
use distill_plan::Plan;
use distill_sandbox::NetworkMode;
use distill_solver::{Cancel, Progress};
use distill_store::Store;
use serde::{Deserialize, Serialize};

pub use error::{BuildError, Result};
pub use export::{BuiltImage, Output};

/// One layer of a stage: its blob in the store and its diff ID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
}

/// Everything a build needs besides the plan.
pub struct BuildOptions {
    pub store: Store,
    /// The build context directory.
    pub context_dir: PathBuf,
    /// `.dockerignore` patterns of the context.
    pub ignore: Matcher,
    pub no_cache: bool,
    /// The default network of RUN steps (`--network`).
    pub network: NetworkMode,
    /// `--label`s added to the target image.
    pub labels: Vec<(String, String)>,
    /// SOURCE_DATE_EPOCH: every timestamp of the image is this (layers clamped to it).
    pub source_date_epoch: Option<i64>,
    /// `--secret` values by id.
    pub secrets: HashMap<String, Vec<u8>>,
    pub progress: Progress,
    pub cancel: Cancel,
}

/// Builds the plan's target stage; the image's blobs are in the store (not yet recorded).
pub fn build(plan: &Plan, options: &BuildOptions) -> Result<BuiltImage> {
    let engine = engine::Engine::new(options, plan, options.ignore.clone())?;
    let result = engine.run();
    engine.save_hashes();
    let output = result?;
    export::assemble(&engine, plan, output)
}
