//! Finding the here-documents an instruction opens (`<<EOF`, `<<-EOF`, `3<<"EOF"` ...), the
//! way BuildKit's parser finds them.
//!
//! BuildKit splits the whole instruction line into shell words with its shell lexer (quotes
//! and backslashes kept, `$VAR` left as written) and takes every word that is entirely
//! `[digits]<<[-]word` with no further `<`: so `"<<EOF"` (quoted), `<<<here-string` and
//! `a<<EOF` open nothing. The delimiter word is then lexed again with and without quote
//! removal; when the two differ in quote count the delimiter was quoted and the body is not
//! expanded. A line the lexer cannot split (an unclosed quote, a bad `${...}`) opens no
//! here-document at all.
//!
//! The lexer here is the subset of BuildKit's (`frontend/dockerfile/shell/lex.go`) that this
//! needs: an empty environment, unset variables kept as written, backslash as escape. It keeps
//! that lexer's quirks which change where words split, such as `${x:-...}` discarding the
//! start of the word it appears in. It never expands anything.

use distill_golang::{rawbytes, strconv, unicode};

/// A here-document opener found on an instruction line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Opener {
    pub(crate) name: String,
    pub(crate) expand: bool,
    pub(crate) chomp: bool,
    pub(crate) file_descriptor: Option<u32>,
    /// Byte offset of the opener's word in the line.
    pub(crate) offset: usize,
}

/// The here-documents opened on `line`, in order; `Err` holds BuildKit's message when a
/// delimiter word cannot be lexed.
pub(crate) fn openers(line: &str) -> Result<Vec<Opener>, String> {
    let words = Lexer::new(line, true, true).words().unwrap_or_default();
    let mut found = Vec::new();
    for (word, offset) in words {
        if let Some(opener) = opener_from_word(&word, offset)? {
            found.push(opener);
        }
    }
    Ok(found)
}

/// Matches `^(\d*)<<(-?)([^<]*)$` and reads the delimiter.
fn opener_from_word(word: &str, offset: usize) -> Result<Option<Opener>, String> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, after),
    };
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let file_descriptor = (digits > 0).then(|| {
        // Go's ParseUint saturates on overflow and the error is ignored.
        word[..digits].parse::<u32>().unwrap_or(u32::MAX)
    });
    let failed = |err: String| format!("failed to process {}: {err}", strconv::quote(rest));
    let words = Lexer::new(rest, false, false).words().map_err(failed)?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw_words = Lexer::new(rest, true, false).words().map_err(failed)?;
    if raw_words.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let name = words.into_iter().next().map(|(w, _)| w).unwrap_or_default();
    let raw = raw_words
        .into_iter()
        .next()
        .map(|(w, _)| w)
        .unwrap_or_default();
    Ok(Some(Opener {
        expand: quotes(&name) == quotes(&raw),
        name,
        chomp,
        file_descriptor,
        offset,
    }))
}

const ESCAPE: char = '\\';

/// BuildKit's shell word lexer with an empty environment and `SkipUnsetEnv`.
struct Lexer<'a> {
    text: &'a str,
    at: usize,
    raw_quotes: bool,
    raw_escapes: bool,
    /// Shared by every nesting level, as in BuildKit (hence its quirks).
    buffer: String,
    buffer_start: usize,
}

/// The words of one nesting level (the characters live in the shared buffer).
#[derive(Default)]
struct Words {
    words: Vec<(String, usize)>,
    in_word: bool,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str, raw_quotes: bool, raw_escapes: bool) -> Lexer<'a> {
        // Go's text/scanner skips a byte-order mark at the very start.
        let at = if text.starts_with('\u{feff}') { 3 } else { 0 };
        Lexer {
            text,
            at,
            raw_quotes,
            raw_escapes,
            buffer: String::new(),
            buffer_start: 0,
        }
    }

    fn words(mut self) -> Result<Vec<(String, usize)>, String> {
        let raw_escapes = self.raw_escapes;
        self.process_until(None, raw_escapes)
            .map(|(_, words)| words)
    }

    /// The next character as Go's text/scanner reads it (a byte that is not UTF-8 is U+FFFD).
    fn peek(&self) -> Option<char> {
        self.text[self.at..]
            .chars()
            .next()
            .map(rawbytes::as_go_rune)
    }

    /// Moves past the next character.
    fn advance(&mut self) {
        if let Some(ch) = self.text[self.at..].chars().next() {
            self.at += ch.len_utf8();
        }
    }

    fn next_char(&mut self) -> Option<char> {
        let ch = self.text[self.at..].chars().next()?;
        self.advance();
        Some(rawbytes::as_go_rune(ch))
    }

    fn add_raw_char(&mut self, words: &mut Words, ch: char, offset: usize) {
        if self.buffer.is_empty() {
            self.buffer_start = offset;
        }
        self.buffer.push(ch);
        words.in_word = true;
    }

    fn add_char(&mut self, words: &mut Words, ch: char, offset: usize) {
        if unicode::is_space(ch) {
            if words.in_word && !self.buffer.is_empty() {
                words
                    .words
                    .push((std::mem::take(&mut self.buffer), self.buffer_start));
                words.in_word = false;
            }
        } else {
            self.add_raw_char(words, ch, offset);
        }
    }

    fn add_raw_string(&mut self, words: &mut Words, s: &str, offset: usize) {
        if self.buffer.is_empty() {
            self.buffer_start = offset;
        }
        self.buffer.push_str(s);
        words.in_word = true;
    }

    fn finish(&mut self, mut words: Words) -> Vec<(String, usize)> {
        if !self.buffer.is_empty() {
            words
                .words
                .push((std::mem::take(&mut self.buffer), self.buffer_start));
        }
        words.words
    }

    /// BuildKit's `processStopOn`: the text up to `stop` (or the end), and its words.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<(String, usize)>), String> {
        let mut result = String::new();
        self.buffer.clear();
        let mut words = Words::default();
        let saved_raw_escapes = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let outcome = loop {
            let Some(ch) = self.peek() else {
                break match stop {
                    Some(stop) => Err(format!(
                        "unexpected end of statement while looking for matching {stop}"
                    )),
                    None => Ok(()),
                };
            };
            let offset = self.at;
            if Some(ch) == stop {
                self.advance();
                break Ok(());
            }
            match ch {
                '$' => match self.process_dollar() {
                    Ok(value) => {
                        result.push_str(&value);
                        for c in value.chars() {
                            self.add_char(&mut words, c, offset);
                        }
                    }
                    Err(err) => break Err(err),
                },
                '\'' | '"' => {
                    let quoted = if ch == '\'' {
                        self.process_single_quote()
                    } else {
                        self.process_double_quote()
                    };
                    match quoted {
                        Ok(value) => {
                            result.push_str(&value);
                            self.add_raw_string(&mut words, &value, offset);
                        }
                        Err(err) => break Err(err),
                    }
                }
                _ => {
                    self.advance();
                    if ch == ESCAPE {
                        if self.raw_escapes {
                            self.add_raw_char(&mut words, ch, offset);
                            result.push(ch);
                        }
                        let escaped_at = self.at;
                        let Some(escaped) = self.next_char() else {
                            break match stop {
                                Some(stop) => Err(format!(
                                    "unexpected end of statement while looking for matching {stop}"
                                )),
                                None => Ok(()),
                            };
                        };
                        self.add_raw_char(&mut words, escaped, escaped_at);
                        result.push(escaped);
                    } else {
                        self.add_char(&mut words, ch, offset);
                        result.push(ch);
                    }
                }
            }
        };
        self.raw_escapes = saved_raw_escapes;
        outcome.map(|()| (result, self.finish(words)))
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next_char().unwrap_or('\'');
        if self.raw_quotes {
            result.push(open);
        }
        loop {
            match self.next_char() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    )
                }
                Some('\'') => {
                    if self.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next_char().unwrap_or('"');
        if self.raw_quotes {
            result.push(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    )
                }
                Some('"') => {
                    self.at += 1;
                    if self.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => result.push_str(&self.process_dollar()?),
                Some(_) => {
                    let mut ch = self.next_char().unwrap_or(ESCAPE);
                    if ch == ESCAPE {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some('"' | '$' | ESCAPE) => ch = self.next_char().unwrap_or(ESCAPE),
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// `$name`, `${name}`, `${name<modifier>word}`: with no variable set, BuildKit writes them
    /// back as they were (the word part lexed), or fails on a malformed one.
    fn process_dollar(&mut self) -> Result<String, String> {
        self.at += 1; // the `$`
        if self.peek() != Some('{') {
            let name = self.process_name();
            return Ok(format!("${name}"));
        }
        self.at += 1; // the `{`
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.process_name();
        let mut modifier = self.next_char();
        let mut shown = go_rune_string(modifier);
        let mut null_is_unset = false;
        match modifier {
            Some('}') => return Ok(format!("${{{name}}}")),
            Some(':') => {
                null_is_unset = true;
                modifier = self.next_char();
                shown.push_str(&go_rune_string(modifier));
            }
            Some('+' | '-' | '?' | '#' | '%') => {}
            Some('/') => return self.process_replacement(&name),
            _ => return Err(format!("unsupported modifier ({shown}) in substitution")),
        }
        let raw_escapes = matches!(modifier, Some('#' | '%'));
        if null_is_unset && raw_escapes {
            return Err(format!("unsupported modifier ({shown}) in substitution"));
        }
        match self.process_until(Some('}'), raw_escapes) {
            Ok((word, _)) => Ok(format!("${{{name}{shown}{word}}}")),
            Err(_) if self.peek().is_none() => Err("syntax error: missing '}'".to_string()),
            Err(err) => Err(err),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn process_replacement(&mut self, name: &str) -> Result<String, String> {
        if self.peek() == Some('/') {
            self.at += 1;
        }
        let pattern = match self.process_until(Some('/'), true) {
            Ok((pattern, _)) => pattern,
            Err(_) if self.peek().is_none() => {
                return Err("syntax error: missing '/' in ${}".to_string())
            }
            Err(err) => return Err(err),
        };
        let replacement = match self.process_until(Some('}'), true) {
            Ok((replacement, _)) => replacement,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".to_string()),
            Err(err) => return Err(err),
        };
        Ok(format!("${{{name}/{pattern}/{replacement}}}"))
    }

    /// A variable name: digits, one special parameter, or letters, digits and `_`.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && unicode::is_digit(ch) {
                while let Some(digit) = self.peek().filter(|&c| unicode::is_digit(c)) {
                    self.advance();
                    name.push(digit);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.advance();
                return ch.to_string();
            }
            if !unicode::is_letter(ch) && !unicode::is_digit(ch) && ch != '_' {
                break;
            }
            self.advance();
            name.push(ch);
        }
        name
    }
}

/// Go's `string(rune)`, where the end of input (-1) becomes U+FFFD.
fn go_rune_string(ch: Option<char>) -> String {
    ch.unwrap_or('\u{fffd}').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        Lexer::new(line, true, true)
            .words()
            .unwrap()
            .into_iter()
            .map(|(w, _)| w)
            .collect()
    }

    fn names(line: &str) -> Vec<(String, bool, bool, Option<u32>)> {
        openers(line)
            .unwrap()
            .into_iter()
            .map(|o| (o.name, o.expand, o.chomp, o.file_descriptor))
            .collect()
    }

    #[test]
    fn lexer_keeps_quotes_and_escapes_raw() {
        assert_eq!(
            words(r#"RUN a "b c" 'd e' f\ g"#),
            vec!["RUN", "a", "\"b c\"", "'d e'", "f\\ g"]
        );
        assert_eq!(
            words("RUN $HOME ${X} ${Y:-a}"),
            vec!["RUN", "$HOME", "${X}", "${Y:-a}"]
        );
        // Inside double quotes a raw backslash before an ordinary character is doubled.
        assert_eq!(words(r#""a\b""#), vec![r#""a\\b""#]);
        // `${x:-...}` resets the shared word buffer: the start of its word is lost.
        assert_eq!(words("pre${x:-y}post"), vec!["${x:-y}post"]);
        assert!(Lexer::new("echo \"open", true, true).words().is_err());
        assert!(Lexer::new("${x", true, true).words().is_err());
        assert!(Lexer::new("${x^^}", true, true).words().is_err());
        assert!(Lexer::new("${:x}", true, true).words().is_err());
    }

    #[test]
    fn openers_follow_buildkit() {
        assert_eq!(names("RUN <<EOF"), vec![("EOF".into(), true, false, None)]);
        assert_eq!(names("RUN <<-EOF"), vec![("EOF".into(), true, true, None)]);
        assert_eq!(
            names("RUN <<'EOF'"),
            vec![("EOF".into(), false, false, None)]
        );
        assert_eq!(
            names("RUN <<\"EOF\""),
            vec![("EOF".into(), false, false, None)]
        );
        assert_eq!(
            names("RUN 3<<EOF"),
            vec![("EOF".into(), true, false, Some(3))]
        );
        assert_eq!(
            names("COPY <<a <<-\"b\" /dst/"),
            vec![
                ("a".into(), true, false, None),
                ("b".into(), false, true, None)
            ]
        );
        assert_eq!(
            names("RUN cat <<EOF | sh"),
            vec![("EOF".into(), true, false, None)]
        );
        assert!(names("RUN echo \"<<EOF\"").is_empty());
        assert!(names("RUN cat <<<here").is_empty());
        assert!(names("RUN a<<EOF").is_empty());
        assert!(names("RUN <<").is_empty());
        assert!(names("RUN <<-").is_empty());
        // An unclosed quote anywhere on the line: no here-documents at all.
        assert!(names("RUN cat <<EOF \"oops").is_empty());
        // E\OF is unescaped to EOF without counting as quoted.
        assert_eq!(
            names("RUN <<E\\OF"),
            vec![("EOF".into(), true, false, None)]
        );
        assert_eq!(
            names("RUN <<E'O'F"),
            vec![("EOF".into(), false, false, None)]
        );
        assert_eq!(openers("RUN  <<EOF").unwrap()[0].offset, 5);
    }
}
