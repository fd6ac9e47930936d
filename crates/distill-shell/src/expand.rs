//! The scanner that walks one word: quotes, escapes, `$name`, `${name<op>word}` and BuildKit's
//! word splitting.
//!
//! The control flow follows lex.go step for step, because its quirks are observable and the
//! frontend must agree with BuildKit on every one of them: which error wins when several apply,
//! that an error met at the end of the input inside `${...}` becomes "missing '}'", that `chs`
//! names the end of input as U+FFFD, and that the buffer of the word being split is shared by
//! every nesting level (see [`Expander::pending`]). Never panics: recursion follows the nesting of
//! `${...}` words, which is capped at [`MAX_NESTING`] levels (BuildKit, on Go's growable stacks,
//! has no cap; no real Dockerfile comes near it).

use std::collections::BTreeSet;

use distill_golang::unicode;

use crate::{pattern, Env, Lexer};

/// How deeply `${V<op>word}` may nest inside its own words; a few kilobytes of stack each.
pub(crate) const MAX_NESTING: usize = 100;

/// What one expansion produced; see [`crate::Expansion`].
pub(crate) struct Outcome {
    pub(crate) word: String,
    pub(crate) words: Vec<String>,
    pub(crate) matched: BTreeSet<String>,
    pub(crate) unmatched: BTreeSet<String>,
}

pub(crate) struct Expander<'a> {
    src: &'a str,
    /// Byte offset of the next character in `src`.
    pos: usize,
    lexer: &'a Lexer,
    env: &'a dyn Env,
    /// Keep escape characters in the output (set inside `#`, `%` and `/` patterns).
    raw_escapes: bool,
    /// Whether anyone wants the split words; when not, the splitting work is skipped.
    split: bool,
    /// Whether anyone wants the names looked up (`matched`, `unmatched`).
    capture: bool,
    /// How many `${...}` words enclose the cursor.
    depth: usize,
    /// The word being accumulated for splitting. BuildKit keeps one such buffer per expansion and
    /// every nested `${...}` clears it, so a `${V<op>...}` drops the part of the split word
    /// written before it (`a${V:-b}` splits to `b`). Kept so that `process_words` agrees.
    pending: String,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// The words finished so far by one level of [`Expander::stop_on`].
#[derive(Default)]
struct Words {
    done: Vec<String>,
    in_word: bool,
}

impl<'a> Expander<'a> {
    pub(crate) fn new(
        lexer: &'a Lexer,
        src: &'a str,
        env: &'a dyn Env,
        split: bool,
        capture: bool,
    ) -> Self {
        Expander {
            src,
            // Go's text/scanner skips a byte order mark opening its input.
            pos: if src.starts_with('\u{feff}') { 3 } else { 0 },
            lexer,
            env,
            raw_escapes: lexer.raw_escapes,
            split,
            capture,
            depth: 0,
            pending: String::new(),
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    /// Expands the whole input. The error is the bare reason, without the word.
    pub(crate) fn run(mut self) -> Result<Outcome, String> {
        let raw_escapes = self.raw_escapes;
        let (word, words) = self.stop_on(None, raw_escapes)?;
        Ok(Outcome {
            word,
            words,
            matched: self.matched,
            unmatched: self.unmatched,
        })
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    /// Expands up to `stop` (consumed) or, when `stop` is `None`, to the end of the input.
    /// Returns the expanded text and its split words.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let outer_raw_escapes = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.stop_on_inner(stop);
        self.raw_escapes = outer_raw_escapes;
        result
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::with_capacity(self.src.len() - self.pos);
        let mut words = Words::default();
        self.pending.clear();
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, self.finish(words)));
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    self.split_str(&mut words, &value);
                    result.push_str(&value);
                }
                '\'' | '"' if quotes => {
                    let quoted = if ch == '\'' {
                        self.single_quoted()?
                    } else {
                        self.double_quoted()?
                    };
                    self.raw_str(&mut words, &quoted);
                    result.push_str(&quoted);
                }
                _ => {
                    self.next();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            self.raw_char(&mut words, ch);
                            result.push(ch);
                        }
                        // An escape at the very end escapes nothing and disappears.
                        let Some(escaped) = self.next() else { break };
                        self.raw_char(&mut words, escaped);
                        result.push(escaped);
                    } else {
                        self.split_char(&mut words, ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, self.finish(words)))
    }

    /// `'...'`: everything literal up to the next `'`; nothing escapes inside.
    fn single_quoted(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    /// `"..."`: `$` expands; the escape character escapes only `"`, `$` and itself and is kept
    /// before anything else; an escape just before the end of input is dropped (and the quote is
    /// then unterminated).
    fn double_quoted(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                ch = next;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// `$name`, `${name}` and `${name<op>...}`, with the cursor on the `$`.
    fn dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let op = self.next();
        // How BuildKit spells the operator in messages; Go writes end of input as U+FFFD.
        let mut op_text = String::from(op.unwrap_or(char::REPLACEMENT_CHARACTER));
        match op {
            Some('}') => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let null_is_unset = op == Some(':');
                let modifier = if null_is_unset {
                    let modifier = self.next();
                    op_text.push(modifier.unwrap_or(char::REPLACEMENT_CHARACTER));
                    modifier
                } else {
                    op
                };
                let is_pattern = matches!(modifier, Some('#' | '%'));
                if null_is_unset && is_pattern {
                    return Err(unsupported(&op_text));
                }
                let word = self.operand('}', is_pattern, "syntax error: missing '}'")?;
                let value = self.lookup(&name);
                if self.lexer.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{op_text}{word}}}"));
                }
                let set = value.is_some();
                let value = value.unwrap_or_default();
                let null = !set || (null_is_unset && value.is_empty());
                match modifier {
                    Some('-') => Ok(if null { word } else { value }),
                    Some('+') => Ok(if null { String::new() } else { word }),
                    Some('?') if null => {
                        let message = if !word.is_empty() {
                            word
                        } else if !set {
                            "is not allowed to be unset".into()
                        } else {
                            "is not allowed to be empty".into()
                        };
                        Err(format!("{name}: {message}"))
                    }
                    Some('?') => Ok(value),
                    Some(kind @ ('#' | '%')) => {
                        // A doubled operator asks for the longest match.
                        let (pattern, greedy) = match word.strip_prefix(kind) {
                            Some(rest) => (rest, true),
                            None => (word.as_str(), false),
                        };
                        if kind == '%' {
                            pattern::trim_suffix(pattern, &value, greedy)
                        } else {
                            pattern::trim_prefix(pattern, &value, greedy)
                        }
                    }
                    _ => Err(unsupported(&op_text)),
                }
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = self.operand('/', true, "syntax error: missing '/' in ${}")?;
                let replacement = self.operand('}', true, "syntax error: missing '}'")?;
                let value = self.lookup(&name);
                if self.lexer.skip_unset_env && value.is_none() {
                    // BuildKit rebuilds `${V//p/r}` with a single slash too.
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let value = value.unwrap_or_default();
                if all {
                    pattern::replace_all(&pattern, &value, &replacement)
                } else {
                    pattern::replace_first(&pattern, &value, &replacement)
                }
            }
            _ => Err(unsupported(&op_text)),
        }
    }

    /// The word inside `${...}` up to `stop`. Any error met once the input is exhausted is
    /// reported as `at_end` instead, as BuildKit does.
    fn operand(&mut self, stop: char, raw_escapes: bool, at_end: &str) -> Result<String, String> {
        if self.depth == MAX_NESTING {
            return Err(format!(
                "substitutions nested more than {MAX_NESTING} levels deep"
            ));
        }
        self.depth += 1;
        let word = self.stop_on(Some(stop), raw_escapes);
        self.depth -= 1;
        match word {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(at_end.into()),
            Err(err) => Err(err),
        }
    }

    /// A variable name after `$` or `${`: a run of digits (positional), one special parameter
    /// character, or letters, digits and `_`. Empty when none of these follows.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && unicode::is_digit(ch) {
                while let Some(digit) = self.peek().filter(|&ch| unicode::is_digit(ch)) {
                    self.next();
                    name.push(digit);
                }
                return name;
            }
            if name.is_empty() && is_special_parameter(ch) {
                self.next();
                name.push(ch);
                return name;
            }
            if !(unicode::is_letter(ch) || unicode::is_digit(ch) || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        let value = self.env.get(name);
        if self.capture {
            let seen = if value.is_some() {
                &mut self.matched
            } else {
                &mut self.unmatched
            };
            if !seen.contains(name) {
                seen.insert(name.to_string());
            }
        }
        value.map(str::to_string)
    }

    // Word splitting. Text from `$` expansions and unescaped characters splits on white space;
    // quoted text and escaped characters never do.

    fn split_char(&mut self, words: &mut Words, ch: char) {
        if !self.split {
            return;
        }
        if !unicode::is_space(ch) {
            self.raw_char(words, ch);
        } else if words.in_word && !self.pending.is_empty() {
            words.done.push(std::mem::take(&mut self.pending));
            words.in_word = false;
        }
    }

    fn split_str(&mut self, words: &mut Words, text: &str) {
        if self.split {
            for ch in text.chars() {
                self.split_char(words, ch);
            }
        }
    }

    fn raw_char(&mut self, words: &mut Words, ch: char) {
        if self.split {
            self.pending.push(ch);
            words.in_word = true;
        }
    }

    fn raw_str(&mut self, words: &mut Words, text: &str) {
        if self.split {
            self.pending.push_str(text);
            words.in_word = true;
        }
    }

    fn finish(&mut self, mut words: Words) -> Vec<String> {
        if !self.pending.is_empty() {
            words.done.push(std::mem::take(&mut self.pending));
        }
        words.done
    }
}

/// POSIX special parameters, which BuildKit reads as one-character names.
fn is_special_parameter(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

fn unsupported(op_text: &str) -> String {
    format!("unsupported modifier ({op_text}) in substitution")
}
