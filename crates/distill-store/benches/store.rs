//! Rough timings of the store's hot paths: streaming a large blob through a verifying writer,
//! looking up and reading images among many, garbage collection with a large build cache,
//! and measuring a layer's unpacked size.
//! `cargo bench -p distill-store` (prints one line per measurement).

use std::io::Write;
use std::time::Instant;

use distill_image::Digest;
use distill_layer::{Compression, EntryHeader, EntryKind, LayerWriter};
use distill_store::testing::TestImage;
use distill_store::{
    BuildCachePruneOptions, CachedLayer, Expected, PruneOptions, StepRecord, Store,
};

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(dir.path()).expect("store");

    // 256 MiB through a writer that knows the digest up front.
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
    let chunks = 256;
    let mut hasher = distill_image::Sha256Hasher::new();
    for _ in 0..chunks {
        hasher.update(&chunk);
    }
    let digest: Digest = hasher.finish();
    let start = Instant::now();
    let mut writer = store
        .writer(Expected::new(digest, (chunks * chunk.len()) as u64))
        .expect("writer");
    for _ in 0..chunks {
        writer.write_all(&chunk).expect("write");
    }
    writer.commit().expect("commit");
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "verified blob write: 256 MiB in {:.2}s ({:.0} MiB/s, hash + fsync + rename)",
        seconds,
        256.0 / seconds
    );

    // 200 images of 2 layers, one shared.
    let start = Instant::now();
    for n in 0..200 {
        TestImage::new()
            .layer(&[("base", b"base")])
            .layer(&[("n", n.to_string().as_bytes())])
            .commit(&store, &[&format!("img{n}:latest")])
            .expect("commit image");
    }
    println!(
        "record 200 images: {:.1} ms each",
        start.elapsed().as_secs_f64() * 1000.0 / 200.0
    );

    let start = Instant::now();
    for record in store.images().expect("images") {
        store.image(&record).expect("image");
    }
    println!(
        "list and read 200 images (what `distill images` does): {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );

    let start = Instant::now();
    let record = store.find("img150").expect("find");
    store.image(&record).expect("image");
    println!(
        "find + read one image among 200: {:.2} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );

    let start = Instant::now();
    let report = store.prune(PruneOptions::default()).expect("prune");
    println!(
        "prune over 200 images: {:.1} ms (reclaimed {} bytes)",
        start.elapsed().as_secs_f64() * 1000.0,
        report.reclaimed_bytes
    );

    let images: Vec<_> = store
        .images()
        .expect("images")
        .iter()
        .map(|record| store.image(record).expect("image"))
        .collect();
    let start = Instant::now();
    let total: u64 = images.iter().map(|image| store.image_size(image)).sum();
    let first = start.elapsed();
    let start = Instant::now();
    let again: u64 = images.iter().map(|image| store.image_size(image)).sum();
    assert_eq!(total, again);
    println!(
        "unpacked sizes of 200 images: {:.1} ms measuring, {:.1} ms remembered",
        first.as_secs_f64() * 1000.0,
        start.elapsed().as_secs_f64() * 1000.0
    );

    // 5000 step records over the images' layers (a build cache of many builds).
    let steps = store.step_records_dir();
    std::fs::create_dir_all(&steps).expect("steps dir");
    let layers: Vec<CachedLayer> = images
        .iter()
        .flat_map(|image| {
            image
                .manifest
                .layers
                .iter()
                .zip(&image.config.rootfs.diff_ids)
                .map(|(layer, diff_id)| CachedLayer {
                    digest: layer.digest.clone(),
                    diff_id: diff_id.clone(),
                    size: layer.size,
                    media_type: layer.media_type.clone(),
                })
        })
        .collect();
    for n in 0..5000 {
        let record = StepRecord {
            layer: layers[n % layers.len()].clone(),
            created: Some(1_700_000_000),
        };
        let key = Digest::sha256_of(n.to_string().as_bytes());
        std::fs::write(
            steps.join(format!("{}.json", key.hex())),
            serde_json::to_vec(&record).expect("json"),
        )
        .expect("record");
    }
    let start = Instant::now();
    store.prune(PruneOptions::default()).expect("prune");
    println!(
        "prune over 200 images and 5000 step records: {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    let start = Instant::now();
    let usage = store.disk_usage().expect("df");
    println!(
        "disk usage with 5000 step records: {:.1} ms ({} build cache entries)",
        start.elapsed().as_secs_f64() * 1000.0,
        usage.build_cache.total
    );
    let start = Instant::now();
    let report = store
        .prune_build_cache(BuildCachePruneOptions {
            all: true,
            ..BuildCachePruneOptions::default()
        })
        .expect("builder prune");
    println!(
        "builder prune -a of 5000 step records: {:.1} ms ({} removed)",
        start.elapsed().as_secs_f64() * 1000.0,
        report.deleted.len()
    );

    // Measuring a 256 MiB gzip layer once (what the first `images` after a load costs).
    let mut blob = store.ingest().expect("ingest");
    let descriptor = {
        let mut writer = LayerWriter::new(&mut blob, Compression::gzip()).expect("layer");
        let mut header = EntryHeader::new("big", EntryKind::File);
        header.mode = 0o644;
        header.size = (chunks * chunk.len()) as u64;
        let data = std::iter::repeat_n(chunk.as_slice(), chunks)
            .flatten()
            .copied();
        let bytes: Vec<u8> = data.collect();
        writer.append(&header, bytes.as_slice()).expect("append");
        writer.finish().expect("finish")
    };
    let (digest, size) = blob.commit().expect("commit");
    let diff_id = Digest::parse(&descriptor.diff_id.to_string()).expect("diff id");
    let layer = distill_image::Descriptor::new(descriptor.media_type, digest, size);
    let start = Instant::now();
    let unpacked = store.unpacked_size(&layer, &diff_id).expect("measure");
    println!(
        "measure a 256 MiB layer ({} MiB gzip): {:.2}s",
        size >> 20,
        start.elapsed().as_secs_f64()
    );
    assert_eq!(unpacked, (chunks * chunk.len()) as u64);
}
