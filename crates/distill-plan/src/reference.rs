//! A syntax check of image references (`alpine`, `docker.io/library/alpine:3.20`,
//! `localhost:5000/app@sha256:...`) with the grammar of distribution's `reference` package,
//! so a plan rejects what BuildKit would fail to resolve. It does not normalise or resolve.

/// Checks `text` as a (possibly short) image reference; the error names what is wrong.
pub(crate) fn check_reference(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("invalid reference format: the reference is empty".into());
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (text, None),
    };
    if let Some(digest) = digest {
        check_digest(digest)?;
    }
    // A tag follows the last ':' after the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let mut chars = tag.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            && tag.len() <= 128;
        if !valid {
            return Err(format!("invalid reference format: invalid tag {tag:?}"));
        }
    }
    if name.len() > 255 {
        return Err(
            "invalid reference format: repository name must not be more than 255 characters".into(),
        );
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    let has_domain = components.len() > 1
        && (first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first);
    if has_domain {
        check_domain(first)?;
        components.remove(0);
    }
    for component in components {
        if component.to_lowercase() != component {
            return Err(format!(
                "invalid reference format: repository name ({name}) must be lowercase"
            ));
        }
        if !is_path_component(component) {
            return Err("invalid reference format".into());
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut need_alnum = true;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            need_alnum = false;
            i += 1;
            continue;
        }
        if need_alnum {
            return false;
        }
        // A separator: '.', '_', '__' or one or more '-'.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start {
            return false;
        }
        need_alnum = true;
    }
    !need_alnum
}

fn check_domain(domain: &str) -> Result<(), String> {
    let invalid = || format!("invalid reference format: invalid registry {domain:?}");
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(invalid)?;
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(invalid());
        }
        (None, after.strip_prefix(':'))
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        let valid = !host.is_empty()
            && host.split('.').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !valid {
            return Err(invalid());
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
    }
    Ok(())
}

fn check_digest(digest: &str) -> Result<(), String> {
    let invalid = || format!("invalid reference format: invalid digest {digest:?}");
    let (algorithm, hex) = digest.split_once(':').ok_or_else(invalid)?;
    let algorithm_ok = algorithm.starts_with(|c: char| c.is_ascii_alphabetic())
        && algorithm
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.'));
    if !algorithm_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_references() {
        for good in [
            "alpine",
            "alpine:3.20",
            "library/debian:bookworm-slim",
            "docker.io/library/alpine:latest",
            "ghcr.io/astral-sh/uv:0.5.11",
            "localhost:5000/app",
            "registry.example.com:443/team/app_1__x--y.z:v1",
            "gcr.io/distroless/static-debian12:nonroot",
            "alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "[::1]:5000/app",
        ] {
            assert!(check_reference(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn rejects_malformed_references() {
        assert_eq!(
            check_reference("Builder").unwrap_err(),
            "invalid reference format: repository name (Builder) must be lowercase"
        );
        for bad in [
            "",
            "alpine:",
            "alpine:-x",
            "-alpine",
            "alpine..x",
            "a//b",
            "alpine@sha256:short",
            "$X",
            "my image",
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }
}
