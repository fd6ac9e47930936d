//! distill's archives against the real clients: Docker (`docker load`, `docker run`,
//! `docker save`, `docker import`), skopeo and umoci.
//!
//! These need the tools installed (`scripts/test-deps`) and a Docker engine running
//! (`scripts/start-dockerd`). They run when `DISTILL_E2E=1` and then fail loudly if a tool is
//! missing; without it they say they were skipped and pass.

mod archive_util;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use archive_util::{read_json, run_tool, untar, Distill};

/// Whether to run; panics if asked to run without the tools.
fn e2e(test: &str, tools: &[&str]) -> bool {
    if std::env::var("DISTILL_E2E").map_or(true, |value| value != "1") {
        // Written to the real stderr, not through eprintln!, which the test harness captures.
        let _ = writeln!(
            std::io::stderr(),
            "skipped {test}: set DISTILL_E2E=1 (after scripts/test-deps and scripts/start-dockerd) to run it"
        );
        return false;
    }
    for tool in tools {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|output| output.status.success());
        assert!(
            found,
            "DISTILL_E2E=1 but `{tool}` is not installed: run scripts/test-deps"
        );
    }
    if tools.contains(&"docker") {
        let output = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output();
        assert!(
            output.is_ok_and(|output| output.status.success()),
            "DISTILL_E2E=1 but no Docker engine answers: run scripts/start-dockerd"
        );
    }
    true
}

/// A root filesystem with Debian's statically linked busybox (package busybox-static) as
/// /bin/busybox and /bin/sh, packed as a tar in `dir`.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .expect("busybox is not installed: run scripts/test-deps (busybox-static)");
    let file = run_tool(Command::new("file").arg("-L").arg(busybox));
    assert!(
        file.contains("statically linked"),
        "{} is not static ({file}); install busybox-static",
        busybox.display()
    );
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "cat", "ls"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/greeting"), "hello from a distill image\n").unwrap();
    let tarball = dir.join("rootfs.tar");
    run_tool(
        Command::new("tar")
            .args([
                "--sort=name",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "-cf",
            ])
            .arg(&tarball)
            .arg("-C")
            .arg(&root)
            .arg("."),
    );
    tarball
}

/// A Docker tag unique to this test run, removed from the engine when dropped.
struct DockerTag(String);

impl DockerTag {
    fn new(name: &str) -> DockerTag {
        DockerTag(format!("distill-e2e/{name}:{}", std::process::id()))
    }
}

impl Drop for DockerTag {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

fn docker_diff_ids(image: &str) -> Vec<String> {
    let json = run_tool(Command::new("docker").args([
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        image,
    ]));
    serde_json::from_str(json.trim()).expect("docker inspect RootFS.Layers")
}

#[test]
fn docker_loads_and_runs_an_image_distill_saved() {
    if !e2e(
        "docker_loads_and_runs_an_image_distill_saved",
        &["docker", "tar", "file"],
    ) {
        return;
    }
    let distill = Distill::new();
    let rootfs = busybox_rootfs(distill.dir.path());
    let tag = DockerTag::new("saved-by-distill");
    distill.ok(&[
        "import",
        rootfs.to_str().unwrap(),
        &tag.0,
        "--change",
        "ENV GREETING_FILE=/etc/greeting",
        "--change",
        "CMD [\"/bin/sh\", \"-c\", \"cat $GREETING_FILE; echo args:$#\"]",
        "--change",
        "WORKDIR /etc",
    ]);
    let archive = distill.path("saved.tar");
    distill.ok(&["save", "-o", archive.to_str().unwrap(), &tag.0]);

    let loaded = run_tool(Command::new("docker").arg("load").arg("-i").arg(&archive));
    assert!(
        loaded.contains(&format!("Loaded image: {}", tag.0)),
        "docker load said: {loaded}"
    );
    let output = run_tool(Command::new("docker").args(["run", "--rm", "--network=none", &tag.0]));
    assert_eq!(output, "hello from a distill image\nargs:0\n");
    let pwd = run_tool(Command::new("docker").args([
        "run",
        "--rm",
        "--network=none",
        &tag.0,
        "/bin/sh",
        "-c",
        "pwd",
    ]));
    assert_eq!(pwd, "/etc\n");

    // Docker agrees on the layer: same diff ID as distill's config says.
    let full = format!("docker.io/{}", tag.0);
    assert_eq!(docker_diff_ids(&tag.0), distill.diff_ids(&full));
}

#[test]
fn distill_loads_what_docker_saved_with_the_same_diff_ids() {
    if !e2e(
        "distill_loads_what_docker_saved_with_the_same_diff_ids",
        &["docker", "tar", "file"],
    ) {
        return;
    }
    let distill = Distill::new();
    let rootfs = busybox_rootfs(distill.dir.path());
    let base = DockerTag::new("imported-by-docker");
    run_tool(
        Command::new("docker")
            .arg("import")
            .arg(&rootfs)
            .arg(&base.0),
    );

    // A second layer from a real build, so the archive has a layer chain.
    let context = distill.path("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("note.txt"), "second layer\n").unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY note.txt /note.txt\nCMD [\"/bin/cat\", \"/note.txt\"]\n",
            base.0
        ),
    )
    .unwrap();
    let built = DockerTag::new("built-by-docker");
    run_tool(
        Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "--network=none", "-t", &built.0])
            .arg(&context),
    );
    let archive = distill.path("docker-saved.tar");
    run_tool(
        Command::new("docker")
            .arg("save")
            .arg("-o")
            .arg(&archive)
            .arg(&base.0)
            .arg(&built.0),
    );

    let printed = distill.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        printed.contains(&format!("Loaded image: {}", base.0)),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("Loaded image: {}", built.0)),
        "{printed}"
    );
    assert_eq!(
        distill.diff_ids(&format!("docker.io/{}", base.0)),
        docker_diff_ids(&base.0)
    );
    let diff_ids = distill.diff_ids(&format!("docker.io/{}", built.0));
    assert_eq!(diff_ids.len(), 2);
    assert_eq!(diff_ids, docker_diff_ids(&built.0));

    // `docker import` of the same tarball and `distill import` agree on the layer.
    let distill_id = distill.ok(&["import", rootfs.to_str().unwrap(), "mine/imported:1"]);
    assert!(distill_id.starts_with("sha256:"));
    assert_eq!(
        distill.diff_ids("docker.io/mine/imported:1"),
        docker_diff_ids(&base.0)
    );

    // And the round trip back into Docker runs, from distill's copy alone.
    let again = distill.path("again.tar");
    distill.ok(&["save", "-o", again.to_str().unwrap(), &built.0]);
    run_tool(Command::new("docker").args(["rmi", &built.0]));
    run_tool(Command::new("docker").arg("load").arg("-i").arg(&again));
    let output = run_tool(Command::new("docker").args(["run", "--rm", "--network=none", &built.0]));
    assert_eq!(output, "second layer\n");
}

#[test]
fn skopeo_and_umoci_accept_distill_oci_archives() {
    if !e2e(
        "skopeo_and_umoci_accept_distill_oci_archives",
        &["skopeo", "umoci", "tar", "file"],
    ) {
        return;
    }
    let distill = Distill::new();
    let rootfs = busybox_rootfs(distill.dir.path());
    distill.ok(&[
        "import",
        rootfs.to_str().unwrap(),
        "example.com/distill/oci:1.0",
        "--change",
        "USER 1000",
    ]);
    let archive = distill.path("oci.tar");
    distill.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        archive.to_str().unwrap(),
        "example.com/distill/oci:1.0",
    ]);

    let inspected = run_tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}:1.0", archive.display())),
    );
    let inspected: serde_json::Value =
        serde_json::from_str(&inspected).expect("skopeo inspect JSON");
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(1));
    let config = run_tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg("--config")
            .arg(format!("oci-archive:{}", archive.display())),
    );
    let config: serde_json::Value = serde_json::from_str(&config).expect("skopeo config JSON");
    assert_eq!(config["config"]["User"], "1000");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!(distill.diff_ids("example.com/distill/oci:1.0"))
    );

    let layout = distill.path("layout");
    untar(&archive, &layout);
    let tags = run_tool(Command::new("umoci").arg("ls").arg("--layout").arg(&layout));
    assert_eq!(tags.trim(), "1.0");
    let bundle = distill.path("bundle");
    run_tool(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:1.0", layout.display()))
            .arg(&bundle),
    );
    let greeting = std::fs::read_to_string(bundle.join("rootfs/etc/greeting")).unwrap();
    assert_eq!(greeting, "hello from a distill image\n");
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    let runtime = read_json(&bundle.join("config.json"));
    assert_eq!(runtime["process"]["user"]["uid"], 1000);

    // The docker-format archive is an OCI layout too.
    let docker_format = distill.path("docker-format.tar");
    distill.ok(&[
        "save",
        "-o",
        docker_format.to_str().unwrap(),
        "example.com/distill/oci:1.0",
    ]);
    run_tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", docker_format.display())),
    );
    run_tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", docker_format.display())),
    );
}

#[test]
fn distill_loads_what_skopeo_wrote() {
    if !e2e(
        "distill_loads_what_skopeo_wrote",
        &["skopeo", "tar", "file"],
    ) {
        return;
    }
    let source = Distill::new();
    let rootfs = busybox_rootfs(source.dir.path());
    source.ok(&["import", rootfs.to_str().unwrap(), "test/skopeo:1"]);
    let archive = source.path("docker.tar");
    source.ok(&["save", "-o", archive.to_str().unwrap(), "test/skopeo:1"]);
    let expected = source.diff_ids("docker.io/test/skopeo:1");

    // skopeo re-writes it both ways: an OCI archive with its own names, and a docker archive.
    let oci = source.path("skopeo-oci.tar");
    run_tool(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("oci-archive:{}:localhost/copied:2", oci.display())),
    );
    let docker = source.path("skopeo-docker.tar");
    run_tool(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!(
                "docker-archive:{}:localhost/copied:3",
                docker.display()
            )),
    );
    let target = Distill::new();
    let printed = target.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(printed, "Loaded image: localhost/copied:2\n");
    assert_eq!(target.diff_ids("localhost/copied:2"), expected);
    let printed = target.ok(&["load", "-i", docker.to_str().unwrap()]);
    assert_eq!(printed, "Loaded image: localhost/copied:3\n");
    assert_eq!(target.diff_ids("localhost/copied:3"), expected);
}
