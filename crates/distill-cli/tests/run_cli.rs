//! `distill run`: an image of the store run in the sandbox, as `docker run` would run it.
//! These need the sandbox (root or user namespaces) and a static busybox, so they run with
//! `DISTILL_E2E=1` (and then fail loudly when something is missing); otherwise they report
//! being skipped.

mod build_util;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use build_util::{e2e, import_busybox, World};

/// A world with `busybox:test` imported and `app:1` built on it: an entrypoint, a CMD, a
/// user, a working directory and an environment of its own.
fn world_with_app() -> World {
    let world = World::new();
    import_busybox(&world);
    world.dockerfile(
        "FROM busybox:test\n\
         ENV FROM_IMAGE=image KEPT=kept\n\
         RUN mkdir -p /home/app/work\n\
         WORKDIR /home/app/work\n\
         USER app\n\
         ENTRYPOINT [\"/bin/sh\", \"-c\", \"echo \\\"[$0] $*\\\"\", \"entry\"]\n\
         CMD [\"default\", \"cmd\"]\n",
    );
    world.build(&["-t", "app:1"]);
    world
}

#[test]
fn output_and_exit_code_come_through() {
    if !e2e("output_and_exit_code_come_through") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    let run = world.distill(&[
        "run",
        "busybox:test",
        "sh",
        "-c",
        "echo hi; echo oops >&2; exit 3",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "hi\n");
    assert_eq!(run.stderr, "oops\n");

    // Standard input is the caller's.
    let mut child = Command::new(env!("CARGO_BIN_EXE_distill"))
        .arg("--root")
        .arg(world.root())
        .args(["run", "busybox:test", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "through stdin\n");

    // A command killed by a signal: 128 + the signal, as a shell says it.
    let run = world.distill(&["run", "busybox:test", "sh", "-c", "kill -9 $$"]);
    assert_eq!(run.code, 137, "{}", run.stderr);
}

#[test]
fn entrypoint_cmd_env_user_and_workdir_follow_docker_run() {
    if !e2e("entrypoint_cmd_env_user_and_workdir_follow_docker_run") {
        return;
    }
    let world = world_with_app();
    // The image's entrypoint with its CMD, then with the given command (flags included).
    assert_eq!(
        world.distill(&["run", "app:1"]).stdout,
        "[entry] default cmd\n"
    );
    assert_eq!(
        world.distill(&["run", "app:1", "mine", "--rm"]).stdout,
        "[entry] mine --rm\n"
    );
    // --entrypoint replaces the entrypoint and drops the image's CMD.
    let run = world.distill(&["run", "--entrypoint", "id", "app:1"]);
    assert_eq!(
        run.stdout, "uid=1000(app) gid=1000(app)\n",
        "{}",
        run.stderr
    );
    let run = world.distill(&["run", "--entrypoint", "pwd", "app:1"]);
    assert_eq!(run.stdout, "/home/app/work\n");

    // -e over the image's Env; a bare name takes distill's value; HOME from /etc/passwd.
    let run = world.distill_env(
        &[
            "run",
            "-e",
            "KEPT=changed",
            "-e",
            "FROM_HOST",
            "-e",
            "NEW=new",
            "--entrypoint",
            "env",
            "app:1",
        ],
        &[("FROM_HOST", "host value")],
    );
    let env: Vec<&str> = run.stdout.lines().collect();
    for expected in [
        "FROM_IMAGE=image",
        "KEPT=changed",
        "FROM_HOST=host value",
        "NEW=new",
        "HOME=/home/app",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ] {
        assert!(env.contains(&expected), "{expected} missing in {env:?}");
    }

    // -u by name and by number (the group from /etc/passwd, then given), -w anywhere.
    let run = world.distill(&[
        "run",
        "-u",
        "root",
        "-w",
        "/made/here",
        "--entrypoint",
        "sh",
        "app:1",
        "-c",
        "id; pwd; echo $HOME",
    ]);
    assert_eq!(run.stdout, "uid=0(root) gid=0(root)\n/made/here\n/root\n");
    let run = world.distill(&["run", "-u", "1000:0", "--entrypoint", "id", "app:1"]);
    assert_eq!(run.stdout, "uid=1000(app) gid=0(root)\n");

    // The hostname is the container's short ID, or --hostname.
    let run = world.distill(&["run", "--entrypoint", "busybox", "app:1", "hostname"]);
    let hostname = run.stdout.trim();
    assert_eq!(hostname.len(), 12, "{hostname:?}");
    assert!(hostname.bytes().all(|b| b.is_ascii_hexdigit()));
    let run = world.distill(&[
        "run",
        "--hostname",
        "box",
        "--entrypoint",
        "busybox",
        "app:1",
        "hostname",
    ]);
    assert_eq!(run.stdout, "box\n");

    // A user the image does not know, a relative -w: distill's own errors, 125.
    let run = world.distill(&["run", "-u", "nobody", "app:1"]);
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains("unable to find user nobody"),
        "{}",
        run.stderr
    );
    let run = world.distill(&["run", "-w", "relative", "app:1"]);
    assert_eq!(run.code, 125);
    assert!(run.stderr.contains("absolute"), "{}", run.stderr);
}

#[test]
fn commands_that_cannot_run_exit_126_or_127() {
    if !e2e("commands_that_cannot_run_exit_126_or_127") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    let run = world.distill(&["run", "busybox:test", "no-such-command"]);
    assert_eq!(run.code, 127, "{}", run.stderr);
    assert!(run.stderr.contains("not found"), "{}", run.stderr);
    let run = world.distill(&["run", "busybox:test", "/etc/passwd"]);
    assert_eq!(run.code, 126, "{}", run.stderr);
    // busybox:test has neither ENTRYPOINT nor CMD.
    let run = world.distill(&["run", "busybox:test"]);
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(
        run.stderr.contains("no command specified"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_image_is_a_clear_error_with_exit_125() {
    if !e2e("a_missing_image_is_a_clear_error_with_exit_125") {
        return;
    }
    let world = World::new();
    let run = world.distill(&["run", "nowhere:1", "true"]);
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("unable to find image \"nowhere:1\" in the store"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn network_none_has_only_loopback_and_read_only_refuses_writes() {
    if !e2e("network_none_has_only_loopback_and_read_only_refuses_writes") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    let run = world.distill(&[
        "run",
        "--network",
        "none",
        "busybox:test",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(run.stdout, "lo\n", "{}", run.stderr);
    let run = world.distill(&["run", "--network", "bridge", "busybox:test", "true"]);
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains("expected host or none"),
        "{}",
        run.stderr
    );

    let run = world.distill(&[
        "run",
        "--read-only",
        "busybox:test",
        "sh",
        "-c",
        "touch /file && echo wrote; touch /dev/shm/file && echo tmpfs-writable",
    ]);
    assert!(
        run.stderr.contains("Read-only file system"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "tmpfs-writable\n");
}

#[test]
fn writes_do_not_persist_between_runs() {
    if !e2e("writes_do_not_persist_between_runs") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    let run = world.distill(&[
        "run",
        "--rm",
        "busybox:test",
        "sh",
        "-c",
        "echo x > /written && busybox rm /etc/passwd && cat /written",
    ]);
    assert_eq!(run.stdout, "x\n", "{}", run.stderr);
    let run = world.distill(&["run", "busybox:test", "ls", "/written", "/etc/passwd"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "/etc/passwd\n");
    // Nothing of either container is left behind in the store.
    let ingest = world.root().join("ingest");
    let left: Vec<_> = fs::read_dir(&ingest)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn sigterm_is_forwarded_to_the_command() {
    if !e2e("sigterm_is_forwarded_to_the_command") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    let out_path = world.path("out");
    let out = fs::File::create(&out_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_distill"))
        .arg("--root")
        .arg(world.root())
        .args([
            "run",
            "busybox:test",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(out)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !fs::read_to_string(&out_path).unwrap().contains("ready") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    assert_eq!(fs::read_to_string(&out_path).unwrap(), "ready\ngot TERM\n");
}

#[test]
fn an_image_built_from_scratch_with_a_static_binary_runs() {
    if !e2e("an_image_built_from_scratch_with_a_static_binary_runs") {
        return;
    }
    let world = World::new();
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap();
    fs::copy(busybox, world.context().join("busybox")).unwrap();
    world.dockerfile(
        "FROM scratch\n\
         COPY busybox /busybox\n\
         USER 65534:65534\n\
         ENTRYPOINT [\"/busybox\", \"echo\"]\n\
         CMD [\"hello from scratch\"]\n",
    );
    world.build(&["-t", "scratch-static:1"]);
    let run = world.distill(&["run", "--rm", "scratch-static:1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "hello from scratch\n");
    let run = world.distill(&[
        "run",
        "--entrypoint",
        "/busybox",
        "scratch-static:1",
        "id",
        "-u",
    ]);
    assert_eq!(run.stdout, "65534\n", "{}", run.stderr);
}
