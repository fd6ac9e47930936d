//! Inter-process locks on files under `locks/` (flock(2)), so several distill processes can
//! share one store. flock locks belong to an open file description: each guard opens its own,
//! so two guards in one process behave like two processes (and can deadlock like them).
//!
//! Two locks, always taken in this order:
//! - `gc`: shared by anyone adding content or reading images (a [`crate::Lease`]), exclusive
//!   for garbage collection, which therefore never deletes content someone is about to
//!   reference, nor a temporary file someone is still writing.
//! - `refs`: exclusive around each read-modify-write of `index.json`.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

/// A held lock; released when dropped (closing the file releases it).
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

impl LockGuard {
    /// Waits until the lock at `path` is ours.
    pub fn acquire(path: &Path, mode: LockMode) -> io::Result<LockGuard> {
        let file = open(path)?;
        let operation = match mode {
            LockMode::Shared => FlockOperation::LockShared,
            LockMode::Exclusive => FlockOperation::LockExclusive,
        };
        loop {
            match flock(&file, operation) {
                Ok(()) => return Ok(LockGuard { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Takes the lock if nobody holds it in a conflicting mode; `None` otherwise.
    pub fn try_acquire(path: &Path, mode: LockMode) -> io::Result<Option<LockGuard>> {
        let file = open(path)?;
        let operation = match mode {
            LockMode::Shared => FlockOperation::NonBlockingLockShared,
            LockMode::Exclusive => FlockOperation::NonBlockingLockExclusive,
        };
        match flock(&file, operation) {
            Ok(()) => Ok(Some(LockGuard { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn shared_locks_coexist_and_exclude_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gc.lock");
        let a = LockGuard::acquire(&path, LockMode::Shared).unwrap();
        let b = LockGuard::try_acquire(&path, LockMode::Shared).unwrap();
        assert!(b.is_some(), "two readers share");
        assert!(LockGuard::try_acquire(&path, LockMode::Exclusive)
            .unwrap()
            .is_none());
        drop(a);
        drop(b);
        let writer = LockGuard::try_acquire(&path, LockMode::Exclusive).unwrap();
        assert!(writer.is_some());
        assert!(LockGuard::try_acquire(&path, LockMode::Shared)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_blocked_writer_proceeds_when_the_reader_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gc.lock");
        let reader = LockGuard::acquire(&path, LockMode::Shared).unwrap();
        let (sender, receiver) = mpsc::channel();
        let thread_path = path.clone();
        let handle = std::thread::spawn(move || {
            let _writer = LockGuard::acquire(&thread_path, LockMode::Exclusive).unwrap();
            sender.send(()).unwrap();
        });
        assert!(
            receiver.recv_timeout(Duration::from_millis(200)).is_err(),
            "writer must wait"
        );
        drop(reader);
        receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("writer got the lock");
        handle.join().unwrap();
    }
}
