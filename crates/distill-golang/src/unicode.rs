//! Go's `unicode` character classes, which decide where BuildKit's lexer ends a variable name
//! (`IsLetter`, `IsDigit`), where it splits words (`IsSpace`) and what `strconv.Quote` writes
//! as is (`IsPrint`).
//!
//! Go defines them by Unicode General Category, not by the derived properties Rust's `char`
//! methods test (`char::is_alphabetic` is `Alphabetic`, so it takes U+0345, a mark;
//! `char::is_numeric` is every `N*`, so it takes `²`). The tables are Unicode 15.0's, as in
//! Go 1.21 onwards. A stand-in for a non-UTF-8 byte (see [`rawbytes`](crate::rawbytes)) is a
//! private-use character, which is none of these classes, as U+FFFD (what Go decodes such a
//! byte to) is none of the first three.

use unicode_general_category::{get_general_category, GeneralCategory as Gc};

/// Go's `unicode.IsSpace`: the `White_Space` property, which is exactly what
/// `char::is_whitespace` tests (tab, LF, VT, FF, CR, space, NEL, NBSP, U+1680, U+2000–U+200A,
/// U+2028, U+2029, U+202F, U+205F, U+3000).
pub fn is_space(ch: char) -> bool {
    ch.is_whitespace()
}

/// Go's `unicode.IsSpace(rune(b))` applied to a single byte, as BuildKit does in the loops that
/// walk a line byte by byte: the byte is read as a Latin-1 code point, so besides ASCII
/// whitespace the UTF-8 continuation bytes 0x85 (NEL) and 0xA0 (NBSP) count as spaces.
pub fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xa0)
}

/// Go's `unicode.IsLetter`: General Category L (Lu, Ll, Lt, Lm, Lo).
pub fn is_letter(ch: char) -> bool {
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
pub fn is_digit(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_digit();
    }
    get_general_category(ch) == Gc::DecimalNumber
}

/// Go's `unicode.IsPrint` (and `strconv.IsPrint`, the same set): letters, marks, numbers,
/// punctuation, symbols and the ASCII space, but no other space.
pub fn is_print(ch: char) -> bool {
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
            ('é', true, false),
            ('한', true, false),
            ('ª', true, false),
            ('µ', true, false),
            ('×', false, false),
            ('٣', false, true),           // ARABIC-INDIC DIGIT THREE: Nd
            ('²', false, false),          // SUPERSCRIPT TWO: No
            ('Ⅻ', false, false),          // ROMAN NUMERAL TWELVE: Nl
            ('\u{0345}', false, false),   // COMBINING YPOGEGRAMMENI: Mn, yet Alphabetic
            ('\u{10fe80}', false, false), // stand-in for the byte 0x80
        ];
        for &(ch, letter, digit) in cases {
            assert_eq!(is_letter(ch), letter, "is_letter({ch:?})");
            assert_eq!(is_digit(ch), digit, "is_digit({ch:?})");
        }
    }

    #[test]
    fn spaces_are_white_space() {
        for ch in [
            '\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{85}', '\u{a0}', '\u{3000}',
        ] {
            assert!(is_space(ch), "is_space({ch:?})");
        }
        for ch in ['\u{200b}', '\u{feff}', 'x', '\u{0}'] {
            assert!(!is_space(ch), "is_space({ch:?})");
        }
    }

    #[test]
    fn byte_spaces_follow_latin1() {
        for b in [b'\t', b'\n', 0x0b, 0x0c, b'\r', b' ', 0x85, 0xa0] {
            assert!(is_space_byte(b), "is_space_byte({b:#x})");
        }
        for b in [0x00, 0x1c, 0x80, 0xc3, 0xff, b'x'] {
            assert!(!is_space_byte(b), "is_space_byte({b:#x})");
        }
        // The byte rule agrees with the rune rule on every Latin-1 code point.
        for b in 0..=0xffu8 {
            assert_eq!(is_space_byte(b), is_space(char::from(b)), "{b:#x}");
        }
    }

    #[test]
    fn printable_by_category() {
        for ch in [' ', '~', 'é', '日', '\u{301}', '😀', '\u{fffd}'] {
            assert!(is_print(ch), "is_print({ch:?})");
        }
        let not_printable = [
            '\u{0}',
            '\u{7f}',
            '\u{85}',
            '\u{a0}',
            '\u{200b}',
            '\u{2028}',
            '\u{3000}',
            '\u{feff}',
            '\u{e000}',
            '\u{10fe80}',
            '\u{378}',
        ];
        for ch in not_printable {
            assert!(!is_print(ch), "is_print({ch:?})");
        }
    }
}
