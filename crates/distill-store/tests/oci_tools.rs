//! The store root is an OCI image layout that other tools read: skopeo and umoci must accept
//! it. Needs both installed (`apt-get install skopeo umoci`), hence ignored by default; run with
//! `cargo test -p distill-store --test oci_tools -- --ignored`.

use std::process::Command;

use distill_store::testing::TestImage;
use distill_store::Store;

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program}: {err} (apt-get install skopeo umoci)"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
#[ignore = "needs skopeo and umoci"]
fn skopeo_and_umoci_read_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = Store::open(&root).unwrap();
    let image = TestImage::new()
        .layer(&[("hello.txt", b"hello\n")])
        .commit(&store, &["app:1"])
        .unwrap();
    let root_text = root.to_str().unwrap();

    let inspect = run(
        "skopeo",
        &[
            "inspect",
            &format!("oci:{root_text}:docker.io/library/app:1"),
        ],
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], image.record.target.digest.to_string());
    assert_eq!(
        inspect["Layers"][0],
        image.manifest.layers[0].digest.to_string()
    );

    // umoci checks every blob's digest and size while unpacking.
    let bundle = dir.path().join("bundle");
    run(
        "umoci",
        &[
            "raw",
            "unpack",
            "--rootless",
            "--image",
            &format!("{root_text}:docker.io/library/app:1"),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(bundle.join("hello.txt")).unwrap(), b"hello\n");
}
