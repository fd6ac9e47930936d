//! The errors a caller of the sandbox can see.
//!
//! Messages name the path or the step that failed and, where the user can do something about
//! it, end with a `hint:`. A command that runs and exits non-zero is not an error here: it is
//! an [`crate::ExitStatus`] the caller judges.

use std::path::PathBuf;

/// What went wrong while preparing, running or cleaning up a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sandbox init could not be started.
    #[error("cannot start the sandbox init {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    /// The spec asks for something the id mapping or the machine cannot give.
    #[error("{0}")]
    Unsupported(String),
    /// Setting up the namespaces, mounts or ids failed inside the init.
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    /// The command could not be executed (not found, not executable, bad format).
    #[error("{0}")]
    Exec(String),
    /// `newuidmap`/`newgidmap` refused to write the id maps.
    #[error("{helper} failed: {message}\nhint: check the ranges for this user in /etc/subuid and /etc/subgid")]
    IdMap { helper: PathBuf, message: String },
    /// The run was cancelled (Ctrl-C, SIGTERM): the sandbox's processes were killed.
    #[error("interrupted: the sandboxed command was killed")]
    Cancelled,
    /// The init went away without saying how the command ended.
    #[error(
        "the sandbox init died unexpectedly ({0})\nhint: the init program must call \
         distill_sandbox::init_if_requested() first thing in main"
    )]
    InitDied(String),
    /// Talking to the init failed.
    #[error("sandbox init protocol: {0}")]
    Protocol(String),
    /// A file operation on the host side (snapshots, stub clean-up) failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Error {
        Error::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
