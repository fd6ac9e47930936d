//! distill's sandbox: runs a `RUN` step (or `distill run`) in its own user, mount, pid, ipc
//! and uts namespaces, on an overlayfs of the parent snapshot or, where overlayfs cannot be
//! mounted, on a copy of it.
//!
//! A [`Sandbox`] starts a [`SandboxSpec`] by re-executing the program that contains it (the
//! distill binary) as the sandbox init: `main` must call [`init_if_requested`] before doing
//! anything else. The init builds the namespaces, mounts and ids, and reports back over a
//! socket; the caller streams the command's output to an [`OutputSink`] (keep the end of it
//! with [`LastLines`]) and gets an [`ExitStatus`]. A [`Killer`] stops a run from another
//! thread. [`IdMapping`] says how the sandbox's ids relate to the host's (root, subordinate
//! ranges through `newuidmap`, or the single-id mapping any user may use). A [`Snapshotter`]
//! prepares a writable view on parent snapshots and commits its diff in overlayfs's upper
//! directory format, by overlayfs or by copying. [`enter_user_namespace`] optionally moves a
//! rootless program with subordinate ids into one user namespace for its whole life.
//!
//! ```no_run
//! use distill_sandbox::{LastLines, Sandbox, SandboxSpec, Snapshotter};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     distill_sandbox::init_if_requested(); // before any thread or async runtime
//!     let sandbox = Sandbox::new()?;
//!     let (snapshotter, _why_not_overlay) = Snapshotter::detect(&sandbox, "/var/lib/distill/probe".as_ref())?;
//!     let view = snapshotter.prepare(&["/var/lib/distill/snapshots/1/fs".into()], "/var/lib/distill/active/2".as_ref())?;
//!     let mut spec = SandboxSpec::new(view.rootfs(), vec!["/bin/sh".into(), "-c".into(), "apk add curl".into()]);
//!     spec.env = vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()];
//!     let mut tail = LastLines::new(20);
//!     let status = sandbox.run(&spec, &mut tail)?;
//!     if status.success() {
//!         let diff = view.commit()?; // diff.path: overlayfs upper format, ready to become a layer
//!         println!("diff in {}", diff.path.display());
//!     } else {
//!         eprintln!("{status}:\n{}", tail.lines().join("\n"));
//!         view.remove()?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Machine requirements, detected at run time rather than assumed: Linux ≥ 5.6 (`openat2`,
//! pidfds); as an ordinary user, unprivileged user namespaces enabled and, for overlayfs in
//! them, Linux ≥ 5.11 (otherwise [`Snapshotter::detect`] picks the copying snapshotter, which
//! needs Linux ≥ 5.8 to write whiteouts unprivileged); `newuidmap`/`newgidmap` and
//! `/etc/subuid`/`/etc/subgid` ranges for more than one id. Not done here: cgroups (resource
//! limits), seccomp filters, a terminal inside the sandbox (`distill run -t`).
//!
//! This crate never forks a threaded process (the init is a fresh `exec`), never follows a
//! symlink from inside a root out of it, and never leaves a mount behind: every mount lives
//! in the sandbox's mount namespace and vanishes with it.

mod cleanup;
mod error;
mod idmap;
mod init;
mod mounts;
mod net;
mod proto;
mod run;
mod snapshot;
mod spec;
mod unshare;

pub use cleanup::remove_tree;
pub use error::{Error, Result};
pub use idmap::{IdMapping, IdRange};
pub use init::{init_if_requested, INIT_ENV};
pub use run::{ExitStatus, Killer, LastLines, OutputSink, RunningSandbox, Sandbox, Stdio, Stream};
pub use snapshot::{Diff, Snapshotter, SnapshotterKind, View};
pub use spec::{Mount, MountKind, NetworkMode, Rootfs, SandboxSpec, SystemMounts, DEFAULT_PATH};
pub use unshare::{enter_user_namespace, Namespace, USERNS_ENV};

/// Re-exported so callers can name the signals [`Killer::forward`] takes.
pub use rustix::process::Signal;
