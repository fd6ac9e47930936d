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
    assert!(object["Size"].as_str().unwrap().ends_with("kB"));
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
    assert!(app["Size"].as_u64().unwrap() > 2048);

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
    assert!(
        lines[1].starts_with("Images            3         2  "),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("%)"));
    assert!(lines[3].starts_with("Build Cache       0         0  "));

    let verbose = distill(dir.path(), &["df", "-v"]);
    assert!(verbose.stdout.contains("SHARED SIZE   UNIQUE SIZE"));

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
