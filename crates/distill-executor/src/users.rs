//! User and group names to ids, from the stage's own `/etc/passwd` and `/etc/group` (never the
//! host's), as BuildKit resolves `COPY --chown` and `USER` for RUN.

use std::path::Path;

use crate::rootview::RootView;

/// Ids a `user[:group]` specification names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

/// Finds `name` in an `/etc/passwd`- or `/etc/group`-shaped file: `name:x:id:gid:...`.
/// Returns the id field and, for passwd, the primary group.
fn lookup(file: &[u8], name: &str) -> Option<(u32, Option<u32>)> {
    let text = String::from_utf8_lossy(file);
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 3 && fields[0] == name {
            let id = fields[2].trim().parse().ok()?;
            let group = fields.get(3).and_then(|g| g.trim().parse().ok());
            return Some((id, group));
        }
    }
    None
}

/// Resolves `user[:group]` against the view's files. A number is taken as is; a user name
/// gives its uid and (without `:group`) its primary group; a user number without a group
/// gets its own number as gid for `--chown` (`default_gid_from_user`), and for USER the group
/// of the passwd entry with that uid, else 0. An empty user (`--chown=:group`) is root.
pub fn resolve(view: &RootView, spec: &str, default_gid_from_user: bool) -> Result<Ids, String> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd = view
        .read(Path::new("/etc/passwd"))
        .map_err(|error| format!("reading /etc/passwd: {error}"))?;
    let (uid, primary) = match user.parse::<u32>() {
        // `--chown=:group` (Docker 20.10's BuildKit takes an empty user as root).
        _ if user.is_empty() => (0, Some(0)),
        // `--chown=1500`: Docker 20.10's BuildKit takes the number as the group too, without
        // reading /etc/passwd (USER 1500 does read it).
        Ok(uid) if default_gid_from_user => (uid, Some(uid)),
        Ok(uid) => {
            let primary = passwd.as_deref().and_then(|file| {
                String::from_utf8_lossy(file).lines().find_map(|line| {
                    let fields: Vec<&str> = line.split(':').collect();
                    (fields.len() >= 4 && fields[2].parse::<u32>().ok() == Some(uid))
                        .then(|| fields[3].parse::<u32>().ok())
                        .flatten()
                })
            });
            (uid, primary)
        }
        Err(_) => {
            let file = passwd.ok_or_else(|| {
                format!("unable to find user {user}: no /etc/passwd in the image")
            })?;
            let (uid, primary) = lookup(&file, user).ok_or_else(|| {
                format!("unable to find user {user}: no matching entries in passwd file")
            })?;
            (uid, primary)
        }
    };
    let gid = match group {
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let file = view
                    .read(Path::new("/etc/group"))
                    .map_err(|error| format!("reading /etc/group: {error}"))?
                    .ok_or_else(|| {
                        format!("unable to find group {group}: no /etc/group in the image")
                    })?;
                lookup(&file, group)
                    .ok_or_else(|| {
                        format!("unable to find group {group}: no matching entries in group file")
                    })?
                    .0
            }
        },
        None => match primary {
            Some(gid) => gid,
            None if default_gid_from_user => uid,
            None => 0,
        },
    };
    Ok(Ids { uid, gid })
}

/// The supplementary groups a process started as `spec` (`user[:group]`) gets, as runc's
/// user lookup gives them: none when the group is explicit; else the groups of
/// `/etc/group` listing the passwd entry's name among their members, that entry found by
/// name or, for a number, by uid (`USER 1000` gets app's groups; `USER 1000:1000` none).
pub fn supplementary_groups(view: &RootView, spec: &str) -> Vec<u32> {
    if spec.is_empty() || spec.contains(':') {
        return Vec::new();
    }
    let name = match spec.parse::<u32>() {
        Err(_) => spec.to_string(),
        Ok(uid) => {
            let Ok(Some(passwd)) = view.read(Path::new("/etc/passwd")) else {
                return Vec::new();
            };
            let found = String::from_utf8_lossy(&passwd).lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 3 && fields[2].trim().parse::<u32>().ok() == Some(uid))
                    .then(|| fields[0].to_string())
            });
            match found {
                Some(name) => name,
                None => return Vec::new(),
            }
        }
    };
    let user = name.as_str();
    let Ok(Some(file)) = view.read(Path::new("/etc/group")) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&file);
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 4 {
                return None;
            }
            let members = fields[3].split(',').map(str::trim);
            members
                .into_iter()
                .any(|m| m == user)
                .then(|| fields[2].parse::<u32>().ok())
                .flatten()
        })
        .collect()
}

/// The home directory a RUN step gets as `HOME` when its environment has none, as runc sets it:
/// the home field of the passwd entry of `user` (by name, or by uid when `user` is a number;
/// root when `user` is empty), else `/`.
pub fn home(view: &RootView, user: &str) -> String {
    let name = user.split(':').next().unwrap_or("");
    let name = if name.is_empty() { "0" } else { name };
    let uid = name.parse::<u32>().ok();
    let Ok(Some(file)) = view.read(Path::new("/etc/passwd")) else {
        return "/".to_string();
    };
    String::from_utf8_lossy(&file)
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 6 {
                return None;
            }
            let matches = match uid {
                Some(uid) => fields[2].trim().parse::<u32>().ok() == Some(uid),
                None => fields[0] == name,
            };
            (matches && !fields[5].is_empty()).then(|| fields[5].to_string())
        })
        .unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_comes_from_passwd_as_runc_sets_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        let view = RootView::of_dir(dir.path());
        assert_eq!(home(&view, ""), "/root");
        assert_eq!(home(&view, "app"), "/home/app");
        assert_eq!(home(&view, "1000:50"), "/home/app");
        assert_eq!(home(&view, "4242"), "/");
        assert_eq!(home(&view, "nobody"), "/");
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(home(&RootView::of_dir(empty.path()), ""), "/");
    }

    #[test]
    fn names_and_numbers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
        let view = RootView::of_dir(dir.path());
        assert_eq!(
            resolve(&view, "app", true).unwrap(),
            Ids {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(
            resolve(&view, "app:staff", true).unwrap(),
            Ids { uid: 1000, gid: 50 }
        );
        assert_eq!(
            resolve(&view, "1000", false).unwrap(),
            Ids {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(
            resolve(&view, "1000", true).unwrap(),
            Ids {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(
            resolve(&view, "42", true).unwrap(),
            Ids { uid: 42, gid: 42 }
        );
        assert_eq!(
            resolve(&view, "42", false).unwrap(),
            Ids { uid: 42, gid: 0 }
        );
        assert!(resolve(&view, "nobody", true)
            .unwrap_err()
            .contains("unable to find user nobody"));
        assert_eq!(supplementary_groups(&view, "app"), [50]);
        assert_eq!(supplementary_groups(&view, "1000"), [50]);
        assert!(supplementary_groups(&view, "app:staff").is_empty());
        assert!(supplementary_groups(&view, "1000:1001").is_empty());
        assert!(supplementary_groups(&view, "4242").is_empty());
        assert_eq!(
            resolve(&view, ":staff", true).unwrap(),
            Ids { uid: 0, gid: 50 }
        );
    }
}
