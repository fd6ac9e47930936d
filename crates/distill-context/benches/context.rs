//! How fast a context of about 100,000 files is filtered: pure matching of every path against a
//! realistic `.dockerignore`, and a full walk of the tree on disk with the same patterns.
//!
//! Run with `cargo bench -p distill-context`; prints the median of several runs (CPU time of the
//! thread and wall-clock time). `CONTEXT_BENCH_MATCH_ONLY=1` skips the tree on disk.

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

/// Median wall-clock and CPU time of one run. The CPU time of this thread is what to compare
/// on a busy machine, where wall-clock time mostly measures waiting for a core.
struct Timing {
    wall: Duration,
    cpu: Duration,
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:.1} ms CPU, {:.1} ms wall",
            self.cpu.as_secs_f64() * 1e3,
            self.wall.as_secs_f64() * 1e3
        )
    }
}

fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Timing {
    let mut wall = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (start, start_cpu) = (Instant::now(), cpu_now());
        black_box(f());
        cpu.push(cpu_now().saturating_sub(start_cpu));
        wall.push(start.elapsed());
    }
    wall.sort();
    cpu.sort();
    Timing {
        wall: wall[runs / 2],
        cpu: cpu[runs / 2],
    }
}

/// Every file and directory of the tree, parents first, each with its parent's index.
fn walk_order(files: &[String]) -> Vec<(String, Option<usize>)> {
    let mut sorted: Vec<&String> = files.iter().collect();
    sorted.sort();
    let mut nodes: Vec<(String, Option<usize>)> = Vec::new();
    // The indexes of the directories enclosing the previous path, outermost first.
    let mut open: Vec<usize> = Vec::new();
    for file in sorted {
        let parts: Vec<&str> = file.split('/').collect();
        let mut depth = 0;
        while depth < open.len()
            && depth + 1 < parts.len()
            && nodes[open[depth]].0 == parts[..=depth].join("/")
        {
            depth += 1;
        }
        open.truncate(depth);
        for level in depth..parts.len() {
            nodes.push((parts[..=level].join("/"), open.last().copied()));
            if level + 1 < parts.len() {
                open.push(nodes.len() - 1);
            }
        }
    }
    nodes
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
        "match (is_excluded, parents re-matched): {} paths, {excluded} excluded, {standalone}",
        files.len(),
    );

    // What a walker does: every directory decided once, its results handed down to its
    // children, so each path is matched against the patterns on its own.
    let nodes = walk_order(&files);
    let mut infos: Vec<MatchInfo> = nodes.iter().map(|_| MatchInfo::new(&matcher)).collect();
    let with_parent = time(21, || {
        let mut count = 0;
        for (index, (path, parent)) in nodes.iter().enumerate() {
            let (done, rest) = infos.split_at_mut(index);
            let parent_info = parent.map(|p| &done[p]);
            count += usize::from(matcher.is_excluded_with_parent(
                path.as_bytes(),
                parent_info,
                &mut rest[0],
            ));
        }
        count
    });
    println!(
        "match (is_excluded_with_parent, as a walker): {} paths with directories, {with_parent}",
        nodes.len()
    );
    if std::env::var_os("CONTEXT_BENCH_MATCH_ONLY").is_some() {
        return;
    }

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
    println!("walk + match: {listed} entries listed, {walked}");
    let everything = Matcher::default();
    let mut all = 0;
    let walked_all = time(7, || {
        let entries = walk(dir.path(), &everything).expect("walk the benchmark tree");
        all = entries.len();
        entries
    });
    println!("walk without patterns: {all} entries listed, {walked_all}");
}
