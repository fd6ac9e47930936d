//! Overlayfs upper directories become OCI whiteouts, and OCI whiteouts are applied (or turned
//! back into overlay whiteouts) on extraction.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{is_root, set_xattr, snapshot, Scratch};
use distill_layer::{
    extract, write_layer, Compression, EntryHeader, EntryKind, ExtractOptions, OverlayXattrs,
    TarReader, TarWriter, TreeOptions, Whiteouts,
};

/// `(path, kind, mode, uid, gid, mtime, size)` of every entry of a plain tar.
fn entries(tar: &[u8]) -> Vec<(String, EntryKind, u32, u64, u64, i64, u64)> {
    let mut reader = TarReader::new(tar);
    let mut out = Vec::new();
    while let Some(entry) = reader.next_entry().unwrap() {
        let h = &entry.header;
        assert!(
            !h.xattrs
                .iter()
                .any(|(name, _)| name.starts_with(b"trusted.overlay.")
                    || name.starts_with(b"user.overlay.")),
            "overlay xattrs leaked into {}",
            h.display_path()
        );
        out.push((
            h.display_path(),
            h.kind,
            h.mode,
            h.uid,
            h.gid,
            h.mtime,
            h.size,
        ));
    }
    out
}

fn mknod_whiteout(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .unwrap();
}

#[test]
fn fake_upper_dir_is_converted_to_oci_whiteouts() {
    if !is_root() {
        eprintln!("skipped: creating a 0/0 character device and trusted.* xattrs needs root");
        return;
    }
    let scratch = Scratch::new("fake-upper");
    let upper = scratch.dir("upper");
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/new.conf"), b"new").unwrap();
    mknod_whiteout(&upper.join("etc/removed"));
    fs::create_dir_all(upper.join("var")).unwrap();
    set_xattr(&upper.join("var"), "trusted.overlay.opaque", b"y");
    fs::write(upper.join("var/keep"), b"keep").unwrap();
    fs::create_dir_all(upper.join("rootless")).unwrap();
    set_xattr(&upper.join("rootless"), "user.overlay.opaque", b"y");
    set_xattr(&upper.join("etc"), "trusted.overlay.origin", b"\0\xfb");
    std::os::unix::fs::lchown(upper.join("var"), Some(10), Some(20)).unwrap();
    fs::set_permissions(
        upper.join("var"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();

    let mut tar = Vec::new();
    let options = TreeOptions::new().overlay_upper(true).clamp_mtime(1_000);
    write_layer(&upper, &options, &mut tar, Compression::None).unwrap();
    let got = entries(&tar);
    let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "etc",
            "etc/new.conf",
            "etc/.wh.removed",
            "rootless",
            "rootless/.wh..wh..opq",
            "var",
            "var/.wh..wh..opq",
            "var/keep",
        ]
    );
    // Whiteout: empty regular file, mode 0, root, mtime 0 (containerd's fields).
    assert_eq!(got[2].1, EntryKind::File);
    assert_eq!(
        (got[2].2, got[2].3, got[2].4, got[2].5, got[2].6),
        (0, 0, 0, 0, 0)
    );
    // Opaque marker: the directory's permissions and owner, mtime 0 (Docker's overlay driver).
    assert_eq!((got[6].2, got[6].3, got[6].4, got[6].5), (0o777, 10, 20, 0));
    assert_eq!(got[5].2, 0o1777);
    assert_eq!(got[5].5, 1_000, "clamped");

    // Without the overlay option the device is an ordinary device.
    let mut plain = Vec::new();
    write_layer(&upper, &TreeOptions::new(), &mut plain, Compression::None).unwrap();
    let plain = entries(&plain);
    assert!(plain
        .iter()
        .any(|e| e.0 == "etc/removed" && e.1 == EntryKind::CharDevice));
}

#[test]
fn overlay_redirects_are_refused() {
    let scratch = Scratch::new("redirect");
    let upper = scratch.dir("upper");
    fs::create_dir_all(upper.join("moved")).unwrap();
    set_xattr(&upper.join("moved"), "user.overlay.redirect", b"/original");
    let options = TreeOptions::new().overlay_upper(true);
    let err = write_layer(&upper, &options, Vec::new(), Compression::None).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("moved"), "{message}");
    assert!(message.contains("redirect_dir=off"), "{message}");
}

fn tar_of(entries: &[(EntryHeader, &[u8])]) -> Vec<u8> {
    let mut writer = TarWriter::new(Vec::new());
    for (header, data) in entries {
        writer.append(header, *data).unwrap();
    }
    writer.finish().unwrap()
}

fn header(path: &str, kind: EntryKind, size: u64) -> EntryHeader {
    let mut header = EntryHeader::new(path, kind);
    header.mode = if kind == EntryKind::Dir { 0o755 } else { 0o644 };
    header.size = size;
    header
}

#[test]
fn whiteouts_only_hide_lower_content() {
    let scratch = Scratch::new("apply");
    let target = scratch.dir("target");
    fs::create_dir_all(target.join("d/a")).unwrap();
    fs::write(target.join("d/a/lower"), b"lower").unwrap();
    fs::write(target.join("d/b"), b"lower").unwrap();
    fs::create_dir_all(target.join("e/sub")).unwrap();
    fs::write(target.join("e/gone"), b"lower").unwrap();
    fs::write(target.join("e/stays"), b"lower").unwrap();
    // The opaque marker after this layer's own entries in `d`, which it must keep; a whiteout
    // for a file this layer wrote, which must not remove it.
    let blob = tar_of(&[
        (header("d", EntryKind::Dir, 0), b""),
        (header("d/a", EntryKind::Dir, 0), b""),
        (header("d/a/upper", EntryKind::File, 5), b"upper"),
        (header("d/.wh..wh..opq", EntryKind::File, 0), b""),
        (header("e/.wh.gone", EntryKind::File, 0), b""),
        (header("e/.wh.sub", EntryKind::File, 0), b""),
        (header("e/new", EntryKind::File, 3), b"new"),
        (header("e/.wh.new", EntryKind::File, 0), b""),
        (header("nothing/.wh.here", EntryKind::File, 0), b""),
    ]);
    extract(&blob[..], &target, &ExtractOptions::default()).unwrap();
    let tree: Vec<String> = snapshot(&target).into_keys().collect();
    assert_eq!(tree, ["d", "d/a", "d/a/upper", "e", "e/new", "e/stays"]);
}

#[test]
fn whiteouts_become_overlay_whiteouts_in_overlay_mode() {
    if !is_root() {
        eprintln!("skipped: overlay whiteouts (0/0 devices, trusted.* xattrs) need root");
        return;
    }
    let scratch = Scratch::new("overlay-mode");
    let target = scratch.dir("target");
    let blob = tar_of(&[
        (header("d", EntryKind::Dir, 0), b""),
        (header("d/.wh..wh..opq", EntryKind::File, 0), b""),
        (header("e/.wh.gone", EntryKind::File, 0), b""),
    ]);
    let options = ExtractOptions {
        whiteouts: Whiteouts::Overlay(OverlayXattrs::Trusted),
        ..Default::default()
    };
    extract(&blob[..], &target, &options).unwrap();
    let tree = snapshot(&target);
    assert_eq!(tree["e/gone"].kind, "char");
    assert_eq!(tree["e/gone"].rdev, 0);
    assert!(tree["d"]
        .xattrs
        .contains(&(b"trusted.overlay.opaque".to_vec(), b"y".to_vec())));
}

fn mount_overlay(lower: &str, upper: Option<(&Path, &Path)>, merged: &Path) -> bool {
    let mut options = format!("lowerdir={lower}");
    if let Some((upper, work)) = upper {
        options.push_str(&format!(
            ",upperdir={},workdir={}",
            upper.display(),
            work.display()
        ));
    }
    Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(merged)
        .status()
        .is_ok_and(|status| status.success())
}

fn umount(path: &Path) {
    assert!(Command::new("umount").arg(path).status().unwrap().success());
}

/// A real overlayfs: changes made through it, its upper directory written as a layer, then that
/// layer applied on the lower tree (flattened) and mounted as an overlay lower (overlay mode)
/// must both show exactly what the overlay showed.
#[test]
fn real_overlay_diff_reproduces_the_merged_view() {
    if !is_root() {
        eprintln!("skipped: mounting overlayfs needs root");
        return;
    }
    let scratch = Scratch::new("real-overlay");
    let lower = scratch.dir("lower");
    fs::create_dir_all(lower.join("etc")).unwrap();
    fs::write(lower.join("etc/a"), b"a").unwrap();
    fs::write(lower.join("etc/b"), b"b").unwrap();
    fs::create_dir_all(lower.join("var/sub")).unwrap();
    fs::write(lower.join("var/old"), b"old").unwrap();
    fs::write(lower.join("var/sub/deep"), b"deep").unwrap();
    fs::create_dir_all(lower.join("opt")).unwrap();
    fs::write(lower.join("opt/x"), b"x").unwrap();
    let lower_blob = {
        let mut blob = Vec::new();
        write_layer(&lower, &TreeOptions::new(), &mut blob, Compression::gzip()).unwrap();
        blob
    };

    let upper = scratch.dir("upper");
    let work = scratch.dir("work");
    let merged = scratch.dir("merged");
    if !mount_overlay(lower.to_str().unwrap(), Some((&upper, &work)), &merged) {
        eprintln!("skipped: this machine cannot mount overlayfs");
        return;
    }
    fs::remove_file(merged.join("etc/a")).unwrap();
    fs::write(merged.join("etc/new"), b"new").unwrap();
    fs::remove_dir_all(merged.join("var")).unwrap();
    fs::create_dir(merged.join("var")).unwrap();
    fs::write(merged.join("var/keep"), b"keep").unwrap();
    fs::remove_dir_all(merged.join("opt")).unwrap();
    fs::write(merged.join("etc/b"), b"changed").unwrap();
    let expected = snapshot(&merged);
    umount(&merged);

    let mut layer = Vec::new();
    let options = TreeOptions::new().overlay_upper(true);
    write_layer(&upper, &options, &mut layer, Compression::gzip()).unwrap();

    // Flattened: lower, then the diff, in one directory.
    let flat = scratch.dir("flat");
    extract(&lower_blob[..], &flat, &ExtractOptions::default()).unwrap();
    extract(&layer[..], &flat, &ExtractOptions::default()).unwrap();
    assert_eq!(snapshot(&flat), expected);

    // Overlay mode: each layer in its own directory, stacked by overlayfs.
    let lower_layer = scratch.dir("layer0");
    let upper_layer = scratch.dir("layer1");
    let overlay = ExtractOptions {
        whiteouts: Whiteouts::Overlay(OverlayXattrs::Trusted),
        ..Default::default()
    };
    extract(&lower_blob[..], &lower_layer, &overlay).unwrap();
    extract(&layer[..], &upper_layer, &overlay).unwrap();
    let stacked = scratch.dir("stacked");
    let lowers = format!("{}:{}", upper_layer.display(), lower_layer.display());
    assert!(mount_overlay(&lowers, None, &stacked));
    let seen = snapshot(&stacked);
    umount(&stacked);
    assert_eq!(seen, expected);
}
