//! `distill plan`: the stages a build would run. (Being written by the plan work.)

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::global::Global;

#[derive(Args)]
pub struct PlanArgs {
    /// The build context
    context: PathBuf,
}

pub fn run(args: PlanArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("plan for {} is being written", args.context.display())
}
