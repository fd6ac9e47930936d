//! `distill build` of images made of file operations only (FROM scratch, COPY, metadata):
//! no sandbox is needed, so these always run.

mod build_util;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use build_util::{built_steps, cached_steps, read, World};

#[test]
fn multi_stage_scratch_config_and_history() {
    let world = World::new();
    world.write("hello.txt", "hello\n");
    world.write("sub/w.txt", "world\n");
    world.dockerfile(
        "FROM scratch AS build\n\
         COPY hello.txt /out/\n\
         COPY sub /out/sub\n\
         FROM scratch\n\
         ARG V=1\n\
         ENV A=b PATH=/bin\n\
         LABEL x=y\n\
         WORKDIR /app\n\
         COPY --from=build /out/ ./\n\
         EXPOSE 80 53/udp\n\
         USER 1000\n\
         VOLUME /data\n\
         STOPSIGNAL SIGQUIT\n\
         HEALTHCHECK --interval=30s --retries=3 CMD /app/check\n\
         CMD [\"/app/hello\"]\n\
         ENTRYPOINT [\"/app/run\"]\n",
    );
    world.build(&["-t", "demo:1", "--label", "extra=1"]);
    let config = world.config("demo:1");
    let runtime = config.config.clone().unwrap();
    assert_eq!(runtime.env.unwrap(), ["PATH=/bin", "A=b"]);
    assert_eq!(runtime.working_dir.as_deref(), Some("/app"));
    assert_eq!(runtime.user.as_deref(), Some("1000"));
    // ENTRYPOINT after CMD in the same stage keeps the CMD.
    assert_eq!(runtime.cmd.unwrap(), ["/app/hello"]);
    assert_eq!(runtime.entrypoint.unwrap(), ["/app/run"]);
    assert_eq!(runtime.args_escaped, Some(true));
    let labels = runtime.labels.unwrap();
    assert_eq!(labels["x"], "y");
    assert_eq!(labels["extra"], "1");
    let ports: Vec<&String> = runtime.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, ["53/udp", "80/tcp"]);
    assert!(runtime.volumes.unwrap().contains_key("/data"));
    assert_eq!(runtime.stop_signal.as_deref(), Some("SIGQUIT"));
    let health = runtime.healthcheck.unwrap();
    assert_eq!(health.test, ["CMD-SHELL", "/app/check"]);
    assert_eq!(health.interval, 30_000_000_000);
    let history: Vec<(String, bool)> = config
        .history
        .iter()
        .map(|h| (h.created_by.clone().unwrap(), h.empty_layer))
        .collect();
    let expected = [
        ("ARG V=1", true),
        ("ENV A=b PATH=/bin", true),
        ("LABEL x=y", true),
        ("WORKDIR /app", false),
        ("COPY /out/ ./ # buildkit", false),
        ("EXPOSE 80 53/udp", true),
        ("USER 1000", true),
        ("VOLUME [/data]", true),
        ("STOPSIGNAL SIGQUIT", true),
        (
            "HEALTHCHECK {Test:[CMD-SHELL /app/check] Interval:30s Timeout:0s StartPeriod:0s StartInterval:0s Retries:3}",
            true,
        ),
        ("CMD [\"/app/hello\"]", true),
        ("ENTRYPOINT [\"/app/run\"]", true),
    ];
    let expected: Vec<(String, bool)> = expected
        .iter()
        .map(|(text, empty)| (text.to_string(), *empty))
        .collect();
    assert_eq!(history, expected);
    assert!(config
        .history
        .iter()
        .all(|h| h.comment.as_deref() == Some("buildkit.dockerfile.v0") && h.created.is_some()));
    assert_eq!(config.rootfs.diff_ids.len(), 2);

    let out = world.export_local(&[]);
    assert_eq!(read(&out.join("app/hello.txt")), "hello\n");
    assert_eq!(read(&out.join("app/sub/w.txt")), "world\n");
}

#[test]
fn entrypoint_clears_an_inherited_cmd_and_shell_forms_use_shell() {
    let world = World::new();
    world.dockerfile(
        "FROM scratch AS base\nCMD [\"x\"]\nFROM base\nSHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT run me\n",
    );
    world.build(&["-t", "ep:1"]);
    let runtime = world.config("ep:1").config.unwrap();
    assert_eq!(runtime.cmd, None);
    assert_eq!(runtime.entrypoint.unwrap(), ["/bin/bash", "-c", "run me"]);
}

#[test]
fn target_skips_a_stage_that_would_fail() {
    let world = World::new();
    world.write("a.txt", "a");
    world.dockerfile(
        "FROM scratch AS good\nCOPY a.txt /\nFROM scratch AS bad\nCOPY missing.txt /\n",
    );
    let failed = world.build_fails(&["-t", "all:1"]);
    assert!(failed.stderr.contains("missing.txt"), "{}", failed.stderr);
    assert!(failed.stderr.contains("Dockerfile:4"), "{}", failed.stderr);
    world.build(&["--target", "good", "-t", "good:1"]);
    assert_eq!(world.config("good:1").rootfs.diff_ids.len(), 1);
    // The failed build tagged nothing.
    let images = world.distill(&["images"]);
    assert!(!images.stdout.contains("all"), "{}", images.stdout);
}

#[test]
fn copy_rules() {
    let world = World::new();
    world.write("dir/a.c", "a");
    world.write("dir/b.c", "b");
    world.write("dir/nested/c.h", "c");
    world.write("one.txt", "1");
    world.write("keep.log", "k");
    world.write(".dockerignore", "*.log\n");
    std::os::unix::fs::symlink("/etc/passwd", world.context().join("outside")).unwrap();
    std::os::unix::fs::symlink("one.txt", world.context().join("link")).unwrap();
    world.dockerfile(
        "FROM scratch\n\
         COPY dir /contents/\n\
         COPY dir/*.c /globbed/\n\
         COPY one.txt /renamed\n\
         COPY one.txt dir/a.c /several/\n\
         COPY link /followed\n\
         COPY dir/../one.txt /parent/\n\
         COPY --chown=1234:5678 --chmod=640 one.txt /owned\n\
         COPY <<EOF /inline.txt\nhi there\nEOF\n\
         COPY nomatch* /none/\n",
    );
    let out = world.export_local(&["-t", "copy:1"]);
    assert_eq!(read(&out.join("contents/a.c")), "a");
    assert_eq!(read(&out.join("contents/nested/c.h")), "c");
    assert!(!out.join("contents/dir").exists());
    assert_eq!(read(&out.join("globbed/a.c")), "a");
    assert!(!out.join("globbed/nested").exists());
    assert_eq!(read(&out.join("renamed")), "1");
    assert_eq!(read(&out.join("several/one.txt")), "1");
    assert_eq!(read(&out.join("several/a.c")), "a");
    assert_eq!(read(&out.join("followed")), "1");
    assert_eq!(read(&out.join("parent/one.txt")), "1");
    assert_eq!(read(&out.join("inline.txt")), "hi there\n");
    let owned = fs::symlink_metadata(out.join("owned")).unwrap();
    assert_eq!(owned.permissions().mode() & 0o7777, 0o640);
    if fs::metadata("/proc/self").unwrap().uid() == 0 {
        assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
    }
    assert!(!out.join("none").exists() || fs::read_dir(out.join("none")).unwrap().count() == 0);

    // A symlink pointing out of the context resolves inside it: nothing from the host.
    world.dockerfile("FROM scratch\nCOPY outside /x\n");
    let failed = world.build_fails(&[]);
    assert!(failed.stderr.contains("outside"), "{}", failed.stderr);
    // .dockerignore'd files are not there.
    world.dockerfile("FROM scratch\nCOPY keep.log /\n");
    let failed = world.build_fails(&[]);
    assert!(failed.stderr.contains("keep.log"), "{}", failed.stderr);
    // Several sources need a directory destination.
    world.dockerfile("FROM scratch\nCOPY one.txt dir/a.c /file\n");
    let failed = world.build_fails(&[]);
    assert!(
        failed
            .stderr
            .contains("destination must be a directory and end with a /"),
        "{}",
        failed.stderr
    );
    // `../` cannot leave the context.
    fs::write(world.path("secret.txt"), "host").unwrap();
    world.dockerfile("FROM scratch\nCOPY ../secret.txt /s\n");
    let failed = world.build_fails(&[]);
    assert!(failed.stderr.contains("secret.txt"), "{}", failed.stderr);
}

#[test]
fn add_extracts_local_archives() {
    let world = World::new();
    let staging = world.path("tree");
    fs::create_dir_all(staging.join("pkg")).unwrap();
    fs::write(staging.join("pkg/file"), "inside").unwrap();
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&staging)
        .arg("-czf")
        .arg(world.context().join("pkg.tar.gz"))
        .arg("pkg")
        .status()
        .unwrap();
    assert!(status.success());
    for (flag, name) in [("-cjf", "pkg.tar.bz2"), ("-cJf", "pkg.tar.xz")] {
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(&staging)
            .arg(flag)
            .arg(world.context().join(name))
            .arg("pkg")
            .status()
            .unwrap();
        assert!(status.success());
    }
    world.dockerfile(
        "FROM scratch\nADD pkg.tar.gz /opt/\nADD pkg.tar.bz2 /bz/\nADD pkg.tar.xz /xz/\nCOPY pkg.tar.gz /raw/\n",
    );
    let out = world.export_local(&[]);
    assert_eq!(read(&out.join("opt/pkg/file")), "inside");
    assert_eq!(read(&out.join("bz/pkg/file")), "inside");
    assert_eq!(read(&out.join("xz/pkg/file")), "inside");
    assert!(out.join("raw/pkg.tar.gz").is_file());
}

#[test]
fn cache_hits_touches_and_changes() {
    let world = World::new();
    world.write("a.txt", "a");
    world.write("b.txt", "b");
    world.dockerfile("FROM scratch\nCOPY a.txt /a\nLABEL step=two\nCOPY b.txt /b\nWORKDIR /w\n");
    let first = world.build(&["-t", "cache:1"]);
    assert_eq!(built_steps(&first.stderr).len(), 3, "{}", first.stderr);
    let id = first.stdout.trim().to_string();

    let second = world.build(&["-t", "cache:1"]);
    assert_eq!(cached_steps(&second.stderr).len(), 3, "{}", second.stderr);
    assert!(built_steps(&second.stderr).is_empty());

    // Touched but unchanged: still cached.
    std::thread::sleep(std::time::Duration::from_millis(20));
    world.write("a.txt", "a");
    let touched = world.build(&["-t", "cache:1"]);
    assert_eq!(cached_steps(&touched.stderr).len(), 3, "{}", touched.stderr);

    // A changed file misses from the step that reads it.
    world.write("b.txt", "B");
    let changed = world.build(&["-t", "cache:1"]);
    assert_eq!(
        cached_steps(&changed.stderr),
        ["[1/3] COPY a.txt /a"],
        "{}",
        changed.stderr
    );
    assert_eq!(built_steps(&changed.stderr).len(), 2);

    // --no-cache rebuilds everything.
    let rebuilt = world.build(&["--no-cache", "-t", "cache:1"]);
    assert!(cached_steps(&rebuilt.stderr).is_empty());
    assert_ne!(rebuilt.stdout.trim(), id);
}

/// The same checks on a context older than a second, where a rebuild takes the shortcut of
/// an unchanged walk (crates/distill-executor/src/walkprint.rs): every kind of change must
/// still miss, and the image must hold the new content.
#[test]
fn settled_context_rebuilds_see_every_change() {
    let world = World::new();
    world.write("src/a.txt", "a");
    world.write("src/deep/b.txt", "b");
    world.write("src/ignored/x.txt", "x");
    world.write(".dockerignore", "src/ignored\n");
    world.dockerfile("FROM scratch\nCOPY src /src\nCOPY src/deep/b.txt /b\n");
    let settle = || std::thread::sleep(std::time::Duration::from_millis(1100));
    settle();
    let first = world.build(&["-t", "settled:1"]);
    assert_eq!(built_steps(&first.stderr).len(), 2, "{}", first.stderr);
    let hit = world.build(&["-t", "settled:1"]);
    assert_eq!(cached_steps(&hit.stderr).len(), 2, "{}", hit.stderr);

    // Same size, other content, settled again: both COPYs miss, the image has the new text.
    world.write("src/deep/b.txt", "B");
    settle();
    let changed = world.build(&["-t", "settled:1"]);
    assert!(
        cached_steps(&changed.stderr).is_empty(),
        "{}",
        changed.stderr
    );
    let out = world.export_local(&["-t", "settled:1"]);
    assert_eq!(read(&out.join("b")), "B");
    assert_eq!(read(&out.join("src/deep/b.txt")), "B");

    // A mode change misses (and so does the step after it, whose parent changed).
    let path = world.context().join("src/a.txt");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    settle();
    let moded = world.build(&["-t", "settled:1"]);
    assert!(cached_steps(&moded.stderr).is_empty(), "{}", moded.stderr);
    let out = world.export_local(&["-t", "settled:1"]);
    assert_eq!(
        fs::metadata(out.join("src/a.txt")).unwrap().mode() & 0o777,
        0o600
    );
    assert!(!out.join("src/ignored").exists());

    // A change to an ignored file does not.
    world.write("src/ignored/x.txt", "y");
    settle();
    let ignored = world.build(&["-t", "settled:1"]);
    assert_eq!(cached_steps(&ignored.stderr).len(), 2, "{}", ignored.stderr);

    // A file replaced by a symlink misses.
    fs::remove_file(world.context().join("src/a.txt")).unwrap();
    std::os::unix::fs::symlink("deep/b.txt", world.context().join("src/a.txt")).unwrap();
    settle();
    let linked = world.build(&["-t", "settled:1"]);
    assert!(cached_steps(&linked.stderr).is_empty(), "{}", linked.stderr);
    let out = world.export_local(&["-t", "settled:1"]);
    assert!(fs::symlink_metadata(out.join("src/a.txt"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn outputs_and_metadata() {
    let world = World::new();
    world.write("f", "content");
    world.dockerfile("FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n");
    let oci = world.path("image.oci.tar");
    let docker = world.path("image.docker.tar");
    let tar = world.path("fs.tar");
    let iid = world.path("iid");
    let metadata = world.path("meta.json");
    let run = world.build(&[
        "-t",
        "out:1",
        "-o",
        &format!("type=oci,dest={}", oci.display()),
        "-o",
        &format!("type=docker,dest={}", docker.display()),
        "-o",
        &format!("type=tar,dest={}", tar.display()),
        "--iidfile",
        iid.to_str().unwrap(),
        "--metadata-file",
        metadata.to_str().unwrap(),
    ]);
    let id = run.stdout.trim();
    assert!(id.starts_with("sha256:"));
    assert_eq!(read(&iid), id);
    let meta: serde_json::Value = serde_json::from_str(&read(&metadata)).unwrap();
    assert_eq!(meta["containerimage.config.digest"], id);
    assert!(meta["containerimage.digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(meta["image.name"], "docker.io/library/out:1");
    // The store has the tag, and the archives load back into a fresh store.
    assert_eq!(world.config("out:1").config.unwrap().cmd.unwrap(), ["/f"]);
    for archive in [&oci, &docker] {
        let other = World::new();
        let load = other.distill(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(load.code, 0, "{}", load.stderr);
        assert!(load.stdout.contains("out:1"), "{}", load.stdout);
    }
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listing.stdout).contains("f"));
}

#[test]
fn source_date_epoch_reproduces_the_digest() {
    let digests: Vec<String> = (0..2)
        .map(|round| {
            let world = World::new();
            world.write("dir/x", "x");
            world.write("y", &"y".repeat(1000));
            // Different mtimes in each round: they must not matter.
            let stamp = std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(1_800_000_000 + round * 1000);
            let file = fs::File::options()
                .write(true)
                .open(world.context().join("y"))
                .unwrap();
            file.set_modified(stamp).unwrap();
            world.dockerfile(
                "FROM scratch AS a\nCOPY dir /dir\nFROM scratch\nCOPY --from=a /dir /d\nCOPY y /\nWORKDIR /w\nENV K=v\n",
            );
            let metadata = world.path("meta.json");
            let run = world.distill_env(
                &[
                    "build",
                    "--progress",
                    "quiet",
                    "--metadata-file",
                    metadata.to_str().unwrap(),
                    world.context().to_str().unwrap(),
                ],
                &[("SOURCE_DATE_EPOCH", "1700000000")],
            );
            assert_eq!(run.code, 0, "{}", run.stderr);
            let meta: serde_json::Value = serde_json::from_str(&read(&metadata)).unwrap();
            meta["containerimage.digest"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn a_missing_base_image_says_to_import_it() {
    let world = World::new();
    world.dockerfile("FROM alpine:3.20\n");
    let failed = world.build_fails(&[]);
    assert!(failed.stderr.contains("alpine:3.20"), "{}", failed.stderr);
    assert!(failed.stderr.contains("hint:"), "{}", failed.stderr);
    assert!(failed.stderr.contains("Dockerfile:1"), "{}", failed.stderr);
}

#[test]
fn copying_a_directory_keeps_an_existing_destinations_metadata() {
    let world = World::new();
    world.write("private/f", "f");
    fs::set_permissions(
        world.context().join("private"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    world.dockerfile("FROM scratch\nWORKDIR /app\nCOPY private /app\nCOPY private /new\n");
    let out = world.export_local(&[]);
    let mode = |p: &str| fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("app"), 0o755);
    // A destination the copy creates is made like a parent (docker.io 20.10's BuildKit),
    // never with the source directory's mode.
    assert_eq!(mode("new"), 0o755);
    assert_eq!(read(&out.join("app/f")), "f");
}

#[test]
fn copy_exclude_patterns_are_relative_to_the_source() {
    let world = World::new();
    world.write("dir/a.c", "a");
    world.write("dir/keep.h", "h");
    world.write("dir/nested/b.c", "b");
    world.write("dir/nested/c.h", "c");
    world.dockerfile(
        "FROM scratch\nCOPY --exclude=*.c dir /top/\nCOPY --exclude=**/*.c --exclude=keep.h dir /deep/\nCOPY --exclude=nested dir /flat/\n",
    );
    let out = world.export_local(&[]);
    assert!(!out.join("top/a.c").exists());
    assert!(out.join("top/nested/b.c").exists());
    assert!(!out.join("deep/a.c").exists() && !out.join("deep/nested/b.c").exists());
    assert!(!out.join("deep/keep.h").exists());
    assert_eq!(read(&out.join("deep/nested/c.h")), "c");
    assert!(out.join("flat/a.c").exists() && !out.join("flat/nested").exists());
}

#[test]
fn a_stage_rebuilt_with_the_same_output_keeps_later_copies_cached() {
    let world = World::new();
    world.write("src.txt", "same");
    world.write("other.txt", "1");
    world.dockerfile(
        "FROM scratch AS build\nCOPY other.txt /other\nCOPY src.txt /out/app\nFROM scratch\nCOPY --from=build /out/app /app\n",
    );
    world.build(&[]);
    world.write("other.txt", "2");
    let again = world.build(&[]);
    let cached = cached_steps(&again.stderr);
    assert!(
        cached.contains(&"[stage-1 1/1] COPY --from=build /out/app /app".to_string()),
        "{}",
        again.stderr
    );
}

#[test]
fn a_fully_cached_rebuild_keeps_the_image_id() {
    let world = World::new();
    world.write("a.txt", "a");
    world.write("b.txt", "b");
    world.dockerfile(
        "FROM scratch\nENV K=v\nCOPY a.txt /a\nLABEL step=two\nCOPY b.txt /b\nWORKDIR /w\nCMD [\"/a\"]\n",
    );
    let iid = world.path("iid");
    let build = || {
        let run = world.build(&["-t", "stable:1", "--iidfile", iid.to_str().unwrap()]);
        (read(&iid), run)
    };
    let (first, _) = build();
    // Times are kept in seconds: a later second shows whether the rebuild took "now".
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (second, run) = build();
    assert_eq!(built_steps(&run.stderr).len(), 0, "{}", run.stderr);
    assert_eq!(first, second);

    // Metadata steps take their neighbours' time, the image its last step's.
    let config = world.config("stable:1");
    let times: Vec<String> = config
        .history
        .iter()
        .map(|h| h.created.clone().expect("every history entry is dated"))
        .collect();
    assert_eq!(times.len(), 6);
    assert_eq!(config.created.as_deref(), times.last().map(String::as_str));

    world.write("b.txt", "B");
    let (changed, run) = build();
    assert_eq!(built_steps(&run.stderr).len(), 2, "{}", run.stderr);
    assert_ne!(changed, first);
}
