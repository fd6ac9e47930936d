//! Compares two images (Docker BuildKit's and distill's) and lists their differences in words.
//!
//! What is compared: the runtime config (Env, Cmd, Entrypoint, User, WorkingDir, ExposedPorts,
//! Volumes, Labels, StopSignal, Healthcheck, OnBuild, Shell), author, os and architecture; the
//! history (created_by, empty_layer); the number of layers and the base layers' diff IDs; and every
//! entry of every layer and of the flattened file system: path, type, mode with the
//! setuid/setgid/sticky bits, uid/gid, content hash, symlink target, xattrs, hardlink groups, and
//! the mtime of files that come from the build context or the base image.
//!
//! What is deliberately NOT compared, each with its reason, is listed in `IGNORED` below and in
//! the normalising functions: a difference there says nothing about what a container sees.

use std::collections::BTreeSet;

use serde_json::Value;

use super::image::{apply, has_below, opaque_dir, Image, Kind, Node, Tree};

/// The differences that are expected and not reported, with why.
#[allow(dead_code)] // documentation the test output can point at
pub const IGNORED: &[(&str, &str)] = &[
    (
        "created, history[].created",
        "wall-clock times of the build, different on every build",
    ),
    (
        "history[].comment, comment",
        "free text: Docker copies the base's 'Imported from -' \
      into the image comment only in some versions; BuildKit's 'buildkit.dockerfile.v0' is a \
      label for humans",
    ),
    (
        "container_config, container, docker_version",
        "the legacy builder's fields, which \
      BuildKit fills from the engine's own state; no runtime reads them",
    ),
    (
        "config.Hostname/Domainname/Attach*/Tty/OpenStdin/StdinOnce/Image",
        "legacy zero-valued \
      fields of Docker's container config; absent and zero mean the same",
    ),
    (
        "config.ArgsEscaped",
        "only meaningful on Windows; BuildKit v0.8 never writes it and newer \
      BuildKit writes it for shell-form CMD/ENTRYPOINT",
    ),
    (
        "rootfs.diff_ids beyond the base",
        "digests of the uncompressed layer tars: both builders \
      write the same files, but tar header layout (PAX records, ordering of equal names, \
      directory entries' mtimes) is each writer's own; the entries are compared instead",
    ),
    (
        "mtime of directories and of files made by RUN",
        "set by the clock while the build runs",
    ),
    (
        "metadata of whiteout files",
        "extractors delete the path and never create the .wh. file",
    ),
    (
        "opaque markers that hide nothing",
        "a directory replacing a file or a symlink has nothing below it in the lower layers; \
      Docker 20.10's differ marks it opaque anyway, and the files are the same either way",
    ),
];

/// How many differences are printed per comparison: the first ones are the useful ones.
const SHOWN: usize = 25;

pub struct Differences {
    pub lines: Vec<String>,
}

impl Differences {
    fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The differences for a test failure message, the first SHOWN of them.
    pub fn report(&self) -> String {
        let mut text = String::new();
        for line in self.lines.iter().take(SHOWN) {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
        if self.lines.len() > SHOWN {
            text.push_str(&format!("  ... and {} more\n", self.lines.len() - SHOWN));
        }
        text
    }
}

/// How to compare one pair of images.
#[derive(Clone, Copy)]
pub struct Rules {
    /// How many layers come from the shared base: their diff IDs must be equal.
    pub base_layers: usize,
    /// Files whose mtime is before this (seconds) come from the build context or the base
    /// image, whose times both builders must keep; later times are the build's clock.
    pub kept_before: u64,
    /// Docker's BuildKit is the one built into Docker 20.10 (v0.8): its history texts for ARG,
    /// EXPOSE, HEALTHCHECK and COPY flags differ from current BuildKit's, which distill follows
    /// (see `normalise_created_by`). Off for newer engines, so those texts are then compared as
    /// they are.
    pub legacy_buildkit: bool,
}

pub fn compare(docker: &Image, distill: &Image, rules: Rules) -> Differences {
    let mut out = Differences { lines: Vec::new() };
    let context_epoch_limit = rules.kept_before;
    compare_config(&docker.config, &distill.config, rules, &mut out);
    if docker.layers.len() != distill.layers.len() {
        out.push(format!(
            "layers: docker has {}, distill has {}",
            docker.layers.len(),
            distill.layers.len()
        ));
    } else {
        let (mut below_docker, mut below_distill) = (Tree::new(), Tree::new());
        for (index, (ours, theirs)) in docker.layers.iter().zip(&distill.layers).enumerate() {
            compare_trees(
                &format!("layer {index}"),
                &without_idle_opaque_markers(ours, &below_docker),
                &without_idle_opaque_markers(theirs, &below_distill),
                context_epoch_limit,
                &mut out,
            );
            apply(&mut below_docker, ours);
            apply(&mut below_distill, theirs);
        }
    }
    compare_trees(
        "final fs",
        &docker.flatten(),
        &distill.flatten(),
        context_epoch_limit,
        &mut out,
    );
    out
}

/// `layer` without the opaque markers that hide nothing in `below` (the file system of the
/// layers under it): a directory that replaces a file or a symlink has nothing under it to
/// hide, and whether a differ marks it opaque (Docker 20.10's does) changes no file.
fn without_idle_opaque_markers(layer: &Tree, below: &Tree) -> Tree {
    layer
        .iter()
        .filter(|(path, node)| node.kind != Kind::Opaque || has_below(below, opaque_dir(path)))
        .map(|(path, node)| (path.clone(), node.clone()))
        .collect()
}

/// The runtime config fields a container's behaviour depends on.
const RUNTIME_FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "User",
    "WorkingDir",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
];

fn compare_config(docker: &Value, distill: &Value, rules: Rules, out: &mut Differences) {
    for field in ["architecture", "os", "variant", "author"] {
        let (a, b) = (
            absent_if_empty(&docker[field]),
            absent_if_empty(&distill[field]),
        );
        if a != b {
            out.push(format!("{field}: docker {a}, distill {b}"));
        }
    }
    for field in RUNTIME_FIELDS {
        let (mut a, mut b) = (
            absent_if_empty(&docker["config"][field]),
            absent_if_empty(&distill["config"][field]),
        );
        if *field == "Healthcheck" {
            a = without_zero_durations(a);
            b = without_zero_durations(b);
        }
        if a != b {
            out.push(format!("config.{field}: docker {a}, distill {b}"));
        }
    }
    let empty = Vec::new();
    let history = |config: &Value| -> Vec<(String, bool)> {
        config["history"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|h| {
                (
                    normalise_created_by(
                        h["created_by"].as_str().unwrap_or(""),
                        rules.legacy_buildkit,
                    ),
                    h["empty_layer"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    let (a, b) = (history(docker), history(distill));
    if a != b {
        for index in 0..a.len().max(b.len()) {
            let (x, y) = (a.get(index), b.get(index));
            if x != y {
                out.push(format!(
                    "history[{index}]: docker {}, distill {}",
                    show_history(x),
                    show_history(y)
                ));
            }
        }
    }
    let diff_ids = |config: &Value| -> Vec<String> {
        config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|d| d.as_str().unwrap_or("").to_string())
            .collect()
    };
    let (a, b) = (diff_ids(docker), diff_ids(distill));
    for index in 0..rules.base_layers {
        if a.get(index) != b.get(index) {
            out.push(format!(
                "rootfs.diff_ids[{index}] (base layer): docker {:?}, distill {:?}",
                a.get(index),
                b.get(index)
            ));
        }
    }
}

fn show_history(entry: Option<&(String, bool)>) -> String {
    match entry {
        None => "(none)".to_string(),
        Some((created_by, empty)) => {
            format!(
                "{created_by:?}{}",
                if *empty { " (empty layer)" } else { "" }
            )
        }
    }
}

/// Go's `omitempty` drops empty strings, lists and maps; Docker's and distill's JSON writers
/// differ on which fields they spell out empty, and every runtime reads empty as unset.
fn absent_if_empty(value: &Value) -> Value {
    match value {
        Value::String(s) if s.is_empty() => Value::Null,
        Value::Array(a) if a.is_empty() => Value::Null,
        Value::Object(o) if o.is_empty() => Value::Null,
        other => other.clone(),
    }
}

/// A health check's zero durations mean "the default"; newer engines also write the
/// StartInterval field (zero unless set), which Docker 20.10 does not know.
fn without_zero_durations(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            map.retain(|_, v| v.as_i64() != Some(0));
            Value::Object(map)
        }
        other => other,
    }
}

/// History texts that differ only by engine version: with `legacy` (Docker 20.10's BuildKit
/// v0.8), both sides are reduced to what the two spellings share.
///
/// - COPY/ADD: v0.8 writes `COPY src dest`; newer BuildKit names the `--chown=`/`--chmod=` flags
///   too. Both sides lose the flags (the flags' effects are compared in the files).
/// - ARG: v0.8 records the Dockerfile's default text (`ARG A=default`); newer BuildKit records
///   the effective value (a `--build-arg` override or the expanded default). Both sides keep
///   only the names (the values' effects are compared through Env, labels and files RUN wrote).
/// - EXPOSE: v0.8 prints Go's map of the ports (`EXPOSE map[80/tcp:{}]`); newer BuildKit the
///   instruction's words (`EXPOSE 80`). Both sides become the sorted `port/proto` list.
/// - HEALTHCHECK: v0.8 prints Go's `%v` of a pointer (`&{[...] "5m0s" ...}`); newer BuildKit
///   `%+v` of the struct (`{Test:[...] Interval:5m0s ...}`). Both sides keep the keyword only:
///   config.Healthcheck is compared field by field.
pub fn normalise_created_by(text: &str, legacy: bool) -> String {
    if !legacy {
        return text.to_string();
    }
    if text.starts_with("COPY ") || text.starts_with("ADD ") {
        return text
            .split(' ')
            .filter(|word| !(word.starts_with("--chown=") || word.starts_with("--chmod=")))
            .collect::<Vec<_>>()
            .join(" ");
    }
    if let Some(args) = text.strip_prefix("ARG ") {
        let names: Vec<&str> = args
            .split(' ')
            .map(|word| word.split_once('=').map_or(word, |(name, _)| name))
            .collect();
        return format!("ARG {}", names.join(" "));
    }
    if let Some(ports) = text.strip_prefix("EXPOSE ") {
        return format!("EXPOSE {}", exposed_ports(ports).join(" "));
    }
    if text.starts_with("HEALTHCHECK ") {
        return "HEALTHCHECK".to_string();
    }
    text.to_string()
}

/// The sorted `port/proto` set of either EXPOSE spelling; ranges are expanded, protocols are
/// lower case.
fn exposed_ports(words: &str) -> Vec<String> {
    let mut ports = BTreeSet::new();
    let words = words
        .trim()
        .trim_start_matches("map[")
        .trim_end_matches(']');
    for word in words.split_whitespace() {
        let word = word.trim_end_matches(":{}");
        let (range, proto) = word.split_once('/').unwrap_or((word, "tcp"));
        // The map v0.8 prints has the protocol in lower case; the words keep what was written.
        let proto = proto.to_ascii_lowercase();
        let bounds = range
            .split_once('-')
            .and_then(|(low, high)| Some((low.parse::<u32>().ok()?, high.parse::<u32>().ok()?)));
        match bounds {
            Some((low, high)) if high >= low && high - low < 10_000 => {
                for port in low..=high {
                    ports.insert(format!("{port}/{proto}"));
                }
            }
            _ => {
                ports.insert(format!("{range}/{proto}"));
            }
        }
    }
    ports.into_iter().collect()
}

fn compare_trees(
    what: &str,
    docker: &Tree,
    distill: &Tree,
    epoch_limit: u64,
    out: &mut Differences,
) {
    let paths: BTreeSet<&String> = docker.keys().chain(distill.keys()).collect();
    for path in paths {
        match (docker.get(path), distill.get(path)) {
            (Some(a), None) => out.push(format!("{what}: {path}: only docker has it: {a}")),
            (None, Some(b)) => out.push(format!("{what}: {path}: only distill has it: {b}")),
            (Some(a), Some(b)) => {
                if let Some(why) = node_difference(a, b, epoch_limit) {
                    out.push(format!(
                        "{what}: {path}: {why}\n      docker:  {a}\n      distill: {b}"
                    ));
                }
            }
            (None, None) => {}
        }
    }
}

fn node_difference(a: &Node, b: &Node, epoch_limit: u64) -> Option<&'static str> {
    if a.kind != b.kind {
        return Some("differs");
    }
    if matches!(a.kind, Kind::Whiteout | Kind::Opaque) {
        return None;
    }
    if a.mode != b.mode || a.uid != b.uid || a.gid != b.gid {
        return Some("metadata differs");
    }
    if a.xattrs != b.xattrs {
        return Some("xattrs differ");
    }
    if a.hardlinks != b.hardlinks {
        return Some("hardlink groups differ");
    }
    let kept_time = a.mtime < epoch_limit || b.mtime < epoch_limit;
    if a.kind != Kind::Dir && kept_time && a.mtime != b.mtime {
        return Some("mtime differs (a context or base file's time must be kept)");
    }
    None
}

#[cfg(test)]
mod tests {
    //! The comparator must see the differences it exists to see: each test builds two small
    //! layers that differ in one way and checks that exactly that is reported.

    use super::super::image::{read_layer, Image};
    use super::*;

    struct Entry<'a> {
        path: &'a str,
        kind: tar::EntryType,
        mode: u32,
        uid: u64,
        data: &'a [u8],
        link: Option<&'a str>,
        mtime: u64,
    }

    fn file<'a>(path: &'a str, data: &'a [u8]) -> Entry<'a> {
        Entry {
            path,
            kind: tar::EntryType::Regular,
            mode: 0o644,
            uid: 0,
            data,
            link: None,
            mtime: 2_000_000_000,
        }
    }

    fn dir(path: &str) -> Entry<'_> {
        Entry {
            kind: tar::EntryType::Directory,
            mode: 0o755,
            ..file(path, b"")
        }
    }

    fn layer(entries: &[Entry]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in entries {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(entry.kind);
            header.set_mode(entry.mode);
            header.set_uid(entry.uid);
            header.set_gid(0);
            header.set_mtime(entry.mtime);
            header.set_size(entry.data.len() as u64);
            if let Some(link) = entry.link {
                header.set_link_name(link).expect("link name");
            }
            header.set_path(entry.path).expect("path");
            header.set_cksum();
            builder.append(&header, entry.data).expect("append");
        }
        builder.into_inner().expect("tar")
    }

    fn rules(base_layers: usize, kept_before: u64) -> Rules {
        Rules {
            base_layers,
            kept_before,
            legacy_buildkit: true,
        }
    }

    #[test]
    fn legacy_history_spellings_meet_current_ones() {
        let same = |old: &str, new: &str| {
            assert_eq!(
                normalise_created_by(old, true),
                normalise_created_by(new, true)
            );
            assert_ne!(
                normalise_created_by(old, false),
                normalise_created_by(new, false)
            );
        };
        same(
            "EXPOSE map[443/tcp:{} 53/udp:{} 80/tcp:{} 8080/tcp:{} 8081/tcp:{}]",
            "EXPOSE 80 443/TCP 53/udp 8080-8081",
        );
        same("ARG A=default B", "ARG A=override B");
        same(
            "COPY a /a # buildkit",
            "COPY --chown=1:2 --chmod=600 a /a # buildkit",
        );
        // A real difference stays one.
        assert_ne!(
            normalise_created_by("EXPOSE map[80/tcp:{}]", true),
            normalise_created_by("EXPOSE 81", true)
        );
    }

    fn image(layers: &[Vec<u8>]) -> Image {
        Image {
            config: serde_json::json!({"architecture": "amd64", "os": "linux"}),
            layers: layers
                .iter()
                .enumerate()
                .map(|(i, l)| read_layer(i, l).expect("layer"))
                .collect(),
        }
    }

    fn base() -> Vec<u8> {
        layer(&[
            dir("etc/"),
            file("etc/passwd", b"root\n"),
            dir("var/"),
            file("var/a", b"a"),
        ])
    }

    #[test]
    fn the_same_layers_have_no_differences() {
        let a = image(&[base()]);
        let b = image(&[base()]);
        assert!(compare(&a, &b, rules(1, 0)).is_empty());
    }

    #[test]
    fn content_mode_and_owner_differences_are_seen() {
        let a = image(&[base()]);
        let changed = |entry: Entry<'static>| {
            image(&[layer(&[
                dir("etc/"),
                entry,
                dir("var/"),
                file("var/a", b"a"),
            ])])
        };
        let content = changed(file("etc/passwd", b"root!\n"));
        let mode = changed(Entry {
            mode: 0o4755,
            ..file("etc/passwd", b"root\n")
        });
        let owner = changed(Entry {
            uid: 1000,
            ..file("etc/passwd", b"root\n")
        });
        for other in [content, mode, owner] {
            let found = compare(&a, &other, rules(0, 0)).lines;
            // Once in layer 0, once in the final file system.
            assert_eq!(found.len(), 2, "{found:?}");
            assert!(found[0].starts_with("layer 0: /etc/passwd"), "{found:?}");
        }
    }

    #[test]
    fn a_kept_mtime_is_compared_and_a_build_time_is_not() {
        let old = |mtime| {
            image(&[layer(&[Entry {
                mtime,
                ..file("a", b"x")
            }])])
        };
        assert!(compare(&old(5), &old(6), rules(0, 1_000)).lines.len() == 2);
        assert!(compare(&old(5_000), &old(6_000), rules(0, 1_000)).is_empty());
    }

    #[test]
    fn whiteouts_and_opaque_directories_flatten_like_an_overlay() {
        let upper = layer(&[
            dir("etc/"),
            file("etc/.wh.passwd", b""),
            dir("var/"),
            file("var/.wh..wh..opq", b""),
            file("var/b", b"b"),
        ]);
        let flat = image(&[base(), upper]).flatten();
        let paths: Vec<&str> = flat.keys().map(String::as_str).collect();
        assert_eq!(paths, ["/etc", "/var", "/var/b"]);
        // A missing whiteout is a difference in the layer and in the final file system.
        let without = layer(&[
            dir("etc/"),
            dir("var/"),
            file("var/.wh..wh..opq", b""),
            file("var/b", b"b"),
        ]);
        let found = compare(
            &image(&[
                base(),
                layer(&[
                    dir("etc/"),
                    file("etc/.wh.passwd", b""),
                    dir("var/"),
                    file("var/.wh..wh..opq", b""),
                    file("var/b", b"b"),
                ]),
            ]),
            &image(&[base(), without]),
            rules(1, 0),
        )
        .lines;
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("only docker has it: whiteout"),
            "{found:?}"
        );
        assert!(
            found[1].contains("final fs: /etc/passwd: only distill has it"),
            "{found:?}"
        );
    }

    #[test]
    fn an_opaque_marker_that_hides_nothing_is_not_a_difference() {
        // /var/a is a file below; the upper layer makes it a directory.
        let upper = |marked: bool| {
            let mut entries = vec![dir("var/"), dir("var/a/")];
            if marked {
                entries.push(file("var/a/.wh..wh..opq", b""));
            }
            entries.push(file("var/a/new", b"n"));
            layer(&entries)
        };
        let found = compare(
            &image(&[base(), upper(true)]),
            &image(&[base(), upper(false)]),
            rules(1, 0),
        );
        assert!(found.is_empty(), "{:?}", found.lines);
        // On /var, which has /var/a below it, the marker hides something: it is compared.
        let hiding = layer(&[dir("var/"), file("var/.wh..wh..opq", b"")]);
        let plain = layer(&[dir("var/")]);
        let found = compare(
            &image(&[base(), hiding]),
            &image(&[base(), plain]),
            rules(1, 0),
        )
        .lines;
        assert!(found[0].contains("only docker has it: opaque"), "{found:?}");
    }

    #[test]
    fn hardlink_groups_are_compared_whatever_name_comes_first() {
        let link = |path: &'static str, target: &'static str| Entry {
            kind: tar::EntryType::Link,
            link: Some(target),
            ..file(path, b"")
        };
        let a = image(&[layer(&[file("a", b"x"), link("b", "a")])]);
        let b = image(&[layer(&[file("b", b"x"), link("a", "b")])]);
        assert!(compare(&a, &b, rules(0, 0)).is_empty());
        let copies = image(&[layer(&[file("a", b"x"), file("b", b"x")])]);
        let found = compare(&a, &copies, rules(0, 0)).lines;
        assert!(
            found.iter().all(|l| l.contains("hardlink groups differ")),
            "{found:?}"
        );
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn config_fields_and_history_are_compared_after_normalising() {
        let config = |cmd: Value, copy: &str| Image {
            config: serde_json::json!({
                "os": "linux",
                "config": {"Cmd": cmd, "User": ""},
                "history": [{"created_by": copy}],
            }),
            layers: Vec::new(),
        };
        let a = config(serde_json::json!(["a"]), "COPY a /a # buildkit");
        let b = config(serde_json::json!(["a"]), "COPY --chmod=600 a /a # buildkit");
        assert!(compare(&a, &b, rules(0, 0)).is_empty());
        let c = config(serde_json::json!(["b"]), "COPY b /a # buildkit");
        let found = compare(&a, &c, rules(0, 0)).lines;
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("config.Cmd"), "{found:?}");
        assert!(found[1].starts_with("history[0]"), "{found:?}");
    }
}
