//! `distill run`: runs an image of the store in the foreground, in the sandbox RUN steps use,
//! to try what a build made. The flags and what they mean follow `docker run`: the image's
//! Entrypoint and Cmd, `--entrypoint` replacing the entrypoint and clearing the image's Cmd,
//! `-e` merged over the image's Env, `-u` over its User (names from the image's own
//! `/etc/passwd` and `/etc/group`), `-w` over its WorkingDir, the hostname the container's
//! short ID.
//!
//! The container's writable layer is a fresh directory in the store's `ingest/` (so `distill
//! prune` reclaims it after a crash) and is always thrown away when the command ends: there
//! are no stopped containers to keep, so `--rm` is accepted and changes nothing.
//!
//! The exit status is the command's, or 128 + the signal that killed it; as Docker's, 125
//! when distill itself failed (no such image, the sandbox could not start), 126 when the
//! command cannot be invoked and 127 when it is not found. SIGINT, SIGTERM and SIGHUP sent to
//! distill are forwarded to the command; a terminal's Ctrl-C reaches it directly (it stays in
//! distill's process group) and is not sent twice. This never changes an image or a snapshot
//! of the store.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use distill_executor::rootview::RootView;
use distill_executor::{snapshots, users};
use distill_image::RuntimeConfig;
use distill_sandbox::{
    ExitStatus, Killer, NetworkMode, Sandbox, SandboxSpec, Snapshotter, Stdio, Stream, DEFAULT_PATH,
};
use distill_store::Store;

use crate::global::Global;

/// Docker's exit code when the container could not be run for the engine's own reasons.
const EXIT_DISTILL_FAILED: u8 = 125;
/// The command was found but could not be executed.
const EXIT_CANNOT_INVOKE: u8 = 126;
/// The command was not found.
const EXIT_NOT_FOUND: u8 = 127;

#[derive(Args)]
pub struct RunArgs {
    /// Remove the container when it exits (always done: containers are not kept)
    #[arg(long)]
    rm: bool,

    /// Set an environment variable (repeatable); a bare KEY takes distill's own value
    /// (and unsets the variable when distill has none)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,

    /// Run as this user (name or id, group optional) [default: the image's USER]
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    user: Option<String>,

    /// Working directory inside the container (absolute) [default: the image's WORKDIR]
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,

    /// Replace the image's entrypoint (and its CMD, unless COMMAND is given); "" clears it
    #[arg(long, value_name = "COMMAND")]
    entrypoint: Option<String>,

    /// Network: host (the machine's) or none (loopback only)
    #[arg(long, default_value = "host", value_name = "MODE")]
    network: String,

    /// Mount the container's root file system read-only
    #[arg(long)]
    read_only: bool,

    /// The container's hostname [default: its short ID]
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,

    /// The image, then the command and its arguments (everything after the image goes to
    /// the command, flags included)
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND [ARG...]]"
    )]
    words: Vec<String>,
}

/// What went wrong, with the exit code Docker uses for it.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure {
            code: EXIT_DISTILL_FAILED,
            error,
        }
    }
}

pub fn run(args: RunArgs, global: &Global) -> anyhow::Result<ExitCode> {
    match run_container(args, global) {
        Ok(status) => Ok(ExitCode::from(exit_code(status))),
        Err(Failure { code, error }) => {
            if global.debug {
                eprintln!("error: {error:?}");
            } else {
                eprintln!("error: {error:#}");
            }
            Ok(ExitCode::from(code))
        }
    }
}

/// The command's status as a process exit code (a shell's 128 + signal when it was killed).
fn exit_code(status: ExitStatus) -> u8 {
    u8::try_from(status.code()).unwrap_or(EXIT_DISTILL_FAILED)
}

fn run_container(args: RunArgs, global: &Global) -> Result<ExitStatus, Failure> {
    let (reference, command) = args
        .words
        .split_first()
        .context("an image to run is required")?;
    let network = match args.network.as_str() {
        "host" => NetworkMode::Host,
        "none" => NetworkMode::None,
        other => {
            return Err(anyhow::anyhow!("--network {other}: expected host or none").into());
        }
    };
    let store = Store::open(&global.root)
        .with_context(|| format!("cannot open the store at {}", global.root.display()))?;
    // Keeps garbage collection from removing the snapshots under the running container.
    let _lease = store.lease().context("cannot lock the store")?;
    let record = store.find(reference).map_err(|error| {
        anyhow::anyhow!(
            "unable to find image {reference:?} in the store at {}: {error}\n\
             hint: distill does not pull from registries yet: build it with `distill build -t \
             {reference}`, or bring it with `distill load` or `distill import`",
            global.root.display()
        )
    })?;
    let image = store
        .image(&record)
        .with_context(|| format!("cannot read image {reference}"))?;
    let lowers = snapshots::image_snapshots(&store, &image)
        .map_err(|error| anyhow::anyhow!("{error}"))
        .with_context(|| format!("cannot unpack the layers of {reference}"))?;
    let view = RootView::new(lowers.clone());
    let config = image.config.config.clone().unwrap_or_default();

    let argv = command_line(&config, args.entrypoint.as_deref(), command);
    if argv.is_empty() {
        return Err(anyhow::anyhow!(
            "no command specified: {reference} has no ENTRYPOINT or CMD\n\
             hint: give one after the image name: distill run {reference} COMMAND [ARG...]"
        )
        .into());
    }
    let user = args
        .user
        .clone()
        .or_else(|| config.user.clone())
        .unwrap_or_default();
    let (uid, gid, additional_gids, home) = resolve_user(&view, &user)?;
    let workdir = match &args.workdir {
        Some(dir) if !dir.starts_with('/') => {
            return Err(anyhow::anyhow!(
                "-w {dir}: the working directory must be an absolute path"
            )
            .into());
        }
        Some(dir) => dir.clone(),
        None => config
            .working_dir
            .clone()
            .filter(|dir| !dir.is_empty())
            .unwrap_or_else(|| "/".to_string()),
    };
    let id = container_id()?;
    let hostname = args
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_string());
    let env = environment(
        config.env.as_deref().unwrap_or_default(),
        &args.env,
        &hostname,
        &home,
        |key| std::env::var(key).ok(),
    );

    let sandbox = Sandbox::new().context("cannot start the sandbox")?;
    let ingest = store.root().join("ingest");
    let probe = ingest.join(format!("run-probe-{id}"));
    let (snapshotter, _why_not_overlay) = Snapshotter::detect(&sandbox, &probe)
        .context("cannot find out how to mount the container's root")?;
    let _ = distill_sandbox::remove_tree(&probe);
    let container_dir = ingest.join(format!("run-{id}"));
    let prepared = snapshotter
        .prepare(&lowers, &container_dir)
        .context("cannot prepare the container's root file system")?;
    let mut spec = SandboxSpec::new(prepared.rootfs(), argv);
    spec.env = env;
    spec.cwd = PathBuf::from(&workdir);
    spec.uid = uid;
    spec.gid = gid;
    spec.additional_gids = additional_gids;
    spec.hostname = hostname;
    spec.network = network;
    spec.read_only_root = args.read_only;

    // Blocked before the sandbox starts any thread or process, so none of them takes these
    // signals: the forwarding thread alone receives them.
    let signals = forwarded_signals();
    let blocked = signals.thread_block().is_ok();
    let outcome = sandbox.spawn(&spec, Stdio::Inherit).and_then(|running| {
        if blocked {
            forward_signals(signals, running.killer());
        }
        // With inherited streams the sink never receives anything.
        running.wait(&mut |_: Stream, _: &[u8]| {})
    });
    let removed = prepared.remove();
    let status = match outcome {
        Ok(status) => status,
        Err(distill_sandbox::Error::Exec(message)) => {
            return Err(Failure {
                code: exec_failure_code(&message),
                error: anyhow::anyhow!("{message}"),
            });
        }
        Err(error) => {
            return Err(anyhow::Error::new(error)
                .context("the container could not run")
                .into());
        }
    };
    // The command has run: its status is what the caller asked for, whatever happens here.
    if let Err(error) = removed {
        eprintln!(
            "warning: cannot remove the container's directory {} (distill prune will): {error}",
            container_dir.display()
        );
    }
    Ok(status)
}

/// The command line `docker run` would start: the entrypoint (`--entrypoint` replaces the
/// image's and then the image's CMD is dropped) followed by the command given after the image
/// or else the image's CMD.
fn command_line(
    config: &RuntimeConfig,
    entrypoint: Option<&str>,
    command: &[String],
) -> Vec<String> {
    let (entrypoint, default_cmd) = match entrypoint {
        Some("") => (Vec::new(), Vec::new()),
        Some(program) => (vec![program.to_string()], Vec::new()),
        None => (
            config.entrypoint.clone().unwrap_or_default(),
            config.cmd.clone().unwrap_or_default(),
        ),
    };
    let cmd = if command.is_empty() {
        default_cmd
    } else {
        command.to_vec()
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// The container's environment: the image's, then each `-e` (replacing a variable of the
/// same name where it stands; a bare `KEY` takes `lookup(KEY)` or, without a value, unsets
/// it), then what Docker always provides when missing: `PATH`, `HOSTNAME` and `HOME`.
fn environment(
    image_env: &[String],
    flags: &[String],
    hostname: &str,
    home: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let key_of = |entry: &str| {
        entry
            .split_once('=')
            .map_or(entry, |(key, _)| key)
            .to_owned()
    };
    let mut env: Vec<String> = image_env
        .iter()
        .filter(|entry| entry.contains('='))
        .cloned()
        .collect();
    for flag in flags {
        let key = key_of(flag);
        let value = if flag.contains('=') {
            Some(flag.clone())
        } else {
            lookup(&key).map(|value| format!("{key}={value}"))
        };
        let position = env.iter().position(|entry| key_of(entry) == key);
        match (position, value) {
            (Some(index), Some(entry)) => env[index] = entry,
            (Some(index), None) => {
                env.remove(index);
            }
            (None, Some(entry)) => env.push(entry),
            (None, None) => {}
        }
    }
    let has = |env: &[String], key: &str| env.iter().any(|entry| key_of(entry) == key);
    if !has(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        env.insert(1, format!("HOSTNAME={hostname}"));
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

/// Ids, supplementary groups and home directory of `user` (`name|uid[:group|gid]`, empty for
/// root) in the image, resolved as a RUN step resolves them.
fn resolve_user(view: &RootView, user: &str) -> Result<(u32, u32, Vec<u32>, String), Failure> {
    let home = users::home(view, user);
    if user.is_empty() {
        return Ok((0, 0, Vec::new(), home));
    }
    let ids = users::resolve(view, user, false).map_err(|message| Failure {
        code: EXIT_DISTILL_FAILED,
        error: anyhow::anyhow!("user {user:?}: {message}"),
    })?;
    let additional = users::supplementary_groups(view, user);
    Ok((ids.uid, ids.gid, additional, home))
}

/// A random 64-hex-digit container ID, as Docker makes them.
fn container_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a container ID")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// 127 when the command was not found (no such file, not in `PATH`), 126 when it was found
/// but could not be executed, as a shell and Docker say it.
fn exec_failure_code(message: &str) -> u8 {
    let not_found = nix::errno::Errno::ENOENT.desc();
    if message.contains("executable file not found") || message.contains(not_found) {
        EXIT_NOT_FOUND
    } else if message.starts_with("exec ") {
        EXIT_CANNOT_INVOKE
    } else {
        EXIT_DISTILL_FAILED
    }
}

fn forwarded_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set
}

/// Forwards each signal of `set` that someone sent distill to the command. A signal the
/// kernel generated (a terminal's Ctrl-C, a hang-up) already reached the command, which shares
/// distill's process group, and is not sent again.
fn forward_signals(set: nix::sys::signal::SigSet, killer: Killer) {
    std::thread::spawn(move || loop {
        // SAFETY: an all-zero siginfo_t is a valid value to be overwritten.
        let mut info: nix::libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is an initialised sigset and `info` a valid, writable siginfo_t.
        let number = unsafe { nix::libc::sigwaitinfo(set.as_ref(), &mut info) };
        if number < 0 {
            if nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                continue;
            }
            return;
        }
        if info.si_code == nix::libc::SI_KERNEL {
            continue;
        }
        if let Some(signal) = distill_sandbox::Signal::from_named_raw(number) {
            killer.forward(signal);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entrypoint: &[&str], cmd: &[&str]) -> RuntimeConfig {
        let list = |words: &[&str]| {
            (!words.is_empty()).then(|| words.iter().map(|w| w.to_string()).collect())
        };
        RuntimeConfig {
            entrypoint: list(entrypoint),
            cmd: list(cmd),
            ..RuntimeConfig::default()
        }
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn command_line_follows_docker_run() {
        let image = config(&["/entry", "-x"], &["default"]);
        assert_eq!(command_line(&image, None, &[]), ["/entry", "-x", "default"]);
        assert_eq!(
            command_line(&image, None, &strings(&["mine", "--flag"])),
            ["/entry", "-x", "mine", "--flag"]
        );
        // --entrypoint drops the image's CMD, keeps the given command.
        assert_eq!(command_line(&image, Some("/other"), &[]), ["/other"]);
        assert_eq!(
            command_line(&image, Some("/other"), &strings(&["a"])),
            ["/other", "a"]
        );
        // --entrypoint "" clears the entrypoint.
        assert!(command_line(&image, Some(""), &[]).is_empty());
        assert_eq!(command_line(&image, Some(""), &strings(&["sh"])), ["sh"]);
        let cmd_only = config(&[], &["sh", "-c", "echo"]);
        assert_eq!(command_line(&cmd_only, None, &[]), ["sh", "-c", "echo"]);
        assert!(command_line(&RuntimeConfig::default(), None, &[]).is_empty());
    }

    #[test]
    fn environment_merges_flags_over_the_image() {
        let image = strings(&["PATH=/bin", "A=1", "B=2"]);
        let flags = strings(&["A=x", "C=3", "B", "FROM_HOST", "MISSING"]);
        let lookup = |key: &str| (key == "FROM_HOST").then(|| "h".to_string());
        let env = environment(&image, &flags, "abc", "/root", lookup);
        assert_eq!(
            env,
            [
                "PATH=/bin",
                "HOSTNAME=abc",
                "A=x",
                "C=3",
                "FROM_HOST=h",
                "HOME=/root"
            ]
        );
    }

    #[test]
    fn environment_keeps_the_images_path_home_and_hostname() {
        let image = strings(&["HOME=/h", "HOSTNAME=set", "PATH=/p"]);
        let env = environment(&image, &[], "abc", "/root", |_| None);
        assert_eq!(env, ["HOME=/h", "HOSTNAME=set", "PATH=/p"]);
        let env = environment(&[], &[], "abc", "/", |_| None);
        assert_eq!(
            env,
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=abc".into(),
                "HOME=/".into()
            ]
        );
    }

    #[test]
    fn exec_failures_map_to_docker_codes() {
        assert_eq!(
            exec_failure_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            exec_failure_code("exec /nope: No such file or directory"),
            127
        );
        assert_eq!(
            exec_failure_code("exec /etc/passwd: Permission denied"),
            126
        );
        assert_eq!(
            exec_failure_code("setgroups [1]: Operation not permitted"),
            125
        );
    }

    #[test]
    fn a_killed_command_exits_with_128_plus_the_signal() {
        assert_eq!(exit_code(ExitStatus::Exited(3)), 3);
        assert_eq!(exit_code(ExitStatus::Signaled(15)), 143);
    }
}
