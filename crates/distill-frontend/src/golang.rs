//! The pieces of Go's standard library whose exact behaviour shows through BuildKit's parser
//! output: `strconv.Quote` (every string in `Node.Dump()`), `unicode.IsSpace`, `IsLetter`,
//! `IsDigit`, `IsPrint` and `strings.ToLower`.
//!
//! Rust's own helpers answer slightly different questions (`char::is_alphabetic` is the
//! `Alphabetic` property, `to_lowercase` is the full case mapping), so each Go function is
//! written here against the Unicode General Category, as Go defines it. This module never
//! allocates more than the string it returns.

use unicode_general_category::{get_general_category, GeneralCategory as Gc};

use crate::rawbytes;

/// Go's `unicode.IsSpace`: the `White_Space` property, which is exactly what
/// `char::is_whitespace` tests (tab, LF, VT, FF, CR, space, NEL, NBSP, U+1680, U+2000–U+200A,
/// U+2028, U+2029, U+202F, U+205F, U+3000).
pub(crate) fn is_space(ch: char) -> bool {
    ch.is_whitespace()
}

/// Go's `unicode.IsSpace(rune(b))` applied to a single byte, as BuildKit does in the loops that
/// walk a line byte by byte: the byte is read as a Latin-1 code point, so besides ASCII
/// whitespace the UTF-8 continuation bytes 0x85 (NEL) and 0xA0 (NBSP) count as spaces.
pub(crate) fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xa0)
}

/// Go's `unicode.IsLetter`: General Category L.
pub(crate) fn is_letter(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_alphabetic();
    }
    matches!(
        get_general_category(ch),
        Gc::UppercaseLetter
            | Gc::LowercaseLetter
            | Gc::TitlecaseLetter
            | Gc::ModifierLetter
            | Gc::OtherLetter
    )
}

/// Go's `unicode.IsDigit`: General Category Nd.
pub(crate) fn is_digit(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_digit();
    }
    get_general_category(ch) == Gc::DecimalNumber
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
fn is_print(ch: char) -> bool {
    if ch.is_ascii() {
        return (' '..='~').contains(&ch);
    }
    !matches!(
        get_general_category(ch),
        Gc::SpaceSeparator
            | Gc::LineSeparator
            | Gc::ParagraphSeparator
            | Gc::Control
            | Gc::Format
            | Gc::Surrogate
            | Gc::PrivateUse
            | Gc::Unassigned
    )
}

/// Go's `strings.ToLower`: each rune through its simple lowercase mapping (one rune to one
/// rune, so `İ` becomes `i`, and a final `Σ` stays `σ`, unlike Rust's `str::to_lowercase`);
/// a byte that is not UTF-8 comes out as U+FFFD, as Go writes it.
pub(crate) fn to_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|ch| simple_lowercase(rawbytes::as_go_rune(ch)))
        .collect()
}

fn simple_lowercase(ch: char) -> char {
    let mut lower = ch.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(single), None) => single,
        // Only U+0130 has a multi-rune full mapping; its simple mapping is `i`.
        _ if ch == '\u{130}' => 'i',
        _ => ch,
    }
}

/// Appends `s` quoted exactly as Go's `strconv.Quote` does.
pub(crate) fn quote_into(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// The inside of Go's quoted form of `s`.
fn push_escaped(out: &mut String, s: &str) {
    for ch in s.chars() {
        if let Some(byte) = rawbytes::escaped_byte(ch) {
            out.push_str(&format!("\\x{byte:02x}"));
            continue;
        }
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ if is_print(ch) => out.push(ch),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            _ => {
                let code = ch as u32;
                let escaped = if code < 0x20 || code == 0x7f {
                    format!("\\x{code:02x}")
                } else if code < 0x10000 {
                    format!("\\u{code:04x}")
                } else {
                    format!("\\U{code:08x}")
                };
                out.push_str(&escaped);
            }
        }
    }
}

/// `s` quoted as Go's `strconv.Quote` (and `%q`) does.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::new();
    quote_into(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_like_go() {
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("\u{7}\u{8}\u{c}\n\r\t\u{b}"), r#""\a\b\f\n\r\t\v""#);
        assert_eq!(quote("\u{0}\u{1b}\u{7f}"), r#""\x00\x1b\x7f""#);
        assert_eq!(quote("\u{85}\u{a0}"), r#""\u0085\u00a0""#);
        assert_eq!(quote("\u{200b}\u{feff}\u{e000}"), r#""\u200b\ufeff\ue000""#);
        assert_eq!(quote("\u{f0000}"), r#""\U000f0000""#);
        assert_eq!(quote("é日本語 ✓ 😀"), "\"é日本語 ✓ 😀\"");
        // Combining marks are printable in Go.
        assert_eq!(quote("e\u{301}"), "\"e\u{301}\"");
        assert_eq!(quote("\u{2028}\u{3000}"), r#""\u2028\u3000""#);
        // Bytes that are not UTF-8 (carried as stand-ins) are written as Go writes them.
        assert_eq!(
            quote(&crate::rawbytes::decode(b"a\xe9\xff".to_vec())),
            r#""a\xe9\xff""#
        );
    }

    #[test]
    fn lowercase_is_the_simple_mapping() {
        assert_eq!(to_lower("RUN"), "run");
        assert_eq!(to_lower("ENTRYPOİNT"), "entrypoint");
        assert_eq!(to_lower("ΣΣ"), "σσ");
        assert_eq!(to_lower("HEALTHCHEC\u{212a}"), "healthcheck");
    }

    #[test]
    fn byte_spaces_follow_latin1() {
        assert!(is_space_byte(0xa0));
        assert!(is_space_byte(0x85));
        assert!(!is_space_byte(0xc3));
        assert!(is_space_byte(0x0b));
    }

    #[test]
    fn letters_and_digits_by_category() {
        assert!(is_letter('é'));
        assert!(!is_letter('²'));
        assert!(is_digit('٣'));
        assert!(!is_digit('²'));
        assert!(is_space('\u{85}'));
    }
}
