//! Whole Dockerfiles (multi-stage, heredocs, continuations, `escape=`` ` with CRLF) compared
//! with the dump BuildKit's parser prints for them, byte for byte.

use std::fs;
use std::path::Path;

use distill_frontend::{dump, parse, Source};

fn check(name: &str) -> distill_frontend::Dockerfile {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/dockerfiles")
        .join(name);
    let text = fs::read_to_string(dir.join("Dockerfile")).expect("test Dockerfile");
    let expected = fs::read_to_string(dir.join("expected.dump")).expect("expected dump");
    let source = Source::new(format!("{name}/Dockerfile"), text);
    let dockerfile = match parse(&source) {
        Ok(dockerfile) => dockerfile,
        Err(diagnostic) => panic!("{name}: {diagnostic}"),
    };
    let actual = dump(&dockerfile);
    if actual != expected {
        for (i, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
            if a != e {
                panic!(
                    "{name}: line {} differs\nexpected: {e}\n  actual: {a}",
                    i + 1
                );
            }
        }
        panic!("{name}: dump length differs\nexpected:\n{expected}\nactual:\n{actual}");
    }
    dockerfile
}

#[test]
fn multi_stage() {
    let dockerfile = check("multi-stage");
    let syntax = dockerfile.directives.syntax.expect("syntax directive");
    assert_eq!(syntax.value, "docker/dockerfile:1.7");
    assert_eq!(
        dockerfile.directives.check.map(|c| c.value),
        Some("error=true".into())
    );
    assert!(dockerfile.warnings.is_empty());
}

#[test]
fn heredocs() {
    let dockerfile = check("heredocs");
    let bodies: Vec<(&str, &str)> = dockerfile
        .nodes
        .iter()
        .flat_map(|node| node.heredocs.iter())
        .map(|h| (h.name.as_str(), h.content.as_str()))
        .collect();
    assert_eq!(
        bodies,
        vec![
            (
                "EOF",
                "set -eux\napt-get update\napt-get install -y --no-install-recommends ca-certificates\nrm -rf /var/lib/apt/lists/*\n"
            ),
            ("SCRIPT", "echo \"no $expansion here\"\n"),
            ("config.ini", "[server]\nport = 8080\n"),
            ("EOT", "second file\n"),
            ("PY", "print(\"hello\")\n"),
            ("FD", "from fd 3\n"),
            ("EOF", "echo triggered\n"),
            ("README.md", "# not a comment, a heredoc line\n"),
        ]
    );
}

#[test]
fn continuations() {
    let dockerfile = check("continuations");
    assert_eq!(dockerfile.warnings.len(), 1);
    assert_eq!(dockerfile.warnings[0].pos.map(|p| p.line), Some(7));
}

#[test]
fn windows_escape_with_crlf() {
    let dockerfile = check("windows-escape");
    assert_eq!(dockerfile.directives.escape, '`');
}

#[test]
fn odd_corners() {
    // BOM, tabs, Unicode, empty values, comments and blank lines inside a continuation,
    // `#` inside instructions, JSON escapes and fallbacks, trailing spaces, a last line that
    // ends with a continuation character.
    let dockerfile = check("odd");
    assert_eq!(dockerfile.warnings.len(), 1);
    assert_eq!(
        dockerfile.directives.syntax.map(|s| s.value),
        Some("docker/dockerfile:1".to_string())
    );
}
