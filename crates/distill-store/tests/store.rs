//! The store's contract, end to end on a temporary root: verified writes, image records and
//! their lookup, removal, snapshots, garbage collection, locks across processes, and recovery
//! after a writer is killed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use distill_image::{Digest, Reference};
use distill_store::testing::TestImage;
use distill_store::{Expected, PruneOptions, Removal, Store, StoreError};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("root")).unwrap();
    (dir, store)
}

fn entries(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn names(store: &Store, text: &str) -> Vec<String> {
    store
        .find(text)
        .unwrap()
        .names
        .iter()
        .map(Reference::familiar)
        .collect()
}

#[test]
fn opening_creates_an_oci_layout() {
    let (_dir, store) = store();
    let layout = fs::read_to_string(store.root().join("oci-layout")).unwrap();
    assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(store.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], serde_json::json!([]));
    Store::open(store.root()).unwrap();
}

#[test]
fn writer_commits_only_the_promised_content() {
    let (_dir, store) = store();
    let content = b"layer bytes";
    let digest = Digest::sha256_of(content);

    let mut writer = store
        .writer(Expected::new(digest.clone(), content.len() as u64))
        .unwrap();
    writer.write_all(content).unwrap();
    assert_eq!(
        writer.commit().unwrap(),
        (digest.clone(), content.len() as u64)
    );
    assert_eq!(fs::read(store.blob_path(&digest)).unwrap(), content);

    // Right size, wrong bytes.
    let other = Digest::sha256_of(b"other bytes");
    let mut writer = store.writer(Expected::new(other.clone(), 11)).unwrap();
    writer.write_all(content).unwrap();
    assert!(matches!(
        writer.commit(),
        Err(StoreError::DigestMismatch { .. })
    ));
    assert!(!store.has_blob(&other));

    // Too short.
    let mut writer = store.writer(Expected::new(other.clone(), 12)).unwrap();
    writer.write_all(content).unwrap();
    assert!(matches!(
        writer.commit(),
        Err(StoreError::SizeMismatch {
            expected: 12,
            actual: 11,
            ..
        })
    ));

    // Too long is refused while writing.
    let mut writer = store.writer(Expected::new(other.clone(), 4)).unwrap();
    assert!(writer.write_all(content).is_err());
    drop(writer);

    // Abandoned writers leave nothing behind.
    let mut writer = store.ingest().unwrap();
    writer.write_all(b"half").unwrap();
    drop(writer);
    assert_eq!(entries(&store.root().join("ingest")), 0);
    assert!(!store.has_blob(&other));
}

#[test]
fn ingest_learns_the_digest() {
    let (_dir, store) = store();
    let mut writer = store.ingest().unwrap();
    writer.write_all(b"abc").unwrap();
    let (digest, size) = writer.commit().unwrap();
    assert_eq!(digest, Digest::sha256_of(b"abc"));
    assert_eq!(size, 3);
    // Writing the same content again is fine and changes nothing.
    assert_eq!(store.put_blob(b"abc").unwrap(), digest);
}

#[test]
fn reads_detect_corruption() {
    let (_dir, store) = store();
    let image = TestImage::new().commit(&store, &["x"]).unwrap();
    let config = image.manifest.config.clone();
    let path = store.blob_path(&config.digest);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        store.read_blob(&config),
        Err(StoreError::DigestMismatch { .. })
    ));
}

#[test]
fn images_are_found_by_name_id_prefix_and_digest() {
    let (_dir, store) = store();
    let image = TestImage::new()
        .layer(&[("hello.txt", b"hello\n")])
        .commit(&store, &["app:1", "localhost:5000/team/app:v2"])
        .unwrap();
    let id = image.id().clone();
    assert_eq!(image.config.rootfs.diff_ids.len(), 1);

    for text in [
        "app:1".to_string(),
        "docker.io/library/app:1".to_string(),
        "localhost:5000/team/app:v2".to_string(),
        id.to_string(),
        id.hex().to_string(),
        id.short().to_string(),
        id.hex()[..4].to_string(),
        format!("app@{}", image.record.target.digest),
        image.record.target.digest.to_string(),
    ] {
        let found = store.find(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(found.target.digest, image.record.target.digest, "{text}");
    }
    // A two-digit ID prefix that matches neither the config nor the manifest digest.
    let unused_prefix = (0..=255u8)
        .map(|n| format!("{n:02x}"))
        .find(|p| !id.hex().starts_with(p) && !image.record.target.digest.hex().starts_with(p))
        .unwrap();
    let unused_id = format!("sha256:{unused_prefix}");
    for missing in ["app", "app:2", "other", unused_id.as_str()] {
        let err = store.find(missing).unwrap_err();
        assert_eq!(err.to_string(), format!("no such image: {missing}"));
    }
    assert!(matches!(store.find("App"), Err(StoreError::Reference(_))));
}

#[test]
fn tags_move_between_images_and_leave_dangling_ones() {
    let (_dir, store) = store();
    let first = TestImage::new()
        .cmd(&["one"])
        .commit(&store, &["app"])
        .unwrap();
    let second = TestImage::new().cmd(&["two"]).commit(&store, &[]).unwrap();
    assert!(second.record.names.is_empty());

    let name = store.tag(&second.id().to_string(), "app").unwrap();
    assert_eq!(name.to_string(), "docker.io/library/app:latest");
    assert_eq!(
        store.find("app").unwrap().target.digest,
        second.record.target.digest
    );
    let records = store.images().unwrap();
    assert_eq!(records.len(), 2, "the first image stays, untagged");
    let old = records
        .iter()
        .find(|r| r.target.digest == first.record.target.digest)
        .unwrap();
    assert!(old.names.is_empty());

    store.tag("app", "app:copy").unwrap();
    assert_eq!(names(&store, "app"), ["app:copy", "app:latest"]);
    assert!(matches!(
        store.tag(
            "app",
            "app@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        ),
        Err(StoreError::TagWithDigest(_))
    ));
    assert!(matches!(
        store.tag("nope", "app:x"),
        Err(StoreError::NoSuchImage(_))
    ));
}

#[test]
fn rmi_untags_then_deletes_like_docker() {
    let (_dir, store) = store();
    let image = TestImage::new()
        .layer(&[("a", b"a")])
        .commit(&store, &["app:1", "app:2"])
        .unwrap();
    let layer = image.manifest.layers[0].digest.clone();

    let events = store.remove_images(&["app:1"], false).unwrap();
    assert_eq!(
        events,
        [Removal::Untagged(
            Reference::parse_normalized("app:1").unwrap()
        )]
    );
    assert!(store.has_blob(&layer));

    let events = store.remove_images(&["app:2"], false).unwrap();
    assert_eq!(
        events,
        [
            Removal::Untagged(Reference::parse_normalized("app:2").unwrap()),
            Removal::Deleted(image.id().clone())
        ]
    );
    assert!(store.images().unwrap().is_empty());
    assert!(!store.has_blob(&layer), "unreferenced content is collected");
}

#[test]
fn rmi_by_id_needs_force_across_repositories_and_fails_atomically() {
    let (_dir, store) = store();
    let image = TestImage::new().commit(&store, &["one", "two"]).unwrap();
    let id = image.id().short().to_string();
    let err = store.remove_images(&[&id], false).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")
    );
    let before = fs::read(store.root().join("index.json")).unwrap();
    assert!(store.remove_images(&["one", "missing"], false).is_err());
    assert_eq!(
        fs::read(store.root().join("index.json")).unwrap(),
        before,
        "nothing changed"
    );

    let events = store.remove_images(&[&id], true).unwrap();
    assert_eq!(events.len(), 3);
    assert!(store.images().unwrap().is_empty());
}

#[test]
fn layers_and_snapshots_are_shared_and_collected_when_unreferenced() {
    let (_dir, store) = store();
    let base = TestImage::new().layer(&[("base", b"base")]);
    let a = base
        .clone()
        .layer(&[("a", b"a")])
        .commit(&store, &["a"])
        .unwrap();
    let b = base
        .clone()
        .layer(&[("b", b"b")])
        .commit(&store, &["b"])
        .unwrap();
    let shared = a.config.rootfs.diff_ids[0].clone();
    assert_eq!(shared, b.config.rootfs.diff_ids[0]);

    for diff_id in a
        .config
        .rootfs
        .diff_ids
        .iter()
        .chain(&b.config.rootfs.diff_ids[1..])
    {
        let prepared = store.prepare_snapshot().unwrap();
        fs::write(prepared.fs_dir().join("file"), diff_id.hex()).unwrap();
        fs::write(prepared.work_dir().unwrap().join("scratch"), b"overlay").unwrap();
        let snapshot = prepared.commit(diff_id).unwrap();
        assert!(
            !snapshot.dir.join("work").exists(),
            "the work dir is not published"
        );
        assert_eq!(snapshot.meta.size, 64);
    }
    // Committing the same diff ID again keeps the first one.
    let again = store.prepare_snapshot().unwrap();
    let kept = again.commit(&shared).unwrap();
    assert!(kept.fs_dir().join("file").exists());
    assert_eq!(store.snapshots().unwrap().len(), 3);

    let usage = store.disk_usage().unwrap();
    let a_usage = usage
        .images
        .iter()
        .find(|u| u.record.names[0].familiar() == "a:latest")
        .unwrap();
    // Sizes are unpacked bytes: the snapshot's measure (64 bytes of hex here).
    assert_eq!(a_usage.shared, 64);
    assert_eq!(a_usage.unique + a_usage.shared, a_usage.size);
    assert_eq!(usage.snapshots.active, 3);

    store.remove_images(&["a"], false).unwrap();
    // `rmi` collects at once unless the gc lock is busy, and then leaves it to `prune`. Other
    // tests of this binary spawn processes, and a child shares this process's open lock files
    // until it execs, so the lock can be briefly busy here: prune settles it either way.
    store.prune(PruneOptions::default()).unwrap();
    let remaining: Vec<Digest> = store
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.meta.diff_id)
        .collect();
    assert_eq!(remaining, {
        let mut expected = b.config.rootfs.diff_ids.clone();
        expected.sort();
        expected
    });
    assert!(store.find("b").is_ok());
    assert!(store.image(&store.find("b").unwrap()).is_ok());
}

#[test]
fn prune_reclaims_crash_leftovers_and_keeps_what_images_use() {
    let (_dir, store) = store();
    let kept = TestImage::new()
        .layer(&[("keep", b"keep")])
        .commit(&store, &["kept"])
        .unwrap();
    let dangling = TestImage::new()
        .layer(&[("old", b"old")])
        .commit(&store, &[])
        .unwrap();
    let orphan = store.put_blob(b"nobody refers to me").unwrap();
    let ingest = store.root().join("ingest");
    fs::write(ingest.join("blob-123-456-0"), b"half a blob").unwrap();
    fs::create_dir_all(ingest.join("snapshot-1-2-3/fs/dir")).unwrap();
    fs::write(ingest.join("snapshot-1-2-3/fs/dir/f"), b"partial").unwrap();
    let stray = store.root().join("snapshots/sha256").join(orphan.hex());
    fs::create_dir_all(stray.join("fs")).unwrap();

    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.deleted_blobs, 1);
    assert_eq!(report.deleted_temporaries, 2);
    assert_eq!(report.deleted_snapshots, 1);
    assert!(report.reclaimed_bytes >= 19 + 11 + 7);
    assert!(!store.has_blob(&orphan));
    assert_eq!(entries(&ingest), 0);
    for image in [&kept, &dangling] {
        for blob in image.blobs() {
            assert!(store.has_blob(&blob), "{blob}");
        }
    }

    let report = store
        .prune(PruneOptions {
            untagged_images: true,
        })
        .unwrap();
    assert_eq!(
        report.deleted_images,
        std::slice::from_ref(&dangling.record.target.digest)
    );
    assert!(!store.has_blob(dangling.id()));
    assert!(store.image(&store.find("kept").unwrap()).is_ok());
}

#[test]
fn leases_exclude_garbage_collection_across_processes() {
    let (_dir, store) = store();
    let lock = store.root().join("locks/gc.lock");
    let try_exclusive = || {
        Command::new("flock")
            .args(["--nonblock", "--exclusive"])
            .arg(&lock)
            .arg("true")
            .status()
            .expect("flock(1) from util-linux")
            .success()
    };
    assert!(try_exclusive());
    let lease = store.lease().unwrap();
    assert!(
        !try_exclusive(),
        "another process cannot collect while we hold a lease"
    );
    drop(lease);
    assert!(try_exclusive());

    // And the other way: prune waits for another process's shared lock.
    let mut holder = Command::new("flock")
        .arg("--shared")
        .arg(&lock)
        .args(["sleep", "0.6"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let start = Instant::now();
    store.prune(PruneOptions::default()).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "prune waited for the lease"
    );
    holder.wait().unwrap();
}

/// Not a test on its own: the body of the writer process that
/// `a_killed_writer_leaves_a_readable_store` kills. Does nothing unless that test runs it.
#[test]
fn killed_writer_process() {
    let Some(root) = std::env::var_os("DISTILL_STORE_TEST_KILLED_WRITER") else {
        return;
    };
    let store = Store::open(root).unwrap();
    let _lease = store.lease().unwrap();
    let mut writer = store.ingest().unwrap();
    println!("writing");
    loop {
        writer.write_all(&[7u8; 65536]).unwrap();
        writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_killed_writer_leaves_a_readable_store() {
    let (_dir, store) = store();
    TestImage::new()
        .layer(&[("f", b"f")])
        .commit(&store, &["app"])
        .unwrap();
    let index_before = fs::read(store.root().join("index.json")).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_writer_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DISTILL_STORE_TEST_KILLED_WRITER", store.root())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let ingest = store.root().join("ingest");
    let deadline = Instant::now() + Duration::from_secs(30);
    while entries(&ingest) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(entries(&ingest), 1, "the half-written blob is left behind");

    // Readable as before; the killed process's lock died with it.
    assert_eq!(
        fs::read(store.root().join("index.json")).unwrap(),
        index_before
    );
    let image = store.image(&store.find("app").unwrap()).unwrap();
    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.deleted_temporaries, 1);
    assert!(report.reclaimed_bytes > 0);
    assert_eq!(entries(&ingest), 0);
    for blob in image.blobs() {
        assert!(store.has_blob(&blob));
    }
}

#[test]
fn concurrent_taggers_lose_no_update() {
    let (_dir, store) = store();
    let image = TestImage::new().commit(&store, &["base"]).unwrap();
    let id = image.id().to_string();
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let store = Store::open(store.root()).unwrap();
            let id = id.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    store.tag(&id, &format!("t{n}:{i}")).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(store.find("base").unwrap().names.len(), 81);
}

#[test]
fn concurrent_writers_of_the_same_blob_agree() {
    let (_dir, store) = store();
    let content: Vec<u8> = (0..200_000u32).flat_map(|n| n.to_le_bytes()).collect();
    let digest = Digest::sha256_of(&content);
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            let content = content.clone();
            std::thread::spawn(move || store.put_blob(&content).unwrap())
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), digest);
    }
    assert_eq!(fs::read(store.blob_path(&digest)).unwrap(), content);
    assert_eq!(entries(&store.root().join("ingest")), 0);
}

#[test]
fn multi_platform_indexes_resolve_per_platform() {
    use distill_image::{media_type, Descriptor, ImageIndex, Platform};
    let (_dir, store) = store();
    let _lease = store.lease().unwrap();
    let mut entries = Vec::new();
    let mut images = Vec::new();
    for arch in ["amd64", "arm64"] {
        let image = TestImage::new()
            .architecture(arch)
            .layer(&[("arch", arch.as_bytes())])
            .commit(&store, &[])
            .unwrap();
        let mut entry = image.manifest_descriptor.clone();
        entry.platform = Some(Platform::new("linux", arch, None));
        entries.push(entry);
        images.push(image);
    }
    // Both platform images were recorded unnamed; the index takes the name.
    let index = ImageIndex::new_oci(entries).to_json();
    store.put_blob(&index).unwrap();
    let target = Descriptor::for_bytes(media_type::OCI_INDEX, &index);
    let record = store
        .add_image(&target, &[Reference::parse_normalized("multi").unwrap()])
        .unwrap();

    let arm = store
        .image_for_platform(&record, &Platform::parse("linux/arm64/v8").unwrap())
        .unwrap();
    assert_eq!(arm.id(), images[1].id());
    assert_eq!(arm.config.architecture, "arm64");
    let amd = store
        .image_for_platform(&record, &Platform::parse("linux/amd64").unwrap())
        .unwrap();
    assert_eq!(amd.id(), images[0].id());
    assert!(matches!(
        store.image_for_platform(&record, &Platform::parse("linux/s390x").unwrap()),
        Err(StoreError::NoPlatform { .. })
    ));
    // Without a platform asked for, some image is shown rather than none.
    assert!(store.image(&record).is_ok());

    // Collection keeps both platforms of a named index, and drops them with it.
    drop(_lease);
    store.remove_images(&["multi"], false).unwrap();
    store
        .prune(PruneOptions {
            untagged_images: true,
        })
        .unwrap();
    assert!(store.images().unwrap().is_empty());
    for image in &images {
        assert!(!store.has_blob(image.id()));
    }
}
