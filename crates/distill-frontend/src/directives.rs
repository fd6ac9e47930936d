//! Parser directives (`# syntax=`, `# escape=`, `# check=`) with BuildKit's exact rules.
//!
//! Two readers exist because BuildKit has two:
//! - [`DirectiveScanner`] runs inside the parse, on each line with its leading whitespace
//!   removed. It stops at the first line that is not a directive (an instruction, an ordinary
//!   comment, a blank line, a `#!` line), rejects a repeated directive and sets the escape
//!   character.
//! - [`detect`] is BuildKit's `DetectSyntax`/`ParseDirective`, which picks the `syntax` and
//!   `check` values: it skips a UTF-8 BOM and a first `#!` line, does not strip leading
//!   whitespace, lets the first of two repeated directives win, and for `syntax` also accepts
//!   `// syntax=` comments.
//!
//! A directive line is `<prefix>` then optional whitespace, a name (`[a-zA-Z][a-zA-Z0-9]*`,
//! case-insensitive), optional whitespace, `=`, and a value whose surrounding whitespace is
//! dropped. Neither reader ever looks past the directives at the top of the file.

/// Directives BuildKit knows; any other `# name=value` comment ends the directives.
const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

/// A directive found on a line: its lowercased name and its value (a slice of the line).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Found<'a> {
    pub(crate) name: &'static str,
    pub(crate) value: &'a str,
}

/// The directive reader BuildKit runs while parsing.
#[derive(Debug, Default)]
pub(crate) struct DirectiveScanner {
    done: bool,
    seen: Vec<&'static str>,
}

impl DirectiveScanner {
    /// Reads one line (already stripped of its line ending). Returns the directive on it, or
    /// the error message for a repeated directive.
    pub(crate) fn scan_line<'a>(
        &mut self,
        line: &'a str,
        prefix: &str,
    ) -> Result<Option<Found<'a>>, String> {
        if self.done {
            return Ok(None);
        }
        let Some(found) = match_directive(line, prefix) else {
            self.done = true;
            return Ok(None);
        };
        if self.seen.contains(&found.name) {
            return Err(format!(
                "only one {} parser directive can be used",
                found.name
            ));
        }
        self.seen.push(found.name);
        Ok(Some(found))
    }

    /// Whether the directives at the top of the file are over.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }
}

/// Go's regexp `\s`: ASCII space, tab, newline, form feed, carriage return (not VT).
fn is_regex_space(ch: char) -> bool {
    matches!(ch, ' ' | '\t' | '\n' | '\u{c}' | '\r')
}

/// Matches `^<prefix>\s*NAME\s*=\s*(.+?)\s*$` for a known NAME (leading Unicode whitespace after
/// the prefix is allowed as BuildKit trims it before matching).
fn match_directive<'a>(line: &'a str, prefix: &str) -> Option<Found<'a>> {
    let rest = line.strip_prefix(prefix)?.trim_start();
    let name_len = rest
        .bytes()
        .enumerate()
        .take_while(|&(i, b)| {
            if i == 0 {
                b.is_ascii_alphabetic()
            } else {
                b.is_ascii_alphanumeric()
            }
        })
        .count();
    if name_len == 0 {
        return None;
    }
    let name = &rest[..name_len];
    let after_name = rest[name_len..].trim_start_matches(is_regex_space);
    let after_equals = after_name.strip_prefix('=')?;
    if after_equals.is_empty() {
        return None;
    }
    let leading_trimmed = after_equals.trim_start_matches(is_regex_space);
    let value = if leading_trimmed.is_empty() {
        // `(.+?)` must take one character: with only whitespace left it takes the last one.
        let last = after_equals.chars().next_back()?;
        &after_equals[after_equals.len() - last.len_utf8()..]
    } else {
        leading_trimmed.trim_end_matches(is_regex_space)
    };
    let name = KNOWN
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))?;
    Some(Found { name, value })
}

/// A directive value picked by [`detect`], with its 1-based line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Detected<'a> {
    pub(crate) value: &'a str,
    pub(crate) line: u32,
}

/// BuildKit's `ParseDirective(name)` (and `DetectSyntax` when `any_format`): the value of the
/// directive `name` at the top of `text`, if any.
pub(crate) fn detect<'a>(text: &'a str, name: &str, any_format: bool) -> Option<Detected<'a>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (text, first_line) = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("#!") => (rest, 2),
        None if text.starts_with("#!") => ("", 2),
        _ => (text, 1),
    };
    let prefixes: &[&str] = if any_format { &["#", "//"] } else { &["#"] };
    prefixes
        .iter()
        .find_map(|prefix| detect_with_prefix(text, name, prefix, first_line))
}

fn detect_with_prefix<'a>(
    text: &'a str,
    name: &str,
    prefix: &str,
    first_line: u32,
) -> Option<Detected<'a>> {
    let mut scanner = DirectiveScanner::default();
    for (index, raw) in text.split_terminator('\n').enumerate() {
        // bufio.ScanLines drops one `\r` before the newline.
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        match scanner.scan_line(line, prefix) {
            Ok(Some(found)) if found.name == name => {
                return Some(Detected {
                    value: found.value,
                    line: first_line + index as u32,
                })
            }
            Ok(_) if scanner.is_done() => return None,
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(line: &str) -> Option<(&'static str, &str)> {
        match_directive(line, "#").map(|f| (f.name, f.value))
    }

    #[test]
    fn directive_syntax() {
        assert_eq!(value("# escape=`"), Some(("escape", "`")));
        assert_eq!(value("#escape =  ` \t"), Some(("escape", "`")));
        assert_eq!(value("#  ESCAPE=\\"), Some(("escape", "\\")));
        assert_eq!(
            value("# syntax = docker/dockerfile:1 "),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(value("# check=skip=all"), Some(("check", "skip=all")));
        // Whitespace-only values keep their last character, as `(.+?)` must match one.
        assert_eq!(value("# escape=  "), Some(("escape", " ")));
        assert_eq!(value("# escape="), None);
        assert_eq!(value("# es cape=x"), None);
        assert_eq!(value("# 1escape=x"), None);
        assert_eq!(value("# other=x"), None);
        assert_eq!(value("#!/bin/sh"), None);
        assert_eq!(value("escape=x"), None);
        // A vertical tab is not `\s` for Go's regexp.
        assert_eq!(value("# escape\u{b}=x"), None);
    }

    #[test]
    fn scanner_stops_and_rejects_repeats() {
        let mut scanner = DirectiveScanner::default();
        assert!(scanner.scan_line("# syntax=a", "#").unwrap().is_some());
        assert_eq!(
            scanner.scan_line("# SYNTAX=b", "#"),
            Err("only one syntax parser directive can be used".to_string())
        );
        let mut scanner = DirectiveScanner::default();
        assert_eq!(scanner.scan_line("", "#"), Ok(None));
        assert!(scanner.is_done());
        assert_eq!(scanner.scan_line("# escape=`", "#"), Ok(None));
    }

    #[test]
    fn detect_skips_bom_and_shebang() {
        let text = "\u{feff}#!/usr/bin/env buildctl\n# syntax=docker/dockerfile:1.7\nFROM a\n";
        assert_eq!(
            detect(text, "syntax", true),
            Some(Detected {
                value: "docker/dockerfile:1.7",
                line: 2
            })
        );
        assert_eq!(
            detect("// syntax=x\nFROM a", "syntax", true).map(|d| d.value),
            Some("x")
        );
        assert_eq!(detect("// check=x\nFROM a", "check", false), None);
        assert_eq!(
            detect("# syntax=a\n# syntax=b\n", "syntax", false).map(|d| d.value),
            Some("a")
        );
        assert_eq!(detect("FROM a\n# syntax=b\n", "syntax", false), None);
        assert_eq!(detect("  # syntax=b\n", "syntax", false), None);
    }
}
