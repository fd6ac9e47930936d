//! Extended attributes of a path, never following a symlink at its end.
//!
//! Filesystems without xattr support report none rather than an error.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::io::Errno;

/// The names of `path`'s extended attributes, sorted.
pub fn list(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut buffer = vec![0u8; 1024];
    let len = loop {
        match rustix::fs::llistxattr(path, &mut buffer[..]) {
            Ok(len) => break len,
            Err(Errno::RANGE) => {
                let needed = rustix::fs::llistxattr(path, &mut [0u8; 0][..])?;
                buffer.resize(needed.max(buffer.len() * 2), 0);
            }
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(errno) => return Err(errno.into()),
        }
    };
    let mut names: Vec<Vec<u8>> = buffer[..len]
        .split(|&byte| byte == 0)
        .filter(|name| !name.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    names.sort();
    Ok(names)
}

/// The value of `path`'s attribute `name`; `None` if it vanished since it was listed.
pub fn get(path: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let name = OsStr::from_bytes(name);
    let mut buffer = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(path, name, &mut buffer[..]) {
            Ok(len) => {
                buffer.truncate(len);
                return Ok(Some(buffer));
            }
            Err(Errno::RANGE) => {
                let needed = rustix::fs::lgetxattr(path, name, &mut [0u8; 0][..])?;
                buffer.resize(needed.max(buffer.len() * 2), 0);
            }
            Err(Errno::NODATA) => return Ok(None),
            Err(errno) => return Err(errno.into()),
        }
    }
}
