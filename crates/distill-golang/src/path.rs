//! Go's `path` package: slash-separated paths as BuildKit cleans image paths (WORKDIR, COPY
//! destinations), whatever the host.

/// Go's `path.Clean`: one slash between elements, `.` elements dropped, each `..` removing the
/// element before it, `..` at the start of a rooted path dropped; `.` for an empty result of a
/// relative path, `/` for a rooted one.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn cleans_like_go() {
        // Cases from the behaviour Go documents for path.Clean.
        let cases = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "/"),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("a//b", "a/b"),
            ("/abc/./def", "/abc/def"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("/../abc", "/abc"),
            ("../../abc", "../../abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("/app/./x/../y", "/app/y"),
        ];
        for (input, expected) in cases {
            assert_eq!(clean(input), expected, "clean({input:?})");
        }
    }
}
