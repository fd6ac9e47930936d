//! The exec form's JSON array, read as BuildKit reads it with Go's `encoding/json` decoder.
//!
//! The decoder reads exactly one JSON value and ignores whatever follows it (`["a"] b` is the
//! array `["a"]`). Any syntax error means "not JSON" and the instruction falls back to its
//! shell or word form; a well-formed array with a non-string element is an error of its own.
//! Strings decode as Go decodes them: a lone or mismatched UTF-16 surrogate becomes U+FFFD.
//! A number beyond float64's range (`1e999`) makes Go's decoder fail, hence "not JSON" too.
//! The reader is iterative, so deep nesting cannot overflow the stack.

use distill_golang::rawbytes;

/// What the text at the start of an exec-form argument turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonArray {
    /// A JSON array of strings: each decoded string and the byte offset of its opening quote.
    Strings(Vec<(String, usize)>),
    /// A well-formed JSON array holding something other than a string: the byte offset of
    /// the first such element.
    NotStrings(usize),
    /// Not a JSON array at all (BuildKit then uses the shell or word form).
    Invalid,
}

/// Go's `encoding/json` maximum nesting depth.
const MAX_DEPTH: usize = 10_000;

/// Reads the JSON array at the start of `text` (which must start with `[`).
pub(crate) fn parse_array(text: &str) -> JsonArray {
    match scan(text.as_bytes()) {
        Some(elements) => {
            let mut strings = Vec::with_capacity(elements.len());
            for element in elements {
                match element {
                    Element::String { start, end } => {
                        strings.push((decode_string(&text[start + 1..end - 1]), start));
                    }
                    Element::Other { start } => return JsonArray::NotStrings(start),
                }
            }
            JsonArray::Strings(strings)
        }
        None => JsonArray::Invalid,
    }
}

/// A top-level element: a string (byte range including its quotes) or anything else.
enum Element {
    String { start: usize, end: usize },
    Other { start: usize },
}

fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    /// A number too large for a float64: Go's decoder fails on it after scanning.
    overflow: bool,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_json_space) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// A string starting at the cursor's `"`; `None` when malformed.
    fn string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    self.at += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => {
                            self.at += 1;
                            for _ in 0..4 {
                                if !self.peek()?.is_ascii_hexdigit() {
                                    return None;
                                }
                                self.at += 1;
                            }
                        }
                        _ => return None,
                    }
                }
                b if b < 0x20 => return None,
                _ => self.at += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Option<()> {
        let start = self.at;
        self.number_syntax()?;
        let text = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or("0");
        if text.parse::<f64>().is_ok_and(f64::is_infinite) {
            self.overflow = true;
        }
        Some(())
    }

    fn number_syntax(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Some(())
        } else {
            None
        }
    }
}

/// Scans one JSON value at the start of `bytes`, which must be an array; returns its
/// top-level elements, or `None` on any syntax error (including running out of input).
fn scan(bytes: &[u8]) -> Option<Vec<Element>> {
    let mut cursor = Cursor {
        bytes,
        at: 0,
        overflow: false,
    };
    if cursor.peek()? != b'[' {
        return None;
    }
    let mut elements = Vec::new();
    // Open containers: `[` or `{`.
    let mut stack: Vec<u8> = Vec::new();
    'value: loop {
        cursor.skip_space();
        let top_level = stack.len() == 1;
        let start = cursor.at;
        match cursor.peek()? {
            open @ (b'[' | b'{') => {
                if top_level {
                    elements.push(Element::Other { start });
                }
                stack.push(open);
                if stack.len() > MAX_DEPTH {
                    return None;
                }
                cursor.at += 1;
                cursor.skip_space();
                let close = if open == b'[' { b']' } else { b'}' };
                if cursor.peek()? == close {
                    cursor.at += 1;
                    stack.pop();
                } else if open == b'{' {
                    object_key(&mut cursor)?;
                    continue 'value;
                } else {
                    continue 'value;
                }
            }
            b'"' => {
                cursor.string()?;
                if top_level {
                    elements.push(Element::String {
                        start,
                        end: cursor.at,
                    });
                }
            }
            b'-' | b'0'..=b'9' => {
                cursor.number()?;
                if top_level {
                    elements.push(Element::Other { start });
                }
            }
            b't' | b'f' | b'n' => {
                let word: &[u8] = match cursor.peek()? {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                cursor.literal(word)?;
                if top_level {
                    elements.push(Element::Other { start });
                }
            }
            _ => return None,
        }
        // After a value: close containers or move to the next element.
        loop {
            let Some(&open) = stack.last() else {
                return (!cursor.overflow).then_some(elements);
            };
            cursor.skip_space();
            match (open, cursor.peek()?) {
                (b'[', b',') => {
                    cursor.at += 1;
                    continue 'value;
                }
                (b'{', b',') => {
                    cursor.at += 1;
                    cursor.skip_space();
                    object_key(&mut cursor)?;
                    continue 'value;
                }
                (b'[', b']') | (b'{', b'}') => {
                    cursor.at += 1;
                    stack.pop();
                }
                _ => return None,
            }
        }
    }
}

/// `"key" :` inside an object.
fn object_key(cursor: &mut Cursor<'_>) -> Option<()> {
    cursor.string()?;
    cursor.skip_space();
    cursor.eat(b':')
}

/// Decodes the inside of a JSON string already checked by [`Cursor::string`].
fn decode_string(inner: &str) -> String {
    if !inner.contains('\\') {
        // Go's decoder writes U+FFFD for each byte that is not UTF-8.
        return inner.chars().map(rawbytes::as_go_rune).collect();
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(i) = rest.find('\\') {
        out.extend(rest[..i].chars().map(rawbytes::as_go_rune));
        rest = &rest[i..];
        let escape = rest.as_bytes().get(1).copied().unwrap_or(b'\\');
        let simple = match escape {
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            rest = &rest[2..];
            continue;
        }
        let Some(unit) = hex4(rest) else {
            // Unreachable after validation; keep the text rather than panic.
            out.push('\\');
            rest = &rest[1..];
            continue;
        };
        rest = &rest[6..];
        if (0xd800..0xe000).contains(&unit) {
            let pair = hex4(rest)
                .filter(|low| (0xd800..0xdc00).contains(&unit) && (0xdc00..0xe000).contains(low));
            match pair {
                Some(low) => {
                    let code = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    rest = &rest[6..];
                }
                None => out.push('\u{fffd}'),
            }
        } else {
            out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
        }
    }
    out.extend(rest.chars().map(rawbytes::as_go_rune));
    out
}

/// The code unit of a `\uXXXX` escape at the start of `s`.
fn hex4(s: &str) -> Option<u32> {
    let hex = s.strip_prefix("\\u")?.get(..4)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(text: &str) -> Vec<String> {
        match parse_array(text) {
            JsonArray::Strings(items) => items.into_iter().map(|(s, _)| s).collect(),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn arrays_of_strings() {
        assert_eq!(strings(r#"["a", "b c"]"#), vec!["a", "b c"]);
        assert_eq!(strings("[]"), Vec::<String>::new());
        assert_eq!(strings("[ \"a\" ,\t\"b\"\r\n]"), vec!["a", "b"]);
        assert_eq!(strings(r#"["a"] trailing text"#), vec!["a"]);
        assert_eq!(strings(r#"["a"]]"#), vec!["a"]);
        match parse_array(r#"[ "x", "y"]"#) {
            JsonArray::Strings(items) => assert_eq!(items[1].1, 7),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn escapes_decode_like_go() {
        assert_eq!(
            strings(r#"["\"\\\/\b\f\n\r\t", "\u00e9\u65e5"]"#),
            vec!["\"\\/\u{8}\u{c}\n\r\t", "é日"]
        );
        assert_eq!(strings(r#"["\ud83d\ude00"]"#), vec!["😀"]);
        assert_eq!(strings(r#"["\ud83d"]"#), vec!["\u{fffd}"]);
        assert_eq!(strings(r#"["\ud83dx"]"#), vec!["\u{fffd}x"]);
        assert_eq!(strings(r#"["\ude00\ud83d"]"#), vec!["\u{fffd}\u{fffd}"]);
        assert_eq!(strings(r#"["\ud83d\u0041"]"#), vec!["\u{fffd}A"]);
        assert_eq!(strings(r#"["\u0000"]"#), vec!["\u{0}"]);
    }

    #[test]
    fn non_strings_and_invalid() {
        assert_eq!(parse_array(r#"["a", 1]"#), JsonArray::NotStrings(6));
        assert_eq!(parse_array(r#"[["a"]]"#), JsonArray::NotStrings(1));
        assert_eq!(
            parse_array(r#"[{"k": [1, true]}, null]"#),
            JsonArray::NotStrings(1)
        );
        assert_eq!(parse_array(r#"[-0.5e+3, false]"#), JsonArray::NotStrings(1));
        assert_eq!(parse_array(r#"["a", 1e999]"#), JsonArray::Invalid);
        assert_eq!(parse_array(r#"["a", [1e-999]]"#), JsonArray::NotStrings(6));
        for invalid in [
            r#"["a""#,
            r#"["a",]"#,
            r#"['a']"#,
            r#"[a]"#,
            "[\"a\tb\"]",
            r#"["\x"]"#,
            r#"["\u12"]"#,
            r#"[01]"#,
            r#"[1.]"#,
            r#"[tru]"#,
            r#"[1, "a"#,
            r#"[{"a" 1}]"#,
            r#"[{1: 2}]"#,
            "[\u{b}]",
            "[",
        ] {
            assert_eq!(parse_array(invalid), JsonArray::Invalid, "{invalid}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        assert_eq!(parse_array(&deep), JsonArray::Invalid);
        let ok = format!("[{}{}]", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse_array(&ok), JsonArray::NotStrings(1));
    }
}
