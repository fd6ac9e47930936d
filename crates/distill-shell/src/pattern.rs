//! Shell patterns for `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`, `${V/p/r}` and `${V//p/r}`.
//!
//! BuildKit turns a pattern into a Go regular expression (`*` → `.*` or `.*?`, `?` → `.`, the rest
//! literal; no bracket expressions) and lets Go's leftmost-first engine find the match. This
//! module compiles the pattern into three kinds of token and finds the same match with a small
//! NFA simulation that keeps Go's priority order, so the answers agree, including the two regex
//! details that show through: `*` and `?` never match a newline (`.` in Go), and `${V//p/r}`
//! expands `$0`/`${name}` in `r` as Go's `ReplaceAllString` does.
//!
//! It never builds a regex and never recurses; one search takes time proportional to pattern ×
//! text, as Go's does, whatever the pattern.

use distill_golang::unicode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// One character, itself.
    Literal(char),
    /// `?`: any one character but a newline.
    AnyChar,
    /// `*`: any run of characters without a newline; shortest or longest first by the caller.
    AnyRun,
}

/// A compiled shell pattern.
#[derive(Debug)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles `pattern` as BuildKit does: `\` escapes `*`, `?` and `\`; before `}` or `/` (which
    /// had to be escaped inside `${...}`) it is dropped; before anything else it is an error.
    /// Like Go's `text/scanner`, a byte order mark opening the pattern is skipped.
    pub(crate) fn compile(pattern: &str) -> Result<Pattern, String> {
        let mut chars = pattern.strip_prefix('\u{feff}').unwrap_or(pattern).chars();
        let mut tokens = Vec::new();
        while let Some(ch) = chars.next() {
            let token = match ch {
                '*' => Token::AnyRun,
                '?' => Token::AnyChar,
                '\\' => {
                    let next = chars.clone().next();
                    if matches!(next, Some('}') | Some('/')) {
                        continue;
                    }
                    chars.next();
                    match next {
                        Some(escaped @ ('*' | '?' | '\\')) => Token::Literal(escaped),
                        // Go formats the scanner's EOF (-1) with %c as U+FFFD.
                        other => {
                            return Err(format!(
                                "invalid escape '\\{}'",
                                other.unwrap_or(char::REPLACEMENT_CHARACTER)
                            ))
                        }
                    }
                }
                _ => Token::Literal(ch),
            };
            // `**` finds the same match as `*` in either mode; keeping one bounds the search.
            if token == Token::AnyRun && tokens.last() == Some(&Token::AnyRun) {
                continue;
            }
            tokens.push(token);
        }
        Ok(Pattern { tokens })
    }
}

/// A text prepared for searching.
struct Subject {
    chars: Vec<char>,
}

impl Subject {
    fn new(text: &str) -> Subject {
        Subject {
            chars: text.chars().collect(),
        }
    }

    fn slice(&self, from: usize, to: usize) -> String {
        self.chars[from..to].iter().collect()
    }
}

/// One thread of the search: at token `pc` (`tokens.len()` = matched), started at `start`.
#[derive(Clone, Copy)]
struct Thread {
    pc: usize,
    start: usize,
}

/// Searches `subject` for `pattern` the way Go's leftmost-first regexp engine does, with a
/// Pike VM: all alternatives advance together one character at a time, kept in priority order,
/// so the match found is the one a backtracking search would find first, in time
/// proportional to pattern × text.
struct Searcher<'a> {
    tokens: &'a [Token],
    text: &'a [char],
    /// `*` prefers the longest run (`.*`) or the shortest (`.*?`).
    greedy: bool,
    current: Vec<Thread>,
    next: Vec<Thread>,
    /// `queued[pc]`: a thread at `pc` is already in `next` (a later one would do the same
    /// with lower priority).
    queued: Vec<bool>,
}

impl<'a> Searcher<'a> {
    fn new(pattern: &'a Pattern, subject: &'a Subject, greedy: bool) -> Searcher<'a> {
        Searcher {
            tokens: &pattern.tokens,
            text: &subject.chars,
            greedy,
            current: Vec::new(),
            next: Vec::new(),
            queued: vec![false; pattern.tokens.len() + 1],
        }
    }

    /// The first match at or after `from` as (start, end), or at `from` only when `anchored`.
    fn find(&mut self, from: usize, anchored: bool) -> Option<(usize, usize)> {
        let mut found = None;
        self.current.clear();
        self.next.clear();
        self.queued.fill(false);
        self.enqueue(Thread { pc: 0, start: from });
        for pos in from..=self.text.len() {
            std::mem::swap(&mut self.current, &mut self.next);
            self.next.clear();
            self.queued.fill(false);
            let ch = self.text.get(pos).copied();
            for index in 0..self.current.len() {
                let thread = self.current[index];
                let Some(&token) = self.tokens.get(thread.pc) else {
                    // A match; every thread after this one has lower priority.
                    found = Some((thread.start, pos));
                    break;
                };
                let advanced = match (token, ch) {
                    (Token::Literal(want), Some(ch)) if ch == want => thread.pc + 1,
                    (Token::AnyChar, Some(ch)) if ch != '\n' => thread.pc + 1,
                    (Token::AnyRun, Some(ch)) if ch != '\n' => thread.pc,
                    _ => continue,
                };
                self.enqueue(Thread {
                    pc: advanced,
                    start: thread.start,
                });
            }
            // Until a match is found, a match may also start at the next position, with the
            // lowest priority of all.
            if found.is_none() && !anchored && pos < self.text.len() {
                self.enqueue(Thread {
                    pc: 0,
                    start: pos + 1,
                });
            }
            if self.next.is_empty() {
                break;
            }
        }
        found
    }

    /// Adds `thread` to the next step's list, following a `*`'s two ways on in priority
    /// order: for `.*` first another character of the run, then the rest of the pattern; for
    /// `.*?` the other way round.
    fn enqueue(&mut self, thread: Thread) {
        let mut pc = thread.pc;
        loop {
            if self.queued[pc] {
                return;
            }
            self.queued[pc] = true;
            if self.tokens.get(pc) != Some(&Token::AnyRun) {
                self.next.push(Thread { pc, ..thread });
                return;
            }
            // The run itself consumes at `pc`; its exit is the token after it. Runs never
            // follow runs (compile merges them), so the exit is a plain token or the end.
            let exit = pc + 1;
            if self.greedy {
                self.next.push(Thread { pc, ..thread });
                pc = exit;
            } else {
                if !self.queued[exit] {
                    self.queued[exit] = true;
                    self.next.push(Thread { pc: exit, ..thread });
                }
                self.next.push(Thread { pc, ..thread });
                return;
            }
        }
    }
}

/// `${V#p}` / `${V##p}`: `value` without the shortest (longest when `greedy`) prefix matching
/// `pattern`; `value` itself when none matches.
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let compiled = Pattern::compile(pattern)
        .map_err(|err| format!("invalid pattern ({pattern}) in substitution: {err}"))?;
    let subject = Subject::new(value);
    match Searcher::new(&compiled, &subject, greedy).find(0, true) {
        Some((_, end)) => Ok(subject.slice(end, subject.chars.len())),
        None => Ok(value.to_string()),
    }
}

/// `${V%p}` / `${V%%p}`: like BuildKit, reverses the pattern (keeping `\x` pairs in order) and
/// the value, trims a prefix, and reverses the result back. Errors therefore quote the reversed
/// pattern, as BuildKit's do.
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern, keeping each backslash before the character it escapes. A trailing
/// backslash escapes nothing and moves like any other character.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let width = if chars[i] == '\\' && i + 1 < chars.len() {
            2
        } else {
            1
        };
        units.push(&chars[i..i + width]);
        i += width;
    }
    units.iter().rev().flat_map(|unit| unit.iter()).collect()
}

/// `${V/p/r}`: the first (leftmost, longest) match of `pattern` replaced by `replacement`, taken
/// literally.
pub(crate) fn replace_first(
    pattern: &str,
    value: &str,
    replacement: &str,
) -> Result<String, String> {
    let compiled = compile_for_substitution(pattern)?;
    let subject = Subject::new(value);
    match Searcher::new(&compiled, &subject, true).find(0, false) {
        Some((start, end)) => {
            let mut out = subject.slice(0, start);
            out.push_str(replacement);
            out.push_str(&subject.slice(end, subject.chars.len()));
            Ok(out)
        }
        None => Ok(value.to_string()),
    }
}

/// `${V//p/r}`: every match replaced, with Go's `ReplaceAllString` rules: matches never overlap,
/// an empty match right after a previous match is skipped, and `r` is a template in which `$0`
/// or `${0}` is the match, `$$` is `$`, any other `$name` is empty.
pub(crate) fn replace_all(pattern: &str, value: &str, replacement: &str) -> Result<String, String> {
    let compiled = compile_for_substitution(pattern)?;
    let subject = Subject::new(value);
    let mut searcher = Searcher::new(&compiled, &subject, true);
    let len = subject.chars.len();
    let mut out = String::with_capacity(value.len());
    let (mut copied_to, mut search_from) = (0, 0);
    while search_from <= len {
        let Some((start, end)) = searcher.find(search_from, false) else {
            break;
        };
        out.push_str(&subject.slice(copied_to, start));
        if end > copied_to || start == 0 {
            expand_template(&mut out, replacement, &subject.slice(start, end));
        }
        copied_to = end;
        // Advance past this match, always by at least one character.
        let width = usize::from(search_from < len);
        search_from = if search_from + width > end {
            search_from + width
        } else if search_from + 1 > end {
            search_from + 1
        } else {
            end
        };
    }
    out.push_str(&subject.slice(copied_to, len));
    Ok(out)
}

fn compile_for_substitution(pattern: &str) -> Result<Pattern, String> {
    Pattern::compile(pattern)
        .map_err(|err| format!("invalid pattern ({pattern}) in substitution: {err}"))
}

/// Go's `Regexp.Expand` for a pattern whose only group is the whole match.
fn expand_template(out: &mut String, template: &str, whole: &str) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match template_reference(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(whole);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// Reads `name` or `{name}` (letters, digits, `_`) after a `$`; `None` when malformed.
fn template_reference(text: &str) -> Option<(&str, &str)> {
    let (body, braced) = match text.strip_prefix('{') {
        Some(body) => (body, true),
        None => (text, false),
    };
    let name_len = body
        .char_indices()
        .find(|&(_, ch)| !(unicode::is_letter(ch) || unicode::is_digit(ch) || ch == '_'))
        .map_or(body.len(), |(index, _)| index);
    if name_len == 0 {
        return None;
    }
    let (name, after) = body.split_at(name_len);
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_errors() {
        let cases = [
            ("\\", "invalid escape '\\\u{fffd}'"),
            ("\\x", "invalid escape '\\x'"),
            ("a\\\\\\", "invalid escape '\\\u{fffd}'"),
            ("\\a", "invalid escape '\\a'"),
        ];
        for (pattern, expected) in cases {
            assert_eq!(
                Pattern::compile(pattern).unwrap_err(),
                expected,
                "{pattern:?}"
            );
        }
        for ok in ["*", "?", "\\*", "()[]{\\}^$.\\*\\?|\\\\", "\\/", "", "**?*"] {
            assert!(Pattern::compile(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn compile_skips_leading_byte_order_mark_only() {
        let bom = Pattern::compile("\u{feff}a\u{feff}").unwrap();
        assert_eq!(
            bom.tokens,
            vec![Token::Literal('a'), Token::Literal('\u{feff}')]
        );
    }

    #[test]
    fn reverse_keeps_escape_pairs() {
        let cases = [
            ("a\\*c", "c\\*a"),
            ("\\\\\\ab", "b\\a\\\\"),
            ("ab\\", "\\ba"),
            ("👽\\🚀🖖", "🖖\\🚀👽"),
            ("\\\\b", "b\\\\"),
            ("", ""),
        ];
        for (pattern, expected) in cases {
            assert_eq!(reverse_pattern(pattern), expected, "{pattern:?}");
        }
    }

    #[test]
    fn prefix_and_suffix() {
        // (pattern, value, greedy, prefix trimmed, suffix trimmed)
        let cases = [
            ("*x*y", "xxyy", false, "y", "x"),
            ("*", "xxyy", false, "xxyy", "xxyy"),
            ("*", "xxyy", true, "", ""),
            ("*x", "xxyy", true, "yy", "xxyy"),
            ("x*", "xxyy", false, "xyy", "x"),
            ("x*", "xxyy", true, "", ""),
            ("", "xxyy", false, "xxyy", "xxyy"),
            ("?\\?", "???y", false, "?y", "???y"),
            ("\\**\\*", "a***yy*", true, "a***yy*", "a"),
            ("\\**\\*", "*a***yy*", false, "**yy*", "*a**"),
            ("y", "xxyy", false, "xxyy", "xxy"),
            ("a*", "ab\ncd", true, "\ncd", "ab\ncd"),
            ("*d", "ab\ncd", true, "ab\ncd", "ab\n"),
            ("?", "\nx", false, "\nx", "\n"),
            ("한*", "한국어", false, "국어", ""),
            ("*국", "한국어", true, "어", "한국어"),
        ];
        for (pattern, value, greedy, prefix, suffix) in cases {
            assert_eq!(
                trim_prefix(pattern, value, greedy).unwrap(),
                prefix,
                "prefix {pattern:?} {value:?} greedy={greedy}"
            );
            assert_eq!(
                trim_suffix(pattern, value, greedy).unwrap(),
                suffix,
                "suffix {pattern:?} {value:?} greedy={greedy}"
            );
        }
    }

    #[test]
    fn suffix_error_quotes_reversed_pattern() {
        assert_eq!(
            trim_suffix("ab\\", "x", false).unwrap_err(),
            "invalid pattern (\\ba) in substitution: invalid escape '\\b'"
        );
    }

    #[test]
    fn substitutions() {
        // (pattern, value, replacement, first, all)
        let cases = [
            ("\\*/", "/foo*/*/*.txt", ".", "/foo.*/*.txt", "/foo..*.txt"),
            ("/tmp", "/tmp/tmp/bar.txt", "", "/tmp/bar.txt", "/bar.txt"),
            ("/?/", "/a/foo/b/c.txt", "/", "/foo/b/c.txt", "/foo/c.txt"),
            (
                "\\/",
                "/tmp/foo.txt",
                "\\/",
                "\\/tmp/foo.txt",
                "\\/tmp\\/foo.txt",
            ),
            ("", "xxyy", "ww", "wwxxyy", "wwxwwxwwywwyww"),
            ("", "", "ww", "ww", "ww"),
            ("*", "ab", "r", "r", "r"),
            ("*", "a\nb", "r", "r\nb", "r\nr"),
            ("x*", "axxbx", "-", "a-", "a-"),
            ("o", "foo", "[$0]", "f[$0]o", "f[o][o]"),
            (
                "o",
                "foo",
                "${0}$$-$1-${x}-$",
                "f${0}$$-$1-${x}-$o",
                "fo$---$o$---$",
            ),
            ("o", "foo", "${-$", "f${-$o", "f${-$${-$"),
            ("o", "foo", "${0", "f${0o", "f${0${0"),
            ("x?", "axbx", "_", "a_x", "a_x"),
        ];
        for (pattern, value, replacement, first, all) in cases {
            assert_eq!(
                replace_first(pattern, value, replacement).unwrap(),
                first,
                "first {pattern:?} {value:?} {replacement:?}"
            );
            assert_eq!(
                replace_all(pattern, value, replacement).unwrap(),
                all,
                "all {pattern:?} {value:?} {replacement:?}"
            );
        }
    }

    #[test]
    fn long_inputs_stay_fast() {
        let value = "a".repeat(20_000);
        let pattern = "*a".repeat(50) + "b";
        assert_eq!(trim_prefix(&pattern, &value, false).unwrap(), value);
        assert_eq!(replace_all(&pattern, &value, "x").unwrap(), value);
    }
}
