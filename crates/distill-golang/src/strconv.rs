//! Go's `strconv`: `Quote`, with which BuildKit writes strings into its parser dump, its error
//! messages and (through `%q`) its history, and the number and boolean syntaxes it reads flag
//! values with (`Atoi`/`ParseInt`, `ParseBool`), so distill accepts exactly what BuildKit
//! accepts.

use std::fmt::Write;

use crate::{rawbytes, unicode};

/// Go's `strconv.Quote` (the `%q` verb): `s` between double quotes, printable characters as
/// they are, `\"`, `\\`, `\n`-style escapes for the seven C control characters, `\xNN` for
/// other ASCII controls and for bytes that are not UTF-8 ([`rawbytes`] stand-ins), `\uNNNN` or
/// `\UNNNNNNNN` for other characters that [`unicode::is_print`] rejects.
pub fn quote(s: &str) -> String {
    let mut out = String::new();
    quote_into(&mut out, s);
    out
}

/// Appends `s` quoted exactly as Go's `strconv.Quote` does (see [`quote`]).
pub fn quote_into(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        if let Some(byte) = rawbytes::escaped_byte(ch) {
            push_hex(out, "\\x", u32::from(byte), 2);
            continue;
        }
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ if unicode::is_print(ch) => out.push(ch),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            _ if ch < ' ' || ch == '\u{7f}' => push_hex(out, "\\x", u32::from(ch), 2),
            _ if u32::from(ch) < 0x1_0000 => push_hex(out, "\\u", u32::from(ch), 4),
            _ => push_hex(out, "\\U", u32::from(ch), 8),
        }
    }
    out.push('"');
}

fn push_hex(out: &mut String, prefix: &str, code: u32, width: usize) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{prefix}{code:0width$x}");
}

/// Go's `strconv.ParseInt(text, 10, 64)`, which is also `strconv.Atoi` on 64-bit platforms:
/// an optional `+` or `-` and at least one ASCII digit, nothing else (no spaces, no `_`), within
/// the range of an `i64`.
pub fn parse_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`, nothing else.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_like_go() {
        let cases = [
            ("", r#""""#),
            ("abc", r#""abc""#),
            (r#"a"b\c"#, r#""a\"b\\c""#),
            ("tab\there\nnl", r#""tab\there\nnl""#),
            ("\u{7}\u{8}\u{c}\n\r\t\u{b}", r#""\a\b\f\n\r\t\v""#),
            ("\u{0}\u{1b}\u{7f}", r#""\x00\x1b\x7f""#),
            ("\u{85}\u{a0}", r#""\u0085\u00a0""#),
            ("\u{200b}\u{feff}\u{e000}", r#""\u200b\ufeff\ue000""#),
            ("\u{2028}\u{3000}", r#""\u2028\u3000""#),
            ("\u{f0000}", r#""\U000f0000""#),
            ("é日本語 ✓ 😀", "\"é日本語 ✓ 😀\""),
            ("한국어 ok", "\"한국어 ok\""),
            // Combining marks are printable in Go.
            ("e\u{301}", "\"e\u{301}\""),
            ("\u{fffd}", "\"\u{fffd}\""),
        ];
        for (input, expected) in cases {
            assert_eq!(quote(input), expected, "quote({input:?})");
        }
    }

    #[test]
    fn quote_writes_bytes_that_are_not_utf8_as_go_does() {
        let text = rawbytes::decode(b"a\xe9\xff\x80b".to_vec());
        assert_eq!(quote(&text), r#""a\xe9\xff\x80b""#);
    }

    #[test]
    fn quote_into_appends() {
        let mut out = String::from("(cmd ");
        quote_into(&mut out, "a b");
        out.push(')');
        assert_eq!(out, r#"(cmd "a b")"#);
    }

    #[test]
    fn integers_as_parse_int() {
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("+7"), Some(7));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("007"), Some(7));
        assert_eq!(parse_int("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        for rejected in [
            "",
            "-",
            "+",
            "1e3",
            " 1",
            "1 ",
            "1_000",
            "0x10",
            "--1",
            "+-1",
            "٣",
            "9223372036854775808",
            "99999999999999999999",
        ] {
            assert_eq!(parse_int(rejected), None, "parse_int({rejected:?})");
        }
    }

    #[test]
    fn booleans_as_parse_bool() {
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(yes), Some(true), "{yes:?}");
        }
        for no in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(no), Some(false), "{no:?}");
        }
        for neither in ["", "yes", "no", "tRUE", "on", " true", "2"] {
            assert_eq!(parse_bool(neither), None, "{neither:?}");
        }
    }
}
