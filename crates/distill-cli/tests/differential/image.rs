//! Reads an image out of a docker-archive (`docker save` / `distill save`) into a form two
//! builders' results can be compared in: the config as JSON, and each layer as a map from path
//! to what a file system would hold there (type, mode, owner, content hash, link target, xattrs,
//! hardlink group), plus the flattened file system after applying the layers in order.
//!
//! It reads tar with the `tar` crate, never with distill's own layer reader: the judge must not
//! share the code it judges. It never writes anywhere and never trusts a path to stay inside
//! anything: paths are only map keys here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// What one path holds in a layer or in a flattened file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File {
        sha256: String,
        size: u64,
    },
    Dir,
    Symlink(String),
    CharDevice(u32, u32),
    BlockDevice(u32, u32),
    Fifo,
    /// `.wh.NAME`: NAME from lower layers is deleted (key: the path of NAME).
    Whiteout,
    /// `.wh..wh..opq` in a directory: that directory's lower contents are hidden (key: the
    /// marker's own path, `DIR/.wh..wh..opq`, so that the directory's entry in the same layer
    /// keeps its key).
    Opaque,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (mode & 0o7777).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Every path of this node's hardlink group, sorted (empty when the file has one name).
    pub hardlinks: Vec<String>,
    /// Which layer and group the hardlinks came from, to regroup after flattening.
    group: Option<(usize, String)>,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::File { sha256, size } => write!(f, "file size={size} sha256:{:.12}", sha256)?,
            Kind::Dir => write!(f, "dir")?,
            Kind::Symlink(target) => write!(f, "symlink -> {target}")?,
            Kind::CharDevice(major, minor) => write!(f, "char {major},{minor}")?,
            Kind::BlockDevice(major, minor) => write!(f, "block {major},{minor}")?,
            Kind::Fifo => write!(f, "fifo")?,
            Kind::Whiteout => return write!(f, "whiteout"),
            Kind::Opaque => return write!(f, "opaque dir marker"),
        }
        write!(f, " mode={:04o} owner={}:{}", self.mode, self.uid, self.gid)?;
        for (name, value) in &self.xattrs {
            write!(f, " xattr {name}={}", hex(value))?;
        }
        if !self.hardlinks.is_empty() {
            write!(f, " hardlinks=[{}]", self.hardlinks.join(", "))?;
        }
        Ok(())
    }
}

/// One layer: path (absolute, no trailing slash; `/` is the root) → node.
pub type Tree = BTreeMap<String, Node>;

/// An image read from a docker-archive.
pub struct Image {
    pub config: serde_json::Value,
    pub layers: Vec<Tree>,
}

impl Image {
    /// The file system a container of this image starts with.
    pub fn flatten(&self) -> Tree {
        let mut state = Tree::new();
        for layer in &self.layers {
            apply(&mut state, layer);
        }
        regroup(&mut state);
        state
    }
}

/// The `rootfs.diff_ids` of an image config, in order.
pub fn diff_ids(config: &serde_json::Value) -> Vec<String> {
    config["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .map(|id| id.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the only image of a docker-archive (`manifest.json` + config + layer tars, plain,
/// gzip or zstd, in either Docker's legacy `<id>/layer.tar` form or the OCI `blobs/` form).
pub fn read_archive(path: &Path) -> Result<Image, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut members = BTreeMap::new();
    // `docker save` writes a layer that an image has twice (two steps with the same diff) once,
    // and the second `<id>/layer.tar` as a symlink to `../<first id>/layer.tar`.
    let mut links = BTreeMap::new();
    let mut archive = tar::Archive::new(file);
    let entries = archive
        .entries()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
        let name = entry
            .path()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if entry.header().entry_type().is_symlink() {
            if let Ok(Some(target)) = entry.link_name() {
                let mut resolved: Vec<String> = name.split('/').map(String::from).collect();
                resolved.pop();
                for part in target.to_string_lossy().split('/') {
                    match part {
                        "" | "." => {}
                        ".." => {
                            resolved.pop();
                        }
                        part => resolved.push(part.to_string()),
                    }
                }
                links.insert(name, resolved.join("/"));
            }
            continue;
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {name}: {e}", path.display()))?;
        members.insert(name, bytes);
    }
    let member = |name: &str| {
        let target = links.get(name).map_or(name, String::as_str);
        members
            .get(target)
            .ok_or_else(|| format!("{}: no member {name}", path.display()))
    };
    let manifest: serde_json::Value = serde_json::from_slice(member("manifest.json")?)
        .map_err(|e| format!("{}: manifest.json: {e}", path.display()))?;
    let entry = match manifest.as_array().map(Vec::as_slice) {
        Some([entry]) => entry,
        _ => {
            return Err(format!(
                "{}: expected one image in manifest.json",
                path.display()
            ))
        }
    };
    let config_name = entry["Config"]
        .as_str()
        .ok_or_else(|| format!("{}: manifest.json has no Config", path.display()))?;
    let config = serde_json::from_slice(member(config_name)?)
        .map_err(|e| format!("{}: {config_name}: {e}", path.display()))?;
    let mut layers = Vec::new();
    for (index, name) in entry["Layers"]
        .as_array()
        .ok_or_else(|| format!("{}: manifest.json has no Layers", path.display()))?
        .iter()
        .enumerate()
    {
        let name = name
            .as_str()
            .ok_or_else(|| format!("{}: a layer name is not a string", path.display()))?;
        let tree = read_layer(index, member(name)?)
            .map_err(|e| format!("{}: layer {index} ({name}): {e}", path.display()))?;
        layers.push(tree);
    }
    Ok(Image { config, layers })
}

/// Reads one layer tar (plain, gzip or zstd) into a tree; hardlinks become groups.
pub fn read_layer(index: usize, bytes: &[u8]) -> Result<Tree, String> {
    let plain: Box<dyn Read + '_> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(bytes).map_err(|e| e.to_string())?)
    } else {
        Box::new(bytes)
    };
    let mut tree = Tree::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut archive = tar::Archive::new(plain);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let raw = entry.path().map_err(|e| e.to_string())?;
        let path = clean(&raw.to_string_lossy());
        let header = entry.header();
        let mode = header.mode().map_err(|e| e.to_string())? & 0o7777;
        let uid = header.uid().map_err(|e| e.to_string())?;
        let gid = header.gid().map_err(|e| e.to_string())?;
        let mtime = header.mtime().map_err(|e| e.to_string())?;
        let entry_type = header.entry_type();
        let device = || -> Result<(u32, u32), String> {
            let major = header.device_major().map_err(|e| e.to_string())?;
            let minor = header.device_minor().map_err(|e| e.to_string())?;
            Ok((major.unwrap_or(0), minor.unwrap_or(0)))
        };
        let entry_path = path.clone();
        let link_name = || -> Result<String, String> {
            entry
                .link_name()
                .map_err(|e| e.to_string())?
                .map(|l| l.to_string_lossy().into_owned())
                .ok_or_else(|| format!("{entry_path}: link without a target"))
        };
        let (name_dir, base) = split(&path);
        let (name_dir, base) = (name_dir.to_string(), base.to_string());
        let (path, kind) = if base == ".wh..wh..opq" {
            (path, Kind::Opaque)
        } else if let Some(hidden) = base.strip_prefix(".wh.") {
            (join(&name_dir, hidden), Kind::Whiteout)
        } else if entry_type.is_hard_link() {
            links.push((path, clean(&link_name()?)));
            continue;
        } else if entry_type.is_symlink() {
            (path, Kind::Symlink(link_name()?))
        } else if entry_type.is_dir() {
            (path, Kind::Dir)
        } else if entry_type.is_character_special() {
            let (major, minor) = device()?;
            (path, Kind::CharDevice(major, minor))
        } else if entry_type.is_block_special() {
            let (major, minor) = device()?;
            (path, Kind::BlockDevice(major, minor))
        } else if entry_type.is_fifo() {
            (path, Kind::Fifo)
        } else if entry_type.is_file() || entry_type.is_contiguous() {
            (
                path,
                Kind::File {
                    sha256: String::new(),
                    size: 0,
                },
            )
        } else {
            return Err(format!("{path}: unexpected tar entry type {entry_type:?}"));
        };
        let mut xattrs = BTreeMap::new();
        if let Some(extensions) = entry.pax_extensions().map_err(|e| e.to_string())? {
            for extension in extensions {
                let extension = extension.map_err(|e| e.to_string())?;
                let key = extension.key().map_err(|e| e.to_string())?;
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(name.to_string(), extension.value_bytes().to_vec());
                }
            }
        }
        let kind = match kind {
            Kind::File { .. } => {
                let mut hasher = Sha256::new();
                let size = std::io::copy(&mut entry, &mut hasher).map_err(|e| e.to_string())?;
                Kind::File {
                    sha256: hex(&hasher.finalize()),
                    size,
                }
            }
            other => other,
        };
        let node = Node {
            kind,
            mode,
            uid,
            gid,
            mtime,
            xattrs,
            hardlinks: Vec::new(),
            group: None,
        };
        tree.insert(path, node);
    }
    // A hardlink shares its target's inode: same content and metadata, one group.
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, target) in &links {
        let mut root = target.clone();
        // A link may name another link's path: follow to the entry that holds the data.
        for _ in 0..links.len() {
            match links.iter().find(|(p, _)| *p == root) {
                Some((_, next)) => root = next.clone(),
                None => break,
            }
        }
        if !tree.contains_key(&root) {
            return Err(format!(
                "{path}: hardlink to {target}, which is not in the layer"
            ));
        }
        groups
            .entry(root.clone())
            .or_insert_with(|| BTreeSet::from([root.clone()]))
            .insert(path.clone());
    }
    for (root, members) in groups {
        let mut node = tree[&root].clone();
        node.hardlinks = members.iter().cloned().collect();
        node.group = Some((index, root));
        for member in members {
            tree.insert(member, node.clone());
        }
    }
    Ok(tree)
}

/// Applies one layer on a flattened state as an overlay extractor does.
pub fn apply(state: &mut Tree, layer: &Tree) {
    for (path, node) in layer {
        match node.kind {
            Kind::Opaque => remove_below(state, opaque_dir(path)),
            Kind::Whiteout => {
                state.remove(path);
                remove_below(state, path);
            }
            _ => {}
        }
    }
    for (path, node) in layer {
        if matches!(node.kind, Kind::Opaque | Kind::Whiteout) {
            continue;
        }
        if node.kind != Kind::Dir {
            remove_below(state, path);
        }
        state.insert(path.clone(), node.clone());
    }
}

/// Recomputes hardlink groups among the paths that survived flattening.
fn regroup(state: &mut Tree) {
    let mut groups: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
    for (path, node) in state.iter() {
        if let Some(group) = &node.group {
            groups.entry(group.clone()).or_default().push(path.clone());
        }
    }
    for members in groups.into_values() {
        let names = if members.len() > 1 {
            members.clone()
        } else {
            Vec::new()
        };
        for member in members {
            if let Some(node) = state.get_mut(&member) {
                node.hardlinks = names.clone();
            }
        }
    }
}

fn remove_below(state: &mut Tree, dir: &str) {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = state
        .range(prefix.clone()..)
        .take_while(|(path, _)| path.starts_with(&prefix))
        .map(|(path, _)| path.clone())
        .collect();
    for path in doomed {
        state.remove(&path);
    }
}

/// `./a/b/`, `a/b` and `/a/b` all become `/a/b`; `.` and `./` become `/`.
pub fn clean(raw: &str) -> String {
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// The directory an opaque marker's key (`DIR/.wh..wh..opq`) makes opaque.
pub fn opaque_dir(marker: &str) -> &str {
    split(marker).0
}

/// Whether `state` has anything below `dir`: what an opaque marker on `dir` would hide.
pub fn has_below(state: &Tree, dir: &str) -> bool {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    state
        .range(prefix.clone()..)
        .next()
        .is_some_and(|(path, _)| path.starts_with(&prefix))
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(at) => (&path[..at], &path[at + 1..]),
        None => ("/", path),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
