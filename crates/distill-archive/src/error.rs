//! The one error type of archive work: what went wrong, which archive (or file in it), and,
//! where we can tell, a hint saying what to do next.

use std::fmt;
use std::io;

/// Why a save, load or import failed. `Display` gives the whole sentence; [`ArchiveError::hint`]
/// the advice the CLI prints under it.
#[derive(Debug)]
pub struct ArchiveError {
    message: String,
    hint: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ArchiveError {
    /// Something about the input is wrong (bad archive, bad tarball, bad `--change`).
    pub fn invalid(message: impl Into<String>) -> ArchiveError {
        ArchiveError {
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// An I/O failure while doing `context` (e.g. "reading archive.tar").
    pub fn io(context: impl Into<String>, source: io::Error) -> ArchiveError {
        ArchiveError {
            message: context.into(),
            hint: None,
            source: Some(Box::new(source)),
        }
    }

    /// A failure of another layer (store, image format) while doing `context`.
    pub fn caused(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> ArchiveError {
        ArchiveError {
            message: context.into(),
            hint: None,
            source: Some(Box::new(source)),
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> ArchiveError {
        self.hint = Some(hint.into());
        self
    }

    /// Puts `prefix: ` in front of the message (which image, which file).
    pub fn context(mut self, prefix: impl std::fmt::Display) -> ArchiveError {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        // The cause is part of the sentence: callers print `{err}`, not a chain.
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ArchiveError {}

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;
