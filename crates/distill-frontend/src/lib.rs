//! distill's Dockerfile frontend, first stage of the pipeline: Dockerfile text → [`Dockerfile`]
//! syntax tree with a [`Pos`] on every keyword, flag and argument.
//!
//! The parser reads parser directives, joins continuation lines, collects heredocs and splits
//! each instruction the way BuildKit's `dockerfile:1` parser does. It never expands variables
//! and never decides what a flag means: that is the instruction layer's work.
//! Problems are reported as [`Diagnostic`]s naming file, line and column.

mod diagnostic;
pub mod syntax;

pub use diagnostic::{Diagnostic, Source};
pub use syntax::{Directives, Dockerfile, Heredoc, Node, Pos, Word};

/// Parses a Dockerfile. (Being written: the parser helper replaces this.)
pub fn parse(source: &Source) -> Result<Dockerfile, Diagnostic> {
    Err(Diagnostic::file(source, "the parser is being written"))
}

/// One line per top-level instruction, in the format of BuildKit's `Node.Dump()`.
pub fn dump(dockerfile: &Dockerfile) -> String {
    let _ = dockerfile;
    String::new()
}
