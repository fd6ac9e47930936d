//! Other tools read what we write: Go's archive/tar (containerd's header choices) writes the very
//! same bytes, and GNU gzip/tar, zstd and Python's tarfile accept our layers.

mod common;

use std::fs;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::{Command, Output};

use common::{build_tree, Scratch};
use distill_layer::{write_layer, Compression, TreeOptions, Xattrs};

fn tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Adds a file big enough to span several parallel gzip blocks.
fn add_big_file(root: &Path) {
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 24) as u8 & 0x3f)
        .collect();
    fs::write(root.join("big.bin"), data).unwrap();
}

#[test]
fn go_archive_tar_writes_the_same_bytes() {
    if !go_available() {
        return;
    }
    let scratch = Scratch::new("go");
    let source = scratch.dir("source");
    build_tree(&source);
    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go/reference_tar.go");
    let output = run(Command::new("go")
        .arg("run")
        .arg(reference)
        .arg(&source)
        .env("GO111MODULE", "off"));
    let mut ours = Vec::new();
    let options = TreeOptions::new().xattrs(Xattrs::CapabilitiesOnly);
    write_layer(&source, &options, &mut ours, Compression::None).unwrap();
    if ours != output.stdout {
        let at = ours
            .iter()
            .zip(&output.stdout)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(output.stdout.len()));
        let block = at / 512 * 512;
        panic!(
            "differs from Go at byte {at} (lengths {} and {}); block at {block}:\nours {:?}\ngo   {:?}",
            ours.len(),
            output.stdout.len(),
            String::from_utf8_lossy(&ours[block..(block + 512).min(ours.len())]),
            String::from_utf8_lossy(&output.stdout[block..(block + 512).min(output.stdout.len())]),
        );
    }
}

#[test]
fn gzip_and_tar_accept_parallel_gzip_layers() {
    let scratch = Scratch::new("gnu");
    let source = scratch.dir("source");
    build_tree(&source);
    add_big_file(&source);
    let blob = scratch.join("layer.tar.gz");
    let compression = Compression::gzip().with_threads(NonZeroUsize::new(3).unwrap());
    write_layer(
        &source,
        &TreeOptions::new(),
        fs::File::create(&blob).unwrap(),
        compression,
    )
    .unwrap();
    run(Command::new("gzip").arg("-t").arg(&blob));
    let listing = run(Command::new("tar").arg("-tzf").arg(&blob));
    let listing = String::from_utf8(listing.stdout).unwrap();
    for path in [
        "etc/hostname",
        "usr/bin/ping6",
        "big.bin",
        "caf\u{e9}.txt",
        &format!("{}/{}", "d".repeat(90), "f".repeat(60)),
    ] {
        assert!(
            listing.lines().any(|line| line == path),
            "{path} missing from:\n{listing}"
        );
    }
    let unpacked = scratch.dir("unpacked");
    run(Command::new("tar")
        .arg("--xattrs")
        .arg("--xattrs-include=*")
        .arg("-xzf")
        .arg(&blob)
        .arg("-C")
        .arg(&unpacked));
    assert_eq!(
        fs::read(unpacked.join("big.bin")).unwrap(),
        fs::read(source.join("big.bin")).unwrap()
    );
    assert_eq!(
        common::snapshot(&unpacked)["etc/hostname"].xattrs,
        vec![(b"user.distill.note".to_vec(), b"kept\0binary".to_vec())]
    );
}

#[test]
fn zstd_tool_accepts_zstd_layers() {
    if !tool("zstd") {
        eprintln!("skipped: zstd is not installed");
        return;
    }
    let scratch = Scratch::new("zstd");
    let source = scratch.dir("source");
    build_tree(&source);
    add_big_file(&source);
    let blob = scratch.join("layer.tar.zst");
    write_layer(
        &source,
        &TreeOptions::new(),
        fs::File::create(&blob).unwrap(),
        Compression::zstd(),
    )
    .unwrap();
    run(Command::new("zstd").arg("-q").arg("-t").arg(&blob));
    let listing = run(Command::new("tar").arg("--zstd").arg("-tf").arg(&blob));
    assert!(String::from_utf8_lossy(&listing.stdout).contains("big.bin"));
}

#[test]
fn python_tarfile_reads_our_pax_headers() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let scratch = Scratch::new("python");
    let source = scratch.dir("source");
    build_tree(&source);
    let blob = scratch.join("layer.tar.gz");
    write_layer(
        &source,
        &TreeOptions::new(),
        fs::File::create(&blob).unwrap(),
        Compression::gzip(),
    )
    .unwrap();
    run(Command::new("python3")
        .args(["-m", "tarfile", "-l"])
        .arg(&blob));
    let script = r#"
import sys, tarfile
with tarfile.open(sys.argv[1]) as archive:
    for member in archive:
        xattrs = sorted(k for k in member.pax_headers if k.startswith("SCHILY.xattr."))
        print(member.name, member.type.decode(), oct(member.mode), member.uid, member.uname or "-",
              ",".join(xattrs) or "-", sep="|")
"#;
    let output = run(Command::new("python3").arg("-c").arg(script).arg(&blob));
    let text = String::from_utf8(output.stdout).unwrap();
    let line = |name: &str| {
        text.lines()
            .find(|line| line.split('|').next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
            .to_string()
    };
    assert!(line("etc/hostname").ends_with("|SCHILY.xattr.user.distill.note"));
    assert!(line("caf\u{e9}.txt").starts_with("caf\u{e9}.txt|0|0o644|"));
    assert!(line("usr/bin").starts_with("usr/bin|5|0o2775|"));
    line(&format!("{}/{}", "d".repeat(90), "f".repeat(60)));
    assert!(line("usr/bin/ping6").starts_with("usr/bin/ping6|1|"));
    assert!(
        !text.lines().any(|l| l.split('|').nth(4) != Some("-")),
        "unames must be empty:\n{text}"
    );
    if common::is_root() {
        assert!(line("etc/hostname").contains("|3000000|"));
        assert!(line("usr/bin/ping").contains("SCHILY.xattr.security.capability"));
    }
}

#[test]
fn go_gzip_reads_parallel_gzip_as_one_member() {
    if !go_available() {
        return;
    }
    let scratch = Scratch::new("go-gzip");
    let source = scratch.dir("source");
    build_tree(&source);
    add_big_file(&source);
    let blob = scratch.join("layer.tar.gz");
    let compression = Compression::gzip().with_threads(NonZeroUsize::new(2).unwrap());
    let layer = write_layer(
        &source,
        &TreeOptions::new(),
        fs::File::create(&blob).unwrap(),
        compression,
    )
    .unwrap();
    assert!(layer.uncompressed_size > 2 << 20, "several gzip blocks");
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go/gunzip_single.go");
    let output = run(Command::new("go")
        .arg("run")
        .arg(program)
        .env("GO111MODULE", "off")
        .stdin(fs::File::open(&blob).unwrap()));
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        layer.diff_id.to_string()
    );
}

/// Whether the Go toolchain is here. Without it the Go comparisons are skipped, except under
/// `DISTILL_E2E=1` (the project's test script installs Go), where its absence is a failure.
fn go_available() -> bool {
    if Command::new("go").arg("version").output().is_ok() {
        return true;
    }
    if std::env::var_os("DISTILL_E2E").is_some_and(|v| v == "1") {
        panic!("DISTILL_E2E=1 but the Go toolchain is not installed (scripts/test-deps installs golang-go)");
    }
    eprintln!("skipped: the Go toolchain is not installed");
    false
}
