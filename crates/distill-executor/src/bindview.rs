//! What `RUN --mount=type=bind` (without `from=`) shows of the build context: the context
//! after `.dockerignore`, as BuildKit's context source holds it, never an excluded file.
//!
//! Without ignore patterns the context directory itself is bound. With them, the part of the
//! context the mount shows is rebuilt in a scratch directory: directories made, files hard
//! linked (copied when the scratch directory is on another file system), symlinks made again.
//! Nothing outside the context is read: the walk never follows a symlink.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use distill_context::{FileKind, Matcher};

/// The host directory or file to bind for `source` (the context path the mount names,
/// symlinks resolved, as components) of the context at `root`: `source` itself when nothing
/// is ignored, else a copy of its visible part made in `scratch` (which must not exist).
pub fn visible_context(
    root: &Path,
    ignore: &Matcher,
    source: &[OsString],
    source_host: &Path,
    scratch: &Path,
) -> io::Result<PathBuf> {
    if ignore.is_empty() {
        return Ok(source_host.to_path_buf());
    }
    let prefix: Vec<u8> = source
        .iter()
        .map(|part| part.as_bytes())
        .collect::<Vec<_>>()
        .join(&b'/');
    let entries = distill_context::walk(root, ignore).map_err(io::Error::other)?;
    if !prefix.is_empty() && !source_host.is_dir() {
        // A single file: bound as it is, unless the patterns exclude it.
        return if entries
            .iter()
            .any(|e| e.path.as_os_str().as_bytes() == prefix)
        {
            Ok(source_host.to_path_buf())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{}: excluded by .dockerignore",
                    String::from_utf8_lossy(&prefix)
                ),
            ))
        };
    }
    fs::create_dir_all(scratch)?;
    // Directory modes are set last: a read-only directory would refuse its own entries.
    let mut directories: Vec<(PathBuf, u32)> = Vec::new();
    for entry in &entries {
        let path = entry.path.as_os_str().as_bytes();
        let below = if prefix.is_empty() {
            path
        } else if let Some(rest) = path.strip_prefix(prefix.as_slice()) {
            // `rest` is empty for the source itself, and starts with another name for a
            // sibling whose name begins with the source's (`sub` and `subway`).
            match rest.strip_prefix(b"/") {
                Some(rest) => rest,
                None => continue,
            }
        } else {
            continue;
        };
        let target = scratch.join(std::ffi::OsStr::from_bytes(below));
        let host = root.join(&entry.path);
        match entry.kind {
            FileKind::Dir => {
                fs::create_dir_all(&target)?;
                directories.push((target, entry.mode));
            }
            FileKind::File if fs::hard_link(&host, &target).is_err() => {
                fs::copy(&host, &target)?;
            }
            FileKind::File => {}
            FileKind::Symlink => {
                if let Some(link) = &entry.link_target {
                    std::os::unix::fs::symlink(link, &target)?;
                }
            }
            // BuildKit's context transfer carries no fifos, sockets or devices a RUN could use.
            _ => {}
        }
    }
    for (dir, mode) in directories.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
    }
    Ok(scratch.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use distill_context::IgnoreFile;

    fn matcher(text: &str) -> Matcher {
        Matcher::from_ignore_file(&IgnoreFile::parse(text, ".dockerignore")).unwrap()
    }

    #[test]
    fn excluded_files_are_not_in_the_view() {
        let context = tempfile::tempdir().unwrap();
        let root = context.path();
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::create_dir_all(root.join("subway")).unwrap();
        fs::write(root.join("subway/w.txt"), "w").unwrap();
        for (path, text) in [
            ("keep.txt", "k"),
            ("secret.txt", "s"),
            ("sub/a.txt", "a"),
            ("sub/x.tmp", "x"),
            ("sub/deeper/d.txt", "d"),
        ] {
            fs::write(root.join(path), text).unwrap();
        }
        let ignore = matcher("secret.txt\n**/*.tmp\n");
        let scratch = tempfile::tempdir().unwrap();
        let whole =
            visible_context(root, &ignore, &[], root, &scratch.path().join("whole")).unwrap();
        assert!(whole.join("keep.txt").is_file());
        assert!(whole.join("sub/deeper/d.txt").is_file());
        assert!(!whole.join("secret.txt").exists());
        assert!(!whole.join("sub/x.tmp").exists());
        let sub = visible_context(
            root,
            &ignore,
            &[OsString::from("sub")],
            &root.join("sub"),
            &scratch.path().join("sub"),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(sub.join("a.txt")).unwrap(), "a");
        assert!(!sub.join("x.tmp").exists());
        assert!(!sub.join("w.txt").exists() && !sub.join("subway").exists());
        let refused = visible_context(
            root,
            &ignore,
            &[OsString::from("secret.txt")],
            &root.join("secret.txt"),
            &scratch.path().join("file"),
        );
        assert!(refused.is_err());
        // Without patterns the context is bound as it is.
        let empty = Matcher::default();
        assert_eq!(
            visible_context(root, &empty, &[], root, &scratch.path().join("none")).unwrap(),
            root
        );
    }
}
