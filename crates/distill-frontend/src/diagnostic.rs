//! Errors and warnings a user can act on: each names the file, line and column, shows the
//! offending line with a caret under the column, says what was expected, and may end with a hint.
//!
//! Every layer of the frontend (parser, expansion, instructions, plan) reports through
//! [`Diagnostic`], so the CLI prints them all the same way.

use std::fmt;

use crate::syntax::Pos;

/// The text of a Dockerfile and the name to show for it in messages.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    /// A Dockerfile read as bytes, as BuildKit reads it: valid UTF-8 is kept as is, and each
    /// byte that is not part of valid UTF-8 is kept too (as a private-use stand-in character,
    /// see [`value_bytes`](crate::value_bytes)), so that nothing is lost or replaced.
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Source {
        Source {
            name: name.into(),
            text: distill_golang::rawbytes::decode(bytes),
        }
    }

    /// The physical line `line` (1-based), without its line ending; empty past the end.
    pub fn line(&self, line: u32) -> &str {
        let index = line.saturating_sub(1) as usize;
        self.text
            .split('\n')
            .nth(index)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or("")
    }
}

/// A message about a place in a Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file's name as the user gave it.
    pub file: String,
    /// Where the problem is; `None` for whole-file problems (e.g. an empty Dockerfile).
    pub pos: Option<Pos>,
    /// The physical line at `pos`, shown under the message.
    pub line_text: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `pos` in `source`.
    pub fn at(source: &Source, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: source.name.clone(),
            pos: Some(pos),
            line_text: source.line(pos.line).to_string(),
            message: message.into(),
            hint: None,
        }
    }

    /// A diagnostic about the whole of `source`.
    pub fn file(source: &Source, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: source.name.clone(),
            pos: None,
            line_text: String::new(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        match self.pos {
            Some(pos) => {
                let number = pos.line.to_string();
                let gutter = " ".repeat(number.len());
                write!(f, "\n{gutter}--> {}:{}:{}", self.file, pos.line, pos.column)?;
                write!(f, "\n{gutter} |")?;
                write!(f, "\n{number} | {}", self.line_text)?;
                // Keep tabs under tabs so the caret lines up with the column.
                let lead: String = self
                    .line_text
                    .chars()
                    .take(pos.column.saturating_sub(1) as usize)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                write!(f, "\n{gutter} | {lead}^")?;
            }
            None => write!(f, "\n --> {}", self.file)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_file_line_column_and_caret() {
        let source = Source::new("Dockerfile", "FROM alpine\nFORM x\n");
        let d = Diagnostic::at(&source, Pos::new(2, 1), "unknown instruction: FORM")
            .with_hint("did you mean FROM?");
        assert_eq!(
            d.to_string(),
            "unknown instruction: FORM\n --> Dockerfile:2:1\n  |\n2 | FORM x\n  | ^\nhint: did you mean FROM?"
        );
    }
}
