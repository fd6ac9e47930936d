//! Archives built to escape the target, or broken on the way, are refused with an error naming
//! the entry, and nothing is written outside the target.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{listing, Scratch};
use distill_layer::{
    extract, Compression, EntryHeader, EntryKind, ExtractOptions, LayerError, LayerWriter,
    Sha256Digest, TarWriter,
};

/// A raw tar (no validation by the writer: it writes whatever paths it is given).
fn tar_of(entries: &[(EntryHeader, &[u8])]) -> Vec<u8> {
    let mut writer = TarWriter::new(Vec::new());
    for (header, data) in entries {
        writer.append(header, *data).unwrap();
    }
    writer.finish().unwrap()
}

fn file(path: &str, data: &[u8]) -> (EntryHeader, &'static [u8]) {
    let mut header = EntryHeader::new(path, EntryKind::File);
    header.mode = 0o644;
    header.size = data.len() as u64;
    (header, Box::leak(data.to_vec().into_boxed_slice()))
}

fn dir(path: &str) -> (EntryHeader, &'static [u8]) {
    let mut header = EntryHeader::new(path, EntryKind::Dir);
    header.mode = 0o755;
    (header, &[])
}

fn link(path: &str, kind: EntryKind, target: &str) -> (EntryHeader, &'static [u8]) {
    let mut header = EntryHeader::new(path, kind);
    header.mode = 0o777;
    header.link_target = target.as_bytes().to_vec();
    (header, &[])
}

/// A jail holding the target and a sibling `outside` directory with one file.
struct Jail {
    scratch: Scratch,
    target: PathBuf,
}

impl Jail {
    fn new() -> Jail {
        let scratch = Scratch::new("crafted");
        let target = scratch.dir("target");
        fs::create_dir_all(scratch.join("outside")).unwrap();
        fs::write(scratch.join("outside/secret"), b"untouched").unwrap();
        Jail { scratch, target }
    }

    fn outside(&self) -> PathBuf {
        self.scratch.join("outside")
    }

    /// Extracts `blob` and returns the error, checking nothing changed outside the target.
    fn refuse(&self, blob: &[u8], options: &ExtractOptions) -> LayerError {
        let before: Vec<PathBuf> = listing(self.scratch.path())
            .into_iter()
            .filter(|path| !path.starts_with(&self.target))
            .collect();
        let err = extract(blob, &self.target, options).expect_err("the archive must be refused");
        let after: Vec<PathBuf> = listing(self.scratch.path())
            .into_iter()
            .filter(|path| !path.starts_with(&self.target))
            .collect();
        assert_eq!(before, after, "something was written outside the target");
        assert_eq!(
            fs::read(self.scratch.join("outside/secret")).unwrap(),
            b"untouched"
        );
        err
    }
}

fn assert_message(err: &LayerError, expected: &[&str]) {
    let message = err.to_string();
    for part in expected {
        assert!(
            message.contains(part),
            "`{message}` should contain `{part}`"
        );
    }
}

#[test]
fn dot_dot_is_refused() {
    let jail = Jail::new();
    let blob = tar_of(&[file("ok", b"1"), file("../escaped", b"2")]);
    let err = jail.refuse(&blob, &ExtractOptions::default());
    assert_message(&err, &["layer entry 1 `../escaped`", "`..`"]);
    assert!(!jail.scratch.join("escaped").exists());
    // Hidden in the middle of a path, too.
    let blob = tar_of(&[file("a/../../escaped", b"2")]);
    assert_message(&jail.refuse(&blob, &ExtractOptions::default()), &["`..`"]);
}

#[test]
fn absolute_paths_are_refused() {
    let jail = Jail::new();
    let absolute = jail.outside().join("planted");
    let blob = tar_of(&[file(absolute.to_str().unwrap(), b"x")]);
    let err = jail.refuse(&blob, &ExtractOptions::default());
    assert_message(&err, &["layer entry 0", "absolute path"]);
    assert!(!absolute.exists());
}

#[test]
fn symlinked_parent_to_an_absolute_path_is_refused() {
    let jail = Jail::new();
    let blob = tar_of(&[
        link("a", EntryKind::Symlink, "/etc"),
        file("a/distill-crafted-should-not-exist", b"x"),
    ]);
    let err = jail.refuse(&blob, &ExtractOptions::default());
    assert_message(
        &err,
        &[
            "layer entry 1 `a/distill-crafted-should-not-exist`",
            "parent `a` is a symlink to the absolute path `/etc`",
        ],
    );
    assert!(!Path::new("/etc/distill-crafted-should-not-exist").exists());

    // The same with the jail's own sibling directory, which the test can inspect.
    let outside = jail.outside();
    let blob = tar_of(&[
        link("b", EntryKind::Symlink, outside.to_str().unwrap()),
        file("b/secret", b"overwritten"),
    ]);
    jail.refuse(&blob, &ExtractOptions::default());
}

#[test]
fn symlinked_parent_climbing_out_is_refused() {
    let jail = Jail::new();
    let blob = tar_of(&[
        dir("x"),
        link("x/up", EntryKind::Symlink, "../../outside"),
        file("x/up/secret", b"overwritten"),
    ]);
    let err = jail.refuse(&blob, &ExtractOptions::default());
    assert_message(
        &err,
        &[
            "layer entry 2 `x/up/secret`",
            "symlink to `../../outside`",
            "out of the layer root",
        ],
    );
}

#[test]
fn symlink_chains_inside_the_root_are_followed() {
    let scratch = Scratch::new("chains");
    let target = scratch.dir("target");
    let blob = tar_of(&[
        dir("usr"),
        dir("usr/lib"),
        link("lib", EntryKind::Symlink, "usr/lib"),
        link("usr/lib64", EntryKind::Symlink, "../lib"),
        file("usr/lib64/libc.so", b"elf"),
    ]);
    extract(&blob[..], &target, &ExtractOptions::default()).unwrap();
    assert_eq!(fs::read(target.join("usr/lib/libc.so")).unwrap(), b"elf");
}

#[test]
fn final_symlink_is_replaced_not_followed() {
    let jail = Jail::new();
    let outside = jail.outside().join("secret");
    let blob = tar_of(&[
        link("evil", EntryKind::Symlink, outside.to_str().unwrap()),
        file("evil", b"overwritten"),
    ]);
    extract(&blob[..], &jail.target, &ExtractOptions::default()).unwrap();
    assert_eq!(fs::read(&outside).unwrap(), b"untouched");
    assert_eq!(fs::read(jail.target.join("evil")).unwrap(), b"overwritten");
    assert!(!fs::symlink_metadata(jail.target.join("evil"))
        .unwrap()
        .is_symlink());
}

#[test]
fn hardlinks_out_of_the_root_or_forward_are_refused() {
    let jail = Jail::new();
    let blob = tar_of(&[link("passwd", EntryKind::Hardlink, "../../etc/passwd")]);
    let err = jail.refuse(&blob, &ExtractOptions::default());
    assert_message(
        &err,
        &[
            "layer entry 0 `passwd`",
            "hardlink target `../../etc/passwd`",
            "`..`",
        ],
    );

    let outside = jail.outside().join("secret");
    let blob = tar_of(&[link(
        "secret",
        EntryKind::Hardlink,
        outside.to_str().unwrap(),
    )]);
    assert_message(
        &jail.refuse(&blob, &ExtractOptions::default()),
        &["hardlink target", "absolute path"],
    );

    let blob = tar_of(&[
        link("early", EntryKind::Hardlink, "later"),
        file("later", b"x"),
    ]);
    assert_message(
        &jail.refuse(&blob, &ExtractOptions::default()),
        &[
            "layer entry 0 `early`",
            "hardlink target `later` does not exist",
        ],
    );

    // Through a symlinked parent that leaves the root.
    let blob = tar_of(&[
        link("out", EntryKind::Symlink, "/etc"),
        link("passwd2", EntryKind::Hardlink, "out/passwd"),
    ]);
    assert_message(
        &jail.refuse(&blob, &ExtractOptions::default()),
        &[
            "layer entry 1 `passwd2`",
            "symlink to the absolute path `/etc`",
        ],
    );
}

#[test]
fn hardlink_to_an_earlier_entry_is_made() {
    let scratch = Scratch::new("hardlink");
    let target = scratch.dir("target");
    let blob = tar_of(&[
        file("bin/a", b"same"),
        link("bin/b", EntryKind::Hardlink, "bin/a"),
    ]);
    extract(&blob[..], &target, &ExtractOptions::default()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(target.join("bin/a")).unwrap().ino(),
        fs::metadata(target.join("bin/b")).unwrap().ino()
    );
}

fn gzip_layer(entries: &[(EntryHeader, &[u8])]) -> (Vec<u8>, distill_layer::LayerDescriptor) {
    let mut blob = Vec::new();
    let mut writer = LayerWriter::new(&mut blob, Compression::gzip()).unwrap();
    for (header, data) in entries {
        writer.append(header, *data).unwrap();
    }
    let descriptor = writer.finish().unwrap();
    (blob, descriptor)
}

#[test]
fn truncated_gzip_is_refused() {
    let jail = Jail::new();
    let big: Vec<u8> = (0..200_000u32).flat_map(|n| n.to_le_bytes()).collect();
    let (blob, _) = gzip_layer(&[file("big", &big), file("after", b"x")]);
    for cut in [blob.len() - 4, blob.len() / 2, 20] {
        let err = jail.refuse(&blob[..cut], &ExtractOptions::default());
        let message = err.to_string();
        eprintln!("cut at {cut}: {message}");
        assert!(
            message.contains("the gzip stream is truncated or corrupt"),
            "cut at {cut}: {message}"
        );
    }
}

#[test]
fn wrong_diff_id_and_digest_are_refused() {
    let jail = Jail::new();
    let (blob, descriptor) = gzip_layer(&[file("a", b"content")]);
    let wrong = Sha256Digest::of(b"something else");
    let options = ExtractOptions {
        expected_diff_id: Some(wrong),
        ..Default::default()
    };
    let err = jail.refuse(&blob, &options);
    assert_message(
        &err,
        &[
            "diff ID mismatch",
            &descriptor.diff_id.to_string(),
            &wrong.to_string(),
        ],
    );
    let options = ExtractOptions {
        expected_digest: Some(wrong),
        ..Default::default()
    };
    assert_message(
        &jail.refuse(&blob, &options),
        &["digest mismatch", &descriptor.digest.to_string()],
    );
    // The right ones pass.
    let options = ExtractOptions {
        expected_diff_id: Some(descriptor.diff_id),
        expected_digest: Some(descriptor.digest),
        ..Default::default()
    };
    extract(&blob[..], &jail.target, &options).unwrap();
}

#[test]
fn garbage_is_not_a_tar() {
    let jail = Jail::new();
    let garbage = vec![b'x'; 2048];
    let err = jail.refuse(&garbage, &ExtractOptions::default());
    assert_message(&err, &["malformed tar archive at byte 0", "checksum"]);
    let err = jail.refuse(&[0x1f, 0x8b, 8, 0, 1, 2], &ExtractOptions::default());
    assert!(matches!(err, LayerError::Read(_)), "{err}");
}

#[test]
fn whiteouts_through_an_escaping_symlink_are_refused() {
    let jail = Jail::new();
    let outside = jail.outside();
    for marker in ["b/.wh.secret", "b/.wh..wh..opq"] {
        let blob = tar_of(&[
            link("b", EntryKind::Symlink, outside.to_str().unwrap()),
            file(marker, b""),
        ]);
        let err = jail.refuse(&blob, &ExtractOptions::default());
        assert_message(
            &err,
            &[
                &format!("layer entry 1 `{marker}`"),
                "symlink to the absolute path",
            ],
        );
        let blob = tar_of(&[
            link("c", EntryKind::Symlink, "../outside"),
            file(&marker.replacen('b', "c", 1), b""),
        ]);
        let err = jail.refuse(&blob, &ExtractOptions::default());
        assert_message(&err, &["leads out of the layer root"]);
    }
}
