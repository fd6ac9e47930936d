//! The network of a sandbox with `NetworkMode::None`: a fresh namespace with loopback up.
//!
//! Runs inside the init after `unshare(CLONE_NEWNET)`; it never touches the host's network.

use std::os::fd::AsRawFd;

/// Sets `IFF_UP` on `lo` in the current network namespace.
pub(crate) fn bring_up_loopback() -> Result<(), String> {
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .map_err(|errno| format!("opening a socket to configure lo: {errno}"))?;
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads `ifr_name` and writes `ifr_ifru.ifru_flags` of the valid,
    // exclusively borrowed `request`.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) } < 0 {
        return Err(format!(
            "reading lo's flags: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the union member was just written by SIOCGIFFLAGS.
    unsafe {
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above, SIOCSIFFLAGS only reads `request`.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) } < 0 {
        return Err(format!(
            "bringing lo up: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
