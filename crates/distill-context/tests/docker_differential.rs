//! The walker against a real Docker: the same context and ignore file, built with
//! `FROM scratch` / `COPY . /`, must give the same list of files.
//!
//! Needs a running Docker engine and its CLI, so it only runs when asked:
//! `cargo test -p distill-context --test docker_differential -- --ignored`.
//!
//! The reference is the Docker CLI's own context archive (`DOCKER_BUILDKIT=0`), which uses the
//! same moby/patternmatcher as BuildKit's file transfer. Two differences of that path are kept
//! out of the cases: the CLI always sends `Dockerfile` and `.dockerignore` (they are left out of
//! the comparison), and it walks into an excluded directory only for an exception that names
//! the directory literally, where BuildKit also does for exceptions with wildcards.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use distill_context::{walk, FileKind, IgnoreFile, Matcher};

const CASES: &[(&str, &[&str])] = &[
    (
        "**foo\n!../../x\n*/file\n!dir\na^b*\n[!a]\na[^x]b\nbuild\n!build/keep\n\
         node_modules\n!node_modules/keep/**\n**]\n[Tt]humbs.db\n**/*.log\n!important.log\n",
        &[
            "barfoo",
            "foo",
            "xfoo",
            "dir/file",
            "dir/other",
            "a/b",
            "a^b",
            "a^bc",
            "!",
            "c",
            "Thumbs.db",
            "thumbs.db",
            "sub/deep/barfoo",
            "build/keep/k",
            "build/z",
            "node_modules/keep/a.js",
            "node_modules/drop/b.js",
            "x]",
            "]",
            "important.log",
            "sub/important.log",
            "sub/deep/x.log",
            "x/y",
        ],
    ),
    (
        "x*[a-]\nx*[]a]\n**/*[-_]test.go\n",
        &[
            "xa",
            "x-",
            "xb",
            "x]",
            "xc",
            "a/b_test.go",
            "a/b-test.go",
            "a/btest.go",
        ],
    ),
    (
        "*\n!src\nsrc/**/*.tmp\n!src/keep.tmp\n",
        &[
            "README.md",
            "src/a.rs",
            "src/b.tmp",
            "src/keep.tmp",
            "src/deep/c.tmp",
            "docs/x",
        ],
    ),
    (
        "  # a pattern, not a comment\n# a comment\n/abs/\n./rel/../cleaned\n\n  spaced  \n",
        &[
            "# a pattern, not a comment",
            "abs/x",
            "cleaned",
            "rel",
            "spaced",
            "keep",
        ],
    ),
    (
        "a/**/b\n**/c/**\nd?\ne[0-9]\n",
        &[
            "a/b", "a/x/y/b", "a/xb", "c/1", "z/c/2", "cc", "da", "dab", "e5", "ex",
        ],
    ),
];

#[test]
#[ignore = "needs a Docker engine; run with --ignored"]
fn walker_lists_what_docker_sends() {
    for (index, (ignore, files)) in CASES.iter().enumerate() {
        let context = tempfile::tempdir().expect("temporary directory");
        for file in *files {
            let path = context.path().join(file);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).expect("create directory");
            }
            fs::write(&path, file).expect("write file");
        }
        fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY . /\n",
        )
        .expect("write");
        fs::write(context.path().join(".dockerignore"), ignore).expect("write");

        let matcher = Matcher::from_ignore_file(&IgnoreFile::parse(ignore, ".dockerignore"))
            .expect("case patterns compile");
        let ours: BTreeSet<String> = walk(context.path(), &matcher)
            .expect("walk")
            .iter()
            .map(|e| {
                let slash = if e.kind == FileKind::Dir { "/" } else { "" };
                format!("{}{slash}", e.path.display())
            })
            .filter(|p| p != "Dockerfile" && p != ".dockerignore")
            .collect();
        let theirs = docker_listing(context.path(), index);
        assert_eq!(ours, theirs, "case {index}: {ignore:?}");
    }
}

/// The paths of the image Docker builds from `context`, from the layers of `docker save`.
fn docker_listing(context: &Path, index: usize) -> BTreeSet<String> {
    let tag = format!("distill-context-differential:{index}");
    let build = Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(context)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run docker build");
    assert!(
        build.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let out = tempfile::tempdir().expect("temporary directory");
    let archive = out.path().join("image.tar");
    let save = Command::new("docker")
        .args(["save", "-o"])
        .arg(&archive)
        .arg(&tag)
        .output()
        .expect("run docker save");
    let _ = Command::new("docker").args(["rmi", &tag]).output();
    if !save.status.success() {
        // An image without layers (everything excluded) cannot be saved.
        let message = String::from_utf8_lossy(&save.stderr);
        assert!(message.contains("empty export"), "docker save: {message}");
        return BTreeSet::new();
    }
    let unpacked = out.path().join("image");
    fs::create_dir(&unpacked).expect("mkdir");
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .expect("run tar");
    assert!(status.success(), "unpack the saved image");
    let mut paths = BTreeSet::new();
    let mut pending = vec![unpacked];
    while let Some(dir) = pending.pop() {
        for item in fs::read_dir(&dir).expect("read unpacked image") {
            let path = item.expect("read unpacked image").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            // Layers are the members that are themselves tar archives.
            let listing = Command::new("tar")
                .arg("-tf")
                .arg(&path)
                .output()
                .expect("tar");
            if !listing.status.success() || path.ends_with("image.tar") {
                continue;
            }
            for line in String::from_utf8_lossy(&listing.stdout).lines() {
                if line != "Dockerfile" && line != ".dockerignore" {
                    paths.insert(line.to_string());
                }
            }
        }
    }
    paths
}
