//! Builds the sandbox's root inside the init's private mount namespace, then pivots into it.
//!
//! Host paths (snapshot directories, bind sources, device nodes) are opened once, before
//! anything is mounted, and referred to by `/proc/self/fd/N` afterwards: that keeps the
//! overlay's option string short whatever the number of layers and whatever characters the
//! paths contain. Paths inside the root are resolved with `openat2(RESOLVE_IN_ROOT)`, so a
//! symlink in the image can never send a mount (or a created mount point) out of the root.
//! Mount points that do not exist are created and reported as stubs for the caller to remove.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::idmap::IdMapping;
use crate::proto::{MountStub, SavedTimes};
use crate::spec::{MountKind, Rootfs, SandboxSpec};

/// overlayfs's `statfs` magic number.
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// Host device nodes bound into the minimal `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// `/proc` entries made read-only, and entries hidden, as Docker does by default.
const PROC_READ_ONLY: [&str; 5] = ["bus", "fs", "irq", "sys", "sysrq-trigger"];
const PROC_MASKED_FILES: [&str; 6] = [
    "kcore",
    "keys",
    "latency_stats",
    "timer_list",
    "timer_stats",
    "sched_debug",
];
const PROC_MASKED_DIRS: [&str; 2] = ["acpi", "scsi"];

/// A setup failure: what was being done, and the error.
pub(crate) type SetupResult<T> = Result<T, String>;

fn failed(what: impl std::fmt::Display, errno: impl std::fmt::Display) -> String {
    format!("{what}: {errno}")
}

/// `/proc/self/fd/N`, the name a mount call can use for an open file.
fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn open_host(path: &Path, directory: bool) -> SetupResult<OwnedFd> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if directory {
        flags |= OFlags::DIRECTORY;
    }
    rustix::fs::open(path, flags, Mode::empty())
        .map_err(|errno| failed(format!("opening {}", path.display()), errno))
}

fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(source, target, fstype, flags, data)
}

/// The overlayfs options for `lower` (bottom first) over `upper`, by file descriptor.
pub(crate) fn overlay_options(
    lower: &[OwnedFd],
    upper: BorrowedFd<'_>,
    work: BorrowedFd<'_>,
    userxattr: bool,
) -> String {
    let lowerdir: Vec<String> = lower.iter().rev().map(|fd| fd_path(fd.as_fd())).collect();
    let mut options = format!(
        "lowerdir={},upperdir={},workdir={},index=off,metacopy=off",
        lowerdir.join(":"),
        fd_path(upper),
        fd_path(work)
    );
    // Renames of lower directories must copy (EXDEV), never leave redirect xattrs in the diff;
    // with `userxattr` redirects are already off and naming the option is refused.
    options.push_str(if userxattr {
        ",userxattr"
    } else {
        ",redirect_dir=off"
    });
    options
}

/// Mounts an overlay with `volatile` (Linux ≥ 5.10) when the kernel knows it, else without.
///
/// A step's upper directory is scratch until its diff is packed into a layer (which the store
/// makes durable), while the `syncfs` overlayfs does on unmount flushes the whole filesystem
/// the snapshots live on: under other I/O that costs tens of milliseconds to seconds per step.
/// The price, after a crash, is an upper directory that cannot be mounted again; a step's
/// directory is never mounted twice.
fn mount_overlay_volatile(target: &str, options: &str) -> nix::Result<()> {
    let volatile = format!("{options},volatile");
    match mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(&volatile),
    ) {
        Err(nix::errno::Errno::EINVAL) => mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(options),
        ),
        outcome => outcome,
    }
}

/// Removes the marker an earlier `volatile` mount left in overlayfs's work directory, without
/// which the kernel refuses to mount the same upper directory again. The upper directory's
/// contents are the caller's to trust: the sandbox only guarantees them once a run returned.
fn forget_volatile_mount(work: &OwnedFd) {
    let _ = rustix::fs::unlinkat(
        work,
        "work/incompat/volatile/dirty",
        rustix::fs::AtFlags::empty(),
    );
    for leftover in ["work/incompat/volatile", "work/incompat"] {
        let _ = rustix::fs::unlinkat(work, leftover, rustix::fs::AtFlags::REMOVEDIR);
    }
}

/// Whether overlayfs must keep its markers in `user.overlay.*` xattrs: in any user namespace
/// but the initial one, `trusted.*` xattrs cannot be written.
pub(crate) fn needs_userxattr(ids: &IdMapping) -> bool {
    ids.uses_user_namespace() || !in_initial_user_namespace()
}

fn in_initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| {
        let fields: Vec<&str> = map.split_whitespace().collect();
        fields == ["0", "0", "4294967295"]
    })
}

/// Mounts the overlay of `lower` on the `upper` directory itself (the upper's own entry is
/// then hidden in this private mount namespace; overlayfs keeps its reference).
pub(crate) fn mount_overlay(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    userxattr: bool,
) -> SetupResult<()> {
    let lower_fds = lower
        .iter()
        .map(|dir| open_host(dir, true))
        .collect::<SetupResult<Vec<_>>>()?;
    let upper_fd = open_host(upper, true)?;
    let work_fd = open_host(work, true)?;
    forget_volatile_mount(&work_fd);
    let options = overlay_options(&lower_fds, upper_fd.as_fd(), work_fd.as_fd(), userxattr);
    mount_overlay_volatile(&fd_path(upper_fd.as_fd()), &options).map_err(|errno| {
        format!(
            "{}\nhint: overlayfs refuses this filesystem as upper directory (overlayfs, some \
             network filesystems) or this kernel in a user namespace (Linux < 5.11); \
             Snapshotter::detect falls back to the copying snapshotter",
            failed(
                format!(
                    "mounting overlayfs ({} lower directories) on {}",
                    lower.len(),
                    upper.display()
                ),
                errno,
            )
        )
    })?;
    // overlayfs mounts read-only, saying so only in the kernel log, when it cannot use the
    // work directory: say it here, before anything fails with a puzzling EROFS.
    let mounted = open_host(upper, true)?;
    let read_only = rustix::fs::fstatvfs(&mounted)
        .map(|stat| stat.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
        .unwrap_or(false);
    if read_only {
        return Err(format!(
            "overlayfs on {} came up read-only: it cannot use the work directory {}\n\
             hint: give each run a fresh, empty work directory on the upper directory's \
             filesystem, owned by the user distill runs as",
            upper.display(),
            work.display()
        ));
    }
    Ok(())
}

/// The root being built: the mount points created so far are reported to the caller (for
/// removal) whether or not the whole setup succeeds.
pub(crate) struct PreparedRoot {
    root: Option<OwnedFd>,
    pub(crate) stubs: Vec<MountStub>,
    pub(crate) parents: Vec<SavedTimes>,
}

/// Mounts the root and everything in it. Runs in the new mount (and pid) namespace, after
/// the root has been made a private mount tree. Returns the stubs created even on failure.
pub(crate) fn prepare_root(spec: &SandboxSpec, ids: &IdMapping) -> (PreparedRoot, SetupResult<()>) {
    let mut builder = match mount_root(spec, ids).and_then(RootBuilder::new) {
        Ok(builder) => builder,
        Err(message) => {
            let nothing = PreparedRoot {
                root: None,
                stubs: Vec::new(),
                parents: Vec::new(),
            };
            return (nothing, Err(message));
        }
    };
    let result = builder.mount_all(spec, ids);
    let prepared = PreparedRoot {
        root: Some(builder.root),
        stubs: builder.stubs,
        parents: builder.parents,
    };
    (prepared, result)
}

/// Mounts the overlay (or binds the directory) that becomes `/`, and opens it.
fn mount_root(spec: &SandboxSpec, ids: &IdMapping) -> SetupResult<OwnedFd> {
    let target = match &spec.rootfs {
        Rootfs::Overlay { lower, upper, work } if !lower.is_empty() => {
            mount_overlay(lower, upper, work, needs_userxattr(ids))?;
            upper.clone()
        }
        Rootfs::Overlay { upper: dir, .. } | Rootfs::Directory(dir) => {
            let fd = open_host(dir, true)?;
            let path = fd_path(fd.as_fd());
            mount(
                Some(&path),
                &path,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(|errno| {
                failed(
                    format!("bind-mounting {} as the root", dir.display()),
                    errno,
                )
            })?;
            dir.clone()
        }
    };
    let root = open_host(&target, true)?;
    if matches!(&spec.rootfs, Rootfs::Overlay { lower, .. } if !lower.is_empty()) {
        let magic = rustix::fs::fstatfs(&root)
            .map_err(|errno| failed(format!("statfs {}", target.display()), errno))?
            .f_type;
        // `f_type`'s width differs between architectures.
        #[allow(clippy::useless_conversion)]
        let magic = i64::from(magic);
        if magic != OVERLAYFS_SUPER_MAGIC {
            return Err(format!(
                "{} is not the overlay just mounted (filesystem magic {magic:#x})",
                target.display()
            ));
        }
    }
    Ok(root)
}

impl PreparedRoot {
    /// Makes the prepared root `/`, detaching the host's tree from this namespace.
    pub(crate) fn pivot(self) -> SetupResult<()> {
        let root = self
            .root
            .ok_or_else(|| "the root was not mounted".to_owned())?;
        nix::unistd::fchdir(&root).map_err(|errno| failed("entering the root", errno))?;
        nix::unistd::pivot_root(".", ".").map_err(|errno| failed("pivot_root", errno))?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH)
            .map_err(|errno| failed("detaching the host's root", errno))?;
        nix::unistd::chdir("/").map_err(|errno| failed("chdir /", errno))
    }
}

/// What to create when a mount target is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

struct RootBuilder {
    root: OwnedFd,
    /// The root's path as the kernel names it, to turn created paths back into root-relative ones.
    root_name: PathBuf,
    /// The root's mount id: mount points created on other mounts (a tmpfs, a bind) are not
    /// in the snapshot and need no clean-up.
    root_mount: Option<u64>,
    stubs: Vec<MountStub>,
    parents: Vec<SavedTimes>,
}

/// Lexically clean, root-relative form of an absolute path inside the root; `None` when it
/// climbs with `..`.
fn relative_inside(path: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return None,
            Component::Normal(name) => clean.push(name),
        }
    }
    Some(clean)
}

/// Where symlink target `link`, found in directory `base` (root-relative), points inside
/// the root: `..` never climbs above the root, as with `RESOLVE_IN_ROOT`.
fn clamp_inside(base: &Path, link: &Path) -> PathBuf {
    let mut clean = if link.is_absolute() {
        PathBuf::new()
    } else {
        base.to_owned()
    };
    for component in link.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                clean.pop();
            }
            Component::Normal(name) => clean.push(name),
        }
    }
    clean
}

impl RootBuilder {
    fn new(root: OwnedFd) -> SetupResult<RootBuilder> {
        let root_name = kernel_name(root.as_fd())?;
        let root_mount = mount_id(root.as_fd());
        Ok(RootBuilder {
            root,
            root_name,
            root_mount,
            stubs: Vec::new(),
            parents: Vec::new(),
        })
    }

    /// Opens `rel` inside the root without following anything out of it.
    fn open(&self, rel: &Path) -> Result<OwnedFd, Errno> {
        let path: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        rustix::fs::openat2(
            &self.root,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// Opens `target` (absolute, inside the root), creating it and its missing parents.
    fn ensure(&mut self, target: &Path, kind: Kind) -> SetupResult<OwnedFd> {
        let rel = relative_inside(target)
            .ok_or_else(|| format!("mount target {} must not contain `..`", target.display()))?;
        self.ensure_relative(&rel, kind, 0)
    }

    /// `depth` counts the dangling symlinks followed so far (a loop ends at 40, like ELOOP).
    fn ensure_relative(&mut self, rel: &Path, kind: Kind, depth: u32) -> SetupResult<OwnedFd> {
        match self.open(rel) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(errno) => {
                return Err(failed(
                    format!("resolving /{} in the root", rel.display()),
                    errno,
                ))
            }
        }
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(format!("the root directory /{} is missing", rel.display()));
        };
        let parent_fd = self.ensure_relative(parent, Kind::Dir, depth)?;
        let parent_rel = self
            .relative_name(parent_fd.as_fd())
            .unwrap_or_else(|| parent.to_owned());
        // A dangling symlink: create what it points to, inside the root, as runc does.
        let is_symlink =
            rustix::fs::statat(&parent_fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(
                |stat| {
                    rustix::fs::FileType::from_raw_mode(stat.st_mode)
                        == rustix::fs::FileType::Symlink
                },
            );
        if is_symlink {
            if depth >= 40 {
                return Err(format!(
                    "mount target /{}: too many levels of symlinks",
                    rel.display()
                ));
            }
            let link = rustix::fs::readlinkat(&parent_fd, name, Vec::new())
                .map_err(|errno| failed(format!("reading symlink /{}", rel.display()), errno))?;
            let link = PathBuf::from(OsStr::from_bytes(link.as_bytes()));
            let next = clamp_inside(&parent_rel, &link);
            self.ensure_relative(&next, kind, depth + 1)?;
            return self.open(rel).map_err(|errno| {
                failed(
                    format!("opening created mount point /{}", rel.display()),
                    errno,
                )
            });
        }
        let in_snapshot =
            self.root_mount.is_none() || mount_id(parent_fd.as_fd()) == self.root_mount;
        if in_snapshot {
            self.save_times(parent_fd.as_fd(), &parent_rel);
        }
        let created = match kind {
            Kind::Dir => rustix::fs::mkdirat(&parent_fd, name, Mode::from_raw_mode(0o755)),
            Kind::File => rustix::fs::openat(
                &parent_fd,
                name,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .map(drop),
        };
        match created {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                return Err(format!(
                    "mount target /{} is a dangling symlink",
                    rel.display()
                ))
            }
            Err(errno) => {
                return Err(failed(
                    format!("creating mount point /{}", rel.display()),
                    errno,
                ))
            }
        }
        if in_snapshot {
            self.note_stub_created(parent_fd.as_fd(), &parent_rel);
            self.stubs.push(MountStub {
                path: parent_rel.join(name),
                is_dir: kind == Kind::Dir,
            });
        }
        self.open(rel).map_err(|errno| {
            failed(
                format!("opening created mount point /{}", rel.display()),
                errno,
            )
        })
    }

    /// `fd`'s path relative to the root, from the kernel's name for it.
    fn relative_name(&self, fd: BorrowedFd<'_>) -> Option<PathBuf> {
        let name = kernel_name(fd).ok()?;
        name.strip_prefix(&self.root_name)
            .ok()
            .map(Path::to_path_buf)
    }

    fn save_times(&mut self, dir: BorrowedFd<'_>, rel: &Path) {
        if self.parents.iter().any(|saved| saved.path == rel) {
            return;
        }
        if let Ok(stat) = rustix::fs::fstat(dir) {
            let mtime = (stat.st_mtime, stat.st_mtime_nsec as i64);
            self.parents.push(SavedTimes {
                path: rel.to_owned(),
                atime: (stat.st_atime, stat.st_atime_nsec as i64),
                mtime,
                mtime_with_stubs: mtime,
            });
        }
    }

    /// Notes `dir`'s modification time after a stub was created in it.
    fn note_stub_created(&mut self, dir: BorrowedFd<'_>, rel: &Path) {
        let Ok(stat) = rustix::fs::fstat(dir) else {
            return;
        };
        if let Some(saved) = self.parents.iter_mut().find(|saved| saved.path == rel) {
            saved.mtime_with_stubs = (stat.st_mtime, stat.st_mtime_nsec as i64);
        }
    }

    fn mount_on(
        &self,
        target: &OwnedFd,
        what: &Path,
        source: Option<&str>,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SetupResult<()> {
        mount(source, &fd_path(target.as_fd()), fstype, flags, data).map_err(|errno| {
            failed(
                format!("mounting {} on {}", source.unwrap_or("?"), what.display()),
                errno,
            )
        })
    }

    /// Makes the mount now at `target` read-only, keeping the flags a user namespace locks.
    fn remount_read_only(&self, target: &Path) -> SetupResult<()> {
        let rel = relative_inside(target).unwrap_or_default();
        let fd = self
            .open(&rel)
            .map_err(|errno| failed(format!("reopening {}", target.display()), errno))?;
        let current = rustix::fs::fstatvfs(&fd)
            .map_err(|errno| failed(format!("statvfs {}", target.display()), errno))?
            .f_flag;
        let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        for (statvfs_flag, mount_flag) in [
            (rustix::fs::StatVfsMountFlags::NOSUID, MsFlags::MS_NOSUID),
            (rustix::fs::StatVfsMountFlags::NODEV, MsFlags::MS_NODEV),
            (rustix::fs::StatVfsMountFlags::NOEXEC, MsFlags::MS_NOEXEC),
            (rustix::fs::StatVfsMountFlags::NOATIME, MsFlags::MS_NOATIME),
            (
                rustix::fs::StatVfsMountFlags::NODIRATIME,
                MsFlags::MS_NODIRATIME,
            ),
            (
                rustix::fs::StatVfsMountFlags::RELATIME,
                MsFlags::MS_RELATIME,
            ),
        ] {
            if current.contains(statvfs_flag) {
                flags |= mount_flag;
            }
        }
        mount(None, &fd_path(fd.as_fd()), None, flags, None)
            .map_err(|errno| failed(format!("making {} read-only", target.display()), errno))
    }

    fn bind(&mut self, source: &Path, target: &Path, read_only: bool) -> SetupResult<()> {
        let source_fd = open_host(source, false)?;
        let is_dir = rustix::fs::fstat(&source_fd)
            .map(|stat| {
                rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory
            })
            .map_err(|errno| failed(format!("stat {}", source.display()), errno))?;
        let target_fd = self.ensure(target, if is_dir { Kind::Dir } else { Kind::File })?;
        let source_path = fd_path(source_fd.as_fd());
        mount(
            Some(&source_path),
            &fd_path(target_fd.as_fd()),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .map_err(|errno| {
            failed(
                format!("binding {} on {}", source.display(), target.display()),
                errno,
            )
        })?;
        if read_only {
            self.remount_read_only(target)?;
        }
        Ok(())
    }

    fn tmpfs(&mut self, target: &Path, size: Option<u64>, mode: u32) -> SetupResult<()> {
        let target_fd = self.ensure(target, Kind::Dir)?;
        let mut data = format!("mode={:o}", mode & 0o7777);
        if let Some(size) = size {
            data.push_str(&format!(",size={size}"));
        }
        self.mount_on(
            &target_fd,
            target,
            Some("tmpfs"),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(&data),
        )
    }

    /// A writable view of host directory `source` whose writes land in a tmpfs and vanish
    /// with the sandbox: an overlay stacked on a tmpfs mounted at the target itself.
    fn scratch_bind(&mut self, source: &Path, target: &Path, userxattr: bool) -> SetupResult<()> {
        let source_fd = open_host(source, true)?;
        let source_stat = rustix::fs::fstat(&source_fd)
            .map_err(|errno| failed(format!("stat {}", source.display()), errno))?;
        self.tmpfs(target, None, 0o755)?;
        let rel = relative_inside(target).unwrap_or_default();
        let scratch = self
            .open(&rel)
            .map_err(|errno| failed(format!("reopening {}", target.display()), errno))?;
        let mut dirs = Vec::new();
        for name in ["upper", "work"] {
            rustix::fs::mkdirat(&scratch, name, Mode::from_raw_mode(0o755)).map_err(|errno| {
                failed(format!("creating {name} on {}", target.display()), errno)
            })?;
            let dir = rustix::fs::openat(
                &scratch,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|errno| failed(format!("opening {name} on {}", target.display()), errno))?;
            dirs.push(dir);
        }
        // The overlay's root takes the upper directory's owner and mode: give it the source's.
        let upper_name = fd_path(dirs[0].as_fd());
        rustix::fs::chown(
            &upper_name,
            Some(rustix::fs::Uid::from_raw(source_stat.st_uid)),
            Some(rustix::fs::Gid::from_raw(source_stat.st_gid)),
        )
        .map_err(|errno| {
            failed(
                format!("chown the writable layer of {}", target.display()),
                errno,
            )
        })?;
        rustix::fs::chmod(
            &upper_name,
            Mode::from_raw_mode(source_stat.st_mode & 0o7777),
        )
        .map_err(|errno| {
            failed(
                format!("chmod the writable layer of {}", target.display()),
                errno,
            )
        })?;
        let lower = [source_fd];
        let options = overlay_options(&lower, dirs[0].as_fd(), dirs[1].as_fd(), userxattr);
        mount_overlay_volatile(&fd_path(scratch.as_fd()), &options)
            .map_err(|errno| failed(format!("mounting overlayfs on {}", target.display()), errno))
    }

    fn mount_all(&mut self, spec: &SandboxSpec, ids: &IdMapping) -> SetupResult<()> {
        let system = &spec.system_mounts;
        if system.proc {
            self.mount_proc()?;
        }
        if system.dev {
            self.mount_dev(ids)?;
        }
        if system.sys {
            self.mount_sys()?;
        }
        if let Some(source) = &system.resolv_conf {
            self.bind(source, Path::new("/etc/resolv.conf"), true)?;
        }
        if let Some(source) = &system.hosts {
            self.bind(source, Path::new("/etc/hosts"), true)?;
        }
        for extra in &spec.mounts {
            match &extra.kind {
                MountKind::Bind { source, read_only } => {
                    self.bind(source, &extra.target, *read_only)?
                }
                MountKind::Tmpfs { size, mode } => self.tmpfs(&extra.target, *size, *mode)?,
                MountKind::ScratchBind { source } => {
                    self.scratch_bind(source, &extra.target, needs_userxattr(ids))?
                }
            }
        }
        // Last: the mount points above may have had to be created in the root.
        if spec.read_only_root {
            self.remount_read_only(Path::new("/"))?;
        }
        Ok(())
    }

    fn mount_proc(&mut self) -> SetupResult<()> {
        let target = self.ensure(Path::new("/proc"), Kind::Dir)?;
        self.mount_on(
            &target,
            Path::new("/proc"),
            Some("proc"),
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        )
        .map_err(|message| {
            format!(
                "{message}\nhint: a new procfs cannot be mounted where the host's /proc is partly \
                 hidden (as in an unprivileged container); run distill with access to an unmasked /proc"
            )
        })?;
        for name in PROC_READ_ONLY {
            let path = Path::new("/proc").join(name);
            let Ok(fd) = self.open(&relative_inside(&path).unwrap_or_default()) else {
                continue;
            };
            let fd_name = fd_path(fd.as_fd());
            mount(
                Some(&fd_name),
                &fd_name,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(|errno| failed(format!("binding {}", path.display()), errno))?;
            self.remount_read_only(&path)?;
        }
        let null = open_host(Path::new("/dev/null"), false)?;
        for name in PROC_MASKED_FILES {
            let path = Path::new("/proc").join(name);
            let Ok(fd) = self.open(&relative_inside(&path).unwrap_or_default()) else {
                continue;
            };
            mount(
                Some(&fd_path(null.as_fd())),
                &fd_path(fd.as_fd()),
                None,
                MsFlags::MS_BIND,
                None,
            )
            .map_err(|errno| failed(format!("masking {}", path.display()), errno))?;
        }
        for name in PROC_MASKED_DIRS {
            let path = Path::new("/proc").join(name);
            if let Ok(fd) = self.open(&relative_inside(&path).unwrap_or_default()) {
                self.mount_on(
                    &fd,
                    &path,
                    Some("tmpfs"),
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    Some("size=0"),
                )?;
            }
        }
        Ok(())
    }

    fn mount_dev(&mut self, ids: &IdMapping) -> SetupResult<()> {
        // A device the host lacks (no /dev/tty in some containers) is left out.
        let mut hosts = Vec::new();
        for name in DEVICES {
            match rustix::fs::open(
                Path::new("/dev").join(name),
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => hosts.push((name, fd)),
                Err(Errno::NOENT) => {}
                Err(errno) => return Err(failed(format!("opening the host's /dev/{name}"), errno)),
            }
        }
        let dev = Path::new("/dev");
        let target = self.ensure(dev, Kind::Dir)?;
        self.mount_on(
            &target,
            dev,
            Some("tmpfs"),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        )?;
        let dev_fd = self
            .open(Path::new("dev"))
            .map_err(|errno| failed("opening the new /dev", errno))?;
        for (name, host) in &hosts {
            let node = rustix::fs::openat(
                &dev_fd,
                *name,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            )
            .map_err(|errno| failed(format!("creating /dev/{name}"), errno))?;
            drop(node);
            let node = rustix::fs::openat(
                &dev_fd,
                *name,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|errno| failed(format!("opening /dev/{name}"), errno))?;
            mount(
                Some(&fd_path(host.as_fd())),
                &fd_path(node.as_fd()),
                None,
                MsFlags::MS_BIND,
                None,
            )
            .map_err(|errno| failed(format!("binding the host's /dev/{name}"), errno))?;
        }
        for dir in ["pts", "shm"] {
            rustix::fs::mkdirat(&dev_fd, dir, Mode::from_raw_mode(0o755))
                .map_err(|errno| failed(format!("creating /dev/{dir}"), errno))?;
        }
        let pts = self
            .open(Path::new("dev/pts"))
            .map_err(|errno| failed("opening /dev/pts", errno))?;
        // gid 5 is the `tty` group in Debian and most images; name it only if it exists here
        // (a user namespace the program itself runs in may lack it: then retry without).
        let base_options = "newinstance,ptmxmode=0666,mode=0620";
        let with_tty_group = format!("{base_options},gid=5");
        let pts_path = fd_path(pts.as_fd());
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
        let mounted = if ids.maps_gid(5) {
            match mount(
                Some("devpts"),
                &pts_path,
                Some("devpts"),
                flags,
                Some(&with_tty_group),
            ) {
                Err(nix::errno::Errno::EINVAL) => mount(
                    Some("devpts"),
                    &pts_path,
                    Some("devpts"),
                    flags,
                    Some(base_options),
                ),
                outcome => outcome,
            }
        } else {
            mount(
                Some("devpts"),
                &pts_path,
                Some("devpts"),
                flags,
                Some(base_options),
            )
        };
        mounted.map_err(|errno| failed("mounting devpts on /dev/pts", errno))?;
        let shm = self
            .open(Path::new("dev/shm"))
            .map_err(|errno| failed("opening /dev/shm", errno))?;
        self.mount_on(
            &shm,
            Path::new("/dev/shm"),
            Some("shm"),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=1777,size=65536k"),
        )?;
        for (link, points_to) in [
            ("ptmx", "pts/ptmx"),
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            rustix::fs::symlinkat(points_to, &dev_fd, link)
                .map_err(|errno| failed(format!("creating /dev/{link}"), errno))?;
        }
        Ok(())
    }

    fn mount_sys(&mut self) -> SetupResult<()> {
        let sys = Path::new("/sys");
        let target = self.ensure(sys, Kind::Dir)?;
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        match mount(
            Some("sysfs"),
            &fd_path(target.as_fd()),
            Some("sysfs"),
            flags,
            None,
        ) {
            Ok(()) => {}
            // A user namespace that does not own the network namespace (host network) may not
            // mount sysfs: bind the host's, read-only, as rootless runc does.
            Err(nix::errno::Errno::EPERM) => {
                let host = open_host(sys, true)?;
                mount(
                    Some(&fd_path(host.as_fd())),
                    &fd_path(target.as_fd()),
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )
                .map_err(|errno| failed("binding the host's /sys", errno))?;
                self.remount_read_only(sys)?;
            }
            Err(errno) => return Err(failed("mounting sysfs on /sys", errno)),
        }
        if let Ok(firmware) = self.open(Path::new("sys/firmware")) {
            self.mount_on(
                &firmware,
                Path::new("/sys/firmware"),
                Some("tmpfs"),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0"),
            )?;
        }
        Ok(())
    }
}

/// The id of the mount `fd` is on (`None` before Linux 5.8).
fn mount_id(fd: BorrowedFd<'_>) -> Option<u64> {
    rustix::fs::statx(
        fd,
        "",
        rustix::fs::AtFlags::EMPTY_PATH,
        rustix::fs::StatxFlags::MNT_ID,
    )
    .ok()
    .filter(|statx| statx.stx_mask & rustix::fs::StatxFlags::MNT_ID.bits() != 0)
    .map(|statx| statx.stx_mnt_id)
}

/// The kernel's name for what `fd` refers to (`readlink /proc/self/fd/N`).
fn kernel_name(fd: BorrowedFd<'_>) -> SetupResult<PathBuf> {
    let link = rustix::fs::readlink(fd_path(fd), Vec::new())
        .map_err(|errno| failed("reading the root's path", errno))?;
    Ok(PathBuf::from(OsStr::from_bytes(link.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_inside_strips_root_and_refuses_parent() {
        assert_eq!(
            relative_inside(Path::new("/etc/./hosts")),
            Some(PathBuf::from("etc/hosts"))
        );
        assert_eq!(relative_inside(Path::new("/")), Some(PathBuf::new()));
        assert_eq!(relative_inside(Path::new("/a/../b")), None);
    }

    #[test]
    fn symlink_targets_stay_inside_the_root() {
        let base = Path::new("etc");
        assert_eq!(
            clamp_inside(base, Path::new("/run/x")),
            PathBuf::from("run/x")
        );
        assert_eq!(
            clamp_inside(base, Path::new("../../../../run/x")),
            PathBuf::from("run/x")
        );
        assert_eq!(
            clamp_inside(base, Path::new("./a/../b")),
            PathBuf::from("etc/b")
        );
    }

    #[test]
    fn overlay_options_list_top_layer_first() {
        let open = |path: &str| open_host(Path::new(path), true).expect("open");
        let lower = vec![open("/"), open("/tmp")];
        let upper = open("/");
        let options = overlay_options(&lower, upper.as_fd(), upper.as_fd(), true);
        let top = lower[1].as_raw_fd();
        let bottom = lower[0].as_raw_fd();
        assert!(options.starts_with(&format!(
            "lowerdir=/proc/self/fd/{top}:/proc/self/fd/{bottom},upperdir="
        )));
        assert!(options.ends_with(",index=off,metacopy=off,userxattr"));
        let rooted = overlay_options(&lower, upper.as_fd(), upper.as_fd(), false);
        assert!(rooted.ends_with(",redirect_dir=off"));
    }
}
