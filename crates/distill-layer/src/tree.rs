//! A directory tree (a snapshot, or an overlayfs upper directory) to tar entries, in a fixed order.
//!
//! Order: depth first, each directory's entries sorted by name bytewise, a directory before its
//! contents: the order of Go's `filepath.Walk`, which containerd and Docker use, so the same tree
//! always gives the same tar whatever order the filesystem lists it in.
//!
//! Entries carry what containerd writes (`FileInfoHeaderNoLookups`, `Format: PAX`): permission
//! and setuid/setgid/sticky bits, numeric uid/gid with empty names, whole-second mtimes (clamped
//! to `SOURCE_DATE_EPOCH` when asked), link targets, device numbers, xattrs as
//! `SCHILY.xattr.*`. The second and later paths of an inode become hardlinks to the first.
//! Sockets are skipped, as Docker does.
//!
//! With [`TreeOptions::overlay_upper`], overlayfs's whiteouts become OCI whiteouts: a 0/0
//! character device `x` becomes an empty file `.wh.x` (mode 0, owner 0:0, mtime 0, like
//! containerd), and a directory marked opaque (`trusted.overlay.opaque` or
//! `user.overlay.opaque` = `y`) is followed by `.wh..wh..opq` (the directory's permissions and
//! owner, mtime 0, like Docker's overlay driver). Overlay's own xattrs never reach the layer.
//! Upper directories using overlay's `redirect_dir` or `metacopy` are refused: their files'
//! data or names live in the lower layers, and a layer made from them would be wrong.
//!
//! Never follows a symlink: every path is read with `lstat`, files are opened `O_NOFOLLOW`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::error::LayerError;
use crate::tar::{EntryHeader, EntryKind, TarWriter};
use crate::xattr;

/// What happens to modification times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Timestamps {
    /// Keep each file's mtime (whole seconds).
    #[default]
    Keep,
    /// `SOURCE_DATE_EPOCH`: mtimes later than this are set to it.
    Clamp(i64),
    /// Every entry gets this mtime.
    Set(i64),
}

impl Timestamps {
    fn apply(self, mtime: i64) -> i64 {
        match self {
            Timestamps::Keep => mtime,
            Timestamps::Clamp(epoch) => mtime.min(epoch),
            Timestamps::Set(time) => time,
        }
    }
}

/// Which extended attributes go into the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Xattrs {
    /// All of them except overlayfs's own (`trusted.overlay.*`, `user.overlay.*`) and SELinux
    /// labels (`security.selinux`, which belong to the host, not the image).
    #[default]
    All,
    /// Only `security.capability`, as Docker and BuildKit write.
    CapabilitiesOnly,
    /// None.
    None,
}

impl Xattrs {
    fn keeps(self, name: &[u8]) -> bool {
        let internal = name.starts_with(b"trusted.overlay.")
            || name.starts_with(b"user.overlay.")
            || name == b"security.selinux";
        match self {
            Xattrs::All => !internal,
            Xattrs::CapabilitiesOnly => name == b"security.capability",
            Xattrs::None => false,
        }
    }
}

/// Which owners the entries get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Owners {
    /// The files' own uid and gid.
    #[default]
    Keep,
    /// The tree was written in a user namespace where only the host's `uid` and `gid` were
    /// mapped, to 0: entries get the owners the files had in there (those ids become 0, any
    /// other id the kernel's overflow id 65534, `nobody`).
    SingleId { uid: u32, gid: u32 },
}

/// The overflow id a user namespace shows for ids it does not map.
const OVERFLOW_ID: u32 = 65534;

impl Owners {
    fn apply(self, uid: u32, gid: u32) -> (u32, u32) {
        match self {
            Owners::Keep => (uid, gid),
            Owners::SingleId {
                uid: host_uid,
                gid: host_gid,
            } => (
                if uid == host_uid { 0 } else { OVERFLOW_ID },
                if gid == host_gid { 0 } else { OVERFLOW_ID },
            ),
        }
    }
}

/// How [`write_tree`] turns a directory into entries. Defaults: keep mtimes, all xattrs, no
/// overlay conversion, the files' own owners.
#[derive(Clone, Debug, Default)]
pub struct TreeOptions {
    pub timestamps: Timestamps,
    pub xattrs: Xattrs,
    pub overlay_upper: bool,
    pub owners: Owners,
}

impl TreeOptions {
    pub fn new() -> TreeOptions {
        TreeOptions::default()
    }

    /// Clamps mtimes to `epoch` (seconds), as `SOURCE_DATE_EPOCH` asks.
    pub fn clamp_mtime(mut self, epoch: i64) -> TreeOptions {
        self.timestamps = Timestamps::Clamp(epoch);
        self
    }

    pub fn timestamps(mut self, timestamps: Timestamps) -> TreeOptions {
        self.timestamps = timestamps;
        self
    }

    pub fn xattrs(mut self, xattrs: Xattrs) -> TreeOptions {
        self.xattrs = xattrs;
        self
    }

    pub fn owners(mut self, owners: Owners) -> TreeOptions {
        self.owners = owners;
        self
    }

    /// Treats the tree as an overlayfs upper directory: converts its whiteouts.
    pub fn overlay_upper(mut self, yes: bool) -> TreeOptions {
        self.overlay_upper = yes;
        self
    }
}

/// Appends every entry under `root` (not `root` itself) to `tar`, in the order and with the
/// headers described in the module documentation. Returns the number of entries written.
pub fn write_tree<W: Write>(
    root: &Path,
    options: &TreeOptions,
    tar: &mut TarWriter<W>,
) -> Result<u64, LayerError> {
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    // The first path seen for each multiply-linked inode.
    let mut first_paths: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut count = 0;
    for entry in walker {
        let entry = entry.map_err(|err| {
            let path = err
                .path()
                .map(|path| path.display().to_string())
                .unwrap_or_else(|| root.display().to_string());
            LayerError::Source {
                path,
                source: err.into(),
            }
        })?;
        let full_path = entry.path();
        let shown = || full_path.display().to_string();
        let relative = full_path
            .strip_prefix(root)
            .map_err(|_| LayerError::Unsupported {
                path: shown(),
                reason: "walked outside the tree's root".to_string(),
            })?
            .as_os_str()
            .as_bytes()
            .to_vec();
        let metadata = full_path
            .symlink_metadata()
            .map_err(|source| LayerError::Source {
                path: shown(),
                source,
            })?;
        let file_type = metadata.file_type();
        if file_type.is_socket() {
            continue;
        }

        let mut header = EntryHeader::new(relative, EntryKind::File);
        header.mode = metadata.mode() & 0o7777;
        let (uid, gid) = options.owners.apply(metadata.uid(), metadata.gid());
        header.uid = u64::from(uid);
        header.gid = u64::from(gid);
        header.mtime = options.timestamps.apply(metadata.mtime());

        if options.overlay_upper && file_type.is_char_device() && metadata.rdev() == 0 {
            let whiteout = whiteout_path(&header.path);
            let mut whiteout_header = EntryHeader::new(whiteout, EntryKind::File);
            whiteout_header.mtime = options.timestamps.apply(0);
            tar.append(&whiteout_header, io::empty())?;
            count += 1;
            continue;
        }

        let names = xattr::list(full_path).map_err(|source| LayerError::Source {
            path: shown(),
            source,
        })?;
        let mut opaque = false;
        for name in names {
            if options.overlay_upper {
                match name.as_slice() {
                    b"trusted.overlay.opaque" | b"user.overlay.opaque" => {
                        let value =
                            xattr::get(full_path, &name).map_err(|source| LayerError::Source {
                                path: shown(),
                                source,
                            })?;
                        opaque |= file_type.is_dir() && value.as_deref() == Some(b"y");
                    }
                    b"trusted.overlay.redirect"
                    | b"user.overlay.redirect"
                    | b"trusted.overlay.metacopy"
                    | b"user.overlay.metacopy" => {
                        return Err(LayerError::Unsupported {
                            path: shown(),
                            reason: format!(
                                "overlayfs `{}` entry: the upper directory does not hold this \
                                 file's data or name; mount overlayfs with redirect_dir=off and \
                                 metacopy=off",
                                String::from_utf8_lossy(&name)
                            ),
                        })
                    }
                    _ => {}
                }
            }
            if options.xattrs.keeps(&name) {
                if let Some(value) =
                    xattr::get(full_path, &name).map_err(|source| LayerError::Source {
                        path: shown(),
                        source,
                    })?
                {
                    header.xattrs.push((name, value));
                }
            }
        }
        header.xattrs.sort();

        let mut content: Option<File> = None;
        if file_type.is_dir() {
            header.kind = EntryKind::Dir;
        } else if file_type.is_symlink() {
            header.kind = EntryKind::Symlink;
            header.link_target = std::fs::read_link(full_path)
                .map_err(|source| LayerError::Source {
                    path: shown(),
                    source,
                })?
                .into_os_string()
                .into_vec();
        } else if file_type.is_char_device() || file_type.is_block_device() {
            header.kind = if file_type.is_char_device() {
                EntryKind::CharDevice
            } else {
                EntryKind::BlockDevice
            };
            header.dev_major = rustix::fs::major(metadata.rdev());
            header.dev_minor = rustix::fs::minor(metadata.rdev());
        } else if file_type.is_fifo() {
            header.kind = EntryKind::Fifo;
        } else if file_type.is_file() {
            header.size = metadata.len();
        } else {
            return Err(LayerError::Unsupported {
                path: shown(),
                reason: "unknown file type".to_string(),
            });
        }

        if !file_type.is_dir() && metadata.nlink() > 1 {
            let inode = (metadata.dev(), metadata.ino());
            if let Some(first) = first_paths.get(&inode) {
                header.kind = EntryKind::Hardlink;
                header.link_target = first.clone();
                header.size = 0;
            } else {
                first_paths.insert(inode, header.path.clone());
            }
        }

        if header.kind == EntryKind::File && header.size > 0 {
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(full_path)
                .map_err(|source| LayerError::Source {
                    path: shown(),
                    source,
                })?;
            content = Some(file);
        }
        match content {
            Some(file) => tar.append(&header, file)?,
            None => tar.append(&header, io::empty())?,
        }
        count += 1;

        if opaque {
            let mut marker = EntryHeader::new(opaque_marker_path(&header.path), EntryKind::File);
            marker.mode = header.mode & 0o777;
            marker.uid = header.uid;
            marker.gid = header.gid;
            marker.mtime = options.timestamps.apply(0);
            tar.append(&marker, io::empty())?;
            count += 1;
        }
    }
    Ok(count)
}

/// `dir/.wh.name` for `dir/name`: the OCI whiteout that deletes it.
fn whiteout_path(path: &[u8]) -> Vec<u8> {
    let (dir, name) = match path.iter().rposition(|&byte| byte == b'/') {
        Some(slash) => (&path[..=slash], &path[slash + 1..]),
        None => (&path[..0], path),
    };
    [dir, b".wh.", name].concat()
}

/// `dir/.wh..wh..opq`: the OCI marker that hides everything lower layers had in `dir`.
fn opaque_marker_path(dir: &[u8]) -> Vec<u8> {
    [dir, b"/.wh..wh..opq"].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_id_owners_are_what_the_namespace_showed() {
        let owners = Owners::SingleId {
            uid: 1001,
            gid: 1002,
        };
        assert_eq!(owners.apply(1001, 1002), (0, 0));
        assert_eq!(owners.apply(1001, 1001), (0, OVERFLOW_ID));
        assert_eq!(owners.apply(0, 1002), (OVERFLOW_ID, 0));
        assert_eq!(Owners::Keep.apply(1001, 7), (1001, 7));
    }
}
