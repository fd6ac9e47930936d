//! `distill build`: flags as `docker buildx build` spells them, then the plan
//! (distill-plan), the build (distill-executor) and the outputs. Ctrl-C and SIGTERM cancel the
//! build: running steps are killed, nothing is tagged, and what was staged stays in the
//! store's `ingest/` for `distill prune`.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use distill_context::{find_ignore_file, IgnoreFile, Matcher};
use distill_executor::{BuildError, BuildOptions, Output};
use distill_frontend::Source;
use distill_image::Reference;
use distill_plan::{plan_source, BuildArgs, PlanOptions, Platform};
use distill_sandbox::NetworkMode;
use distill_solver::{Cancel, Mode, Progress};
use distill_store::Store;

use crate::global::Global;

#[derive(Args)]
pub struct BuildArgsFlags {
    /// The Dockerfile, `-` for standard input [default: CONTEXT/Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,

    /// Name the image (repeatable): name[:tag]
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,

    /// The stage to build [default: the last stage]
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,

    /// Set a build arg; a bare NAME takes its value from the environment (ignored if unset)
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    build_args: Vec<String>,

    /// The platform to build for [default: this machine's]; only the host's can run RUN
    #[arg(long, value_name = "PLATFORM", value_parser = parse_platform)]
    platform: Option<Platform>,

    /// Do not use the build cache
    #[arg(long)]
    no_cache: bool,

    /// How to show progress: auto, plain, tty, json or quiet
    #[arg(long, default_value = "auto", value_name = "MODE")]
    progress: String,

    /// Print only the image ID
    #[arg(short, long)]
    quiet: bool,

    /// Where the result goes: type=image|oci|docker|tar|local[,dest=PATH][,name=REF]
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    outputs: Vec<String>,

    /// Add a label to the image (repeatable): KEY=VALUE
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,

    /// Write the image ID to FILE
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,

    /// Write the build's result metadata (digests, names) to FILE as JSON
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,

    /// Network of RUN steps: default, none or host
    #[arg(long, default_value = "default", value_name = "MODE")]
    network: String,

    /// A secret for RUN --mount=type=secret: id=ID[,src=PATH|env=VAR]
    #[arg(long = "secret", value_name = "SPEC")]
    secrets: Vec<String>,

    /// The build context directory
    context: PathBuf,
}

fn parse_platform(text: &str) -> Result<Platform, String> {
    Platform::parse(text)
}

/// Blocks SIGINT and SIGTERM in every thread and turns them into a cancellation; must run
/// before any other thread starts.
fn watch_signals(cancel: Cancel) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        let mut received = 0;
        while let Ok(signal) = set.wait() {
            received += 1;
            if received == 1 {
                eprintln!("\n{signal}: cancelling the build (again to stop at once)");
                cancel.cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
}

fn parse_output(spec: &str, tags: &[Reference]) -> anyhow::Result<Output> {
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for field in spec.split(',') {
        let (key, value) = field.split_once('=').unwrap_or(("type", field));
        fields.insert(key.trim(), value.trim());
    }
    let kind = fields.get("type").copied().unwrap_or("image");
    let dest = fields.get("dest").map(PathBuf::from);
    let mut names = tags.to_vec();
    if let Some(name) = fields.get("name") {
        for name in name.split(',') {
            names.push(
                Reference::parse_normalized(name)
                    .with_context(|| format!("-o name={name}: not an image name"))?,
            );
        }
    }
    let need_dest = |kind: &str| {
        dest.clone()
            .with_context(|| format!("-o type={kind} needs dest=PATH"))
    };
    Ok(match kind {
        "image" => Output::Image { names },
        "oci" => Output::Oci {
            dest: need_dest(kind)?,
            names,
        },
        "docker" => Output::Docker {
            dest: need_dest(kind)?,
            names,
        },
        "tar" => Output::Tar {
            dest: need_dest(kind)?,
        },
        "local" => Output::Local {
            dest: need_dest(kind)?,
        },
        "registry" => bail!("-o type=registry: pushing to a registry is not supported yet"),
        other => bail!("-o type={other}: expected image, oci, docker, tar or local"),
    })
}

fn read_secrets(specs: &[String]) -> anyhow::Result<HashMap<String, Vec<u8>>> {
    let mut secrets = HashMap::new();
    for spec in specs {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", value)) => id = Some(value.to_string()),
                Some(("src" | "source", value)) => src = Some(value.to_string()),
                Some(("env", value)) => env = Some(value.to_string()),
                Some(("type", _)) => {}
                _ => bail!("--secret {spec}: expected id=ID[,src=PATH|env=VAR]"),
            }
        }
        let id = id
            .or_else(|| env.clone())
            .with_context(|| format!("--secret {spec}: id=ID is missing"))?;
        let value = match (src, env) {
            (Some(path), _) => std::fs::read(&path)
                .with_context(|| format!("--secret {spec}: cannot read {path}"))?,
            (None, Some(var)) => std::env::var(&var)
                .with_context(|| format!("--secret {spec}: ${var} is not set"))?
                .into_bytes(),
            (None, None) => match std::env::var(&id) {
                Ok(value) => value.into_bytes(),
                Err(_) => bail!("--secret {spec}: give src=PATH or env=VAR"),
            },
        };
        secrets.insert(id, value);
    }
    Ok(secrets)
}

pub fn run(args: BuildArgsFlags, global: &Global) -> anyhow::Result<ExitCode> {
    let cancel = Cancel::new();
    watch_signals(cancel.clone());
    if !args.context.is_dir() {
        bail!(
            "the build context {} is not a directory",
            args.context.display()
        );
    }
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| args.context.join("Dockerfile"));
    let bytes = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the Dockerfile from standard input")?;
        bytes
    } else {
        std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let source = Source::from_bytes(file.display().to_string(), bytes);
    let build_args = BuildArgs::from_specs(&args.build_args, |name| std::env::var(name).ok())
        .map_err(anyhow::Error::msg)?;
    let epoch =
        match build_args
            .get("SOURCE_DATE_EPOCH")
            .map(str::to_string)
            .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
            .filter(|v| !v.is_empty())
        {
            Some(text) => Some(text.parse::<i64>().with_context(|| {
                format!("SOURCE_DATE_EPOCH={text}: expected seconds since 1970")
            })?),
            None => None,
        };
    let options = PlanOptions {
        target: args.target.clone(),
        build_args,
        target_platform: args.platform.clone(),
        ..PlanOptions::default()
    };
    let plan = plan_source(&source, &options).map_err(|d| anyhow::anyhow!("{d}"))?;

    let mut tags = Vec::new();
    for tag in &args.tags {
        tags.push(
            Reference::parse_normalized(tag)
                .with_context(|| format!("-t {tag}: not a valid image name"))?,
        );
    }
    let mut outputs = Vec::new();
    for spec in &args.outputs {
        outputs.push(parse_output(spec, &tags)?);
    }
    if outputs.is_empty()
        || !tags.is_empty() && !outputs.iter().any(|o| matches!(o, Output::Image { .. }))
    {
        outputs.insert(
            0,
            Output::Image {
                names: tags.clone(),
            },
        );
    }
    let labels = args
        .labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    let network = match args.network.as_str() {
        "default" | "host" => NetworkMode::Host,
        "none" => NetworkMode::None,
        other => bail!("--network {other}: expected default, none or host"),
    };
    let ignore = match find_ignore_file(&args.context, &file) {
        Some(path) => {
            let ignore_file = IgnoreFile::read(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
            Matcher::from_ignore_file(&ignore_file).map_err(|e| anyhow::anyhow!("{e}"))?
        }
        None => Matcher::new(std::iter::empty::<&str>()).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let mode = if args.quiet {
        Mode::Quiet
    } else {
        Mode::parse(&args.progress, std::io::stderr().is_terminal()).with_context(|| {
            format!(
                "--progress {}: expected auto, plain, tty, json or quiet",
                args.progress
            )
        })?
    };
    let progress = Progress::new(mode, Box::new(std::io::stderr()));
    for warning in &plan.warnings {
        progress.note(format!("warning: {warning}"));
    }
    let store = Store::open(&global.root)
        .with_context(|| format!("cannot open the store at {}", global.root.display()))?;
    let _lease = store.lease().context("cannot lock the store")?;
    let build_options = BuildOptions {
        store: store.clone(),
        context_dir: args.context.clone(),
        ignore,
        no_cache: args.no_cache,
        network,
        labels,
        source_date_epoch: epoch,
        secrets: read_secrets(&args.secrets)?,
        progress: progress.clone(),
        cancel: cancel.clone(),
    };
    let image = match distill_executor::build(&plan, &build_options) {
        Ok(image) => image,
        Err(BuildError::Cancelled) => {
            eprintln!("error: the build was cancelled; nothing was tagged");
            return Ok(ExitCode::from(130));
        }
        Err(error) => return Err(anyhow::anyhow!("{error}")),
    };
    for output in &outputs {
        if cancel.is_cancelled() {
            eprintln!("error: the build was cancelled; nothing was tagged");
            return Ok(ExitCode::from(130));
        }
        image
            .export(&store, output, epoch)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        match output {
            Output::Image { names } => {
                progress.note(format!("writing image {}", image.id()));
                for name in names {
                    progress.note(format!("naming to {}", name));
                }
            }
            Output::Oci { dest, .. }
            | Output::Docker { dest, .. }
            | Output::Tar { dest }
            | Output::Local { dest } => progress.note(format!("exported to {}", dest.display())),
        }
    }
    if let Some(path) = &args.iidfile {
        write_file(path, image.id().to_string().as_bytes())?;
    }
    if let Some(path) = &args.metadata_file {
        let mut names: Vec<String> = Vec::new();
        for output in &outputs {
            if let Output::Image { names: list }
            | Output::Oci { names: list, .. }
            | Output::Docker { names: list, .. } = output
            {
                for name in list {
                    let name = name.to_string();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        let metadata = serde_json::json!({
            "containerimage.digest": image.manifest.digest.to_string(),
            "containerimage.config.digest": image.id().to_string(),
            "containerimage.descriptor": {
                "mediaType": image.manifest.media_type,
                "digest": image.manifest.digest.to_string(),
                "size": image.manifest.size,
            },
            "image.name": names.join(","),
        });
        let text = serde_json::to_vec_pretty(&metadata).context("writing metadata")?;
        write_file(path, &text)?;
    }
    println!("{}", image.id());
    Ok(ExitCode::SUCCESS)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
