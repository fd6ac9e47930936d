//! The frontend's commands as a user runs them: `distill plan`, `distill debug parse` and
//! `distill debug expand` on real files, checking whole outputs and exit statuses
//! (0 success, 1 failure, 2 usage error).

use std::path::Path;
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn distill(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_distill"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the distill binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

#[test]
fn debug_parse_prints_buildkit_dump() {
    let dir = context(concat!(
        "# syntax=docker/dockerfile:1\n",
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n",
        "ENV A=1 B=\"two words\"\n",
        "ENV legacy value with spaces\n",
        "RUN --mount=type=cache,target=/root/.cache \\\n",
        "    # a comment inside the continuation\n",
        "    go build -o /out/app .\n",
        "COPY <<EOF /etc/motd\n",
        "hello\n",
        "EOF\n",
        "ONBUILD RUN echo \"é\\ttab\"\n",
        "CMD [\"/app\", \"--flag\"]\n",
        "HEALTHCHECK --interval=5s CMD curl -f http://localhost/\n",
    ));
    let run = distill(dir.path(), &["debug", "parse", "Dockerfile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        concat!(
            "(from [\"--platform=$BUILDPLATFORM\"] \"golang:1.22\" \"AS\" \"build\")\n",
            "(env \"A\" \"1\" \"=\" \"B\" \"\\\"two words\\\"\" \"=\")\n",
            "(env \"legacy\" \"value with spaces\" \"\")\n",
            "(run [\"--mount=type=cache,target=/root/.cache\"] \"go build -o /out/app .\")\n",
            "(copy \"<<EOF\" \"/etc/motd\")\n",
            "(onbuild (run \"echo \\\"é\\\\ttab\\\"\"))\n",
            "(cmd \"/app\" \"--flag\")\n",
            "(healthcheck [\"--interval=5s\"] \"CMD\" \"curl -f http://localhost/\")\n",
        )
    );
}

#[test]
fn debug_parse_error_names_file_line_and_column() {
    let dir = context("FROM alpine\nRUN <<EOF\necho never closed\n");
    let run = distill(dir.path(), &["debug", "parse", "Dockerfile"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("Dockerfile:2:"),
        "no position in: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("RUN <<EOF"),
        "no source line in: {}",
        run.stderr
    );
}

#[test]
fn debug_expand_words_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = distill(
        dir.path(),
        &[
            "debug",
            "expand",
            "--env",
            "P=80",
            "--words",
            "--",
            "$P/tcp  '4 4'",
        ],
    );
    assert_eq!((run.code, run.stdout.as_str()), (0, "80/tcp\n4 4\n"));

    let run = distill(
        dir.path(),
        &[
            "debug",
            "expand",
            "--env",
            "V=a.tar.gz",
            "${V%%.*}-${U:-none}",
        ],
    );
    assert_eq!((run.code, run.stdout.as_str()), (0, "a-none\n"));

    let run = distill(dir.path(), &["debug", "expand", "${U:?must be set}"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: failed to process \"${U:?must be set}\": U: must be set\n"
    );
}

#[test]
fn plan_skips_stages_the_target_does_not_need() {
    let dir = context(concat!(
        "ARG BASE=debian:bookworm-slim\n",
        "FROM ${BASE} AS build\n",
        "RUN make\n",
        "FROM build AS broken\n",
        "RUN exit 1\n",
        "FROM scratch\n",
        "COPY --from=build /out /out\n",
    ));
    let run = distill(dir.path(), &["plan", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("FROM debian:bookworm-slim"),
        "{}",
        run.stdout
    );
    let skipped = run
        .stdout
        .split_once("skipped")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no skipped section in:\n{}", run.stdout));
    assert!(skipped.contains("\"broken\""), "{}", run.stdout);

    let run = distill(dir.path(), &["plan", "--target", "BROKEN", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("RUN exit 1"), "{}", run.stdout);
}

#[test]
fn plan_errors_exit_1_usage_errors_exit_2() {
    let dir = context("FROM alpine\nFORM x\n");
    let run = distill(dir.path(), &["plan", "."]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("unknown instruction: FORM"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("did you mean FROM?"), "{}", run.stderr);
    assert!(run.stderr.contains("Dockerfile:2:1"), "{}", run.stderr);

    let run = distill(dir.path(), &["plan", "--target", "nope", "."]);
    assert_eq!(run.code, 1);

    let run = distill(dir.path(), &["plan", "--no-such-flag", "."]);
    assert_eq!(run.code, 2);
}
