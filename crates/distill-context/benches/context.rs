//! How fast a context of about 100,000 files is filtered: pure matching of every path against a
//! realistic `.dockerignore`, and a full walk of the tree on disk with the same patterns.
//!
//! Run with `cargo bench -p distill-context`; prints the median of several runs.

use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use distill_context::{walk, IgnoreFile, MatchInfo, Matcher};

const DOCKERIGNORE: &str = "\
# Version control and dependencies
.git
node_modules
!node_modules/keep-me/**

# Logs anywhere, but keep one
**/*.log
!important.log

# Build output and caches
build/
dist
*.tmp
**/__pycache__
coverage/**
.env*
**/.DS_Store
tmp?
[Tt]humbs.db

# Documentation sources, except the top README of docs
docs/**/*.md
!docs/README.md
";

/// The relative paths of the benchmark tree: files only (directories follow from them).
fn tree() -> Vec<String> {
    let mut files = Vec::with_capacity(100_000);
    // Dependencies: 400 packages of 100 files each, a few levels deep.
    for package in 0..400 {
        let name = if package == 0 {
            "keep-me".to_string()
        } else {
            format!("pkg-{package:03}")
        };
        for file in 0..100 {
            files.push(format!(
                "node_modules/{name}/lib/part{}/module{file:02}.js",
                file % 4
            ));
        }
    }
    // Version control: 256 object directories of 60 objects.
    for dir in 0..256 {
        for object in 0..60 {
            files.push(format!(".git/objects/{dir:02x}/{object:038x}"));
        }
    }
    // Sources: 100 packages × 5 modules × 50 files, with logs and bytecode caches mixed in.
    for package in 0..100 {
        for module in 0..5 {
            for file in 0..50 {
                let leaf = match file % 10 {
                    0 => format!("run{file}.log"),
                    1 => format!("__pycache__/mod{file}.pyc"),
                    2 => format!("scratch{file}.tmp"),
                    _ => format!("file{file}.py"),
                };
                files.push(format!("src/pkg{package:02}/mod{module}/{leaf}"));
            }
        }
    }
    // Build output.
    for file in 0..5_000 {
        files.push(format!("build/out/{}/obj{file}.o", file % 50));
    }
    // Documentation.
    for dir in 0..50 {
        for file in 0..40 {
            let ext = if file % 2 == 0 { "md" } else { "png" };
            files.push(format!("docs/section{dir:02}/page{file:02}.{ext}"));
        }
    }
    files.push("docs/README.md".to_string());
    files.push("important.log".to_string());
    files.push("debug.log".to_string());
    files.push(".env.local".to_string());
    files.push("Thumbs.db".to_string());
    // Top up with plain assets to reach 100,000 files.
    let mut asset = 0;
    while files.len() < 100_000 {
        files.push(format!("assets/img{}/a{asset}.svg", asset % 100));
        asset += 1;
    }
    files
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    median(samples)
}

fn create(root: &Path, files: &[String]) {
    for file in files {
        let path = root.join(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create benchmark directory");
        }
        fs::write(&path, b"x").expect("create benchmark file");
    }
    fs::write(root.join(".dockerignore"), DOCKERIGNORE).expect("write .dockerignore");
}

fn main() {
    let files = tree();
    let ignore = IgnoreFile::parse(DOCKERIGNORE, ".dockerignore");
    let matcher = Matcher::from_ignore_file(&ignore).expect("benchmark patterns compile");

    let standalone = time(21, || {
        files
            .iter()
            .filter(|path| matcher.is_excluded(path))
            .count()
    });
    let excluded = files.iter().filter(|p| matcher.is_excluded(p)).count();
    println!(
        "match (is_excluded, parents re-matched): {} paths, {} excluded, median {:.2} ms",
        files.len(),
        excluded,
        standalone.as_secs_f64() * 1e3
    );

    // What a walker does: the parent directory's results handed down, so each path is matched
    // against the patterns on its own. Directories are matched too, once each.
    let with_parent = time(21, || {
        let mut count = 0;
        let mut parent = MatchInfo::new(&matcher);
        let mut own = MatchInfo::new(&matcher);
        for path in &files {
            let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            matcher.is_excluded_with_parent(dir.as_bytes(), None, &mut parent);
            let parent_ref = (!dir.is_empty()).then_some(&parent);
            count +=
                usize::from(matcher.is_excluded_with_parent(path.as_bytes(), parent_ref, &mut own));
        }
        count
    });
    println!(
        "match (is_excluded_with_parent, parent dir matched too): median {:.2} ms",
        with_parent.as_secs_f64() * 1e3
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let started = Instant::now();
    create(dir.path(), &files);
    println!(
        "created {} files in {:.1} s",
        files.len(),
        started.elapsed().as_secs_f64()
    );

    let mut listed = 0;
    let walked = time(7, || {
        let entries = walk(dir.path(), &matcher).expect("walk the benchmark tree");
        listed = entries.len();
        entries
    });
    println!(
        "walk + match: {listed} entries listed, median {:.1} ms",
        walked.as_secs_f64() * 1e3
    );
    let everything = Matcher::default();
    let mut all = 0;
    let walked_all = time(7, || {
        let entries = walk(dir.path(), &everything).expect("walk the benchmark tree");
        all = entries.len();
        entries
    });
    println!(
        "walk without patterns: {all} entries listed, median {:.1} ms",
        walked_all.as_secs_f64() * 1e3
    );
}
