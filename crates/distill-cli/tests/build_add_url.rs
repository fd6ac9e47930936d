//! `ADD <url>` end to end: the real binary downloads from real servers on 127.0.0.1 — a
//! hand-written HTTP/1.1 answer, and Python's `http.server` behind its `ssl` module with a
//! certificate authority made for the test by the `openssl` command. distill trusts that CA
//! only through `SSL_CERT_FILE`, as a machine trusts a local CA in its certificate store.

mod build_util;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use build_util::{built_steps, cached_steps, read, Run, World};

/// Serves `body` to every connection on 127.0.0.1, for as long as the test runs.
fn serve(body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { continue };
            let mut request = [0u8; 2048];
            let _ = socket.read(&mut request);
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes());
        }
    });
    port
}

#[test]
fn add_downloads_with_a_checksum() {
    let world = World::new();
    let port = serve("hello");
    let sum = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    world.dockerfile(&format!(
        "FROM scratch\nADD --checksum={sum} http://127.0.0.1:{port}/files/greeting.txt /dl/\n"
    ));
    let out = world.export_local(&["-t", "dl:1"]);
    let path = out.join("dl/greeting.txt");
    assert_eq!(read(&path), "hello");
    let meta = fs::symlink_metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta.mtime(), 784111777);
    let history = world.config("dl:1").history;
    assert_eq!(
        history[0].created_by.as_deref(),
        Some(format!("ADD http://127.0.0.1:{port}/files/greeting.txt /dl/ # buildkit").as_str())
    );
    // With the checksum known, a rebuild is a cache hit without any download.
    world.dockerfile(&format!(
        "FROM scratch\nADD --checksum={sum} http://127.0.0.1:1/files/greeting.txt /dl/\n"
    ));
    let wrong_port = world.build_fails(&[]);
    assert!(
        wrong_port.stderr.contains("connecting"),
        "{}",
        wrong_port.stderr
    );
    world.dockerfile(&format!(
        "FROM scratch\nADD --checksum={sum} http://127.0.0.1:{port}/files/greeting.txt /dl/\n"
    ));
    let again = world.build(&[]);
    assert_eq!(cached_steps(&again.stderr).len(), 1, "{}", again.stderr);

    let bad = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    world.dockerfile(&format!(
        "FROM scratch\nADD --checksum={bad} http://127.0.0.1:{port}/x /x\n"
    ));
    let failed = world.build_fails(&[]);
    assert!(
        failed.stderr.contains("digest mismatch"),
        "{}",
        failed.stderr
    );
}

/// Whether `openssl` and `python3` are here: DISTILL_E2E=1 requires them (scripts/test-deps
/// installs them); without it a machine lacking them skips the HTTPS tests, saying so.
fn tools_ready(test: &str) -> bool {
    let found = |tool: &str, version: &str| {
        Command::new(tool)
            .arg(version)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = [("openssl", "version"), ("python3", "--version")]
        .into_iter()
        .filter(|(tool, version)| !found(tool, version))
        .map(|(tool, _)| tool)
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("DISTILL_E2E").map_or(true, |v| v != "1"),
        "DISTILL_E2E=1 but {missing:?} missing: run scripts/test-deps"
    );
    eprintln!("skipped {test}: {missing:?} not installed (scripts/test-deps installs them)");
    false
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A throwaway certificate authority (`NAME.pem`, `NAME.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (pem, key, subject) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("/CN=distill test {name}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// The HTTPS and HTTP test server, stopped when dropped.
struct WebServer {
    child: Child,
    https: u16,
    http: u16,
    log: PathBuf,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// Another CA, which signed nothing this server shows.
    stranger: PathBuf,
    /// An empty directory, so `SSL_CERT_DIR` adds no certificates.
    no_dir: PathBuf,
}

impl WebServer {
    fn start(world: &World, big_file: Option<&Path>) -> WebServer {
        let dir = world.path("tls");
        fs::create_dir_all(dir.join("empty")).unwrap();
        make_ca(&dir, "ca");
        make_ca(&dir, "stranger");
        fs::write(
            dir.join("server.ext"),
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\n\
                 subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:{PROXIED_HOST}\n"
            ),
        )
        .unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        let log = dir.join("requests.log");
        fs::write(&log, "").unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/add_url_server.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(dir.join("server.pem"))
            .arg(dir.join("server.key"))
            .arg(&log);
        if let Some(big) = big_file {
            command.arg(big);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ports: Vec<u16> = line
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(ports.len(), 2, "the server printed {line:?}");
        WebServer {
            child,
            https: ports[0],
            http: ports[1],
            log,
            ca: dir.join("ca.pem"),
            stranger: dir.join("stranger.pem"),
            no_dir: dir.join("empty"),
        }
    }

    fn requests(&self) -> Vec<String> {
        read(&self.log).lines().map(str::to_string).collect()
    }

    /// `distill build --progress plain ARGS... ctx` trusting `ca` only.
    fn build(&self, world: &World, ca: &Path, args: &[&str]) -> Run {
        self.build_with_proxies(world, ca, args, &[])
    }

    /// The same, with the proxy variables `proxies` set (and no others).
    fn build_with_proxies(
        &self,
        world: &World,
        ca: &Path,
        args: &[&str],
        proxies: &[(&str, &str)],
    ) -> Run {
        let context = world.context();
        let mut all = vec!["build", "--progress", "plain"];
        all.extend_from_slice(args);
        all.push(context.to_str().unwrap());
        let mut env = vec![
            ("SSL_CERT_FILE", ca.to_str().unwrap()),
            ("SSL_CERT_DIR", self.no_dir.to_str().unwrap()),
        ];
        for name in [
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "NO_PROXY",
            "https_proxy",
            "http_proxy",
            "no_proxy",
        ] {
            let value = proxies
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, v)| v);
            env.push((name, value));
        }
        world.distill_env(&all, &env)
    }

    fn build_ok(&self, world: &World, args: &[&str]) -> Run {
        let run = self.build(world, &self.ca, args);
        assert_eq!(run.code, 0, "build failed:\n{}", run.stderr);
        run
    }

    fn build_fails(&self, world: &World, ca: &Path) -> Run {
        let run = self.build(world, ca, &[]);
        assert_eq!(
            run.code, 1,
            "build did not fail as expected:\n{}",
            run.stderr
        );
        run
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name that does not resolve, which the test proxy sends to 127.0.0.1.
const PROXIED_HOST: &str = "distill-proxy-test.invalid";

const HELLO_SUM: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

#[test]
fn add_https_downloads_as_buildkit() {
    if !tools_ready("add_https_downloads_as_buildkit") {
        return;
    }
    let world = World::new();
    let server = WebServer::start(&world, None);
    let https = server.https;
    world.dockerfile(&format!(
        "FROM scratch\nADD https://127.0.0.1:{https}/files/greeting.txt https://127.0.0.1:{https}/no-date.txt /dl/\n"
    ));
    let out = world.path("out");
    let output = format!("type=local,dest={}", out.display());
    server.build_ok(&world, &["-o", &output, "-t", "dl:1"]);
    let greeting = out.join("dl/greeting.txt");
    assert_eq!(read(&greeting), "hello");
    let meta = fs::symlink_metadata(&greeting).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta.mtime(), 784111777, "Last-Modified is the file's time");
    // Without Last-Modified BuildKit's HTTP source sets the epoch.
    let undated = out.join("dl/no-date.txt");
    assert_eq!(read(&undated), "undated");
    assert_eq!(fs::symlink_metadata(&undated).unwrap().mtime(), 0);
    let history = world.config("dl:1").history;
    assert_eq!(
        history[0].created_by.as_deref(),
        Some(
            format!(
                "ADD https://127.0.0.1:{https}/files/greeting.txt https://127.0.0.1:{https}/no-date.txt /dl/ # buildkit"
            )
            .as_str()
        )
    );

    // Without a checksum a rebuild downloads again; the same content is a cache hit.
    let before = server.requests().len();
    let again = server.build_ok(&world, &[]);
    assert_eq!(cached_steps(&again.stderr).len(), 1, "{}", again.stderr);
    assert!(server.requests().len() > before, "{:?}", server.requests());
}

#[test]
fn add_https_checksums() {
    if !tools_ready("add_https_checksums") {
        return;
    }
    let world = World::new();
    let server = WebServer::start(&world, None);
    let url = format!("https://127.0.0.1:{}/files/greeting.txt", server.https);
    world.dockerfile(&format!(
        "FROM scratch\nADD --checksum={HELLO_SUM} {url} /greeting\n"
    ));
    let first = server.build_ok(&world, &[]);
    assert_eq!(built_steps(&first.stderr).len(), 1, "{}", first.stderr);
    // With the checksum known, a rebuild is a cache hit that asks the server nothing.
    let before = server.requests();
    let again = server.build_ok(&world, &[]);
    assert_eq!(cached_steps(&again.stderr).len(), 1, "{}", again.stderr);
    assert_eq!(server.requests(), before);

    let wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    world.dockerfile(&format!(
        "FROM scratch\nADD --checksum={wrong} {url} /greeting\n"
    ));
    let failed = server.build_fails(&world, &server.ca);
    assert_mentions(
        &failed.stderr,
        &[
            "Dockerfile:2",
            url.as_str(),
            "digest mismatch",
            wrong,
            HELLO_SUM,
        ],
    );
}

#[test]
fn add_https_failures_name_the_line_and_the_url() {
    if !tools_ready("add_https_failures_name_the_line_and_the_url") {
        return;
    }
    let world = World::new();
    let server = WebServer::start(&world, None);
    let missing = format!("https://127.0.0.1:{}/missing.txt", server.https);
    world.dockerfile(&format!("FROM scratch\nADD {missing} /m\n"));
    let failed = server.build_fails(&world, &server.ca);
    assert_mentions(
        &failed.stderr,
        &["Dockerfile:2", missing.as_str(), "404 Not Found"],
    );

    // A server whose certificate the system does not trust is refused.
    let url = format!("https://127.0.0.1:{}/files/greeting.txt", server.https);
    world.dockerfile(&format!("FROM scratch\nADD {url} /g\n"));
    let untrusted = server.build_fails(&world, &server.stranger);
    assert_mentions(
        &untrusted.stderr,
        &[
            "Dockerfile:2",
            url.as_str(),
            "certificate verification failed",
        ],
    );
    assert!(untrusted.stderr.contains("hint:"), "{}", untrusted.stderr);
    assert!(
        !untrusted.stderr.contains("panicked"),
        "{}",
        untrusted.stderr
    );

    // A host name that cannot resolve.
    world.dockerfile("FROM scratch\nADD https://distill-test.invalid/x /x\n");
    let unresolved = server.build_fails(&world, &server.ca);
    assert_mentions(
        &unresolved.stderr,
        &[
            "Dockerfile:2",
            "https://distill-test.invalid/x",
            "hint: check the host",
        ],
    );
}

#[test]
fn add_follows_a_redirect_from_http_to_https() {
    if !tools_ready("add_follows_a_redirect_from_http_to_https") {
        return;
    }
    let world = World::new();
    let server = WebServer::start(&world, None);
    world.dockerfile(&format!(
        "FROM scratch\nADD --checksum={HELLO_SUM} http://127.0.0.1:{}/to-https /r/\n",
        server.http
    ));
    let out = world.path("out");
    let output = format!("type=local,dest={}", out.display());
    server.build_ok(&world, &["-o", &output]);
    // Named after the URL written in the Dockerfile, not the one redirected to.
    let file = out.join("r/to-https");
    assert_eq!(read(&file), "hello");
    assert_eq!(fs::symlink_metadata(&file).unwrap().mtime(), 784111777);
    let requests = server.requests();
    assert_eq!(
        requests,
        ["GET /to-https -", "GET /files/greeting.txt -"],
        "{requests:?}"
    );
}

#[test]
fn add_https_revalidates_with_the_etag() {
    if !tools_ready("add_https_revalidates_with_the_etag") {
        return;
    }
    let world = World::new();
    let server = WebServer::start(&world, None);
    world.dockerfile(&format!(
        "FROM scratch\nADD https://127.0.0.1:{}/files/greeting.txt /greeting\n",
        server.https
    ));
    let first = server.build_ok(&world, &[]);
    assert_eq!(built_steps(&first.stderr).len(), 1, "{}", first.stderr);
    // The server confirms the ETag of the first download: the rebuild is a cache hit and
    // nothing is downloaded again.
    let again = server.build_ok(&world, &[]);
    assert_eq!(cached_steps(&again.stderr).len(), 1, "{}", again.stderr);
    assert_eq!(
        server.requests(),
        [
            "GET /files/greeting.txt -",
            "GET /files/greeting.txt \"v1\""
        ]
    );
    // --no-cache downloads without asking.
    server.build_ok(&world, &["--no-cache"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[2], "GET /files/greeting.txt -");
}

#[test]
fn add_goes_through_the_proxy_the_environment_names() {
    if !tools_ready("add_goes_through_the_proxy_the_environment_names") {
        return;
    }
    let world = World::new();
    let server = WebServer::start(&world, None);
    // The test server's plain HTTP port is also a proxy that sends every host to 127.0.0.1;
    // the host name does not resolve, so only a proxied request can succeed.
    let host = format!("{PROXIED_HOST}:{}", server.https);
    let url = format!("https://{host}/files/greeting.txt");
    world.dockerfile(&format!("FROM scratch\nADD {url} /g\n"));
    let proxy = format!("127.0.0.1:{}", server.http);
    let proxied = server.build_with_proxies(&world, &server.ca, &[], &[("HTTPS_PROXY", &proxy)]);
    assert_eq!(proxied.code, 0, "{}", proxied.stderr);
    assert_eq!(
        server.requests(),
        [
            format!("CONNECT {host} -"),
            "GET /files/greeting.txt -".to_string()
        ]
    );
    // HTTP_PROXY is for http:// URLs only, as in Go.
    let wrong_scheme = server.build_with_proxies(
        &world,
        &server.ca,
        &["--no-cache"],
        &[("HTTP_PROXY", &proxy)],
    );
    assert_eq!(wrong_scheme.code, 1, "{}", wrong_scheme.stderr);
    // NO_PROXY names the host: the request goes direct, and the name does not resolve.
    let direct = server.build_with_proxies(
        &world,
        &server.ca,
        &["--no-cache"],
        &[
            ("https_proxy", &proxy),
            ("NO_PROXY", "other.example,.invalid"),
        ],
    );
    assert_eq!(direct.code, 1, "{}", direct.stderr);
    assert!(direct.stderr.contains(&url), "{}", direct.stderr);
    assert_eq!(server.requests().len(), 2, "{:?}", server.requests());
}

/// Fails unless `text` (a build's error output) contains every one of `needles`.
fn assert_mentions(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
