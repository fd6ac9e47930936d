//! The `distill` command. This crate only parses flags, calls the library crates and prints:
//! every behaviour lives in a library crate under `crates/`.

mod cmd;
mod global;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::global::Global;

/// distill builds small container images from the Dockerfiles you already have, without a
/// daemon and without root.
#[derive(Parser)]
#[command(name = "distill", version, propagate_version = true)]
struct Cli {
    /// Where the image store lives [default: /var/lib/distill as root, else $XDG_DATA_HOME/distill]
    #[arg(long, env = "DISTILL_ROOT", global = true, value_name = "DIR")]
    root: Option<std::path::PathBuf>,

    /// Print debugging information on standard error
    #[arg(long, global = true)]
    debug: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile (like `docker buildx build`)
    Build(cmd::build::BuildArgsFlags),

    /// Run an image in the foreground, in the sandbox RUN steps use (like `docker run`)
    Run(cmd::run::RunArgs),

    /// Show the build plan of a Dockerfile: the stages a build would run, in order
    Plan(cmd::plan::PlanArgs),

    /// Save images to a docker or OCI archive (like `docker save`)
    Save(cmd::archive::SaveArgs),

    /// Load images from a docker or OCI archive (like `docker load`)
    Load(cmd::archive::LoadArgs),

    /// Make a one-layer image of a root filesystem tarball (like `docker import`)
    Import(cmd::archive::ImportArgs),

    #[command(flatten)]
    Store(cmd::store::StoreCommand),

    /// Tooling hooks for comparing distill with other implementations
    #[command(hide = true, subcommand)]
    Debug(cmd::debug::DebugCommand),
}

impl Command {
    /// Whether the command reads or writes the store (and so its snapshots, whose files
    /// belong to the ids of the images' users).
    fn uses_store(&self) -> bool {
        !matches!(self, Command::Plan(_) | Command::Debug(_))
    }
}

/// Rootless: moves the whole program into one user namespace with the user's subordinate
/// ids (see `distill_sandbox::enter_user_namespace`), so snapshots and RUN diffs hold the
/// files' in-container owners (0:0, 1000:1000...) and the store's files stay removable by the
/// program. Without subordinate ranges nothing changes and each RUN gets the single-id
/// mapping (only root exists inside). Must run before any thread is started.
fn enter_user_namespace(global: &Global) {
    let reexecuted = std::env::var_os(distill_sandbox::USERNS_ENV).is_some();
    if !reexecuted {
        // The re-executed program is root in its namespace: it must keep the user's store,
        // not pick root's default.
        std::env::set_var("DISTILL_ROOT", &global.root);
    }
    match distill_sandbox::enter_user_namespace() {
        Ok(_) => {}
        // Half inside a namespace without id maps nothing would work: stop.
        Err(error) if reexecuted => {
            eprintln!("error: entering the rootless user namespace: {error}");
            std::process::exit(1);
        }
        Err(error) => {
            if global.debug {
                eprintln!("debug: staying outside a user namespace: {error}");
            }
        }
    }
}

fn main() -> ExitCode {
    // The sandbox's init is this binary re-executed: it must take over before anything else.
    distill_sandbox::init_if_requested();
    let cli = Cli::parse();
    let global = Global::new(cli.root, cli.debug);
    if cli.command.uses_store() {
        enter_user_namespace(&global);
    }
    let result = match cli.command {
        Command::Build(args) => cmd::build::run(args, &global),
        Command::Run(args) => cmd::run::run(args, &global),
        Command::Plan(args) => cmd::plan::run(args, &global),
        Command::Save(args) => cmd::archive::save(args, &global),
        Command::Load(args) => cmd::archive::load(args, &global),
        Command::Import(args) => cmd::archive::import(args, &global),
        Command::Store(command) => cmd::store::run(command, &global),
        Command::Debug(command) => cmd::debug::run(command, &global),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if global.debug {
                // The whole chain, one cause per line, as anyhow's Debug prints it.
                eprintln!("error: {err:?}");
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}
