//! Reading a `.dockerignore` file into its list of patterns, line by line, the way BuildKit's
//! `ignorefile.ReadAll` does, and choosing which ignore file a build uses.
//!
//! Reading never judges a pattern's syntax: that is [`crate::Matcher`]'s job, which reports a bad
//! pattern with the file, line and column kept here.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The name BuildKit looks for at the root of the context.
pub const DEFAULT_IGNORE_FILE: &str = ".dockerignore";

/// One pattern of an ignore file, as the reader leaves it, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoreLine {
    /// The pattern after trimming and cleaning, with a leading `!` for an exception
    /// (`ignorefile.ReadAll`'s output, e.g. `/a/./b/` becomes `a/b`).
    pub pattern: String,
    /// 1-based line number in the file.
    pub line: u32,
    /// 1-based column (in characters) where the pattern's text starts on that line.
    pub column: u32,
    /// The line as written (without its line ending), for error messages.
    pub text: String,
}

/// The patterns of an ignore file, in order, and the name to show for the file in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoreFile {
    name: String,
    lines: Vec<IgnoreLine>,
}

impl IgnoreFile {
    /// Reads and parses the ignore file at `path`. The file must be UTF-8.
    pub fn read(path: &Path) -> Result<IgnoreFile, Error> {
        let bytes = fs::read(path).map_err(|source| Error::io("read", path, source))?;
        let name = path.display().to_string();
        match String::from_utf8(bytes) {
            Ok(text) => Ok(IgnoreFile::parse(&text, &name)),
            Err(err) => {
                let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
                let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
                Err(Error::NotUtf8 {
                    path: path.to_path_buf(),
                    line: u32::try_from(line).unwrap_or(u32::MAX),
                })
            }
        }
    }

    /// Parses ignore-file text. `name` is how messages will name the file.
    ///
    /// The rules are BuildKit's: a UTF-8 byte order mark at the start is dropped; a line whose
    /// first character is `#` is a comment (a `#` after leading spaces is part of a pattern);
    /// each line is trimmed of white space; blank lines are skipped; a leading `!` marks an
    /// exception and the space after it is trimmed too; the rest is cleaned like Go's
    /// `filepath.Clean` and a leading `/` is dropped, so `/a/b/` and `a/b` are the same pattern.
    pub fn parse(text: &str, name: &str) -> IgnoreFile {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            // Go's line scanner drops one `\r` before the `\n`.
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.starts_with('#') {
                continue;
            }
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let lead = raw.len() - raw.trim_start().len();
            let column = 1 + raw[..lead].chars().count();
            let (invert, body) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            let mut pattern = String::with_capacity(body.len() + 1);
            if invert {
                pattern.push('!');
            }
            if !body.is_empty() {
                let cleaned = clean(body);
                let relative = match cleaned.strip_prefix('/') {
                    Some(rest) if !rest.is_empty() => rest,
                    _ => cleaned.as_str(),
                };
                pattern.push_str(relative);
            }
            lines.push(IgnoreLine {
                pattern,
                line: u32::try_from(index + 1).unwrap_or(u32::MAX),
                column: u32::try_from(column).unwrap_or(u32::MAX),
                text: raw.to_string(),
            });
        }
        IgnoreFile {
            name: name.to_string(),
            lines,
        }
    }

    /// The name messages use for this file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The patterns with their positions, in file order.
    pub fn lines(&self) -> &[IgnoreLine] {
        &self.lines
    }

    /// The patterns alone, in file order (what BuildKit passes on as exclude patterns).
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(|l| l.pattern.as_str())
    }
}

/// The ignore file a build of `dockerfile` with context `context_dir` uses, if any.
///
/// BuildKit's Dockerfile frontend first reads `<Dockerfile name>.dockerignore` beside the
/// Dockerfile (`app.Dockerfile` → `app.Dockerfile.dockerignore`); when that file exists it is
/// used even if empty, and the context's `.dockerignore` is not read at all. Otherwise the
/// context's `.dockerignore` is used. Only regular files (after following symlinks) count.
pub fn find_ignore_file(context_dir: &Path, dockerfile: &Path) -> Option<PathBuf> {
    if let Some(file_name) = dockerfile.file_name() {
        let mut beside = file_name.to_os_string();
        beside.push(".dockerignore");
        let candidate = dockerfile.with_file_name(beside);
        if is_regular_file(&candidate) {
            return Some(candidate);
        }
    }
    let candidate = context_dir.join(DEFAULT_IGNORE_FILE);
    is_regular_file(&candidate).then_some(candidate)
}

fn is_regular_file(path: &Path) -> bool {
    match fs::metadata(path) {
        Ok(meta) => meta.is_file(),
        Err(err) => {
            // Anything but absence (e.g. a permission problem) is left for the read to report.
            err.kind() != io::ErrorKind::NotFound && err.kind() != io::ErrorKind::NotADirectory
        }
    }
}

/// The shortest path equivalent to `path` by purely lexical processing, exactly as Go's
/// `filepath.Clean` on Unix: repeated `/` become one, `.` elements go, `..` removes the element
/// before it (and is dropped right after the root), a trailing `/` goes, and an empty result is
/// `.`.
pub(crate) fn clean(path: &str) -> String {
    // Cleaning only removes whole `/`-separated elements, so UTF-8 stays UTF-8.
    String::from_utf8(clean_bytes(path.as_bytes())).unwrap_or_else(|_| path.to_string())
}

/// [`clean`] for a path that may not be UTF-8.
pub(crate) fn clean_bytes(path: &[u8]) -> Vec<u8> {
    let rooted = path.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    // How many leading `..` elements `parts` holds; they cannot be removed by a later `..`.
    let mut fixed = 0;
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.len() > fixed {
                    parts.pop();
                } else if !rooted {
                    parts.push(b"..");
                    fixed += 1;
                }
            }
            name => parts.push(name),
        }
    }
    let joined = parts.join(&b'/');
    match (rooted, joined.is_empty()) {
        (true, _) => [b"/".as_slice(), &joined].concat(),
        (false, true) => b".".to_vec(),
        (false, false) => joined,
    }
}

/// Whether [`clean_bytes`] would leave `path` as it is (`false` for some clean paths, such as
/// `..`, that are not worth recognising).
pub(crate) fn is_clean(path: &[u8]) -> bool {
    if path == b"/" {
        return true;
    }
    let body = path.strip_prefix(b"/").unwrap_or(path);
    !body.is_empty()
        && body
            .split(|&b| b == b'/')
            .all(|part| !matches!(part, b"" | b"." | b".."))
        || path == b"."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go_filepath_clean() {
        let cases = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "/"),
            ("a/b/", "a/b"),
            ("a//b", "a/b"),
            ("./a", "a"),
            ("a/./b/.", "a/b"),
            ("a/../b", "b"),
            ("a/..", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../a/../..", "../.."),
            ("a/../../b", "../b"),
            ("/..", "/"),
            ("/../a", "/a"),
            ("/a/../..", "/"),
            ("!..", "!.."),
            ("!../../x", "x"),
            ("!../x", "!../x"),
            ("a/b/../../..", ".."),
            ("**/", "**"),
            ("a/b", "a/b"),
            ("/a", "/a"),
            ("a.b/.c", "a.b/.c"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
            if is_clean(input.as_bytes()) {
                assert_eq!(clean(input), input, "is_clean({input:?})");
            }
        }
    }

    fn patterns(text: &str) -> Vec<String> {
        IgnoreFile::parse(text, ".dockerignore")
            .patterns()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn reading_rules() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("\n\n   \n\t\n", &[]),
            ("# comment\nfoo", &["foo"]),
            // Only a `#` in the first column starts a comment.
            ("  # not a comment", &["# not a comment"]),
            ("foo # trailing", &["foo # trailing"]),
            ("  spaced  \t", &["spaced"]),
            ("/abs/path", &["abs/path"]),
            ("/", &["/"]),
            ("./a/../b/", &["b"]),
            ("a//b/./c/", &["a/b/c"]),
            ("../escape", &["../escape"]),
            ("!keep", &["!keep"]),
            ("! /spaced/exception/ ", &["!spaced/exception"]),
            ("!", &["!"]),
            ("! ", &["!"]),
            ("!!double", &["!!double"]),
            (
                "\u{feff}first\n\u{feff}second",
                &["first", "\u{feff}second"],
            ),
            ("\u{feff}#comment after bom\nx", &["x"]),
            ("crlf\r\nnext\r\n", &["crlf", "next"]),
            ("*.log\n!important.log", &["*.log", "!important.log"]),
            ("**/", &["**"]),
            ("\u{a0}nbsp\u{3000}", &["nbsp"]),
        ];
        for (text, want) in cases {
            assert_eq!(patterns(text), *want, "parse({text:?})");
        }
    }

    #[test]
    fn keeps_line_and_column() {
        let file = IgnoreFile::parse("# c\n\n  foo[\n!bar", "x.dockerignore");
        let lines = file.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].line, lines[0].column), (3, 3));
        assert_eq!(lines[0].text, "  foo[");
        assert_eq!((lines[1].line, lines[1].column), (4, 1));
        assert_eq!(file.name(), "x.dockerignore");
    }
}
