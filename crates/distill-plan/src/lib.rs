//! distill's instruction layer and build plan, second stage of the pipeline: a parsed
//! [`Dockerfile`](distill_frontend::Dockerfile) → typed [`Instruction`]s → a [`Plan`] of the
//! stages a build runs, with BuildKit's `dockerfile:1` semantics.
//!
//! - [`instruction`] turns each syntax node into an [`Instruction`], checking flags, argument
//!   counts, stage names, mounts and HEALTHCHECK options, with an error at the exact position.
//! - [`expand`] expands exactly the words BuildKit expands, against a stage's [`Vars`].
//! - [`plan()`] splits global ARGs from stages, resolves global and predefined args, expands
//!   FROM lines, picks the target and keeps the stages it needs (FROM a stage, `COPY --from`,
//!   `RUN --mount from=`, ONBUILD triggers), rejecting unknown targets, cycles and stages read
//!   before they are defined.
//!
//! The plan never looks at an image and never runs anything: the build engine replays each
//! stage's instructions with [`Plan::step`], starting from the base image's environment
//! ([`Plan::initial_vars`]), to get each instruction with its variables expanded and checked
//! (mounts interpreted, `--chmod` and EXPOSE specs validated). For the values it then needs:
//! [`parse_chmod`], [`exposed_ports`], [`parse_trigger`] (ONBUILD triggers of a base image)
//! and [`Plan::input_for`] (what such a trigger's `--from` names).

mod args;
mod chmod;
pub mod expand;
mod flags;
pub mod instruction;
mod mount;
mod plan;
mod platform;
mod ports;
mod reference;
mod render;
mod suggest;

pub use args::{BuildArgs, PROXY_ARGS};
pub use chmod::{parse_chmod, Chmod};
pub use expand::{expand_instruction, Vars};
pub use instruction::{
    parse_instruction, parse_instructions, parse_trigger, Add, ArgDecl, Check, Command,
    CommandLine, Copy, From, Healthcheck, Instruction, KeyValue, Network, Run, RunMount, Security,
    SourcesAndDest,
};
pub use mount::{parse_mount, Device, Mount, MountType, Sharing};
pub use plan::{
    plan, plan_source, Base, Dependency, Input, Plan, PlanOptions, Stage, Via, DEFAULT_PATH,
};
pub use platform::Platform;
pub use ports::exposed_ports;
