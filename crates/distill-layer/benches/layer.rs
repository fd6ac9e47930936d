//! Layer throughput and memory: writes a generated ~500 MB tree as a layer (gzip on one thread,
//! gzip on every CPU, zstd) and extracts it again, printing MB/s and peak RSS.
//!
//! Each variant runs in its own child process so that its peak RSS (`VmHWM`) is its own. Besides
//! wall-clock MB/s it prints MB per CPU-second (all threads), which stays meaningful on a
//! machine shared with other work.
//! `cargo bench -p distill-layer --bench layer`; `DISTILL_BENCH_MB` changes the tree size and
//! `DISTILL_BENCH_DIR` where it is generated (default: the system temp dir).

use std::fs;
use std::io::{BufWriter, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use distill_layer::{extract, write_layer, Compression, ExtractOptions, TreeOptions};

const MIB: u64 = 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == "--variant") {
        let variant = &args[position + 1];
        let tree = PathBuf::from(&args[position + 2]);
        run_variant(variant, &tree);
        return;
    }

    let total_mb: u64 = std::env::var("DISTILL_BENCH_MB")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(500);
    let base = std::env::var_os("DISTILL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("distill-layer-bench-{}", std::process::id()));
    let tree = base.join("tree");
    let started = Instant::now();
    let (files, bytes) = generate(&tree, total_mb * MIB);
    println!(
        "tree: {files} files, {:.0} MB, generated in {:.1}s; {} CPUs",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
    );
    println!(
        "{:<14} {:>10} {:>12} {:>12} {:>14} {:>8} {:>8} {:>8}",
        "variant",
        "write MB/s",
        "write MB/cpu",
        "extract MB/s",
        "extract MB/cpu",
        "ratio",
        "blob MB",
        "RSS MB"
    );
    let me = std::env::current_exe().expect("the benchmark's own path");
    for variant in ["gzip-1", "gzip-parallel", "zstd", "none"] {
        let status = Command::new(&me)
            .arg("--variant")
            .arg(variant)
            .arg(&tree)
            .status()
            .expect("run a benchmark variant");
        assert!(status.success(), "variant {variant} failed");
    }
    let _ = fs::remove_dir_all(&base);
}

fn run_variant(variant: &str, tree: &Path) {
    let compression = match variant {
        "gzip-1" => Compression::gzip().with_threads(NonZeroUsize::MIN),
        "gzip-parallel" => Compression::gzip(),
        "zstd" => Compression::zstd(),
        "none" => Compression::None,
        other => panic!("unknown variant {other}"),
    };
    let work = tree.with_file_name(format!("work-{variant}"));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).expect("create the work directory");
    let blob_path = work.join("layer.blob");

    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let blob = BufWriter::with_capacity(
        256 * 1024,
        fs::File::create(&blob_path).expect("create the blob"),
    );
    let layer = write_layer(tree, &TreeOptions::new(), blob, compression).expect("write layer");
    let write_seconds = started.elapsed().as_secs_f64();
    let write_cpu = cpu_seconds() - cpu_started;

    let target = work.join("extracted");
    fs::create_dir_all(&target).expect("create the target");
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let options = ExtractOptions {
        expected_diff_id: Some(layer.diff_id),
        expected_digest: Some(layer.digest),
        ..Default::default()
    };
    let blob = fs::File::open(&blob_path).expect("open the blob");
    extract(blob, &target, &options).expect("extract layer");
    let extract_seconds = started.elapsed().as_secs_f64();
    let extract_cpu = cpu_seconds() - cpu_started;

    let megabytes = layer.uncompressed_size as f64 / 1e6;
    println!(
        "{:<14} {:>10.1} {:>12.1} {:>12.1} {:>14.1} {:>8.2} {:>8.1} {:>8.1}",
        variant,
        megabytes / write_seconds,
        megabytes / write_cpu,
        megabytes / extract_seconds,
        megabytes / extract_cpu,
        layer.uncompressed_size as f64 / layer.size as f64,
        layer.size as f64 / 1e6,
        peak_rss_kb() as f64 / 1024.0,
    );
    std::io::stdout().flush().ok();
    let _ = fs::remove_dir_all(&work);
}

/// User plus system CPU time of the whole process (all threads) so far, from
/// `/proc/self/stat`: on a shared machine, MB per CPU-second says more than MB per second.
fn cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let total = ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0);
    total / USER_HZ
}

/// Clock ticks per second in `/proc/*/stat`: 100 on every Linux architecture we build for.
const USER_HZ: f64 = 100.0;

/// `VmHWM` from `/proc/self/status`, in KiB.
fn peak_rss_kb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Fills `root` with about `total` bytes: a few large files, many medium ones and a crowd of
/// small ones, in nested directories, with content that compresses roughly like binaries.
fn generate(root: &Path, total: u64) -> (u64, u64) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Shares of the total: half in 10 MiB files, 40% in 100 KiB files, 10% in 4 KiB files.
    let classes = [
        (total / 2, 10 * MIB),
        (total * 2 / 5, 100 * 1024),
        (total / 10, 4096),
    ];
    let mut files = 0;
    let mut bytes = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    for (class, (share, size)) in classes.iter().enumerate() {
        let count = (share / size).max(1);
        for index in 0..count {
            let dir = root.join(format!("c{class}/d{:03}", index % 97));
            fs::create_dir_all(&dir).expect("create a directory");
            let mut file = BufWriter::new(
                fs::File::create(dir.join(format!("f{index:06}"))).expect("create a file"),
            );
            let mut left = *size;
            while left > 0 {
                // Half random bytes, half runs of text: compresses about 2:1 like a binary.
                for block in chunk.chunks_mut(512) {
                    if next() % 2 == 0 {
                        for byte in block.iter_mut() {
                            *byte = next() as u8;
                        }
                    } else {
                        let word = b"distill layer benchmark ";
                        for (position, byte) in block.iter_mut().enumerate() {
                            *byte = word[position % word.len()];
                        }
                    }
                }
                let take = left.min(chunk.len() as u64) as usize;
                file.write_all(&chunk[..take]).expect("write a file");
                left -= take as u64;
            }
            file.flush().expect("flush a file");
            files += 1;
            bytes += size;
        }
    }
    (files, bytes)
}
