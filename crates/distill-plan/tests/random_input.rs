//! Property: parse + plan + expansion never panic, whatever Dockerfile-like text they get.
//! Inputs are generated from a fixed seed (reproducible) by mixing instruction keywords, flags,
//! variables, quotes, escapes, heredocs, continuations and stray bytes.

use distill_frontend::Source;
use distill_plan::{plan_source, BuildArgs, PlanOptions, Platform};

/// xorshift64*: small, deterministic, good enough to pick fragments.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYWORDS: &[&str] = &[
    "FROM",
    "from",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "FORM",
    "COPPY",
    "",
    "#",
    "# escape=`",
    "ONBUILD ONBUILD",
    "ONBUILD COPY",
    "HEALTHCHECK CMD",
    "HEALTHCHECK NONE",
];

const FLAGS: &[&str] = &[
    "--from=build",
    "--from=0",
    "--from=9",
    "--from=$X",
    "--from=-1",
    "--from=",
    "--chown=1:1",
    "--chmod=755",
    "--link",
    "--link=false",
    "--link=maybe",
    "--parents",
    "--exclude=*.md",
    "--platform=$BUILDPLATFORM",
    "--platform=linux/arm64",
    "--platform=",
    "--platform=x/y/z/w",
    "--mount=type=cache,target=/c",
    "--mount=from=build,target=/b",
    "--mount=type=secret",
    "--mount=\"a,b\"",
    "--mount=",
    "--mount=type=tmpfs,size=1x",
    "--network=none",
    "--security=insecure",
    "--interval=30s",
    "--timeout=1",
    "--retries=-2",
    "--retries=99999999999",
    "--start-period=0",
    "--keep-git-dir",
    "--checksum=sha256:00",
    "--unpack=true",
    "--",
    "--x",
    "-",
    "--device=gpu",
];

const WORDS: &[&str] = &[
    "alpine",
    "scratch",
    "AS",
    "as",
    "build",
    "Build",
    "1st",
    "stage-0",
    "$X",
    "${X}",
    "${X:-d}",
    "${X:?err}",
    "${X",
    "${}",
    "$",
    "\\",
    "`",
    "\"",
    "'",
    "\"a b\"",
    "'c d'",
    "a=b",
    "=x",
    "k=",
    "[\"a\", \"b\"]",
    "[1]",
    "[",
    "]",
    "<<EOF",
    "<<-EOF",
    "<<\"EOF\"",
    "/dst/",
    ".",
    "..",
    "0",
    "80/tcp",
    "NONE",
    "CMD",
    "sh",
    "-c",
    "é",
    "\u{0}",
    "\t",
    "ARG",
    "FROM",
    "x:y@sha256:abc",
];

/// Instructions that are valid on their own; `$W` is replaced by a random word, so some of
/// them turn invalid in interesting ways.
const TEMPLATES: &[&str] = &[
    "FROM alpine AS build",
    "FROM build AS $W",
    "FROM --platform=$BUILDPLATFORM $W",
    "FROM scratch",
    "FROM ${X:-alpine}",
    "ARG X=$W",
    "ARG $W",
    "ENV A=$W B=$A",
    "LABEL k=$W",
    "RUN echo $W",
    "RUN --mount=type=cache,target=$W true",
    "RUN --mount=from=$W,target=/m true",
    "COPY --from=$W /a /b",
    "COPY --chown=$W a b",
    "ADD $W /dst/",
    "WORKDIR $W",
    "USER $W",
    "EXPOSE $W 80",
    "VOLUME $W",
    "STOPSIGNAL $W",
    "HEALTHCHECK --interval=$W CMD true",
    "ONBUILD COPY --from=$W a b",
    "SHELL [\"/bin/sh\", \"-c\"]",
    "CMD [\"$W\"]",
];

fn generate(random: &mut Random) -> String {
    let mut text = String::new();
    if random.below(5) != 0 {
        text.push_str("FROM alpine AS first\n");
    }
    for _ in 0..random.below(14) {
        if random.below(6) != 0 {
            let template = random.pick(TEMPLATES);
            let word = random.pick(WORDS);
            text.push_str(&template.replace("$W", word));
            text.push('\n');
            continue;
        }
        text.push_str(random.pick(KEYWORDS));
        for _ in 0..random.below(3) {
            text.push(' ');
            text.push_str(random.pick(FLAGS));
        }
        for _ in 0..random.below(5) {
            text.push(if random.below(8) == 0 { '\t' } else { ' ' });
            text.push_str(random.pick(WORDS));
        }
        match random.below(10) {
            0 => text.push_str(" \\\n"),
            1 => text.push_str("\nhello $X\nEOF\n"),
            2 => text.push_str("\r\n"),
            _ => text.push('\n'),
        }
    }
    text
}

#[test]
fn random_dockerfiles_never_panic() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut planned = 0;
    for case in 0..4000 {
        let text = generate(&mut random);
        let target = match case % 4 {
            0 => Some("build".to_string()),
            1 => Some("nothing".to_string()),
            _ => None,
        };
        let options = PlanOptions {
            target,
            build_args: BuildArgs::from_specs(["X=value", "BUILDOS=weird"], |_| None).unwrap(),
            target_platform: (case % 3 == 0).then(|| Platform::new("linux", "arm", "v7")),
            build_platform: Platform::new("linux", "amd64", ""),
        };
        let source = Source::new("Dockerfile", text);
        let Ok(plan) = plan_source(&source, &options) else {
            continue;
        };
        planned += 1;
        let _ = plan.to_string();
        for stage in plan.stages_to_build() {
            let mut vars = plan.initial_vars(&["PATH=/bin", "X=from image"]);
            for instruction in stage.triggers.iter().chain(&stage.instructions) {
                let _ = plan.step(instruction, &mut vars);
            }
        }
    }
    eprintln!("{planned} of 4000 generated inputs planned");
    // The generator must reach the planner, not only the parser's errors.
    assert!(planned > 100, "only {planned} inputs planned");
}
