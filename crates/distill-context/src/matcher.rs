//! The patterns of one ignore file, compiled once, deciding whether a context path is excluded.
//!
//! Patterns are tried in order and the last one that matches decides: a plain pattern excludes,
//! an exception (`!pattern`) re-includes. A pattern that matches a directory matches everything
//! under it, so `build` excludes `build/out/app`, and `!build/out/app` after it brings that one
//! file back. A matcher never touches the file system.

use crate::error::PatternError;
use crate::ignorefile::{clean_bytes, is_clean, IgnoreFile};
use crate::pattern::{Pattern, SyntaxError};

/// Compiled ignore patterns.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    has_exceptions: bool,
}

/// Which patterns matched a directory (or one of its parents): what a walker hands down to the
/// directory's children so that parents are not matched again for each child
/// (patternmatcher's `MatchInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchInfo {
    matched: Vec<u64>,
}

impl MatchInfo {
    /// An empty record sized for `matcher`, to be filled by
    /// [`Matcher::is_excluded_with_parent`].
    pub fn new(matcher: &Matcher) -> MatchInfo {
        MatchInfo {
            matched: vec![0; matcher.words()],
        }
    }
}

impl Matcher {
    /// Compiles the patterns of an ignore file; a malformed one is reported with the file's
    /// name, its line and column.
    pub fn from_ignore_file(file: &IgnoreFile) -> Result<Matcher, Box<PatternError>> {
        let mut patterns = Vec::with_capacity(file.lines().len());
        for line in file.lines() {
            let pattern = Pattern::compile(&line.pattern).map_err(|err| {
                Box::new(PatternError {
                    file: file.name().to_string(),
                    line: line.line,
                    column: error_column(&line.text, line.column, &line.pattern, &err),
                    line_text: line.text.clone(),
                    pattern: line.pattern.clone(),
                    message: err.message,
                    hint: err.hint,
                })
            })?;
            patterns.push(pattern);
        }
        Ok(Matcher::from_compiled(patterns))
    }

    /// Compiles patterns given one per item, as BuildKit's exclude patterns are passed
    /// (trimmed, cleaned, a leading `!` for exceptions, empty ones skipped). Errors name the
    /// source `patterns` and the item's 1-based position as its line.
    pub fn new<'a>(
        patterns: impl IntoIterator<Item = &'a str>,
    ) -> Result<Matcher, Box<PatternError>> {
        let mut compiled = Vec::new();
        for (index, raw) in patterns.into_iter().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let pattern = Pattern::compile(raw).map_err(|err| {
                Box::new(PatternError {
                    file: "patterns".to_string(),
                    line: u32::try_from(index + 1).unwrap_or(u32::MAX),
                    column: error_column(raw, 1, raw.trim(), &err),
                    line_text: raw.to_string(),
                    pattern: raw.trim().to_string(),
                    message: err.message,
                    hint: err.hint,
                })
            })?;
            compiled.push(pattern);
        }
        Ok(Matcher::from_compiled(compiled))
    }

    fn from_compiled(patterns: Vec<Pattern>) -> Matcher {
        let has_exceptions = patterns.iter().any(Pattern::is_exception);
        Matcher {
            patterns,
            has_exceptions,
        }
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// True when there is nothing to exclude.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when some pattern is an exception (`!pattern`).
    pub fn has_exceptions(&self) -> bool {
        self.has_exceptions
    }

    fn words(&self) -> usize {
        self.patterns.len().div_ceil(64)
    }

    /// Whether `path`, relative to the context and `/`-separated, is excluded: the last pattern
    /// matching the path or one of its parent directories decides (patternmatcher's
    /// `MatchesOrParentMatches`). The path is cleaned first as Go's `filepath.Clean` would
    /// (`./a//b/` is `a/b`); the context itself (`.`) is never excluded.
    ///
    /// Walkers should prefer [`Matcher::is_excluded_with_parent`], which is what BuildKit's
    /// context transfer uses and which differs in one corner (see there).
    pub fn is_excluded(&self, path: &str) -> bool {
        self.is_excluded_bytes(path.as_bytes())
    }

    /// [`Matcher::is_excluded`] for a path that may not be UTF-8.
    pub fn is_excluded_bytes(&self, path: &[u8]) -> bool {
        if is_clean(path) {
            self.excluded_clean(path)
        } else {
            self.excluded_clean(&clean_bytes(path))
        }
    }

    fn excluded_clean(&self, path: &[u8]) -> bool {
        if path == b"." {
            return false;
        }
        let mut excluded = false;
        for pattern in &self.patterns {
            // A pattern that agrees with the current verdict cannot change it.
            if pattern.is_exception() != excluded {
                continue;
            }
            if pattern.matches_self_or_parent(path) {
                excluded = !pattern.is_exception();
            }
        }
        excluded
    }

    /// Whether `path` (clean, as a walker builds it) is excluded, given what matched its parent
    /// directory (`None` for a path at the top of the context); fills `info` for `path`'s own
    /// children.
    ///
    /// This is patternmatcher's `MatchesUsingParentResults`, which BuildKit's walker uses: a
    /// pattern that matched the parent matches the child without being tried again. One
    /// consequence differs from [`Matcher::is_excluded`]: a pattern skipped for the parent
    /// because it could not change the parent's verdict is later tried on the child's own path
    /// only. With `*/file` then `!dir`, `dir/file` is excluded here but not by `is_excluded`.
    pub fn is_excluded_with_parent(
        &self,
        path: &[u8],
        parent: Option<&MatchInfo>,
        info: &mut MatchInfo,
    ) -> bool {
        info.matched.clear();
        info.matched.resize(self.words(), 0);
        self.decide(
            path,
            parent.map(|p| p.matched.as_slice()),
            &mut info.matched,
        )
    }

    /// The core of [`Matcher::is_excluded_with_parent`] on raw bit sets (one bit per pattern);
    /// `out` must be zeroed and sized for this matcher.
    pub(crate) fn decide(&self, path: &[u8], parent: Option<&[u64]>, out: &mut [u64]) -> bool {
        let mut excluded = false;
        for (index, pattern) in self.patterns.iter().enumerate() {
            let (word, bit) = (index / 64, 1u64 << (index % 64));
            let mut matched = parent.is_some_and(|p| p.get(word).is_some_and(|w| w & bit != 0));
            if !matched {
                if pattern.is_exception() != excluded {
                    continue;
                }
                matched = match parent {
                    Some(_) => pattern.matches(path),
                    // Without the parent's results, parents are matched here.
                    None => pattern.matches_self_or_parent(path),
                };
            }
            if matched {
                if let Some(w) = out.get_mut(word) {
                    *w |= bit;
                }
                excluded = !pattern.is_exception();
            }
        }
        excluded
    }

    /// Whether an exception could re-include something strictly under the excluded directory
    /// `dir`. When not, a walker need not descend into it. Conservative: `true` when unsure.
    pub fn may_include_under(&self, dir: &[u8]) -> bool {
        self.has_exceptions
            && self
                .patterns
                .iter()
                .any(|p| p.is_exception() && p.may_match_under(dir))
    }

    pub(crate) fn word_count(&self) -> usize {
        self.words()
    }
}

/// The column to show for a syntax error: on the character itself when the cleaned pattern
/// appears as written on the line, else where the pattern starts.
fn error_column(line_text: &str, start_column: u32, pattern: &str, err: &SyntaxError) -> u32 {
    let body = pattern.strip_prefix('!').unwrap_or(pattern);
    match (line_text.find(body), err.index) {
        (Some(byte), Some(index)) if !body.is_empty() => {
            let before = line_text[..byte].chars().count();
            u32::try_from(before + index + 1).unwrap_or(start_column)
        }
        _ => start_column,
    }
}
