//! A small driver for the sandbox, for tests and for trying it by hand; distill itself wires
//! the sandbox into `distill build` and `distill run`.
//!
//! ```text
//! distill-sandbox [--unshare] COMMAND ...   (--unshare: whole program in a user namespace)
//! distill-sandbox probe SCRATCH_DIR
//! distill-sandbox run (--rootfs DIR | [--lower DIR]... --upper DIR --work DIR
//!                      | --snapshot DIR [--parent DIR]... [--snapshotter detect|overlay|copy])
//!     [--network host|none] [--hostname NAME] [--user UID[:GID]] [--cwd DIR] [--env K=V]...
//!     [--id-map detect|single] [--no-system-mounts] -- COMMAND [ARG]...
//! ```
//!
//! `run` streams the command's output and exits with its exit code (128 + signal if killed);
//! setup errors exit 125. With `--snapshot`, the step runs on a view prepared in DIR on the
//! parents (bottom first) and is committed afterwards: the diff is `DIR/upper`. Like any program embedding the sandbox, `main` first gives the
//! process to the init when it is one.

use std::path::PathBuf;
use std::process::ExitCode;

use distill_sandbox::{
    IdMapping, NetworkMode, Rootfs, Sandbox, SandboxSpec, Snapshotter, SnapshotterKind, Stdio,
    SystemMounts,
};

fn main() -> ExitCode {
    distill_sandbox::init_if_requested();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|arg| arg == "--unshare") {
        args.remove(0);
        if let Err(error) = distill_sandbox::enter_user_namespace() {
            eprintln!("distill-sandbox: {error}");
            return ExitCode::from(125);
        }
    }
    match dispatch(&args) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("distill-sandbox: {message}");
            ExitCode::from(125)
        }
    }
}

fn dispatch(args: &[String]) -> Result<u8, String> {
    match args.first().map(String::as_str) {
        Some("probe") => probe(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => Err(
            "usage: distill-sandbox probe SCRATCH_DIR | run [OPTIONS] -- COMMAND [ARG]..."
                .to_owned(),
        ),
    }
}

fn probe(args: &[String]) -> Result<u8, String> {
    let [scratch] = args else {
        return Err("usage: distill-sandbox probe SCRATCH_DIR".to_owned());
    };
    let sandbox = sandbox()?;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("kernel: {}", release.trim());
    println!("id mapping: {}", sandbox.ids().describe());
    for helper in ["newuidmap", "newgidmap"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(helper))
            .find(|path| path.is_file());
        match found {
            Some(path) => println!("{helper}: {}", path.display()),
            None => println!("{helper}: absent"),
        }
    }
    let max_user_namespaces =
        std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    println!("user.max_user_namespaces: {}", max_user_namespaces.trim());
    match sandbox
        .probe_overlay(&PathBuf::from(scratch))
        .map_err(|error| error.to_string())?
    {
        None => println!("overlayfs: works ({})", sandbox.overlay_opaque_xattr()),
        Some(reason) => println!("overlayfs: unavailable: {reason}"),
    }
    Ok(0)
}

fn sandbox() -> Result<Sandbox, String> {
    Sandbox::new().map_err(|error| error.to_string())
}

fn run(args: &[String]) -> Result<u8, String> {
    let mut rootfs_dir = None;
    let mut lower = Vec::new();
    let mut snapshot = None;
    let mut parents = Vec::new();
    let mut snapshotter_kind = None;
    let mut upper = None;
    let mut work = None;
    let mut network = NetworkMode::Host;
    let mut hostname = None;
    let mut ids = (0, 0);
    let mut cwd = PathBuf::from("/");
    let mut env = Vec::new();
    let mut single = false;
    let mut system_mounts = SystemMounts::default();
    let mut rest = args.iter();
    let mut command = Vec::new();
    while let Some(arg) = rest.next() {
        let mut value = || {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--rootfs" => rootfs_dir = Some(PathBuf::from(value()?)),
            "--lower" => lower.push(PathBuf::from(value()?)),
            "--upper" => upper = Some(PathBuf::from(value()?)),
            "--snapshot" => snapshot = Some(PathBuf::from(value()?)),
            "--parent" => parents.push(PathBuf::from(value()?)),
            "--snapshotter" => {
                snapshotter_kind = match value()?.as_str() {
                    "detect" => None,
                    "overlay" => Some(SnapshotterKind::Overlay),
                    "copy" => Some(SnapshotterKind::Copy),
                    other => {
                        return Err(format!(
                            "--snapshotter must be detect, overlay or copy, not {other:?}"
                        ))
                    }
                }
            }
            "--work" => work = Some(PathBuf::from(value()?)),
            "--network" => {
                network = match value()?.as_str() {
                    "host" => NetworkMode::Host,
                    "none" => NetworkMode::None,
                    other => return Err(format!("--network must be host or none, not {other:?}")),
                }
            }
            "--hostname" => hostname = Some(value()?),
            "--user" => ids = parse_user(&value()?)?,
            "--cwd" => cwd = PathBuf::from(value()?),
            "--env" => env.push(value()?),
            "--id-map" => {
                single = match value()?.as_str() {
                    "detect" => false,
                    "single" => true,
                    other => {
                        return Err(format!("--id-map must be detect or single, not {other:?}"))
                    }
                }
            }
            "--no-system-mounts" => system_mounts = SystemMounts::none(),
            "--" => {
                command = rest.by_ref().cloned().collect();
                break;
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let mut sandbox = sandbox()?;
    if single {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        sandbox = sandbox.id_mapping(IdMapping::Single { uid, gid });
    }
    let view = match &snapshot {
        Some(dir) => {
            let snapshotter = match snapshotter_kind {
                Some(kind) => Snapshotter::new(&sandbox, kind),
                None => {
                    let scratch = dir.with_extension("probe");
                    Snapshotter::detect(&sandbox, &scratch)
                        .map_err(|error| error.to_string())?
                        .0
                }
            };
            Some(
                snapshotter
                    .prepare(&parents, dir)
                    .map_err(|error| error.to_string())?,
            )
        }
        None => None,
    };
    let rootfs = match (view.as_ref(), rootfs_dir, upper, work) {
        (Some(view), None, None, None) if lower.is_empty() => view.rootfs(),
        (None, Some(dir), None, None) if lower.is_empty() => Rootfs::Directory(dir),
        (None, None, Some(upper), Some(work)) => Rootfs::Overlay { lower, upper, work },
        _ => {
            return Err(
                "give one of --rootfs, --upper and --work (with --lower), or --snapshot".to_owned(),
            )
        }
    };
    let mut spec = SandboxSpec::new(rootfs, command);
    spec.network = network;
    if let Some(hostname) = hostname {
        spec.hostname = hostname;
    }
    (spec.uid, spec.gid) = ids;
    spec.cwd = cwd;
    spec.env = env;
    spec.system_mounts = system_mounts;
    let running = sandbox
        .spawn(&spec, Stdio::Inherit)
        .map_err(|error| error.to_string())?;
    let status = running
        .wait(&mut |_: distill_sandbox::Stream, _: &[u8]| {})
        .map_err(|error| error.to_string())?;
    if let Some(view) = view {
        view.commit().map_err(|error| error.to_string())?;
    }
    Ok(u8::try_from(status.code()).unwrap_or(255))
}

fn parse_user(text: &str) -> Result<(u32, u32), String> {
    let number = |part: &str| {
        part.parse::<u32>()
            .map_err(|_| format!("--user wants UID[:GID] numbers, got {text:?}"))
    };
    match text.split_once(':') {
        Some((uid, gid)) => Ok((number(uid)?, number(gid)?)),
        None => Ok((number(text)?, number(text)?)),
    }
}
