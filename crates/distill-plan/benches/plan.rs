//! Parse + plan of a generated 5,000-line multi-stage Dockerfile, timed over 50 runs; prints
//! the median wall time and the median time on CPU (what a loaded machine does not inflate). Run with `cargo bench -p distill-plan`. A measurement, not a test: it fails
//! only if the Dockerfile does not plan.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use distill_frontend::Source;
use distill_plan::{plan, BuildArgs, PlanOptions};

const LINES: usize = 5_000;
const RUNS: usize = 50;

/// A Dockerfile of about [`LINES`] lines: global ARGs, then stages of every common
/// instruction, each later stage copying from an earlier one, and a final scratch stage.
fn generate() -> String {
    let mut text = String::from(
        "# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm-slim\nARG VERSION=1.0\n",
    );
    let count = |text: &str| text.bytes().filter(|&b| b == b'\n').count();
    let mut stage = 0;
    while count(&text) < LINES - 3 {
        let _ = writeln!(text, "FROM ${{BASE}} AS stage{stage}");
        let _ = writeln!(text, "ARG VERSION");
        let _ = writeln!(
            text,
            "ENV APP_HOME=/opt/app{stage} PATH=/opt/app{stage}/bin:$PATH"
        );
        let _ = writeln!(text, "WORKDIR $APP_HOME");
        let _ = writeln!(
            text,
            "LABEL org.opencontainers.image.version=\"$VERSION\" stage=\"{stage}\""
        );
        let _ = writeln!(
            text,
            "COPY --chown=1000:1000 --chmod=644 src/{stage}/ ./src/"
        );
        let _ = writeln!(
            text,
            "RUN --mount=type=cache,target=/root/.cache,sharing=locked \\\n    make -C src all && \\\n    make -C src install"
        );
        if stage > 0 {
            let _ = writeln!(
                text,
                "COPY --from=stage{} /opt/app{}/bin/ ./bin/",
                stage - 1,
                stage - 1
            );
        }
        let _ = writeln!(text, "EXPOSE 80{:02}/tcp", stage % 100);
        let _ = writeln!(
            text,
            "HEALTHCHECK --interval=30s --timeout=3s CMD [\"/bin/true\"]"
        );
        let _ = writeln!(text, "USER 1000:1000");
        let _ = writeln!(text, "CMD [\"app\", \"--serve\"]");
        stage += 1;
    }
    let _ = writeln!(text, "FROM scratch");
    let _ = writeln!(text, "COPY --from=stage{} /opt /opt", stage - 1);
    let _ = writeln!(text, "ENTRYPOINT [\"/opt/app/bin/app\"]");
    text
}

fn main() {
    let text = generate();
    let source = Source::new("Dockerfile", text);
    let options = PlanOptions {
        build_args: BuildArgs::from_specs(["VERSION=2.0"], |_| None).expect("valid build args"),
        ..PlanOptions::default()
    };
    let mut parse_times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut totals: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut cpu_times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut stages = 0;
    for _ in 0..RUNS {
        let cpu_start = thread_cpu_time();
        let start = Instant::now();
        let planned = distill_frontend::parse(&source).and_then(|dockerfile| {
            parse_times.push(start.elapsed());
            plan(dockerfile, &source, &options)
        });
        totals.push(start.elapsed());
        if let (Some(before), Some(after)) = (cpu_start, thread_cpu_time()) {
            cpu_times.push(after.saturating_sub(before));
        }
        match planned {
            Ok(plan) => stages = plan.build_order.len(),
            Err(error) => {
                eprintln!("error: {error}");
                std::process::exit(1);
            }
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times
            .get(times.len() / 2)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "parse + plan of {} lines ({} stages to build), {RUNS} runs: median {:.3} ms wall \
         (parse alone {:.3} ms), median {:.3} ms on CPU",
        source.text.lines().count(),
        stages,
        median(&mut totals),
        median(&mut parse_times),
        median(&mut cpu_times),
    );
}

/// Time this thread has spent on a CPU (Linux's schedstat), so a busy machine's waiting is
/// not counted; `None` where it cannot be read.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}
