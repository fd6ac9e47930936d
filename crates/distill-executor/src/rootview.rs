//! A read-only view of a stage's file system as the stack of its layer snapshots, without
//! mounting anything: lookups go from the top layer down, honouring overlayfs whiteouts
//! (character device 0/0) and opaque directories, as the kernel's overlay would.
//!
//! A path is resolved one component at a time; a symlink met on the way is followed inside
//! the view (an absolute target starts again at the view's root, `..` never climbs above
//! it), so nothing outside the layers is ever read. The build context is a view of one
//! layer, which gives COPY the same guarantee for `../` and symlinks pointing out.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

/// Symlinks followed while resolving one path before giving up, as the kernel's limit.
const MAX_SYMLINKS: usize = 40;

/// The layers of a file system, bottom first, each a directory in overlay format.
#[derive(Clone, Debug, Default)]
pub struct RootView {
    layers: Vec<PathBuf>,
}

/// A path found in a view.
#[derive(Clone, Debug)]
pub struct Found {
    /// The path inside the view, symlinks resolved (components, no leading `/`).
    pub path: Vec<OsString>,
    /// Where the entry's data lives on the host.
    pub host: PathBuf,
    pub meta: Metadata,
    /// For a directory: the layers (top first) whose directories make up its contents.
    active: Vec<usize>,
}

impl Found {
    /// The path inside the view, with a leading `/`.
    pub fn display(&self) -> String {
        let mut text = String::new();
        for part in &self.path {
            text.push('/');
            text.push_str(&part.to_string_lossy());
        }
        if text.is_empty() {
            text.push('/');
        }
        text
    }
}

/// Directories with at least this many entries are stat'ed by several threads.
const PARALLEL_STAT_MIN: usize = 512;

/// The metadata of directory entries (relative to their directory), in order; a large
/// directory's in parallel, as that is most of what checking an unchanged context costs.
fn stat_all(entries: &[fs::DirEntry]) -> Vec<io::Result<Metadata>> {
    if entries.len() < PARALLEL_STAT_MIN {
        return entries.iter().map(fs::DirEntry::metadata).collect();
    }
    entries
        .par_iter()
        .with_min_len(PARALLEL_STAT_MIN / 2)
        .map(fs::DirEntry::metadata)
        .collect()
}

/// An entry of a directory in a view (see [`RootView::entries`]).
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: OsString,
    /// Where the entry's data lives on the host.
    pub host: PathBuf,
    pub meta: Metadata,
    active: Vec<usize>,
}

impl Entry {
    /// The entry as found in its directory `dir`.
    pub fn into_found(self, dir: &Found) -> Found {
        let mut path = Vec::with_capacity(dir.path.len() + 1);
        path.extend(dir.path.iter().cloned());
        path.push(self.name);
        Found {
            path,
            host: self.host,
            meta: self.meta,
            active: self.active,
        }
    }
}

/// An entry of a directory listing, while the layers below are read.
struct Listed {
    host: PathBuf,
    meta: Metadata,
    whiteout: bool,
    /// For a directory: the layers (top first) whose directories make up its contents.
    active: Vec<usize>,
    /// A directory whose lower layers' directories of the same name still add to it (no
    /// opaque marker and no non-directory met yet).
    merging: bool,
}

fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        let mut value = [0u8; 4];
        if let Ok(len) = rustix::fs::lgetxattr(path, name, &mut value) {
            if len == 1 && value[0] == b'y' {
                return true;
            }
        }
    }
    false
}

impl RootView {
    /// A view of `layers`, bottom first.
    pub fn new(layers: Vec<PathBuf>) -> RootView {
        RootView { layers }
    }

    /// A view of a single directory.
    pub fn of_dir(dir: impl Into<PathBuf>) -> RootView {
        RootView {
            layers: vec![dir.into()],
        }
    }

    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    fn root(&self) -> io::Result<Found> {
        let top_first: Vec<usize> = (0..self.layers.len()).rev().collect();
        // An empty view has an empty root directory; its metadata is taken from `/`.
        let host = self
            .layers
            .last()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("/"));
        let meta = fs::symlink_metadata(&host)?;
        Ok(Found {
            path: Vec::new(),
            host,
            meta,
            active: top_first,
        })
    }

    /// The entry `name` in the directory `dir`, if the view has one.
    fn child(&self, dir: &Found, name: &OsStr) -> Option<Found> {
        let rel: PathBuf = dir.path.iter().collect();
        let mut layers = dir.active.iter().copied();
        while let Some(layer) = layers.next() {
            let host = self.layers[layer].join(&rel).join(name);
            let Ok(meta) = fs::symlink_metadata(&host) else {
                continue;
            };
            if is_whiteout(&meta) {
                return None;
            }
            let mut active = Vec::new();
            if meta.is_dir() {
                active.push(layer);
                if !is_opaque(&host) {
                    for lower in layers.by_ref() {
                        let below = self.layers[lower].join(&rel).join(name);
                        match fs::symlink_metadata(&below) {
                            Ok(m) if m.is_dir() => {
                                active.push(lower);
                                if is_opaque(&below) {
                                    break;
                                }
                            }
                            Ok(_) => break,
                            Err(_) => continue,
                        }
                    }
                }
            }
            let mut path = dir.path.clone();
            path.push(name.to_os_string());
            return Some(Found {
                path,
                host,
                meta,
                active,
            });
        }
        None
    }

    /// Resolves `path` (absolute or relative to the root), following symlinks inside the view;
    /// the last component's symlink is followed only with `follow_last`. `Ok(None)`: nothing
    /// there.
    pub fn resolve(&self, path: &Path, follow_last: bool) -> io::Result<Option<Found>> {
        let mut pending: Vec<OsString> = components(path);
        pending.reverse();
        let mut stack: Vec<Found> = vec![self.root()?];
        let mut links = 0;
        while let Some(name) = pending.pop() {
            if name == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let Some(dir) = stack.last() else {
                return Ok(None);
            };
            if !dir.meta.is_dir() {
                return Ok(None);
            }
            let Some(found) = self.child(dir, &name) else {
                return Ok(None);
            };
            let is_last = pending.is_empty();
            if found.meta.file_type().is_symlink() && (!is_last || follow_last) {
                follow_link(&found, &mut links, &mut pending, &mut stack)?;
                continue;
            }
            stack.push(found);
        }
        Ok(stack.pop())
    }

    /// Where `path` is, or would be once created: every symlink met is followed inside the
    /// view, the last component's too, and from the first component that does not exist
    /// (including a dangling link's target) the rest is taken as written (`..` removing the
    /// component before it), as continuity's `RootPath` resolves BuildKit's destinations.
    pub fn resolve_for_create(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let mut pending: Vec<OsString> = components(path);
        pending.reverse();
        let mut stack: Vec<Found> = vec![self.root()?];
        let mut missing: Vec<OsString> = Vec::new();
        let mut links = 0;
        while let Some(name) = pending.pop() {
            if name == ".." {
                if missing.pop().is_none() && stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let found = match stack.last() {
                Some(dir) if missing.is_empty() && dir.meta.is_dir() => self.child(dir, &name),
                _ => None,
            };
            let Some(found) = found else {
                missing.push(name);
                continue;
            };
            if found.meta.file_type().is_symlink() {
                follow_link(&found, &mut links, &mut pending, &mut stack)?;
                continue;
            }
            stack.push(found);
        }
        let mut resolved = stack.pop().map(|found| found.path).unwrap_or_default();
        resolved.extend(missing);
        Ok(resolved)
    }

    /// The entries of the directory `dir`, sorted by name.
    pub fn list(&self, dir: &Found) -> io::Result<Vec<Found>> {
        Ok(self
            .entries(dir)?
            .into_iter()
            .map(|entry| entry.into_found(dir))
            .collect())
    }

    /// The entries of the directory `dir`, sorted by name, without their paths in the view
    /// (a walk keeps those itself; [`Entry::into_found`] makes one).
    ///
    /// Each layer's directory is read once and its entries are stat'ed relative to it (no
    /// path walk per entry); the top layer holding a name decides what it is, as
    /// [`RootView::child`] does for one name.
    pub fn entries(&self, dir: &Found) -> io::Result<Vec<Entry>> {
        let rel: PathBuf = dir.path.iter().collect();
        // (name, entry) while the entry's lower directories are still being merged in.
        let mut listed: Vec<(OsString, Listed)> = Vec::new();
        let mut index: HashMap<OsString, usize> = HashMap::new();
        for (position, &layer) in dir.active.iter().enumerate() {
            let host_dir = self.layers[layer].join(&rel);
            let entries = match fs::read_dir(&host_dir) {
                Ok(entries) => entries,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            let has_lower = position + 1 < dir.active.len();
            let entries: Vec<fs::DirEntry> = entries.collect::<io::Result<_>>()?;
            let metas = stat_all(&entries);
            for (entry, meta) in entries.into_iter().zip(metas) {
                let name = entry.file_name();
                // Gone since the directory was read: as if it had not been there.
                let meta = match meta {
                    Ok(meta) => meta,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(error),
                };
                if position > 0 {
                    if let Some(&at) = index.get(&name) {
                        // A name an upper layer holds: only a directory there takes more.
                        let listed = &mut listed[at].1;
                        if listed.merging {
                            if meta.is_dir() {
                                let host = host_dir.join(&name);
                                listed.merging = !is_opaque(&host);
                                listed.active.push(layer);
                            } else {
                                listed.merging = false;
                            }
                        }
                        continue;
                    }
                }
                let host = host_dir.join(&name);
                let mut active = Vec::new();
                let merging = if meta.is_dir() {
                    active.push(layer);
                    has_lower && !is_opaque(&host)
                } else {
                    false
                };
                if has_lower {
                    index.insert(name.clone(), listed.len());
                }
                listed.push((
                    name,
                    Listed {
                        whiteout: is_whiteout(&meta),
                        host,
                        meta,
                        active,
                        merging,
                    },
                ));
            }
        }
        listed.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
        Ok(listed
            .into_iter()
            .filter(|(_, listed)| !listed.whiteout)
            .map(|(name, listed)| Entry {
                name,
                host: listed.host,
                meta: listed.meta,
                active: listed.active,
            })
            .collect())
    }

    /// Reads a whole (small) file, following symlinks; `None` if it is not there.
    pub fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match self.resolve(path, true)? {
            Some(found) if found.meta.is_file() => fs::read(&found.host).map(Some),
            _ => Ok(None),
        }
    }
}

/// The normal components of `path`: `/`, `.` and empty parts dropped, `..` kept.
pub fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Replaces the symlink `found` by its target in a resolution in progress: the target's
/// components go on `pending` (an absolute target starts again at the view's root), after
/// checking the kernel's limit on links followed for one path.
fn follow_link(
    found: &Found,
    links: &mut usize,
    pending: &mut Vec<OsString>,
    stack: &mut Vec<Found>,
) -> io::Result<()> {
    *links += 1;
    if *links > MAX_SYMLINKS {
        return Err(io::Error::other(format!(
            "too many levels of symbolic links at {}",
            found.display()
        )));
    }
    let target = fs::read_link(&found.host)?;
    let mut target_parts = components(&target);
    target_parts.reverse();
    if target.is_absolute() {
        stack.truncate(1);
    }
    pending.extend(target_parts);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn upper_layers_win_and_whiteouts_hide() {
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper) = (dir.path().join("l"), dir.path().join("u"));
        fs::create_dir_all(lower.join("etc/sub")).unwrap();
        fs::write(lower.join("etc/passwd"), "old").unwrap();
        fs::write(lower.join("etc/gone"), "x").unwrap();
        fs::write(lower.join("etc/sub/a"), "a").unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/passwd"), "new").unwrap();
        symlink("/etc/sub", upper.join("link")).unwrap();
        symlink("../../../../etc/passwd", upper.join("escape")).unwrap();
        let view = RootView::new(vec![lower, upper]);
        assert_eq!(
            view.read(Path::new("/etc/passwd")).unwrap().unwrap(),
            b"new"
        );
        assert_eq!(view.read(Path::new("link/a")).unwrap().unwrap(), b"a");
        // `..` stops at the root: the symlink reads the view's /etc/passwd, not the host's.
        assert_eq!(view.read(Path::new("/escape")).unwrap().unwrap(), b"new");
        let etc = view.resolve(Path::new("/etc"), true).unwrap().unwrap();
        let names: Vec<String> = view
            .list(&etc)
            .unwrap()
            .iter()
            .map(|f| f.display())
            .collect();
        assert_eq!(names, ["/etc/gone", "/etc/passwd", "/etc/sub"]);
        assert!(view.resolve(Path::new("/nope/x"), true).unwrap().is_none());
        let link = view.resolve(Path::new("/link"), false).unwrap().unwrap();
        assert!(link.meta.file_type().is_symlink());
    }

    #[test]
    fn paths_to_create_follow_links_even_dangling_ones() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("real/dir")).unwrap();
        symlink("real/dir", dir.path().join("rel-link")).unwrap();
        symlink("/real/dir", dir.path().join("abs-link")).unwrap();
        symlink("/made-later", dir.path().join("dangling")).unwrap();
        let view = RootView::of_dir(dir.path());
        let resolved = |path: &str| -> String {
            let parts = view.resolve_for_create(Path::new(path)).unwrap();
            let parts: Vec<String> = parts
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            parts.join("/")
        };
        assert_eq!(resolved("/rel-link/work"), "real/dir/work");
        assert_eq!(resolved("/abs-link/a/b"), "real/dir/a/b");
        assert_eq!(resolved("/dangling"), "made-later");
        assert_eq!(resolved("/dangling/x/../y"), "made-later/y");
        assert_eq!(resolved("/real/dir"), "real/dir");
        assert_eq!(resolved("/../new"), "new");
    }

    #[test]
    fn listings_merge_directories_down_the_layers_until_a_file_hides_them() {
        let dir = tempfile::tempdir().unwrap();
        let layers: Vec<PathBuf> = ["l0", "l1", "l2"]
            .iter()
            .map(|l| dir.path().join(l))
            .collect();
        // /d is a directory in l2 and l1, a file in l0: l0's entries never show.
        fs::create_dir_all(layers[0].join("x")).unwrap();
        fs::write(layers[0].join("d"), "file below").unwrap();
        fs::write(layers[0].join("x/bottom"), "b").unwrap();
        fs::create_dir_all(layers[1].join("d")).unwrap();
        fs::write(layers[1].join("d/middle"), "m").unwrap();
        fs::write(layers[1].join("d/shadowed"), "old").unwrap();
        fs::create_dir_all(layers[2].join("d")).unwrap();
        fs::write(layers[2].join("d/top"), "t").unwrap();
        fs::write(layers[2].join("d/shadowed"), "new").unwrap();
        // /x is a file on top of l0's directory: listed as a file.
        fs::write(layers[2].join("x"), "file on top").unwrap();
        let view = RootView::new(layers.clone());
        let names = |path: &str| -> Vec<String> {
            let found = view.resolve(Path::new(path), true).unwrap().unwrap();
            view.list(&found)
                .unwrap()
                .iter()
                .map(|f| f.display())
                .collect()
        };
        assert_eq!(names("/"), ["/d", "/x"]);
        assert_eq!(names("/d"), ["/d/middle", "/d/shadowed", "/d/top"]);
        let root = view.resolve(Path::new("/"), true).unwrap().unwrap();
        let listed = view.list(&root).unwrap();
        assert!(listed[0].meta.is_dir() && listed[1].meta.is_file());
        assert_eq!(
            view.read(Path::new("/d/shadowed")).unwrap().unwrap(),
            b"new"
        );
        // Each listed entry is what resolving its path finds.
        let d = view.resolve(Path::new("/d"), true).unwrap().unwrap();
        for entry in view.list(&d).unwrap() {
            let resolved = view
                .resolve(Path::new(&entry.display()), false)
                .unwrap()
                .unwrap();
            assert_eq!(resolved.host, entry.host);
            assert_eq!(resolved.active, entry.active);
        }
        assert_eq!(d.active, [2, 1]);
    }

    #[test]
    fn large_directories_are_listed_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..(PARALLEL_STAT_MIN + 37) {
            fs::write(dir.path().join(format!("f{n:05}")), n.to_string()).unwrap();
        }
        let view = RootView::of_dir(dir.path());
        let root = view.resolve(Path::new("/"), true).unwrap().unwrap();
        let listed = view.list(&root).unwrap();
        assert_eq!(listed.len(), PARALLEL_STAT_MIN + 37);
        for (n, found) in listed.iter().enumerate() {
            assert_eq!(found.display(), format!("/f{n:05}"));
            assert_eq!(found.meta.len(), n.to_string().len() as u64);
        }
    }

    /// Whiteouts (0/0 character devices) and opaque directories need root to create.
    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_layers() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: creating whiteouts needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper) = (dir.path().join("l"), dir.path().join("u"));
        fs::create_dir_all(lower.join("opaque")).unwrap();
        fs::write(lower.join("opaque/old"), "old").unwrap();
        fs::write(lower.join("deleted"), "x").unwrap();
        fs::create_dir_all(upper.join("opaque")).unwrap();
        fs::write(upper.join("opaque/new"), "new").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("deleted"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0),
            0,
        )
        .unwrap();
        rustix::fs::setxattr(
            upper.join("opaque"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let view = RootView::new(vec![lower, upper]);
        assert!(view.resolve(Path::new("/deleted"), true).unwrap().is_none());
        let opaque = view.resolve(Path::new("/opaque"), true).unwrap().unwrap();
        let names: Vec<String> = view
            .list(&opaque)
            .unwrap()
            .iter()
            .map(|f| f.display())
            .collect();
        assert_eq!(names, ["/opaque/new"]);
        let root = view.resolve(Path::new("/"), true).unwrap().unwrap();
        let names: Vec<String> = view
            .list(&root)
            .unwrap()
            .iter()
            .map(|f| f.display())
            .collect();
        assert_eq!(names, ["/opaque"]);
    }
}
