//! `ADD http://...`: a small HTTP/1.1 client (GET, redirects, chunked or sized bodies) on
//! std's TCP, so the build needs no async runtime. `https://` needs TLS, which distill does
//! not bundle yet: such sources are refused with a hint.
//!
//! As BuildKit's HTTP source: the file is named after the URL path's last segment
//! (`__unnamed__` when there is none), and its modification time is the `Last-Modified`
//! header when the server sends one. `--checksum=sha256:...` is checked before the file is
//! used.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// A downloaded file.
pub struct Fetched {
    pub name: String,
    pub content: Vec<u8>,
    /// From `Last-Modified`, seconds since the epoch.
    pub modified: Option<i64>,
}

const MAX_REDIRECTS: usize = 10;

/// The file name BuildKit gives a URL's download.
pub fn file_name(url: &str) -> String {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = without_scheme
        .split_once('/')
        .map_or("", |(_, path)| path)
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(name) if !name.is_empty() && name != "." && !path.ends_with('/') => name.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

/// Checks `content` against a `sha256:<hex>` checksum.
pub fn verify(content: &[u8], checksum: &str) -> Result<(), String> {
    let Some(expected) = checksum.strip_prefix("sha256:") else {
        return Err(format!(
            "unsupported checksum {checksum:?}: expected sha256:<64 hex digits>"
        ));
    };
    let actual: String = Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if actual != expected.to_ascii_lowercase() {
        return Err(format!(
            "digest mismatch: the download is sha256:{actual}, --checksum says {checksum}"
        ));
    }
    Ok(())
}

/// Downloads `url`.
pub fn fetch(url: &str) -> Result<Fetched, String> {
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        if current.starts_with("https://") {
            return Err(format!(
                "{current}: https downloads are not supported by distill yet (no TLS client)"
            ));
        }
        let rest = current
            .strip_prefix("http://")
            .ok_or_else(|| format!("{current}: not an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(index) => (&rest[..index], &rest[index..]),
            None => (rest, "/"),
        };
        let path = path.split('#').next().unwrap_or("/");
        let address = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let mut stream =
            TcpStream::connect(&address).map_err(|e| format!("{current}: connecting: {e}"))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        // One write: some servers read the request once.
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: distill\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("{current}: sending the request: {e}"))?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader
            .read_line(&mut status_line)
            .map_err(|e| format!("{current}: reading the response: {e}"))?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{current}: not an HTTP response: {status_line:?}"))?;
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("{current}: reading the response: {e}"))?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let location = header("location")
                .ok_or_else(|| format!("{current}: redirect without a Location"))?;
            current = if location.starts_with("http://") || location.starts_with("https://") {
                location.to_string()
            } else if location.starts_with('/') {
                format!("http://{authority}{location}")
            } else {
                let base = current
                    .rsplit_once('/')
                    .map_or(current.as_str(), |(b, _)| b);
                format!("{base}/{location}")
            };
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(format!(
                "{current}: the server answered {}",
                status_line.trim()
            ));
        }
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let mut content = Vec::new();
        if chunked {
            loop {
                let mut size_line = String::new();
                reader
                    .read_line(&mut size_line)
                    .map_err(|e| format!("{current}: reading the body: {e}"))?;
                let size_text = size_line.trim().split(';').next().unwrap_or("");
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| format!("{current}: bad chunk size {size_text:?}"))?;
                if size == 0 {
                    break;
                }
                let start = content.len();
                content.resize(start + size, 0);
                reader
                    .read_exact(&mut content[start..])
                    .map_err(|e| format!("{current}: reading the body: {e}"))?;
                let mut crlf = [0u8; 2];
                reader
                    .read_exact(&mut crlf)
                    .map_err(|e| format!("{current}: reading the body: {e}"))?;
            }
        } else if let Some(length) = header("content-length").and_then(|v| v.parse::<u64>().ok()) {
            reader
                .take(length)
                .read_to_end(&mut content)
                .map_err(|e| format!("{current}: reading the body: {e}"))?;
            if content.len() as u64 != length {
                return Err(format!(
                    "{current}: the body ended after {} of {length} bytes",
                    content.len()
                ));
            }
        } else {
            reader
                .read_to_end(&mut content)
                .map_err(|e| format!("{current}: reading the body: {e}"))?;
        }
        let modified = header("last-modified").and_then(parse_http_date);
        return Ok(Fetched {
            name: file_name(url),
            content,
            modified,
        });
    }
    Err(format!("{url}: more than {MAX_REDIRECTS} redirects"))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` to seconds since the epoch.
fn parse_http_date(text: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text, format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_buildkit() {
        assert_eq!(file_name("http://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(file_name("http://h/"), "__unnamed__");
        assert_eq!(file_name("http://h"), "__unnamed__");
        assert_eq!(file_name("http://h/dir/"), "__unnamed__");
    }

    #[test]
    fn dates_and_checksums() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        let sum = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert!(verify(b"hello", sum).is_ok());
        assert!(verify(b"hullo", sum)
            .unwrap_err()
            .contains("digest mismatch"));
        assert!(verify(b"x", "md5:abc").is_err());
    }

    #[test]
    fn downloads_from_a_local_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for answer in [
                "HTTP/1.1 302 Found\r\nLocation: /real/file.txt\r\nContent-Length: 0\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            ] {
                let (mut socket, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                socket.write_all(answer.as_bytes()).unwrap();
            }
        });
        let fetched = fetch(&format!("http://127.0.0.1:{port}/start")).unwrap();
        server.join().unwrap();
        assert_eq!(fetched.content, b"hello world");
        assert_eq!(fetched.name, "start");
        assert_eq!(fetched.modified, Some(784111777));
    }
}
