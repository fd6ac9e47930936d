//! End-to-end tests: real namespaces, real overlayfs, a busybox root.
//!
//! They need root (to create users, and for the root-mode runs) and a static busybox
//! (Debian's `busybox-static`), so they run only with `DISTILL_E2E=1`, where a missing
//! requirement fails the test; otherwise each prints "skipped" and passes. The rootless
//! tests run the `distill-sandbox` driver as an ordinary user through `setpriv`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use distill_sandbox::{
    Error, ExitStatus, IdMapping, LastLines, Mount, MountKind, NetworkMode, OutputSink, Rootfs,
    Sandbox, SandboxSpec, Signal, Snapshotter, SnapshotterKind, Stdio, Stream,
};

const DRIVER: &str = env!("CARGO_BIN_EXE_distill-sandbox");

const APPLETS: &[&str] = &[
    "sh", "echo", "id", "hostname", "ls", "cat", "touch", "rm", "mkdir", "sleep", "pwd", "chown",
    "stat", "kill", "mount", "true", "false", "test", "wc", "head", "mv",
];

/// Whether end-to-end tests are enabled; prints "skipped" when not.
fn e2e(test: &str) -> bool {
    if std::env::var_os("DISTILL_E2E").is_some_and(|value| value == "1") {
        assert!(
            rustix::process::geteuid().is_root(),
            "DISTILL_E2E=1 but not running as root: the sandbox end-to-end tests need root"
        );
        true
    } else {
        eprintln!(
            "{test}: skipped (set DISTILL_E2E=1 to run, as root, with busybox-static installed)"
        );
        false
    }
}

/// Whether an ELF file is statically linked (has no PT_INTERP program header).
fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let read_u64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let read_u16 = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2 bytes"));
    let (offset, size, count) = (
        read_u64(0x20) as usize,
        read_u16(0x36) as usize,
        read_u16(0x38) as usize,
    );
    (0..count).all(|index| {
        let at = offset + index * size;
        bytes
            .get(at..at + 4)
            .is_some_and(|kind| kind != 3u32.to_le_bytes())
    })
}

fn busybox() -> PathBuf {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|path| is_static_elf(path))
        .expect("a static busybox at /bin/busybox: apt-get install -y busybox-static")
}

/// A scratch area readable by every user (the rootless tests run as another user).
fn scratch() -> tempfile::TempDir {
    let temp = tempfile::Builder::new()
        .prefix("distill-sandbox-test")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    temp
}

/// A busybox root at `dir`: /bin with applets, /etc/passwd and /etc/group, /tmp.
fn make_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::fs::copy(busybox(), bin.join("busybox")).expect("copy busybox");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("symlink applet");
    }
    std::fs::create_dir_all(dir.join("etc")).expect("mkdir etc");
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").expect("group");
    std::fs::create_dir_all(dir.join("tmp")).expect("mkdir tmp");
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod tmp");
}

/// lower/ (a busybox root), upper/, work/ in a fresh scratch area.
struct Layout {
    temp: tempfile::TempDir,
}

impl Layout {
    fn new() -> Layout {
        let temp = scratch();
        make_rootfs(&temp.path().join("lower"));
        for dir in ["upper", "work"] {
            std::fs::create_dir(temp.path().join(dir)).expect("mkdir");
        }
        Layout { temp }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.temp.path().join(rel)
    }

    fn rootfs(&self) -> Rootfs {
        Rootfs::Overlay {
            lower: vec![self.path("lower")],
            upper: self.path("upper"),
            work: self.path("work"),
        }
    }

    fn spec(&self, script: &str) -> SandboxSpec {
        let mut spec =
            SandboxSpec::new(self.rootfs(), vec!["sh".into(), "-c".into(), script.into()]);
        spec.env = vec!["PATH=/bin".into()];
        spec
    }
}

fn sandbox() -> Sandbox {
    Sandbox::with_init_program(DRIVER).id_mapping(IdMapping::Host)
}

#[derive(Default)]
struct Captured {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl OutputSink for Captured {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.extend_from_slice(bytes),
            Stream::Stderr => self.stderr.extend_from_slice(bytes),
        }
    }
}

fn run(spec: &SandboxSpec) -> (ExitStatus, String, String) {
    let mut captured = Captured::default();
    let status = sandbox().run(spec, &mut captured).expect("sandbox run");
    (
        status,
        String::from_utf8_lossy(&captured.stdout).into_owned(),
        String::from_utf8_lossy(&captured.stderr).into_owned(),
    )
}

fn file_type(path: &Path) -> Option<(bool, u64)> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    let is_char = metadata.mode() & libc::S_IFMT == libc::S_IFCHR;
    Some((is_char, metadata.rdev()))
}

#[test]
fn echo_output_is_captured() {
    if !e2e("echo_output_is_captured") {
        return;
    }
    let layout = Layout::new();
    let (status, stdout, stderr) = run(&layout.spec("echo hi; echo oops >&2"));
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(stdout, "hi\n");
    assert_eq!(stderr, "oops\n");
}

#[test]
fn exit_codes_and_signals_propagate() {
    if !e2e("exit_codes_and_signals_propagate") {
        return;
    }
    let layout = Layout::new();
    assert_eq!(run(&layout.spec("exit 7")).0, ExitStatus::Exited(7));
    assert_eq!(run(&layout.spec("kill -9 $$")).0, ExitStatus::Signaled(9));
    let mut tail = LastLines::new(2);
    let status = sandbox()
        .run(
            &layout.spec("echo one; echo two; echo three >&2; exit 1"),
            &mut tail,
        )
        .expect("run");
    assert_eq!(status.code(), 1);
    assert_eq!(tail.lines(), ["two", "three"]);
}

#[test]
fn env_cwd_and_ids_are_applied() {
    if !e2e("env_cwd_and_ids_are_applied") {
        return;
    }
    let layout = Layout::new();
    let mut spec = layout.spec("echo $GREETING; pwd; id -u; id -g; id -G; echo $HOME");
    spec.env.push("GREETING=hello world".into());
    spec.cwd = PathBuf::from("/srv/app");
    spec.uid = 1000;
    spec.gid = 1001;
    spec.additional_gids = vec![1001, 27];
    let (status, stdout, stderr) = run(&spec);
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
    assert_eq!(stdout, "hello world\n/srv/app\n1000\n1001\n1001 27\n\n");
    // The working directory was created, owned by root, in the diff.
    assert!(layout.path("upper/srv/app").is_dir());
    assert!(!layout.path("lower/srv").exists());
}

#[test]
fn writes_land_in_upper_and_deletions_are_whiteouts() {
    if !e2e("writes_land_in_upper_and_deletions_are_whiteouts") {
        return;
    }
    let layout = Layout::new();
    let (status, _, stderr) =
        run(&layout.spec("echo data > /new-file && mkdir -p /opt/x && rm /etc/passwd"));
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
    assert_eq!(
        std::fs::read_to_string(layout.path("upper/new-file")).expect("upper file"),
        "data\n"
    );
    assert!(layout.path("upper/opt/x").is_dir());
    assert!(!layout.path("lower/new-file").exists());
    assert_eq!(
        file_type(&layout.path("upper/etc/passwd")),
        Some((true, 0)),
        "whiteout char 0/0"
    );
    assert!(layout.path("lower/etc/passwd").is_file());
    // The mount points the init created (/proc, /dev, /sys, /etc/resolv.conf, /etc/hosts)
    // are gone from the diff.
    for stub in ["proc", "dev", "sys", "etc/resolv.conf", "etc/hosts"] {
        assert!(
            !layout.path("upper").join(stub).exists(),
            "stub {stub} left in upper"
        );
    }
}

#[test]
fn hostname_network_and_system_mounts() {
    if !e2e("hostname_network_and_system_mounts") {
        return;
    }
    let layout = Layout::new();
    let mut spec = layout.spec(
        "hostname; ls /sys/class/net; ls /dev; echo x > /dev/null; head -c 4 /dev/zero | wc -c; \
         cat /proc/1/status | head -1; touch /sys/x 2>/dev/null || echo sys-ro; test -s /etc/resolv.conf && echo resolv",
    );
    spec.hostname = "distill-test".into();
    spec.network = NetworkMode::None;
    let (status, stdout, stderr) = run(&spec);
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "distill-test");
    assert_eq!(lines[1], "lo", "only the loopback interface: {stdout}");
    for device in [
        "full", "null", "ptmx", "pts", "random", "shm", "tty", "urandom", "zero",
    ] {
        assert!(lines.contains(&device), "/dev/{device} missing: {stdout}");
    }
    assert!(lines.contains(&"4"));
    assert!(
        lines.iter().any(|line| line.starts_with("Name:")),
        "{stdout}"
    );
    assert!(lines.contains(&"sys-ro"));
    assert!(lines.contains(&"resolv"));
}

#[test]
fn extra_mounts_bind_and_tmpfs() {
    if !e2e("extra_mounts_bind_and_tmpfs") {
        return;
    }
    let layout = Layout::new();
    let shared = layout.path("shared");
    let cache = layout.path("cache");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::create_dir(&cache).expect("mkdir");
    std::fs::write(shared.join("input"), "from host\n").expect("write");
    std::fs::write(shared.join("other"), "").expect("write");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).expect("chmod");
    let mut spec = layout.spec(
        "cat /in/input; touch /in/x 2>/dev/null || echo ro; echo kept > /cache/out; \
         echo gone > /scratch/t; ls /scratch; \
         echo changed > /cow/input; rm /cow/other; cat /cow/input; ls /cow; stat -c %a /cow",
    );
    spec.mounts = vec![
        Mount::bind(&shared, "/in", true),
        Mount::bind(&cache, "/cache", false),
        Mount::tmpfs("/scratch"),
        Mount {
            target: "/cow".into(),
            kind: MountKind::ScratchBind {
                source: shared.clone(),
            },
        },
    ];
    let (status, stdout, stderr) = run(&spec);
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
    assert_eq!(stdout, "from host\nro\nt\nchanged\ninput\n750\n");
    assert_eq!(
        std::fs::read_to_string(cache.join("out")).expect("cache"),
        "kept\n"
    );
    // Writes to the scratch bind went nowhere.
    assert_eq!(
        std::fs::read_to_string(shared.join("input")).expect("input"),
        "from host\n"
    );
    assert!(shared.join("other").exists());
    for stub in ["in", "cache", "scratch", "cow"] {
        assert!(
            !layout.path("upper").join(stub).exists(),
            "stub {stub} left in upper"
        );
    }
}

#[test]
fn missing_command_is_an_exec_error() {
    if !e2e("missing_command_is_an_exec_error") {
        return;
    }
    let layout = Layout::new();
    let mut spec = layout.spec("");
    spec.args = vec!["no-such-program".into()];
    let error = sandbox()
        .run(&spec, &mut Captured::default())
        .expect_err("must fail");
    assert!(matches!(error, Error::Exec(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains("executable file not found in $PATH"),
        "{error}"
    );
    // A script whose interpreter is missing says so.
    let script = layout.path("lower/bin/script");
    std::fs::write(&script, "#!/bin/nonexistent\n").expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    spec.args = vec!["script".into()];
    let error = sandbox()
        .run(&spec, &mut Captured::default())
        .expect_err("must fail");
    assert!(error.to_string().contains("interpreter"), "{error}");
}

#[test]
fn cancel_kills_everything_and_reports_it() {
    if !e2e("cancel_kills_everything_and_reports_it") {
        return;
    }
    let layout = Layout::new();
    let spec = layout.spec("sleep 1000 & sleep 1000; echo not reached");
    let running = sandbox().spawn(&spec, Stdio::Capture).expect("spawn");
    let killer = running.killer();
    let started = Instant::now();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        killer.cancel();
    });
    let outcome = running.wait(&mut Captured::default());
    canceller.join().expect("thread");
    assert!(matches!(outcome, Err(Error::Cancelled)), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        !layout.path("upper/proc").exists(),
        "stubs removed after a cancel too"
    );
}

#[test]
fn forwarded_signal_reaches_the_command() {
    if !e2e("forwarded_signal_reaches_the_command") {
        return;
    }
    let layout = Layout::new();
    let spec = layout.spec("trap 'echo got TERM; exit 3' TERM; echo ready; sleep 1000 & wait");
    let running = sandbox().spawn(&spec, Stdio::Capture).expect("spawn");
    let killer = running.killer();
    let mut stdout = Vec::new();
    // Forward SIGTERM once the trap is in place, whatever the machine's load.
    let status = running
        .wait(&mut |stream: Stream, bytes: &[u8]| {
            if stream == Stream::Stdout {
                stdout.extend_from_slice(bytes);
                if bytes.starts_with(b"ready") {
                    killer.forward(Signal::TERM);
                }
            }
        })
        .expect("wait");
    assert_eq!(status, ExitStatus::Exited(3));
    assert_eq!(String::from_utf8_lossy(&stdout), "ready\ngot TERM\n");
}

#[test]
fn snapshotters_give_the_same_diff() {
    if !e2e("snapshotters_give_the_same_diff") {
        return;
    }
    let layout = Layout::new();
    for (path, content) in [
        ("site/index", "new"),
        ("srv/index", "old"),
        ("srv/other", "old"),
    ] {
        let file = layout.path("lower").join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, content).expect("write");
    }
    let sandbox = sandbox();
    let mut diffs = Vec::new();
    for kind in [SnapshotterKind::Overlay, SnapshotterKind::Copy] {
        let snapshotter = Snapshotter::new(&sandbox, kind);
        let view = snapshotter
            .prepare(&[layout.path("lower")], &layout.path(&format!("{kind:?}")))
            .expect("prepare");
        let script = "rm /etc/passwd; echo x > /etc/new; mkdir /data; rm -r /srv; mv /site /srv";
        let mut spec =
            SandboxSpec::new(view.rootfs(), vec!["sh".into(), "-c".into(), script.into()]);
        spec.env = vec!["PATH=/bin".into()];
        let (status, _, stderr) = {
            let mut captured = Captured::default();
            let status = sandbox.run(&spec, &mut captured).expect("run");
            (
                status,
                (),
                String::from_utf8_lossy(&captured.stderr).into_owned(),
            )
        };
        assert_eq!(status, ExitStatus::Exited(0), "{kind:?}: {stderr}");
        let diff = view.commit().expect("commit");
        let mut entries: Vec<String> = walk(&diff.path);
        entries.sort();
        diffs.push(entries);
        assert_eq!(
            std::fs::read_to_string(diff.path.join("srv/index")).expect("moved file"),
            "new",
            "{kind:?}"
        );
        assert!(!layout.path(&format!("{kind:?}/rootfs")).exists());
        assert!(!layout.path(&format!("{kind:?}/work")).exists());
    }
    assert_eq!(
        diffs[0],
        [
            "data/",
            "etc/",
            "etc/new",
            "etc/passwd (whiteout)",
            "site (whiteout)",
            "srv/ (opaque)",
            "srv/index",
        ]
    );
    assert_eq!(diffs[0], diffs[1]);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let rel = path
            .strip_prefix(dir)
            .expect("prefix")
            .display()
            .to_string();
        let metadata = std::fs::symlink_metadata(&path).expect("lstat");
        if metadata.is_dir() {
            let opaque = ["trusted.overlay.opaque", "user.overlay.opaque"].iter().any(|name| {
                let mut value = [0u8; 4];
                matches!(rustix::fs::lgetxattr(&path, *name, &mut value[..]), Ok(1) if value[0] == b'y')
            });
            found.push(if opaque {
                format!("{rel}/ (opaque)")
            } else {
                format!("{rel}/")
            });
            found.extend(
                walk(&path)
                    .into_iter()
                    .map(|child| format!("{rel}/{child}")),
            );
        } else if file_type(&path) == Some((true, 0)) {
            found.push(format!("{rel} (whiteout)"));
        } else {
            found.push(rel);
        }
    }
    found
}

/// Creates (once) a system-less ordinary user for the rootless tests; returns its uid.
fn ordinary_user(name: &str) -> u32 {
    let exists = Command::new("id").arg("-u").arg(name).output().expect("id");
    if !exists.status.success() {
        let created = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", name])
            .status()
            .expect("useradd (package passwd)");
        assert!(created.success(), "useradd {name} failed");
    }
    let output = Command::new("id").arg("-u").arg(name).output().expect("id");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("uid")
}

/// Runs the driver as `uid` (its primary group too) with `args`.
fn run_as(uid: u32, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg("--reset-env")
        .arg(DRIVER)
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

fn chown_tree(path: &Path, uid: u32) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{uid}"))
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success());
}

#[test]
fn rootless_single_id_mapping() {
    if !e2e("rootless_single_id_mapping") {
        return;
    }
    let uid = ordinary_user("distill-rootless");
    let layout = Layout::new();
    // A rootless store holds files its user extracted: owned by that user.
    chown_tree(layout.temp.path(), uid);
    let (lower, upper, work) = (
        layout.path("lower"),
        layout.path("upper"),
        layout.path("work"),
    );
    let output = run_as(
        uid,
        &[
            "run",
            "--id-map",
            "single",
            "--network",
            "none",
            "--lower",
            lower.to_str().expect("utf-8"),
            "--upper",
            upper.to_str().expect("utf-8"),
            "--work",
            work.to_str().expect("utf-8"),
            "--env",
            "PATH=/bin",
            "--",
            "sh",
            "-c",
            "id -u; echo x > /made; rm /etc/passwd; ls /sys/class/net",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rootless run failed: {stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "0\nlo\n");
    let made = std::fs::symlink_metadata(upper.join("made")).expect("upper file");
    assert_eq!(made.uid(), uid, "root in the sandbox is the user outside");
    assert_eq!(file_type(&upper.join("etc/passwd")), Some((true, 0)));
    // Only root exists inside: asking for another uid is refused up front.
    let refused = run_as(
        uid,
        &[
            "run",
            "--id-map",
            "single",
            "--user",
            "1000",
            "--lower",
            lower.to_str().expect("utf-8"),
            "--upper",
            upper.to_str().expect("utf-8"),
            "--work",
            work.to_str().expect("utf-8"),
            "--",
            "/bin/true",
        ],
    );
    assert_eq!(refused.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("uid 1000 does not exist in the sandbox")
    );
}

#[test]
fn rootless_subordinate_ids() {
    if !e2e("rootless_subordinate_ids") {
        return;
    }
    let (uid, start) = subordinate_user();
    let layout = Layout::new();
    chown_tree(layout.temp.path(), uid);
    let (lower, upper, work) = (
        layout.path("lower"),
        layout.path("upper"),
        layout.path("work"),
    );
    let output = run_as(
        uid,
        &[
            "run",
            "--lower",
            lower.to_str().expect("utf-8"),
            "--upper",
            upper.to_str().expect("utf-8"),
            "--work",
            work.to_str().expect("utf-8"),
            "--env",
            "PATH=/bin",
            "--",
            "sh",
            "-c",
            "id -u; touch /owned; chown 5:5 /owned",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "subordinate run failed: {stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "0\n");
    let owned = std::fs::symlink_metadata(upper.join("owned")).expect("upper file");
    assert_eq!(
        (owned.uid(), owned.gid()),
        (start + 4, start + 4),
        "id 5 inside is subordinate id start+4"
    );
    let as_user = run_as(
        uid,
        &[
            "run",
            "--user",
            "1000:1000",
            "--lower",
            lower.to_str().expect("utf-8"),
            "--upper",
            upper.to_str().expect("utf-8"),
            "--work",
            work.to_str().expect("utf-8"),
            "--env",
            "PATH=/bin",
            "--",
            "id",
            "-u",
        ],
    );
    assert!(
        as_user.status.success(),
        "{}",
        String::from_utf8_lossy(&as_user.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&as_user.stdout), "1000\n");
}

#[test]
fn probe_reports_overlay_support() {
    if !e2e("probe_reports_overlay_support") {
        return;
    }
    let temp = scratch();
    let sandbox = sandbox();
    let (snapshotter, refusal) =
        Snapshotter::detect(&sandbox, &temp.path().join("probe")).expect("probe");
    eprintln!("overlay as root: {:?} {refusal:?}", snapshotter.kind());
    assert_eq!(
        snapshotter.kind() == SnapshotterKind::Overlay,
        refusal.is_none()
    );
    assert!(
        !temp.path().join("probe").exists(),
        "probe directory removed"
    );
}

#[test]
fn symlinks_in_the_image_never_lead_mounts_out_of_the_root() {
    if !e2e("symlinks_in_the_image_never_lead_mounts_out_of_the_root") {
        return;
    }
    let layout = Layout::new();
    let outside = layout.path("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    // The image's /etc and /proc are absolute symlinks to a host directory.
    let lower = layout.path("lower");
    std::fs::remove_dir_all(lower.join("etc")).expect("rm etc");
    std::os::unix::fs::symlink(outside.join("etc"), lower.join("etc")).expect("symlink etc");
    std::os::unix::fs::symlink(outside.join("proc"), lower.join("proc")).expect("symlink proc");
    let (status, stdout, stderr) = run(&layout
        .spec("test -s /etc/resolv.conf && echo inside; ls /proc/self/fd >/dev/null && echo proc"));
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
    assert_eq!(stdout, "inside\nproc\n");
    let leaked: Vec<_> = std::fs::read_dir(&outside).expect("read_dir").collect();
    assert!(
        leaked.is_empty(),
        "mount points created outside the root: {leaked:?}"
    );
}

#[test]
fn many_lower_layers_fit_in_the_mount_options() {
    if !e2e("many_lower_layers_fit_in_the_mount_options") {
        return;
    }
    let layout = Layout::new();
    let mut lower = vec![layout.path("lower")];
    // Long names would overflow the one-page option string if paths were spelled out.
    for index in 0..150 {
        let layer = layout.path(&format!(
            "layer-with-a-rather-long-directory-name-{index:03}"
        ));
        std::fs::create_dir_all(layer.join("layers")).expect("mkdir");
        std::fs::write(layer.join("layers").join(index.to_string()), "").expect("write");
        lower.push(layer);
    }
    let mut spec = layout.spec("ls /layers | wc -l");
    spec.rootfs = Rootfs::Overlay {
        lower,
        upper: layout.path("upper"),
        work: layout.path("work"),
    };
    let (status, stdout, stderr) = run(&spec);
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
    assert_eq!(stdout.trim(), "150");
}

#[test]
fn rootless_snapshotters_give_the_same_diff() {
    if !e2e("rootless_snapshotters_give_the_same_diff") {
        return;
    }
    let uid = ordinary_user("distill-rootless");
    let layout = Layout::new();
    chown_tree(layout.temp.path(), uid);
    let lower = layout.path("lower");
    let mut diffs = Vec::new();
    for kind in ["overlay", "copy"] {
        let snapshot = layout.path(kind);
        let output = run_as(
            uid,
            &[
                "run",
                "--id-map",
                "single",
                "--snapshot",
                snapshot.to_str().expect("utf-8"),
                "--parent",
                lower.to_str().expect("utf-8"),
                "--snapshotter",
                kind,
                "--env",
                "PATH=/bin",
                "--",
                "sh",
                "-c",
                "rm /etc/passwd; echo x > /etc/new; mkdir /data",
            ],
        );
        assert!(
            output.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let upper = snapshot.join("upper");
        let mut entries = walk(&upper);
        entries.sort();
        diffs.push(entries);
        let new = std::fs::symlink_metadata(upper.join("etc/new")).expect("new file");
        assert_eq!(new.uid(), uid, "{kind}");
    }
    assert_eq!(
        diffs[0],
        ["data/", "etc/", "etc/new", "etc/passwd (whiteout)"]
    );
    assert_eq!(diffs[0], diffs[1]);
}

/// Pids of processes whose command line is exactly `args`.
fn processes_running(args: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = args.iter().flat_map(|arg| arg.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| cmdline == wanted)
        })
        .collect()
}

#[test]
fn sandbox_dies_with_its_caller() {
    if !e2e("sandbox_dies_with_its_caller") {
        return;
    }
    let layout = Layout::new();
    let (lower, upper, work) = (
        layout.path("lower"),
        layout.path("upper"),
        layout.path("work"),
    );
    let marker = ["sleep", "4242"];
    let mut caller = Command::new(DRIVER)
        .args([
            "run",
            "--lower",
            lower.to_str().expect("utf-8"),
            "--upper",
            upper.to_str().expect("utf-8"),
        ])
        .args([
            "--work",
            work.to_str().expect("utf-8"),
            "--env",
            "PATH=/bin",
            "--",
            "sh",
            "-c",
        ])
        .arg("sleep 4242 & sleep 4242")
        .spawn()
        .expect("driver");
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_running(&marker).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the sandboxed sleeps never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The caller is killed outright: no chance to clean up itself.
    caller.kill().expect("kill the caller");
    caller.wait().expect("reap the caller");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_running(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "sandboxed processes outlived their caller"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn parallel_runs_from_threads() {
    if !e2e("parallel_runs_from_threads") {
        return;
    }
    let layouts: Vec<Layout> = (0..4).map(|_| Layout::new()).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = layouts
            .iter()
            .enumerate()
            .map(|(index, layout)| {
                scope.spawn(move || {
                    let script = format!("echo run {index} > /which; cat /which");
                    run(&layout.spec(&script))
                })
            })
            .collect();
        for (index, handle) in handles.into_iter().enumerate() {
            let (status, stdout, stderr) = handle.join().expect("thread");
            assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
            assert_eq!(stdout, format!("run {index}\n"));
        }
    });
    for (index, layout) in layouts.iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(layout.path("upper/which")).expect("which"),
            format!("run {index}\n")
        );
    }
}

#[test]
fn mount_points_on_other_mounts_leave_the_snapshot_alone() {
    if !e2e("mount_points_on_other_mounts_leave_the_snapshot_alone") {
        return;
    }
    let layout = Layout::new();
    let rootfs = layout.path("lower");
    let old = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        rootfs.join("tmp"),
        &old,
        rustix::fs::AtFlags::empty(),
    )
    .expect("utimensat");
    let source = layout.path("source");
    std::fs::create_dir(&source).expect("mkdir");
    let mut spec = layout.spec("test -d /tmp/inner/sub && echo ok");
    spec.rootfs = Rootfs::Directory(rootfs.clone());
    // /tmp/inner/sub is created inside the tmpfs, not in the snapshot's /tmp.
    spec.mounts = vec![
        Mount::tmpfs("/tmp"),
        Mount::bind(&source, "/tmp/inner/sub", true),
    ];
    let (status, stdout, stderr) = run(&spec);
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
    assert_eq!(stdout, "ok\n");
    let tmp = std::fs::symlink_metadata(rootfs.join("tmp")).expect("tmp");
    assert_eq!(
        tmp.mtime(),
        1_000_000_000,
        "the snapshot's /tmp got the tmpfs's times"
    );
    assert!(!rootfs.join("tmp/inner").exists());
}

/// An ordinary user with a subordinate id range (created, and given one, if needed): its
/// uid and the first subordinate id.
fn subordinate_user() -> (u32, u32) {
    assert!(
        Path::new("/usr/bin/newuidmap").exists(),
        "newuidmap missing: apt-get install -y uidmap"
    );
    let name = "distill-subids";
    let uid = ordinary_user(name);
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    let start = match subuid
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
    {
        Some(range) => range
            .split(':')
            .next()
            .and_then(|start| start.parse().ok())
            .expect("subuid start"),
        None => {
            // useradd gives ranges only when /etc/subuid existed; add one ourselves.
            let start = 300_000 + (uid % 1000) * 65_536;
            for file in ["/etc/subuid", "/etc/subgid"] {
                let mut text = std::fs::read_to_string(file).unwrap_or_default();
                text.push_str(&format!("{name}:{start}:65536\n"));
                std::fs::write(file, text).expect("write subordinate ranges");
            }
            start
        }
    };
    (uid, start)
}

#[test]
fn whole_program_in_a_user_namespace() {
    if !e2e("whole_program_in_a_user_namespace") {
        return;
    }
    let (uid, start) = subordinate_user();
    let layout = Layout::new();
    chown_tree(layout.temp.path(), uid);
    let (lower, upper, work) = (
        layout.path("lower"),
        layout.path("upper"),
        layout.path("work"),
    );
    let paths = [
        "--lower",
        lower.to_str().expect("utf-8"),
        "--upper",
        upper.to_str().expect("utf-8"),
        "--work",
        work.to_str().expect("utf-8"),
        "--env",
        "PATH=/bin",
    ];
    let mut args = vec!["--unshare", "run"];
    args.extend(paths);
    args.extend([
        "--",
        "sh",
        "-c",
        "id -u; touch /owned; chown 5:5 /owned; exit 7",
    ]);
    let output = run_as(uid, &args);
    assert_eq!(
        output.status.code(),
        Some(7),
        "exit code mirrored: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "0\n");
    let owned = std::fs::symlink_metadata(upper.join("owned")).expect("upper file");
    assert_eq!((owned.uid(), owned.gid()), (start + 4, start + 4));
    // Inside, the sandbox needs no user namespace of its own.
    let probe = run_as(
        uid,
        &[
            "--unshare",
            "probe",
            layout.path("probe").to_str().expect("utf-8"),
        ],
    );
    let report = String::from_utf8_lossy(&probe.stdout);
    assert!(report.contains("id mapping: host ids"), "{report}");
    assert!(report.contains("overlayfs: works"), "{report}");
}

#[test]
fn views_in_directories_the_caller_lays_out() {
    if !e2e("views_in_directories_the_caller_lays_out") {
        return;
    }
    let layout = Layout::new();
    let sandbox = sandbox();
    for kind in [SnapshotterKind::Overlay, SnapshotterKind::Copy] {
        // A store's layout: the diff in `fs`, the scratch in `work`, both its own.
        let (fs, work) = (
            layout.path(&format!("{kind:?}-fs")),
            layout.path(&format!("{kind:?}-work")),
        );
        std::fs::create_dir(&fs).expect("mkdir");
        std::fs::create_dir(&work).expect("mkdir");
        let view = Snapshotter::new(&sandbox, kind)
            .prepare_in(&[layout.path("lower")], &fs, &work)
            .expect("prepare");
        let mut spec = SandboxSpec::new(
            view.rootfs(),
            vec!["sh".into(), "-c".into(), "echo hi > /greeting".into()],
        );
        spec.env = vec!["PATH=/bin".into()];
        assert_eq!(
            sandbox.run(&spec, &mut Captured::default()).expect("run"),
            ExitStatus::Exited(0)
        );
        let diff = view.commit().expect("commit");
        assert_eq!(diff.path, fs);
        // etc/ holds nothing: /etc/resolv.conf and /etc/hosts were mount points, removed.
        let mut entries = walk(&fs);
        entries.sort();
        assert_eq!(entries, ["etc/", "greeting"], "{kind:?}");
        assert!(
            work.is_dir(),
            "{kind:?}: the caller's scratch directory stays"
        );
        assert_eq!(
            std::fs::read_dir(&work).expect("read_dir").count(),
            0,
            "{kind:?}: and is empty"
        );
    }
}

#[test]
fn stub_parents_keep_their_times_unless_the_command_changed_them() {
    if !e2e("stub_parents_keep_their_times_unless_the_command_changed_them") {
        return;
    }
    let layout = Layout::new();
    let old = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
    };
    let etc = layout.path("lower/etc");
    rustix::fs::utimensat(rustix::fs::CWD, &etc, &old, rustix::fs::AtFlags::empty())
        .expect("utimensat");
    // The command leaves /etc alone: the stubs' traces are wiped.
    let (status, _, stderr) = run(&layout.spec("true"));
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
    let untouched = std::fs::symlink_metadata(layout.path("upper/etc")).expect("copied-up etc");
    assert_eq!(untouched.mtime(), 1_000_000_000);
    // The command changes /etc: its time is kept.
    let (status, _, stderr) = run(&layout.spec("echo x > /etc/new"));
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
    let touched = std::fs::symlink_metadata(layout.path("upper/etc")).expect("etc");
    assert!(
        touched.mtime() > 1_000_000_000,
        "the command's change to /etc was undone"
    );
}
