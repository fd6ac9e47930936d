//! The build cache as a garbage-collection root: what `rmi`, `prune` and `builder prune` keep
//! and remove, `df`'s build cache numbers, and image sizes as Docker shows them.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use distill_image::{Descriptor, Digest};
use distill_store::testing::TestImage;
use distill_store::{BuildCachePruneOptions, CachedLayer, Image, PruneOptions, StepRecord, Store};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("root")).unwrap();
    (dir, store)
}

/// Writes a step record for `layer` (the image's layer `index`) under `key`, as the build's
/// step cache does, and returns its path.
fn record_step(store: &Store, key: &str, image: &Image, index: usize) -> PathBuf {
    let layer = &image.manifest.layers[index];
    let record = StepRecord {
        layer: CachedLayer {
            digest: layer.digest.clone(),
            diff_id: image.config.rootfs.diff_ids[index].clone(),
            size: layer.size,
            media_type: layer.media_type.clone(),
        },
        created: Some(1_700_000_000),
    };
    let dir = store.step_records_dir();
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{key}.json"));
    fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    path
}

/// Unpacks `layer` into a snapshot (a directory with one file of the layer's content).
fn snapshot_of(store: &Store, diff_id: &Digest, files: &[(&str, &[u8])]) {
    let prepared = store.prepare_snapshot().unwrap();
    for (name, content) in files {
        fs::write(prepared.fs_dir().join(name), content).unwrap();
    }
    prepared.commit(diff_id).unwrap();
}

fn set_last_used(path: &PathBuf, ago: Duration) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - ago)
        .unwrap();
}

#[test]
fn rmi_and_prune_keep_the_layers_step_records_reference() {
    let (_dir, store) = store();
    let built = TestImage::new()
        .layer(&[("base", b"base layer")])
        .layer(&[("step", b"an intermediate step's layer")])
        .layer(&[("last", b"the last step")])
        .commit(&store, &["app"])
        .unwrap();
    let cached = &built.manifest.layers[1];
    let cached_diff = built.config.rootfs.diff_ids[1].clone();
    record_step(&store, "aa", &built, 1);
    snapshot_of(
        &store,
        &cached_diff,
        &[("step", b"an intermediate step's layer")],
    );

    store.remove_images(&["app"], false).unwrap();
    let report = store.prune(PruneOptions::default()).unwrap();
    assert!(
        store.has_blob(&cached.digest),
        "the step record keeps its layer"
    );
    assert!(
        store.snapshot(&cached_diff).unwrap().is_some(),
        "and its snapshot"
    );
    for (index, layer) in built.manifest.layers.iter().enumerate() {
        if index != 1 {
            assert!(
                !store.has_blob(&layer.digest),
                "layer {index} had only the image"
            );
        }
    }
    assert!(
        !store.has_blob(built.id()),
        "the config went with the image"
    );
    assert_eq!(report.deleted_temporaries, 0, "a live record is no garbage");
    assert!(store.step_records_dir().join("aa.json").exists());
}

#[test]
fn a_record_whose_blob_has_gone_roots_nothing_and_prune_removes_it() {
    let (_dir, store) = store();
    let built = TestImage::new()
        .layer(&[("a", b"first")])
        .layer(&[("b", b"second")])
        .commit(&store, &[])
        .unwrap();
    let dead = record_step(&store, "dead", &built, 0);
    let live = record_step(&store, "live", &built, 1);
    let diff0 = built.config.rootfs.diff_ids[0].clone();
    snapshot_of(&store, &diff0, &[("a", b"first")]);
    store
        .remove_images(&[&built.record.target.digest.to_string()], false)
        .unwrap();
    // Someone deletes the blob by hand.
    fs::remove_file(store.blob_path(&built.manifest.layers[0].digest)).unwrap();
    // A record being written when the machine crashed.
    let torn = store.step_records_dir().join(".tmp-999-0");
    fs::write(&torn, b"{\"lay").unwrap();
    let unreadable = store.step_records_dir().join("junk.json");
    fs::write(&unreadable, b"not json").unwrap();

    let report = store.prune(PruneOptions::default()).unwrap();
    assert!(!dead.exists(), "a record of a missing layer is removed");
    assert!(!torn.exists() && !unreadable.exists());
    assert_eq!(report.deleted_temporaries, 3);
    assert!(
        store.snapshot(&diff0).unwrap().is_none(),
        "its snapshot is not kept"
    );
    assert!(live.exists());
    assert!(store.has_blob(&built.manifest.layers[1].digest));
}

#[test]
fn builder_prune_keeps_what_images_use_unless_all() {
    let (_dir, store) = store();
    let image = TestImage::new()
        .layer(&[("in-image", b"a layer the image has")])
        .commit(&store, &["app"])
        .unwrap();
    let gone = TestImage::new()
        .layer(&[("dangling", b"only the cache has this one")])
        .commit(&store, &["tmp"])
        .unwrap();
    let shared = record_step(&store, "shared", &image, 0);
    let dangling = record_step(&store, "dangling", &gone, 0);
    let dangling_layer = gone.manifest.layers[0].digest.clone();
    store.remove_images(&["tmp"], false).unwrap();
    store.prune(PruneOptions::default()).unwrap();
    let mounts = store.cache_dir().join("mounts/apt.lists-0123456789ab");
    fs::create_dir_all(mounts.join("archives")).unwrap();
    fs::write(mounts.join("archives/pkg.deb"), vec![7u8; 3000]).unwrap();
    let download = store.cache_dir().join("http/0abc.json");
    fs::create_dir_all(download.parent().unwrap()).unwrap();
    fs::write(&download, b"{\"etag\":1}").unwrap();

    let usage = store.disk_usage().unwrap();
    assert_eq!(usage.build_cache.total, 4);
    assert_eq!(usage.build_cache.shared, 1);
    let dangling_bytes = gone.manifest.layers[0].size;
    let records = fs::metadata(&shared).unwrap().len() + fs::metadata(&dangling).unwrap().len();
    assert_eq!(
        usage.build_cache.size,
        records + dangling_bytes + 3000 + 10,
        "records, the layer only the cache has, the mount, the download record"
    );

    let report = store
        .prune_build_cache(BuildCachePruneOptions::default())
        .unwrap();
    let mut deleted = report.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, ["0abc", "apt.lists-0123456789ab", "dangling"]);
    assert!(report.reclaimed_bytes >= dangling_bytes + 3000);
    assert!(!store.has_blob(&dangling_layer));
    assert!(!mounts.exists() && !download.exists());
    assert!(shared.exists(), "a record whose layer an image has stays");

    let report = store
        .prune_build_cache(BuildCachePruneOptions {
            all: true,
            ..BuildCachePruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.deleted, ["shared"]);
    assert!(!shared.exists());
    assert!(
        store.image(&store.find("app").unwrap()).is_ok(),
        "images are untouched"
    );
    assert_eq!(store.disk_usage().unwrap().build_cache.total, 0);
}

#[test]
fn builder_prune_filters_by_age_and_keeps_storage_least_recently_used_first() {
    let (_dir, store) = store();
    let built = TestImage::new()
        .layer(&[("old", &[1u8; 4000])])
        .layer(&[("middle", &[2u8; 4000])])
        .layer(&[("recent", &[3u8; 4000])])
        .commit(&store, &["tmp"])
        .unwrap();
    let old = record_step(&store, "old", &built, 0);
    let middle = record_step(&store, "middle", &built, 1);
    let recent = record_step(&store, "recent", &built, 2);
    store.remove_images(&["tmp"], false).unwrap();
    store.prune(PruneOptions::default()).unwrap();
    set_last_used(&old, Duration::from_secs(72 * 3600));
    set_last_used(&middle, Duration::from_secs(30 * 3600));
    set_last_used(&recent, Duration::from_secs(60));

    let report = store
        .prune_build_cache(BuildCachePruneOptions {
            unused_for: Some(Duration::from_secs(48 * 3600)),
            ..BuildCachePruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.deleted, ["old"]);
    assert!(middle.exists() && recent.exists());

    // Room for one layer: the least recently used of the two goes.
    let one_layer = built.manifest.layers[2].size + fs::metadata(&recent).unwrap().len();
    let report = store
        .prune_build_cache(BuildCachePruneOptions {
            keep_bytes: Some(one_layer),
            ..BuildCachePruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.deleted, ["middle"]);
    assert!(recent.exists());
    assert!(store.has_blob(&built.manifest.layers[2].digest));
    assert!(!store.has_blob(&built.manifest.layers[1].digest));

    // Already within the limit: nothing goes.
    let report = store
        .prune_build_cache(BuildCachePruneOptions {
            keep_bytes: Some(one_layer),
            ..BuildCachePruneOptions::default()
        })
        .unwrap();
    assert!(report.deleted.is_empty());
}

#[test]
fn a_build_holding_its_lease_keeps_builder_prune_out() {
    let (_dir, store) = store();
    let built = TestImage::new()
        .layer(&[("f", b"content")])
        .commit(&store, &[])
        .unwrap();
    record_step(&store, "k", &built, 0);
    let build = store.lease().unwrap();
    let pruner = {
        let store = store.clone();
        std::thread::spawn(move || {
            store
                .prune_build_cache(BuildCachePruneOptions {
                    all: true,
                    ..BuildCachePruneOptions::default()
                })
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    // The build found its record live and uses the layer while prune waits.
    assert!(store.has_blob(&built.manifest.layers[0].digest));
    assert!(
        !pruner.is_finished(),
        "builder prune waits for the build's lease"
    );
    let target = Descriptor::clone(&built.record.target);
    store
        .add_image(&target, &["docker.io/library/done:latest".parse().unwrap()])
        .unwrap();
    drop(build);
    let report = pruner.join().unwrap();
    assert_eq!(report.deleted, ["k"]);
    let image = store.image(&store.find("done").unwrap()).unwrap();
    for blob in image.blobs() {
        assert!(
            store.has_blob(&blob),
            "the image the build recorded is whole"
        );
    }
}

#[test]
fn sizes_are_unpacked_file_bytes_remembered_per_layer() {
    let (_dir, store) = store();
    let image = TestImage::new()
        .layer(&[("a", &[0u8; 1000]), ("b", &[0u8; 24])])
        .layer(&[("c", b"hello\n")])
        .commit(&store, &["app"])
        .unwrap();
    assert_eq!(store.image_size(&image), 1030);
    let first = image.config.rootfs.diff_ids[0].clone();
    assert_eq!(store.known_unpacked_size(&first), Some(1024), "remembered");

    // A snapshot's measure is remembered when it is committed.
    let fresh = Digest::sha256_of(b"not a layer of any image");
    snapshot_of(&store, &fresh, &[("x", b"12345")]);
    assert_eq!(store.known_unpacked_size(&fresh), Some(5));

    // Remembered sizes of layers nothing keeps are collected.
    store.prune(PruneOptions::default()).unwrap();
    assert_eq!(store.known_unpacked_size(&fresh), None);
    assert_eq!(store.known_unpacked_size(&first), Some(1024));

    let usage = store.disk_usage().unwrap();
    assert_eq!(usage.image_layers.size, 1030);
    assert_eq!(usage.images[0].size, 1030);
}
