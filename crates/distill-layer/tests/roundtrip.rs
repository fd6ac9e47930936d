//! A tree written as a layer and extracted again is the same tree; the same tree always gives
//! the same layer.

mod common;

use std::fs;
use std::num::NonZeroUsize;
use std::path::Path;

use common::{build_tree, is_root, set_mtime, snapshot, Scratch};
use distill_layer::{extract, write_layer, Compression, ExtractOptions, TreeOptions, Xattrs};

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

/// tmpfs lists a directory newest first, so two trees made in opposite orders are listed in
/// opposite orders: the layers must still be identical.
#[test]
fn directory_listing_order_does_not_matter() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("skipped: no tmpfs at /dev/shm to control listing order");
        return;
    }
    let scratch = Scratch(shm.join(format!("distill-layer-order-{}", std::process::id())));
    let _ = fs::remove_dir_all(scratch.path());
    let names = ["b", "a", "c-d", "c", "c.d", "\u{e9}"];
    let make = |root: &Path, order: &mut dyn Iterator<Item = &&str>| {
        fs::create_dir_all(root).unwrap();
        for name in order {
            fs::create_dir_all(root.join(name)).unwrap();
            fs::write(root.join(name).join("file"), name.as_bytes()).unwrap();
        }
    };
    let forward = scratch.0.join("forward");
    let backward = scratch.0.join("backward");
    make(&forward, &mut names.iter());
    make(&backward, &mut names.iter().rev());
    let listed = |root: &Path| -> Vec<_> {
        fs::read_dir(root)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect()
    };
    if listed(&forward) == listed(&backward) {
        eprintln!("skipped: this tmpfs lists both trees in the same order");
        return;
    }
    let options = TreeOptions::new().timestamps(distill_layer::Timestamps::Set(0));
    let a = write_layer(&forward, &options, Vec::new(), Compression::None).unwrap();
    let b = write_layer(&backward, &options, Vec::new(), Compression::None).unwrap();
    assert_eq!(a.diff_id, b.diff_id);
}
