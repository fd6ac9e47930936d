//! The build context: which files of the context directory a build may see.
//!
//! An [`IgnoreFile`] is read from the `.dockerignore` that [`find_ignore_file`] chooses the way
//! BuildKit does (`<Dockerfile>.dockerignore` beside the Dockerfile first); a [`Matcher`]
//! compiles its patterns once, with moby/patternmatcher's semantics (not gitignore's), and
//! decides for any relative path whether it is excluded; [`walk`] (or [`Context::walk`]) lists
//! every entry left in, with its metadata, without following symlinks or leaving the context.
//!
//! ```
//! use distill_context::{IgnoreFile, Matcher};
//!
//! let file = IgnoreFile::parse("node_modules\n**/*.log\n!important.log\n", ".dockerignore");
//! let matcher = Matcher::from_ignore_file(&file)?;
//! assert!(matcher.is_excluded("node_modules/left-pad/index.js"));
//! assert!(matcher.is_excluded("src/debug.log"));
//! assert!(!matcher.is_excluded("important.log"));
//! assert!(!matcher.is_excluded("src/main.rs"));
//! # Ok::<(), Box<distill_context::PatternError>>(())
//! ```
//!
//! This crate reads the context and never writes to it; it knows nothing of Dockerfiles beyond
//! the ignore file's name.

mod error;
mod ignorefile;
mod matcher;
mod pattern;
mod walk;

pub use error::{Error, PatternError};
pub use ignorefile::{find_ignore_file, IgnoreFile, IgnoreLine, DEFAULT_IGNORE_FILE};
pub use matcher::{MatchInfo, Matcher};
pub use pattern::Pattern;
pub use walk::{walk, Context, Entry, FileKind, FileTime, Xattr};
