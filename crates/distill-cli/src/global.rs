//! Options every command shares: where the store is and whether to say more.

use std::path::PathBuf;

/// The global flags, resolved.
pub struct Global {
    /// The store's root directory (not created until a command needs it).
    pub root: PathBuf,
    pub debug: bool,
}

impl Global {
    pub fn new(root: Option<PathBuf>, debug: bool) -> Global {
        Global {
            root: root.unwrap_or_else(default_root),
            debug,
        }
    }
}

/// `/var/lib/distill` for root, else `$XDG_DATA_HOME/distill` (`~/.local/share/distill`).
fn default_root() -> PathBuf {
    // The effective uid, read from /proc so the CLI needs no libc binding for it.
    let is_root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false);
    if is_root {
        return PathBuf::from("/var/lib/distill");
    }
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(data) => PathBuf::from(data).join("distill"),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
            PathBuf::from(home).join(".local/share/distill")
        }
    }
}
