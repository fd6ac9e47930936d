//! The sandbox init: the distill binary re-executed with [`INIT_ENV`] set.
//!
//! Three processes, each single-threaded, so forking is safe:
//! - the outer init (the re-executed binary) creates the user namespace, has its maps
//!   written, unshares the mount, pid, ipc, uts (and network) namespaces and forks;
//! - pid 1 of the new pid namespace mounts the root, pivots into it, forks the command,
//!   forwards signals to it and reaps every orphan, and reports how the command ended;
//! - the command process drops to the requested ids and `exec`s.
//!
//! When pid 1 exits the kernel kills everything left in the namespace and the mount namespace
//! (with every mount in it) goes away, so nothing is left to unmount. Both inits watch the
//! socket to the caller: if the caller goes away, they take the sandbox down with them. This
//! module must never run in a threaded process or return to the caller's `main`.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Gid, Pid, Uid};
use rustix::event::{PollFd, PollFlags};

use crate::idmap::IdMapping;
use crate::mounts;
use crate::proto::{self, MapAnswer, Report, Request};
use crate::spec::{NetworkMode, SandboxSpec};

/// Environment variable that marks a process as the sandbox init; its value is the number of
/// the inherited socket to the caller.
pub const INIT_ENV: &str = "_DISTILL_SANDBOX_INIT";

/// `si_code` of a signal the kernel generated (a terminal's Ctrl-C, SIGWINCH).
const SI_KERNEL: i32 = 0x80;

/// Exit code of an init whose setup failed (as runc and Docker use).
const SETUP_FAILED: i32 = 125;

/// Signals the inits forward to the command; SIGCHLD is watched for reaping.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Docker's default capability set (by number): what root keeps in the sandbox.
const DEFAULT_CAPABILITIES: [u32; 14] = [
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    10, // CAP_NET_BIND_SERVICE
    13, // CAP_NET_RAW
    18, // CAP_SYS_CHROOT
    27, // CAP_MKNOD
    29, // CAP_AUDIT_WRITE
    31, // CAP_SETFCAP
];

/// If this process is the sandbox init, runs it and exits; otherwise returns at once.
///
/// Call it first thing in `main`, before any thread is started.
pub fn init_if_requested() {
    let Some(value) = std::env::var_os(INIT_ENV) else {
        return;
    };
    let code = match value.to_str().and_then(|text| text.parse::<RawFd>().ok()) {
        Some(fd) if fd > 2 => {
            // SAFETY: the caller passed this descriptor open and owned by nobody else here.
            let socket = unsafe { OwnedFd::from_raw_fd(fd) };
            main(socket)
        }
        _ => {
            eprintln!(
                "distill sandbox init: {INIT_ENV} must name an inherited socket, got {value:?}"
            );
            SETUP_FAILED
        }
    };
    std::process::exit(code);
}

fn main(socket: OwnedFd) -> i32 {
    if let Err(errno) = rustix::io::fcntl_setfd(&socket, rustix::io::FdFlags::CLOEXEC) {
        eprintln!("distill sandbox init: socket: {errno}");
        return SETUP_FAILED;
    }
    let request = match proto::receive::<Request>(&socket) {
        Ok(Some(request)) => request,
        Ok(None) => return SETUP_FAILED,
        Err(error) => {
            eprintln!("distill sandbox init: reading the request: {error}");
            return SETUP_FAILED;
        }
    };
    match request {
        Request::Run { spec, ids } => match outer(socket.as_fd(), &spec, &ids) {
            Ok(code) => code,
            Err(message) => report_setup_failure(socket.as_fd(), message),
        },
        Request::ProbeOverlay {
            lower,
            upper,
            work,
            ids,
        } => {
            let outcome = probe_overlay(socket.as_fd(), &lower, &upper, &work, &ids);
            match proto::send(socket.as_fd(), &Report::Probed(outcome.err())) {
                Ok(()) => 0,
                Err(_) => SETUP_FAILED,
            }
        }
    }
}

fn report_setup_failure(socket: BorrowedFd<'_>, message: String) -> i32 {
    if proto::send(socket, &Report::SetupFailed(message.clone())).is_err() {
        eprintln!("distill sandbox init: {message}");
    }
    SETUP_FAILED
}

fn failed(what: impl std::fmt::Display, errno: impl std::fmt::Display) -> String {
    format!("{what}: {errno}")
}

/// Creates the user namespace (if the mapping wants one) and makes this process root in it.
fn enter_user_namespace(socket: BorrowedFd<'_>, ids: &IdMapping) -> Result<(), String> {
    match ids {
        IdMapping::Host => Ok(()),
        IdMapping::Single { uid, gid } => {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
                .map_err(|errno| namespace_failure("creating a user namespace", errno))?;
            write_proc_self("setgroups", "deny")?;
            write_proc_self("uid_map", &format!("0 {uid} 1\n"))?;
            write_proc_self("gid_map", &format!("0 {gid} 1\n"))?;
            Ok(())
        }
        IdMapping::Subordinate { .. } => {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
                .map_err(|errno| namespace_failure("creating a user namespace", errno))?;
            proto::send(socket, &Report::UserNamespaceReady)
                .map_err(|error| failed("asking for id maps", error))?;
            match proto::receive::<MapAnswer>(socket) {
                Ok(Some(MapAnswer::Mapped)) => Ok(()),
                Ok(Some(MapAnswer::Failed(message))) => Err(message),
                Ok(None) => Err("the caller went away before writing the id maps".to_owned()),
                Err(error) => Err(failed("waiting for id maps", error)),
            }
        }
    }
}

fn write_proc_self(file: &str, content: &str) -> Result<(), String> {
    std::fs::write(Path::new("/proc/self").join(file), content).map_err(|error| {
        let errno = nix::errno::Errno::from_raw(error.raw_os_error().unwrap_or(0));
        namespace_failure(&format!("writing /proc/self/{file}"), errno)
    })
}

/// A namespace operation's error, with what usually causes it.
fn namespace_failure(what: &str, errno: nix::errno::Errno) -> String {
    let mut message = failed(what, errno);
    if matches!(
        errno,
        nix::errno::Errno::EPERM | nix::errno::Errno::ENOSPC | nix::errno::Errno::EACCES
    ) {
        message.push_str(
            "\nhint: namespaces may be disabled here: check the sysctls user.max_user_namespaces, \
             kernel.unprivileged_userns_clone (Debian) and kernel.apparmor_restrict_unprivileged_userns \
             (Ubuntu); in a container, its seccomp profile must allow unshare (or run it privileged)",
        );
    }
    message
}

fn probe_overlay(
    socket: BorrowedFd<'_>,
    lower: &Path,
    upper: &Path,
    work: &Path,
    ids: &IdMapping,
) -> Result<(), String> {
    enter_user_namespace(socket, ids)?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS)
        .map_err(|errno| failed("creating a mount namespace", errno))?;
    make_mounts_private()?;
    mounts::mount_overlay(
        &[lower.to_owned()],
        upper,
        work,
        mounts::needs_userxattr(ids),
    )?;
    std::fs::write(upper.join("created"), "probe")
        .map_err(|error| failed("writing through the overlay", error))?;
    std::fs::remove_file(upper.join("probe"))
        .map_err(|error| failed("deleting a lower file through the overlay", error))?;
    Ok(())
}

fn make_mounts_private() -> Result<(), String> {
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|errno| failed("making the mount tree private", errno))
}

fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for signal in FORWARDED {
        set.add(signal);
    }
    set
}

/// The outer init: namespaces, then supervise pid 1. Returns this process's exit code.
fn outer(socket: BorrowedFd<'_>, spec: &SandboxSpec, ids: &IdMapping) -> Result<i32, String> {
    let signals = signal_set();
    signals
        .thread_block()
        .map_err(|errno| failed("blocking signals", errno))?;
    enter_user_namespace(socket, ids)?;
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if spec.network == NetworkMode::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    nix::sched::unshare(flags).map_err(|errno| namespace_failure("creating namespaces", errno))?;
    if spec.network == NetworkMode::None {
        crate::net::bring_up_loopback()?;
    }
    nix::unistd::sethostname(&spec.hostname).map_err(|errno| {
        failed(
            format!("setting the hostname to {:?}", spec.hostname),
            errno,
        )
    })?;
    make_mounts_private()?;
    // SAFETY: this process is single-threaded (the re-executed binary started no thread).
    match unsafe { nix::unistd::fork() }.map_err(|errno| failed("fork", errno))? {
        ForkResult::Child => {
            let code = match pid_one(socket, spec, ids, &signals) {
                Ok(code) => code,
                Err(message) => report_setup_failure(socket, message),
            };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => Ok(supervise(socket, child, &signals, true)),
    }
}

/// Pid 1 of the new pid namespace: the root, then the command, then reaping.
fn pid_one(
    socket: BorrowedFd<'_>,
    spec: &SandboxSpec,
    ids: &IdMapping,
    signals: &SigSet,
) -> Result<i32, String> {
    // The outer init is single-threaded, so its exit is what triggers this.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|errno| failed("setting the parent-death signal", errno))?;
    let (root, mounted) = mounts::prepare_root(spec, ids);
    if !root.stubs.is_empty() {
        proto::send(
            socket,
            &Report::Stubs {
                stubs: root.stubs.clone(),
                parents: root.parents.clone(),
            },
        )
        .map_err(|error| failed("reporting mount points", error))?;
    }
    mounted?;
    root.pivot()?;
    ensure_directory(&spec.cwd)?;
    // SAFETY: single-threaded, as above.
    match unsafe { nix::unistd::fork() }.map_err(|errno| failed("fork", errno))? {
        ForkResult::Child => {
            let (message, code) = exec_command(spec);
            let _ = proto::send(socket, &Report::ExecFailed(message));
            // SAFETY: leaves without running the parent's exit handlers twice.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(supervise(socket, child, signals, false)),
    }
}

/// Creates the working directory (and its parents) if missing, as root.
fn ensure_directory(dir: &Path) -> Result<(), String> {
    if !dir.is_absolute() {
        return Err(format!(
            "working directory {} must be absolute",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|error| {
        failed(
            format!("creating working directory {}", dir.display()),
            error,
        )
    })
}

/// Waits for `child`, forwarding signals to it; ends when it ends or the caller goes away.
/// As pid 1 (`report_exit`), also reaps orphans and tells the caller how the command ended.
fn supervise(socket: BorrowedFd<'_>, child: Pid, signals: &SigSet, outer: bool) -> i32 {
    let signal_fd = match SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(errno) => {
            let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
            eprintln!("distill sandbox init: signalfd: {errno}");
            return SETUP_FAILED;
        }
    };
    loop {
        // A signal may have arrived before the signalfd existed: it is still pending, and
        // the signalfd reports pending signals, so nothing is lost.
        let mut fds = [
            PollFd::new(&signal_fd, PollFlags::IN),
            PollFd::new(&socket, PollFlags::RDHUP),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return kill_and_leave(child),
        }
        let caller_gone = fds[1]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR);
        if caller_gone {
            return kill_and_leave(child);
        }
        let Ok(Some(info)) = signal_fd.read_signal() else {
            continue;
        };
        let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if signal != Signal::SIGCHLD {
            // Signals from the terminal (Ctrl-C, window size) reach the whole foreground
            // process group, the command included: only forward those a process sent.
            if info.ssi_code != SI_KERNEL {
                let _ = nix::sys::signal::kill(child, signal);
            }
            continue;
        }
        // Reap everything that has ended; in pid 1 that includes re-parented orphans.
        loop {
            let target = if outer { child } else { Pid::from_raw(-1) };
            match nix::sys::wait::waitpid(target, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => {
                    if !outer {
                        let _ = proto::send(
                            socket,
                            &Report::Exited {
                                code: Some(code),
                                signal: None,
                            },
                        );
                    }
                    return code;
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                    if !outer {
                        let report = Report::Exited {
                            code: None,
                            signal: Some(signal as i32),
                        };
                        let _ = proto::send(socket, &report);
                    }
                    return 128 + signal as i32;
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}

fn kill_and_leave(child: Pid) -> i32 {
    let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    128 + Signal::SIGKILL as i32
}

/// In the command's process: drop to the requested ids and exec. Returns only on failure,
/// with the message and exit code to report.
fn exec_command(spec: &SandboxSpec) -> (String, i32) {
    match prepare_and_exec(spec) {
        Ok(never) => match never {},
        Err((message, code)) => (message, code),
    }
}

enum Never {}

fn prepare_and_exec(spec: &SandboxSpec) -> Result<Never, (String, i32)> {
    let setup = |message: String| (message, SETUP_FAILED);
    reset_signals().map_err(setup)?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|errno| setup(failed("setting the parent-death signal", errno)))?;
    limit_capabilities().map_err(setup)?;
    let groups: Vec<Gid> = spec
        .additional_gids
        .iter()
        .map(|gid| Gid::from_raw(*gid))
        .collect();
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|state| state.trim() != "deny")
        .unwrap_or(true);
    if setgroups_allowed {
        nix::unistd::setgroups(&groups).map_err(|errno| {
            setup(failed(
                format!("setgroups {:?}", spec.additional_gids),
                errno,
            ))
        })?;
    } else if !groups.is_empty() {
        return Err(setup(format!(
            "supplementary groups {:?} need a user namespace that allows setgroups",
            spec.additional_gids
        )));
    }
    let gid = Gid::from_raw(spec.gid);
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|errno| setup(failed(format!("switching to gid {}", spec.gid), errno)))?;
    let uid = Uid::from_raw(spec.uid);
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|errno| setup(failed(format!("switching to uid {}", spec.uid), errno)))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::unistd::chdir(&spec.cwd)
        .map_err(|errno| setup(failed(format!("chdir {}", spec.cwd.display()), errno)))?;
    let program = find_program(spec)?;
    let args = c_strings(&spec.args).map_err(setup)?;
    let env = c_strings(&spec.env).map_err(setup)?;
    let program_c = CString::new(program.as_os_str().as_bytes())
        .map_err(|_| setup(format!("{} contains a NUL byte", program.display())))?;
    mark_descriptors_close_on_exec();
    let errno = match nix::unistd::execve(&program_c, &args, &env) {
        Ok(never) => match never {},
        Err(errno) => errno,
    };
    let code = if errno == nix::errno::Errno::ENOENT {
        127
    } else {
        126
    };
    let mut message = format!("exec {}: {}", program.display(), errno.desc());
    if errno == nix::errno::Errno::ENOENT && program.exists() {
        // The file is there: what is missing is the interpreter its `#!` line or ELF header
        // names (a binary built for glibc in an Alpine image, a script with CRLF endings).
        message.push_str(" (the program exists: its interpreter or dynamic loader is missing)");
    }
    Err((message, code))
}

fn c_strings(values: &[String]) -> Result<Vec<CString>, String> {
    values
        .iter()
        .map(|value| {
            CString::new(value.as_bytes()).map_err(|_| format!("{value:?} contains a NUL byte"))
        })
        .collect()
}

/// `args[0]` itself when it has a `/`, else the first executable file of that name in the
/// spec's `PATH`.
fn find_program(spec: &SandboxSpec) -> Result<PathBuf, (String, i32)> {
    let Some(name) = spec.args.first() else {
        return Err(("no command to run".to_owned(), 127));
    };
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    for dir in spec.search_path().split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        let executable = rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok();
        if executable && candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err((
        format!("exec: {name:?}: executable file not found in $PATH"),
        127,
    ))
}

/// Unblocks every signal and restores default dispositions: a blocked mask and ignored
/// signals (Rust ignores SIGPIPE) would otherwise survive `exec`.
fn reset_signals() -> Result<(), String> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|errno| failed("unblocking signals", errno))?;
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing the default disposition has no handler to be unsafe about.
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
    }
    Ok(())
}

/// Drops every capability outside Docker's default set from the bounding set and clears the
/// inheritable and ambient sets, so root in the sandbox cannot remount, load modules, etc.
fn limit_capabilities() -> Result<(), String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .unwrap_or(40);
    for capability in 0..=last {
        if DEFAULT_CAPABILITIES.contains(&capability) {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes a capability number and no pointer.
        let result =
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, capability as libc::c_ulong, 0, 0, 0) };
        if result != 0 {
            let error = std::io::Error::last_os_error();
            // EINVAL: this kernel does not know the capability.
            if error.raw_os_error() != Some(libc::EINVAL) {
                return Err(failed(format!("dropping capability {capability}"), error));
            }
        }
    }
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointer.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    clear_inheritable_capabilities()
}

fn clear_inheritable_capabilities() -> Result<(), String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget fills two `Data` records for version 3, as allocated.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return Err(failed("capget", std::io::Error::last_os_error()));
    }
    if data.iter().all(|record| record.inheritable == 0) {
        return Ok(());
    }
    for record in &mut data {
        record.inheritable = 0;
    }
    // SAFETY: capset reads the header and two records.
    if unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } != 0 {
        return Err(failed("capset", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Makes every descriptor above stderr close on `exec`, whatever leaked into this process.
fn mark_descriptors_close_on_exec() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOEXEC only changes descriptor flags. Older kernels answer
    // ENOSYS/EINVAL, and then the descriptors opened by distill are close-on-exec already.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
}
