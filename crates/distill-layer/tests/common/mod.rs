//! Helpers shared by the integration tests: scratch directories and tree snapshots to compare.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory under the system temp dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "distill-layer-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }

    /// A fresh empty subdirectory.
    pub fn dir(&self, relative: &str) -> PathBuf {
        let path = self.0.join(relative);
        fs::create_dir_all(&path).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Everything we compare about one path of a tree.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub content: Vec<u8>,
    pub link: Option<PathBuf>,
    pub rdev: u64,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Index of the first path (in sorted order) sharing this inode, for hardlinks.
    pub inode_group: Option<String>,
}

/// Every path under `root` (not root itself) with its metadata, content and xattrs.
/// Directory mtimes are included: extraction must restore them too.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut paths = Vec::new();
    collect(root, &mut paths);
    paths.sort();
    for path in paths {
        let relative = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "file"
        };
        let inode_group = if !ft.is_dir() && meta.nlink() > 1 {
            Some(
                inodes
                    .entry((meta.dev(), meta.ino()))
                    .or_insert_with(|| relative.clone())
                    .clone(),
            )
        } else {
            None
        };
        let mut xattrs = Vec::new();
        if let Ok(names) = xattr_names(&path) {
            for name in names {
                let value = xattr_value(&path, &name);
                xattrs.push((name, value));
            }
        }
        out.insert(
            relative,
            Node {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: meta.mtime(),
                content: if ft.is_file() {
                    fs::read(&path).unwrap()
                } else {
                    Vec::new()
                },
                link: if ft.is_symlink() {
                    Some(fs::read_link(&path).unwrap())
                } else {
                    None
                },
                rdev: if ft.is_char_device() || ft.is_block_device() {
                    meta.rdev()
                } else {
                    0
                },
                xattrs,
                inode_group,
            },
        );
    }
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let is_dir = fs::symlink_metadata(&path).unwrap().is_dir();
        out.push(path.clone());
        if is_dir {
            collect(&path, out);
        }
    }
}

fn xattr_names(path: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut buffer = vec![0u8; 64 * 1024];
    let len = rustix::fs::llistxattr(path, &mut buffer[..])?;
    let mut names: Vec<Vec<u8>> = buffer[..len]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    names.sort();
    Ok(names)
}

fn xattr_value(path: &Path, name: &[u8]) -> Vec<u8> {
    let mut buffer = vec![0u8; 64 * 1024];
    let name = std::ffi::OsStr::from_bytes(name);
    let len = rustix::fs::lgetxattr(path, name, &mut buffer[..]).unwrap();
    buffer.truncate(len);
    buffer
}

pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty()).unwrap();
}

pub fn set_mtime(path: &Path, mtime: i64) {
    let time = rustix::fs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: time,
            last_modification: time,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Every path that exists under `dir`, for "nothing was written outside" checks.
pub fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(dir, &mut out);
    out.sort();
    out
}

/// A tree with every kind of entry we carry. Devices and foreign owners need root.
pub fn build_tree(root: &Path) {
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
        root.join("fifo"),
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
            root.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("loop9"),
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
    let mut paths = listing(root);
    paths.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
    for (index, path) in paths.iter().enumerate() {
        set_mtime(path, 1_600_000_000 + index as i64);
    }
}
