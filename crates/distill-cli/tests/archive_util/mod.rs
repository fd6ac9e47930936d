//! Helpers for the archive tests: run the built `distill` on a temporary store, write tar
//! streams by hand (so tests can make exactly the broken archives they need), and take a
//! fingerprint of a store to prove a refused load changed nothing.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary store and the `distill` binary to run on it.
pub struct Distill {
    pub root: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Distill {
    pub fn new() -> Distill {
        let dir = tempfile::tempdir().expect("temporary directory");
        Distill {
            root: dir.path().join("store"),
            dir,
        }
    }

    /// A path in this test's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_distill"));
        command.arg("--root").arg(&self.root);
        command
            .env_remove("DISTILL_ROOT")
            .env_remove("SOURCE_DATE_EPOCH");
        command
    }

    /// Runs `distill ARGS` with `stdin` as input and returns what it did.
    pub fn run_with_input(&self, args: &[&str], stdin: Option<&Path>) -> Output {
        let mut command = self.command();
        command.args(args);
        match stdin {
            Some(path) => command.stdin(std::fs::File::open(path).expect("input file")),
            None => command.stdin(Stdio::null()),
        };
        command.output().expect("running distill")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, None)
    }

    /// Runs `distill ARGS`, panicking with its output if it fails; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_success(&output, &format!("distill {}", args.join(" ")));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `distill ARGS` expecting failure; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "distill {} should have failed; stdout:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout)
        );
        assert_eq!(
            output.status.code(),
            Some(1),
            "exit status of a refused command"
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Everything in the store that a load could change: the image index and the set of blobs.
    pub fn fingerprint(&self) -> StoreFingerprint {
        let index = std::fs::read(self.root.join("index.json")).unwrap_or_default();
        let mut blobs = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(self.root.join("blobs/sha256")) {
            for entry in entries.flatten() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                blobs.insert(entry.file_name().to_string_lossy().into_owned(), size);
            }
        }
        let ingest = std::fs::read_dir(self.root.join("ingest"))
            .map(|entries| entries.count())
            .unwrap_or(0);
        StoreFingerprint {
            index,
            blobs,
            ingest,
        }
    }

    /// The diff IDs of the image `tag` (full reference as the store records it), read from the
    /// store's own OCI layout.
    pub fn diff_ids(&self, full_reference: &str) -> Vec<String> {
        let index = read_json(&self.root.join("index.json"));
        let entry = index["manifests"]
            .as_array()
            .expect("index manifests")
            .iter()
            .find(|entry| entry["annotations"]["io.containerd.image.name"] == full_reference)
            .unwrap_or_else(|| panic!("{full_reference} not in the store index: {index}"));
        let manifest = read_json(&self.blob(entry["digest"].as_str().expect("digest")));
        let config = read_json(&self.blob(manifest["config"]["digest"].as_str().expect("config")));
        config["rootfs"]["diff_ids"]
            .as_array()
            .expect("diff_ids")
            .iter()
            .map(|d| d.as_str().expect("diff id").to_string())
            .collect()
    }

    pub fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.root.join("blobs/sha256").join(hex)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct StoreFingerprint {
    pub index: Vec<u8>,
    pub blobs: BTreeMap<String, u64>,
    /// Leftover staging files (there must be none after a command).
    pub ingest: usize,
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes =
        std::fs::read(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|err| panic!("parsing {}: {err}", path.display()))
}

pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One entry of a hand-written tar stream.
pub enum TarEntry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

/// A ustar stream of `entries`, names written verbatim (even `..` or absolute ones), ending
/// with the two zero blocks.
pub fn tar_bytes(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let (name, data, kind, link, mode): (&str, &[u8], u8, &str, u32) = match entry {
            TarEntry::File(name, data) => (name, data, b'0', "", 0o644),
            TarEntry::Dir(name) => (name, b"", b'5', "", 0o755),
            TarEntry::Symlink(name, target) => (name, b"", b'2', target, 0o777),
            TarEntry::HardLink(name, target) => (name, b"", b'1', target, 0o644),
        };
        let mut header = [0u8; 512];
        assert!(
            name.len() <= 100 && link.len() <= 100,
            "test names fit ustar"
        );
        header[..name.len()].copy_from_slice(name.as_bytes());
        write_octal(&mut header[100..108], u64::from(mode));
        write_octal(&mut header[108..116], 0);
        write_octal(&mut header[116..124], 0);
        write_octal(&mut header[124..136], data.len() as u64);
        write_octal(&mut header[136..148], 0);
        header[156] = kind;
        header[157..157 + link.len()].copy_from_slice(link.as_bytes());
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        write_octal(&mut header[148..155], u64::from(sum));
        header[155] = b' ';
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// `value` in octal, zero-padded, NUL-terminated, filling `field`.
fn write_octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

/// A small root filesystem tarball: a few files, a directory, a symlink and a hard link.
pub fn small_rootfs() -> Vec<u8> {
    tar_bytes(&[
        TarEntry::Dir("./"),
        TarEntry::Dir("etc/"),
        TarEntry::File("etc/hostname", b"distill-test\n"),
        TarEntry::File("etc/motd", &[b'x'; 3000]),
        TarEntry::Symlink("etc/issue", "motd"),
        TarEntry::HardLink("etc/motd.copy", "etc/motd"),
    ])
}

/// Runs a command and returns its stdout, panicking with everything it printed if it fails.
pub fn run_tool(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("running {command:?}: {err}"));
    assert_success(&output, &format!("{command:?}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Extracts the tar `archive` into a new directory `dir` with the system's tar.
pub fn untar(archive: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).expect("creating extraction dir");
    run_tool(
        Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(dir),
    );
}

/// Packs the contents of `dir` into the tar `archive` with the system's tar (sorted names).
pub fn tar_dir(dir: &Path, archive: &Path) {
    run_tool(
        Command::new("tar")
            .arg("--sort=name")
            .arg("-cf")
            .arg(archive)
            .arg("-C")
            .arg(dir)
            .arg("."),
    );
}
