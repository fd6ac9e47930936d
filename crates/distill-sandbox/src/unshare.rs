//! Whole-process rootless mode: the program re-executed inside one user namespace where its
//! user is root and its subordinate ids exist, as `buildah unshare` and rootless podman do.
//!
//! Per-run user namespaces ([`IdMapping`]) are enough to run a step, but the files a step
//! gives to other ids then belong to subordinate host ids the caller can neither read nor
//! remove, and the layers the caller unpacks cannot have other owners at all. Calling
//! [`enter_user_namespace`] first thing in `main` moves the whole program into one user
//! namespace instead: there it holds every capability over its files, can unpack layers with
//! their real owners and read every diff, and its sandboxes need no user namespace of their
//! own ([`IdMapping::detect`] answers `Host`). It never re-executes a privileged process or
//! one without subordinate ranges; the original process only waits and relays signals.

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::error::{Error, Result};
use crate::idmap::{has_cap_sys_admin, IdMapping};
use crate::proto::{self, MapAnswer, Report};
use crate::run::{pass_socket, INIT_SOCKET_FD};

/// Marks the re-executed program; its value is the number of the socket to the original.
pub const USERNS_ENV: &str = "_DISTILL_USERNS";

/// `si_code` of a signal the kernel generated (a terminal's Ctrl-C).
const SI_KERNEL: i32 = 0x80;

/// Where [`enter_user_namespace`] left the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    /// This is the re-executed program, root in a user namespace with the subordinate ids.
    Entered,
    /// Nothing was done: the program is privileged already, or its user has no subordinate
    /// ranges (each sandbox then gets the single-id mapping).
    Unchanged,
}

/// Moves the program into a user namespace with its subordinate ids (see the module docs).
///
/// Call it first thing in `main` (after [`crate::init_if_requested`]), before any thread
/// is started. In the original process it does not return when it re-executes: it waits for
/// the re-executed program and exits as it did. An `Err` means the namespace could not be
/// made; the program may go on without it.
pub fn enter_user_namespace() -> Result<Namespace> {
    if let Some(value) = std::env::var_os(USERNS_ENV) {
        let fd = value
            .to_str()
            .and_then(|text| text.parse::<RawFd>().ok())
            .filter(|fd| *fd > 2)
            .ok_or_else(|| {
                Error::Protocol(format!("{USERNS_ENV} must name a socket, got {value:?}"))
            })?;
        // The program is still single-threaded: nothing reads the environment concurrently.
        std::env::remove_var(USERNS_ENV);
        // SAFETY: the original process passed this descriptor open and owned by nobody else.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        return become_root(socket).map(|()| Namespace::Entered);
    }
    if has_cap_sys_admin() {
        return Ok(Namespace::Unchanged);
    }
    let ids = IdMapping::detect();
    if !matches!(ids, IdMapping::Subordinate { .. }) {
        return Ok(Namespace::Unchanged);
    }
    let code = reexecute(&ids)?;
    std::process::exit(code)
}

/// In the re-executed program: create the user namespace and wait for its maps.
fn become_root(socket: OwnedFd) -> Result<()> {
    rustix::io::fcntl_setfd(&socket, rustix::io::FdFlags::CLOEXEC)
        .map_err(|errno| Error::Protocol(format!("{USERNS_ENV} socket: {errno}")))?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|errno| Error::Setup(format!("creating a user namespace: {errno}")))?;
    proto::send(socket.as_fd(), &Report::UserNamespaceReady)
        .map_err(|error| Error::Protocol(format!("asking for id maps: {error}")))?;
    match proto::receive::<MapAnswer>(&socket) {
        Ok(Some(MapAnswer::Mapped)) => {}
        Ok(Some(MapAnswer::Failed(message))) => return Err(Error::Setup(message)),
        Ok(None) => return Err(Error::Setup("the original process went away".to_owned())),
        Err(error) => return Err(Error::Protocol(format!("waiting for id maps: {error}"))),
    }
    // The original process is single-threaded and only waits for this one.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|errno| Error::Setup(format!("setting the parent-death signal: {errno}")))?;
    // The host's supplementary groups show as `nogroup` here; root needs none.
    nix::unistd::setgroups(&[]).map_err(|errno| Error::Setup(format!("setgroups: {errno}")))?;
    Ok(())
}

/// Signals the original process passes on to the re-executed program.
const RELAYED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The re-executed program, for the signal relay.
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn relay(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { info.as_ref() }.map_or(0, |info| info.si_code);
    // Terminal signals reach the whole process group, the re-executed program included.
    if code == SI_KERNEL {
        return;
    }
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(child, signal) };
    }
}

/// In the original process: start the program again, map its namespace, wait, return its
/// exit code (re-raising a signal that killed it). An error means nothing was started.
fn reexecute(ids: &IdMapping) -> Result<i32> {
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|errno| Error::Protocol(format!("socketpair: {errno}")))?;
    let mut command = Command::new("/proc/self/exe");
    let mut args = std::env::args_os();
    if let Some(argv0) = args.next() {
        command.arg0(argv0);
    }
    command
        .args(args)
        .env(USERNS_ENV, INIT_SOCKET_FD.to_string());
    pass_socket(&mut command, &theirs);
    let action = SigAction::new(
        SigHandler::SigAction(relay),
        SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    for signal in RELAYED {
        // SAFETY: `relay` only reads an atomic and calls kill.
        unsafe { nix::sys::signal::sigaction(signal, &action) }
            .map_err(|errno| Error::Setup(format!("installing a signal relay: {errno}")))?;
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(source) => {
            // The program goes on in this process: give it its signals back.
            for signal in RELAYED {
                // SAFETY: restoring the default disposition installs no handler.
                let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
            }
            return Err(Error::Spawn {
                program: "/proc/self/exe".into(),
                source,
            });
        }
    };
    drop(theirs);
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    // From here on the re-executed program runs, namespace or not (it is told why not and
    // decides): this process only mirrors it.
    let mapped = match proto::receive::<Report>(&ours) {
        Ok(Some(Report::UserNamespaceReady)) => ids.write_maps(child.id()),
        Ok(_) => Err(Error::Protocol(
            "the re-executed program did not ask for id maps".to_owned(),
        )),
        Err(error) => Err(Error::Protocol(format!(
            "waiting for the re-executed program: {error}"
        ))),
    };
    let answer = match mapped {
        Ok(()) => MapAnswer::Mapped,
        Err(error) => MapAnswer::Failed(error.to_string()),
    };
    let _ = proto::send(ours.as_fd(), &answer);
    drop(ours);
    let status = loop {
        match child.wait() {
            Ok(status) => break status,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            // Cannot happen for our own unreaped child; mirror a failure.
            Err(_) => return Ok(1),
        }
    };
    if let Some(signal) = status.signal() {
        // Die the same way, so a shell reports what happened.
        if let Ok(signal) = Signal::try_from(signal) {
            // SAFETY: restoring the default disposition installs no handler.
            let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
            let _ = nix::sys::signal::raise(signal);
        }
        return Ok(128 + signal);
    }
    Ok(status.code().unwrap_or(1))
}
