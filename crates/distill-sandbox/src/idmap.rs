//! Which user ids exist inside the sandbox and how they map to the host's.
//!
//! Root (with `CAP_SYS_ADMIN` in its user namespace) needs no new user namespace. An ordinary
//! user gets one: with the subordinate ranges `/etc/subuid` and `/etc/subgid` grant it, written
//! by the setuid helpers `newuidmap`/`newgidmap` (Debian package `uidmap`), or else with the
//! single mapping the kernel lets anyone write for themselves (their uid and gid become 0).
//! This module only decides and formats; it never writes a map itself.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One contiguous range: `count` ids starting at `inside` map to ids starting at `outside`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// How the sandbox's ids relate to the host's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdMapping {
    /// No new user namespace: the caller is privileged and ids are the host's (root drops its
    /// capabilities to Docker's default set before running the command).
    Host,
    /// A user namespace where only root exists: the caller's uid and gid appear as 0.
    ///
    /// Limits: the command can only run as uid 0 / gid 0 with no supplementary group,
    /// `setgroups(2)` is denied, `chown` to any other id fails with `EINVAL`, files owned by
    /// other host ids show as `nobody` (65534), and programs that drop privileges (apt's
    /// `_apt` sandbox user, `su`, `runuser`) fail.
    Single { uid: u32, gid: u32 },
    /// A user namespace where 0 is the caller and 1.. are its subordinate ranges, written by
    /// `newuidmap`/`newgidmap`.
    Subordinate {
        uid_ranges: Vec<IdRange>,
        gid_ranges: Vec<IdRange>,
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
}

impl IdMapping {
    /// Picks the mapping for the current process: `Host` when it holds `CAP_SYS_ADMIN`,
    /// `Subordinate` when `/etc/subuid` and `/etc/subgid` grant ranges to its user and both
    /// helpers are on `PATH`, `Single` otherwise.
    pub fn detect() -> IdMapping {
        if has_cap_sys_admin() {
            return IdMapping::Host;
        }
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let user_name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|user| user.name);
        let group_name = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .ok()
            .flatten()
            .map(|group| group.name);
        let uid_ranges = read_subordinate_ranges(Path::new("/etc/subuid"), uid, user_name);
        let gid_ranges = read_subordinate_ranges(Path::new("/etc/subgid"), gid, group_name);
        let helpers = (find_in_path("newuidmap"), find_in_path("newgidmap"));
        match (uid_ranges, gid_ranges, helpers) {
            (Some(uid_sub), Some(gid_sub), (Some(newuidmap), Some(newgidmap))) => {
                IdMapping::Subordinate {
                    uid_ranges: with_self(uid, &uid_sub),
                    gid_ranges: with_self(gid, &gid_sub),
                    newuidmap,
                    newgidmap,
                }
            }
            _ => IdMapping::Single { uid, gid },
        }
    }

    /// Whether a new user namespace is created.
    pub fn uses_user_namespace(&self) -> bool {
        !matches!(self, IdMapping::Host)
    }

    /// Whether `uid` exists inside the sandbox.
    pub fn maps_uid(&self, uid: u32) -> bool {
        match self {
            IdMapping::Host => true,
            IdMapping::Single { .. } => uid == 0,
            IdMapping::Subordinate { uid_ranges, .. } => covers(uid_ranges, uid),
        }
    }

    /// Whether `gid` exists inside the sandbox.
    pub fn maps_gid(&self, gid: u32) -> bool {
        match self {
            IdMapping::Host => true,
            IdMapping::Single { .. } => gid == 0,
            IdMapping::Subordinate { gid_ranges, .. } => covers(gid_ranges, gid),
        }
    }

    /// The host uid that sandbox uid `inside` is (`None`: not mapped).
    pub fn host_uid(&self, inside: u32) -> Option<u32> {
        match self {
            IdMapping::Host => Some(inside),
            IdMapping::Single { uid, .. } => (inside == 0).then_some(*uid),
            IdMapping::Subordinate { uid_ranges, .. } => translate(uid_ranges, inside, true),
        }
    }

    /// The host gid that sandbox gid `inside` is (`None`: not mapped).
    pub fn host_gid(&self, inside: u32) -> Option<u32> {
        match self {
            IdMapping::Host => Some(inside),
            IdMapping::Single { gid, .. } => (inside == 0).then_some(*gid),
            IdMapping::Subordinate { gid_ranges, .. } => translate(gid_ranges, inside, true),
        }
    }

    /// The sandbox uid that host uid `outside` appears as (`None`: it shows as the overflow
    /// id, 65534). What a layer writer needs to record a file written by a step.
    pub fn sandbox_uid(&self, outside: u32) -> Option<u32> {
        match self {
            IdMapping::Host => Some(outside),
            IdMapping::Single { uid, .. } => (outside == *uid).then_some(0),
            IdMapping::Subordinate { uid_ranges, .. } => translate(uid_ranges, outside, false),
        }
    }

    /// The sandbox gid that host gid `outside` appears as (`None`: unmapped).
    pub fn sandbox_gid(&self, outside: u32) -> Option<u32> {
        match self {
            IdMapping::Host => Some(outside),
            IdMapping::Single { gid, .. } => (outside == *gid).then_some(0),
            IdMapping::Subordinate { gid_ranges, .. } => translate(gid_ranges, outside, false),
        }
    }

    /// Writes the maps of the user namespace process `pid` has just created, with
    /// `newuidmap`/`newgidmap` (subordinate mapping only; the others need no helper).
    pub(crate) fn write_maps(&self, pid: u32) -> crate::Result<()> {
        let IdMapping::Subordinate {
            uid_ranges,
            gid_ranges,
            newuidmap,
            newgidmap,
        } = self
        else {
            return Err(crate::Error::Protocol(format!(
                "no helper writes the maps of a {}",
                self.describe()
            )));
        };
        for (helper, ranges) in [(newuidmap, uid_ranges), (newgidmap, gid_ranges)] {
            let output = std::process::Command::new(helper)
                .arg(pid.to_string())
                .args(helper_arguments(ranges))
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|error| crate::Error::IdMap {
                    helper: helper.clone(),
                    message: error.to_string(),
                })?;
            if !output.status.success() {
                return Err(crate::Error::IdMap {
                    helper: helper.clone(),
                    message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                });
            }
        }
        Ok(())
    }

    /// A one-line description for reports and errors.
    pub fn describe(&self) -> String {
        match self {
            IdMapping::Host => "host ids (no user namespace)".to_owned(),
            IdMapping::Single { uid, gid } => {
                format!("single-id user namespace (uid {uid} → 0, gid {gid} → 0)")
            }
            IdMapping::Subordinate {
                uid_ranges,
                gid_ranges,
                ..
            } => format!(
                "subordinate-id user namespace ({} uids, {} gids)",
                total(uid_ranges),
                total(gid_ranges)
            ),
        }
    }
}

/// `id` through `ranges`, from inside to outside (`outward`) or back.
fn translate(ranges: &[IdRange], id: u32, outward: bool) -> Option<u32> {
    ranges.iter().find_map(|range| {
        let (from, to) = if outward {
            (range.inside, range.outside)
        } else {
            (range.outside, range.inside)
        };
        let offset = id.checked_sub(from)?;
        (offset < range.count)
            .then(|| to.checked_add(offset))
            .flatten()
    })
}

fn covers(ranges: &[IdRange], id: u32) -> bool {
    ranges.iter().any(|range| {
        id >= range.inside && u64::from(id) < u64::from(range.inside) + u64::from(range.count)
    })
}

fn total(ranges: &[IdRange]) -> u64 {
    ranges.iter().map(|range| u64::from(range.count)).sum()
}

/// The caller's own id as 0, then the subordinate ranges packed from 1 upwards.
fn with_self(own: u32, subordinate: &[(u32, u32)]) -> Vec<IdRange> {
    let mut ranges = vec![IdRange {
        inside: 0,
        outside: own,
        count: 1,
    }];
    let mut next_inside: u32 = 1;
    for &(start, count) in subordinate {
        let Some(end) = next_inside.checked_add(count) else {
            break;
        };
        ranges.push(IdRange {
            inside: next_inside,
            outside: start,
            count,
        });
        next_inside = end;
    }
    ranges
}

/// The ranges `file` grants to `id` (listed by number or by `name`), in file order; `None`
/// when the file is missing or grants nothing.
fn read_subordinate_ranges(file: &Path, id: u32, name: Option<String>) -> Option<Vec<(u32, u32)>> {
    let text = std::fs::read_to_string(file).ok()?;
    let ranges = parse_subordinate_ranges(&text, id, name.as_deref());
    (!ranges.is_empty()).then_some(ranges)
}

/// Parses `/etc/subuid` syntax: `owner:start:count` per line, owner a name or a number.
/// Malformed lines are ignored, as shadow-utils does.
pub(crate) fn parse_subordinate_ranges(text: &str, id: u32, name: Option<&str>) -> Vec<(u32, u32)> {
    let id_text = id.to_string();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?;
            let start = fields.next()?.parse::<u32>().ok()?;
            let count = fields.next()?.parse::<u32>().ok()?;
            if fields.next().is_some() || count == 0 {
                return None;
            }
            let mine = owner == id_text || Some(owner) == name;
            mine.then_some((start, count))
        })
        .collect()
}

/// The `newuidmap`/`newgidmap` arguments after the pid: `inside outside count` triples.
fn helper_arguments(ranges: &[IdRange]) -> Vec<String> {
    ranges
        .iter()
        .flat_map(|range| {
            [
                range.inside.to_string(),
                range.outside.to_string(),
                range.count.to_string(),
            ]
        })
        .collect()
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| crate::spec::DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            rustix::fs::access(candidate, rustix::fs::Access::EXEC_OK).is_ok()
                && candidate.is_file()
        })
}

/// Whether the current process holds `CAP_SYS_ADMIN` in its effective set.
pub(crate) fn has_cap_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return rustix::process::geteuid().is_root();
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subuid_by_name_and_number() {
        let text =
            "alice:100000:65536\n1000:300000:10\nbob:200000:65536\nbroken\nalice:x:1\nalice:5:0\n";
        assert_eq!(
            parse_subordinate_ranges(text, 1000, Some("alice")),
            vec![(100000, 65536), (300000, 10)]
        );
        assert_eq!(parse_subordinate_ranges(text, 1001, Some("carol")), vec![]);
    }

    #[test]
    fn own_id_first_then_packed_ranges() {
        let ranges = with_self(1000, &[(100000, 65536), (300000, 10)]);
        assert_eq!(
            ranges,
            vec![
                IdRange {
                    inside: 0,
                    outside: 1000,
                    count: 1
                },
                IdRange {
                    inside: 1,
                    outside: 100000,
                    count: 65536
                },
                IdRange {
                    inside: 65537,
                    outside: 300000,
                    count: 10
                },
            ]
        );
        assert_eq!(
            helper_arguments(&ranges[..2]),
            ["0", "1000", "1", "1", "100000", "65536"]
        );
        let mapping = IdMapping::Subordinate {
            uid_ranges: ranges.clone(),
            gid_ranges: ranges,
            newuidmap: "/usr/bin/newuidmap".into(),
            newgidmap: "/usr/bin/newgidmap".into(),
        };
        assert!(mapping.maps_uid(65546));
        assert_eq!(mapping.host_uid(0), Some(1000));
        assert_eq!(mapping.host_uid(5), Some(100004));
        assert_eq!(mapping.host_uid(65537), Some(300000));
        assert_eq!(mapping.host_uid(65547), None);
        assert_eq!(mapping.sandbox_uid(100004), Some(5));
        assert_eq!(mapping.sandbox_uid(1000), Some(0));
        assert_eq!(mapping.sandbox_uid(99999), None);
        let single = IdMapping::Single {
            uid: 1000,
            gid: 1000,
        };
        assert_eq!(single.sandbox_gid(1000), Some(0));
        assert_eq!(single.host_uid(1), None);
        assert_eq!(IdMapping::Host.sandbox_uid(42), Some(42));
        assert!(!mapping.maps_uid(65547));
        assert!(IdMapping::Single { uid: 5, gid: 5 }.maps_gid(0));
        assert!(!IdMapping::Single { uid: 5, gid: 5 }.maps_gid(5));
    }
}
