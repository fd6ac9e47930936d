//! Syntax-tree [`Node`]s → typed [`Instruction`]s, with the checks BuildKit's
//! `instructions/parse.go` makes: argument counts, flags, stage names, JSON-only SHELL,
//! ONBUILD triggers, HEALTHCHECK options, RUN mounts' CSV.
//!
//! Nothing here expands a variable: words are kept as written, with their positions, and
//! [`crate::expand`] turns them into values once the stage's environment is known. Every
//! error is a [`Diagnostic`] at the keyword, flag or argument it is about.

use std::time::Duration;

use distill_frontend::{Diagnostic, Dockerfile, Heredoc, Node, Pos, Source, Word};
use distill_golang::strconv::parse_int;
use distill_golang::time::parse_duration;

use crate::flags::{self, Flags};
use crate::mount::{self, shift, Device, Mount};
use crate::suggest;

/// Every Dockerfile instruction, upper case.
pub const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// One instruction of a Dockerfile, typed, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// What the instruction says.
    pub command: Command,
    /// Where the keyword is.
    pub pos: Pos,
    /// First and last physical lines (heredoc bodies included).
    pub start_line: u32,
    pub end_line: u32,
    /// The instruction's text with continuations joined, as written.
    pub original: String,
}

impl Instruction {
    /// The keyword, upper case (`COPY`).
    pub fn keyword(&self) -> &'static str {
        self.command.keyword()
    }
}

/// What an instruction says. Words keep their text as written (quotes, `$VAR`) and position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Add(Add),
    Arg(Vec<ArgDecl>),
    Cmd(CommandLine),
    Copy(Copy),
    Entrypoint(CommandLine),
    Env(Vec<KeyValue>),
    Expose(Vec<Word>),
    From(From),
    Healthcheck(Healthcheck),
    Label(Vec<KeyValue>),
    Maintainer(Word),
    /// The trigger, parsed and checked; it runs in stages built on this one.
    Onbuild(Box<Instruction>),
    Run(Run),
    Shell(Vec<Word>),
    StopSignal(Word),
    User(Word),
    Volume(Vec<Word>),
    Workdir(Word),
}

impl Command {
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::Add(_) => "ADD",
            Command::Arg(_) => "ARG",
            Command::Cmd(_) => "CMD",
            Command::Copy(_) => "COPY",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Env(_) => "ENV",
            Command::Expose(_) => "EXPOSE",
            Command::From(_) => "FROM",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Label(_) => "LABEL",
            Command::Maintainer(_) => "MAINTAINER",
            Command::Onbuild(_) => "ONBUILD",
            Command::Run(_) => "RUN",
            Command::Shell(_) => "SHELL",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::User(_) => "USER",
            Command::Volume(_) => "VOLUME",
            Command::Workdir(_) => "WORKDIR",
        }
    }
}

/// `FROM [--platform=P] image [AS name]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct From {
    /// The base: an image reference, a stage name or `scratch`, before expansion.
    pub image: Word,
    /// The stage name, lower case, at the position of the name.
    pub name: Option<Word>,
    pub platform: Option<Word>,
}

/// `ENV`/`LABEL` `key=value` (or the legacy `key value`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Word,
    /// The value as written, quotes included: expansion removes them.
    pub value: Word,
    /// Written in the legacy `KEY value` form.
    pub legacy: bool,
}

/// One name of an `ARG`, with its default if written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: Word,
    pub default: Option<Word>,
}

/// The command of RUN, CMD, ENTRYPOINT or HEALTHCHECK CMD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine {
    /// Exec form: one word per element. Shell form: the command text, one word.
    pub args: Vec<Word>,
    /// Written as a JSON array: run as is, not through the shell.
    pub exec_form: bool,
    /// Here-documents of a RUN.
    pub heredocs: Vec<Heredoc>,
}

/// `RUN [--mount=...]... [--network=N] [--security=S] [--device=D]... command`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    pub mounts: Vec<RunMount>,
    pub network: Option<(Network, Word)>,
    pub security: Option<(Security, Word)>,
    /// CDI devices (`--device=name[,required]`), with the flag value as written.
    pub devices: Vec<(Device, Word)>,
}

/// One `--mount` of a RUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunMount {
    /// The specification as written (after `--mount=`).
    pub spec: Word,
    /// `from=` as written: a stage or image the mount reads (never a variable).
    pub from: Option<Word>,
    /// The interpreted mount: set by expansion, since values may hold variables.
    pub mount: Option<Mount>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    Sandbox,
    Insecure,
}

/// The sources and destination of COPY and ADD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcesAndDest {
    /// Paths (or URLs, for ADD) to copy.
    pub sources: Vec<Word>,
    /// Here-documents given as sources: each becomes a file named after its delimiter.
    pub heredocs: Vec<Heredoc>,
    pub dest: Word,
}

/// `COPY [--from] [--chown] [--chmod] [--link] [--parents] [--exclude]... src... dest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    pub files: SourcesAndDest,
    /// A stage name, stage index or image to copy from, as written.
    pub from: Option<Word>,
    pub chown: Option<Word>,
    pub chmod: Option<Word>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<Word>,
}

/// `ADD [--chown] [--chmod] [--link] [--keep-git-dir] [--checksum] [--unpack] [--exclude]...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Add {
    pub files: SourcesAndDest,
    pub chown: Option<Word>,
    pub chmod: Option<Word>,
    pub link: bool,
    pub keep_git_dir: bool,
    pub checksum: Option<Word>,
    /// `--unpack` given: `Some(true|false)`; not given: unpack local archives only.
    pub unpack: Option<bool>,
    pub exclude: Vec<Word>,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Healthcheck {
    /// Disable any healthcheck inherited from the base image.
    None,
    Check(Check),
}

/// A healthcheck command and its timing. Unset (or zero) durations use the runtime's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub command: CommandLine,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

/// Parses every node of `dockerfile` into an instruction, stopping at the first error.
pub fn parse_instructions(
    dockerfile: Dockerfile,
    source: &Source,
) -> Result<Vec<Instruction>, Diagnostic> {
    let mut instructions = Vec::with_capacity(dockerfile.nodes.len());
    for node in dockerfile.nodes {
        instructions.push(parse_instruction(node, source)?);
    }
    Ok(instructions)
}

/// Parses one node into an instruction.
/// Parses one node into an instruction (the node's words move into it).
pub fn parse_instruction(node: Node, source: &Source) -> Result<Instruction, Diagnostic> {
    let mut parser = NodeParser { node, source };
    let command = parser.command()?;
    let node = parser.node;
    Ok(Instruction {
        command,
        pos: node.pos,
        start_line: node.start_line,
        end_line: node.end_line,
        original: node.original,
    })
}

struct NodeParser<'a> {
    node: Node,
    source: &'a Source,
}

impl NodeParser<'_> {
    fn error(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.source, pos, message)
    }

    fn at_keyword(&self, message: impl Into<String>) -> Diagnostic {
        self.error(self.node.pos, message)
    }

    fn flags(&self, keyword: &str, specs: &[flags::FlagSpec]) -> Result<Flags, Diagnostic> {
        flags::parse(self.source, keyword, &self.node.flags, specs)
    }

    fn no_flags(&self, keyword: &str) -> Result<(), Diagnostic> {
        self.flags(keyword, &[]).map(|_| ())
    }

    fn command(&mut self) -> Result<Command, Diagnostic> {
        match self.node.keyword.as_str() {
            "add" => self.add(),
            "arg" => self.arg(),
            "cmd" => {
                self.no_flags("CMD")?;
                Ok(Command::Cmd(self.command_line()))
            }
            "copy" => self.copy(),
            "entrypoint" => {
                self.no_flags("ENTRYPOINT")?;
                Ok(Command::Entrypoint(self.command_line()))
            }
            "env" => {
                self.no_flags("ENV")?;
                Ok(Command::Env(self.key_values("ENV")?))
            }
            "expose" => {
                self.at_least_one("EXPOSE")?;
                self.no_flags("EXPOSE")?;
                Ok(Command::Expose(std::mem::take(&mut self.node.args)))
            }
            "from" => self.from(),
            "healthcheck" => self.healthcheck(),
            "label" => {
                self.no_flags("LABEL")?;
                Ok(Command::Label(self.key_values("LABEL")?))
            }
            "maintainer" => {
                let word = self.exactly_one("MAINTAINER")?;
                self.no_flags("MAINTAINER")?;
                Ok(Command::Maintainer(word))
            }
            "onbuild" => self.onbuild(),
            "run" => self.run(),
            "shell" => self.shell(),
            "stopsignal" => {
                let word = self.exactly_one("STOPSIGNAL")?;
                self.no_flags("STOPSIGNAL")?;
                Ok(Command::StopSignal(word))
            }
            "user" => {
                let word = self.exactly_one("USER")?;
                self.no_flags("USER")?;
                Ok(Command::User(word))
            }
            "volume" => self.volume(),
            "workdir" => {
                let word = self.exactly_one("WORKDIR")?;
                self.no_flags("WORKDIR")?;
                Ok(Command::Workdir(word))
            }
            _ => Err(self.unknown_instruction()),
        }
    }

    fn unknown_instruction(&self) -> Diagnostic {
        // Show the keyword as the user wrote it (the tree keeps it lower case).
        let written = self
            .node
            .original
            .split_whitespace()
            .next()
            .filter(|w| w.eq_ignore_ascii_case(&self.node.keyword))
            .unwrap_or(&self.node.keyword)
            .to_string();
        let error = self.at_keyword(format!("unknown instruction: {written}"));
        match suggest::nearest(&written, INSTRUCTIONS) {
            Some(near) => error.with_hint(format!("did you mean {near}?")),
            None => error.with_hint(format!(
                "Dockerfile instructions are {}",
                INSTRUCTIONS.join(", ")
            )),
        }
    }

    fn at_least_one(&self, keyword: &str) -> Result<(), Diagnostic> {
        if self.node.args.is_empty() {
            return Err(self.at_keyword(format!("{keyword} requires at least one argument")));
        }
        Ok(())
    }

    fn exactly_one(&self, keyword: &str) -> Result<Word, Diagnostic> {
        match self.node.args.as_slice() {
            [word] => Ok(word.clone()),
            [] => Err(self.at_keyword(format!("{keyword} requires exactly one argument"))),
            [_, extra, ..] => Err(self
                .error(
                    extra.pos,
                    format!("{keyword} requires exactly one argument"),
                )
                .with_hint(format!(
                    "quote the argument if it holds spaces: {keyword} \"...\""
                ))),
        }
    }

    fn command_line(&mut self) -> CommandLine {
        CommandLine {
            args: std::mem::take(&mut self.node.args),
            exec_form: self.node.json,
            heredocs: std::mem::take(&mut self.node.heredocs),
        }
    }

    fn key_values(&mut self, keyword: &str) -> Result<Vec<KeyValue>, Diagnostic> {
        let args = std::mem::take(&mut self.node.args);
        if args.is_empty() {
            return Err(self.at_keyword(format!("{keyword} requires at least one argument")));
        }
        if !args.len().is_multiple_of(3) {
            return Err(self.at_keyword(format!("Bad input to {keyword}, too many arguments")));
        }
        let mut pairs = Vec::with_capacity(args.len() / 3);
        let mut words = args.into_iter();
        while let (Some(key), Some(value), Some(separator)) =
            (words.next(), words.next(), words.next())
        {
            if key.value.is_empty() {
                return Err(self
                    .error(key.pos, format!("{keyword} names can not be blank"))
                    .with_hint(format!("write {keyword} name=value")));
            }
            pairs.push(KeyValue {
                key,
                value,
                legacy: separator.value.is_empty(),
            });
        }
        Ok(pairs)
    }

    fn arg(&mut self) -> Result<Command, Diagnostic> {
        self.at_least_one("ARG")?;
        self.no_flags("ARG")?;
        let mut decls = Vec::with_capacity(self.node.args.len());
        for word in std::mem::take(&mut self.node.args) {
            let decl = match word.value.split_once('=') {
                Some(("", _)) => {
                    return Err(self
                        .error(word.pos, "ARG names can not be blank")
                        .with_hint("write ARG name or ARG name=default"))
                }
                Some((name, default)) => ArgDecl {
                    name: Word {
                        value: name.to_string(),
                        pos: word.pos,
                    },
                    default: Some(Word {
                        value: default.to_string(),
                        pos: shift(word.pos, name.chars().count() + 1),
                    }),
                },
                None => ArgDecl {
                    name: word,
                    default: None,
                },
            };
            decls.push(decl);
        }
        Ok(Command::Arg(decls))
    }

    fn from(&self) -> Result<Command, Diagnostic> {
        let args = &self.node.args;
        let name = match args.as_slice() {
            [_] => None,
            [_, as_word, name] if as_word.value.eq_ignore_ascii_case("as") => {
                Some(self.stage_name(name)?)
            }
            [] => {
                return Err(self
                    .at_keyword("FROM requires either one or three arguments")
                    .with_hint("write FROM image or FROM image AS name"))
            }
            [_, second, ..] => {
                let pos = if args.len() > 3 {
                    args[3].pos
                } else {
                    second.pos
                };
                return Err(self
                    .error(pos, "FROM requires either one or three arguments")
                    .with_hint("write FROM image or FROM image AS name"));
            }
        };
        let flags = self.flags("FROM", flags::FROM_FLAGS)?;
        Ok(Command::From(From {
            image: args[0].clone(),
            name,
            platform: flags.string("platform"),
        }))
    }

    fn stage_name(&self, word: &Word) -> Result<Word, Diagnostic> {
        let lower = word.value.to_lowercase();
        let mut chars = lower.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            });
        if !valid {
            return Err(self
                .error(
                    word.pos,
                    format!(
                        "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                        word.value
                    ),
                )
                .with_hint(
                    "a stage name starts with a letter and holds only letters, digits, '-', '_' and '.'",
                ));
        }
        Ok(Word {
            value: lower,
            pos: word.pos,
        })
    }

    fn files(&mut self, keyword: &str) -> Result<SourcesAndDest, Diagnostic> {
        let mut sources = std::mem::take(&mut self.node.args);
        let Some(dest) = sources.pop() else {
            return Err(self.no_destination(keyword));
        };
        if heredoc_marker(&dest.value) {
            return Err(self
                .error(
                    dest.pos,
                    format!("{keyword} cannot accept a heredoc as a destination"),
                )
                .with_hint(format!("write {keyword} <<NAME /destination")));
        }
        let mut bodies = std::mem::take(&mut self.node.heredocs).into_iter();
        let mut paths = Vec::with_capacity(sources.len());
        let mut heredocs = Vec::new();
        for word in sources {
            if heredoc_marker(&word.value) {
                if let Some(body) = bodies.next() {
                    heredocs.push(body);
                    continue;
                }
            }
            paths.push(word);
        }
        Ok(SourcesAndDest {
            sources: paths,
            heredocs,
            dest,
        })
    }

    fn no_destination(&self, keyword: &str) -> Diagnostic {
        self.at_keyword(format!(
            "{keyword} requires at least two arguments, but only one was provided. Destination could not be determined"
        ))
        .with_hint(format!("write {keyword} source... destination"))
    }

    fn copy(&mut self) -> Result<Command, Diagnostic> {
        if self.node.args.len() < 2 {
            return Err(self.no_destination("COPY"));
        }
        let flags = self.flags("COPY", flags::COPY_FLAGS)?;
        let files = self.files("COPY")?;
        Ok(Command::Copy(Copy {
            files,
            from: flags.string("from"),
            chown: flags.string("chown"),
            chmod: flags.string("chmod"),
            link: flags.boolean("link").unwrap_or(false),
            parents: flags.boolean("parents").unwrap_or(false),
            exclude: flags.list("exclude"),
        }))
    }

    fn add(&mut self) -> Result<Command, Diagnostic> {
        if self.node.args.len() < 2 {
            return Err(self.no_destination("ADD"));
        }
        let flags = self.flags("ADD", flags::ADD_FLAGS)?;
        let files = self.files("ADD")?;
        Ok(Command::Add(Add {
            files,
            chown: flags.string("chown"),
            chmod: flags.string("chmod"),
            link: flags.boolean("link").unwrap_or(false),
            keep_git_dir: flags.boolean("keep-git-dir").unwrap_or(false),
            checksum: flags.string("checksum"),
            unpack: flags.boolean("unpack"),
            exclude: flags.list("exclude"),
        }))
    }

    fn onbuild(&mut self) -> Result<Command, Diagnostic> {
        let Some(trigger) = self.node.onbuild.take() else {
            return Err(self.at_keyword("ONBUILD requires at least one argument"));
        };
        self.no_flags("ONBUILD")?;
        match trigger.keyword.as_str() {
            "onbuild" => {
                return Err(self
                    .error(
                        trigger.pos,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    )
                    .with_hint("a trigger runs in the next build only; it cannot add triggers"))
            }
            "maintainer" | "from" => {
                return Err(self
                    .error(
                        trigger.pos,
                        format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            trigger.keyword.to_uppercase()
                        ),
                    )
                    .with_hint("a trigger is any instruction but FROM, MAINTAINER and ONBUILD"))
            }
            _ => {}
        }
        let instruction = parse_instruction(*trigger, self.source)?;
        Ok(Command::Onbuild(Box::new(instruction)))
    }

    fn run(&mut self) -> Result<Command, Diagnostic> {
        let flags = self.flags("RUN", flags::RUN_FLAGS)?;
        let mut mounts = Vec::new();
        for spec in flags.list("mount") {
            let from = mount::unexpanded_from(self.source, &spec)?;
            mounts.push(RunMount {
                spec,
                from,
                mount: None,
            });
        }
        let network = match flags.string("network") {
            None => None,
            Some(word) => {
                let network = match word.value.as_str() {
                    "default" => Network::Default,
                    "none" => Network::None,
                    "host" => Network::Host,
                    _ => {
                        return Err(self
                            .error(
                                word.pos,
                                format!("unsupported network mode {:?}", word.value),
                            )
                            .with_hint("--network is one of default, none, host"))
                    }
                };
                Some((network, word))
            }
        };
        let security = match flags.string("security") {
            None => None,
            Some(word) => {
                let security = match word.value.as_str() {
                    "sandbox" => Security::Sandbox,
                    "insecure" => Security::Insecure,
                    _ => {
                        return Err(self
                            .error(
                                word.pos,
                                format!("unsupported security mode {:?}", word.value),
                            )
                            .with_hint("--security is one of sandbox, insecure"))
                    }
                };
                Some((security, word))
            }
        };
        let mut devices = Vec::new();
        for spec in flags.list("device") {
            devices.push((mount::parse_device(self.source, &spec)?, spec));
        }
        Ok(Command::Run(Run {
            command: self.command_line(),
            mounts,
            network,
            security,
            devices,
        }))
    }

    fn healthcheck(&self) -> Result<Command, Diagnostic> {
        let Some((kind, rest)) = self.node.args.split_first() else {
            return Err(self
                .at_keyword("HEALTHCHECK requires at least one argument")
                .with_hint("write HEALTHCHECK CMD command, or HEALTHCHECK NONE"));
        };
        let upper = kind.value.to_uppercase();
        if upper == "NONE" {
            if let Some(extra) = rest.first() {
                return Err(self.error(extra.pos, "HEALTHCHECK NONE takes no arguments"));
            }
            // BuildKit never reads the flags of HEALTHCHECK NONE; known ones are accepted
            // and ignored, unknown ones are still reported.
            self.flags("HEALTHCHECK", flags::HEALTHCHECK_FLAGS)?;
            return Ok(Command::Healthcheck(Healthcheck::None));
        }
        let flags = self.flags("HEALTHCHECK", flags::HEALTHCHECK_FLAGS)?;
        if upper != "CMD" {
            return Err(self
                .error(
                    kind.pos,
                    format!("Unknown type {upper:?} in HEALTHCHECK (try CMD)"),
                )
                .with_hint("write HEALTHCHECK [options] CMD command, or HEALTHCHECK NONE"));
        }
        if rest.is_empty() {
            return Err(self
                .error(kind.pos, "Missing command after HEALTHCHECK CMD")
                .with_hint("write HEALTHCHECK CMD command"));
        }
        let command = CommandLine {
            args: rest.to_vec(),
            exec_form: self.node.json,
            heredocs: Vec::new(),
        };
        let retries = match flags.string("retries") {
            None => None,
            Some(word) if word.value.is_empty() => None,
            Some(word) => {
                let retries: i64 = parse_int(&word.value).ok_or_else(|| {
                    self.error(
                        word.pos,
                        format!("--retries expects a whole number, not {:?}", word.value),
                    )
                })?;
                // Docker 20.10's BuildKit refuses 0 too (newer releases take it as the
                // default); distill matches the engine it is compared with.
                if retries < 1 {
                    return Err(self.error(
                        word.pos,
                        format!("--retries must be at least 1 (not {retries})"),
                    ));
                }
                let retries = u32::try_from(retries)
                    .ok()
                    .filter(|r| *r <= i32::MAX as u32)
                    .ok_or_else(|| {
                        self.error(word.pos, format!("--retries is too large ({retries})"))
                    })?;
                Some(retries)
            }
        };
        Ok(Command::Healthcheck(Healthcheck::Check(Check {
            command,
            interval: self.interval(&flags, "interval")?,
            timeout: self.interval(&flags, "timeout")?,
            start_period: self.interval(&flags, "start-period")?,
            start_interval: self.interval(&flags, "start-interval")?,
            retries,
        })))
    }

    /// A HEALTHCHECK duration: empty or zero means unset; otherwise at least 1ms.
    fn interval(&self, flags: &Flags, name: &str) -> Result<Option<Duration>, Diagnostic> {
        let Some(word) = flags.string(name) else {
            return Ok(None);
        };
        if word.value.is_empty() {
            return Ok(None);
        }
        let nanos = parse_duration(&word.value).map_err(|why| {
            self.error(word.pos, format!("--{name}: {why}"))
                .with_hint("write a duration such as 30s, 1m30s or 500ms")
        })?;
        if nanos == 0 {
            return Ok(None);
        }
        if nanos < 1_000_000 {
            return Err(self
                .error(
                    word.pos,
                    format!("Interval {name:?} cannot be less than 1ms"),
                )
                .with_hint("write a duration of at least 1ms, or 0 for the default"));
        }
        Ok(Some(Duration::from_nanos(nanos as u64)))
    }

    fn volume(&mut self) -> Result<Command, Diagnostic> {
        self.at_least_one("VOLUME")?;
        self.no_flags("VOLUME")?;
        for word in &self.node.args {
            if word.value.trim().is_empty() {
                return Err(self.error(word.pos, "VOLUME specified can not be an empty string"));
            }
        }
        Ok(Command::Volume(std::mem::take(&mut self.node.args)))
    }

    fn shell(&mut self) -> Result<Command, Diagnostic> {
        self.no_flags("SHELL")?;
        if self.node.args.is_empty() {
            return Err(self.at_keyword("SHELL requires at least one argument"));
        }
        if !self.node.json {
            return Err(self
                .at_keyword("SHELL requires the arguments to be in JSON form")
                .with_hint("write SHELL [\"/bin/bash\", \"-c\"]"));
        }
        Ok(Command::Shell(std::mem::take(&mut self.node.args)))
    }
}

/// Parses an ONBUILD trigger found in a base image's config (its `OnBuild` entries) as
/// BuildKit does: the text must be one instruction, which may not be FROM (nor ONBUILD or
/// MAINTAINER, which no trigger can be written as).
pub fn parse_trigger(text: &str) -> Result<Instruction, Diagnostic> {
    let source = Source::new("ONBUILD trigger of the base image", text);
    let dockerfile = distill_frontend::parse(&source)?;
    let mut nodes = dockerfile.nodes.into_iter();
    let (Some(node), None) = (nodes.next(), nodes.next()) else {
        return Err(Diagnostic::file(
            &source,
            "onbuild trigger should be a single expression",
        ));
    };
    let pos = node.pos;
    let instruction = parse_instruction(node, &source)?;
    if matches!(
        instruction.command,
        Command::From(_) | Command::Onbuild(_) | Command::Maintainer(_)
    ) {
        return Err(Diagnostic::at(
            &source,
            pos,
            format!(
                "{} isn't allowed as an ONBUILD trigger",
                instruction.keyword()
            ),
        ));
    }
    Ok(instruction)
}

/// A word that opens a here-document (`<<EOF`, `<<-EOF`, `2<<"EOF"`), as BuildKit's
/// `^(\d*)<<(-?)\s*([^<]*)$`.
fn heredoc_marker(word: &str) -> bool {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    match rest.strip_prefix("<<") {
        Some(name) => !name.contains('<'),
        None => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a node the way the parser would, from a single line: the keyword, then words
    /// starting with `--` as flags, then the rest as arguments (split on spaces). Positions
    /// are computed from the line.
    pub(crate) fn node(line: &str) -> Node {
        node_at(line, 1)
    }

    pub(crate) fn node_at(line: &str, line_number: u32) -> Node {
        let mut words = Vec::new();
        let mut column = 1u32;
        for piece in line.split(' ') {
            if !piece.is_empty() {
                words.push(Word {
                    value: piece.to_string(),
                    pos: Pos::new(line_number, column),
                });
            }
            column += piece.chars().count() as u32 + 1;
        }
        let keyword = words.remove(0);
        let mut flags = Vec::new();
        while words.first().is_some_and(|w| w.value.starts_with("--")) {
            flags.push(words.remove(0));
        }
        Node {
            keyword: keyword.value.to_lowercase(),
            pos: keyword.pos,
            flags,
            args: words,
            json: false,
            heredocs: Vec::new(),
            onbuild: None,
            original: line.to_string(),
            start_line: line_number,
            end_line: line_number,
        }
    }

    fn parse(line: &str) -> Result<Instruction, Diagnostic> {
        let source = Source::new("Dockerfile", format!("{line}\n"));
        parse_instruction(node(line), &source)
    }

    fn error(line: &str) -> (String, u32, Option<String>) {
        let err = parse(line).unwrap_err();
        (err.message, err.pos.unwrap().column, err.hint)
    }

    #[test]
    fn unknown_instruction_suggests_the_nearest() {
        let (message, column, hint) = error("FORM alpine");
        assert_eq!(message, "unknown instruction: FORM");
        assert_eq!(column, 1);
        assert_eq!(hint.as_deref(), Some("did you mean FROM?"));
        let (_, _, hint) = error("XYZZY alpine");
        assert!(hint.unwrap().starts_with("Dockerfile instructions are ADD"));
    }

    #[test]
    fn from_with_name_and_platform() {
        let instruction = parse("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build").unwrap();
        let Command::From(from) = instruction.command else {
            panic!("not a FROM")
        };
        assert_eq!(from.image.value, "golang:1.22");
        let name = from.name.unwrap();
        assert_eq!(name.value, "build");
        assert_eq!(name.pos.column, 47);
        assert_eq!(from.platform.unwrap().value, "$BUILDPLATFORM");
    }

    #[test]
    fn from_argument_count_and_names() {
        let (message, column, _) = error("FROM a b");
        assert_eq!(message, "FROM requires either one or three arguments");
        assert_eq!(column, 8);
        let (message, column, _) = error("FROM a b c");
        assert_eq!(message, "FROM requires either one or three arguments");
        assert_eq!(column, 8);
        let (message, column, _) = error("FROM a AS b c");
        assert_eq!(message, "FROM requires either one or three arguments");
        assert_eq!(column, 13);
        let (message, column, _) = error("FROM a AS 1st");
        assert_eq!(
            message,
            "invalid name for build stage: \"1st\", name can't start with a number or contain symbols"
        );
        assert_eq!(column, 11);
        assert!(parse("FROM a as my-stage_1.0").is_ok());
        let (message, _, _) = error("FROM a AS b@d");
        assert!(message.starts_with("invalid name for build stage"));
    }

    #[test]
    fn flags_on_the_wrong_instruction() {
        let (message, column, hint) = error("ADD --from=build a b");
        assert_eq!(message, "unknown flag --from for ADD");
        assert_eq!(column, 5);
        assert_eq!(
            hint.as_deref(),
            Some("--from is a flag of COPY, not of ADD")
        );
        let (message, _, hint) = error("WORKDIR --platform=x /app");
        assert_eq!(message, "unknown flag --platform for WORKDIR");
        assert_eq!(
            hint.as_deref(),
            Some("--platform is a flag of FROM, not of WORKDIR")
        );
        let (message, _, _) = error("COPY --link --link a b");
        assert_eq!(message, "duplicate flag specified: --link");
    }

    #[test]
    fn copy_and_add_flags() {
        let Command::Copy(copy) = parse(
            "COPY --from=build --chown=1:1 --chmod=755 --link --parents --exclude=*.md --exclude=.git a b /dst/",
        )
        .unwrap()
        .command
        else {
            panic!("not a COPY")
        };
        assert_eq!(copy.from.unwrap().value, "build");
        assert_eq!(copy.chown.unwrap().value, "1:1");
        assert_eq!(copy.chmod.unwrap().value, "755");
        assert!(copy.link && copy.parents);
        assert_eq!(copy.exclude.len(), 2);
        assert_eq!(copy.files.sources.len(), 2);
        assert_eq!(copy.files.dest.value, "/dst/");
        let Command::Add(add) = parse(
            "ADD --keep-git-dir --checksum=sha256:abc --unpack=false --link=false https://x/a.tgz /",
        )
        .unwrap()
        .command
        else {
            panic!("not an ADD")
        };
        assert!(add.keep_git_dir && !add.link);
        assert_eq!(add.unpack, Some(false));
        assert_eq!(add.checksum.unwrap().value, "sha256:abc");
        let (message, column, _) = error("COPY onlyone");
        assert_eq!(
            message,
            "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
        );
        assert_eq!(column, 1);
    }

    #[test]
    fn copy_heredoc_sources() {
        let mut node = node("COPY <<EOF /etc/motd");
        node.heredocs.push(Heredoc {
            name: "EOF".into(),
            content: "hello\n".into(),
            expand: true,
            chomp: false,
            file_descriptor: None,
            pos: Pos::new(1, 6),
        });
        let source = Source::new("Dockerfile", "COPY <<EOF /etc/motd\nhello\nEOF\n");
        let Command::Copy(copy) = parse_instruction(node, &source).unwrap().command else {
            panic!("not a COPY")
        };
        assert!(copy.files.sources.is_empty());
        assert_eq!(copy.files.heredocs[0].content, "hello\n");
        let (message, column, _) = error("COPY a <<EOF");
        assert_eq!(message, "COPY cannot accept a heredoc as a destination");
        assert_eq!(column, 8);
    }

    #[test]
    fn argument_counts() {
        assert_eq!(error("WORKDIR").0, "WORKDIR requires exactly one argument");
        let (message, column, _) = error("USER a b");
        assert_eq!(message, "USER requires exactly one argument");
        assert_eq!(column, 8);
        assert_eq!(error("EXPOSE").0, "EXPOSE requires at least one argument");
        assert_eq!(error("VOLUME").0, "VOLUME requires at least one argument");
        assert_eq!(error("ARG").0, "ARG requires at least one argument");
        assert_eq!(
            error("STOPSIGNAL").0,
            "STOPSIGNAL requires exactly one argument"
        );
        assert_eq!(
            error("MAINTAINER").0,
            "MAINTAINER requires exactly one argument"
        );
        assert_eq!(error("ENV").0, "ENV requires at least one argument");
    }

    #[test]
    fn arg_names_and_defaults() {
        let Command::Arg(decls) = parse("ARG A B=2 C=").unwrap().command else {
            panic!("not an ARG")
        };
        assert_eq!(decls.len(), 3);
        assert_eq!(decls[0].default, None);
        let b = decls[1].default.as_ref().unwrap();
        assert_eq!((b.value.as_str(), b.pos.column), ("2", 9));
        assert_eq!(decls[2].default.as_ref().unwrap().value, "");
        let (message, column, _) = error("ARG A =x");
        assert_eq!(message, "ARG names can not be blank");
        assert_eq!(column, 7);
    }

    #[test]
    fn shell_requires_json() {
        let (message, _, hint) = error("SHELL /bin/bash -c");
        assert_eq!(message, "SHELL requires the arguments to be in JSON form");
        assert!(hint.unwrap().contains("[\"/bin/bash\", \"-c\"]"));
        let mut json = node("SHELL x");
        json.json = true;
        let source = Source::new("Dockerfile", "SHELL [\"x\"]\n");
        assert!(parse_instruction(json, &source).is_ok());
    }

    #[test]
    fn onbuild_triggers() {
        let source = Source::new("Dockerfile", "ONBUILD ONBUILD RUN x\n");
        let mut outer = node("ONBUILD");
        outer.onbuild = Some(Box::new(node("ONBUILD RUN x")));
        let err = parse_instruction(outer, &source).unwrap_err();
        assert_eq!(
            err.message,
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
        for keyword in ["FROM alpine", "MAINTAINER me"] {
            let mut outer = node("ONBUILD");
            outer.onbuild = Some(Box::new(node(keyword)));
            let err = parse_instruction(outer, &source).unwrap_err();
            assert!(err.message.ends_with("isn't allowed as an ONBUILD trigger"));
        }
        let mut outer = node("ONBUILD");
        outer.onbuild = Some(Box::new(node("COPY --from=x a b")));
        let Command::Onbuild(trigger) = parse_instruction(outer, &source).unwrap().command else {
            panic!("not an ONBUILD")
        };
        assert_eq!(trigger.keyword(), "COPY");
        let err = parse_instruction(node("ONBUILD"), &source).unwrap_err();
        assert_eq!(err.message, "ONBUILD requires at least one argument");
    }

    #[test]
    fn healthchecks() {
        let Command::Healthcheck(Healthcheck::Check(check)) =
            parse("HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 --start-interval=0 CMD curl -f x")
                .unwrap()
                .command
        else {
            panic!("not a check")
        };
        assert_eq!(check.interval, Some(Duration::from_secs(30)));
        assert_eq!(check.timeout, Some(Duration::from_secs(90)));
        assert_eq!(check.start_interval, None);
        assert_eq!(check.retries, Some(3));
        assert_eq!(check.command.args.len(), 3);
        assert!(matches!(
            parse("HEALTHCHECK none").unwrap().command,
            Command::Healthcheck(Healthcheck::None)
        ));
        assert_eq!(
            error("HEALTHCHECK NONE x").0,
            "HEALTHCHECK NONE takes no arguments"
        );
        assert_eq!(
            error("HEALTHCHECK CMD").0,
            "Missing command after HEALTHCHECK CMD"
        );
        assert_eq!(
            error("HEALTHCHECK RUN x").0,
            "Unknown type \"RUN\" in HEALTHCHECK (try CMD)"
        );
        let (message, column, _) = error("HEALTHCHECK --interval=10 CMD x");
        assert_eq!(message, "--interval: missing unit in duration \"10\"");
        assert_eq!(column, 24);
        assert_eq!(
            error("HEALTHCHECK --timeout=10us CMD x").0,
            "Interval \"timeout\" cannot be less than 1ms"
        );
        assert_eq!(
            error("HEALTHCHECK --retries=-1 CMD x").0,
            "--retries must be at least 1 (not -1)"
        );
        assert_eq!(
            error("HEALTHCHECK --retries=0 CMD x").0,
            "--retries must be at least 1 (not 0)"
        );
        assert_eq!(
            error("HEALTHCHECK --retries=many CMD x").0,
            "--retries expects a whole number, not \"many\""
        );
        assert_eq!(
            error("HEALTHCHECK").0,
            "HEALTHCHECK requires at least one argument"
        );
    }

    #[test]
    fn run_flags() {
        let Command::Run(run) = parse(
            "RUN --mount=type=cache,target=/c --mount=from=build,target=/b --network=none --security=insecure make",
        )
        .unwrap()
        .command
        else {
            panic!("not a RUN")
        };
        assert_eq!(run.mounts.len(), 2);
        assert_eq!(run.mounts[1].from.as_ref().unwrap().value, "build");
        assert_eq!(run.network.unwrap().0, Network::None);
        assert_eq!(run.security.unwrap().0, Security::Insecure);
        let (message, column, _) = error("RUN --network=bridge x");
        assert_eq!(message, "unsupported network mode \"bridge\"");
        assert_eq!(column, 15);
        let (message, _, _) = error("RUN --mount=from=$X,target=/x true");
        assert_eq!(
            message,
            "'from' doesn't support variable expansion, define alias stage instead"
        );
    }

    #[test]
    fn env_and_label_pairs() {
        let mut env = node("ENV");
        let source = Source::new("Dockerfile", "ENV a=1 b=\"2\"\n");
        for (value, column) in [
            ("a", 5),
            ("1", 7),
            ("=", 6),
            ("b", 9),
            ("\"2\"", 11),
            ("=", 10),
        ] {
            env.args.push(Word {
                value: value.into(),
                pos: Pos::new(1, column),
            });
        }
        let Command::Env(pairs) = parse_instruction(env.clone(), &source).unwrap().command else {
            panic!("not an ENV")
        };
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1].value.value, "\"2\"");
        assert!(!pairs[0].legacy);
        env.args.pop();
        assert_eq!(
            parse_instruction(env.clone(), &source).unwrap_err().message,
            "Bad input to ENV, too many arguments"
        );
    }

    #[test]
    fn volume_rejects_empty_paths() {
        let mut volume = node("VOLUME x");
        volume.args[0].value = " ".into();
        let source = Source::new("Dockerfile", "VOLUME [\" \"]\n");
        assert_eq!(
            parse_instruction(volume, &source).unwrap_err().message,
            "VOLUME specified can not be an empty string"
        );
    }

    #[test]
    fn heredoc_markers() {
        assert!(heredoc_marker("<<EOF"));
        assert!(heredoc_marker("<<-EOF"));
        assert!(heredoc_marker("3<<\"EOF\""));
        assert!(!heredoc_marker("a<<EOF"));
        assert!(!heredoc_marker("<<a<b"));
    }
}
