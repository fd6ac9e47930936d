//! Rough timings of the store's hot paths: streaming a large blob through a verifying writer,
//! looking up and reading images among many, and a garbage collection pass.
//! `cargo bench -p distill-store` (prints one line per measurement).

use std::io::Write;
use std::time::Instant;

use distill_image::Digest;
use distill_store::testing::TestImage;
use distill_store::{Expected, PruneOptions, Store};

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
}
