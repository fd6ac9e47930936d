//! Errors of this crate. A bad pattern names the ignore file, line and column and shows the line;
//! an I/O failure names the path and what was being done to it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A pattern that BuildKit would refuse, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// The ignore file's name as shown to the user.
    pub file: String,
    /// 1-based line of the pattern.
    pub line: u32,
    /// 1-based column (in characters) of the problem on that line.
    pub column: u32,
    /// The line as written, shown under the message.
    pub line_text: String,
    /// The pattern as cleaned by the reader (without its `!`).
    pub pattern: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid pattern `{}`: {}", self.pattern, self.message)?;
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        write!(
            f,
            "\n{gutter}--> {}:{}:{}",
            self.file, self.line, self.column
        )?;
        write!(f, "\n{gutter} |")?;
        write!(f, "\n{number} | {}", self.line_text)?;
        // Keep tabs under tabs so the caret lines up with the column.
        let lead: String = self
            .line_text
            .chars()
            .take(self.column.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "\n{gutter} | {lead}^")?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PatternError {}

/// Everything that can go wrong reading an ignore file or walking a context.
#[derive(Debug)]
pub enum Error {
    /// A pattern of the ignore file is malformed.
    Pattern(Box<PatternError>),
    /// The ignore file is not UTF-8; `line` is the first line holding a bad byte.
    NotUtf8 { path: PathBuf, line: u32 },
    /// A file system operation failed.
    Io {
        /// What was being done (`"read"`, `"open directory"`, `"stat"`, ...).
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pattern(err) => err.fmt(f),
            Error::NotUtf8 { path, line } => write!(
                f,
                "{}:{line}: the ignore file is not valid UTF-8\nhint: save it as UTF-8",
                path.display()
            ),
            Error::Io { op, path, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Pattern(err) => Some(err.as_ref()),
            Error::NotUtf8 { .. } => None,
            Error::Io { source, .. } => Some(source),
        }
    }
}

impl From<Box<PatternError>> for Error {
    fn from(err: Box<PatternError>) -> Error {
        Error::Pattern(err)
    }
}
