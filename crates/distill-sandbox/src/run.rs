//! The caller's side: start the init, answer it, stream the command's output, clean up.
//!
//! Safe to use from a threaded program (a build engine's worker pool): the only process it
//! creates is the re-executed init, through `std::process::Command`, whose pre-exec hook does
//! nothing but move a descriptor into place. It never forks by itself.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::event::{PollFd, PollFlags};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::cleanup;
use crate::error::{Error, Result};
use crate::idmap::IdMapping;
use crate::init::INIT_ENV;
use crate::proto::{self, MapAnswer, MountStub, Report, Request, SavedTimes};
use crate::spec::SandboxSpec;

/// The descriptor number the init finds its socket at.
pub(crate) const INIT_SOCKET_FD: i32 = 3;

/// Makes `socket` descriptor [`INIT_SOCKET_FD`] (3) of the process `command` starts.
pub(crate) fn pass_socket(command: &mut Command, socket: &OwnedFd) {
    let fd = socket.as_raw_fd();
    // SAFETY: the hook runs between fork and exec and only calls dup2/fcntl, which are
    // async-signal-safe; it touches no lock and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if fd == INIT_SOCKET_FD {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, INIT_SOCKET_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal (this number) killed it.
    Signaled(i32),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// The exit code, or 128 + the signal number as a shell reports it.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => 128 + signal,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exit code: {code}"),
            ExitStatus::Signaled(signal) => {
                let name = nix::sys::signal::Signal::try_from(*signal)
                    .map(|signal| signal.as_str())
                    .unwrap_or("unknown signal");
                write!(f, "killed by signal {signal} ({name})")
            }
        }
    }
}

/// Which stream a chunk of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives the command's output as it comes, in chunks of any size.
pub trait OutputSink {
    fn output(&mut self, stream: Stream, bytes: &[u8]);
}

impl<F: FnMut(Stream, &[u8])> OutputSink for F {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        self(stream, bytes)
    }
}

/// Keeps the last `limit` lines of output (both streams), for error messages.
#[derive(Debug)]
pub struct LastLines {
    limit: usize,
    lines: VecDeque<String>,
    partial: [Vec<u8>; 2],
}

impl LastLines {
    pub fn new(limit: usize) -> LastLines {
        LastLines {
            limit,
            lines: VecDeque::new(),
            partial: [Vec::new(), Vec::new()],
        }
    }

    fn push_line(&mut self, bytes: &[u8]) {
        if self.limit == 0 {
            return;
        }
        if self.lines.len() == self.limit {
            self.lines.pop_front();
        }
        self.lines
            .push_back(String::from_utf8_lossy(bytes).into_owned());
    }

    /// The kept lines, oldest first, including an unterminated last line of each stream.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.lines.iter().cloned().collect();
        for partial in &self.partial {
            if !partial.is_empty() {
                lines.push(String::from_utf8_lossy(partial).into_owned());
            }
        }
        let excess = lines.len().saturating_sub(self.limit);
        lines.drain(..excess);
        lines
    }
}

impl OutputSink for LastLines {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        let index = stream as usize;
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|&byte| byte == b'\n') {
            let mut line = std::mem::take(&mut self.partial[index]);
            line.extend_from_slice(&rest[..newline]);
            self.push_line(&line);
            rest = &rest[newline + 1..];
        }
        self.partial[index].extend_from_slice(rest);
        // A line without end must not grow without bound.
        if self.partial[index].len() > 64 * 1024 {
            let line = std::mem::take(&mut self.partial[index]);
            self.push_line(&line);
        }
    }
}

/// Where the command's standard streams go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stdio {
    /// stdin is `/dev/null`; stdout and stderr go to the [`OutputSink`] given to `wait`.
    #[default]
    Capture,
    /// All three are the caller's own (`distill run` in a terminal). The sandbox stays in
    /// the caller's process group, so the terminal's Ctrl-C reaches the command directly
    /// (the inits do not forward signals the kernel sent them, to avoid doubling them) and
    /// the caller too, which may also `cancel`.
    Inherit,
}

/// Starts sandboxes. Cheap to clone; one per process is enough.
#[derive(Clone, Debug)]
pub struct Sandbox {
    init_program: PathBuf,
    ids: IdMapping,
}

impl Sandbox {
    /// A sandbox whose init is the running executable (which must call
    /// [`crate::init_if_requested`] first thing in `main`), with the detected id mapping.
    pub fn new() -> Result<Sandbox> {
        // The running executable itself, even if its file was replaced or deleted since.
        let init_program = PathBuf::from("/proc/self/exe");
        if !init_program.exists() {
            return Err(Error::io(
                init_program,
                std::io::Error::other(
                    "/proc is not mounted: the sandbox cannot re-execute distill",
                ),
            ));
        }
        Ok(Sandbox::with_init_program(init_program))
    }

    /// A sandbox whose init is `program` (any binary calling `init_if_requested`).
    pub fn with_init_program(program: impl Into<PathBuf>) -> Sandbox {
        Sandbox {
            init_program: program.into(),
            ids: IdMapping::detect(),
        }
    }

    /// Replaces the detected id mapping.
    pub fn id_mapping(mut self, ids: IdMapping) -> Sandbox {
        self.ids = ids;
        self
    }

    pub fn ids(&self) -> &IdMapping {
        &self.ids
    }

    /// The xattr overlayfs marks opaque directories with under this mapping (and that a
    /// snapshot's lower directories must use): `trusted.overlay.opaque` as real root,
    /// `user.overlay.opaque` in a user namespace.
    pub fn overlay_opaque_xattr(&self) -> &'static str {
        if crate::mounts::needs_userxattr(&self.ids) {
            "user.overlay.opaque"
        } else {
            "trusted.overlay.opaque"
        }
    }

    /// Runs `spec` to the end, sending its output to `sink`.
    pub fn run(&self, spec: &SandboxSpec, sink: &mut dyn OutputSink) -> Result<ExitStatus> {
        self.spawn(spec, Stdio::Capture)?.wait(sink)
    }

    /// Starts `spec`; the command runs while the caller holds the returned handle.
    pub fn spawn(&self, spec: &SandboxSpec, stdio: Stdio) -> Result<RunningSandbox> {
        self.check(spec)?;
        let request = Request::Run {
            spec: Box::new(spec.clone()),
            ids: self.ids.clone(),
        };
        let mut running = self.start(stdio, &request)?;
        running.writable_dir = Some(spec.rootfs.writable_dir().to_owned());
        running.keep_directory_stubs = spec.keep_directory_stubs;
        Ok(running)
    }

    /// Finds out whether overlayfs can be mounted here, the way a run would mount it, using
    /// `scratch` (an empty or missing directory on the filesystem snapshots live on, removed
    /// afterwards). `Ok(None)`: it works; `Ok(Some(reason))`: it does not.
    pub fn probe_overlay(&self, scratch: &Path) -> Result<Option<String>> {
        let lower = scratch.join("lower");
        let upper = scratch.join("upper");
        let work = scratch.join("work");
        for dir in [&lower, &upper, &work] {
            std::fs::create_dir_all(dir).map_err(|error| Error::io(dir, error))?;
        }
        let probe_file = lower.join("probe");
        std::fs::write(&probe_file, "probe").map_err(|error| Error::io(&probe_file, error))?;
        let request = Request::ProbeOverlay {
            lower,
            upper: upper.clone(),
            work,
            ids: self.ids.clone(),
        };
        let outcome = self
            .start(Stdio::Capture, &request)
            .and_then(|running| running.wait_probe());
        let verdict = match outcome {
            Ok(None) => {
                // The deletion must have left an overlay whiteout (character device 0/0).
                match rustix::fs::lstat(upper.join("probe")) {
                    Ok(stat)
                        if rustix::fs::FileType::from_raw_mode(stat.st_mode)
                            == rustix::fs::FileType::CharacterDevice
                            && stat.st_rdev == 0 =>
                    {
                        None
                    }
                    _ => Some(
                        "deleting a lower file left no whiteout in the upper directory".to_owned(),
                    ),
                }
            }
            Ok(Some(reason)) => Some(reason),
            Err(error) => Some(error.to_string()),
        };
        cleanup::remove_tree(scratch)?;
        Ok(verdict)
    }

    fn check(&self, spec: &SandboxSpec) -> Result<()> {
        if spec.args.is_empty() {
            return Err(Error::Unsupported("no command to run".to_owned()));
        }
        if let Some(bad) = spec
            .args
            .iter()
            .chain(&spec.env)
            .find(|value| value.contains('\0'))
        {
            return Err(Error::Unsupported(format!(
                "{bad:?}: a command's arguments and environment cannot contain NUL bytes"
            )));
        }
        if spec.hostname.is_empty() || spec.hostname.len() > 64 {
            return Err(Error::Unsupported(format!(
                "hostname {:?} must be 1 to 64 bytes long",
                spec.hostname
            )));
        }
        if !spec.cwd.is_absolute() {
            return Err(Error::Unsupported(format!(
                "working directory {} must be absolute",
                spec.cwd.display()
            )));
        }
        let hint = "hint: give this user a range in /etc/subuid and /etc/subgid and install \
                    newuidmap/newgidmap (Debian package uidmap), or run as root";
        if !self.ids.maps_uid(spec.uid) {
            return Err(Error::Unsupported(format!(
                "uid {} does not exist in the sandbox ({})\n{hint}",
                spec.uid,
                self.ids.describe()
            )));
        }
        for gid in std::iter::once(&spec.gid).chain(&spec.additional_gids) {
            if !self.ids.maps_gid(*gid) {
                return Err(Error::Unsupported(format!(
                    "gid {gid} does not exist in the sandbox ({})\n{hint}",
                    self.ids.describe()
                )));
            }
        }
        if matches!(self.ids, IdMapping::Single { .. }) && !spec.additional_gids.is_empty() {
            return Err(Error::Unsupported(format!(
                "supplementary groups need setgroups, which the {} denies\n{hint}",
                self.ids.describe()
            )));
        }
        Ok(())
    }

    fn start(&self, stdio: Stdio, request: &Request) -> Result<RunningSandbox> {
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|errno| Error::Protocol(format!("socketpair: {errno}")))?;
        let mut command = Command::new(&self.init_program);
        command
            .env_clear()
            .env(INIT_ENV, INIT_SOCKET_FD.to_string());
        match stdio {
            Stdio::Capture => {
                // Out of the caller's process group: a terminal's Ctrl-C reaches the caller,
                // which decides (see `Killer`), not the sandbox directly.
                command
                    .process_group(0)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
            }
            Stdio::Inherit => {
                command
                    .stdin(std::process::Stdio::inherit())
                    .stdout(std::process::Stdio::inherit())
                    .stderr(std::process::Stdio::inherit());
            }
        }
        pass_socket(&mut command, &theirs);
        let child = command.spawn().map_err(|source| Error::Spawn {
            program: self.init_program.clone(),
            source,
        })?;
        drop(theirs);
        let pid = Pid::from_raw(child.id() as i32)
            .ok_or_else(|| Error::Protocol("the init has no pid".to_owned()))?;
        let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::empty())
            .map_err(|errno| Error::Protocol(format!("pidfd_open: {errno}")))?;
        let running = RunningSandbox {
            child: Some(child),
            socket: ours,
            killer: Killer {
                pidfd: Arc::new(pidfd),
                cancelled: Arc::new(AtomicBool::new(false)),
            },
            ids: self.ids.clone(),
            writable_dir: None,
            keep_directory_stubs: false,
        };
        proto::send(running.socket.as_fd(), request)
            .map_err(|error| Error::Protocol(format!("sending the request: {error}")))?;
        Ok(running)
    }
}

/// Stops a running sandbox from any thread: a build's cancellation, or the caller's Ctrl-C /
/// SIGTERM handler (a captured sandbox is in its own process group, so the terminal's
/// signals reach only the caller, which calls [`Killer::cancel`] and sees
/// [`Error::Cancelled`] from `wait` once everything is dead and cleaned up).
/// Signals go through a pidfd, so a finished and reaped init can never be confused with
/// another process.
#[derive(Clone, Debug)]
pub struct Killer {
    pidfd: Arc<OwnedFd>,
    cancelled: Arc<AtomicBool>,
}

impl Killer {
    /// Kills every process of the sandbox; `wait` then returns [`Error::Cancelled`].
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let _ = rustix::process::pidfd_send_signal(&*self.pidfd, Signal::KILL);
    }

    /// Forwards `signal` (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH) to
    /// the command, which may handle it; others are ignored by the init.
    pub fn forward(&self, signal: Signal) {
        let _ = rustix::process::pidfd_send_signal(&*self.pidfd, signal);
    }
}

/// A started sandbox. Dropping it without `wait` kills the sandbox.
#[derive(Debug)]
pub struct RunningSandbox {
    child: Option<Child>,
    socket: OwnedFd,
    killer: Killer,
    ids: IdMapping,
    writable_dir: Option<PathBuf>,
    /// `SandboxSpec::keep_directory_stubs` of the spec it runs.
    keep_directory_stubs: bool,
}

/// What the init said during a run.
#[derive(Default)]
struct Reports {
    stubs: Vec<MountStub>,
    parents: Vec<SavedTimes>,
    setup_failed: Option<String>,
    exec_failed: Option<String>,
    exited: Option<ExitStatus>,
    probed: Option<Option<String>>,
}

impl RunningSandbox {
    pub fn killer(&self) -> Killer {
        self.killer.clone()
    }

    /// Streams output to `sink` until the command ends, removes the mount points the init
    /// created in the root, and says how the command ended.
    pub fn wait(mut self, sink: &mut dyn OutputSink) -> Result<ExitStatus> {
        let outcome = self.pump(sink);
        if outcome.is_err() {
            // Talking to the init failed: do not wait on a sandbox nobody supervises.
            let _ = rustix::process::pidfd_send_signal(&*self.killer.pidfd, Signal::KILL);
        }
        let reap = self.reap();
        let cleaned = match &self.writable_dir {
            Some(dir) => match &outcome {
                Ok(reports) => cleanup::remove_stubs(
                    dir,
                    &reports.stubs,
                    &reports.parents,
                    self.keep_directory_stubs,
                ),
                Err(_) => Ok(()),
            },
            None => Ok(()),
        };
        let reports = outcome?;
        let init_status = reap?;
        if self.killer.cancelled.load(Ordering::SeqCst) {
            return Err(Error::Cancelled);
        }
        cleaned?;
        if let Some(message) = reports.setup_failed {
            return Err(Error::Setup(message));
        }
        if let Some(message) = reports.exec_failed {
            return Err(Error::Exec(message));
        }
        reports
            .exited
            .ok_or_else(|| Error::InitDied(init_status.to_string()))
    }

    fn wait_probe(mut self) -> Result<Option<String>> {
        let outcome = self.pump(&mut |_: Stream, _: &[u8]| {});
        if outcome.is_err() {
            let _ = rustix::process::pidfd_send_signal(&*self.killer.pidfd, Signal::KILL);
        }
        let init_status = self.reap()?;
        let reports = outcome?;
        if let Some(message) = reports.setup_failed {
            return Ok(Some(message));
        }
        reports
            .probed
            .ok_or_else(|| Error::InitDied(init_status.to_string()))
    }

    fn reap(&mut self) -> Result<std::process::ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(Error::Protocol("the init was already reaped".to_owned()));
        };
        child
            .wait()
            .map_err(|error| Error::Protocol(format!("waiting for the init: {error}")))
    }

    /// Reads output and reports until the init has closed everything.
    fn pump(&mut self, sink: &mut dyn OutputSink) -> Result<Reports> {
        let mut reports = Reports::default();
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| Error::Protocol("the init was already reaped".to_owned()))?;
        let mut stdout = child
            .stdout
            .take()
            .map(|pipe| std::fs::File::from(OwnedFd::from(pipe)));
        let mut stderr = child
            .stderr
            .take()
            .map(|pipe| std::fs::File::from(OwnedFd::from(pipe)));
        let mut socket_open = true;
        let mut buffer = vec![0u8; 64 * 1024];
        while socket_open || stdout.is_some() || stderr.is_some() {
            let mut fds = Vec::with_capacity(3);
            if socket_open {
                fds.push(PollFd::new(&self.socket, PollFlags::IN));
            }
            if let Some(out) = &stdout {
                fds.push(PollFd::new(out, PollFlags::IN));
            }
            if let Some(err) = &stderr {
                fds.push(PollFd::new(err, PollFlags::IN));
            }
            match rustix::event::poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(errno) => return Err(Error::Protocol(format!("poll: {errno}"))),
            }
            let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
            drop(fds);
            let mut index = 0;
            if socket_open {
                if ready[index] {
                    match proto::receive::<Report>(&self.socket) {
                        Ok(Some(report)) => self.handle(report, &mut reports)?,
                        Ok(None) | Err(_) => socket_open = false,
                    }
                }
                index += 1;
            }
            for (stream, pipe) in [(Stream::Stdout, &mut stdout), (Stream::Stderr, &mut stderr)] {
                let Some(reader) = pipe else { continue };
                if ready[index] {
                    match reader.read(&mut buffer) {
                        Ok(0) => *pipe = None,
                        Ok(n) => sink.output(stream, &buffer[..n]),
                        Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => *pipe = None,
                    }
                }
                index += 1;
            }
        }
        Ok(reports)
    }

    fn handle(&mut self, report: Report, reports: &mut Reports) -> Result<()> {
        match report {
            Report::UserNamespaceReady => {
                let answer = match self.write_id_maps() {
                    Ok(()) => MapAnswer::Mapped,
                    Err(error) => {
                        let _ =
                            proto::send(self.socket.as_fd(), &MapAnswer::Failed(error.to_string()));
                        return Err(error);
                    }
                };
                proto::send(self.socket.as_fd(), &answer)
                    .map_err(|error| Error::Protocol(format!("answering the init: {error}")))?;
            }
            Report::Stubs { stubs, parents } => {
                reports.stubs = stubs;
                reports.parents = parents;
            }
            Report::SetupFailed(message) => reports.setup_failed = Some(message),
            Report::ExecFailed(message) => reports.exec_failed = Some(message),
            Report::Exited { code, signal } => {
                reports.exited = Some(match (code, signal) {
                    (_, Some(signal)) => ExitStatus::Signaled(signal),
                    (Some(code), None) => ExitStatus::Exited(code),
                    (None, None) => return Err(Error::Protocol("exit without status".to_owned())),
                })
            }
            Report::Probed(outcome) => reports.probed = Some(outcome),
        }
        Ok(())
    }

    /// Runs `newuidmap`/`newgidmap` for the init (subordinate mapping).
    fn write_id_maps(&self) -> Result<()> {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| Error::Protocol("the init was already reaped".to_owned()))?;
        self.ids.write_maps(pid)
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = rustix::process::pidfd_send_signal(&*self.killer.pidfd, Signal::KILL);
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end_of_both_streams() {
        let mut tail = LastLines::new(3);
        tail.output(Stream::Stdout, b"one\ntw");
        tail.output(Stream::Stderr, b"err1\n");
        tail.output(Stream::Stdout, b"o\nthree\nfour");
        assert_eq!(tail.lines(), ["two", "three", "four"]);
        let mut none = LastLines::new(0);
        none.output(Stream::Stdout, b"a\nb");
        assert!(none.lines().is_empty());
    }

    #[test]
    fn specs_the_sandbox_cannot_run_are_refused_before_starting() {
        let sandbox =
            Sandbox::with_init_program("/nonexistent/init").id_mapping(IdMapping::Single {
                uid: 1000,
                gid: 1000,
            });
        let base = SandboxSpec::new(
            crate::Rootfs::Directory("/nonexistent/root".into()),
            vec!["true".into()],
        );
        let refused = |change: &dyn Fn(&mut SandboxSpec), expected: &str| {
            let mut spec = base.clone();
            change(&mut spec);
            match sandbox.spawn(&spec, Stdio::Capture) {
                Err(Error::Unsupported(message)) => {
                    assert!(message.contains(expected), "{message}")
                }
                other => panic!("expected a refusal mentioning {expected:?}, got {other:?}"),
            }
        };
        refused(&|spec| spec.args.clear(), "no command");
        refused(&|spec| spec.uid = 1000, "uid 1000 does not exist");
        refused(&|spec| spec.gid = 5, "gid 5 does not exist");
        refused(&|spec| spec.additional_gids = vec![0], "setgroups");
        refused(&|spec| spec.env = vec!["A=\0".into()], "NUL");
        refused(&|spec| spec.hostname = "h".repeat(65), "hostname");
        refused(&|spec| spec.cwd = "relative".into(), "must be absolute");
        // A valid spec gets as far as starting the (missing) init.
        assert!(matches!(
            sandbox.spawn(&base, Stdio::Capture),
            Err(Error::Spawn { .. })
        ));
    }

    #[test]
    fn exit_status_codes_and_display() {
        assert!(ExitStatus::Exited(0).success());
        assert_eq!(ExitStatus::Signaled(9).code(), 137);
        assert_eq!(ExitStatus::Exited(3).to_string(), "exit code: 3");
        assert_eq!(
            ExitStatus::Signaled(15).to_string(),
            "killed by signal 15 (SIGTERM)"
        );
    }
}
