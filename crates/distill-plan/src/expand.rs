//! Variable expansion of instructions: exactly the words BuildKit expands, against the
//! stage's environment at that point, never RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK text.
//!
//! | instruction | expanded |
//! |---|---|
//! | ENV, LABEL | keys and values |
//! | WORKDIR, USER, STOPSIGNAL, each VOLUME path | the argument |
//! | EXPOSE | each word, then split again into words (then checked as port specs) |
//! | COPY, ADD | sources, destination, `--chown`, `--chmod` (then checked); ADD's `--checksum` |
//! | RUN | the values of each `--mount` (then the mount is interpreted) |
//! | ARG | the default, only when no build arg is given ([`crate::Plan::step`]) |
//! | FROM | image and `--platform`, with global args only ([`crate::plan()`]) |
//!
//! COPY and ADD heredoc bodies whose delimiter is unquoted are expanded too, raw (quotes are
//! plain characters, `\` escapes). `COPY --from`, `--exclude`, `--network`, `--security` and
//! RUN heredocs are never expanded. One instruction sees the environment from before it: in `ENV a=1 b=$a`,
//! `$a` is the previous value of `a` ([`Vars`] is only changed after the whole instruction
//! is expanded).

use distill_frontend::{Diagnostic, Source, Word};
use distill_shell::{Env, Lexer};

use crate::chmod::parse_chmod;
use crate::instruction::{Command, Instruction, KeyValue, SourcesAndDest};
use crate::mount::parse_mount;
use crate::ports::exposed_ports;

/// Variables in scope while a stage's instructions run, in the order they were set; setting
/// a name again replaces its value and moves it to the end (as BuildKit's state env does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars {
    entries: Vec<(String, String)>,
}

impl Vars {
    pub fn new() -> Vars {
        Vars::default()
    }

    /// Variables from an image config's `Env` (`KEY=value` strings; a string without `=`
    /// is a name with an empty value).
    pub fn from_env_list<S: AsRef<str>>(list: &[S]) -> Vars {
        let mut vars = Vars::new();
        for entry in list {
            let entry = entry.as_ref();
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            vars.set(key, value);
        }
        vars
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.entries.retain(|(key, _)| key != name);
        self.entries.push((name.to_string(), value.to_string()));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// As an image config's `Env`: `KEY=value` strings in order.
    pub fn to_env_list(&self) -> Vec<String> {
        self.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

impl Env for Vars {
    fn get(&self, name: &str) -> Option<&str> {
        Vars::get(self, name)
    }
}

/// Expands one word as a single value; an expansion error is reported at the word.
pub fn expand_word(
    lexer: &Lexer,
    source: &Source,
    word: &Word,
    env: &dyn Env,
) -> Result<Word, Diagnostic> {
    let value = lexer
        .process_word(&word.value, env)
        .map_err(|error| Diagnostic::at(source, word.pos, error.to_string()))?;
    Ok(Word {
        value,
        pos: word.pos,
    })
}

/// Expands one word and splits the result into words, each keeping the original position.
pub fn expand_words(
    lexer: &Lexer,
    source: &Source,
    word: &Word,
    env: &dyn Env,
) -> Result<Vec<Word>, Diagnostic> {
    let values = lexer
        .process_words(&word.value, env)
        .map_err(|error| Diagnostic::at(source, word.pos, error.to_string()))?;
    Ok(values
        .into_iter()
        .map(|value| Word {
            value,
            pos: word.pos,
        })
        .collect())
}

/// The instruction with the words BuildKit expands replaced by their values in `env` (see
/// the module documentation for which). ARG and FROM are returned unchanged: their values
/// depend on build args and global args, which [`crate::Plan`] knows.
pub fn expand_instruction(
    instruction: &Instruction,
    lexer: &Lexer,
    source: &Source,
    env: &dyn Env,
) -> Result<Instruction, Diagnostic> {
    let word = |w: &Word| expand_word(lexer, source, w, env);
    let optional = |w: &Option<Word>| w.as_ref().map(word).transpose();
    let pairs = |list: &[KeyValue]| -> Result<Vec<KeyValue>, Diagnostic> {
        list.iter()
            .map(|pair| {
                Ok(KeyValue {
                    key: word(&pair.key)?,
                    value: word(&pair.value)?,
                    legacy: pair.legacy,
                })
            })
            .collect()
    };
    let files = |files: &SourcesAndDest| -> Result<SourcesAndDest, Diagnostic> {
        // Heredoc bodies are expanded raw: `\` escapes whatever the escape directive says,
        // and quotes are ordinary characters (BuildKit's `ExpandRaw`).
        let raw = Lexer::new('\\').skip_process_quotes(true);
        let mut heredocs = files.heredocs.clone();
        for heredoc in heredocs.iter_mut().filter(|h| h.expand) {
            heredoc.content = raw
                .process_word(&heredoc.content, env)
                .map_err(|error| Diagnostic::at(source, heredoc.pos, error.to_string()))?;
        }
        Ok(SourcesAndDest {
            sources: files.sources.iter().map(word).collect::<Result<_, _>>()?,
            heredocs,
            dest: word(&files.dest)?,
        })
    };
    let command = match &instruction.command {
        Command::Env(list) => Command::Env(pairs(list)?),
        Command::Label(list) => Command::Label(pairs(list)?),
        Command::Workdir(path) => Command::Workdir(word(path)?),
        Command::User(user) => Command::User(word(user)?),
        Command::StopSignal(signal) => {
            let signal = word(signal)?;
            check_signal(source, &signal)?;
            Command::StopSignal(signal)
        }
        Command::Volume(paths) => {
            let mut expanded = Vec::with_capacity(paths.len());
            for path in paths {
                let path = word(path)?;
                if path.value.is_empty() {
                    return Err(Diagnostic::at(
                        source,
                        path.pos,
                        "VOLUME specified can not be an empty string",
                    ));
                }
                expanded.push(path);
            }
            Command::Volume(expanded)
        }
        Command::Expose(ports) => {
            let mut expanded = Vec::with_capacity(ports.len());
            for port in ports {
                expanded.extend(expand_words(lexer, source, port, env)?);
            }
            exposed_ports(source, &expanded)?;
            Command::Expose(expanded)
        }
        Command::Copy(copy) => {
            let mut copy = copy.clone();
            copy.files = files(&copy.files)?;
            copy.chown = optional(&copy.chown)?;
            copy.chmod = optional(&copy.chmod)?;
            check_chmod(source, &copy.chmod)?;
            for path in &copy.files.sources {
                check_copy_source(source, path)?;
            }
            Command::Copy(copy)
        }
        Command::Add(add) => {
            let mut add = add.clone();
            add.files = files(&add.files)?;
            add.chown = optional(&add.chown)?;
            add.chmod = optional(&add.chmod)?;
            add.checksum = optional(&add.checksum)?;
            check_chmod(source, &add.chmod)?;
            Command::Add(add)
        }
        Command::Run(run) => {
            let mut run = run.clone();
            for mount in &mut run.mounts {
                let mut expand_value = |value: &Word| word(value).map(|w| w.value);
                mount.mount = Some(parse_mount(source, &mount.spec, &mut expand_value)?);
            }
            Command::Run(run)
        }
        other => other.clone(),
    };
    Ok(Instruction {
        command,
        ..instruction.clone()
    })
}

fn check_chmod(source: &Source, chmod: &Option<Word>) -> Result<(), Diagnostic> {
    match chmod {
        Some(word) => parse_chmod(source, word).map(|_| ()),
        None => Ok(()),
    }
}

/// COPY reads files only: URLs and git repositories are ADD's.
fn check_copy_source(source: &Source, path: &Word) -> Result<(), Diagnostic> {
    let text = path.value.as_str();
    let http = text.starts_with("http://") || text.starts_with("https://");
    let git_url = text.split('#').next().unwrap_or(text).ends_with(".git");
    let git = text.starts_with("git@")
        || text.starts_with("git://")
        || text.starts_with("ssh://")
        || (http && git_url);
    let message = if git {
        "source can't be a git ref for COPY"
    } else if http {
        "source can't be a URL for COPY"
    } else {
        return Ok(());
    };
    Err(Diagnostic::at(source, path.pos, message)
        .with_hint("use ADD to fetch from a URL or a git repository"))
}

/// Checks a STOPSIGNAL value as moby's `signal.ParseSignal`: a nonzero number, or a signal
/// name with or without `SIG`, in any case.
fn check_signal(source: &Source, signal: &Word) -> Result<(), Diagnostic> {
    const NAMES: [&str; 35] = [
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
        "XFSZ",
    ];
    let text = signal.value.as_str();
    let valid = match text.parse::<i64>() {
        Ok(number) => number != 0,
        Err(_) => {
            let upper = text.to_uppercase();
            let name = upper.strip_prefix("SIG").unwrap_or(&upper);
            NAMES.contains(&name) || is_realtime_signal(name)
        }
    };
    if valid {
        Ok(())
    } else {
        Err(
            Diagnostic::at(source, signal.pos, format!("invalid signal: {text}"))
                .with_hint("write a signal name such as SIGTERM or SIGQUIT, or its number"),
        )
    }
}

/// `RTMIN`, `RTMIN+1` … `RTMIN+15`, `RTMAX-14` … `RTMAX`.
fn is_realtime_signal(name: &str) -> bool {
    let offset = |rest: &str, sign: char| {
        rest.is_empty()
            || rest
                .strip_prefix(sign)
                .and_then(|n| n.parse::<u8>().ok())
                .is_some_and(|n| (1..=15).contains(&n) && !(sign == '-' && n > 14))
    };
    match (name.strip_prefix("RTMIN"), name.strip_prefix("RTMAX")) {
        (Some(rest), _) => offset(rest, '+'),
        (_, Some(rest)) => offset(rest, '-'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_replace_and_move_to_the_end() {
        let mut vars = Vars::from_env_list(&["PATH=/bin", "A=1", "EMPTY"]);
        assert_eq!(vars.get("EMPTY"), Some(""));
        vars.set("PATH", "/usr/bin");
        assert_eq!(vars.to_env_list(), ["A=1", "EMPTY=", "PATH=/usr/bin"]);
        assert_eq!(vars.get("path"), None);
    }

    #[test]
    fn signals() {
        let source = Source::new("Dockerfile", "STOPSIGNAL x\n");
        let word = |v: &str| Word {
            value: v.into(),
            pos: distill_frontend::Pos::new(1, 12),
        };
        for good in ["SIGTERM", "term", "9", "SIGRTMIN+3", "RTMAX-14", "RTMAX"] {
            assert!(check_signal(&source, &word(good)).is_ok(), "{good}");
        }
        for bad in ["0", "SIGFOO", "RTMIN+16", "RTMAX-15", ""] {
            let err = check_signal(&source, &word(bad)).unwrap_err();
            assert_eq!(err.message, format!("invalid signal: {bad}"));
        }
    }
}
