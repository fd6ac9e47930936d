//! distill's solver: the part of the build that knows steps, keys and order, and nothing of
//! Dockerfiles (BuildKit's seam: the frontend lowers a Dockerfile to steps, the solver runs
//! them).
//!
//! - A [`KeyBuilder`] makes each step's [`CacheKey`] from its parent's key, what the step does
//!   and the content hashes of what it reads; the [`StepCache`] remembers what a key produced,
//!   so a hit costs no work.
//! - [`run_graph`] runs jobs (a build's stages) as soon as what they depend on is done,
//!   independent ones in parallel, and cancels the rest on the first failure through the
//!   shared [`Cancel`], whose hooks stop running processes at once.
//! - [`Progress`] carries numbered-vertex [`Event`]s from every worker to one printer
//!   (`plain`, `tty`, `json` or `quiet`, see [`Mode`]).
//!
//! The solver never looks inside a step's result: what a key maps to is the executor's
//! business, stored as an opaque record.

mod cache;
mod cancel;
mod graph;
mod key;
pub mod progress;

pub use cache::StepCache;
pub use cancel::{Cancel, HookGuard};
pub use graph::{run_graph, GraphError};
pub use key::{CacheKey, KeyBuilder};
pub use progress::{Event, LogStream, Mode, Progress, VertexProgress};
