//! One instruction line into keyword, flags and arguments, then the arguments into BuildKit's
//! `Next` chain with the splitter BuildKit's dispatch table assigns to the keyword.
//!
//! | keyword | splitter |
//! |---|---|
//! | ADD, COPY, VOLUME | JSON array, else whitespace-separated words |
//! | CMD, ENTRYPOINT, RUN, SHELL | JSON array, else the whole text (shell form) |
//! | ENV, LABEL | `k=v ...` or legacy `k v` into key/value/separator triples |
//! | ARG | words (`name` or `name=value`), quotes kept |
//! | EXPOSE, FROM | whitespace-separated words |
//! | HEALTHCHECK | the type word, then as CMD |
//! | MAINTAINER, STOPSIGNAL, USER, WORKDIR | the whole text |
//! | ONBUILD | the wrapped instruction, split the same way |
//! | anything else | one empty argument (BuildKit's parser accepts unknown keywords) |
//!
//! Nothing here validates flags, expands variables or removes quotes from arguments: that is
//! the instruction layer's job. Every piece keeps the byte offset where it starts in the line
//! so that it gets a file position.

use std::borrow::Cow;

use distill_golang::{rawbytes, strconv, strings, unicode};

use crate::json::{self, JsonArray};
use crate::lines::offset_in;

/// A piece of the line: its text and the byte offset where it starts in the logical line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) value: String,
    pub(crate) offset: usize,
}

/// An instruction split as BuildKit's `newNodeFromLine` splits it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Split {
    /// The keyword, lowercased as Go's `strings.ToLower` does.
    pub(crate) keyword: String,
    pub(crate) keyword_offset: usize,
    pub(crate) flags: Vec<Piece>,
    pub(crate) args: Vec<Piece>,
    pub(crate) json: bool,
    pub(crate) child: Option<Box<Split>>,
    /// The text this was split from (BuildKit's `Original`).
    pub(crate) original: String,
}

/// Why a line cannot be split; `offset` is where the problem starts in the logical line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SplitError {
    pub(crate) message: String,
    pub(crate) expected: &'static str,
    pub(crate) offset: usize,
}

/// The characters of Go's `[\t\v\f\r ]+` (BuildKit's `reWhitespace`).
fn is_ascii_blank(ch: char) -> bool {
    matches!(ch, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits `line`, which starts at byte `base` of the logical line.
pub(crate) fn split_line(line: &str, base: usize, escape: char) -> Result<Split, SplitError> {
    let trimmed = line.trim();
    let trimmed_base = base + offset_in(line, trimmed);
    let (keyword, after) = match trimmed.find(is_ascii_blank) {
        Some(i) => {
            let after = trimmed[i..].trim_start_matches(is_ascii_blank);
            (&trimmed[..i], Some(after))
        }
        None => (trimmed, None),
    };
    let mut flags = Vec::new();
    let rest: Cow<'_, str>;
    let mut args_text = "";
    let mut args_base = trimmed_base + trimmed.len();
    if let Some(after) = after {
        let after_base = trimmed_base + offset_in(trimmed, after);
        let (rest_start, found) = extract_flags(after, escape);
        flags = found
            .into_iter()
            .map(|(value, start)| Piece {
                value,
                offset: after_base + start,
            })
            .collect();
        // The flag scan reads bytes and may stop inside a character, as BuildKit's does.
        rest = rawbytes::tail_from(after, rest_start);
        args_text = rest.trim();
        args_base = after_base + rest_start + offset_in(&rest, args_text);
    }
    let mut split = Split {
        keyword: strings::to_lower(keyword),
        keyword_offset: trimmed_base,
        flags,
        args: Vec::new(),
        json: false,
        child: None,
        original: line.to_string(),
    };
    let args = Text {
        s: args_text,
        base: args_base,
    };
    match split.keyword.as_str() {
        "add" | "copy" | "volume" => (split.args, split.json) = maybe_json_to_list(args)?,
        "cmd" | "entrypoint" | "run" | "shell" => (split.args, split.json) = maybe_json(args)?,
        "env" => split.args = name_val(args, "ENV", escape)?,
        "label" => split.args = name_val(args, "LABEL", escape)?,
        "arg" => split.args = split_words(args, escape),
        "expose" | "from" => split.args = whitespace_delimited(args),
        "healthcheck" => (split.args, split.json) = health_config(args)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => split.args = whole(args),
        "onbuild" => {
            if !args.s.is_empty() {
                split.child = Some(Box::new(split_line(args.s, args.base, escape)?));
            }
        }
        _ => {
            split.args = vec![Piece {
                value: String::new(),
                offset: args.base,
            }]
        }
    }
    Ok(split)
}

/// Argument text and where it starts in the logical line.
#[derive(Clone, Copy)]
struct Text<'a> {
    s: &'a str,
    base: usize,
}

impl<'a> Text<'a> {
    fn piece(&self, part: &str) -> Piece {
        Piece {
            value: part.to_string(),
            offset: self.base + offset_in(self.s, part),
        }
    }
}

/// BuildKit's `extractBuilderFlags`: the leading `--flag[=value]` words of `line`, and the
/// byte offset where the arguments start. Quotes are removed and the escape character
/// escapes the next byte. Like BuildKit it reads the line byte by byte, each byte taken as the
/// code point of the same value, so non-ASCII text in a flag comes out as Latin-1 mojibake and
/// the UTF-8 bytes 0x85 and 0xA0 end a word.
fn extract_flags(line: &str, escape: char) -> (usize, Vec<(String, usize)>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(u8),
    }
    let units = rawbytes::ByteUnits::new(line);
    let bytes = units.bytes.as_ref();
    let escape = escape as u8;
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut word_start = 0;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= bytes.len() {
        let at_end = pos == bytes.len();
        let ch = if at_end { 0 } else { bytes[pos] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if unicode::is_space_byte(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || bytes.get(pos + 1) != Some(&b'-') {
                return (units.offset(pos), flags);
            }
            phase = Phase::Word;
            word_start = pos;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                flags.push((word, units.offset(word_start)));
            }
            break;
        }
        match phase {
            Phase::Word => {
                if unicode::is_space_byte(ch) {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (units.offset(pos), flags);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push((std::mem::take(&mut word), units.offset(word_start)));
                    }
                    word.clear();
                    blank_ok = false;
                    pos += 1;
                    continue;
                }
                if ch == b'\'' || ch == b'"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    pos += 1;
                    continue;
                }
                let mut ch = ch;
                if ch == escape {
                    if pos + 1 == bytes.len() {
                        pos += 1;
                        continue;
                    }
                    pos += 1;
                    ch = bytes[pos];
                }
                word.push(char::from(ch));
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                    pos += 1;
                    continue;
                }
                let mut ch = ch;
                if ch == escape {
                    if pos + 1 == bytes.len() {
                        phase = Phase::Word;
                        pos += 1;
                        continue;
                    }
                    pos += 1;
                    ch = bytes[pos];
                }
                word.push(char::from(ch));
            }
            Phase::Spaces => {}
        }
        pos += 1;
    }
    (line.len(), flags)
}

/// BuildKit's `parseWords`: words separated by Unicode whitespace, where quotes group words
/// and the escape character keeps the next character in the word; quotes and escapes stay in
/// the words. An escape character at the very end is dropped. Go decodes the text rune by
/// rune here, so a byte that is not UTF-8 becomes U+FFFD in the word.
fn split_words(text: Text<'_>, escape: char) -> Vec<Piece> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let s = text.s;
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut word_start = 0;
    let mut blank_ok = false;
    let mut chars = s.char_indices().peekable();
    while let Some((pos, ch)) = chars.next() {
        if phase == Phase::Spaces {
            if unicode::is_space(ch) {
                continue;
            }
            phase = Phase::Word;
            word_start = pos;
        }
        let at_last =
            |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| chars.peek().is_none();
        match phase {
            Phase::Word => {
                if unicode::is_space(ch) {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(Piece {
                            value: std::mem::take(&mut word),
                            offset: text.base + word_start,
                        });
                    }
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    if at_last(&mut chars) {
                        continue;
                    }
                    word.push(rawbytes::as_go_rune(ch));
                    if let Some((_, next)) = chars.next() {
                        word.push(rawbytes::as_go_rune(next));
                    }
                    continue;
                }
                word.push(rawbytes::as_go_rune(ch));
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                }
                if ch == escape && quote != '\'' {
                    if at_last(&mut chars) {
                        phase = Phase::Word;
                        continue;
                    }
                    word.push(rawbytes::as_go_rune(ch));
                    if let Some((_, next)) = chars.next() {
                        word.push(rawbytes::as_go_rune(next));
                    }
                    continue;
                }
                word.push(rawbytes::as_go_rune(ch));
            }
            Phase::Spaces => {}
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(Piece {
            value: word,
            offset: text.base + word_start,
        });
    }
    words
}

/// ENV and LABEL: `key=value ...` gives `key, value, "="` per word; a first word without `=`
/// selects the legacy `key value` form, `key, rest-of-line, ""`.
fn name_val(text: Text<'_>, keyword: &str, escape: char) -> Result<Vec<Piece>, SplitError> {
    let words = split_words(text, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.value.contains('=') {
        let Some(i) = text.s.find(is_ascii_blank) else {
            return Err(SplitError {
                message: format!("{keyword} must have two arguments"),
                expected: "expected a name and a value (`NAME VALUE` or `NAME=VALUE ...`)",
                offset: text.base,
            });
        };
        let value = text.s[i..].trim_start_matches(is_ascii_blank);
        return Ok(vec![
            text.piece(&text.s[..i]),
            text.piece(value),
            Piece {
                value: String::new(),
                offset: text.base + text.s.len(),
            },
        ]);
    }
    let mut triples = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some(eq) = word.value.find('=') else {
            return Err(SplitError {
                message: format!(
                    "Syntax error - can't find = in {}. Must be of the form: name=value",
                    strconv::quote(&word.value)
                ),
                expected: "expected every word to be NAME=VALUE once the first one is",
                offset: word.offset,
            });
        };
        triples.push(Piece {
            value: word.value[..eq].to_string(),
            offset: word.offset,
        });
        triples.push(Piece {
            value: word.value[eq + 1..].to_string(),
            offset: word.offset + eq + 1,
        });
        triples.push(Piece {
            value: "=".to_string(),
            offset: word.offset + eq,
        });
    }
    Ok(triples)
}

/// EXPOSE, FROM and the word form of ADD/COPY/VOLUME: split on runs of ASCII blanks.
fn whitespace_delimited(text: Text<'_>) -> Vec<Piece> {
    if text.s.is_empty() {
        return Vec::new();
    }
    text.s
        .split(is_ascii_blank)
        .filter(|part| !part.is_empty())
        .map(|part| text.piece(part))
        .collect()
}

/// The whole argument text as one piece (nothing when empty).
fn whole(text: Text<'_>) -> Vec<Piece> {
    if text.s.is_empty() {
        Vec::new()
    } else {
        vec![text.piece(text.s)]
    }
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// The JSON array at the start of `text`, if it is one.
fn json_array(text: Text<'_>) -> Result<Option<Vec<Piece>>, SplitError> {
    let trimmed = text.s.trim_start();
    if !trimmed.starts_with('[') {
        return Ok(None);
    }
    let base = text.base + offset_in(text.s, trimmed);
    match json::parse_array(trimmed) {
        JsonArray::Strings(items) => Ok(Some(
            items
                .into_iter()
                .map(|(value, offset)| Piece {
                    value,
                    offset: base + offset,
                })
                .collect(),
        )),
        JsonArray::NotStrings(element) => Err(SplitError {
            message: NOT_STRINGS.to_string(),
            expected: "expected a JSON array of strings such as [\"executable\", \"arg\"]",
            offset: base + element,
        }),
        JsonArray::Invalid => Ok(None),
    }
}

/// CMD, ENTRYPOINT, RUN, SHELL: exec form, else the whole text.
fn maybe_json(text: Text<'_>) -> Result<(Vec<Piece>, bool), SplitError> {
    if text.s.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match json_array(text)? {
        Some(items) => (items, true),
        None => (whole(text), false),
    })
}

/// ADD, COPY, VOLUME: exec form, else whitespace-separated words.
fn maybe_json_to_list(text: Text<'_>) -> Result<(Vec<Piece>, bool), SplitError> {
    Ok(match json_array(text)? {
        Some(items) => (items, true),
        None => (whitespace_delimited(text), false),
    })
}

/// HEALTHCHECK: the first word (found byte by byte, as BuildKit does, so a 0x85 or 0xA0
/// continuation byte ends it inside a character), then CMD's splitting.
fn health_config(text: Text<'_>) -> Result<(Vec<Piece>, bool), SplitError> {
    let units = rawbytes::ByteUnits::new(text.s);
    let bytes = units.bytes.as_ref();
    let sep_unit = bytes
        .iter()
        .position(|&b| unicode::is_space_byte(b))
        .unwrap_or(bytes.len());
    if sep_unit == 0 {
        return Ok((Vec::new(), false));
    }
    let mut next_unit = sep_unit;
    while next_unit < bytes.len() && unicode::is_space_byte(bytes[next_unit]) {
        next_unit += 1;
    }
    // Either cut may fall inside a character, as in BuildKit.
    let sep = units.offset(sep_unit);
    let next = units.offset(next_unit);
    let mut args = vec![Piece {
        value: rawbytes::head_to(text.s, sep).into_owned(),
        offset: text.base,
    }];
    let command_text = rawbytes::tail_from(text.s, next);
    let (command, json) = maybe_json(Text {
        s: &command_text,
        base: text.base + next,
    })?;
    args.extend(command);
    Ok((args, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pieces: &[Piece]) -> Vec<&str> {
        pieces.iter().map(|p| p.value.as_str()).collect()
    }

    #[test]
    fn flags_are_the_leading_double_dash_words() {
        let (rest, flags) = extract_flags("--from=build --chown=\"a b\" src dst", '\\');
        assert_eq!(
            flags,
            vec![("--from=build".into(), 0), ("--chown=a b".into(), 13)]
        );
        assert_eq!(rest, 27);
        let (rest, flags) = extract_flags("--link -- --not-a-flag x", '\\');
        assert_eq!(flags, vec![("--link".into(), 0)]);
        assert_eq!(rest, 9);
        let (rest, flags) = extract_flags("-x --y", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest, 0);
        let (_, flags) = extract_flags("--a=\\\"b\\ c", '\\');
        assert_eq!(flags, vec![("--a=\"b c".into(), 0)]);
        // With a backtick escape, backslashes are ordinary.
        let (_, flags) = extract_flags("--a=b\\c`d", '`');
        assert_eq!(flags, vec![("--a=b\\cd".into(), 0)]);
        // Bytes are read one by one.
        let (_, flags) = extract_flags("--a=é", '\\');
        assert_eq!(flags, vec![("--a=\u{c3}\u{a9}".into(), 0)]);
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        let text = Text {
            s: r#"a="b c" d\ e 'f\' "" g\"#,
            base: 0,
        };
        assert_eq!(
            values(&split_words(text, '\\')),
            vec![r#"a="b c""#, r#"d\ e"#, r#"'f\'"#, r#""""#, "g"]
        );
    }
}
