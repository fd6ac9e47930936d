//! `distill build` with RUN steps: they need the sandbox (root or user namespaces) and a
//! static busybox for the base image, so they run with `DISTILL_E2E=1` (and then fail loudly
//! when something is missing); otherwise they report being skipped.

mod build_util;

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use build_util::{built_steps, cached_steps, e2e, import_busybox, read, World};

#[test]
fn run_steps_see_env_args_user_workdir_and_mounts() {
    if !e2e("run_steps_see_env_args_user_workdir_and_mounts") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    fs::write(world.path("token"), "s3cret").unwrap();
    world.dockerfile(
        "FROM busybox:test\n\
         ARG V=one\n\
         ENV E=env\n\
         RUN echo \"$V $E\" > /vars && id -u > /root-id\n\
         USER app\n\
         WORKDIR /home/app/w\n\
         RUN [\"/bin/sh\", \"-c\", \"id -u > mine && pwd >> mine && echo $HOME >> mine\"]\n\
         USER root\n\
         RUN --mount=type=cache,target=/cache echo x >> /cache/log && cat /cache/log | wc -l > /count\n\
         RUN --mount=type=secret,id=token cat /run/secrets/token > /seen\n\
         RUN --mount=type=tmpfs,target=/scratch touch /scratch/gone && ls /scratch > /listed\n",
    );
    let secret = format!("id=token,src={}", world.path("token").display());
    let out = world.export_local(&["-t", "run:1", "--secret", &secret]);
    assert_eq!(read(&out.join("vars")), "one env\n");
    assert_eq!(read(&out.join("root-id")), "0\n");
    // HOME comes from the user's passwd entry, as runc sets it.
    assert_eq!(
        read(&out.join("home/app/w/mine")),
        "1000\n/home/app/w\n/home/app\n"
    );
    assert_eq!(read(&out.join("seen")), "s3cret");
    assert_eq!(read(&out.join("listed")), "gone\n");
    assert!(!out.join("scratch/gone").exists());
    assert!(!out.join("cache").join("log").exists());
    let history: Vec<String> = world
        .config("run:1")
        .history
        .iter()
        .filter_map(|h| h.created_by.clone())
        .collect();
    assert!(
        history.contains(
            &"RUN |1 V=one /bin/sh -c echo \"$V $E\" > /vars && id -u > /root-id # buildkit"
                .to_string()
        ),
        "{history:?}"
    );

    // The cache mount persists between builds (the step itself is rebuilt with --no-cache).
    let out = world.export_local(&["--no-cache", "--secret", &secret]);
    assert_eq!(read(&out.join("count")).trim(), "2");
}

#[test]
fn a_changed_build_arg_misses_from_the_first_run_after_it() {
    if !e2e("a_changed_build_arg_misses_from_the_first_run_after_it") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    world.write("a.txt", "a");
    world.dockerfile(
        "FROM busybox:test\nCOPY a.txt /a\nRUN echo first > /first\nARG V=1\nRUN echo second > /second\nRUN echo \"$V\" > /v\n",
    );
    world.build(&[]);
    let same = world.build(&[]);
    assert_eq!(cached_steps(&same.stderr).len(), 5, "{}", same.stderr);
    let changed = world.build(&["--build-arg", "V=2"]);
    let cached = cached_steps(&changed.stderr);
    assert!(
        cached.contains(&"[3/5] RUN echo first > /first".to_string()),
        "{cached:?}"
    );
    assert_eq!(
        built_steps(&changed.stderr),
        [
            "[4/5] RUN echo second > /second",
            "[5/5] RUN echo \"$V\" > /v"
        ],
        "{}",
        changed.stderr
    );
}

#[test]
fn a_failing_run_names_the_step_and_tags_nothing() {
    if !e2e("a_failing_run_names_the_step_and_tags_nothing") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    world.dockerfile("FROM busybox:test\nRUN echo before\nRUN echo oops >&2; exit 3\n");
    let failed = world.build_fails(&["-t", "broken:1"]);
    assert!(failed.stderr.contains("exit code: 3"), "{}", failed.stderr);
    assert!(failed.stderr.contains("Dockerfile:3"), "{}", failed.stderr);
    assert!(failed.stderr.contains("oops"), "{}", failed.stderr);
    assert!(!world.distill(&["images"]).stdout.contains("broken"));
}

#[test]
fn independent_stages_run_in_parallel() {
    if !e2e("independent_stages_run_in_parallel") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    // Unpack the base and probe the sandbox first, so only the steps are timed.
    world.dockerfile("FROM busybox:test\nRUN true\n");
    world.build(&[]);
    world.dockerfile(
        "FROM busybox:test AS a\nRUN sleep 2 && echo a > /a\n\
         FROM busybox:test AS b\nRUN sleep 2 && echo b > /b\n\
         FROM scratch\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
    );
    let started = Instant::now();
    let out = world.export_local(&[]);
    // One after the other they would take at least 4 s.
    assert!(
        started.elapsed() < Duration::from_millis(3700),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(read(&out.join("a")), "a\n");
    assert_eq!(read(&out.join("b")), "b\n");
}

#[test]
fn sigterm_cancels_cleanly() {
    if !e2e("sigterm_cancels_cleanly") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    world.dockerfile("FROM busybox:test\nRUN sleep 60\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_distill"))
        .arg("--root")
        .arg(world.root())
        .args(["build", "--progress", "plain", "-t", "cancelled:1"])
        .arg(world.context())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    assert!(!world.distill(&["images"]).stdout.contains("cancelled"));
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(world.root().to_str().unwrap()), "{mounts}");
    let prune = world.distill(&["prune", "--force"]);
    assert_eq!(prune.code, 0, "{}", prune.stderr);
    let leftovers = fs::read_dir(world.root().join("ingest")).unwrap().count();
    assert_eq!(leftovers, 0);
}

#[test]
fn run_heredocs_scripts_and_shell() {
    if !e2e("run_heredocs_scripts_and_shell") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    world.dockerfile(
        "FROM busybox:test\n\
         RUN <<EOF\n#!/bin/sh\necho script $0 > /script-out\nEOF\n\
         RUN <<EOF\necho plain > /plain\nEOF\n\
         RUN cat <<EOF > /catted\nline\nEOF\n",
    );
    let out = world.export_local(&[]);
    assert_eq!(read(&out.join("script-out")), "script /dev/pipes/EOF\n");
    assert_eq!(read(&out.join("plain")), "plain\n");
    assert_eq!(read(&out.join("catted")), "line\n");
    assert!(!out.join("dev/pipes").exists());
}

#[test]
fn docker_loads_and_runs_the_docker_output() {
    if !e2e("docker_loads_and_runs_the_docker_output") {
        return;
    }
    let answers = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        answers,
        "DISTILL_E2E=1 but no Docker engine answers: run scripts/start-dockerd"
    );
    let world = World::new();
    import_busybox(&world);
    world.dockerfile(
        "FROM busybox:test\nRUN echo built-by-distill > /msg\nCMD [\"cat\", \"/msg\"]\n",
    );
    let archive = world.path("image.tar");
    let tag = format!("distill-build-test:{}", std::process::id());
    let run = world.build(&[
        "-t",
        &tag,
        "-o",
        &format!("type=docker,dest={}", archive.display()),
    ]);
    let id = run.stdout.trim().to_string();
    let load = Command::new("docker")
        .args(["load", "-i"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let output = Command::new("docker")
        .args(["run", "--rm", "--network=none", &tag])
        .output()
        .unwrap();
    let inspect = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &tag])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rmi", &tag]).output();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "built-by-distill\n"
    );
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), id);
}

#[test]
fn a_failing_stage_cancels_a_running_sibling() {
    if !e2e("a_failing_stage_cancels_a_running_sibling") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    world.dockerfile(
        "FROM busybox:test AS slow\nRUN sleep 60\n\
         FROM busybox:test AS broken\nRUN sleep 1; exit 7\n\
         FROM scratch\nCOPY --from=slow /bin/busybox /a\nCOPY --from=broken /bin/busybox /b\n",
    );
    let started = Instant::now();
    let failed = world.build_fails(&["-t", "never:1"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(failed.stderr.contains("exit code: 7"), "{}", failed.stderr);
    assert!(!world.distill(&["images"]).stdout.contains("never"));
}

#[test]
fn network_none_has_only_loopback() {
    if !e2e("network_none_has_only_loopback") {
        return;
    }
    let world = World::new();
    import_busybox(&world);
    world.dockerfile(
        "FROM busybox:test\nRUN --network=none cat /proc/net/dev > /none\nRUN cat /proc/net/dev > /default\n",
    );
    let out = world.export_local(&[]);
    let interfaces = |text: String| -> Vec<String> {
        text.lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|n| n.trim().to_string())
            .collect()
    };
    assert_eq!(interfaces(read(&out.join("none"))), ["lo"]);
    assert!(!interfaces(read(&out.join("default"))).is_empty());
}
