//! What to run and on what root: the plain data a caller fills in and the init receives.
//!
//! A `SandboxSpec` travels from the caller to the re-executed init as JSON, so it holds only
//! owned, serialisable values: paths, strings, numbers. It never holds file descriptors or
//! anything that only makes sense in the caller's process.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `PATH` used to find the command when the spec's environment has none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The root filesystem the command sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rootfs {
    /// An overlay of read-only `lower` directories (ordered from the bottom layer to the top
    /// one, like an image's layers) under a writable `upper` directory; `work` is overlayfs's
    /// scratch directory and must be on the same filesystem as `upper`. With no lower
    /// directory, `upper` is used directly. Whiteouts and opaque directories in the lower
    /// directories follow overlayfs's format (character device 0/0, `*.overlay.opaque` xattr).
    /// The overlay is mounted `volatile` where the kernel supports it: nothing forces the
    /// upper directory to disk, so a crash during a run can leave it half-written (the layer
    /// the caller makes of it is what must be durable).
    Overlay {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
    },
    /// A plain directory used as the root, written in place (the copying snapshotter's view).
    Directory(PathBuf),
}

impl Rootfs {
    /// The directory that receives the command's writes (the diff for an overlay).
    pub fn writable_dir(&self) -> &Path {
        match self {
            Rootfs::Overlay { upper, .. } => upper,
            Rootfs::Directory(dir) => dir,
        }
    }
}

/// Which network the command sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// Share the host's network namespace (BuildKit's `--network=host`).
    #[default]
    Host,
    /// A new network namespace with only the loopback interface, brought up.
    None,
}

/// One extra mount inside the root (what `RUN --mount` maps onto).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path inside the root; missing directories (or the file, for a file bind) are
    /// created and removed again after the run if they are still empty.
    pub target: PathBuf,
    pub kind: MountKind,
}

/// What an extra mount puts at its target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// Bind a host file or directory (recursively).
    Bind { source: PathBuf, read_only: bool },
    /// A writable view of a host directory whose writes are thrown away after the run
    /// (BuildKit's `--mount=type=bind,rw`): an overlay of `source` with a tmpfs upper layer.
    ScratchBind { source: PathBuf },
    /// A fresh tmpfs; `size` in bytes (`None`: the kernel's default, half of RAM), `mode` of
    /// its root directory.
    Tmpfs { size: Option<u64>, mode: u32 },
}

impl Mount {
    pub fn bind(source: impl Into<PathBuf>, target: impl Into<PathBuf>, read_only: bool) -> Mount {
        Mount {
            target: target.into(),
            kind: MountKind::Bind {
                source: source.into(),
                read_only,
            },
        }
    }

    pub fn tmpfs(target: impl Into<PathBuf>) -> Mount {
        Mount {
            target: target.into(),
            kind: MountKind::Tmpfs {
                size: None,
                mode: 0o1777,
            },
        }
    }
}

/// The system mounts a Linux program expects, each of which can be turned off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemMounts {
    /// A fresh procfs for the new pid namespace at `/proc`, with the kernel's sensitive files
    /// masked or read-only as Docker does.
    pub proc: bool,
    /// A minimal `/dev` on tmpfs: null, zero, full, random, urandom and tty bound from the
    /// host, `/dev/pts` (new devpts instance), `/dev/shm`, and the fd/stdio symlinks.
    pub dev: bool,
    /// `/sys`, read-only.
    pub sys: bool,
    /// Host file bound read-only at `/etc/resolv.conf` (`None`: leave the image's file).
    pub resolv_conf: Option<PathBuf>,
    /// Host file bound read-only at `/etc/hosts` (`None`: leave the image's file).
    pub hosts: Option<PathBuf>,
}

impl Default for SystemMounts {
    /// proc, dev and sys, and the host's `/etc/resolv.conf` and `/etc/hosts` (what BuildKit
    /// gives a RUN step on the host network).
    fn default() -> Self {
        SystemMounts {
            proc: true,
            dev: true,
            sys: true,
            resolv_conf: Some(PathBuf::from("/etc/resolv.conf")),
            hosts: Some(PathBuf::from("/etc/hosts")),
        }
    }
}

impl SystemMounts {
    /// No system mount at all: the root is exactly the snapshot.
    pub fn none() -> Self {
        SystemMounts {
            proc: false,
            dev: false,
            sys: false,
            resolv_conf: None,
            hosts: None,
        }
    }
}

/// Everything about one sandboxed command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub rootfs: Rootfs,
    /// The command; `args[0]` without a `/` is looked up in the `PATH` of `env` (or
    /// [`DEFAULT_PATH`]) inside the root.
    pub args: Vec<String>,
    /// The command's whole environment, `KEY=VALUE`; nothing is inherited.
    pub env: Vec<String>,
    /// Absolute working directory inside the root; created (owned by root) if missing.
    pub cwd: PathBuf,
    /// Ids the command runs as, inside the sandbox's user namespace.
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    pub network: NetworkMode,
    pub system_mounts: SystemMounts,
    /// Extra mounts, applied in this order after the system mounts.
    pub mounts: Vec<Mount>,
    /// Makes the root mount read-only once everything is mounted in it (`distill run
    /// --read-only`); the system and extra mounts keep their own modes.
    #[serde(default)]
    pub read_only_root: bool,
    /// Leaves in the root the directories made for mount points that did not exist (and
    /// their missing parents), as Docker 20.10's runc does for RUN mounts; mount points
    /// that are files are removed either way. Off: every stub is removed, as current
    /// BuildKit does.
    #[serde(default)]
    pub keep_directory_stubs: bool,
}

impl SandboxSpec {
    /// A spec running `args` as root in `/` of `rootfs` on the host network, with the default
    /// system mounts, an empty environment and the hostname BuildKit uses.
    pub fn new(rootfs: Rootfs, args: Vec<String>) -> SandboxSpec {
        SandboxSpec {
            rootfs,
            args,
            env: Vec::new(),
            cwd: PathBuf::from("/"),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            hostname: "buildkitsandbox".to_owned(),
            network: NetworkMode::Host,
            system_mounts: SystemMounts::default(),
            mounts: Vec::new(),
            read_only_root: false,
            keep_directory_stubs: false,
        }
    }

    /// The `PATH` the command is looked up in.
    pub fn search_path(&self) -> &str {
        self.env
            .iter()
            .rev()
            .find_map(|entry| entry.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_uses_last_path_entry_or_default() {
        let mut spec = SandboxSpec::new(Rootfs::Directory("/r".into()), vec!["sh".into()]);
        assert_eq!(spec.search_path(), DEFAULT_PATH);
        spec.env = vec!["PATH=/a".into(), "HOME=/root".into(), "PATH=/b:/c".into()];
        assert_eq!(spec.search_path(), "/b:/c");
    }

    #[test]
    fn writable_dir_is_upper_or_directory() {
        let overlay = Rootfs::Overlay {
            lower: vec!["/l".into()],
            upper: "/u".into(),
            work: "/w".into(),
        };
        assert_eq!(overlay.writable_dir(), Path::new("/u"));
        assert_eq!(
            Rootfs::Directory("/d".into()).writable_dir(),
            Path::new("/d")
        );
    }
}
