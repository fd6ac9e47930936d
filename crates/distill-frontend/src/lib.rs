//! distill's Dockerfile frontend, first stage of the pipeline: Dockerfile text → [`Dockerfile`]
//! syntax tree with a [`Pos`] on every keyword, flag and argument.
//!
//! [`parse`] reads parser directives, joins continuation lines, collects heredocs and splits
//! each instruction the way BuildKit's `dockerfile:1` parser does; [`dump`] prints the tree in
//! the format of BuildKit's `Node.Dump()` so the two can be compared byte for byte. The parser
//! never expands variables, never decides what a flag means and never rejects an unknown
//! instruction: that is the instruction layer's work. Problems are reported as
//! [`Diagnostic`]s naming file, line and column.
//!
//! A [`Source`] is read from text ([`Source::new`]) or from the file's bytes
//! ([`Source::from_bytes`]: bytes that are not UTF-8 are kept, as BuildKit keeps them, and
//! [`value_bytes`] gives them back from any value).
//!
//! Inside: `lines` (physical lines, joined-line positions) → `directives` → `split` (keyword,
//! flags, per-instruction argument splitting, with `json` for the exec form) → `heredoc`
//! (here-document openers) → `parser` (the loop tying them together) → `dump`. The Go
//! standard-library behaviour that shows in the output (quoting, Unicode classes, lowercasing)
//! and the carrying of non-UTF-8 bytes come from `distill-golang`.

mod diagnostic;
mod directives;
mod dump;
mod heredoc;
mod json;
mod lines;
mod parser;
mod split;
pub mod syntax;
#[cfg(test)]
mod tests;

pub use diagnostic::{Diagnostic, Source};
pub use distill_golang::rawbytes::value_bytes;
pub use syntax::{Directives, Dockerfile, Heredoc, Node, Pos, Word};

/// Parses a Dockerfile as BuildKit's parser does.
///
/// Fails, like BuildKit, on a file with no instructions, a repeated or invalid parser
/// directive, an unterminated heredoc, a JSON array holding something other than strings,
/// an ENV/LABEL without a value or mixing `k=v` and bare words, and a line longer than 65535
/// bytes. Empty continuation lines are accepted with a warning in [`Dockerfile::warnings`].
pub fn parse(source: &Source) -> Result<Dockerfile, Diagnostic> {
    parser::parse(source)
}

/// One line per top-level instruction, in the format of BuildKit's `Node.Dump()`.
pub fn dump(dockerfile: &Dockerfile) -> String {
    dump::dump(dockerfile)
}
