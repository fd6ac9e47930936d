//! Go strings that are not valid UTF-8 (a Latin-1 Dockerfile, stray bytes), carried in Rust
//! strings without losing a byte.
//!
//! A Go string is any sequence of bytes: BuildKit parses a Dockerfile's bytes, a byte that is not
//! part of valid UTF-8 stays in the instruction, and `strconv.Quote` prints it as `\xNN`. To keep
//! that, [`decode`] turns each such byte into one character of a private-use range that text
//! never uses (U+10FE80 + byte − 0x80, plane 16); [`value_bytes`] turns a string back into the
//! bytes. The other modules of this crate treat a stand-in as Go treats the byte it stands for
//! (`strconv::quote` writes `\xNN`, a decoder sees U+FFFD). Valid UTF-8 is never changed and this
//! module never allocates for it; only a file that itself holds those private-use characters
//! would be misread, and text does not use them.

use std::borrow::Cow;

/// The character standing for the invalid byte 0x80 (0x80..=0xFF follow on).
const BASE: u32 = 0x10_FE80;

/// `bytes` as text: valid UTF-8 as is, each other byte as its stand-in character.
pub fn decode(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let bytes = err.into_bytes();
            let mut text = String::with_capacity(bytes.len() + bytes.len() / 2);
            for chunk in bytes.utf8_chunks() {
                text.push_str(chunk.valid());
                for &byte in chunk.invalid() {
                    text.push(stand_in(byte));
                }
            }
            text
        }
    }
}

fn stand_in(byte: u8) -> char {
    char::from_u32(BASE + u32::from(byte) - 0x80).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The file byte `ch` stands for, when it is a stand-in character.
pub fn escaped_byte(ch: char) -> Option<u8> {
    let code = ch as u32;
    (BASE..BASE + 0x80)
        .contains(&code)
        .then(|| (code - BASE + 0x80) as u8)
}

/// At byte `pos` of `bytes` (UTF-8 of a string), the file byte a stand-in character there
/// stands for, and its encoded length (4). Lets byte-by-byte scans see one byte per stand-in.
pub fn escaped_byte_at(bytes: &[u8], pos: usize) -> Option<(u8, usize)> {
    match bytes.get(pos..pos + 4)? {
        [0xf4, 0x8f, third @ (0xba | 0xbb), fourth @ 0x80..=0xbf] => {
            Some((0x80 + ((third - 0xba) << 6) + (fourth - 0x80), 4))
        }
        _ => None,
    }
}

/// A string as the bytes BuildKit's byte-by-byte loops see: a stand-in counts as the one byte
/// it stands for again.
pub struct ByteUnits<'a> {
    /// One unit per byte of the string, except that a stand-in is the one byte it stands for.
    pub bytes: Cow<'a, [u8]>,
    /// Byte offset in the string of each unit, when stand-ins made them differ.
    offsets: Option<Vec<usize>>,
    len: usize,
}

impl<'a> ByteUnits<'a> {
    pub fn new(s: &'a str) -> ByteUnits<'a> {
        let raw = s.as_bytes();
        // Every stand-in's UTF-8 starts with 0xF4.
        if !raw.contains(&0xf4) {
            return ByteUnits {
                bytes: Cow::Borrowed(raw),
                offsets: None,
                len: raw.len(),
            };
        }
        let mut bytes = Vec::with_capacity(raw.len());
        let mut offsets = Vec::with_capacity(raw.len());
        let mut pos = 0;
        while pos < raw.len() {
            let (unit, width) = escaped_byte_at(raw, pos).unwrap_or((raw[pos], 1));
            bytes.push(unit);
            offsets.push(pos);
            pos += width;
        }
        ByteUnits {
            bytes: Cow::Owned(bytes),
            offsets: Some(offsets),
            len: raw.len(),
        }
    }

    /// The string offset of unit `index` (the string's length past the last unit).
    pub fn offset(&self, index: usize) -> usize {
        match &self.offsets {
            None => index.min(self.len),
            Some(offsets) => offsets.get(index).copied().unwrap_or(self.len),
        }
    }
}

/// `s[at..]` as Go's byte slicing gives it, even when `at` falls inside a character: the
/// leading bytes of that character become stand-ins.
pub fn tail_from(s: &str, at: usize) -> Cow<'_, str> {
    let at = at.min(s.len());
    if s.is_char_boundary(at) {
        return Cow::Borrowed(&s[at..]);
    }
    let end = (at..=s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    let mut tail: String = s.as_bytes()[at..end].iter().map(|&b| stand_in(b)).collect();
    tail.push_str(&s[end..]);
    Cow::Owned(tail)
}

/// `s[..at]` as Go's byte slicing gives it, even when `at` falls inside a character: the
/// trailing bytes of that character become stand-ins.
pub fn head_to(s: &str, at: usize) -> Cow<'_, str> {
    let at = at.min(s.len());
    if s.is_char_boundary(at) {
        return Cow::Borrowed(&s[..at]);
    }
    let start = (0..at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    let mut head = s[..start].to_string();
    head.extend(s.as_bytes()[start..at].iter().map(|&b| stand_in(b)));
    Cow::Owned(head)
}

/// Go's view of a character it decoded from the file: a stand-in is an invalid byte, which
/// Go's decoders read as U+FFFD.
pub fn as_go_rune(ch: char) -> char {
    if escaped_byte(ch).is_some() {
        char::REPLACEMENT_CHARACTER
    } else {
        ch
    }
}

/// The bytes of a string made by [`decode`] (or a value taken from it): stand-in characters
/// become the bytes they stand for.
pub fn value_bytes(value: &str) -> Cow<'_, [u8]> {
    if !value.chars().any(|ch| escaped_byte(ch).is_some()) {
        return Cow::Borrowed(value.as_bytes());
    }
    let mut bytes = Vec::with_capacity(value.len());
    for ch in value.chars() {
        match escaped_byte(ch) {
            Some(byte) => bytes.push(byte),
            None => bytes.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Cow::Owned(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_invalid_byte() {
        let mut bytes = b"FROM a\nLABEL x=".to_vec();
        bytes.extend(0x80..=0xffu8);
        bytes.extend_from_slice("é日\n".as_bytes());
        let text = decode(bytes.clone());
        assert_eq!(value_bytes(&text).as_ref(), bytes.as_slice());
        assert!(text.ends_with("é日\n"));
        for byte in 0x80..=0xffu8 {
            let ch = stand_in(byte);
            assert_eq!(escaped_byte(ch), Some(byte));
            let mut buf = [0; 4];
            let encoded = ch.encode_utf8(&mut buf).as_bytes();
            assert_eq!(escaped_byte_at(encoded, 0), Some((byte, 4)));
        }
    }

    #[test]
    fn byte_units_count_a_stand_in_once() {
        let text = decode(b"a\xa0b\xc3".to_vec());
        let units = ByteUnits::new(&text);
        assert_eq!(units.bytes.as_ref(), b"a\xa0b\xc3");
        assert_eq!(units.offset(2), 5);
        assert_eq!(units.offset(4), text.len());
        let plain = ByteUnits::new("abc");
        assert_eq!((plain.bytes.as_ref(), plain.offset(3)), (&b"abc"[..], 3));
    }

    #[test]
    fn slicing_inside_a_character_keeps_the_bytes() {
        let s = "a\u{4800}b";
        assert_eq!(value_bytes(&head_to(s, 3)).as_ref(), b"a\xe4\xa0");
        assert_eq!(value_bytes(&tail_from(s, 3)).as_ref(), b"\x80b");
        assert!(matches!(tail_from(s, 4), Cow::Borrowed("b")));
        assert!(matches!(head_to(s, 1), Cow::Borrowed("a")));
    }

    #[test]
    fn valid_text_is_untouched() {
        let text = decode("ENV a=é\u{10fe7f}\u{10ff00}".as_bytes().to_vec());
        assert_eq!(text, "ENV a=é\u{10fe7f}\u{10ff00}");
        assert!(matches!(value_bytes("plain"), Cow::Borrowed(_)));
        assert_eq!(escaped_byte('\u{10fe7f}'), None);
        assert_eq!(escaped_byte('\u{10ff00}'), None);
        assert_eq!(escaped_byte_at("é".as_bytes(), 0), None);
    }
}
