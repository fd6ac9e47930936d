//! Instruction flags (`--name=value`, `--name`), checked as BuildKit's `BFlags` checks them:
//! each instruction declares the flags it takes and their kind, and anything else is an error
//! at the flag's position.
//!
//! Kinds: a boolean flag is `--link`, `--link=true` or `--link=false` (any case); a string flag
//! needs `=value` and may be given once; a list flag (`--mount`, `--exclude`) needs `=value` and
//! may be repeated. A bare `--` ends the flags: what follows it is ignored, as BuildKit does.
//! Values are kept raw (never expanded here) with the position where the value starts.

use distill_frontend::{Diagnostic, Pos, Source, Word};

use crate::suggest;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagKind {
    Bool,
    String,
    List,
}

/// One flag an instruction accepts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FlagSpec {
    pub name: &'static str,
    pub kind: FlagKind,
}

pub(crate) const fn flag(name: &'static str, kind: FlagKind) -> FlagSpec {
    FlagSpec { name, kind }
}

/// Every instruction that takes flags, with its flags: used to say where a misplaced flag
/// belongs (`--from` on ADD → "--from is a flag of COPY").
pub(crate) const FLAG_TABLE: &[(&str, &[FlagSpec])] = &[
    ("FROM", FROM_FLAGS),
    ("RUN", RUN_FLAGS),
    ("COPY", COPY_FLAGS),
    ("ADD", ADD_FLAGS),
    ("HEALTHCHECK", HEALTHCHECK_FLAGS),
];

pub(crate) const FROM_FLAGS: &[FlagSpec] = &[flag("platform", FlagKind::String)];

pub(crate) const RUN_FLAGS: &[FlagSpec] = &[
    flag("mount", FlagKind::List),
    flag("network", FlagKind::String),
    flag("security", FlagKind::String),
    flag("device", FlagKind::List),
];

pub(crate) const COPY_FLAGS: &[FlagSpec] = &[
    flag("from", FlagKind::String),
    flag("chown", FlagKind::String),
    flag("chmod", FlagKind::String),
    flag("link", FlagKind::Bool),
    flag("parents", FlagKind::Bool),
    flag("exclude", FlagKind::List),
];

pub(crate) const ADD_FLAGS: &[FlagSpec] = &[
    flag("chown", FlagKind::String),
    flag("chmod", FlagKind::String),
    flag("link", FlagKind::Bool),
    flag("keep-git-dir", FlagKind::Bool),
    flag("checksum", FlagKind::String),
    flag("unpack", FlagKind::Bool),
    flag("exclude", FlagKind::List),
];

pub(crate) const HEALTHCHECK_FLAGS: &[FlagSpec] = &[
    flag("interval", FlagKind::String),
    flag("timeout", FlagKind::String),
    flag("start-period", FlagKind::String),
    flag("start-interval", FlagKind::String),
    flag("retries", FlagKind::String),
];

/// A flag as given on an instruction.
#[derive(Clone, Debug)]
struct GivenFlag {
    name: &'static str,
    /// The text after `=`, with its position; `None` for a bare `--name`.
    value: Option<Word>,
}

/// The checked flags of one instruction.
#[derive(Clone, Debug, Default)]
pub(crate) struct Flags {
    given: Vec<GivenFlag>,
}

impl Flags {
    /// The value of a string flag, if given.
    pub fn string(&self, name: &str) -> Option<Word> {
        self.given
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value.clone())
    }

    /// The value of a boolean flag, if given (`--x` is true, `--x=false` false).
    pub fn boolean(&self, name: &str) -> Option<bool> {
        self.given.iter().find(|f| f.name == name).map(|f| {
            f.value
                .as_ref()
                .is_none_or(|v| v.value.eq_ignore_ascii_case("true"))
        })
    }

    /// Every value of a list flag, in order.
    pub fn list(&self, name: &str) -> Vec<Word> {
        self.given
            .iter()
            .filter(|f| f.name == name)
            .filter_map(|f| f.value.clone())
            .collect()
    }
}

/// Checks the flags written on `instruction` (upper case, for messages) against `specs`.
pub(crate) fn parse(
    source: &Source,
    instruction: &str,
    written: &[Word],
    specs: &[FlagSpec],
) -> Result<Flags, Diagnostic> {
    let mut flags = Flags::default();
    for word in written {
        let Some(body) = word.value.strip_prefix("--") else {
            return Err(Diagnostic::at(
                source,
                word.pos,
                format!("flag {:?} must start with --", word.value),
            ));
        };
        if body.is_empty() {
            // `--` ends the flags, as in BuildKit.
            break;
        }
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => {
                let column = word.pos.column + 2 + name.chars().count() as u32 + 1;
                let value = Word {
                    value: value.to_string(),
                    pos: Pos::new(word.pos.line, column),
                };
                (name, Some(value))
            }
            None => (body, None),
        };
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            return Err(unknown_flag(source, instruction, word.pos, name, specs));
        };
        if spec.kind != FlagKind::List && flags.given.iter().any(|f| f.name == spec.name) {
            return Err(Diagnostic::at(
                source,
                word.pos,
                format!("duplicate flag specified: --{name}"),
            )
            .with_hint(format!("--{name} may be given only once on {instruction}")));
        }
        match (spec.kind, &value) {
            (FlagKind::Bool, Some(v)) if v.value.is_empty() => {
                return Err(missing_value(source, word.pos, name, "true or false"));
            }
            (FlagKind::Bool, Some(v))
                if !v.value.eq_ignore_ascii_case("true")
                    && !v.value.eq_ignore_ascii_case("false") =>
            {
                return Err(Diagnostic::at(
                    source,
                    v.pos,
                    format!(
                        "expecting boolean value for flag --{name}, not: {}",
                        v.value
                    ),
                )
                .with_hint(format!("write --{name}, --{name}=true or --{name}=false")));
            }
            (FlagKind::String | FlagKind::List, None) => {
                return Err(missing_value(source, word.pos, name, "VALUE"));
            }
            _ => {}
        }
        flags.given.push(GivenFlag {
            name: spec.name,
            value,
        });
    }
    Ok(flags)
}

fn missing_value(source: &Source, pos: Pos, name: &str, expected: &str) -> Diagnostic {
    Diagnostic::at(source, pos, format!("missing a value on flag: --{name}"))
        .with_hint(format!("write --{name}={expected}"))
}

fn unknown_flag(
    source: &Source,
    instruction: &str,
    pos: Pos,
    name: &str,
    specs: &[FlagSpec],
) -> Diagnostic {
    let message = format!("unknown flag --{name} for {instruction}");
    let diagnostic = Diagnostic::at(source, pos, message);
    let owners: Vec<&str> = FLAG_TABLE
        .iter()
        .filter(|(_, flags)| flags.iter().any(|f| f.name == name))
        .map(|(owner, _)| *owner)
        .collect();
    if !owners.is_empty() {
        return diagnostic.with_hint(format!(
            "--{name} is a flag of {}, not of {instruction}",
            owners.join(" and ")
        ));
    }
    if specs.is_empty() {
        return diagnostic.with_hint(format!("{instruction} takes no flags"));
    }
    let accepted: Vec<String> = specs.iter().map(|s| format!("--{}", s.name)).collect();
    let mut hint = format!("{instruction} accepts {}", accepted.join(", "));
    if let Some(near) = suggest::nearest(name, specs.iter().map(|s| s.name)) {
        hint = format!("did you mean --{near}? {hint}");
    }
    diagnostic.with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(value: &str, column: u32) -> Word {
        Word {
            value: value.to_string(),
            pos: Pos::new(1, column),
        }
    }

    fn source() -> Source {
        Source::new("Dockerfile", "COPY --from=a --link x y\n")
    }

    #[test]
    fn reads_values_with_positions() {
        let flags = parse(
            &source(),
            "COPY",
            &[word("--from=a", 6), word("--link", 15)],
            COPY_FLAGS,
        )
        .unwrap();
        let from = flags.string("from").unwrap();
        assert_eq!(from.value, "a");
        assert_eq!(from.pos, Pos::new(1, 13));
        assert_eq!(flags.boolean("link"), Some(true));
        assert_eq!(flags.boolean("parents"), None);
    }

    #[test]
    fn booleans_take_true_or_false_in_any_case() {
        let flags = parse(&source(), "COPY", &[word("--link=FALSE", 6)], COPY_FLAGS).unwrap();
        assert_eq!(flags.boolean("link"), Some(false));
        let err = parse(&source(), "COPY", &[word("--link=yes", 6)], COPY_FLAGS).unwrap_err();
        assert_eq!(
            err.message,
            "expecting boolean value for flag --link, not: yes"
        );
        assert_eq!(err.pos, Some(Pos::new(1, 13)));
        let err = parse(&source(), "COPY", &[word("--link=", 6)], COPY_FLAGS).unwrap_err();
        assert_eq!(err.message, "missing a value on flag: --link");
    }

    #[test]
    fn strings_need_a_value_and_come_once() {
        let err = parse(&source(), "COPY", &[word("--from", 6)], COPY_FLAGS).unwrap_err();
        assert_eq!(err.message, "missing a value on flag: --from");
        let err = parse(
            &source(),
            "COPY",
            &[word("--from=a", 6), word("--from=b", 15)],
            COPY_FLAGS,
        )
        .unwrap_err();
        assert_eq!(err.message, "duplicate flag specified: --from");
        assert_eq!(err.pos, Some(Pos::new(1, 15)));
    }

    #[test]
    fn lists_repeat() {
        let flags = parse(
            &source(),
            "COPY",
            &[word("--exclude=a", 6), word("--exclude=b", 18)],
            COPY_FLAGS,
        )
        .unwrap();
        let values: Vec<String> = flags.list("exclude").into_iter().map(|w| w.value).collect();
        assert_eq!(values, ["a", "b"]);
    }

    #[test]
    fn unknown_and_misplaced_flags() {
        let err = parse(&source(), "COPY", &[word("--form=a", 6)], COPY_FLAGS).unwrap_err();
        assert_eq!(err.message, "unknown flag --form for COPY");
        assert!(err.hint.unwrap().starts_with("did you mean --from?"));
        let err = parse(&source(), "ADD", &[word("--from=a", 6)], ADD_FLAGS).unwrap_err();
        assert_eq!(err.message, "unknown flag --from for ADD");
        assert_eq!(err.hint.unwrap(), "--from is a flag of COPY, not of ADD");
        let err = parse(&source(), "USER", &[word("--x", 6)], &[]).unwrap_err();
        assert_eq!(err.hint.unwrap(), "USER takes no flags");
    }

    #[test]
    fn double_dash_ends_the_flags() {
        let flags = parse(
            &source(),
            "COPY",
            &[word("--", 6), word("--bogus", 9)],
            COPY_FLAGS,
        )
        .unwrap();
        assert_eq!(flags.string("from"), None);
    }
}
