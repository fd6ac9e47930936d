//! The store commands run as the real binary on a temporary `--root`, with images committed
//! by `distill_store::testing`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use distill_store::testing::TestImage;
use distill_store::Store;
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn distill(root: &Path, args: &[&str]) -> Run {
    distill_with_input(root, args, "")
}

fn distill_with_input(root: &Path, args: &[&str], input: &str) -> Run {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_distill"))
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// A store with `app:1` and `localhost:5000/team/tool:v2` (sharing a base layer) and one
/// dangling image.
fn populated() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let base = TestImage::new().layer(&[("etc/os-release", b"ID=test\n")]);
    base.clone()
        .layer(&[("app", b"binary")])
        .cmd(&["/app"])
        .commit(&store, &["app:1"])
        .unwrap();
    base.clone()
        .layer(&[("tool", b"tool")])
        .created("2024-03-01T00:00:00Z")
        .commit(&store, &["localhost:5000/team/tool:v2"])
        .unwrap();
    TestImage::new()
        .cmd(&["old"])
        .created("2023-01-01T00:00:00Z")
        .commit(&store, &[])
        .unwrap();
    (dir, store)
}

/// The cells of a table line (columns are separated by at least 3 spaces).
fn columns(line: &str) -> Vec<&str> {
    line.split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn id_of(store: &Store, name: &str) -> String {
    let record = store.find(name).unwrap();
    store.image(&record).unwrap().id().to_string()
}

#[test]
fn images_on_an_empty_store_prints_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let run = distill(dir.path(), &["images"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    );
}

#[test]
fn images_lists_names_newest_first_with_docker_columns() {
    let (dir, store) = populated();
    let run = distill(dir.path(), &["images"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert_eq!(
        columns(lines[0]),
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    );
    let tool_id = id_of(&store, "localhost:5000/team/tool:v2");
    assert!(
        lines[1].starts_with("localhost:5000/team/tool   v2        "),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(&tool_id[7..19]));
    assert!(lines[1].contains(" ago "));
    assert!(lines[2].starts_with("app                        1         "));
    assert!(lines[3].starts_with("<none>                     <none>    "));
    assert!(lines[1].ends_with("B"), "size column: {}", lines[1]);

    let quiet = distill(dir.path(), &["images", "-q"]);
    assert_eq!(quiet.stdout.lines().count(), 3);
    assert!(quiet.stdout.lines().all(|l| l.len() == 12));

    let filtered = distill(dir.path(), &["images", "app"]);
    assert_eq!(filtered.stdout.lines().count(), 2);
    let none = distill(dir.path(), &["images", "app:2"]);
    assert_eq!(none.stdout.lines().count(), 1);

    let digests = distill(dir.path(), &["images", "--digests", "--no-trunc"]);
    let app_record = store.find("app:1").unwrap();
    assert!(digests
        .stdout
        .contains(&app_record.target.digest.to_string()));
    assert!(digests.stdout.contains(&id_of(&store, "app:1")));
}

#[test]
fn images_json_has_dockers_keys() {
    let (dir, store) = populated();
    let run = distill(dir.path(), &["images", "--format", "json", "app"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let object: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(object["Repository"], "app");
    assert_eq!(object["Tag"], "1");
    assert_eq!(object["ID"], id_of(&store, "app:1")[7..19]);
    assert_eq!(object["CreatedAt"], "2024-01-02 03:04:05 +0000 UTC");
    assert!(object["CreatedSince"].as_str().unwrap().ends_with(" ago"));
    // Docker's size: the unpacked files of the layers (8 + 6 bytes), not the tar blobs.
    assert_eq!(object["Size"], "14B");
}

#[test]
fn tag_and_rmi_round_trip() {
    let (dir, store) = populated();
    let run = distill(
        dir.path(),
        &["tag", "app:1", "registry.example.com/app:release"],
    );
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    assert_eq!(
        id_of(&store, "registry.example.com/app:release"),
        id_of(&store, "app:1")
    );

    let run = distill(dir.path(), &["rmi", "app:1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "Untagged: app:1\n");

    let id = id_of(&store, "registry.example.com/app:release");
    let run = distill(dir.path(), &["rmi", "registry.example.com/app:release"]);
    assert_eq!(
        run.stdout,
        format!("Untagged: registry.example.com/app:release\nDeleted: {id}\n")
    );
    assert!(store.find(&id).is_err());
}

#[test]
fn failures_say_what_and_change_nothing() {
    let (dir, _store) = populated();
    let index = std::fs::read(dir.path().join("index.json")).unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["tag", "missing", "x"], "error: no such image: missing\n"),
        (
            &["tag", "app:1", "Bad"],
            "error: invalid reference format: repository name (library/Bad) must be lowercase\n",
        ),
        (
            &["tag", "app:1", "x:-y"],
            "error: invalid reference format\n",
        ),
        (
            &["rmi", "app:1", "missing"],
            "error: no such image: missing\n",
        ),
        (&["history", "nope:1"], "error: no such image: nope:1\n"),
        (&["inspect", "nope"], "error: no such image: nope\n"),
    ];
    for (args, stderr) in cases {
        let run = distill(dir.path(), args);
        assert_eq!(run.code, 1, "{args:?}");
        assert_eq!(run.stderr, stderr, "{args:?}");
        assert_eq!(
            std::fs::read(dir.path().join("index.json")).unwrap(),
            index,
            "{args:?}"
        );
    }
}

#[test]
fn inspect_prints_a_docker_shaped_array() {
    let (dir, store) = populated();
    let run = distill(
        dir.path(),
        &["inspect", "app:1", "localhost:5000/team/tool:v2"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run
        .stdout
        .starts_with("[\n    {\n        \"Id\": \"sha256:"));
    let array: Value = serde_json::from_str(&run.stdout).unwrap();
    let app = &array[0];
    assert_eq!(app["Id"], id_of(&store, "app:1"));
    assert_eq!(app["RepoTags"], serde_json::json!(["app:1"]));
    let digest = store.find("app:1").unwrap().target.digest.to_string();
    assert_eq!(
        app["RepoDigests"],
        serde_json::json!([format!("app@{digest}")])
    );
    assert_eq!(app["Created"], "2024-01-02T03:04:05Z");
    assert_eq!(app["Os"], "linux");
    assert_eq!(app["Config"]["Cmd"], serde_json::json!(["/app"]));
    assert_eq!(
        app["Config"]["Hostname"], "",
        "Docker's zero values are printed"
    );
    assert_eq!(app["Config"]["Entrypoint"], Value::Null);
    assert_eq!(app["RootFS"]["Type"], "layers");
    assert_eq!(app["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(
        array[0]["RootFS"]["Layers"][0],
        array[1]["RootFS"]["Layers"][0]
    );
    assert_eq!(app["Size"], 14, "unpacked bytes, as Docker");

    let partial = distill(dir.path(), &["inspect", "app:1", "nope"]);
    assert_eq!(partial.code, 1);
    let array: Value = serde_json::from_str(&partial.stdout).unwrap();
    assert_eq!(array.as_array().unwrap().len(), 1);
}

#[test]
fn history_lists_steps_newest_first() {
    let (dir, store) = populated();
    let run = distill(dir.path(), &["history", "app:1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        columns(lines[0]),
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    );
    assert_eq!(lines.len(), 4);
    let id = id_of(&store, "app:1");
    assert!(lines[1].starts_with(&id[7..19]));
    assert!(lines[1].contains("CMD [\"/app\"]") && lines[1].contains(" 0B "));
    assert!(lines[2].starts_with("<missing>") && lines[2].contains("COPY app / # buildkit"));
    assert!(
        lines[2].contains(" 6B "),
        "unpacked layer size: {}",
        lines[2]
    );
    assert!(lines[3].contains("buildkit.dockerfile.v0"));

    let json = distill(
        dir.path(),
        &["history", "--format", "json", "--no-trunc", "app:1"],
    );
    let first: Value = serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["ID"], id);
    assert_eq!(first["CreatedAt"], "2024-01-02T03:04:05Z");
    assert_eq!(first["Size"], "0B");

    let raw = distill(dir.path(), &["history", "-H=false", "app:1"]);
    assert!(
        raw.stdout.contains("2024-01-02T03:04:05Z"),
        "{}",
        raw.stdout
    );
}

#[test]
fn df_and_prune() {
    let (dir, _store) = populated();
    std::fs::write(dir.path().join("ingest/blob-1-2-3"), vec![0u8; 5000]).unwrap();
    let run = distill(dir.path(), &["df"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        columns(lines[0]),
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    );
    // Unpacked layers as Docker counts them: the shared base (8 bytes), app (6), tool (4).
    assert_eq!(
        columns(lines[1]),
        ["Images", "3", "2", "18B", "0B (0%)"],
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("Blobs     "), "{}", lines[2]);
    assert!(lines[3].starts_with("Layer Snapshots   0 "), "{}", lines[3]);
    assert_eq!(columns(lines[4]), ["Build Cache", "0", "0", "0B", "0B"]);

    let verbose = distill(dir.path(), &["df", "-v"]);
    assert!(verbose.stdout.contains("SHARED SIZE   UNIQUE SIZE"));
    assert!(verbose.stdout.ends_with(
        "\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   SHARED\n"
    ));

    let cancelled = distill_with_input(dir.path(), &["prune"], "n\n");
    assert_eq!(cancelled.code, 1);
    assert!(cancelled.stdout.starts_with("WARNING! This will remove"));
    assert!(dir.path().join("ingest/blob-1-2-3").exists());

    let run = distill(dir.path(), &["prune", "-f"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "Total reclaimed space: 5kB\n");

    let run = distill(dir.path(), &["prune", "-a", "-f"]);
    assert!(
        run.stdout.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{}",
        run.stdout
    );
    let images = distill(dir.path(), &["images", "-q"]);
    assert_eq!(images.stdout.lines().count(), 2);
}

#[test]
fn builder_prune_asks_then_removes_dangling_build_cache() {
    let (dir, _store) = populated();
    let mount = dir.path().join("cache/mounts/go-build-0123456789ab");
    std::fs::create_dir_all(&mount).unwrap();
    std::fs::write(mount.join("obj"), vec![1u8; 2500]).unwrap();

    let df = distill(dir.path(), &["df"]);
    let last = df.stdout.lines().last().unwrap().to_string();
    assert_eq!(columns(&last), ["Build Cache", "1", "0", "2.5kB", "2.5kB"]);
    let verbose = distill(dir.path(), &["df", "-v"]);
    let entry = verbose.stdout.lines().last().unwrap().to_string();
    let cells = columns(&entry);
    assert_eq!(
        cells[..4],
        ["go-build-0123456789ab", "exec.cachemount", "2.5kB", "N/A"],
        "{}",
        verbose.stdout
    );
    assert!(cells[4].ends_with(" ago") && cells[5] == "false", "{entry}");

    let cancelled = distill_with_input(dir.path(), &["builder", "prune"], "n\n");
    assert_eq!(cancelled.code, 1);
    assert_eq!(
        cancelled.stdout,
        "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] "
    );
    assert!(mount.exists());

    let all = distill_with_input(dir.path(), &["builder", "prune", "-a"], "n\n");
    assert!(all.stdout.contains("This will remove all build cache."));

    let run = distill(
        dir.path(),
        &["builder", "prune", "-f", "--keep-storage", "1MB"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout, "Total reclaimed space: 0B\n",
        "within the limit"
    );

    let run = distill(
        dir.path(),
        &["builder", "prune", "-f", "--filter", "until=1h"],
    );
    assert_eq!(
        run.stdout, "Total reclaimed space: 0B\n",
        "used a moment ago"
    );

    let run = distill(dir.path(), &["builder", "prune", "-f"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "Deleted build cache objects:\ngo-build-0123456789ab\n\nTotal reclaimed space: 2.5kB\n"
    );
    assert!(!mount.exists());
    assert_eq!(
        distill(dir.path(), &["images", "-q"])
            .stdout
            .lines()
            .count(),
        3
    );

    let bad = distill(
        dir.path(),
        &["builder", "prune", "-f", "--filter", "label=x"],
    );
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("invalid filter \"label\""),
        "{}",
        bad.stderr
    );
    let bad = distill(
        dir.path(),
        &["builder", "prune", "-f", "--keep-storage", "lots"],
    );
    assert!(
        bad.stderr.contains("--keep-storage \"lots\""),
        "{}",
        bad.stderr
    );
}

/// A context whose Dockerfile copies two files in two steps (no RUN: no sandbox needed).
fn two_step_context(dir: &Path) -> std::path::PathBuf {
    let context = dir.join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("one"), vec![b'1'; 3000]).unwrap();
    std::fs::write(context.join("two"), b"second\n").unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY one /one\nCOPY two /two\n",
    )
    .unwrap();
    context
}

fn build(root: &Path, context: &Path, tag: &str) -> Run {
    distill(
        root,
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            tag,
            context.to_str().unwrap(),
        ],
    )
}

#[test]
fn the_build_cache_survives_rmi_and_prune_until_builder_prune() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let context = two_step_context(dir.path());
    let first = build(&root, &context, "app:1");
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.stderr.matches("CACHED").count(), 0);
    let images = distill(&root, &["images", "app"]);
    assert!(
        images.stdout.lines().nth(1).unwrap().ends_with("3.01kB"),
        "{}",
        images.stdout
    );

    assert_eq!(distill(&root, &["rmi", "app:1"]).code, 0);
    let prune = distill(&root, &["prune", "-a", "-f"]);
    assert_eq!(prune.code, 0, "{}", prune.stderr);
    let df = distill(&root, &["df"]);
    let cache_line = df.stdout.lines().last().unwrap().to_string();
    // Two step records (and the context's remembered hashes, unless its files are too new).
    let entries: usize = columns(&cache_line)[1].parse().unwrap();
    assert!((2..=3).contains(&entries), "{}", df.stdout);
    assert!(
        df.stdout.contains("\nBlobs             2 "),
        "{}",
        df.stdout
    );

    let again = build(&root, &context, "app:1");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stderr.matches("CACHED").count(),
        2,
        "{}",
        again.stderr
    );
    assert_eq!(again.stdout, first.stdout, "the same image ID");

    // A layer blob deleted by hand: its step is a miss and rebuilds, the image is whole.
    let store = Store::open(&root).unwrap();
    let image = store.image(&store.find("app:1").unwrap()).unwrap();
    let first_layer = store.blob_path(&image.manifest.layers[0].digest);
    assert_eq!(distill(&root, &["rmi", "app:1"]).code, 0);
    std::fs::remove_file(&first_layer).unwrap();
    let rebuilt = build(&root, &context, "app:1");
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    assert_eq!(
        rebuilt.stderr.matches("CACHED").count(),
        1,
        "{}",
        rebuilt.stderr
    );
    assert!(first_layer.exists(), "the layer was written again");
    let saved = distill(
        &root,
        &[
            "save",
            "-o",
            dir.path().join("app.tar").to_str().unwrap(),
            "app:1",
        ],
    );
    assert_eq!(saved.code, 0, "{}", saved.stderr);

    let pruned = distill(&root, &["builder", "prune", "-a", "-f"]);
    assert_eq!(pruned.code, 0, "{}", pruned.stderr);
    assert!(pruned.stdout.starts_with("Deleted build cache objects:\n"));
    let cold = build(&root, &context, "app:1");
    assert_eq!(cold.stderr.matches("CACHED").count(), 0, "{}", cold.stderr);
}

#[test]
fn concurrent_builds_and_prunes_never_leave_a_broken_image() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let context = two_step_context(dir.path());
    assert_eq!(build(&root, &context, "app:1").code, 0);
    for round in 0..4 {
        let pruner = {
            let root = root.clone();
            std::thread::spawn(move || {
                distill(&root, &["builder", "prune", "-a", "-f"]).code
                    + distill(&root, &["prune", "-a", "-f"]).code
            })
        };
        let built = build(&root, &context, &format!("app:{round}"));
        assert_eq!(built.code, 0, "{}", built.stderr);
        assert_eq!(pruner.join().unwrap(), 0);
        let tag = format!("app:{round}");
        let archive = dir.path().join(format!("{round}.tar"));
        let saved = distill(&root, &["save", "-o", archive.to_str().unwrap(), &tag]);
        assert_eq!(saved.code, 0, "round {round}: {}", saved.stderr);
    }
}

/// `docker images` and `distill images` show the same SIZE for the same image: Docker 20.10's
/// unpacked layer sizes (hardlinks once, symlinks by target length, directories nothing).
#[test]
fn sizes_match_docker_for_the_same_image() {
    if std::env::var("DISTILL_E2E").map_or(true, |v| v != "1") {
        eprintln!("skipped sizes_match_docker_for_the_same_image: set DISTILL_E2E=1 to run it");
        return;
    }
    let docker = "/usr/bin/docker";
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc/deep/er")).unwrap();
    std::fs::write(rootfs.join("bin/tool"), vec![7u8; 123_457]).unwrap();
    std::fs::write(rootfs.join("etc/deep/er/conf"), b"key=value\n").unwrap();
    std::fs::hard_link(rootfs.join("bin/tool"), rootfs.join("bin/tool-again")).unwrap();
    std::os::unix::fs::symlink("/bin/tool", rootfs.join("bin/link")).unwrap();
    let tarball = dir.path().join("rootfs.tar");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    let imported = distill(
        &root,
        &["import", tarball.to_str().unwrap(), "sizes-base:1"],
    );
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let context = dir.path().join("context");
    std::fs::create_dir_all(context.join("app")).unwrap();
    std::fs::write(context.join("app/data"), vec![1u8; 4321]).unwrap();
    std::os::unix::fs::symlink("data", context.join("app/alias")).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM sizes-base:1\nCOPY app /app\nWORKDIR /work\n",
    )
    .unwrap();
    let tag = format!("distill-sizes-{}:1", std::process::id());
    let built = build(&root, &context, &tag);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let archive = dir.path().join("image.tar");
    let saved = distill(&root, &["save", "-o", archive.to_str().unwrap(), &tag]);
    assert_eq!(saved.code, 0, "{}", saved.stderr);

    let docker_out = |args: &[&str]| {
        let output = Command::new(docker).args(args).output().unwrap();
        assert!(output.status.success(), "docker {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    docker_out(&["load", "-i", archive.to_str().unwrap()]);
    let docker_size = docker_out(&["image", "inspect", "-f", "{{.Size}}", &tag]);
    let docker_images = docker_out(&["images", "--format", "{{.Size}}", &tag]);
    let docker_history = docker_out(&["history", "--format", "{{.Size}}", &tag]);
    docker_out(&["rmi", &tag]);

    let inspect: Value = serde_json::from_str(&distill(&root, &["inspect", &tag]).stdout).unwrap();
    assert_eq!(inspect[0]["Size"].to_string(), docker_size.trim());
    assert_eq!(inspect[0]["Size"], 123_457 + 10 + 9 + 4321 + 4);
    let images = distill(&root, &["images", "--format", "json", &tag]);
    let row: Value = serde_json::from_str(images.stdout.trim()).unwrap();
    assert_eq!(row["Size"], docker_images.trim());
    let history = distill(&root, &["history", "--format", "json", &tag]);
    let sizes: Vec<String> = history
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["Size"].to_string())
        .map(|size| size.trim_matches('"').to_string())
        .collect();
    let docker_sizes: Vec<&str> = docker_history.lines().collect();
    assert_eq!(sizes, docker_sizes);
}
