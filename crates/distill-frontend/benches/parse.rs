//! Parse time of a generated 5,000-line Dockerfile shaped like real ones (multi-stage,
//! continuation-heavy RUNs, ENV/LABEL lists, exec forms, heredocs, comments): prints the
//! median of 50 runs. Run with `cargo bench -p distill-frontend`.

use std::fmt::Write;
use std::hint::black_box;
use std::time::{Duration, Instant};

use distill_frontend::{dump, parse, Source};

const TARGET_LINES: usize = 5_000;
const RUNS: usize = 50;

/// One stage of about 60 lines; `n` keeps names distinct.
fn stage(out: &mut String, n: usize) {
    let _ = write!(
        out,
        r#"# ---- stage {n}: build the component ----
FROM --platform=$BUILDPLATFORM golang:1.22-bookworm AS build{n}
ARG VERSION=1.{n}.0 TARGETOS TARGETARCH
ENV CGO_ENABLED=0 \
    GOFLAGS="-trimpath -mod=readonly" \
    PATH=/usr/local/go/bin:$PATH
WORKDIR /src/component{n}
LABEL org.opencontainers.image.title="component{n}" \
      org.opencontainers.image.version="${{VERSION}}" \
      org.opencontainers.image.description="generated \"stage\" {n}"
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates \
        curl \
        git \
        jq \
        make; \
    # clean up to keep the layer small
    rm -rf /var/lib/apt/lists/*
COPY --link go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go mod download
COPY --chown=1000:1000 ["cmd/", "internal/", "./"]
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -ldflags="-s -w -X main.version=${{VERSION}}" -o /out/app{n} ./cmd/app
RUN <<EOF
set -eux
echo "built component {n}"
test -x /out/app{n}
EOF
COPY <<-"CONFIG" /etc/app{n}/config.toml
	[server]
	port = 80{n}
	CONFIG

FROM gcr.io/distroless/static-debian12:nonroot AS runtime{n}
COPY --from=build{n} --chmod=0555 /out/app{n} /usr/local/bin/app
USER nonroot:nonroot
EXPOSE 8080/tcp 9090
HEALTHCHECK --interval=30s --timeout=3s CMD ["/usr/local/bin/app", "health"]
VOLUME ["/data"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["serve", "--addr=:8080", "--log-level=info"]
ONBUILD RUN echo "triggered in {n}"

"#
    );
}

fn generate() -> String {
    let mut text = String::from("# syntax=docker/dockerfile:1.7\n# escape=\\\n");
    let mut lines = 2;
    let mut n = 0;
    while lines < TARGET_LINES {
        let before = text.len();
        stage(&mut text, n);
        lines += text[before..].lines().count();
        n += 1;
    }
    text
}

fn main() {
    let text = generate();
    let lines = text.lines().count();
    let source = Source::new("Dockerfile", text);
    let nodes = match parse(&source) {
        Ok(dockerfile) => {
            black_box(dump(&dockerfile));
            dockerfile.nodes.len()
        }
        Err(diagnostic) => panic!("generated Dockerfile does not parse:\n{diagnostic}"),
    };
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let parsed = parse(black_box(&source));
            let elapsed = start.elapsed();
            black_box(parsed.map(|d| d.nodes.len()).unwrap_or(0));
            elapsed
        })
        .collect();
    times.sort();
    let median = times[RUNS / 2];
    println!(
        "parse: {lines} lines, {} bytes, {nodes} instructions: median {:.3} ms over {RUNS} runs (min {:.3} ms, max {:.3} ms)",
        source.text.len(),
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[RUNS - 1].as_secs_f64() * 1e3,
    );
}
