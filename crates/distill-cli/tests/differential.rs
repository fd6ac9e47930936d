//! Differential tests: every case of `tests/differential/cases/` is built by Docker's BuildKit
//! (`DOCKER_BUILDKIT=1 docker build`) and by `distill build`, both saved as docker-archives, and
//! the two images must not differ (config, history, layers and every file; see
//! `differential/compare.rs` for what is compared and the deliberate exceptions).
//!
//! Both builders start from the same base: a busybox root file system `docker import`ed once
//! per run, `docker save`d, and `distill load`ed from that archive, so the base's config and diff
//! IDs are identical on both sides.
//!
//! Gated on DISTILL_E2E=1 (run `scripts/test-deps` and `scripts/start-dockerd` first): without
//! it each test says it was skipped; with it, an unreachable Docker engine fails loudly.
//! `docs/differential.md` explains how to run, read and extend the suite.

#[path = "differential/compare.rs"]
mod compare;
#[path = "differential/image.rs"]
mod image;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The mtime given to every file of the base image and of each build context: a time the build
/// clock can never produce, so a file carrying it must keep it on both sides.
const KEPT_EPOCH: u64 = 1_600_000_000;

/// The shared base image's name, in Docker and in every distill store.
const BASE: &str = "distill-test/busybox:1";

/// The user rootless cases run distill as (made if missing, like the sandbox tests do).
const ROOTLESS_USER: &str = "distill-rootless";

/// What one run of the suite shares: the Docker client, and the base image's archive.
struct Shared {
    docker: PathBuf,
    work: PathBuf,
    base_archive: PathBuf,
    /// The base image's diff IDs: an image built FROM it starts with them (FROM scratch
    /// images do not).
    base_diff_ids: Vec<String>,
    /// The engine is older than Docker 23, whose BuildKit (v0.8) spells some history texts
    /// differently (see `compare::normalise_created_by`).
    legacy_buildkit: bool,
}

fn e2e(test: &str) -> bool {
    if std::env::var("DISTILL_E2E").map_or(true, |v| v != "1") {
        eprintln!("skipped {test}: set DISTILL_E2E=1 (after scripts/test-deps and scripts/start-dockerd) to run it");
        return false;
    }
    true
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let docker = docker_client();
        // A directory of this run's own: Docker's BuildKit keeps each context path's files
        // between builds and re-sends only those whose size or mtime changed, and every mtime
        // here is KEPT_EPOCH, so a context path reused across runs could build stale content.
        let all_runs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("differential");
        let _ = fs::remove_dir_all(&all_runs);
        let work = all_runs.join(format!("run-{}", std::process::id()));
        fs::create_dir_all(&work).expect("work directory");
        // Rootless cases read contexts and the base archive as another user.
        for dir in [&all_runs, &work] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod work");
        }
        let rootfs = work.join("busybox-rootfs.tar");
        write_busybox_rootfs(&rootfs);
        let mut import = Command::new(&docker);
        import.arg("import").arg(&rootfs).arg(BASE);
        run(&mut import, "docker import of the busybox root file system");
        let base_archive = work.join("base.tar");
        let mut save = Command::new(&docker);
        save.arg("save").arg("-o").arg(&base_archive).arg(BASE);
        run(&mut save, "docker save of the base image");
        fs::set_permissions(&base_archive, fs::Permissions::from_mode(0o644)).expect("chmod");
        let base = image::read_archive(&base_archive).expect("the base image archive");
        let mut version = Command::new(&docker);
        version.args(["version", "--format", "{{.Server.Version}}"]);
        let version = run(&mut version, "docker version");
        let legacy_buildkit = major_version(&version) < 23;
        Shared {
            legacy_buildkit,
            docker,
            work,
            base_archive,
            base_diff_ids: image::diff_ids(&base.config),
        }
    })
}

/// A Docker client that can run BuildKit builds: `$DISTILL_DOCKER`, else `docker` when it has
/// buildx or is older than 23 (built-in BuildKit), else Debian's `/usr/bin/docker`. Panics when
/// no engine answers: DISTILL_E2E=1 promised one.
fn docker_client() -> PathBuf {
    let candidates: Vec<PathBuf> = match std::env::var_os("DISTILL_DOCKER") {
        Some(path) => vec![PathBuf::from(path)],
        None => vec![PathBuf::from("docker"), PathBuf::from("/usr/bin/docker")],
    };
    for candidate in &candidates {
        let buildx = Command::new(candidate).args(["buildx", "version"]).output();
        let Ok(buildx) = buildx else { continue };
        let version = Command::new(candidate)
            .args(["version", "--format", "{{.Client.Version}}"])
            .output();
        let builtin = version
            .as_ref()
            .is_ok_and(|v| major_version(&String::from_utf8_lossy(&v.stdout)) < 23);
        if !(buildx.status.success() || builtin) {
            continue;
        }
        let server = Command::new(candidate)
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .expect("docker version");
        assert!(
            server.status.success(),
            "DISTILL_E2E=1 but no Docker engine answers ({}): run scripts/start-dockerd\n{}",
            candidate.display(),
            String::from_utf8_lossy(&server.stderr)
        );
        return candidate.clone();
    }
    panic!(
        "DISTILL_E2E=1 but no Docker client with BuildKit was found (tried {candidates:?}): run \
         scripts/test-deps, or set DISTILL_DOCKER to a client with buildx"
    );
}

/// The major number of a Docker version (`20.10.24+dfsg1` → 20); unreadable counts as new.
fn major_version(version: &str) -> u32 {
    version
        .trim()
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or(u32::MAX)
}

/// A one-layer busybox root file system with users to resolve `--chown` and USER against; all
/// times are KEPT_EPOCH.
fn write_busybox_rootfs(path: &Path) {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect(
            "DISTILL_E2E=1 but busybox is not installed: run scripts/test-deps (busybox-static)",
        );
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    let applets = String::from_utf8_lossy(&list.stdout).into_owned();
    let mut tar = tar::Builder::new(fs::File::create(path).expect("rootfs tar"));
    let mut add = |path: &str,
                   kind: tar::EntryType,
                   mode: u32,
                   owner: u64,
                   link: Option<&str>,
                   data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(owner);
        header.set_gid(owner);
        header.set_mtime(KEPT_EPOCH);
        header.set_size(data.len() as u64);
        if let Some(link) = link {
            header.set_link_name(link).expect("link name");
        }
        tar.append_data(&mut header, path, data)
            .expect("rootfs entry");
    };
    use tar::EntryType::{Directory, Regular, Symlink};
    // /dev, /proc and /sys are there as in every real base: Docker 20.10's runc otherwise leaves
    // their mount points behind in the first RUN layer (newer BuildKit removes such stubs).
    let dirs = [
        "bin",
        "dev",
        "etc",
        "home",
        "proc",
        "root",
        "sys",
        "usr",
        "usr/bin",
        "usr/share",
        "var",
        "var/log",
    ];
    for dir in dirs {
        let mode = if dir == "root" { 0o700 } else { 0o755 };
        add(dir, Directory, mode, 0, None, b"");
    }
    add("home/app", Directory, 0o755, 1000, None, b"");
    add("tmp", Directory, 0o1777, 0, None, b"");
    let binary = fs::read(busybox).expect("busybox binary");
    add("bin/busybox", Regular, 0o755, 0, None, &binary);
    for applet in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        add(
            &format!("bin/{applet}"),
            Symlink,
            0o777,
            0,
            Some("busybox"),
            b"",
        );
    }
    add(
        "etc/passwd",
        Regular,
        0o644,
        0,
        None,
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n\
          svc:x:1500:1600:svc:/var/svc:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    );
    add(
        "etc/group",
        Regular,
        0o644,
        0,
        None,
        b"root:x:0:\napp:x:1000:\nsvcgroup:x:1600:\nstaff:x:2000:app\nnogroup:x:65534:\n",
    );
    add(
        "usr/share/motd",
        Regular,
        0o644,
        0,
        None,
        b"from the base image\n",
    );
    add("var/log/base.log", Regular, 0o640, 0, None, b"base log\n");
    tar.finish().expect("rootfs tar");
}

/// Runs a command that must succeed; returns its stdout.
fn run(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({command:?}):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One case: where its context is, and the build flags both builders get.
struct Case {
    name: &'static str,
    flags: &'static [&'static str],
}

impl Case {
    fn source(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/differential/cases")
            .join(self.name)
    }
}

/// Copies a case's context to a fresh directory, adds what git cannot store, and gives every
/// file KEPT_EPOCH as its mtime.
fn prepare_context(case: &Case, dir: &Path) -> PathBuf {
    let context = dir.join("context");
    let mut copy = Command::new("cp");
    copy.arg("-a").arg(case.source()).arg(&context);
    run(&mut copy, "copying the case's context");
    // git keeps no hardlinks, special bits, empty directories or private modes: make them here.
    let shell = |script: &str| {
        let mut sh = Command::new("sh");
        sh.arg("-euc").arg(script).current_dir(&context);
        run(&mut sh, &format!("preparing {}", case.name));
    };
    match case.name {
        "copy_edge_cases" => shell(
            "mkdir -p empty tree/deeper/empty && chmod 0600 private.txt && chmod 0755 run.sh \
             && chmod 0700 tree/deeper",
        ),
        "hardlinks_setuid" => shell(
            "mkdir -p links special/group special/sticky && echo shared > links/one \
             && ln links/one links/two && ln links/one links/three \
             && echo tool > special/tool && chmod 4755 special/tool \
             && chmod 2775 special/group && chmod 1777 special/sticky",
        ),
        "add_and_chmod" => shell(
            "mkdir -p payload/sub && echo p > payload/sub/p.txt && echo q > payload/q.txt \
             && chmod 0640 payload/q.txt \
             && tar --sort=name --mtime=@1500000000 --owner=1000 --group=1000 --numeric-owner \
                -cf plain.tar -C payload . \
             && tar --sort=name --mtime=@1500000000 --owner=0 --group=0 --numeric-owner \
                -czf packed.tar.gz -C payload . \
             && rm -r payload",
        ),
        "odd_names" => shell(
            "echo spaces > 'name with spaces.txt' && echo unicode > 'ünïcödé-名前.txt' \
             && long=long/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
             && mkdir -p \"$long/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\" \
             && echo deep > \"$long/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/file.txt\" \
             && : > empty.txt && seq 1 500000 > big.bin",
        ),
        "add_archives" => shell(
            "mkdir -p payload/sub && echo p > payload/sub/p.txt && echo q > payload/q.txt \
             && chmod 0600 payload/q.txt \
             && tar --sort=name --mtime=@1500000000 --owner=1000 --group=2000 --numeric-owner \
                -cf archive.tar -C payload . \
             && bzip2 -k archive.tar && xz -k archive.tar && gzip -k archive.tar \
             && zstd -q archive.tar -o archive.tar.zst && cp archive.tar.xz renamed.bin \
             && cp archive.tar multi-one.tar \
             && mkdir -p other && echo o > other/o.txt \
             && tar --sort=name --mtime=@1500000000 --owner=0 --group=0 --numeric-owner \
                -cf multi-two.tar -C other . \
             && mkdir -p spec/d && echo h > spec/d/h1 && ln spec/d/h1 spec/h2 \
             && ln -s d/h1 spec/sym && ln -s /abs/target spec/abs && mkfifo spec/fifo \
             && echo s > spec/suid && chmod 4755 spec/suid && chmod 2750 spec/d \
             && tar --sort=name --mtime=@1500000000 --owner=1500 --group=1600 --numeric-owner \
                -cf special.tar -C spec . \
             && echo not a tar > plain.txt && gzip plain.txt \
             && rm -r payload other spec archive.tar",
        ),
        "empty_runs" => shell("mkdir -p empty"),
        "xattrs_dropped" => shell(
            "echo tool > tool && chmod 0755 tool \
             && { ! command -v setcap >/dev/null || setcap cap_net_bind_service=+ep tool; } \
             && mkdir d && cp -a tool d/ \
             && tar --xattrs --xattrs-include='*' --sort=name --mtime=@1500000000 \
                --owner=0 --group=0 --numeric-owner -cf with-xattrs.tar d && rm -r d",
        ),
        "add_archive_edges" => shell(
            "mkdir -p p/sub p/conflict-dir q && l=$(printf 'l%.0s' $(seq 1 150)) && mkdir -p \"p/$l\" \
             && echo long > \"p/$l/file-$l\" && echo s > p/sub/s.txt && echo cf > p/conflict-file \
             && echo in > p/conflict-dir/in && echo abs > q/abs.txt \
             && tar --format=gnu --sort=name --mtime=@1500000000 --owner=0 --group=0 \
                --numeric-owner -cf gnu-long.tar -C p . \
             && tar --sort=name --mtime=@1500000000 --owner=0 --group=0 --numeric-owner -P \
                --transform='s,^q,/opt/abs,' -cf absolute.tar q \
             && rm -r p q",
        ),
        "setuid_chown" => shell(
            "mkdir -p special/group && echo tool > special/tool && chmod 4755 special/tool \
             && echo g > special/group/g && chmod 2755 special/group/g && chmod 2775 special/group",
        ),
        _ => {}
    }
    let mut touch = Command::new("find");
    touch
        .arg(&context)
        .args(["-exec", "touch", "-h", "-d"])
        .arg(format!("@{KEPT_EPOCH}"))
        .args(["{}", "+"]);
    run(&mut touch, "setting the context's times");
    let mut open = Command::new("chmod");
    open.args(["-R", "o+rX"]).arg(&context);
    if case.name != "copy_edge_cases" {
        run(
            &mut open,
            "making the context readable to the rootless user",
        );
    }
    context
}

/// The case's flags, with `{context}` replaced by the context directory (for --secret src=).
fn flags(case: &Case, context: &Path) -> Vec<String> {
    let context = context.display().to_string();
    case.flags
        .iter()
        .map(|flag| flag.replace("{context}", &context))
        .collect()
}

/// The image name of a case's parent (its `parent/` directory), which the case builds FROM.
fn parent_tag(case: &Case) -> String {
    format!("distill-diff/{}-parent:1", case.name)
}

/// Builds the case with Docker's BuildKit (its parent first, if it has one) and saves the image
/// to `DIR/docker.tar`.
fn docker_build(shared: &Shared, case: &Case, context: &Path, dir: &Path) -> PathBuf {
    let tag = tag_of(dir);
    // `--no-cache`: Docker's cache keys ignore mtimes, so a layer cached from another build of
    // the same content would carry other times than this context's.
    let buildkit = || {
        let mut build = Command::new(&shared.docker);
        build.env("DOCKER_BUILDKIT", "1").args([
            "build",
            "--no-cache",
            "--network=host",
            "--progress=plain",
        ]);
        build
    };
    let parent = context.join("parent");
    if parent.is_dir() {
        let mut build = buildkit();
        build.arg("-t").arg(parent_tag(case)).arg(&parent);
        run(
            &mut build,
            &format!("docker build of {}'s parent", case.name),
        );
    }
    let mut build = buildkit();
    build
        .arg("-t")
        .arg(&tag)
        .args(flags(case, context))
        .arg(context);
    run(&mut build, &format!("docker build of {}", case.name));
    let archive = dir.join("docker.tar");
    let mut save = Command::new(&shared.docker);
    save.arg("save").arg("-o").arg(&archive).arg(&tag);
    run(&mut save, "docker save");
    let mut remove = Command::new(&shared.docker);
    remove.args(["rmi", "--no-prune"]).arg(&tag);
    if parent.is_dir() {
        remove.arg(parent_tag(case));
    }
    let _ = remove.output();
    archive
}

/// How distill is run: as this process's user, or as an ordinary user through setpriv.
#[derive(Clone, Copy, PartialEq)]
enum As {
    Invoker,
    Rootless,
}

fn distill(mode: As, root: &Path) -> Command {
    let binary = env!("CARGO_BIN_EXE_distill");
    let mut command = match mode {
        As::Invoker => Command::new(binary),
        As::Rootless => {
            let uid = rootless_uid();
            let mut command = Command::new("setpriv");
            command
                .arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg("--reset-env")
                .arg(binary);
            command
        }
    };
    command
        .env_remove("DISTILL_ROOT")
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("--root")
        .arg(root);
    command
}

fn rootless_uid() -> u32 {
    static UID: OnceLock<u32> = OnceLock::new();
    *UID.get_or_init(|| {
        let exists = Command::new("id")
            .arg("-u")
            .arg(ROOTLESS_USER)
            .output()
            .expect("id");
        if !exists.status.success() {
            let mut add = Command::new("useradd");
            add.args([
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                ROOTLESS_USER,
            ]);
            run(&mut add, "useradd (package passwd)");
        }
        let output = run(Command::new("id").arg("-u").arg(ROOTLESS_USER), "id -u");
        output.trim().parse().expect("a numeric uid")
    })
}

/// Builds the case with distill in a store of its own (with the base loaded) and saves the
/// image to `DIR/distill.tar` (or `distill-rootless.tar`).
fn distill_build(shared: &Shared, case: &Case, context: &Path, dir: &Path, mode: As) -> PathBuf {
    let suffix = if mode == As::Rootless {
        "-rootless"
    } else {
        ""
    };
    let out = dir.join(format!("distill{suffix}"));
    fs::create_dir_all(&out).expect("distill's directory");
    if mode == As::Rootless {
        let mut chown = Command::new("chown");
        chown.arg(format!("{0}:{0}", rootless_uid())).arg(&out);
        run(&mut chown, "giving the rootless store to its user");
    }
    let root = out.join("root");
    let tag = tag_of(dir);
    run(
        distill(mode, &root)
            .arg("load")
            .arg("-q")
            .arg("-i")
            .arg(&shared.base_archive),
        "distill load of the base image",
    );
    let parent = context.join("parent");
    if parent.is_dir() {
        run(
            distill(mode, &root)
                .args(["build", "--progress", "plain", "--network", "host", "-t"])
                .arg(parent_tag(case))
                .arg(&parent),
            &format!("distill build{suffix} of {}'s parent", case.name),
        );
    }
    run(
        distill(mode, &root)
            .args([
                "build",
                "--progress",
                "plain",
                "--network",
                "host",
                "-t",
                &tag,
            ])
            .args(flags(case, context))
            .arg(context),
        &format!("distill build{suffix} of {}", case.name),
    );
    let archive = out.join("image.tar");
    run(
        distill(mode, &root)
            .arg("save")
            .arg("-o")
            .arg(&archive)
            .arg(&tag),
        "distill save",
    );
    archive
}

/// The image name of a case's builds: named after its directory, so that two tests building
/// the same case (the self-check) never remove each other's image.
fn tag_of(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    format!("distill-diff/{}:1", name.to_lowercase())
}

fn case_dir(shared: &Shared, name: &str) -> PathBuf {
    let dir = shared.work.join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("case directory");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod case directory");
    dir
}

/// The rules for comparing `docker`, Docker's image of a case: its base layers are the shared
/// base's when it starts with them (a FROM scratch image has none).
fn rules(shared: &Shared, docker: &image::Image) -> compare::Rules {
    let built = image::diff_ids(&docker.config);
    let base_layers = if built.starts_with(&shared.base_diff_ids) {
        shared.base_diff_ids.len()
    } else {
        0
    };
    compare::Rules {
        base_layers,
        kept_before: KEPT_EPOCH + 1,
        legacy_buildkit: shared.legacy_buildkit,
    }
}

fn assert_same(case: &Case, what: &str, docker: &Path, distill: &Path) {
    let shared = shared();
    let a = image::read_archive(docker).unwrap_or_else(|e| panic!("{e}"));
    let b = image::read_archive(distill).unwrap_or_else(|e| panic!("{e}"));
    let differences = compare::compare(&a, &b, rules(shared, &a));
    assert!(
        differences.is_empty(),
        "{}: {what} differs from Docker BuildKit's image ({} differences; archives in {}):\n{}",
        case.name,
        differences.lines.len(),
        docker
            .parent()
            .map_or(String::new(), |p| p.display().to_string()),
        differences.report()
    );
}

/// Builds a case with both builders (and as the rootless user when asked) and compares.
fn differential(case: Case, rootless: bool) {
    let shared = shared();
    let dir = case_dir(shared, case.name);
    let context = prepare_context(&case, &dir);
    let docker = docker_build(shared, &case, &context, &dir);
    let ours = distill_build(shared, &case, &context, &dir, As::Invoker);
    assert_same(&case, "distill's image", &docker, &ours);
    if rootless {
        let rootless = distill_build(shared, &case, &context, &dir, As::Rootless);
        assert_same(&case, "rootless distill's image", &docker, &rootless);
    }
}

/// `DISTILL_DIFF_ROOTLESS=all` builds every case as the ordinary user too, not only those
/// marked `rootless` (docs/differential.md says which cases cannot be built that way).
fn all_rootless() -> bool {
    std::env::var("DISTILL_DIFF_ROOTLESS").is_ok_and(|value| value == "all")
}

/// One #[test] per case: `name(flags...)` or `name(flags...) rootless` to also build it as an
/// ordinary user.
macro_rules! cases {
    ($($name:ident [$($flag:expr),*] $($rootless:ident)?;)*) => {$(
        #[test]
        fn $name() {
            if !e2e(stringify!($name)) {
                return;
            }
            let rootless = all_rootless() $(|| stringify!($rootless) == "rootless")?;
            differential(Case { name: stringify!($name), flags: &[$($flag),*] }, rootless);
        }
    )*};
}

cases! {
    multistage_copy_from [] rootless;
    target_skips_broken ["--target", "good"];
    copy_edge_cases [];
    copy_symlinks [];
    ownership [] rootless;
    whiteouts [] rootless;
    hardlinks_setuid [];
    metadata_all ["--build-arg", "VERSION=2.5", "--label", "from.flag=yes"] rootless;
    build_args ["--build-arg", "FLAVOUR=blue", "--build-arg", "UNUSED=1", "--build-arg", "EMPTY="];
    run_forms [];
    run_mounts ["--secret", "id=token,src={context}/token.txt"];
    add_and_chmod [];
    onbuild_triggers [];
    expansion ["--build-arg", "UNSET_ARG="];
    copy_through_symlinks [];
    odd_names [];
    copy_dest_rules [];
    scratch_env [];
    env_order [] rootless;
    arg_scopes ["--build-arg", "OVERRIDDEN=from-flag", "--build-arg", "STAGE=stage-flag", "--build-arg", "NOVALUE_FLAG"];
    user_ids [];
    workdir_chain [] rootless;
    chown_forms [] rootless;
    chmod_dirs [];
    copy_into_links [];
    wildcard_mixed [];
    copy_from_image [];
    stage_chains ["--target", "top"];
    rewrites [] rootless;
    metadata_only [] rootless;
    hardlink_layers [];
    special_modes [];
    long_names_run [];
    symlink_loops [];
    entry_cmd_forms [];
    entry_reset [];
    healthcheck_forms [];
    healthcheck_none [];
    signals_ports_volumes [];
    onbuild_stage [];
    dockerignore_rules [];
    run_as_users [] rootless;
    mount_points [];
    empty_runs [];
    add_archives [];
    labels_inherited ["--label", "override=flag", "--label", "flag-only=yes"];
    copy_from_workdir [] rootless;
    platform_args [];
    volume_changes [];
    deep_tree [] rootless;
    setuid_chown [];
    escape_directive [];
    literal_exec_forms [];
    config_spelling [];
    dockerignore_star [];
    copy_sources [];
    target_unresolvable ["--target", "good"];
    run_special_paths [] rootless;
    secret_default_target ["--secret", "id=token,src={context}/token.txt"];
    nonutf8_names [];
    device_nodes [];
    dockerfile_flag ["-f", "{context}/build/app.Dockerfile"];
    copy_glob_nothing [];
    hardlink_modify [] rootless;
    copy_to_root [];
    scratch_app [] rootless;
    arg_env_edge ["--build-arg", "CARGO_PKG_NAME", "--build-arg", "EMPTY="];
    copy_chown_links [] rootless;
    add_archive_edges [];
    from_stage_by_arg ["--build-arg", "FROM_STAGE=second"];
    xattrs_dropped [];
    onbuild_chain [];
    mount_context_ignore [] rootless;
    parallel_stages [] rootless;
    users_added [] rootless;
    odd_but_accepted [];
    run_path [];
    cache_keys_in_build [];
}

/// Builds a case both builders must refuse: Docker's build fails, and distill's exits with 1
/// and says where in the Dockerfile (or which flag) the problem is.
fn both_refuse(case: Case) {
    let shared = shared();
    let dir = case_dir(shared, case.name);
    let context = prepare_context(&case, &dir);
    let tag = tag_of(&dir);
    let docker = Command::new(&shared.docker)
        .env("DOCKER_BUILDKIT", "1")
        .args([
            "build",
            "--no-cache",
            "--network=host",
            "--progress=plain",
            "-t",
            &tag,
        ])
        .args(flags(&case, &context))
        .arg(&context)
        .output()
        .expect("docker build");
    assert!(
        !docker.status.success(),
        "{}: Docker's BuildKit built what this case expects refused",
        case.name
    );
    let root = dir.join("distill-root");
    run(
        distill(As::Invoker, &root)
            .arg("load")
            .arg("-q")
            .arg("-i")
            .arg(&shared.base_archive),
        "distill load of the base image",
    );
    let ours = distill(As::Invoker, &root)
        .args([
            "build",
            "--progress",
            "plain",
            "--network",
            "host",
            "-t",
            &tag,
        ])
        .args(flags(&case, &context))
        .arg(&context)
        .output()
        .expect("distill build");
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert_eq!(
        ours.status.code(),
        Some(1),
        "{}: distill build should fail with status 1 as Docker's does:\n{stderr}\nDocker said:\n{}",
        case.name,
        String::from_utf8_lossy(&docker.stderr)
    );
    assert!(
        stderr.contains("Dockerfile") || stderr.contains("--"),
        "{}: distill's error names neither the Dockerfile nor a flag:\n{stderr}",
        case.name
    );
}

/// Cases both builders must refuse: `name [flags...]`.
macro_rules! refused {
    ($($name:ident [$($flag:expr),*];)*) => {$(
        #[test]
        fn $name() {
            if !e2e(stringify!($name)) {
                return;
            }
            both_refuse(Case { name: stringify!($name), flags: &[$($flag),*] });
        }
    )*};
}

refused! {
    refuse_copy_ignored [];
    refuse_copy_missing [];
    refuse_failing_run [];
    refuse_unknown_target ["--target", "nosuch"];
    refuse_unknown_user [];
    refuse_workdir_on_file [];
    refuse_unknown_instruction [];
    refuse_bad_stopsignal [];
    refuse_bad_duration [];
    refuse_zero_retries [];
    refuse_bad_port [];
    refuse_onbuild_from [];
    refuse_copy_from_unknown [];
    refuse_env_empty [];
    refuse_blank_base [];
    refuse_second_source_missing [];
    refuse_stage_cycle [];
    refuse_run_as_missing_group [];
    refuse_write_etc_hosts [];
    refuse_copy_dir_onto_link [];
    refuse_copy_dir_onto_file [];
    refuse_copy_under_file [];
    refuse_workdir_through_link [];
    refuse_copy_from_variable [];
    refuse_copy_link_to_ignored [];
    refuse_bind_ignored [];
    refuse_expose_reversed_range [];
    refuse_shell_not_json [];
    refuse_unknown_copy_flag [];
    refuse_bogus_mount_type [];
    refuse_onbuild_onbuild [];
}

/// The comparator and the archive reader are proven on a real pair first: Docker's image, and
/// the same image after `distill load` and `distill save`, must compare equal.
#[test]
fn docker_image_equals_itself_through_distill_load_and_save() {
    if !e2e("docker_image_equals_itself_through_distill_load_and_save") {
        return;
    }
    let shared = shared();
    let case = Case {
        name: "hardlinks_setuid",
        flags: &[],
    };
    let dir = case_dir(shared, "self-check");
    let context = prepare_context(&case, &dir);
    let docker = docker_build(shared, &case, &context, &dir);
    let root = dir.join("root");
    let tag = tag_of(&dir);
    run(
        distill(As::Invoker, &root)
            .arg("load")
            .arg("-q")
            .arg("-i")
            .arg(&docker),
        "distill load of Docker's image",
    );
    let resaved = dir.join("resaved.tar");
    run(
        distill(As::Invoker, &root)
            .arg("save")
            .arg("-o")
            .arg(&resaved)
            .arg(&tag),
        "distill save",
    );
    assert_same(
        &case,
        "Docker's image through distill load/save",
        &docker,
        &resaved,
    );
    // And the comparison is not vacuous: the image differs from its own base.
    let a = image::read_archive(&docker).expect("docker archive");
    let base = image::read_archive(&shared.base_archive).expect("base archive");
    assert!(!compare::compare(&a, &base, rules(shared, &a)).is_empty());
}
