//! `distill import`, `save` and `load` end to end with no other tool: round trips between
//! stores in both archive formats, `--change`, Docker's old archive layout, and every kind of
//! bad input refused with a clear message and the store unchanged.

mod archive_util;

use std::path::Path;
use std::process::{Command, Stdio};

use archive_util::{read_json, small_rootfs, tar_bytes, tar_dir, untar, Distill, TarEntry};
use distill_image::Digest;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

/// A store holding `test/small:1`, imported from [`small_rootfs`]; returns its diff ID.
fn store_with_image(distill: &Distill) -> String {
    let rootfs = distill.path("rootfs.tar");
    write(&rootfs, &small_rootfs());
    let id = distill.ok(&["import", rootfs.to_str().unwrap(), "test/small:1"]);
    assert!(
        id.trim().starts_with("sha256:") && id.trim().len() == 71,
        "import prints the ID: {id}"
    );
    Digest::sha256_of(&small_rootfs()).to_string()
}

#[test]
fn import_keeps_the_tarball_as_the_layer_like_docker() {
    let distill = Distill::new();
    let diff_id = store_with_image(&distill);
    // The diff ID is the digest of the tarball given, byte for byte, as with `docker import`.
    assert_eq!(
        distill.diff_ids("docker.io/test/small:1"),
        std::slice::from_ref(&diff_id)
    );

    // Compressed input gives the same layer.
    let gz = distill.path("rootfs.tar.gz");
    let status = Command::new("gzip")
        .arg("-kf")
        .arg(distill.path("rootfs.tar"))
        .status()
        .expect("gzip");
    assert!(status.success());
    let output = distill.run_with_input(&["import", "-", "test/gz:1"], Some(&gz));
    archive_util::assert_success(&output, "import from stdin");
    assert_eq!(distill.diff_ids("docker.io/test/gz:1"), [diff_id]);

    let index = read_json(&distill.root.join("index.json"));
    let entry = &index["manifests"][0];
    let manifest = read_json(&distill.blob(entry["digest"].as_str().unwrap()));
    let config = read_json(&distill.blob(manifest["config"]["digest"].as_str().unwrap()));
    assert_eq!(config["os"], "linux");
    assert_eq!(config["history"][0]["comment"], "Imported from -");
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
}

#[test]
fn import_applies_changes_as_docker_import_does() {
    let distill = Distill::new();
    let rootfs = distill.path("rootfs.tar");
    write(&rootfs, &small_rootfs());
    let changes = [
        "ENV A=1",
        "ENV B=${A}-two C=\"quoted value\"",
        "CMD echo hello",
        "ENTRYPOINT [\"/bin/sh\", \"-c\"]",
        "EXPOSE 80 53/udp 9000-9001",
        "WORKDIR /app",
        "WORKDIR sub",
        "USER nobody:$A",
        "LABEL org.example.name=\"small image\" version=$A",
        "VOLUME [\"/data\", \"/cache\"]",
        "ONBUILD RUN echo triggered",
    ];
    let mut args = vec!["import", rootfs.to_str().unwrap(), "test/changed:1"];
    for change in &changes {
        args.push("--change");
        args.push(change);
    }
    args.extend(["--message", "made by a test"]);
    distill.ok(&args);

    let index = read_json(&distill.root.join("index.json"));
    let manifest = read_json(&distill.blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let config = read_json(&distill.blob(manifest["config"]["digest"].as_str().unwrap()));
    let runtime = &config["config"];
    assert_eq!(
        runtime["Env"],
        serde_json::json!(["A=1", "B=1-two", "C=quoted value"])
    );
    // CMD was set by these changes, so the later ENTRYPOINT keeps it.
    assert_eq!(
        runtime["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "echo hello"])
    );
    assert_eq!(runtime["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(
        runtime["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "80/tcp": {}, "9000/tcp": {}, "9001/tcp": {}})
    );
    assert_eq!(runtime["WorkingDir"], "/app/sub");
    assert_eq!(runtime["User"], "nobody:1");
    assert_eq!(
        runtime["Labels"],
        serde_json::json!({"org.example.name": "small image", "version": "1"})
    );
    assert_eq!(
        runtime["Volumes"],
        serde_json::json!({"/cache": {}, "/data": {}})
    );
    assert_eq!(
        runtime["OnBuild"],
        serde_json::json!(["RUN echo triggered"])
    );
    assert_eq!(config["history"][0]["comment"], "made by a test");
}

#[test]
fn import_refuses_instructions_that_need_a_build_and_bad_tarballs() {
    let distill = Distill::new();
    store_with_image(&distill);
    let before = distill.fingerprint();
    let rootfs = distill.path("rootfs.tar");

    let err = distill.fails(&[
        "import",
        rootfs.to_str().unwrap(),
        "x:1",
        "--change",
        "RUN make",
    ]);
    assert!(err.contains("RUN is not supported by import"), "{err}");
    assert!(err.contains("CMD, ENTRYPOINT, ENV"), "{err}");

    let err = distill.fails(&[
        "import",
        rootfs.to_str().unwrap(),
        "x:1",
        "--change",
        "EXPOSE 80/xyz",
    ]);
    assert!(err.contains("invalid proto: xyz"), "{err}");

    let evil = distill.path("evil.tar");
    write(
        &evil,
        &tar_bytes(&[TarEntry::File(
            "../../etc/cron.d/evil",
            b"* * * * * root sh\n",
        )]),
    );
    let err = distill.fails(&["import", evil.to_str().unwrap(), "x:1"]);
    assert!(err.contains("path traversal"), "{err}");

    let absolute = distill.path("absolute.tar");
    write(
        &absolute,
        &tar_bytes(&[TarEntry::File("/etc/passwd", b"root::0:0::/:/bin/sh\n")]),
    );
    let err = distill.fails(&["import", absolute.to_str().unwrap(), "x:1"]);
    assert!(err.contains("absolute path"), "{err}");

    let empty = distill.path("empty.tar");
    write(&empty, b"");
    let err = distill.fails(&["import", empty.to_str().unwrap(), "x:1"]);
    assert!(err.contains("empty"), "{err}");

    let truncated = distill.path("truncated.tar");
    write(&truncated, &small_rootfs()[..700]);
    let err = distill.fails(&["import", truncated.to_str().unwrap(), "x:1"]);
    assert!(err.contains("truncated"), "{err}");

    // Blobs a refused import wrote are unreferenced, but no image or tag changed.
    let after = distill.fingerprint();
    assert_eq!(before.index, after.index, "image records changed");
    assert_eq!(after.ingest, 0, "staging files left behind");
}

#[test]
fn save_and_load_round_trip_in_both_formats() {
    let source = Distill::new();
    let diff_id = store_with_image(&source);
    source.ok(&[
        "import",
        source.path("rootfs.tar").to_str().unwrap(),
        "example.com:5000/team/other:2",
    ]);

    for format in ["docker", "oci"] {
        let archive = source.path(&format!("{format}.tar"));
        source.ok(&[
            "save",
            "--format",
            format,
            "-o",
            archive.to_str().unwrap(),
            "test/small:1",
            "example.com:5000/team/other:2",
        ]);
        let target = Distill::new();
        let printed = target.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(
            printed, "Loaded image: test/small:1\nLoaded image: example.com:5000/team/other:2\n",
            "{format}"
        );
        assert_eq!(
            target.diff_ids("docker.io/test/small:1"),
            std::slice::from_ref(&diff_id)
        );
        assert_eq!(
            target.diff_ids("example.com:5000/team/other:2"),
            std::slice::from_ref(&diff_id)
        );
        // Loading again changes nothing but is fine, as with docker.
        let before = target.fingerprint();
        target.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(before, target.fingerprint());
    }

    // The same save twice is the same bytes.
    let again = source.path("again.tar");
    source.ok(&[
        "save",
        "-o",
        again.to_str().unwrap(),
        "test/small:1",
        "example.com:5000/team/other:2",
    ]);
    assert_eq!(
        std::fs::read(source.path("docker.tar")).unwrap(),
        std::fs::read(&again).unwrap(),
        "save is not deterministic"
    );
}

#[test]
fn load_reads_standard_input_gzipped_archives_and_saves_to_stdout() {
    let source = Distill::new();
    let diff_id = store_with_image(&source);
    let archive = source.path("out.tar");
    let output = source
        .command()
        .args(["save", "test/small:1"])
        .stdout(std::fs::File::create(&archive).unwrap())
        .output()
        .unwrap();
    archive_util::assert_success(&output, "save to stdout");
    let status = Command::new("gzip")
        .arg("-k")
        .arg(&archive)
        .status()
        .unwrap();
    assert!(status.success());

    let target = Distill::new();
    let mut child = target
        .command()
        .arg("load")
        .stdin(std::fs::File::open(source.path("out.tar.gz")).unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(target.diff_ids("docker.io/test/small:1"), [diff_id]);
}

#[test]
fn save_by_id_writes_an_unnamed_image() {
    let source = Distill::new();
    store_with_image(&source);
    let index = read_json(&source.root.join("index.json"));
    let manifest = read_json(&source.blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let id = manifest["config"]["digest"].as_str().unwrap().to_string();
    let archive = source.path("by-id.tar");
    source.ok(&["save", "-o", archive.to_str().unwrap(), &id]);
    let target = Distill::new();
    assert_eq!(
        target.ok(&["load", "-i", archive.to_str().unwrap()]),
        format!("Loaded image ID: {id}\n")
    );

    let err = source.fails(&["save", "-o", archive.to_str().unwrap(), "no/such:image"]);
    assert!(err.contains("no/such:image"), "{err}");
}

/// Docker's archive layout before version 25: `<id>.json`, `<id>/layer.tar`, shared layers
/// as symlinks, written here by hand.
#[test]
fn load_reads_the_old_docker_layout_with_symlinked_layers() {
    let layer = small_rootfs();
    let diff_id = Digest::sha256_of(&layer).to_string();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}","{diff_id}"]}}}}"#
    );
    let config_hex = Digest::sha256_of(config.as_bytes()).hex().to_string();
    let manifest = format!(
        r#"[{{"Config":"{config_hex}.json","RepoTags":["old/layout:latest","old/layout:v1"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}}]"#
    );
    let archive = tar_bytes(&[
        TarEntry::Dir("aaa/"),
        TarEntry::File("aaa/VERSION", b"1.0"),
        TarEntry::File("aaa/layer.tar", &layer),
        TarEntry::Dir("bbb/"),
        TarEntry::Symlink("bbb/layer.tar", "../aaa/layer.tar"),
        TarEntry::File(&format!("{config_hex}.json"), config.as_bytes()),
        TarEntry::File("manifest.json", manifest.as_bytes()),
        TarEntry::File("repositories", br#"{"old/layout":{"latest":"aaa"}}"#),
    ]);
    let distill = Distill::new();
    let path = distill.path("old.tar");
    write(&path, &archive);
    assert_eq!(
        distill.ok(&["load", "-i", path.to_str().unwrap()]),
        "Loaded image: old/layout:latest\nLoaded image: old/layout:v1\n"
    );
    assert_eq!(
        distill.diff_ids("docker.io/old/layout:v1"),
        [diff_id.clone(), diff_id]
    );

    // And it saves back out in the new layout.
    let saved = distill.path("new.tar");
    distill.ok(&["save", "-o", saved.to_str().unwrap(), "old/layout:v1"]);
    let unpacked = distill.path("new");
    untar(&saved, &unpacked);
    let items = read_json(&unpacked.join("manifest.json"));
    assert_eq!(items[0]["RepoTags"], serde_json::json!(["old/layout:v1"]));
    assert_eq!(items[0]["Config"], format!("blobs/sha256/{config_hex}"));
    assert!(unpacked.join("oci-layout").is_file());
}

/// A saved archive, unpacked into a directory for a test to damage.
fn unpacked_archive(distill: &Distill, format: &str) -> std::path::PathBuf {
    let archive = distill.path(&format!("{format}-good.tar"));
    distill.ok(&[
        "save",
        "--format",
        format,
        "-o",
        archive.to_str().unwrap(),
        "test/small:1",
    ]);
    let dir = distill.path(&format!("{format}-unpacked"));
    let _ = std::fs::remove_dir_all(&dir);
    untar(&archive, &dir);
    dir
}

/// The largest blob of an unpacked archive: the layer.
fn layer_blob(dir: &Path) -> std::path::PathBuf {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .max_by_key(|entry| entry.metadata().unwrap().len())
        .unwrap()
        .path()
}

#[test]
fn bad_archives_are_refused_and_leave_the_store_unchanged() {
    let distill = Distill::new();
    store_with_image(&distill);
    // A target store that already holds something, so "unchanged" is not just "empty".
    let target = Distill::new();
    store_with_image(&target);
    let before = target.fingerprint();
    let refuse = |name: &str, archive: &Path, expected: &str| {
        let err = target.fails(&["load", "-i", archive.to_str().unwrap()]);
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in:\n{err}"
        );
        assert_eq!(before, target.fingerprint(), "{name}: the store changed");
    };

    let good = distill.path("good.tar");
    distill.ok(&["save", "-o", good.to_str().unwrap(), "test/small:1"]);
    let bytes = std::fs::read(&good).unwrap();

    // Cut in the middle of the layer blob.
    let truncated = distill.path("truncated.tar");
    write(&truncated, &bytes[..bytes.len() / 2]);
    refuse("truncated", &truncated, "truncated");

    // A flipped byte in the layer: its name no longer matches its content.
    let dir = unpacked_archive(&distill, "docker");
    let layer = layer_blob(&dir);
    let mut content = std::fs::read(&layer).unwrap();
    let middle = content.len() / 2;
    content[middle] ^= 0xff;
    std::fs::set_permissions(&layer, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    write(&layer, &content);
    let corrupt = distill.path("corrupt.tar");
    tar_dir(&dir, &corrupt);
    refuse("wrong digest", &corrupt, "not the digest its name says");

    // manifest.json that is not what Docker writes.
    for (name, manifest, expected) in [
        (
            "manifest not json",
            "[{\"Config\":",
            "manifest.json is malformed",
        ),
        ("manifest null", "null", "manifest.json is null"),
        (
            "config path escapes",
            r#"[{"Config":"../../etc/passwd","Layers":[]}]"#,
            "path traversal",
        ),
        (
            "config missing",
            r#"[{"Config":"blobs/sha256/00","Layers":[]}]"#,
            "missing from the archive",
        ),
    ] {
        let dir = unpacked_archive(&distill, "docker");
        write(&dir.join("manifest.json"), manifest.as_bytes());
        let archive = distill.path("bad-manifest.tar");
        tar_dir(&dir, &archive);
        refuse(name, &archive, expected);
    }

    // An OCI archive with a broken index.json, and one whose blob is missing.
    let dir = unpacked_archive(&distill, "oci");
    write(
        &dir.join("index.json"),
        br#"{"schemaVersion":2,"manifests":[{"mediaType":5}]}"#,
    );
    let archive = distill.path("bad-index.tar");
    tar_dir(&dir, &archive);
    refuse("malformed index.json", &archive, "index.json is malformed");

    let dir = unpacked_archive(&distill, "oci");
    std::fs::remove_file(layer_blob(&dir)).unwrap();
    let archive = distill.path("missing-blob.tar");
    tar_dir(&dir, &archive);
    refuse("missing blob", &archive, "missing from the archive");

    // Entry names and links that leave the archive.
    let traversal = distill.path("traversal.tar");
    write(
        &traversal,
        &tar_bytes(&[
            TarEntry::File("../../evil", b"x"),
            TarEntry::File("manifest.json", b"[]"),
        ]),
    );
    refuse("path traversal name", &traversal, "path traversal");
    let absolute = distill.path("absolute.tar");
    write(&absolute, &tar_bytes(&[TarEntry::File("/etc/evil", b"x")]));
    refuse("absolute name", &absolute, "absolute path");
    let link = distill.path("link.tar");
    write(
        &link,
        &tar_bytes(&[TarEntry::Symlink("manifest.json", "../../../etc/passwd")]),
    );
    refuse("escaping symlink", &link, "leaves the archive");

    // Layers whose content is not what the config says.
    let layer = small_rootfs();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        Digest::sha256_of(b"something else")
    );
    let manifest = r#"[{"Config":"config.json","RepoTags":["x:1"],"Layers":["layer.tar"]}]"#;
    let mismatch = distill.path("mismatch.tar");
    write(
        &mismatch,
        &tar_bytes(&[
            TarEntry::File("config.json", config.as_bytes()),
            TarEntry::File("layer.tar", &layer),
            TarEntry::File("manifest.json", manifest.as_bytes()),
        ]),
    );
    refuse("diff ID mismatch", &mismatch, "but the image config lists");

    let not_tar = distill.path("not.tar");
    write(&not_tar, &[b'z'; 2000]);
    refuse("not a tar", &not_tar, "not a tar archive");
    let nothing = distill.path("nothing.tar");
    write(&nothing, &tar_bytes(&[TarEntry::File("hello.txt", b"hi")]));
    refuse(
        "no manifest",
        &nothing,
        "neither manifest.json nor index.json",
    );
}

#[test]
fn save_of_a_bare_name_saves_every_tag_of_the_repository() {
    let source = Distill::new();
    store_with_image(&source);
    let rootfs = source.path("rootfs.tar");
    let rootfs = rootfs.to_str().unwrap();
    source.ok(&["import", rootfs, "test/small:2"]);
    source.ok(&["import", rootfs, "test/small:3", "--change", "USER nobody"]);
    source.ok(&["import", rootfs, "test/other:1"]);
    let archive = source.path("all.tar");
    source.ok(&["save", "-o", archive.to_str().unwrap(), "test/small"]);

    let target = Distill::new();
    let printed = target.ok(&["load", "-i", archive.to_str().unwrap()]);
    let mut lines: Vec<&str> = printed.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "Loaded image: test/small:1",
            "Loaded image: test/small:2",
            "Loaded image: test/small:3"
        ]
    );
}

/// A multi-platform index of which the archive carries one platform (as Docker 25+ saves an
/// image pulled for one platform): it loads, and the missing platform is not required.
#[test]
fn load_accepts_an_index_with_platforms_the_archive_does_not_carry() {
    let distill = Distill::new();
    store_with_image(&distill);
    let dir = unpacked_archive(&distill, "oci");
    let index = read_json(&dir.join("index.json"));
    let mut present = index["manifests"][0].clone();
    present.as_object_mut().unwrap().remove("annotations");
    present["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
    let absent = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": Digest::sha256_of(b"a manifest that is not here").to_string(),
        "size": 27,
        "platform": {"architecture": "arm64", "os": "linux"}
    });
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [absent, present]
    }))
    .unwrap();
    let nested_digest = Digest::sha256_of(&nested);
    write(&dir.join("blobs/sha256").join(nested_digest.hex()), &nested);
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": nested_digest.to_string(),
            "size": nested.len(),
            "annotations": {"io.containerd.image.name": "docker.io/test/multi:1"}
        }]
    });
    write(&dir.join("index.json"), &serde_json::to_vec(&top).unwrap());
    let archive = distill.path("multi.tar");
    tar_dir(&dir, &archive);

    let target = Distill::new();
    assert_eq!(
        target.ok(&["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: test/multi:1\n"
    );
    let stored = read_json(&target.root.join("index.json"));
    assert_eq!(stored["manifests"][0]["digest"], nested_digest.to_string());

    // With no platform present at all, it is refused.
    std::fs::remove_file(
        dir.join("blobs/sha256").join(
            index["manifests"][0]["digest"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap(),
        ),
    )
    .unwrap();
    tar_dir(&dir, &archive);
    let err = target.fails(&["load", "-i", archive.to_str().unwrap()]);
    assert!(err.contains("none of the 2 manifests"), "{err}");
}
