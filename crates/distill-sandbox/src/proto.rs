//! The conversation between the caller and the re-executed init, over one Unix stream socket.
//!
//! Frames are a 4-byte big-endian length and a JSON body, each sent with a single `send(2)`
//! so the processes sharing the init's end (outer init, pid 1, the command before `exec`)
//! never interleave. The caller speaks first (a [`Request`]); everything after is the init's
//! [`Report`]s, except the caller's answer to `UserNamespaceReady`.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use rustix::net::{RecvFlags, SendFlags};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::idmap::IdMapping;
use crate::spec::SandboxSpec;

/// Largest frame accepted; a spec is a few kilobytes, an error message less.
const MAX_FRAME: usize = 16 << 20;

/// What the caller asks the init to do.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Run a command.
    Run {
        spec: Box<SandboxSpec>,
        ids: IdMapping,
    },
    /// Mount an overlay of `lower` on `upper` the way a run would, create a file and delete
    /// `lower`'s `probe` file, then exit (finds out whether overlayfs works here).
    ProbeOverlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        ids: IdMapping,
    },
}

/// The caller's answer once it has written the id maps.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum MapAnswer {
    Mapped,
    /// Why the maps could not be written.
    Failed(String),
}

/// A file or directory the init created in the root only to mount something on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountStub {
    /// Relative to the root.
    pub path: PathBuf,
    pub is_dir: bool,
}

/// Times of a directory the init created a stub in: creating (and later removing) the stub
/// changes its modification time, which the clean-up puts back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTimes {
    /// Relative to the root (empty for the root itself).
    pub path: PathBuf,
    /// Access and modification times before the first stub was created in it.
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    /// Modification time once the last stub was created: if it still has it after the run,
    /// the command did not change the directory and the times from before are put back;
    /// otherwise the command's are kept (what BuildKit does).
    pub mtime_with_stubs: (i64, i64),
}

/// What the init tells the caller.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// The user namespace exists; write the maps for this pid (subordinate mapping only).
    UserNamespaceReady,
    /// Mount points created in the root, to remove after the run, and the times of the
    /// directories they were created in, to restore.
    Stubs {
        stubs: Vec<MountStub>,
        parents: Vec<SavedTimes>,
    },
    /// Setup failed before the command started.
    SetupFailed(String),
    /// The command could not be executed.
    ExecFailed(String),
    /// The command ended: exit code or the signal that killed it.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// Answer to `ProbeOverlay`: `None` when it worked, or why not.
    Probed(Option<String>),
}

pub(crate) fn send<T: Serialize>(socket: BorrowedFd<'_>, message: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    let length = u32::try_from(body.len()).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    let mut sent = 0;
    while sent < frame.len() {
        match rustix::net::send(socket, &frame[sent..], SendFlags::NOSIGNAL) {
            Ok(n) => sent += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub(crate) fn receive<T: DeserializeOwned>(socket: impl AsFd) -> std::io::Result<Option<T>> {
    let socket = socket.as_fd();
    let mut header = [0u8; 4];
    if !read_exact(socket, &mut header, true)? {
        return Ok(None);
    }
    let length = u32::from_be_bytes(header) as usize;
    if length > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {length} bytes is too long"
        )));
    }
    let mut body = vec![0u8; length];
    read_exact(socket, &mut body, false)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(std::io::Error::other)
}

/// Fills `buffer`; returns false on end of stream before the first byte when `eof_ok`.
fn read_exact(socket: BorrowedFd<'_>, buffer: &mut [u8], eof_ok: bool) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buffer.len() {
        match rustix::net::recv(socket, &mut buffer[filled..], RecvFlags::empty()) {
            Ok((0, _)) if filled == 0 && eof_ok => return Ok(false),
            Ok((0, _)) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed inside a frame",
                ))
            }
            Ok((n, _)) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(true)
}
