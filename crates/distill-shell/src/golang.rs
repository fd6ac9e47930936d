//! The few pieces of Go's standard library whose exact behaviour shows through BuildKit's lexer:
//! `unicode.IsLetter`/`IsDigit`/`IsSpace` (which decide where a variable name ends and where
//! words split) and `strconv.Quote` (which writes the word into error messages).
//!
//! Rust's `char::is_alphabetic`/`is_numeric` answer different questions (Unicode properties
//! `Alphabetic` and `N*`), so names are classified by General Category here, as Go does, from
//! Unicode 15.0 tables like Go's.

use std::fmt::Write;

use unicode_general_category::{get_general_category, GeneralCategory as Gc};

/// Go's `unicode.IsLetter`: General Category L (Lu, Ll, Lt, Lm, Lo).
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

/// Go's `unicode.IsDigit`: General Category Nd (so `٣` is a digit, `²` is not).
pub(crate) fn is_digit(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_digit();
    }
    get_general_category(ch) == Gc::DecimalNumber
}

/// Go's `unicode.IsSpace`: the Unicode `White_Space` property, which is what Rust's
/// `char::is_whitespace` tests too (tab, LF, VT, FF, CR, space, NEL, NBSP, U+1680, U+2000–U+200A,
/// U+2028, U+2029, U+202F, U+205F, U+3000).
pub(crate) fn is_space(ch: char) -> bool {
    ch.is_whitespace()
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
fn is_print(ch: char) -> bool {
    if ch == ' ' {
        return true;
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

/// Go's `strconv.Quote` (the `%q` verb) for valid UTF-8 text.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            _ if is_print(ch) => out.push(ch),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            _ if ch < ' ' || ch == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", ch as u32);
            }
            _ if (ch as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", ch as u32);
            }
            _ => {
                let _ = write!(out, "\\U{:08x}", ch as u32);
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_and_digits_follow_general_category() {
        let cases: &[(char, bool, bool)] = &[
            ('a', true, false),
            ('Z', true, false),
            ('_', false, false),
            ('5', false, true),
            ('한', true, false),
            ('ª', true, false),
            ('µ', true, false),
            ('×', false, false),
            ('٣', false, true),         // ARABIC-INDIC DIGIT THREE: Nd
            ('²', false, false),        // SUPERSCRIPT TWO: No
            ('Ⅻ', false, false),        // ROMAN NUMERAL TWELVE: Nl
            ('\u{0345}', false, false), // COMBINING YPOGEGRAMMENI: Mn, yet Alphabetic
        ];
        for &(ch, letter, digit) in cases {
            assert_eq!(is_letter(ch), letter, "is_letter({ch:?})");
            assert_eq!(is_digit(ch), digit, "is_digit({ch:?})");
        }
    }

    #[test]
    fn quote_matches_go() {
        let cases = [
            ("abc", r#""abc""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("tab\there\nnl", r#""tab\there\nnl""#),
            ("\x07\x08\x0c\r\x0b", r#""\a\b\f\r\v""#),
            ("\x00\x1b\x7f", r#""\x00\x1b\x7f""#),
            ("한국어 ok", "\"한국어 ok\""),
            ("\u{a0}\u{feff}\u{2028}", r#""\u00a0\ufeff\u2028""#),
            ("\u{e000}\u{f0000}", r#""\ue000\U000f0000""#),
            ("👽", "\"👽\""),
        ];
        for (input, expected) in cases {
            assert_eq!(quote(input), expected, "quote({input:?})");
        }
    }
}
