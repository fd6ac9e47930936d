//! Build errors: at a place in the Dockerfile when there is one (the instruction that failed,
//! with its line shown), otherwise a message; both may end with a hint.

use std::fmt;

use distill_frontend::{Diagnostic, Pos, Source};

#[derive(Debug)]
pub enum BuildError {
    /// About an instruction or word of the Dockerfile.
    At(Box<Diagnostic>),
    /// About something else (the store, the context, an output).
    Message {
        message: String,
        hint: Option<String>,
    },
    /// Ctrl-C, SIGTERM, or another stage's failure stopped this work.
    Cancelled,
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;

impl BuildError {
    pub fn message(message: impl Into<String>) -> BuildError {
        BuildError::Message {
            message: message.into(),
            hint: None,
        }
    }

    pub fn at(source: &Source, pos: Pos, message: impl Into<String>) -> BuildError {
        BuildError::At(Box::new(Diagnostic::at(source, pos, message)))
    }

    pub fn with_hint(self, hint: impl Into<String>) -> BuildError {
        match self {
            BuildError::At(diagnostic) => BuildError::At(Box::new(diagnostic.with_hint(hint))),
            BuildError::Message { message, .. } => BuildError::Message {
                message,
                hint: Some(hint.into()),
            },
            BuildError::Cancelled => BuildError::Cancelled,
        }
    }

    /// The same error placed at an instruction, unless it already has a place.
    pub fn placed(self, source: &Source, pos: Pos) -> BuildError {
        match self {
            BuildError::Message { message, hint } => {
                let mut diagnostic = Diagnostic::at(source, pos, message);
                diagnostic.hint = hint;
                BuildError::At(Box::new(diagnostic))
            }
            other => other,
        }
    }

    /// An I/O error with what was being done.
    pub fn io(action: impl fmt::Display, error: std::io::Error) -> BuildError {
        BuildError::message(format!("{action}: {error}"))
    }
}

impl From<Diagnostic> for BuildError {
    fn from(diagnostic: Diagnostic) -> BuildError {
        BuildError::At(Box::new(diagnostic))
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::At(diagnostic) => write!(f, "{diagnostic}"),
            BuildError::Message { message, hint } => {
                write!(f, "{message}")?;
                if let Some(hint) = hint {
                    write!(f, "\nhint: {hint}")?;
                }
                Ok(())
            }
            BuildError::Cancelled => write!(f, "the build was cancelled"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Context for fallible calls: `.or_build(|| "reading x")`.
pub(crate) trait OrBuild<T> {
    fn or_build<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: fmt::Display> OrBuild<T> for std::result::Result<T, E> {
    fn or_build<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|error| BuildError::message(format!("{}: {error}", what())))
    }
}
