//! `ADD http://...` and `ADD https://...`: downloads with the semantics of BuildKit's HTTP
//! source, over `ureq` (a small synchronous HTTP/1.1 client, so the build needs no async
//! runtime) and `rustls` with the `ring` provider.
//!
//! TLS trusts the system's certificate store only (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set,
//! else the distribution's bundle), never roots compiled into distill: networks that re-sign
//! TLS with a local CA must work, and a certificate the system does not trust is refused.
//!
//! As BuildKit (its Dockerfile frontend names the file, so `Content-Disposition` is not used):
//! - the file is named after the URL path's last element, percent-decoded (`__unnamed__` when
//!   there is none), its mode is 0600 and its mtime the `Last-Modified` header, else the epoch;
//! - redirects are followed (at most 10, `http` to `https` too), any other answer than 2xx is an
//!   error, a gzip `Content-Encoding` is decoded as Go's client does;
//! - `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` are read as Go's `net/http` reads them (ureq
//!   tunnels `http://` requests with `CONNECT` too, where Go sends absolute-form requests);
//! - `--checksum=sha256:...` is checked before the file is used; with it, or with an `ETag`
//!   the server confirms, a rebuild's cache key is known without downloading ([`UrlSources`]).
//!
//! Remote archives are never extracted: that is the engine's rule, and this module only
//! downloads. Nothing a server sends can make it panic; every error names the URL.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use ureq::http::{Response, StatusCode, Uri};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::{Agent, Body, Proxy};

use crate::error::BuildError;

/// The URL sources of one `ADD`, downloaded at most once, and what stands for their content
/// in the step's cache key.
///
/// A download's identity is its digest and `Last-Modified` (both change the layer), or the
/// `--checksum` alone, as the cache key of BuildKit's HTTP source. It is known without
/// downloading from `--checksum`, or from the `ETag` of an earlier download when the server
/// answers `304 Not Modified` to `If-None-Match`; the validators are kept in the store's
/// `cache/http/`, one small JSON file per URL.
pub struct UrlSources<'a> {
    urls: &'a [String],
    checksum: Option<&'a str>,
    validators: PathBuf,
    /// Downloads made while revalidating (the server sent the content instead of a 304).
    fetched: Vec<Option<Download>>,
}

/// What an earlier download of a URL left for the next build.
#[derive(Serialize, Deserialize)]
struct Validator {
    url: String,
    etag: String,
    digest: String,
    last_modified: Option<String>,
}

impl<'a> UrlSources<'a> {
    /// `urls` as written; `validators` is the directory of remembered ETags.
    pub fn new(urls: &'a [String], checksum: Option<&'a str>, validators: PathBuf) -> Self {
        UrlSources {
            urls,
            checksum,
            validators,
            fetched: urls.iter().map(|_| None).collect(),
        }
    }

    /// Each URL's identity when all are known without downloading, else `None`.
    pub fn identities_without_download(&mut self) -> Result<Option<Vec<String>>, FetchError> {
        if let Some(checksum) = self.checksum {
            parse_checksum(checksum)?;
            return Ok(Some(
                self.urls.iter().map(|_| checksum.to_string()).collect(),
            ));
        }
        let mut identities = Vec::with_capacity(self.urls.len());
        for (index, url) in self.urls.iter().enumerate() {
            let Some(validator) = self.validator(url) else {
                return Ok(None);
            };
            match get(url, Some(&validator.etag), READ_TIMEOUT)? {
                Answer::NotModified(etag)
                    if etag
                        .as_deref()
                        .is_none_or(|tag| same_etag(tag, &validator.etag)) =>
                {
                    identities.push(identity(
                        &validator.digest,
                        validator.last_modified.as_deref(),
                    ));
                }
                Answer::NotModified(_) => return Ok(None),
                Answer::Fresh(response) => {
                    let download = read_download(url, response, None)?;
                    self.remember(url, &download);
                    identities.push(identity(
                        &download.digest,
                        download.last_modified.as_deref(),
                    ));
                    self.fetched[index] = Some(download);
                }
            }
        }
        Ok(Some(identities))
    }

    /// Every URL's download (checked against `--checksum`), with its identity.
    pub fn download(mut self) -> Result<Vec<(Download, String)>, FetchError> {
        let mut downloads = Vec::with_capacity(self.urls.len());
        for (index, url) in self.urls.iter().enumerate() {
            let download = match self.fetched[index].take() {
                Some(download) => download,
                None => {
                    let download = fetch(url, self.checksum)?;
                    self.remember(url, &download);
                    download
                }
            };
            let identity = match self.checksum {
                Some(checksum) => checksum.to_string(),
                None => identity(&download.digest, download.last_modified.as_deref()),
            };
            downloads.push((download, identity));
        }
        Ok(downloads)
    }

    fn validator_path(&self, url: &str) -> PathBuf {
        let name = sha256_digest(url.as_bytes());
        let hex = name.trim_start_matches("sha256:");
        self.validators.join(format!("{hex}.json"))
    }

    fn validator(&self, url: &str) -> Option<Validator> {
        let bytes = std::fs::read(self.validator_path(url)).ok()?;
        let validator: Validator = serde_json::from_slice(&bytes).ok()?;
        (validator.url == url).then_some(validator)
    }

    /// Keeps the download's ETag for the next build. Best effort: without it the next build
    /// downloads again, which is only slower.
    fn remember(&self, url: &str, download: &Download) {
        let Some(etag) = &download.etag else { return };
        let validator = Validator {
            url: url.to_string(),
            etag: etag.clone(),
            digest: download.digest.clone(),
            last_modified: download.last_modified.clone(),
        };
        let Ok(bytes) = serde_json::to_vec(&validator) else {
            return;
        };
        let path = self.validator_path(url);
        // Stages run in parallel: each writer has its own temporary file.
        static WRITERS: AtomicU64 = AtomicU64::new(0);
        let writer = WRITERS.fetch_add(1, Ordering::Relaxed);
        let temp = path.with_extension(format!("{}-{writer}.tmp", std::process::id()));
        let written = std::fs::create_dir_all(&self.validators)
            .and_then(|()| std::fs::write(&temp, &bytes))
            .and_then(|()| std::fs::rename(&temp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }
}

/// What stands for a download's content in a cache key.
fn identity(digest: &str, last_modified: Option<&str>) -> String {
    format!("{digest} {}", last_modified.unwrap_or(""))
}

/// Entity tags compared as BuildKit does: a weak tag (`W/"x"`) matches its strong form.
fn same_etag(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

/// A downloaded file.
pub struct Download {
    /// The name BuildKit gives it (see [`file_name`]).
    pub name: String,
    pub content: Vec<u8>,
    /// `sha256:<hex>` of `content`.
    pub digest: String,
    /// Seconds since the epoch: `Last-Modified`, or 0 without one (as BuildKit).
    pub modified: i64,
    /// The `Last-Modified` header as sent, for cache keys.
    pub last_modified: Option<String>,
    /// The `ETag` header as sent.
    pub etag: Option<String>,
}

/// A download that failed: what happened, at which URL, and what to do about it.
#[derive(Debug)]
pub struct FetchError {
    pub message: String,
    pub hint: Option<String>,
}

impl FetchError {
    fn new(message: impl Into<String>) -> FetchError {
        FetchError {
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> FetchError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl From<FetchError> for BuildError {
    fn from(error: FetchError) -> BuildError {
        let built = BuildError::message(error.message);
        match error.hint {
            Some(hint) => built.with_hint(hint),
            None => built,
        }
    }
}

/// Go's `http.Client` follows at most 10 redirects.
const MAX_REDIRECTS: usize = 10;
/// Go's default dialer gives a connection 30 seconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A server silent for this long is given up (Go waits forever; a build should not).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("distill/", env!("CARGO_PKG_VERSION"));

/// The file name BuildKit's Dockerfile frontend gives a URL's download: `path.Base` of the
/// URL's decoded path, or `__unnamed__` when that is `.` or `/` (or the URL does not parse).
pub fn file_name(url: &str) -> String {
    const UNNAMED: &str = "__unnamed__";
    let without_fragment = url.split('#').next().unwrap_or("");
    let without_query = without_fragment.split('?').next().unwrap_or("");
    let path = match without_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => without_query,
    };
    let Some(decoded) = percent_decode(path) else {
        return UNNAMED.to_string();
    };
    let trimmed = decoded.trim_end_matches('/');
    let base = trimmed.rsplit('/').next().unwrap_or("");
    if base.is_empty() || base == "." {
        UNNAMED.to_string()
    } else {
        base.to_string()
    }
}

/// `%XX` escapes decoded as Go's `url.Parse` does for a path; `None` for a bad escape or a
/// result that is not UTF-8 (a file name must be a string).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The `sha256:<64 lowercase hex digits>` of `--checksum`, checked before any download.
pub fn parse_checksum(checksum: &str) -> Result<&str, FetchError> {
    let valid = checksum.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if valid {
        Ok(checksum)
    } else {
        Err(FetchError::new(format!(
            "invalid checksum {checksum:?}: expected sha256: and 64 lowercase hexadecimal digits"
        )))
    }
}

fn sha256_digest(content: &[u8]) -> String {
    let hex: String = Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Downloads `url`; with a `checksum`, refuses content of another digest.
pub fn fetch(url: &str, checksum: Option<&str>) -> Result<Download, FetchError> {
    fetch_within(url, checksum, READ_TIMEOUT)
}

/// [`fetch`], giving up when the server is silent for `read_timeout`.
fn fetch_within(
    url: &str,
    checksum: Option<&str>,
    read_timeout: Duration,
) -> Result<Download, FetchError> {
    let expected = checksum.map(parse_checksum).transpose()?;
    let Answer::Fresh(response) = get(url, None, read_timeout)? else {
        // Only a conditional request can be answered "not modified".
        return Err(FetchError::new(format!(
            "{url}: the server answered 304 Not Modified to an unconditional request"
        )));
    };
    read_download(url, response, expected)
}

/// Reads a 2xx answer's body; with a checksum, refuses content of another digest.
fn read_download(
    url: &str,
    response: Response<Body>,
    expected: Option<&str>,
) -> Result<Download, FetchError> {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let last_modified = header("last-modified");
    let etag = header("etag");
    let length = header("content-length").and_then(|v| v.parse::<u64>().ok());
    // Reserve what the server announces (no copy as the body grows), within reason: it may
    // lie, and untouched capacity costs no memory.
    let mut content = Vec::with_capacity(length.unwrap_or(0).min(1 << 30) as usize);
    response
        .into_body()
        .into_reader()
        .read_to_end(&mut content)
        .map_err(|e| {
            let at = format!("{url}: reading the body");
            describe(&at, ureq::Error::from(e))
        })?;
    let digest = sha256_digest(&content);
    if let Some(expected) = expected {
        if digest != expected {
            return Err(FetchError::new(format!(
                "{url}: digest mismatch: --checksum expects {expected}, the download is {digest}"
            ))
            .hint("if the file changed on purpose, update --checksum to the new digest"));
        }
    }
    Ok(Download {
        name: file_name(url),
        content,
        digest,
        modified: last_modified
            .as_deref()
            .and_then(parse_http_date)
            .unwrap_or(0),
        last_modified,
        etag,
    })
}

/// What the server answered a GET, after redirects.
enum Answer {
    Fresh(Response<Body>),
    /// `304 Not Modified` to an `If-None-Match`: the entity tag it names, if any.
    NotModified(Option<String>),
}

/// GETs `url`, following redirects, with `If-None-Match` when given; a server silent for
/// `read_timeout` is given up.
fn get(
    url: &str,
    if_none_match: Option<&str>,
    read_timeout: Duration,
) -> Result<Answer, FetchError> {
    // The fragment is the client's, never sent.
    let mut current = url.split('#').next().unwrap_or(url).to_string();
    for _ in 0..=MAX_REDIRECTS {
        let at = if current == url {
            url.to_string()
        } else {
            format!("{current} (redirected from {url})")
        };
        let uri: Uri = current
            .parse()
            .map_err(|e| FetchError::new(format!("{at}: not a valid URL: {e}")))?;
        let agent = agent(&uri, &at, read_timeout)?;
        let mut request = agent.get(&uri);
        if let Some(tags) = if_none_match {
            request = request.header("If-None-Match", tags);
        }
        let response = request.call().map_err(|e| describe(&at, e))?;
        let status = response.status();
        if is_followed_redirect(status) {
            let location = response
                .headers()
                .get("location")
                .and_then(|value| value.to_str().ok())
                .ok_or_else(|| {
                    FetchError::new(format!("{at}: {} without a Location", reason(status)))
                })?;
            current = resolve_reference(&current, location)
                .ok_or_else(|| {
                    FetchError::new(format!(
                        "{at}: redirected to {location:?}, which is not an http(s) URL"
                    ))
                })?
                .split('#')
                .next()
                .unwrap_or("")
                .to_string();
            continue;
        }
        if status == StatusCode::NOT_MODIFIED && if_none_match.is_some() {
            let etag = response
                .headers()
                .get("etag")
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            return Ok(Answer::NotModified(etag));
        }
        if !status.is_success() {
            return Err(FetchError::new(format!(
                "{at}: the server answered {}",
                reason(status)
            )));
        }
        return Ok(Answer::Fresh(response));
    }
    Err(FetchError::new(format!(
        "{url}: stopped after {MAX_REDIRECTS} redirects"
    )))
}

/// The redirects Go's client follows for a GET.
fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn reason(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(text) => format!("{} {text}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A `Location` resolved against the URL that sent it (RFC 3986 section 5.2, as Go's
/// `URL.ResolveReference`); `None` when the result is not an http(s) URL.
fn resolve_reference(base: &str, reference: &str) -> Option<String> {
    let scheme_end = base.find("://")?;
    let scheme = &base[..scheme_end];
    let after_scheme = &base[scheme_end + 3..];
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let origin = &base[..scheme_end + 3 + authority_end];
    let base_rest = &after_scheme[authority_end..];
    let base_path = base_rest.split(['?', '#']).next().unwrap_or("");

    let has_scheme = reference.split_once(':').is_some_and(|(head, _)| {
        !head.is_empty()
            && head.starts_with(|c: char| c.is_ascii_alphabetic())
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let resolved = if has_scheme {
        reference.to_string()
    } else if let Some(network_path) = reference.strip_prefix("//") {
        format!("{scheme}://{network_path}")
    } else if reference.starts_with('/') {
        let (path, rest) = split_path(reference);
        format!("{origin}{}{rest}", remove_dot_segments(path))
    } else if reference.is_empty() || reference.starts_with('#') {
        format!("{origin}{}", base_rest.split('#').next().unwrap_or(""))
    } else if reference.starts_with('?') {
        format!("{origin}{base_path}{reference}")
    } else {
        let directory = match base_path.rfind('/') {
            Some(slash) => &base_path[..=slash],
            None => "/",
        };
        let (path, rest) = split_path(reference);
        format!(
            "{origin}{}{rest}",
            remove_dot_segments(&format!("{directory}{path}"))
        )
    };
    let lower = resolved.to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://")).then_some(resolved)
}

/// A reference's path and what follows it (query, fragment).
fn split_path(reference: &str) -> (&str, &str) {
    let end = reference.find(['?', '#']).unwrap_or(reference.len());
    reference.split_at(end)
}

/// RFC 3986's remove_dot_segments for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if index == last {
                    output.push("");
                }
            }
            ".." => {
                output.pop();
                if index == last {
                    output.push("");
                }
            }
            other => output.push(other),
        }
    }
    format!("/{}", output.join("/"))
}

/// A client for one request: the proxy its scheme and host call for, the system's roots.
fn agent(uri: &Uri, at: &str, read_timeout: Duration) -> Result<Agent, FetchError> {
    let https = match uri.scheme_str() {
        Some(scheme) if scheme.eq_ignore_ascii_case("https") => true,
        Some(scheme) if scheme.eq_ignore_ascii_case("http") => false,
        _ => {
            return Err(FetchError::new(format!(
                "{at}: only http:// and https:// URLs can be downloaded"
            )))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| FetchError::new(format!("{at}: the URL has no host")))?;
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let proxy = proxy_for(https, host, port, &|name| std::env::var(name).ok())
        .map_err(|e| FetchError::new(format!("{at}: {e}")))?;
    let mut config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(proxy)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(read_timeout))
        .user_agent(USER_AGENT);
    if https {
        let roots = system_roots().map_err(|why| {
            FetchError::new(format!("{at}: no trusted certificates: {why}"))
                .hint("install the ca-certificates package, or point SSL_CERT_FILE at a PEM bundle")
        })?;
        config = config.tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::Specific(roots))
                .build(),
        );
    }
    Ok(config.build().new_agent())
}

/// The system's trusted certificates, read once per process.
fn system_roots() -> Result<Arc<Vec<Certificate<'static>>>, String> {
    static ROOTS: OnceLock<Result<Arc<Vec<Certificate<'static>>>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                return Err(match found.errors.first() {
                    Some(error) => error.to_string(),
                    None => "the system's certificate store is empty".to_string(),
                });
            }
            Ok(Arc::new(
                found
                    .certs
                    .iter()
                    .map(|der| Certificate::from_der(der.as_ref()).to_owned())
                    .collect(),
            ))
        })
        .clone()
}

/// The proxy Go's `httpproxy.FromEnvironment` picks for a request: `HTTPS_PROXY` for https,
/// `HTTP_PROXY` for http (not under CGI), none for localhost, loopback addresses and hosts
/// `NO_PROXY` lists. Upper-case names win over lower-case ones.
fn proxy_for(
    https: bool,
    host: &str,
    port: u16,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, String> {
    let any = |upper: &str, lower: &str| {
        env(upper)
            .filter(|v| !v.is_empty())
            .or_else(|| env(lower).filter(|v| !v.is_empty()))
    };
    let (variable, value) = if https {
        ("HTTPS_PROXY", any("HTTPS_PROXY", "https_proxy"))
    } else if env("REQUEST_METHOD").is_some() {
        ("HTTP_PROXY", None)
    } else {
        ("HTTP_PROXY", any("HTTP_PROXY", "http_proxy"))
    };
    let Some(value) = value else { return Ok(None) };
    let no_proxy = any("NO_PROXY", "no_proxy").unwrap_or_default();
    if !use_proxy(host, port, &no_proxy) {
        return Ok(None);
    }
    let address = if value.contains("://") {
        value.clone()
    } else {
        format!("http://{value}")
    };
    Proxy::new(&address)
        .map(Some)
        .map_err(|e| format!("invalid proxy {value:?} in {variable}: {e}"))
}

/// Whether a request to `host:port` goes through the proxy, by Go's `NO_PROXY` rules:
/// `*` matches all; `a.b` matches `a.b` and its subdomains, `.a.b` and `*.a.b` only the
/// subdomains; an entry's port, when it has one, must be the request's; IP addresses and
/// CIDR blocks match addresses.
fn use_proxy(host: &str, port: u16, no_proxy: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host == "localhost" {
        return false;
    }
    let address: Option<IpAddr> = host.parse().ok();
    if address.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    for entry in no_proxy.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        if let Some((network, bits)) = entry.split_once('/') {
            if let (Some(ip), Ok(network), Ok(bits)) =
                (address, network.parse::<IpAddr>(), bits.parse::<u32>())
            {
                if in_network(ip, network, bits) {
                    return false;
                }
            }
            continue;
        }
        if let Ok(ip) = entry
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            if address == Some(ip) {
                return false;
            }
            continue;
        }
        let (name, entry_port) = match entry.rsplit_once(':') {
            Some((name, digits)) if digits.parse::<u16>().is_ok() => {
                (name.to_string(), digits.parse::<u16>().ok())
            }
            _ => (entry.clone(), None),
        };
        if entry_port.is_some_and(|p| p != port) {
            continue;
        }
        if let Ok(ip) = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            if address == Some(ip) {
                return false;
            }
            continue;
        }
        let name = name.strip_prefix('*').unwrap_or(&name);
        let matched = if name.starts_with('.') {
            host.ends_with(name)
        } else {
            host == name || host.ends_with(&format!(".{name}"))
        };
        if matched {
            return false;
        }
    }
    true
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u32) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

const RESOLVE_HINT: &str =
    "check the host name, the DNS configuration (/etc/resolv.conf) and HTTP(S)_PROXY";

/// A failed request in words, with a hint where the user can act.
fn describe(at: &str, error: ureq::Error) -> FetchError {
    if let Some(tls) = tls_error(&error) {
        return match tls {
            rustls::Error::InvalidCertificate(_) => {
                FetchError::new(format!("{at}: certificate verification failed: {tls}")).hint(
                    "distill trusts the system's certificate store (SSL_CERT_FILE, SSL_CERT_DIR, \
                 /etc/ssl/certs): add the server's CA there (update-ca-certificates)",
                )
            }
            other => FetchError::new(format!("{at}: TLS failed: {other}")),
        };
    }
    match error {
        ureq::Error::HostNotFound => {
            FetchError::new(format!("{at}: cannot resolve the host name")).hint(RESOLVE_HINT)
        }
        // std's resolver says so in these words (getaddrinfo's reason follows them).
        ureq::Error::Io(io) if io.to_string().contains("failed to lookup address") => {
            FetchError::new(format!("{at}: {io}")).hint(RESOLVE_HINT)
        }
        ureq::Error::Timeout(ureq::Timeout::Connect) => {
            FetchError::new(format!("{at}: connecting timed out"))
        }
        ureq::Error::Timeout(ureq::Timeout::PerRead) => FetchError::new(format!(
            "{at}: timed out waiting for the server to send data"
        )),
        ureq::Error::Timeout(what) => FetchError::new(format!("{at}: timed out ({what})")),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            FetchError::new(format!("{at}: connecting: {io}"))
        }
        ureq::Error::Io(io) => FetchError::new(format!("{at}: {io}")),
        other => FetchError::new(format!("{at}: {other}")),
    }
}

/// The rustls error behind a ureq error, if that is what it is.
fn tls_error(error: &ureq::Error) -> Option<&rustls::Error> {
    match error {
        ureq::Error::Rustls(tls) => Some(tls),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

/// An HTTP date in any of the three forms Go's `http.ParseTime` accepts (RFC 1123, RFC 850,
/// ANSI C), to seconds since the epoch.
fn parse_http_date(text: &str) -> Option<i64> {
    use time::macros::format_description;
    let text = text.trim();
    let rfc1123 = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let ansi_c = format_description!(
        "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
    );
    let rfc850 = format_description!(
        "[weekday repr:long], [day]-[month repr:short]-[year] [hour]:[minute]:[second] GMT"
    );
    if let Ok(parsed) = time::PrimitiveDateTime::parse(text, rfc1123)
        .or_else(|_| time::PrimitiveDateTime::parse(text, ansi_c))
    {
        return Some(parsed.assume_utc().unix_timestamp());
    }
    // RFC 850 writes two year digits: Go reads 69-99 as 19xx and 00-68 as 20xx.
    let (head, tail) = text.split_once(", ")?;
    let mut date_parts = tail.splitn(3, '-');
    let (day, month, rest) = (date_parts.next()?, date_parts.next()?, date_parts.next()?);
    let (year, time_of_day) = rest.split_once(' ')?;
    let two: u32 = year.parse().ok().filter(|_| year.len() == 2)?;
    let century = if two >= 69 { 1900 } else { 2000 };
    let expanded = format!("{head}, {day}-{month}-{} {time_of_day}", century + two);
    time::PrimitiveDateTime::parse(&expanded, rfc850)
        .ok()
        .map(|parsed| parsed.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names_like_buildkit() {
        assert_eq!(file_name("http://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(file_name("http://h/a/b.txt#frag"), "b.txt");
        assert_eq!(file_name("http://h/"), "__unnamed__");
        assert_eq!(file_name("http://h"), "__unnamed__");
        assert_eq!(file_name("http://h?q=/a/b"), "__unnamed__");
        // Go's path.Base drops trailing slashes.
        assert_eq!(file_name("https://h/dir/"), "dir");
        assert_eq!(file_name("https://h/a%20b.txt"), "a b.txt");
        assert_eq!(file_name("https://h/bad%zz"), "__unnamed__");
        assert_eq!(file_name("https://h/a/."), "__unnamed__");
    }

    #[test]
    fn dates_in_the_three_http_forms() {
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(form), Some(784111777), "{form}");
        }
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 CET"), None);
    }

    #[test]
    fn checksums_are_sha256_in_lowercase_hex() {
        let sum = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(parse_checksum(sum).unwrap(), sum);
        assert_eq!(sha256_digest(b"hello"), sum);
        assert!(parse_checksum("md5:abc").is_err());
        assert!(parse_checksum(&sum.to_uppercase().replace("SHA256", "sha256")).is_err());
        assert!(parse_checksum("sha256:abc").is_err());
    }

    #[test]
    fn redirect_locations_resolve_as_rfc_3986() {
        let base = "http://h:8/a/b/c?q#f";
        assert_eq!(
            resolve_reference(base, "https://x/y").as_deref(),
            Some("https://x/y")
        );
        assert_eq!(
            resolve_reference(base, "//x/y").as_deref(),
            Some("http://x/y")
        );
        assert_eq!(
            resolve_reference(base, "/d/./e/../f?z").as_deref(),
            Some("http://h:8/d/f?z")
        );
        assert_eq!(
            resolve_reference(base, "d").as_deref(),
            Some("http://h:8/a/b/d")
        );
        assert_eq!(
            resolve_reference(base, "../d").as_deref(),
            Some("http://h:8/a/d")
        );
        assert_eq!(
            resolve_reference(base, "?z").as_deref(),
            Some("http://h:8/a/b/c?z")
        );
        assert_eq!(
            resolve_reference("http://h", "d").as_deref(),
            Some("http://h/d")
        );
        assert_eq!(resolve_reference(base, "ftp://x/y"), None);
    }

    #[test]
    fn proxies_as_go_picks_them() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let picked = |https, host, pairs: &'static [(&'static str, &'static str)]| {
            proxy_for(https, host, if https { 443 } else { 80 }, &env(pairs))
                .unwrap()
                .map(|p| format!("{}:{}", p.host(), p.port()))
        };
        let both = &[("HTTP_PROXY", "p1:3128"), ("https_proxy", "http://p2:8080")];
        assert_eq!(
            picked(false, "example.com", both).as_deref(),
            Some("p1:3128")
        );
        assert_eq!(
            picked(true, "example.com", both).as_deref(),
            Some("p2:8080")
        );
        assert_eq!(picked(true, "127.0.0.1", both), None);
        assert_eq!(picked(true, "localhost", both), None);
        assert_eq!(
            picked(true, "example.com", &[("HTTP_PROXY", "p1:3128")]),
            None
        );
        assert_eq!(
            picked(
                false,
                "example.com",
                &[("HTTP_PROXY", "p1"), ("REQUEST_METHOD", "GET")]
            ),
            None
        );
        assert!(use_proxy("example.com", 443, "other.org, .example.org"));
        assert!(!use_proxy("example.com", 443, "other.org, example.com"));
        assert!(!use_proxy("deb.example.com", 443, "example.com"));
        assert!(use_proxy("example.com", 443, ".example.com"));
        assert!(!use_proxy("deb.example.com", 443, "*.example.com"));
        assert!(use_proxy("example.com", 443, "example.com:80"));
        assert!(!use_proxy("example.com", 80, "example.com:80"));
        assert!(!use_proxy("10.1.2.3", 80, "10.0.0.0/8"));
        assert!(use_proxy("11.1.2.3", 80, "10.0.0.0/8"));
        assert!(!use_proxy("[fd00::1]", 80, "fd00::/8"));
        assert!(!use_proxy("192.168.1.1", 80, "192.168.1.1"));
        assert!(!use_proxy("anything", 80, "*"));
    }

    /// Answers each connection with the next canned response (an empty one: silence), and
    /// returns the requests.
    fn serve(answers: Vec<String>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for answer in answers {
                let (mut socket, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                requests.push(String::from_utf8_lossy(&request).into_owned());
                socket.write_all(answer.as_bytes()).unwrap();
                if answer.is_empty() {
                    // Silent: hold the connection until the client gives up.
                    let _ = socket.read(&mut buffer);
                }
            }
            requests
        });
        (port, server)
    }

    #[test]
    fn follows_redirects_and_reads_chunked_bodies() {
        let (port, server) = serve(vec![
            "HTTP/1.1 302 Found\r\nLocation: /real/file.txt\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"v1\"\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".into(),
        ]);
        let fetched = fetch(&format!("http://127.0.0.1:{port}/start"), None).unwrap();
        let requests = server.join().unwrap();
        assert_eq!(fetched.content, b"hello world");
        assert_eq!(fetched.name, "start");
        assert_eq!(fetched.modified, 784111777);
        assert_eq!(fetched.etag.as_deref(), Some("\"v1\""));
        assert!(
            requests[1].starts_with("GET /real/file.txt HTTP/1.1\r\n"),
            "{requests:?}"
        );
    }

    #[test]
    fn errors_name_the_url_and_status() {
        let (port, server) = serve(vec![
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhullo".into(),
        ]);
        let url = format!("http://127.0.0.1:{port}/missing");
        let missing = fetch(&url, None).err().unwrap();
        assert_eq!(
            missing.message,
            format!("{url}: the server answered 404 Not Found")
        );
        let sum = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let mismatch = fetch(&url, Some(sum)).err().unwrap();
        server.join().unwrap();
        assert!(
            mismatch.message.contains(&format!("expects {sum}")),
            "{mismatch}"
        );
        assert!(
            mismatch.message.contains(&sha256_digest(b"hullo")),
            "{mismatch}"
        );
        // A bad checksum is refused before any connection (nothing listens there).
        let refused = fetch("http://127.0.0.1:1/x", Some("sha256:zz"))
            .err()
            .unwrap();
        assert!(refused.message.contains("invalid checksum"), "{refused}");
        let unreachable = fetch("http://127.0.0.1:1/x", None).err().unwrap();
        assert!(
            unreachable
                .message
                .starts_with("http://127.0.0.1:1/x: connecting"),
            "{unreachable}"
        );
    }

    /// Download speed, by hand: `DISTILL_FETCH_BENCH_URL=https://... cargo test --release -p
    /// distill-executor fetch::tests::download_speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark against a server given in DISTILL_FETCH_BENCH_URL"]
    fn download_speed() {
        let url = std::env::var("DISTILL_FETCH_BENCH_URL").expect("DISTILL_FETCH_BENCH_URL");
        let start = std::time::Instant::now();
        let download = fetch(&url, None).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        let megabytes = download.content.len() as f64 / 1e6;
        assert!(megabytes > 0.0, "nothing downloaded");
        eprintln!(
            "{megabytes:.1} MB in {seconds:.3} s: {:.0} MB/s ({})",
            megabytes / seconds,
            download.digest
        );
    }

    #[test]
    fn a_silent_server_times_out() {
        let (port, server) = serve(vec![String::new()]);
        let url = format!("http://127.0.0.1:{port}/silent");
        let silent = fetch_within(&url, None, Duration::from_millis(300)).err();
        server.join().unwrap();
        let silent = silent.expect("a server that never answers must time out");
        assert!(silent.message.starts_with(&url), "{silent}");
        assert!(silent.message.contains("timed out"), "{silent}");
    }

    #[test]
    fn a_short_body_is_an_error() {
        let (port, server) = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello".into(),
        ]);
        let url = format!("http://127.0.0.1:{port}/short");
        let short = fetch(&url, None).err();
        server.join().unwrap();
        let short = short.expect("a body shorter than its Content-Length must fail");
        assert!(short.message.starts_with(&url), "{short}");
    }
}
