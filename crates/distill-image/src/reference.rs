//! Image references (`[domain/]path[:tag][@digest]`), parsed and normalised like Docker:
//! `python` is `docker.io/library/python:latest`, `user/repo` is on Docker Hub, a first component
//! with a `.` or `:` or equal to `localhost` is a registry. The grammar and the error texts follow
//! distribution/reference, so users see the messages they know from `docker`.
//!
//! This module never touches the network or the store: it only reads text.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
/// distribution/reference's `NameTotalLengthMax`, applied to the path.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not a reference. The texts are Docker's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    RemoteNameContainsUppercase(String),
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    Identifier(String),
    #[error("invalid tag format")]
    TagInvalidFormat,
    #[error(transparent)]
    Digest(#[from] crate::digest::DigestError),
}

/// A fully qualified image reference: always a domain, a path, and a tag and/or a digest.
///
/// `Display` gives the canonical form (`docker.io/library/python:latest`), [`Reference::familiar`]
/// the short form Docker shows (`python:latest`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses what a user typed (`python`, `user/app:1`, `localhost:5000/x@sha256:…`) into a
    /// normalised reference, adding `:latest` when neither tag nor digest is given.
    pub fn parse_normalized(text: &str) -> Result<Reference, ReferenceError> {
        let mut reference = Reference::parse_normalized_name(text)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(reference)
    }

    /// Like [`Reference::parse_normalized`], without adding a default tag (`python` stays a bare
    /// name; use it for filters such as `distill images python`).
    pub fn parse_normalized_name(text: &str) -> Result<Reference, ReferenceError> {
        if is_identifier(text) {
            return Err(ReferenceError::Identifier(text.to_string()));
        }
        let (domain, remainder) = split_docker_domain(text);
        let remote = remainder
            .split_once(':')
            .map_or(remainder.as_str(), |(r, _)| r);
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::RemoteNameContainsUppercase(
                remote.to_string(),
            ));
        }
        Reference::parse(&format!("{domain}/{remainder}"))
    }

    /// Parses a reference exactly as written, with distribution/reference's `Parse` rules: no
    /// default domain, no default tag. A reference without a domain gets an empty one.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        match match_reference(text) {
            Some(Ok(parts)) => parts.into_reference(),
            Some(Err(err)) => Err(err),
            None => {
                if text.is_empty() {
                    Err(ReferenceError::NameEmpty)
                } else if match_reference(&text.to_lowercase()).is_some() {
                    Err(ReferenceError::NameContainsUppercase)
                } else {
                    Err(ReferenceError::InvalidFormat)
                }
            }
        }
    }

    /// The registry host, with its port if any (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path on the registry (`library/python`).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, the repository's canonical name.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The repository name as Docker shows it: `python`, `user/app`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            if let Some(rest) = self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                if !rest.contains('/') {
                    return rest.to_string();
                }
            }
            return self.path.clone();
        }
        self.name()
    }

    /// The whole reference as Docker shows it: `python:latest`, `x@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        self.push_suffix(&mut out);
        out
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::TagInvalidFormat);
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository pinned to `digest`, without a tag (`name@digest`).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// Drops the tag and digest: the bare repository name.
    pub fn repository(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    /// Same as [`Reference::parse_normalized`].
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse_normalized(s)
    }
}

/// Docker Hub's rules for telling a registry from a namespace in the first path component.
fn split_docker_domain(name: &str) -> (String, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        return (
            DEFAULT_DOMAIN.to_string(),
            format!("{OFFICIAL_REPO_PREFIX}{name}"),
        );
    };
    let (domain, mut remote) = if maybe_domain == "localhost"
        || maybe_domain.contains(['.', ':'])
        || maybe_domain.to_lowercase() != maybe_domain
    {
        let domain = if maybe_domain == LEGACY_DEFAULT_DOMAIN {
            DEFAULT_DOMAIN
        } else {
            maybe_domain
        };
        (domain.to_string(), maybe_remote.to_string())
    } else {
        (DEFAULT_DOMAIN.to_string(), name.to_string())
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        remote = format!("{OFFICIAL_REPO_PREFIX}{remote}");
    }
    (domain, remote)
}

/// The pieces of a reference that matched the grammar, before digest validation.
struct Parts<'a> {
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl Parts<'_> {
    fn into_reference(self) -> Result<Reference, ReferenceError> {
        if self.path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let digest = self.digest.map(Digest::parse).transpose()?;
        Ok(Reference {
            domain: self.domain.to_string(),
            path: self.path.to_string(),
            tag: self.tag.map(str::to_string),
            digest,
        })
    }
}

/// Matches `name[:tag][@digest]`. `None` when the text does not fit the grammar.
///
/// The grammar is unambiguous without backtracking: a digest is everything after the one `@`;
/// a `:` in the name can only be a port, which a `/` always follows, so a last `:` with no `/`
/// after it starts the tag.
fn match_reference(text: &str) -> Option<Result<Parts<'_>, ReferenceError>> {
    let (name_and_tag, digest) = match text.split_once('@') {
        Some((before, after)) => {
            if !is_digest_grammar(after) {
                return None;
            }
            (before, Some(after))
        }
        None => (text, None),
    };
    let (name, tag) = match name_and_tag.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => {
            if !is_tag(tag) {
                return None;
            }
            (name, Some(tag))
        }
        _ => (name_and_tag, None),
    };
    let (domain, path) = split_name(name)?;
    Some(Ok(Parts {
        domain,
        path,
        tag,
        digest,
    }))
}

/// `[domain-and-port/]path`, preferring a domain when the first component can be one.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if let Some((first, rest)) = name.split_once('/') {
        if is_domain_and_port(first) && is_remote_name(rest) {
            return Some((first, rest));
        }
    }
    is_remote_name(name).then_some(("", name))
}

fn is_identifier(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    match bytes.split_first() {
        Some((&first, rest)) => {
            word(first)
                && rest.len() <= 127
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
        None => false,
    }
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
fn is_digest_grammar(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return false;
    };
    let component_ok = |part: &str| {
        let mut bytes = part.bytes();
        matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
            && bytes.all(|b| b.is_ascii_alphanumeric())
    };
    algorithm.split(['-', '_', '+', '.']).all(component_ok)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `host[:port]`, host being a domain name (`a.b-c.d`) or a bracketed IPv6 address.
fn is_domain_and_port(text: &str) -> bool {
    let (host, port) = if text.starts_with('[') {
        let Some(close) = text.find(']') else {
            return false;
        };
        let inner = &text[1..close];
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match &text[close + 1..] {
            "" => (&text[..=close], None),
            rest => match rest.strip_prefix(':') {
                Some(port) => (&text[..=close], Some(port)),
                None => return false,
            },
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    host.starts_with('[') || host.split('.').all(is_domain_component)
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// Path components separated by `/`.
fn is_remote_name(text: &str) -> bool {
    text.split('/').all(is_path_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| matches!(b, b'a'..=b'z' | b'0'..=b'9');
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        if expect_alnum {
            if !alnum(bytes[i]) {
                return false;
            }
            while i < bytes.len() && alnum(bytes[i]) {
                i += 1;
            }
            expect_alnum = false;
        } else {
            let start = i;
            match bytes[i] {
                b'.' => i += 1,
                b'_' => {
                    i += 1;
                    if i < bytes.len() && bytes[i] == b'_' {
                        i += 1;
                    }
                }
                b'-' => {
                    while i < bytes.len() && bytes[i] == b'-' {
                        i += 1;
                    }
                }
                _ => return false,
            }
            debug_assert!(i > start);
            expect_alnum = true;
        }
    }
    // A non-empty component that ends right after alphanumerics.
    !bytes.is_empty() && !expect_alnum
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3a4f7c2e9b1d08c6f5e2a7b9d4c1e0f8a6b3c5d7e9f1a2b4c6d8e0f2a4b6c8d0";

    #[test]
    fn normalises_like_docker() {
        let table = [
            ("python", "docker.io/library/python:latest", "python:latest"),
            (
                "python:3.12-slim",
                "docker.io/library/python:3.12-slim",
                "python:3.12-slim",
            ),
            (
                "docker.io/python",
                "docker.io/library/python:latest",
                "python:latest",
            ),
            (
                "index.docker.io/python:3",
                "docker.io/library/python:3",
                "python:3",
            ),
            (
                "library/python",
                "docker.io/library/python:latest",
                "python:latest",
            ),
            (
                "user/repo",
                "docker.io/user/repo:latest",
                "user/repo:latest",
            ),
            (
                "user/repo/sub:v1",
                "docker.io/user/repo/sub:v1",
                "user/repo/sub:v1",
            ),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            (
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000/x:latest",
            ),
            (
                "host:5000/a/b:tag",
                "host:5000/a/b:tag",
                "host:5000/a/b:tag",
            ),
            ("ghcr.io/o/r:1.0", "ghcr.io/o/r:1.0", "ghcr.io/o/r:1.0"),
            (
                "127.0.0.1:5000/app",
                "127.0.0.1:5000/app:latest",
                "127.0.0.1:5000/app:latest",
            ),
            ("[::1]:5000/app:v", "[::1]:5000/app:v", "[::1]:5000/app:v"),
            ("Registry/app", "Registry/app:latest", "Registry/app:latest"),
            (
                "a__b/c--d.e_f",
                "docker.io/a__b/c--d.e_f:latest",
                "a__b/c--d.e_f:latest",
            ),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
            ),
            (
                "localhost:5000",
                "docker.io/library/localhost:5000",
                "localhost:5000",
            ),
        ];
        for (input, canonical, familiar) in table {
            let reference =
                Reference::parse_normalized(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(reference.to_string(), canonical, "{input}");
            assert_eq!(reference.familiar(), familiar, "{input}");
        }
    }

    #[test]
    fn digests_and_tags_together() {
        let text = format!("busybox:1.36@sha256:{HEX}");
        let reference = Reference::parse_normalized(&text).unwrap();
        assert_eq!(reference.tag(), Some("1.36"));
        assert_eq!(reference.digest().unwrap().hex(), HEX);
        assert_eq!(reference.familiar_name(), "busybox");

        let pinned =
            Reference::parse_normalized(&format!("localhost:5000/x@sha256:{HEX}")).unwrap();
        assert_eq!(pinned.tag(), None, "a digest alone does not get :latest");
        assert_eq!(pinned.to_string(), format!("localhost:5000/x@sha256:{HEX}"));
    }

    #[test]
    fn bare_names_keep_no_tag() {
        let name = Reference::parse_normalized_name("user/repo").unwrap();
        assert_eq!(name.tag(), None);
        assert_eq!(name.name(), "docker.io/user/repo");
    }

    #[test]
    fn rejects_like_docker() {
        use ReferenceError::*;
        let long = format!("a/{}", "b".repeat(260));
        let table: Vec<(String, ReferenceError)> = vec![
            (String::new(), InvalidFormat),
            (HEX.to_string(), Identifier(HEX.to_string())),
            (
                "Python".into(),
                RemoteNameContainsUppercase("library/Python".into()),
            ),
            (
                "user/Repo".into(),
                RemoteNameContainsUppercase("user/Repo".into()),
            ),
            ("python:".into(), InvalidFormat),
            (":tag".into(), InvalidFormat),
            ("python:-tag".into(), InvalidFormat),
            (format!("python:{}", "t".repeat(129)), InvalidFormat),
            ("a/b:c/d".into(), InvalidFormat),
            ("-python".into(), InvalidFormat),
            ("py--.thon".into(), InvalidFormat),
            ("py...thon".into(), InvalidFormat),
            ("py___thon".into(), InvalidFormat),
            ("a//b".into(), InvalidFormat),
            ("a/".into(), InvalidFormat),
            ("host:port/x".into(), InvalidFormat),
            ("python@sha256:abc".into(), InvalidFormat),
            ("python@@sha256:abc".into(), InvalidFormat),
            (
                format!("python@md5:{}", &HEX[..32]),
                Digest(crate::digest::DigestError::Unsupported(format!(
                    "md5:{}",
                    &HEX[..32]
                ))),
            ),
            (
                format!("python@sha256:{}", &HEX[..40]),
                Digest(crate::digest::DigestError::Length(format!(
                    "sha256:{}",
                    &HEX[..40]
                ))),
            ),
            (long, NameTooLong),
            ("ex ample".into(), InvalidFormat),
            (
                "Host.com/App".into(),
                RemoteNameContainsUppercase("App".into()),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(
                Reference::parse_normalized(&input),
                Err(expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn plain_parse_reports_uppercase_and_empty() {
        assert_eq!(Reference::parse(""), Err(ReferenceError::NameEmpty));
        assert_eq!(
            Reference::parse("docker.io/Foo"),
            Err(ReferenceError::NameContainsUppercase)
        );
        assert_eq!(
            Reference::parse("UPPER"),
            Err(ReferenceError::NameContainsUppercase)
        );
        let plain = Reference::parse("foo/bar:1").unwrap();
        assert_eq!((plain.domain(), plain.path()), ("foo", "bar"));
    }

    #[test]
    fn retagging_validates() {
        let reference = Reference::parse_normalized("x").unwrap();
        assert_eq!(reference.with_tag("v2").unwrap().familiar(), "x:v2");
        assert_eq!(
            reference.with_tag("bad tag"),
            Err(ReferenceError::TagInvalidFormat)
        );
    }
}
