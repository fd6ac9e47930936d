//! Physical lines as BuildKit's scanner sees them, and the map from an instruction's joined
//! (logical) line back to file positions.
//!
//! A physical line ends after `\n` (a lone `\r` is ordinary text; `\r\n` is removed with the
//! rest of the trailing `\r`/`\n` run). Lines longer than Go's `bufio.Scanner` limit stop the
//! scan, as they stop BuildKit's. This module never copies the text of a line.

use std::cell::Cell;

use distill_golang::rawbytes;

use crate::syntax::Pos;

/// Go's `bufio.MaxScanTokenSize`: a line with its `\n` must fit in this many bytes.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// The physical lines of a Dockerfile, each with its line ending.
pub(crate) struct PhysicalLines<'a> {
    text: &'a str,
    next: usize,
    number: u32,
    /// Set when a line too long for BuildKit's scanner ended the scan.
    pub(crate) too_long: Option<u32>,
}

impl<'a> PhysicalLines<'a> {
    pub(crate) fn new(text: &'a str) -> PhysicalLines<'a> {
        PhysicalLines {
            text,
            next: 0,
            number: 0,
            too_long: None,
        }
    }
}

impl<'a> Iterator for PhysicalLines<'a> {
    /// The line with its ending, and its 1-based number.
    type Item = (&'a str, u32);

    fn next(&mut self) -> Option<(&'a str, u32)> {
        if self.next >= self.text.len() || self.too_long.is_some() {
            return None;
        }
        let rest = &self.text[self.next..];
        let (line, fits) = match rest.find('\n') {
            Some(i) => (&rest[..=i], i < MAX_LINE_BYTES),
            // Without a newline the scanner needs one spare byte to see the end of the input.
            None => (rest, rest.len() < MAX_LINE_BYTES),
        };
        self.number += 1;
        if !fits {
            self.too_long = Some(self.number);
            return None;
        }
        self.next += line.len();
        Some((line, self.number))
    }
}

/// Go's `bytes.TrimRight(line, "\r\n")`.
pub(crate) fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Where a piece of a logical line came from.
#[derive(Clone, Copy, Debug)]
struct Segment {
    /// Byte offset in the logical line where the piece starts.
    offset: usize,
    /// Physical line and column of the piece's first character.
    line: u32,
    column: u32,
    /// When the piece is ASCII, columns are byte offsets and need no counting.
    ascii: bool,
}

/// An instruction's text with its continuation lines joined, and where each byte came from.
#[derive(Debug, Default)]
pub(crate) struct LogicalLine {
    pub(crate) text: String,
    segments: Vec<Segment>,
    /// The last non-ASCII position computed (segment index, byte offset, column), so that
    /// positions asked in increasing order cost no recount from the segment start.
    last: Cell<Option<(usize, usize, u32)>>,
}

impl LogicalLine {
    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.segments.clear();
        self.last.set(None);
    }

    /// Appends `piece`, whose first character is at `line`:`column` in the file.
    pub(crate) fn push(&mut self, piece: &str, line: u32, column: u32) {
        let (piece, column) = self.rejoin_split_character(piece, column);
        self.segments.push(Segment {
            offset: self.text.len(),
            line,
            column,
            ascii: piece.is_ascii(),
        });
        self.text.push_str(piece);
    }

    /// BuildKit joins lines as bytes, so bytes that are not UTF-8 at the end of one line and
    /// the start of the next can make one valid character together. Rebuilds that character
    /// from the stand-ins on both sides; returns the rest of `piece` and its column.
    fn rejoin_split_character<'p>(&mut self, piece: &'p str, column: u32) -> (&'p str, u32) {
        let ends_escaped = self
            .text
            .chars()
            .next_back()
            .is_some_and(|ch| rawbytes::escaped_byte(ch).is_some());
        let head: usize = piece
            .chars()
            .take(3)
            .take_while(|&ch| rawbytes::escaped_byte(ch).is_some())
            .map(char::len_utf8)
            .sum();
        if !ends_escaped || head == 0 {
            return (piece, column);
        }
        let tail_start = self
            .text
            .char_indices()
            .rev()
            .take(3)
            .take_while(|&(_, ch)| rawbytes::escaped_byte(ch).is_some())
            .last()
            .map_or(self.text.len(), |(i, _)| i);
        let mut bytes = rawbytes::value_bytes(&self.text[tail_start..]).into_owned();
        bytes.extend_from_slice(&rawbytes::value_bytes(&piece[..head]));
        let joined = rawbytes::decode(bytes);
        self.text.truncate(tail_start);
        self.text.push_str(&joined);
        let head_chars = piece[..head].chars().count() as u32;
        (&piece[head..], column.saturating_add(head_chars))
    }

    /// The file position of byte `offset` of the logical line (the end of the line maps to
    /// the column after its last character).
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let index = self
            .segments
            .partition_point(|s| s.offset <= offset)
            .saturating_sub(1);
        let Some(segment) = self.segments.get(index) else {
            return Pos::new(1, 1);
        };
        let start = segment.offset.min(self.text.len());
        let mut end = offset.clamp(start, self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let advance = if segment.ascii {
            end - start
        } else {
            self.text[start..end].chars().count()
        };
        Pos::new(segment.line, segment.column.saturating_add(advance as u32))
    }
}

/// Byte offset of `inner` inside `outer`, where `inner` is a slice of `outer` (clamped to
/// `outer`'s length otherwise).
pub(crate) fn offset_in(outer: &str, inner: &str) -> usize {
    (inner.as_ptr() as usize)
        .saturating_sub(outer.as_ptr() as usize)
        .min(outer.len())
}

/// Number of characters in `s`, as a column advance.
pub(crate) fn char_width(s: &str) -> u32 {
    if s.is_ascii() {
        s.len() as u32
    } else {
        s.chars().count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_endings() {
        let lines: Vec<_> = PhysicalLines::new("a\r\nb\rc\n\nd").collect();
        assert_eq!(
            lines,
            vec![("a\r\n", 1), ("b\rc\n", 2), ("\n", 3), ("d", 4)]
        );
        assert_eq!(trim_newline("x\r\r\n"), "x");
        assert_eq!(trim_newline("b\rc\n"), "b\rc");
    }

    #[test]
    fn overlong_line_stops_the_scan() {
        let long = format!("a\n{}\nb\n", "x".repeat(MAX_LINE_BYTES));
        let mut lines = PhysicalLines::new(&long);
        assert_eq!(lines.next(), Some(("a\n", 1)));
        assert_eq!(lines.next(), None);
        assert_eq!(lines.too_long, Some(2));

        let fits = format!("{}\n", "x".repeat(MAX_LINE_BYTES - 1));
        let mut lines = PhysicalLines::new(&fits);
        assert!(lines.next().is_some());
        assert_eq!(lines.too_long, None);

        let last = "x".repeat(MAX_LINE_BYTES);
        let mut lines = PhysicalLines::new(&last);
        assert_eq!(lines.next(), None);
        assert_eq!(lines.too_long, Some(1));
    }

    #[test]
    fn bytes_split_by_a_continuation_make_one_character() {
        let text = rawbytes::decode(b"RUN \xe4\xa0|\x80x".to_vec());
        let (first, second) = text.split_once('|').unwrap();
        let mut logical = LogicalLine::default();
        logical.push(first, 1, 1);
        logical.push(second, 2, 1);
        assert_eq!(logical.text, "RUN \u{4800}x");
        assert_eq!(logical.pos(logical.text.len() - 1), Pos::new(2, 2));
    }

    #[test]
    fn positions_map_back_through_segments() {
        let mut logical = LogicalLine::default();
        logical.push("RUN a ", 3, 5);
        logical.push("  é b", 4, 1);
        assert_eq!(logical.pos(0), Pos::new(3, 5));
        assert_eq!(logical.pos(4), Pos::new(3, 9));
        assert_eq!(logical.pos(6), Pos::new(4, 1));
        // "  é b": 'b' is the 5th character.
        assert_eq!(logical.pos(6 + 5), Pos::new(4, 5));
        // Out of order after the cache moved on.
        assert_eq!(logical.pos(6 + 2), Pos::new(4, 3));
        assert_eq!(logical.pos(6 + 4), Pos::new(4, 4));
        assert_eq!(logical.pos(6 + 1), Pos::new(4, 2));
    }
}
