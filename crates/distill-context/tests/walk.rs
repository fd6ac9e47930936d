//! The walker on real directories: what is listed, in what order, with what metadata.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use distill_context::{
    find_ignore_file, walk, Context, Entry, Error, FileKind, IgnoreFile, Matcher,
};

fn tree(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for file in files {
        let path = dir.path().join(file);
        if let Some(stripped) = file.strip_suffix('/') {
            fs::create_dir_all(dir.path().join(stripped)).expect("create directory");
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create directory");
        }
        fs::write(&path, file.as_bytes()).expect("write file");
    }
    dir
}

fn matcher(text: &str) -> Matcher {
    Matcher::from_ignore_file(&IgnoreFile::parse(text, ".dockerignore")).expect("valid patterns")
}

fn listed(root: &Path, patterns: &str) -> Vec<String> {
    let entries = walk(root, &matcher(patterns)).expect("walk");
    paths(&entries)
}

fn paths(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e.kind {
            FileKind::Dir => format!("{}/", e.path.display()),
            _ => e.path.display().to_string(),
        })
        .collect()
}

#[test]
fn lists_everything_in_path_order_without_patterns() {
    let dir = tree(&["b.txt", "a/z", "a/b/c", "a.txt", "a-b", "empty/"]);
    assert_eq!(
        listed(dir.path(), ""),
        ["a/", "a/b/", "a/b/c", "a/z", "a-b", "a.txt", "b.txt", "empty/"]
    );
}

#[test]
fn excluded_directories_and_their_contents_are_left_out() {
    let dir = tree(&[
        "node_modules/x/index.js",
        ".git/HEAD",
        "src/main.rs",
        "src/debug.log",
        "src/deep/trace.log",
        "important.log",
        "other.log",
        "Dockerfile",
    ]);
    let patterns = "node_modules\n.git\n**/*.log\n!important.log\n";
    assert_eq!(
        listed(dir.path(), patterns),
        [
            "Dockerfile",
            "important.log",
            "src/",
            "src/deep/",
            "src/main.rs"
        ]
    );
}

#[test]
fn exceptions_inside_excluded_directories_bring_their_parents_along() {
    let dir = tree(&[
        "node_modules/keep/a.js",
        "node_modules/keep/sub/b.js",
        "node_modules/drop/c.js",
        "node_modules/top.js",
        "app.js",
    ]);
    assert_eq!(
        listed(dir.path(), "node_modules\n!node_modules/keep/**\n"),
        [
            "app.js",
            "node_modules/",
            "node_modules/keep/",
            "node_modules/keep/a.js",
            "node_modules/keep/sub/",
            "node_modules/keep/sub/b.js",
        ]
    );
}

#[test]
fn excluded_directories_walked_for_an_exception_are_listed_only_if_it_matched() {
    let dir = tree(&[
        "build/out/app",
        "build/logs/important.log",
        "vendor/lib/x.c",
        "src/important.log",
        "src/main.c",
    ]);
    assert_eq!(
        listed(
            dir.path(),
            "build\nvendor\n*/important.log\n!**/important.log\n"
        ),
        [
            "build/",
            "build/logs/",
            "build/logs/important.log",
            "src/",
            "src/important.log",
            "src/main.c",
        ]
    );
}

#[test]
fn walker_follows_buildkit_in_the_parent_results_corner() {
    // See Matcher::is_excluded_with_parent: `!dir` is never recorded for `dir`, so it does not
    // rescue `dir/file` from `*/file`.
    let dir = tree(&["dir/file", "dir/other"]);
    assert_eq!(listed(dir.path(), "*/file\n!dir\n"), ["dir/", "dir/other"]);
}

#[test]
fn symlinks_are_listed_never_followed() {
    let outside = tree(&["secret/key"]);
    let dir = tree(&["real/file"]);
    symlink(outside.path().join("secret"), dir.path().join("escape")).expect("symlink");
    symlink("real", dir.path().join("alias")).expect("symlink");
    symlink("missing", dir.path().join("dangling")).expect("symlink");
    let entries = walk(dir.path(), &Matcher::default()).expect("walk");
    assert_eq!(
        paths(&entries),
        ["alias", "dangling", "escape", "real/", "real/file"]
    );
    let target = |name: &str| {
        entries
            .iter()
            .find(|e| e.path == Path::new(name))
            .and_then(|e| e.link_target.clone())
    };
    assert_eq!(target("alias"), Some(PathBuf::from("real")));
    assert_eq!(target("dangling"), Some(PathBuf::from("missing")));
    assert_eq!(target("escape"), Some(outside.path().join("secret")));
    assert!(entries
        .iter()
        .filter(|e| e.path.starts_with("alias") || e.path.starts_with("escape"))
        .all(|e| e.kind == FileKind::Symlink && e.size == 0));
}

#[test]
fn a_symlinked_directory_is_not_entered_even_when_an_exception_names_its_contents() {
    let outside = tree(&["keep.txt"]);
    let dir = tree(&["data/"]);
    symlink(outside.path(), dir.path().join("data/link")).expect("symlink");
    assert_eq!(
        listed(dir.path(), "data\n!data/link/keep.txt\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        listed(dir.path(), "data\n!data/link\n"),
        ["data/", "data/link"]
    );
}

#[test]
fn entries_carry_their_metadata() {
    let dir = tree(&["bin/tool", "notes.txt"]);
    let tool = dir.path().join("bin/tool");
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o4755)).expect("chmod");
    fs::hard_link(
        dir.path().join("notes.txt"),
        dir.path().join("notes-link.txt"),
    )
    .expect("hard link");
    let socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).expect("bind");
    let entries = walk(dir.path(), &Matcher::default()).expect("walk");
    let get = |name: &str| {
        entries
            .iter()
            .find(|e| e.path == Path::new(name))
            .unwrap_or_else(|| panic!("{name} listed"))
    };

    let meta = fs::symlink_metadata(&tool).expect("stat");
    let entry = get("bin/tool");
    assert_eq!(entry.kind, FileKind::File);
    assert_eq!(entry.mode, 0o4755);
    assert_eq!(entry.size, "bin/tool".len() as u64);
    assert_eq!((entry.uid, entry.gid), (meta.uid(), meta.gid()));
    assert_eq!(entry.mtime.sec, meta.mtime());
    assert_eq!(i64::from(entry.mtime.nsec), meta.mtime_nsec());
    assert_eq!((entry.dev, entry.ino), (meta.dev(), meta.ino()));

    let dir_entry = get("bin");
    assert_eq!(dir_entry.kind, FileKind::Dir);
    assert_eq!(dir_entry.size, 0);

    // `notes-link.txt` sorts first (`-` before `.`), so it is the one the other links to.
    let (a, b) = (get("notes.txt"), get("notes-link.txt"));
    assert_eq!((a.dev, a.ino, a.nlink), (b.dev, b.ino, 2));
    assert_eq!(a.hardlink_of, Some(PathBuf::from("notes-link.txt")));
    assert_eq!(b.hardlink_of, None);
    assert_eq!(get("bin/tool").hardlink_of, None);

    assert_eq!(get("sock").kind, FileKind::Socket);
    drop(socket);
}

#[test]
fn an_empty_dockerfile_ignore_file_beside_the_dockerfile_wins() {
    let dir = tree(&["Dockerfile", "a.txt", "b.txt", "sub/app.Dockerfile"]);
    fs::write(dir.path().join(".dockerignore"), "a.txt\n").expect("write");
    let dockerfile = dir.path().join("Dockerfile");

    // Only the context's file.
    assert_eq!(
        find_ignore_file(dir.path(), &dockerfile),
        Some(dir.path().join(".dockerignore"))
    );
    let context = Context::open(dir.path(), &dockerfile).expect("context");
    assert!(!paths(&context.walk().expect("walk")).contains(&"a.txt".to_string()));

    // `Dockerfile.dockerignore` takes over, even empty.
    fs::write(dir.path().join("Dockerfile.dockerignore"), "").expect("write");
    let context = Context::open(dir.path(), &dockerfile).expect("context");
    assert_eq!(
        context.ignore_file(),
        Some(dir.path().join("Dockerfile.dockerignore").as_path())
    );
    assert!(paths(&context.walk().expect("walk")).contains(&"a.txt".to_string()));

    // A Dockerfile elsewhere with its own name looks beside itself.
    let other = dir.path().join("sub/app.Dockerfile");
    fs::write(
        dir.path().join("sub/app.Dockerfile.dockerignore"),
        "b.txt\nsub\n",
    )
    .expect("write");
    let context = Context::open(dir.path(), &other).expect("context");
    assert_eq!(
        paths(&context.walk().expect("walk")),
        [
            ".dockerignore",
            "Dockerfile",
            "Dockerfile.dockerignore",
            "a.txt"
        ]
    );

    // A directory named like an ignore file does not count.
    fs::remove_file(dir.path().join("Dockerfile.dockerignore")).expect("remove");
    fs::create_dir(dir.path().join("Dockerfile.dockerignore")).expect("mkdir");
    assert_eq!(
        find_ignore_file(dir.path(), &dockerfile),
        Some(dir.path().join(".dockerignore"))
    );

    let bare = tree(&["Dockerfile"]);
    assert_eq!(
        find_ignore_file(bare.path(), &bare.path().join("Dockerfile")),
        None
    );
}

#[test]
fn a_bad_pattern_in_the_ignore_file_fails_opening_the_context() {
    let dir = tree(&["Dockerfile"]);
    fs::write(dir.path().join(".dockerignore"), "ok\n\n  [oops\n").expect("write");
    let err = Context::open(dir.path(), &dir.path().join("Dockerfile")).expect_err("bad pattern");
    match &err {
        Error::Pattern(pattern) => {
            assert!(pattern.file.ends_with(".dockerignore"), "{}", pattern.file);
            assert_eq!((pattern.line, pattern.column), (3, 3));
        }
        other => panic!("expected a pattern error, got {other}"),
    }
}

#[test]
fn an_ignore_file_that_is_not_utf8_is_an_error_naming_its_line() {
    let dir = tree(&[]);
    let path = dir.path().join(".dockerignore");
    fs::write(&path, b"ok\nbad\xff\n").expect("write");
    match IgnoreFile::read(&path) {
        Err(Error::NotUtf8 { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected NotUtf8, got {other:?}"),
    }
}

#[test]
fn a_missing_context_directory_is_an_error_naming_it() {
    let dir = tree(&[]);
    let missing = dir.path().join("nope");
    let err = walk(&missing, &Matcher::default()).expect_err("missing");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn names_that_are_not_utf8_are_listed_and_matched() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tree(&[]);
    fs::write(dir.path().join(OsStr::from_bytes(b"a\xff.tmp")), b"").expect("write");
    fs::write(dir.path().join(OsStr::from_bytes(b"b\xff.txt")), b"").expect("write");
    let entries = walk(dir.path(), &matcher("*.tmp")).expect("walk");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].path.as_os_str().as_bytes(), b"b\xff.txt");
}

#[test]
fn extended_attributes_are_read_without_following_symlinks() {
    let dir = tree(&["file", "plain"]);
    let file = dir.path().join("file");
    match rustix::fs::setxattr(&file, "user.b", b"2", rustix::fs::XattrFlags::empty()) {
        Ok(()) => {}
        Err(rustix::io::Errno::NOTSUP) => {
            eprintln!("this file system has no user extended attributes; nothing to check");
            return;
        }
        Err(err) => panic!("setxattr: {err}"),
    }
    rustix::fs::setxattr(&file, "user.a", b"one", rustix::fs::XattrFlags::empty())
        .expect("setxattr");
    // Larger than the walker's first buffers, for both the names and the value.
    let long_name = format!("user.{}", "n".repeat(250));
    let long_value = vec![b'v'; 3000];
    rustix::fs::setxattr(
        &file,
        long_name.as_str(),
        &long_value,
        rustix::fs::XattrFlags::empty(),
    )
    .expect("setxattr");
    symlink("file", dir.path().join("link")).expect("symlink");
    let entries = walk(dir.path(), &Matcher::default()).expect("walk");
    let xattrs = |name: &str| {
        entries
            .iter()
            .find(|e| e.path == Path::new(name))
            .map(|e| {
                e.xattrs
                    .iter()
                    .map(|x| {
                        (
                            String::from_utf8_lossy(&x.name).into_owned(),
                            x.value.clone(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|| panic!("{name} listed"))
    };
    assert_eq!(
        xattrs("file"),
        [
            ("user.a".to_string(), b"one".to_vec()),
            ("user.b".to_string(), b"2".to_vec()),
            (long_name.clone(), long_value.clone()),
        ]
    );
    assert_eq!(xattrs("link"), []);
    assert_eq!(xattrs("plain"), []);
}
