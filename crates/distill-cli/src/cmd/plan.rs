//! `distill plan`: the stages a build would run, in order, with their bases, platforms and
//! instructions, and the stages it would skip. Reads the Dockerfile; never touches an image.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use distill_frontend::Source;
use distill_plan::{plan_source, BuildArgs, PlanOptions, Platform};

use crate::global::Global;

#[derive(Args)]
pub struct PlanArgs {
    /// The Dockerfile, `-` for standard input [default: CONTEXT/Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,

    /// The stage to build [default: the last stage]
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,

    /// Set a build arg; a bare NAME takes its value from the environment (ignored if unset)
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    build_args: Vec<String>,

    /// The platform to build for, e.g. linux/arm64 [default: this machine's]
    #[arg(long, value_name = "PLATFORM", value_parser = parse_platform)]
    platform: Option<Platform>,

    /// The build context directory
    context: PathBuf,
}

fn parse_platform(text: &str) -> Result<Platform, String> {
    Platform::parse(text)
}

pub fn run(args: PlanArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    if !args.context.is_dir() {
        anyhow::bail!(
            "the build context {} is not a directory",
            args.context.display()
        );
    }
    let file = args.file.unwrap_or_else(|| args.context.join("Dockerfile"));
    let bytes = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the Dockerfile from standard input")?;
        bytes
    } else {
        std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
    let source = Source::new(file.display().to_string(), text);
    let build_args = BuildArgs::from_specs(&args.build_args, |name| std::env::var(name).ok())
        .map_err(anyhow::Error::msg)?;
    let options = PlanOptions {
        target: args.target,
        build_args,
        target_platform: args.platform,
        ..PlanOptions::default()
    };
    match plan_source(&source, &options) {
        Ok(plan) => {
            for warning in &plan.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{plan}");
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostic) => {
            eprintln!("error: {diagnostic}");
            Ok(ExitCode::FAILURE)
        }
    }
}
