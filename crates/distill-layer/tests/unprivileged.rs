//! Extraction by an unprivileged user: ownership it cannot set is counted, device nodes and
//! trusted xattrs it cannot make are skipped with warnings, and everything else is extracted.
//!
//! Run as root, the test re-runs itself as `nobody` through `setpriv`.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use common::{is_root, Scratch};
use distill_layer::{extract, EntryHeader, EntryKind, ExtractOptions, TarWriter};

const CHILD: &str = "DISTILL_LAYER_UNPRIVILEGED_CHILD";

fn layer() -> Vec<u8> {
    let mut writer = TarWriter::new(Vec::new());
    let mut dir = EntryHeader::new("srv", EntryKind::Dir);
    dir.mode = 0o555;
    dir.uid = 1234;
    dir.mtime = 1_000_000;
    writer.append(&dir, std::io::empty()).unwrap();
    let mut file = EntryHeader::new("srv/tool", EntryKind::File);
    file.mode = 0o4755;
    file.uid = 1234;
    file.gid = 1234;
    file.size = 4;
    file.mtime = 2_000_000;
    file.xattrs = vec![
        (b"trusted.distill".to_vec(), b"x".to_vec()),
        (b"user.distill".to_vec(), b"y".to_vec()),
    ];
    writer.append(&file, &b"tool"[..]).unwrap();
    let mut device = EntryHeader::new("srv/null", EntryKind::CharDevice);
    device.mode = 0o666;
    device.dev_major = 1;
    device.dev_minor = 3;
    writer.append(&device, std::io::empty()).unwrap();
    let mut fifo = EntryHeader::new("srv/pipe", EntryKind::Fifo);
    fifo.mode = 0o600;
    writer.append(&fifo, std::io::empty()).unwrap();
    writer.finish().unwrap()
}

fn extract_unprivileged(scratch: &Scratch) {
    let target = scratch.dir("target");
    let report = extract(&layer()[..], &target, &ExtractOptions::default()).unwrap();
    assert_eq!(report.entries, 4);
    assert_eq!(report.ownership_not_kept, 3, "{report:?}");
    assert_eq!(report.devices_skipped, 1, "{report:?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("srv/null") && w.contains("character device 1:3 skipped")),
        "{:?}",
        report.warnings
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("trusted.distill")),
        "{:?}",
        report.warnings
    );
    let tool = fs::metadata(target.join("srv/tool")).unwrap();
    assert_eq!(fs::read(target.join("srv/tool")).unwrap(), b"tool");
    assert_eq!(tool.mode() & 0o7777, 0o4755);
    assert_eq!(tool.mtime(), 2_000_000);
    assert_eq!(tool.uid(), rustix::process::geteuid().as_raw());
    let srv = fs::metadata(target.join("srv")).unwrap();
    assert_eq!(
        srv.mode() & 0o7777,
        0o555,
        "applied after its contents were written"
    );
    assert_eq!(srv.mtime(), 1_000_000);
    assert!(!target.join("srv/null").exists());
    assert!(target.join("srv/pipe").exists());
    // Let the scratch directory be removed.
    fs::set_permissions(target.join("srv"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn unprivileged_extraction_keeps_going() {
    if let Some(dir) = std::env::var_os(CHILD) {
        assert!(!is_root(), "the child must run unprivileged");
        extract_unprivileged(&Scratch(std::path::PathBuf::from(dir)));
        return;
    }
    if !is_root() {
        extract_unprivileged(&Scratch::new("unprivileged"));
        return;
    }
    let has_setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !has_setpriv {
        eprintln!("skipped: running as root and setpriv is not installed to drop privileges");
        return;
    }
    let scratch = Scratch::new("unprivileged");
    let work = scratch.dir("work");
    std::os::unix::fs::chown(&work, Some(65534), Some(65534)).unwrap();
    let status = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "unprivileged_extraction_keeps_going",
            "--nocapture",
        ])
        .env(CHILD, &work)
        .status()
        .unwrap();
    assert!(status.success(), "the unprivileged run failed");
}
