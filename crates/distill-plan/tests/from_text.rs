//! The instruction layer and the plan, from Dockerfile text through the real parser: each
//! rule with the message, line and column a user would see.

use distill_frontend::{Diagnostic, Pos, Source};
use distill_plan::{
    plan_source, Base, BuildArgs, Command, Input, Plan, PlanOptions, Platform, Vars,
};

fn defaults() -> PlanOptions {
    PlanOptions {
        build_platform: Platform::new("linux", "amd64", ""),
        ..PlanOptions::default()
    }
}

fn plan_with(text: &str, options: &PlanOptions) -> Result<Plan, Diagnostic> {
    plan_source(&Source::new("Dockerfile", text), options)
}

fn plan(text: &str) -> Plan {
    match plan_with(text, &defaults()) {
        Ok(plan) => plan,
        Err(error) => panic!("unexpected error: {error}"),
    }
}

fn error_with(text: &str, options: &PlanOptions) -> Diagnostic {
    match plan_with(text, options) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => error,
    }
}

fn error(text: &str) -> Diagnostic {
    error_with(text, &defaults())
}

/// Asserts message, position (line, column) and, when given, the start of the hint.
fn assert_error(error: &Diagnostic, message: &str, at: Option<(u32, u32)>, hint: Option<&str>) {
    assert_eq!(error.message, message);
    assert_eq!(error.pos, at.map(|(line, column)| Pos::new(line, column)));
    if let Some(hint) = hint {
        let actual = error.hint.as_deref().unwrap_or("");
        assert!(
            actual.starts_with(hint),
            "hint {actual:?} should start with {hint:?}"
        );
    }
}

fn build_args(specs: &[&str]) -> BuildArgs {
    BuildArgs::from_specs(specs, |_| None).unwrap()
}

/// Replays a stage as the build engine will, starting from `image_env`, and returns the
/// variables after its last instruction (a stage built on a stage starts from its parent's).
fn replay(plan: &Plan, index: usize, image_env: &[&str]) -> Vars {
    let stage = &plan.stages[index];
    let mut vars = match stage.base {
        Base::Stage(parent) => replay(plan, parent, image_env),
        _ => plan.initial_vars(image_env),
    };
    for instruction in stage.triggers.iter().chain(&stage.instructions) {
        if let Err(error) = plan.step(instruction, &mut vars) {
            panic!("unexpected error: {error}");
        }
    }
    vars
}

#[test]
fn empty_dockerfile() {
    assert_error(
        &error(""),
        "the Dockerfile cannot be empty",
        None,
        Some("a Dockerfile needs"),
    );
}

#[test]
fn no_from() {
    assert_error(
        &error("ARG VERSION=1\n"),
        "dockerfile contains no stages to build",
        None,
        Some("add a FROM line"),
    );
    assert_error(
        &error("# comment\nRUN make\nFORM alpine\n"),
        "no build stage in current context",
        Some((2, 1)),
        Some("only ARG may come before the first FROM"),
    );
}

#[test]
fn unknown_instruction_with_suggestion() {
    assert_error(
        &error("FROM alpine\n  FORM debian\n"),
        "unknown instruction: FORM",
        Some((2, 3)),
        Some("did you mean FROM?"),
    );
    assert_error(
        &error("FROM alpine\ncopy a b\nrun make\nexpsoe 80\n"),
        "unknown instruction: expsoe",
        Some((4, 1)),
        Some("did you mean EXPOSE?"),
    );
}

#[test]
fn unknown_flag() {
    assert_error(
        &error("FROM alpine\nCOPY --form=build a b\n"),
        "unknown flag --form for COPY",
        Some((2, 6)),
        Some("did you mean --from?"),
    );
}

#[test]
fn flag_on_the_wrong_instruction() {
    assert_error(
        &error("FROM alpine\nADD --from=build a b\n"),
        "unknown flag --from for ADD",
        Some((2, 5)),
        Some("--from is a flag of COPY, not of ADD"),
    );
    assert_error(
        &error("FROM alpine\nRUN --platform=linux/arm64 make\n"),
        "unknown flag --platform for RUN",
        Some((2, 5)),
        Some("--platform is a flag of FROM"),
    );
}

#[test]
fn repeated_flags() {
    assert_error(
        &error("FROM alpine\nCOPY --chown=1 --chown=2 a b\n"),
        "duplicate flag specified: --chown",
        Some((2, 16)),
        Some("--chown may be given only once"),
    );
    // List flags repeat.
    let plan = plan(
        "FROM alpine\nRUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/b true\nCOPY --exclude=*.md --exclude=.git . /src\n",
    );
    let Command::Run(run) = &plan.stages[0].instructions[0].command else {
        panic!("not a RUN")
    };
    assert_eq!(run.mounts.len(), 2);
}

#[test]
fn invalid_stage_name() {
    assert_error(
        &error("FROM alpine AS 1st\n"),
        "invalid name for build stage: \"1st\", name can't start with a number or contain symbols",
        Some((1, 16)),
        Some("a stage name starts with a letter"),
    );
}

#[test]
fn duplicate_stage_name() {
    assert_error(
        &error("FROM alpine AS base\nRUN true\nFROM debian AS Base\n"),
        "duplicate stage name \"base\"",
        Some((3, 16)),
        Some("stage \"base\" is already defined on line 1"),
    );
}

#[test]
fn stage_names_are_lower_case_and_targets_any_case() {
    let text = "FROM alpine AS Build\nRUN make\nFROM scratch\nCOPY --from=BUILD /a /a\n";
    let plan = plan(text);
    assert_eq!(plan.stages[0].name.as_deref(), Some("build"));
    assert_eq!(plan.stages[1].dependencies[0].input, Input::Stage(0));
    let options = PlanOptions {
        target: Some("BUILD".into()),
        ..defaults()
    };
    assert_eq!(plan_with(text, &options).unwrap().target, 0);
}

#[test]
fn unknown_target() {
    let options = PlanOptions {
        target: Some("biuld".into()),
        ..defaults()
    };
    assert_error(
        &error_with("FROM alpine AS build\nFROM scratch AS final\n", &options),
        "target stage \"biuld\" could not be found",
        None,
        Some("did you mean build?"),
    );
    let options = PlanOptions {
        target: Some("nothing".into()),
        ..defaults()
    };
    assert_error(
        &error_with("FROM alpine AS build\nFROM scratch AS final\n", &options),
        "target stage \"nothing\" could not be found",
        None,
        Some("the stages are named build, final"),
    );
}

#[test]
fn copy_from_a_later_stage() {
    assert_error(
        &error("FROM alpine AS first\nCOPY --from=later /a /a\nFROM alpine AS later\nFROM first\n"),
        "cannot copy from stage \"later\", it needs to be defined before current stage \"first\"",
        Some((2, 13)),
        Some("move stage \"later\" (line 3) before this one"),
    );
    assert_error(
        &error("FROM alpine AS a\nRUN --mount=from=b,target=/b true\nFROM alpine AS b\nFROM a\n"),
        "cannot mount from stage \"b\" to \"a\", stage needs to be defined before current command",
        Some((2, 18)),
        None,
    );
    // A later stage the target does not need is no error.
    let text = "FROM alpine AS unused\nCOPY --from=later /a /a\nFROM alpine AS later\n";
    assert_eq!(plan(text).build_order, [1]);
}

#[test]
fn stage_indexes() {
    let plan = plan("FROM alpine\nFROM scratch\nCOPY --from=0 /a /a\n");
    assert_eq!(plan.stages[1].dependencies[0].input, Input::Stage(0));
    assert_eq!(plan.build_order, [0, 1]);
    assert_error(
        &error("FROM alpine\nFROM scratch\nCOPY --from=2 /a /a\n"),
        "invalid stage index 2",
        Some((3, 13)),
        Some("stages are numbered from 0 to 1"),
    );
    assert_error(
        &error("FROM alpine\nCOPY --from=-1 /a /a\n"),
        "invalid stage index -1",
        Some((2, 13)),
        None,
    );
}

#[test]
fn cycles() {
    let options = PlanOptions {
        target: Some("b".into()),
        ..defaults()
    };
    assert_error(
        &error_with(
            "FROM alpine AS a\nCOPY --from=b /x /x\nFROM a AS b\n",
            &options,
        ),
        "circular dependency detected on stage: a",
        Some((2, 13)),
        Some("the stages read each other: a -> b -> a"),
    );
    assert_error(
        &error("FROM alpine AS self\nCOPY --from=self /x /y\n"),
        "circular dependency detected on stage: self",
        Some((2, 13)),
        Some("a stage cannot read from itself"),
    );
}

#[test]
fn copy_from_images_and_scratch() {
    let plan = plan(
        "FROM alpine\nCOPY --from=busybox:1.36 /bin/busybox /bin/\nCOPY --from=scratch / /\nRUN --mount=from=ghcr.io/org/tools,target=/t true\n",
    );
    let inputs: Vec<&Input> = plan.stages[0]
        .dependencies
        .iter()
        .map(|d| &d.input)
        .collect();
    assert_eq!(
        inputs,
        [
            &Input::Image("busybox:1.36".into()),
            &Input::Scratch,
            &Input::Image("ghcr.io/org/tools".into())
        ]
    );
    assert_eq!(plan.images_read(), ["busybox:1.36", "ghcr.io/org/tools"]);
}

#[test]
fn copy_from_a_variable_is_refused() {
    assert_error(
        &error("ARG IMAGE=busybox\nFROM alpine\nCOPY --from=$IMAGE /bin/busybox /bin/\n"),
        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
        Some((3, 13)),
        Some("declare the ARG before the first FROM"),
    );
    assert_error(
        &error("FROM alpine\nRUN --mount=type=bind,from=${STAGE},target=/s true\n"),
        "'from' doesn't support variable expansion, define alias stage instead",
        Some((2, 28)),
        None,
    );
}

#[test]
fn from_expands_global_args_only() {
    let text = "ARG BASE=alpine\nARG TAG=3.${MINOR}\nARG MINOR=20\nFROM ${BASE}:${TAG:-latest}\n";
    let plan = plan(text);
    // MINOR was not yet declared when TAG's default was expanded.
    assert_eq!(plan.stages[0].base, Base::Image("alpine:3.".into()));
    let options = PlanOptions {
        build_args: build_args(&["TAG=edge"]),
        ..defaults()
    };
    let plan = plan_with(text, &options).unwrap();
    assert_eq!(plan.stages[0].base, Base::Image("alpine:edge".into()));
    assert_error(
        &error("ARG BASE\nFROM $BASE\n"),
        "base name ($BASE) should not be blank",
        Some((2, 6)),
        Some("give the variable a value"),
    );
    // A stage ARG is not visible to a later FROM.
    assert_error(
        &error("FROM alpine\nARG NEXT=debian\nFROM $NEXT\n"),
        "base name ($NEXT) should not be blank",
        Some((3, 6)),
        None,
    );
}

#[test]
fn from_a_stage_through_a_variable() {
    let plan = plan("ARG FLAVOR=slim\nFROM alpine AS slim\nFROM $FLAVOR\nRUN true\n");
    assert_eq!(plan.stages[1].base, Base::Stage(0));
    assert_eq!(plan.build_order, [0, 1]);
}

#[test]
fn from_a_stage_in_the_wrong_case() {
    assert_error(
        &error("FROM alpine AS build\nFROM Build\n"),
        "failed to parse stage name \"Build\": invalid reference format: repository name (Build) must be lowercase",
        Some((2, 1)),
        Some("stage names are lower case: write \"build\""),
    );
}

#[test]
fn global_and_stage_args() {
    let text = "\
ARG VERSION=1.0
ARG ONLY_GLOBAL=g
FROM alpine AS base
ARG VERSION
ARG LOCAL=${VERSION}-local
ENV FROM_GLOBAL=${ONLY_GLOBAL:-unset}
FROM base AS child
ARG CHILD=${LOCAL}
";
    let plan = plan(text);
    let base = replay(&plan, 0, &["PATH=/bin"]);
    assert_eq!(base.get("VERSION"), Some("1.0"));
    assert_eq!(base.get("LOCAL"), Some("1.0-local"));
    // A global ARG is not in a stage unless declared there.
    assert_eq!(base.get("FROM_GLOBAL"), Some("unset"));
    assert_eq!(base.get("ONLY_GLOBAL"), None);
    // A child stage inherits its parent's args.
    let child = replay(&plan, 1, &["PATH=/bin"]);
    assert_eq!(child.get("CHILD"), Some("1.0-local"));

    // Build args win over defaults and over the global value, and are not expanded.
    let options = PlanOptions {
        build_args: build_args(&["VERSION=2.0", "LOCAL=$raw", "UNDECLARED=x"]),
        ..defaults()
    };
    let plan = plan_with(text, &options).unwrap();
    let base = replay(&plan, 0, &[]);
    assert_eq!(base.get("VERSION"), Some("2.0"));
    assert_eq!(base.get("LOCAL"), Some("$raw"));
    assert_eq!(base.get("UNDECLARED"), None);
    assert_eq!(base.get("PATH"), Some(distill_plan::DEFAULT_PATH));
}

#[test]
fn one_instruction_sees_the_environment_from_before_it() {
    let plan = plan("FROM alpine\nENV a=1\nENV a=2 b=$a\nARG x=1 y=$x\n");
    let vars = replay(&plan, 0, &[]);
    assert_eq!(vars.get("a"), Some("2"));
    assert_eq!(vars.get("b"), Some("1"));
    // ARG declarations are applied one after the other.
    assert_eq!(vars.get("y"), Some("1"));
}

#[test]
fn env_from_the_base_image_is_used() {
    let plan = plan("FROM python\nENV PATH=/venv/bin:$PATH\nWORKDIR $HOME/app\n");
    let stage = &plan.stages[0];
    let mut vars = plan.initial_vars(&["PATH=/usr/bin", "HOME=/root"]);
    plan.step(&stage.instructions[0], &mut vars).unwrap();
    assert_eq!(vars.get("PATH"), Some("/venv/bin:/usr/bin"));
    let workdir = plan.step(&stage.instructions[1], &mut vars).unwrap();
    let Command::Workdir(path) = workdir.command else {
        panic!("not a WORKDIR")
    };
    assert_eq!(path.value, "/root/app");
    assert_eq!(path.pos, Pos::new(3, 9));
}

#[test]
fn what_is_expanded_and_what_is_not() {
    let text = "\
FROM alpine
ENV DIR=/opt/app PORTS=\"80/tcp 443/tcp\" USER=app
RUN echo $DIR
CMD echo $DIR
COPY --chown=$USER --from=0 $DIR/a $DIR/
EXPOSE $PORTS 8080
VOLUME $DIR/data
USER $USER
";
    let plan = plan(&format!("FROM scratch\n{text}"));
    let stage = &plan.stages[1];
    let mut vars = plan.initial_vars::<&str>(&[]);
    let expanded: Vec<Command> = stage
        .instructions
        .iter()
        .map(|i| plan.step(i, &mut vars).unwrap().command)
        .collect();
    let Command::Run(run) = &expanded[1] else {
        panic!("RUN")
    };
    assert_eq!(run.command.args[0].value, "echo $DIR");
    let Command::Cmd(cmd) = &expanded[2] else {
        panic!("CMD")
    };
    assert_eq!(cmd.args[0].value, "echo $DIR");
    let Command::Copy(copy) = &expanded[3] else {
        panic!("COPY")
    };
    assert_eq!(copy.chown.as_ref().unwrap().value, "app");
    assert_eq!(copy.files.sources[0].value, "/opt/app/a");
    assert_eq!(copy.files.dest.value, "/opt/app/");
    let Command::Expose(ports) = &expanded[4] else {
        panic!("EXPOSE")
    };
    let ports: Vec<&str> = ports.iter().map(|w| w.value.as_str()).collect();
    assert_eq!(ports, ["80/tcp", "443/tcp", "8080"]);
    let Command::Volume(volumes) = &expanded[5] else {
        panic!("VOLUME")
    };
    assert_eq!(volumes[0].value, "/opt/app/data");
    let Command::User(user) = &expanded[6] else {
        panic!("USER")
    };
    assert_eq!(user.value, "app");
}

#[test]
fn expansion_errors_point_at_the_word() {
    let plan = plan("FROM alpine\nWORKDIR ${DIR:?needs a value}\n");
    let mut vars = plan.initial_vars::<&str>(&[]);
    let error = plan
        .step(&plan.stages[0].instructions[0], &mut vars)
        .unwrap_err();
    assert_eq!(error.pos, Some(Pos::new(2, 9)));
    assert!(error.message.contains("needs a value"), "{}", error.message);
}

#[test]
fn run_mounts_are_interpreted_after_expansion() {
    let plan = plan("FROM alpine\nARG CACHE=/root/.cache\nRUN --mount=type=cache,target=$CACHE,id=pip pip install .\n");
    let vars = &mut plan.initial_vars::<&str>(&[]);
    plan.step(&plan.stages[0].instructions[0], vars).unwrap();
    let run = plan.step(&plan.stages[0].instructions[1], vars).unwrap();
    let Command::Run(run) = run.command else {
        panic!("RUN")
    };
    let mount = run.mounts[0].mount.as_ref().unwrap();
    assert_eq!(mount.target.as_deref(), Some("/root/.cache"));
    assert_eq!(mount.id.as_deref(), Some("pip"));
    // A mount without variables is checked by the plan, in the stages it builds.
    assert_error(
        &error("FROM alpine\nRUN --mount=type=cache,target=/c,sharing=sometimes true\n"),
        "unsupported sharing value \"sometimes\"",
        Some((2, 42)),
        Some("sharing is one of shared, private, locked"),
    );
}

#[test]
fn platform_args() {
    let text = "\
FROM --platform=$BUILDPLATFORM golang AS build
ARG TARGETOS TARGETARCH BUILDPLATFORM
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build
FROM scratch
COPY --from=build /app /app
";
    let options = PlanOptions {
        target_platform: Some(Platform::parse("linux/arm64").unwrap()),
        ..defaults()
    };
    let plan = plan_with(text, &options).unwrap();
    assert_eq!(plan.stages[0].platform.to_string(), "linux/amd64");
    assert_eq!(plan.stages[1].platform.to_string(), "linux/arm64");
    let vars = replay(&plan, 0, &[]);
    assert_eq!(vars.get("TARGETOS"), Some("linux"));
    assert_eq!(vars.get("TARGETARCH"), Some("arm64"));
    assert_eq!(vars.get("BUILDPLATFORM"), Some("linux/amd64"));
    // Undeclared, a platform arg is not in the stage.
    assert_eq!(vars.get("TARGETVARIANT"), None);
    assert_eq!(plan.global_args.get("TARGETSTAGE"), Some("default"));

    // A build arg overrides a predefined arg.
    let options = PlanOptions {
        build_args: build_args(&["TARGETARCH=riscv64"]),
        ..defaults()
    };
    let plan = plan_with(text, &options).unwrap();
    assert_eq!(replay(&plan, 0, &[]).get("TARGETARCH"), Some("riscv64"));

    assert_error(
        &error("ARG P\nFROM --platform=$P alpine\n"),
        "empty platform value from expression $P",
        Some((2, 17)),
        None,
    );
    let error = error("FROM --platform=linux/amd64/v2/x alpine\n");
    assert!(error
        .message
        .starts_with("failed to parse platform linux/amd64/v2/x"));
    assert_eq!(error.pos, Some(Pos::new(1, 17)));
}

#[test]
fn target_skips_stages_it_does_not_need() {
    let text = "\
FROM alpine AS deps
RUN apk add gcc
FROM deps AS build
RUN make
FROM alpine AS docs
RUN make docs
FROM alpine AS lint
RUN --mount=from=deps,target=/deps lint
FROM scratch AS final
COPY --from=build /app /app
";
    let plan = plan(text);
    assert_eq!(plan.target, 4);
    assert_eq!(plan.build_order, [0, 1, 4]);
    let skipped: Vec<usize> = plan
        .stages
        .iter()
        .filter(|s| !s.reachable)
        .map(|s| s.index)
        .collect();
    assert_eq!(skipped, [2, 3]);
    let options = PlanOptions {
        target: Some("lint".into()),
        ..defaults()
    };
    let plan = plan_with(text, &options).unwrap();
    assert_eq!(plan.build_order, [0, 3]);
    let shown = plan.to_string();
    assert!(shown.contains("target: stage 3 \"lint\"\n"), "{shown}");
    assert!(
        shown.contains("skipped (the target does not need them):\n  stage 1 \"build\""),
        "{shown}"
    );
}

#[test]
fn onbuild_triggers_of_a_base_stage_count() {
    let text = "\
FROM alpine AS assets
RUN make assets
FROM alpine AS base
ONBUILD COPY --from=assets /assets /assets
FROM base AS app
RUN ls /assets
";
    let plan = plan(text);
    assert_eq!(plan.build_order, [0, 1, 2]);
    let app = &plan.stages[2];
    assert_eq!(app.triggers.len(), 1);
    assert!(app.dependencies[0].trigger);
    assert_eq!(app.dependencies[0].input, Input::Stage(0));
    assert_error(
        &error("FROM alpine\nONBUILD FROM debian\n"),
        "FROM isn't allowed as an ONBUILD trigger",
        Some((2, 9)),
        None,
    );
}

#[test]
fn shell_healthcheck_and_counts_from_text() {
    assert_error(
        &error("FROM alpine\nSHELL /bin/bash -c\n"),
        "SHELL requires the arguments to be in JSON form",
        Some((2, 1)),
        Some("write SHELL [\"/bin/bash\", \"-c\"]"),
    );
    assert_error(
        &error("FROM alpine\nHEALTHCHECK --interval=5 CMD true\n"),
        "--interval: missing unit in duration \"5\"",
        Some((2, 24)),
        None,
    );
    assert_error(
        &error("FROM alpine\nCOPY onlyone\n"),
        "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
        Some((2, 1)),
        None,
    );
    assert_error(
        &error("FROM alpine\nWORKDIR\n"),
        "WORKDIR requires exactly one argument",
        Some((2, 1)),
        None,
    );
    assert!(matches!(
        plan("FROM alpine\nSHELL [\"/bin/bash\", \"-c\"]\n").stages[0].instructions[0].command,
        Command::Shell(_)
    ));
}

#[test]
fn heredocs_in_copy_are_expanded_raw() {
    let plan =
        plan("FROM alpine\nENV NAME=world\nCOPY <<EOF /greeting\nhello \"$NAME\" \\$NAME\nEOF\n");
    let vars = &mut plan.initial_vars::<&str>(&[]);
    plan.step(&plan.stages[0].instructions[0], vars).unwrap();
    let copy = plan.step(&plan.stages[0].instructions[1], vars).unwrap();
    let Command::Copy(copy) = copy.command else {
        panic!("COPY")
    };
    assert_eq!(copy.files.heredocs[0].content, "hello \"world\" $NAME\n");
}

#[test]
fn the_hello_example_plans() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/hello/Dockerfile"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let plan = plan(&text);
    assert_eq!(plan.stages.len(), 3);
    assert_eq!(plan.build_order, [0, 2]);
    assert_eq!(
        plan.stages[0].base,
        Base::Image("distill-examples/debian-gcc:bookworm".into())
    );
    assert_eq!(plan.stages[2].base, Base::Scratch);
}

#[test]
fn triggers_from_an_image_config() {
    let trigger = distill_plan::parse_trigger("COPY --from=build /app /app").unwrap();
    assert_eq!(trigger.keyword(), "COPY");
    let error = distill_plan::parse_trigger("FROM alpine").unwrap_err();
    assert_eq!(error.message, "FROM isn't allowed as an ONBUILD trigger");
    let error = distill_plan::parse_trigger("RUN a\nRUN b").unwrap_err();
    assert_eq!(
        error.message,
        "onbuild trigger should be a single expression"
    );

    let plan = plan("FROM node AS build\nFROM build\n");
    assert_eq!(plan.input_for("BUILD", true), Some(Input::Stage(0)));
    assert_eq!(plan.input_for("1", true), Some(Input::Stage(1)));
    assert_eq!(plan.input_for("7", true), None);
    assert_eq!(plan.input_for("7", false), Some(Input::Image("7".into())));
    assert_eq!(plan.input_for("scratch", true), Some(Input::Scratch));
}

#[test]
fn parser_warnings_are_kept() {
    let plan = plan("FROM alpine\nRUN echo a \\\n\n  b\n");
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
}

#[test]
fn the_hello_example_renders() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/hello/Dockerfile"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let source = Source::new("examples/hello/Dockerfile", text);
    let options = PlanOptions {
        build_args: build_args(&["GREETING=hi"]),
        ..defaults()
    };
    let plan = plan_source(&source, &options).unwrap();
    let expected = r#"plan for examples/hello/Dockerfile
target: stage 2 (the last stage)
platform: linux/amd64 (building on linux/amd64)
global args: BUILDER=distill-examples/debian-gcc:bookworm
build args: GREETING=hi

stage 0 "build"  FROM distill-examples/debian-gcc:bookworm (from ${BUILDER})  [linux/amd64]  line 11
  12  WORKDIR /src
  13  COPY hello.c .
  14  ARG GREETING="Hello from distill"
  15  RUN gcc -static -Os -s -DGREETING="\"${GREETING}\"" -o /hello hello.c

stage 2  FROM scratch  [linux/amd64]  line 21  (target)
  22  COPY --from=build /hello /hello
        copies from stage 0 "build"
  23  USER 65534:65534
  24  ENTRYPOINT ["/hello"]

skipped (the target does not need them):
  stage 1 "test"  FROM stage 0 "build"  line 18
"#;
    assert_eq!(plan.to_string(), expected);
}

#[test]
fn expose_is_checked_after_expansion() {
    let plan = plan("FROM alpine\nARG PROTO=http\nEXPOSE 80/$PROTO\n");
    let vars = &mut plan.initial_vars::<&str>(&[]);
    plan.step(&plan.stages[0].instructions[0], vars).unwrap();
    let error = plan
        .step(&plan.stages[0].instructions[1], vars)
        .unwrap_err();
    assert_error(
        &error,
        "invalid proto: http",
        Some((3, 8)),
        Some("write a port"),
    );
    let source = Source::new("Dockerfile", "EXPOSE 80 8000-8001/udp\n");
    let words = [
        distill_frontend::Word {
            value: "80".into(),
            pos: Pos::new(1, 8),
        },
        distill_frontend::Word {
            value: "8000-8001/udp".into(),
            pos: Pos::new(1, 11),
        },
    ];
    assert_eq!(
        distill_plan::exposed_ports(&source, &words).unwrap(),
        ["80/tcp", "8000/udp", "8001/udp"]
    );
}

#[test]
fn copy_checks_after_expansion() {
    let plan = plan(
        "FROM alpine\nCOPY --chmod=0999 a b\nCOPY https://example.com/x /x\nCOPY git@github.com:o/r.git /r\nADD --chmod=u+x https://example.com/x /x\n",
    );
    let steps: Vec<Result<distill_plan::Instruction, Diagnostic>> = plan.stages[0]
        .instructions
        .iter()
        .map(|i| plan.step(i, &mut plan.initial_vars::<&str>(&[])))
        .collect();
    let message = |i: usize| steps[i].as_ref().unwrap_err().message.clone();
    assert_eq!(
        message(0),
        "invalid chmod parameter: '0999'. it should be octal string and between 0 and 07777"
    );
    assert_eq!(steps[0].as_ref().unwrap_err().pos, Some(Pos::new(2, 14)));
    assert_eq!(message(1), "source can't be a URL for COPY");
    assert_eq!(message(2), "source can't be a git ref for COPY");
    assert!(steps[3].is_ok());
}
