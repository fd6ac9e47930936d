//! The build plan: which stages a build runs, in what order, from what bases, with which
//! global args, as BuildKit's `dockerfile2llb` decides before it dispatches anything.
//!
//! [`plan`] reads the instructions, splits global ARGs (before the first FROM) from stages,
//! resolves the global args (predefined platform args, then each global ARG with build args
//! winning over defaults), expands each FROM with them, picks the target (`--target` or the
//! last stage), wires every stage to what it reads (its base, `COPY --from`, `RUN --mount
//! from=`, the ONBUILD triggers of a base stage), rejects cycles, and keeps the stages the
//! target reaches. It never looks at an image: values that depend on a base image's config
//! (its ENV) are left to the build engine, which replays each stage with [`Plan::step`].

use std::collections::HashMap;

use distill_frontend::{Diagnostic, Dockerfile, Pos, Source, Word};
use distill_golang::strconv::parse_int;
use distill_shell::Lexer;

use crate::args::{predefined_args, BuildArgs, NON_ENV_ARGS};
use crate::expand::{expand_instruction, expand_word, Vars};
use crate::instruction::{parse_instruction, ArgDecl, Command, From, Instruction};
use crate::mount::parse_mount;
use crate::platform::Platform;
use crate::reference::check_reference;
use crate::suggest;

/// The `PATH` a stage gets when its base image sets none (BuildKit's default on Linux).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a build is asked for, besides the Dockerfile.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// `--target`: the stage to build (any case); the last stage when `None`.
    pub target: Option<String>,
    pub build_args: BuildArgs,
    /// `--platform`: the platform to build for; the build platform when `None`.
    pub target_platform: Option<Platform>,
    /// The platform the build runs on.
    pub build_platform: Platform,
}

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions {
            target: None,
            build_args: BuildArgs::new(),
            target_platform: None,
            build_platform: Platform::host(),
        }
    }
}

/// What a stage starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// An empty file system (`FROM scratch`).
    Scratch,
    /// An image reference, with global args expanded, as written otherwise.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// Something an instruction reads files from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stage(usize),
    Image(String),
    Scratch,
}

/// How an instruction reads another stage or an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `COPY --from=`
    CopyFrom,
    /// `RUN --mount=...,from=`
    MountFrom,
}

/// One edge of the plan: an instruction of a stage that reads another stage or an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub input: Input,
    pub via: Via,
    /// The `--from`/`from=` value as written, at its position.
    pub written: Word,
    /// True when the instruction is an ONBUILD trigger inherited from the base stage.
    pub trigger: bool,
}

/// One `FROM` section of the Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages, from 0 (what `COPY --from=0` names).
    pub index: usize,
    /// The name after `AS`, lower case.
    pub name: Option<String>,
    /// The FROM instruction itself.
    pub from: Instruction,
    /// The FROM's image word with global args expanded.
    pub base_name: String,
    pub base: Base,
    /// The platform the stage runs as: its base stage's, `FROM --platform`, or the target's.
    pub platform: Platform,
    /// The instructions after FROM, as written (not expanded).
    pub instructions: Vec<Instruction>,
    /// ONBUILD triggers of the base stage, which run before `instructions`.
    pub triggers: Vec<Instruction>,
    pub dependencies: Vec<Dependency>,
    /// Needed to build the target.
    pub reachable: bool,
}

impl Stage {
    /// The name BuildKit shows for the stage: its name, or `stage-N`.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("stage-{}", self.index),
        }
    }
}

/// The build plan of a Dockerfile for one set of [`PlanOptions`].
#[derive(Clone, Debug)]
pub struct Plan {
    /// The Dockerfile the plan was made from (diagnostics of later steps point into it).
    pub source: Source,
    /// The escape character of the Dockerfile (`\` or a backtick).
    pub escape: char,
    /// Every stage, in file order, reachable or not.
    pub stages: Vec<Stage>,
    /// Index of the stage the build produces.
    pub target: usize,
    /// Indexes of the reachable stages, in an order where each comes after what it reads.
    pub build_order: Vec<usize>,
    /// Global args after resolution: the predefined args and each global ARG with a value.
    pub global_args: Vars,
    /// The ARGs declared before the first FROM, as written.
    pub global_decls: Vec<ArgDecl>,
    pub build_args: BuildArgs,
    pub target_platform: Platform,
    pub build_platform: Platform,
    /// What the parser warned about without failing (e.g. empty continuation lines).
    pub warnings: Vec<Diagnostic>,
}

/// Parses `source` and plans its build.
pub fn plan_source(source: &Source, options: &PlanOptions) -> Result<Plan, Diagnostic> {
    if source.text.is_empty() {
        return Err(Diagnostic::file(source, "the Dockerfile cannot be empty")
            .with_hint("a Dockerfile needs at least a FROM line"));
    }
    let dockerfile = distill_frontend::parse(source)?;
    plan(dockerfile, source, options)
}

/// Plans the build of a parsed Dockerfile. Errors come in BuildKit's order: instructions,
/// stages, global args, FROM lines, target, stage references, cycles, then the checks that
/// only matter for stages the target needs.
pub fn plan(
    dockerfile: Dockerfile,
    source: &Source,
    options: &PlanOptions,
) -> Result<Plan, Diagnostic> {
    let escape = dockerfile.directives.escape;
    let lexer = Lexer::new(escape);
    let warnings = dockerfile.warnings.clone();

    // Instructions are read in file order, each checked before the next is parsed, so the
    // first error in the file is the one reported.
    let mut global_decls: Vec<ArgDecl> = Vec::new();
    let mut sections: Vec<(Instruction, From, Vec<Instruction>)> = Vec::new();
    for node in dockerfile.nodes {
        let instruction = parse_instruction(node, source)?;
        match (&instruction.command, sections.last_mut()) {
            (Command::From(from), _) => {
                let from = from.clone();
                sections.push((instruction, from, Vec::new()));
            }
            (_, Some((_, _, body))) => body.push(instruction),
            (Command::Arg(decls), None) => global_decls.extend(decls.iter().cloned()),
            (_, None) => {
                return Err(Diagnostic::at(
                    source,
                    instruction.pos,
                    "no build stage in current context",
                )
                .with_hint(format!(
                    "only ARG may come before the first FROM; move this {} after a FROM line",
                    instruction.keyword()
                )))
            }
        }
    }
    if sections.is_empty() {
        return Err(
            Diagnostic::file(source, "dockerfile contains no stages to build")
                .with_hint("add a FROM line: FROM image, or FROM scratch"),
        );
    }
    // Stage names are unique, so a name maps to one stage.
    let names = stage_names(source, &sections)?;

    let target_platform = options
        .target_platform
        .clone()
        .unwrap_or_else(|| options.build_platform.clone());
    let target_name = match &options.target {
        Some(target) => target.to_lowercase(),
        None => sections
            .last()
            .and_then(|(_, from, _)| from.name.as_ref())
            .map_or_else(|| "default".to_string(), |name| name.value.clone()),
    };
    let mut global_args = predefined_args(
        &options.build_platform,
        &target_platform,
        &target_name,
        &options.build_args,
    );
    for decl in &global_decls {
        let value = match (options.build_args.get(&decl.name.value), &decl.default) {
            (Some(value), _) => Some(value.to_string()),
            (None, Some(default)) => {
                Some(expand_word(&lexer, source, default, &global_args)?.value)
            }
            (None, None) => None,
        };
        if let Some(value) = value {
            global_args.set(&decl.name.value, &value);
        }
    }

    let mut stages: Vec<Stage> = Vec::with_capacity(sections.len());
    for (index, (from_instruction, from, body)) in sections.into_iter().enumerate() {
        let base_name = expand_word(&lexer, source, &from.image, &global_args)?.value;
        if base_name.is_empty() {
            return Err(Diagnostic::at(
                source,
                from.image.pos,
                format!("base name ({}) should not be blank", from.image.value),
            )
            .with_hint("give the variable a value: a default in a global ARG, or --build-arg"));
        }
        let platform_given = match &from.platform {
            None => None,
            Some(word) => Some(stage_platform(&lexer, source, word, &global_args)?),
        };
        // A stage built on a stage runs as its parent; FROM scratch as the target platform.
        let earlier = names
            .get(base_name.as_str())
            .filter(|&&i| i < index)
            .map(|&i| &stages[i]);
        let (base, platform) = match earlier {
            Some(parent) => (Base::Stage(parent.index), parent.platform.clone()),
            None if base_name == "scratch" => (Base::Scratch, target_platform.clone()),
            None => (
                Base::Image(base_name.clone()),
                platform_given.unwrap_or_else(|| target_platform.clone()),
            ),
        };
        stages.push(Stage {
            index,
            name: from.name.as_ref().map(|n| n.value.clone()),
            from: from_instruction,
            base_name,
            base,
            platform,
            instructions: body,
            triggers: Vec::new(),
            dependencies: Vec::new(),
            reachable: false,
        });
    }

    let target = match &options.target {
        None => stages.len() - 1,
        Some(wanted) => find_target(source, &stages, wanted)?,
    };

    for index in 0..stages.len() {
        if let Base::Stage(parent) = stages[index].base {
            stages[index].triggers = stages[parent]
                .instructions
                .iter()
                .filter_map(|i| match &i.command {
                    Command::Onbuild(trigger) => Some((**trigger).clone()),
                    _ => None,
                })
                .collect();
        }
        let mut dependencies = Vec::new();
        let stage = &stages[index];
        let own = stage.instructions.iter().map(|i| (i, false));
        let inherited = stage.triggers.iter().map(|i| (i, true));
        for (instruction, trigger) in inherited.chain(own) {
            collect_dependencies(
                source,
                &stages,
                &names,
                instruction,
                trigger,
                &mut dependencies,
            )?;
        }
        stages[index].dependencies = dependencies;
    }

    check_cycles(source, &stages)?;

    let mut pending = vec![target];
    while let Some(index) = pending.pop() {
        if std::mem::replace(&mut stages[index].reachable, true) {
            continue;
        }
        if let Base::Stage(parent) = stages[index].base {
            pending.push(parent);
        }
        for dependency in &stages[index].dependencies {
            if let Input::Stage(other) = dependency.input {
                pending.push(other);
            }
        }
    }
    let build_order: Vec<usize> = (0..stages.len()).filter(|&i| stages[i].reachable).collect();
    for &index in &build_order {
        check_reachable_stage(source, &lexer, &stages, &stages[index])?;
    }

    Ok(Plan {
        source: source.clone(),
        escape,
        stages,
        target,
        build_order,
        global_args,
        global_decls,
        build_args: options.build_args.clone(),
        target_platform,
        build_platform: options.build_platform.clone(),
        warnings,
    })
}

/// The index of each named stage, by name; a name used twice is an error.
fn stage_names(
    source: &Source,
    sections: &[(Instruction, From, Vec<Instruction>)],
) -> Result<HashMap<String, usize>, Diagnostic> {
    let mut names = HashMap::with_capacity(sections.len());
    for (index, (_, from, _)) in sections.iter().enumerate() {
        let Some(name) = &from.name else { continue };
        if let Some(earlier) = names.insert(name.value.clone(), index) {
            let first = &sections[earlier].0;
            return Err(Diagnostic::at(
                source,
                name.pos,
                format!("duplicate stage name {:?}", name.value),
            )
            .with_hint(format!(
                "stage {:?} is already defined on line {}; give each stage its own name",
                name.value, first.pos.line
            )));
        }
    }
    Ok(names)
}

fn stage_platform(
    lexer: &Lexer,
    source: &Source,
    word: &Word,
    global_args: &Vars,
) -> Result<Platform, Diagnostic> {
    let expanded = expand_word(lexer, source, word, global_args)?;
    if expanded.value.is_empty() {
        return Err(Diagnostic::at(
            source,
            word.pos,
            format!("empty platform value from expression {}", word.value),
        )
        .with_hint("give the variable a value, or write a platform such as linux/amd64"));
    }
    Platform::parse(&expanded.value).map_err(|why| {
        Diagnostic::at(
            source,
            word.pos,
            format!("failed to parse platform {}: {why}", word.value),
        )
    })
}

fn find_target(source: &Source, stages: &[Stage], wanted: &str) -> Result<usize, Diagnostic> {
    let lower = wanted.to_lowercase();
    if let Some(stage) = stages
        .iter()
        .rev()
        .find(|s| s.name.as_deref() == Some(&lower))
    {
        return Ok(stage.index);
    }
    let names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
    let error = Diagnostic::file(
        source,
        format!("target stage {wanted:?} could not be found"),
    );
    Err(match suggest::nearest(wanted, names.iter().copied()) {
        Some(near) => error.with_hint(format!("did you mean {near}?")),
        None if names.is_empty() => {
            error.with_hint("no stage has a name: name one with FROM image AS name")
        }
        None => error.with_hint(format!("the stages are named {}", names.join(", "))),
    })
}

/// Resolves what a `--from` names, as BuildKit: a number is a stage index; otherwise a stage
/// name (any case), then `scratch`, then an image reference.
fn collect_dependencies(
    source: &Source,
    stages: &[Stage],
    names: &HashMap<String, usize>,
    instruction: &Instruction,
    trigger: bool,
    dependencies: &mut Vec<Dependency>,
) -> Result<(), Diagnostic> {
    // Later stages count too: using one is an error reported with the reachable checks.
    let by_name = |name: &str| names.get(name.to_lowercase().as_str()).map(|&i| &stages[i]);
    let other = |name: &str| {
        if name == "scratch" {
            Input::Scratch
        } else {
            Input::Image(name.to_string())
        }
    };
    match &instruction.command {
        Command::Copy(copy) => {
            let Some(from) = &copy.from else {
                return Ok(());
            };
            if let Some(index) = from.value.find('$') {
                if index != from.value.len() - 1 {
                    return Err(Diagnostic::at(
                        source,
                        from.pos,
                        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
                    )
                    .with_hint(
                        "declare the ARG before the first FROM, add `FROM <image>:${ARG} AS alias`, \
                         and write COPY --from=alias",
                    ));
                }
            }
            let input = match parse_int(&from.value) {
                Some(number) => {
                    let index = usize::try_from(number)
                        .ok()
                        .filter(|&i| i < stages.len())
                        .ok_or_else(|| {
                            Diagnostic::at(
                                source,
                                from.pos,
                                format!("invalid stage index {number}"),
                            )
                            .with_hint(format!(
                                "stages are numbered from 0 to {}",
                                stages.len() - 1
                            ))
                        })?;
                    Input::Stage(index)
                }
                None => match by_name(&from.value) {
                    Some(stage) => Input::Stage(stage.index),
                    None => other(&from.value),
                },
            };
            dependencies.push(Dependency {
                input,
                via: Via::CopyFrom,
                written: from.clone(),
                trigger,
            });
        }
        Command::Run(run) => {
            for mount in &run.mounts {
                let Some(from) = &mount.from else { continue };
                if from.value.is_empty() {
                    continue;
                }
                let input = match by_name(&from.value) {
                    Some(stage) => Input::Stage(stage.index),
                    None => other(&from.value),
                };
                dependencies.push(Dependency {
                    input,
                    via: Via::MountFrom,
                    written: from.clone(),
                    trigger,
                });
            }
        }
        _ => {}
    }
    Ok(())
}

/// Stage-to-stage edges: the base stage, and stages read by `--from`.
fn stage_edges(stage: &Stage) -> impl Iterator<Item = (usize, Option<&Dependency>)> + '_ {
    let base = match stage.base {
        Base::Stage(parent) => Some((parent, None)),
        _ => None,
    };
    let reads = stage.dependencies.iter().filter_map(|d| match d.input {
        Input::Stage(other) => Some((other, Some(d))),
        _ => None,
    });
    base.into_iter().chain(reads)
}

fn check_cycles(source: &Source, stages: &[Stage]) -> Result<(), Diagnostic> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; stages.len()];
    for start in 0..stages.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative depth-first search; `path` holds (stage, next edge to try).
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some(top) = path.last_mut() {
            let (current, next) = *top;
            top.1 += 1;
            let edge = stage_edges(&stages[current]).nth(next);
            match edge {
                None => {
                    marks[current] = Mark::Done;
                    path.pop();
                }
                Some((other, via)) => {
                    match marks[other] {
                        Mark::Done => {}
                        Mark::New => {
                            marks[other] = Mark::OnPath;
                            path.push((other, 0));
                        }
                        Mark::OnPath => {
                            let mut cycle: Vec<String> = path
                                .iter()
                                .skip_while(|(s, _)| *s != other)
                                .map(|(s, _)| stages[*s].display_name())
                                .collect();
                            cycle.push(stages[other].display_name());
                            // Point at a `--from` of the cycle rather than at a FROM line:
                            // reading a stage is what can be undone.
                            let taken = path.iter().skip_while(|(s, _)| *s != other).filter_map(
                                |&(s, n)| stage_edges(&stages[s]).nth(n.checked_sub(1)?)?.1,
                            );
                            let pos = via
                                .or(taken.into_iter().next())
                                .map_or(stages[current].from.pos, |d| d.written.pos);
                            let hint = if other == current {
                                "a stage cannot read from itself".to_string()
                            } else {
                                format!("the stages read each other: {}", cycle.join(" -> "))
                            };
                            return Err(Diagnostic::at(
                                source,
                                pos,
                                format!(
                                    "circular dependency detected on stage: {}",
                                    stages[other].display_name()
                                ),
                            )
                            .with_hint(hint));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Checks BuildKit makes only for the stages it builds: stage order, image references, and
/// mounts that hold no variable (so their meaning is known before the build).
fn check_reachable_stage(
    source: &Source,
    lexer: &Lexer,
    stages: &[Stage],
    stage: &Stage,
) -> Result<(), Diagnostic> {
    if let Base::Image(reference) = &stage.base {
        check_image(source, stages, reference, stage.from.pos)?;
    }
    for dependency in &stage.dependencies {
        match &dependency.input {
            Input::Stage(other) if *other > stage.index => {
                let message = match dependency.via {
                    Via::CopyFrom => format!(
                        "cannot copy from stage {:?}, it needs to be defined before current stage {:?}",
                        dependency.written.value,
                        stage.display_name()
                    ),
                    Via::MountFrom => format!(
                        "cannot mount from stage {:?} to {:?}, stage needs to be defined before current command",
                        dependency.written.value,
                        stage.display_name()
                    ),
                };
                return Err(
                    Diagnostic::at(source, dependency.written.pos, message).with_hint(format!(
                        "move stage {:?} (line {}) before this one",
                        stages[*other].display_name(),
                        stages[*other].from.pos.line
                    )),
                );
            }
            Input::Image(reference) => {
                check_image(source, stages, reference, dependency.written.pos)?;
            }
            _ => {}
        }
    }
    let literal = |text: &str| !text.contains(['$', '"', '\'', lexer.escape()]);
    for instruction in stage.triggers.iter().chain(&stage.instructions) {
        if let Command::Run(run) = &instruction.command {
            for mount in run.mounts.iter().filter(|m| literal(&m.spec.value)) {
                parse_mount(source, &mount.spec, &mut |w: &Word| Ok(w.value.clone()))?;
            }
        }
    }
    Ok(())
}

fn check_image(
    source: &Source,
    stages: &[Stage],
    reference: &str,
    pos: Pos,
) -> Result<(), Diagnostic> {
    let Err(why) = check_reference(reference) else {
        return Ok(());
    };
    let error = Diagnostic::at(
        source,
        pos,
        format!("failed to parse stage name {reference:?}: {why}"),
    );
    let lower = reference.to_lowercase();
    Err(
        match stages.iter().find(|s| s.name.as_deref() == Some(&lower)) {
            Some(stage) => error.with_hint(format!(
                "stage names are lower case: write {:?} to use stage {} (line {})",
                lower, stage.index, stage.from.pos.line
            )),
            None => {
                error.with_hint("write an image reference such as alpine:3.20, or a stage name")
            }
        },
    )
}

impl Plan {
    /// The shell lexer for this Dockerfile's escape character.
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// The stage the build produces.
    pub fn target_stage(&self) -> &Stage {
        &self.stages[self.target]
    }

    /// The reachable stages in build order.
    pub fn stages_to_build(&self) -> impl Iterator<Item = &Stage> {
        self.build_order.iter().map(|&i| &self.stages[i])
    }

    /// Images the reachable stages read with `COPY --from` or `RUN --mount from=`.
    pub fn images_read(&self) -> Vec<&str> {
        let mut images: Vec<&str> = Vec::new();
        for stage in self.stages_to_build() {
            for dependency in &stage.dependencies {
                if let Input::Image(reference) = &dependency.input {
                    if !images.contains(&reference.as_str()) {
                        images.push(reference);
                    }
                }
            }
        }
        images
    }

    /// What a `--from`/`from=` value names, for instructions the plan could not see: ONBUILD
    /// triggers from a base image's config. `index_allowed` is true for `COPY --from` (which
    /// takes a stage index), false for `RUN --mount from=`.
    pub fn input_for(&self, written: &str, index_allowed: bool) -> Option<Input> {
        if index_allowed {
            if let Some(number) = parse_int(written) {
                let index = usize::try_from(number).ok()?;
                return (index < self.stages.len()).then_some(Input::Stage(index));
            }
        }
        let lower = written.to_lowercase();
        if let Some(stage) = self
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(&lower))
        {
            return Some(Input::Stage(stage.index));
        }
        Some(match written {
            "scratch" => Input::Scratch,
            _ => Input::Image(written.to_string()),
        })
    }

    /// The variables a stage starts with, given its base image's `Env` (nothing for scratch):
    /// `PATH` is added when the base sets none. A stage built on a stage starts with the
    /// parent's variables after its last instruction instead (the caller keeps those).
    pub fn initial_vars<S: AsRef<str>>(&self, image_env: &[S]) -> Vars {
        let mut vars = Vars::from_env_list(image_env);
        if vars.get("PATH").is_none() {
            vars.set("PATH", DEFAULT_PATH);
        }
        vars
    }

    /// Runs one instruction's variable semantics: expands it against `vars` (see
    /// [`crate::expand`]) and applies its effect on the variables (ENV sets each pair; ARG
    /// sets each name to its build arg, its expanded default, or the global value). Returns
    /// the instruction with the expanded words (an ARG's defaults become the values used).
    ///
    /// `vars` is the build environment (what later instructions expand against and what RUN
    /// sees), not the image config's `Env`: an ARG re-sets a name for the build without
    /// changing the config, which only ENV instructions write.
    pub fn step(
        &self,
        instruction: &Instruction,
        vars: &mut Vars,
    ) -> Result<Instruction, Diagnostic> {
        let Command::Arg(decls) = &instruction.command else {
            let expanded = expand_instruction(instruction, &self.lexer(), &self.source, vars)?;
            if let Command::Env(pairs) = &expanded.command {
                for pair in pairs {
                    vars.set(&pair.key.value, &pair.value.value);
                }
            }
            return Ok(expanded);
        };
        let lexer = self.lexer();
        let mut resolved = Vec::with_capacity(decls.len());
        for decl in decls {
            let name = decl.name.value.as_str();
            let value = match (self.build_args.get(name), &decl.default) {
                (Some(value), _) => Some(value.to_string()),
                (None, Some(default)) => {
                    Some(expand_word(&lexer, &self.source, default, vars)?.value)
                }
                (None, None) => self.global_args.get(name).map(str::to_string),
            };
            if let Some(value) = &value {
                if !NON_ENV_ARGS.contains(&name) {
                    vars.set(name, value);
                }
            }
            resolved.push(ArgDecl {
                name: decl.name.clone(),
                default: value.map(|value| Word {
                    value,
                    pos: decl.default.as_ref().map_or(decl.name.pos, |d| d.pos),
                }),
            });
        }
        Ok(Instruction {
            command: Command::Arg(resolved),
            ..instruction.clone()
        })
    }
}
