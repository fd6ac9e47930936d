//! Helpers for the `distill build` tests: a temporary store and context, the real binary,
//! and readers for what a build left in the store.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use distill_image::ImageConfig;
use distill_store::Store;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A store root and a context directory in one temporary directory.
pub struct World {
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> World {
        let world = World {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(world.context()).unwrap();
        world
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn context(&self) -> PathBuf {
        self.dir.path().join("ctx")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file of the context (parents created).
    pub fn write(&self, name: &str, content: &str) {
        let path = self.context().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    pub fn dockerfile(&self, text: &str) {
        self.write("Dockerfile", text);
    }

    pub fn distill(&self, args: &[&str]) -> Run {
        self.distill_env(args, &[])
    }

    pub fn distill_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_distill"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .env_remove("SOURCE_DATE_EPOCH")
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `distill build --progress plain ARGS... ctx`, which must succeed; returns stderr.
    pub fn build(&self, args: &[&str]) -> Run {
        let mut all = vec!["build", "--progress", "plain"];
        all.extend_from_slice(args);
        let context = self.context();
        all.push(context.to_str().unwrap());
        let run = self.distill(&all);
        assert_eq!(run.code, 0, "build failed:\n{}", run.stderr);
        run
    }

    /// The same, expected to fail.
    pub fn build_fails(&self, args: &[&str]) -> Run {
        let mut all = vec!["build", "--progress", "plain"];
        all.extend_from_slice(args);
        let context = self.context();
        all.push(context.to_str().unwrap());
        let run = self.distill(&all);
        assert_ne!(run.code, 0, "build succeeded:\n{}", run.stderr);
        run
    }

    pub fn config(&self, name: &str) -> ImageConfig {
        let store = Store::open(self.root()).unwrap();
        let record = store.find(name).unwrap();
        store.image(&record).unwrap().config
    }

    /// The final file system of `name`'s build, exported to a directory.
    pub fn export_local(&self, args: &[&str]) -> PathBuf {
        let dest = self.path("out");
        let _ = fs::remove_dir_all(&dest);
        let spec = format!("type=local,dest={}", dest.display());
        let mut all = vec!["-o", spec.as_str()];
        all.extend_from_slice(args);
        self.build(&all);
        dest
    }
}

/// Lines of a plain progress output that say CACHED, by step name.
pub fn cached_steps(stderr: &str) -> Vec<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut steps = Vec::new();
    for pair in lines.windows(2) {
        if pair[1].ends_with(" CACHED") {
            if let Some((_, name)) = pair[0].split_once(' ') {
                steps.push(name.to_string());
            }
        }
    }
    steps
}

/// Lines of a plain progress output that say DONE, by step name.
pub fn built_steps(stderr: &str) -> Vec<String> {
    let mut names = std::collections::HashMap::new();
    let mut steps = Vec::new();
    for line in stderr.lines() {
        let Some((number, rest)) = line.split_once(' ') else {
            continue;
        };
        if rest.starts_with('[') {
            names.insert(number.to_string(), rest.to_string());
        } else if rest.starts_with("DONE") {
            if let Some(name) = names.get(number) {
                steps.push(name.clone());
            }
        }
    }
    steps
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// Whether the machine can run RUN steps end to end: DISTILL_E2E=1 asks for it, and then a
/// missing requirement fails loudly; without it the test says it was skipped.
pub fn e2e(test: &str) -> bool {
    use std::io::Write;
    if std::env::var("DISTILL_E2E").map_or(true, |v| v != "1") {
        let _ = writeln!(
            std::io::stderr(),
            "skipped {test}: set DISTILL_E2E=1 (after scripts/test-deps) to run it"
        );
        return false;
    }
    assert!(
        Path::new("/usr/bin/busybox").exists() || Path::new("/bin/busybox").exists(),
        "DISTILL_E2E=1 but busybox is not installed: run scripts/test-deps (busybox-static)"
    );
    true
}

/// Imports a tiny busybox root file system as `busybox:test`.
pub fn import_busybox(world: &World) {
    let rootfs = world.path("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::create_dir_all(rootfs.join("tmp")).unwrap();
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "cat", "ls", "id", "touch", "sleep", "env", "mkdir", "pwd", "true",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    let tar = world.path("busybox.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let run = world.distill(&["import", tar.to_str().unwrap(), "busybox:test"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
