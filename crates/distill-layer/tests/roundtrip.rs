//! A tree written as a layer and extracted again is the same tree; the same tree always gives
//! the same layer.

mod common;

use std::fs;
use std::num::NonZeroUsize;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use common::{is_root, set_mtime, set_xattr, snapshot, Scratch};
use distill_layer::{extract, write_layer, Compression, ExtractOptions, TreeOptions, Xattrs};

/// A tree with every kind of entry we carry. Devices and foreign owners need root.
fn build_tree(root: &Path) {
    fs::create_dir_all(root.join("etc/ssl")).unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("etc/hostname"), b"distill\n").unwrap();
    fs::write(root.join("etc/ssl/cert.pem"), vec![b'c'; 70_000]).unwrap();
    fs::write(root.join("usr/bin/ping"), b"\x7fELF fake").unwrap();
    fs::set_permissions(
        root.join("usr/bin/ping"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::set_permissions(root.join("usr/bin"), fs::Permissions::from_mode(0o2775)).unwrap();
    fs::write(
        root.join("usr/bin/a-b"),
        b"sorts between usr/bin and usr/bin/ping",
    )
    .unwrap();
    fs::hard_link(root.join("usr/bin/ping"), root.join("usr/bin/ping6")).unwrap();
    symlink("../usr/bin/ping", root.join("etc/ping-link")).unwrap();
    symlink("/absolute/elsewhere", root.join("etc/dangling")).unwrap();
    let long_dir = root.join("d".repeat(90));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("f".repeat(60)), b"long path").unwrap();
    fs::write(root.join("caf\u{e9}.txt"), b"non-ascii name").unwrap();
    fs::write(root.join("empty-file"), b"").unwrap();
    set_xattr(
        &root.join("etc/hostname"),
        "user.distill.note",
        b"kept\0binary",
    );
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    if is_root() {
        // 0.4 is setcap's `cap_net_raw=ep` in the v2 on-disk format.
        let mut capability = vec![0u8; 20];
        capability[0..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
        capability[4..8].copy_from_slice(&(1u32 << 13).to_le_bytes());
        set_xattr(
            &root.join("usr/bin/ping"),
            "security.capability",
            &capability,
        );
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &root.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &root.join("loop9"),
            rustix::fs::FileType::BlockDevice,
            rustix::fs::Mode::from_raw_mode(0o660),
            rustix::fs::makedev(7, 9),
        )
        .unwrap();
        std::os::unix::fs::lchown(root.join("etc/ssl"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(root.join("etc/dangling"), Some(42), Some(43)).unwrap();
        std::os::unix::fs::lchown(root.join("etc/hostname"), Some(3_000_000), Some(7)).unwrap();
    }
    // Fixed mtimes everywhere (directories last, since writing into them changes theirs).
    let mut paths = common::listing(root);
    paths.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
    for (index, path) in paths.iter().enumerate() {
        set_mtime(path, 1_600_000_000 + index as i64);
    }
}

fn round_trip(compression: Compression) {
    let scratch = Scratch::new("roundtrip");
    let source = scratch.dir("source");
    build_tree(&source);
    let blob_path = scratch.join("layer.blob");
    let blob = fs::File::create(&blob_path).unwrap();
    let layer = write_layer(&source, &TreeOptions::new(), blob, compression).unwrap();
    assert_eq!(layer.size, fs::metadata(&blob_path).unwrap().len());

    let target = scratch.dir("target");
    let options = ExtractOptions {
        expected_diff_id: Some(layer.diff_id),
        expected_digest: Some(layer.digest),
        ..Default::default()
    };
    let report = extract(fs::File::open(&blob_path).unwrap(), &target, &options).unwrap();
    assert_eq!(report.digests.diff_id, layer.diff_id);
    assert_eq!(report.digests.digest, layer.digest);
    assert_eq!(report.digests.size, layer.size);
    assert_eq!(report.ownership_not_kept, 0, "{:?}", report.warnings);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let before = snapshot(&source);
    let after = snapshot(&target);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (path, node) in &before {
        assert_eq!(Some(node), after.get(path), "{path}");
    }
}

#[test]
fn gzip_round_trip_keeps_the_tree() {
    round_trip(Compression::gzip());
}

#[test]
fn zstd_round_trip_keeps_the_tree() {
    round_trip(Compression::zstd());
}

#[test]
fn uncompressed_round_trip_keeps_the_tree() {
    round_trip(Compression::None);
}

#[test]
fn same_tree_gives_same_digest_whatever_mtimes_with_clamp() {
    let scratch = Scratch::new("determinism");
    let first = scratch.dir("first");
    let second = scratch.dir("second");
    build_tree(&first);
    // The same content with newer mtimes.
    build_tree(&second);
    for path in common::listing(&second).iter().rev() {
        set_mtime(path, 1_900_000_000);
    }
    let options = TreeOptions::new().clamp_mtime(1_500_000_000);
    let threads = |n| Compression::gzip().with_threads(NonZeroUsize::new(n).unwrap());
    let a = write_layer(&first, &options, Vec::new(), threads(1)).unwrap();
    let b = write_layer(&second, &options, Vec::new(), threads(2)).unwrap();
    assert_eq!(a.diff_id, b.diff_id);
    assert_eq!(a.digest, b.digest);

    // Without the clamp the mtimes show.
    let c = write_layer(&first, &TreeOptions::new(), Vec::new(), threads(1)).unwrap();
    let d = write_layer(&second, &TreeOptions::new(), Vec::new(), threads(1)).unwrap();
    assert_ne!(c.diff_id, d.diff_id);
    // And writing the same tree twice is stable.
    let e = write_layer(&first, &TreeOptions::new(), Vec::new(), threads(2)).unwrap();
    assert_eq!((c.digest, c.diff_id, c.size), (e.digest, e.diff_id, e.size));
}

#[test]
fn capabilities_only_drops_other_xattrs() {
    let scratch = Scratch::new("xattrs");
    let source = scratch.dir("source");
    build_tree(&source);
    let mut blob = Vec::new();
    let options = TreeOptions::new().xattrs(Xattrs::CapabilitiesOnly);
    write_layer(&source, &options, &mut blob, Compression::None).unwrap();
    let needle = b"SCHILY.xattr.user.distill.note";
    assert!(!blob.windows(needle.len()).any(|w| w == needle));
    if is_root() {
        let needle = b"SCHILY.xattr.security.capability=";
        assert!(blob.windows(needle.len()).any(|w| w == needle));
    }
}
