//! `RUN --mount=...` specifications: a CSV list of `key=value` fields and bare options, read
//! the way BuildKit reads them (`instructions/commands_runmount.go`); and `RUN --device=...`,
//! the same CSV syntax, read once and never expanded.
//!
//! BuildKit reads a mount twice. When the instruction is parsed, only the CSV syntax is checked
//! and `from=` is taken as written (it may not hold a variable: stages are wired before any
//! variable is known). When the instruction runs, every value is expanded first and the fields
//! are interpreted; [`parse_mount`] is that second reading, given the expanded values.
//! Errors point at the field they are about.

use distill_frontend::{Diagnostic, Pos, Source, Word};
use distill_golang::strconv::parse_bool;

use crate::suggest;

/// What a mount provides to the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountType {
    /// A directory of the build context or of `from` (a stage or image), read-only by default.
    Bind,
    /// A persistent cache directory, shared between builds.
    Cache,
    /// An empty in-memory file system.
    Tmpfs,
    /// A secret file (or variable) given to the build.
    Secret,
    /// An SSH agent socket forwarded to the build.
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

const MOUNT_TYPES: [&str; 5] = ["bind", "cache", "tmpfs", "secret", "ssh"];

/// How concurrent builds share a cache mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

const SHARING_MODES: [&str; 3] = ["shared", "private", "locked"];

const MOUNT_KEYS: [&str; 19] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// An interpreted `--mount`, all values expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    /// The stage or image a bind or cache mount takes its files from.
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub read_only: bool,
    /// The cache id, or the secret/ssh id.
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    /// For secret and ssh mounts: fail when the secret or agent is missing.
    pub required: bool,
    /// For tmpfs mounts: the size limit in bytes.
    pub size: Option<i64>,
    /// For secret mounts: the environment variable that receives the secret.
    pub env: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// One CSV field of a mount specification and where it starts.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub text: String,
    pub pos: Pos,
}

/// Splits `spec` into CSV fields as Go's CSV reader does: `"` quotes a field (`""` inside is a
/// quote), a bare `"` inside an unquoted field is an error.
/// `flag` names the flag for messages (`mount`, `device`).
pub(crate) fn csv_fields(
    source: &Source,
    spec: &Word,
    flag: &str,
) -> Result<Vec<Field>, Diagnostic> {
    let fail = |column_offset: usize, what: &str| {
        let hint = match flag {
            "mount" => "write --mount=type=TYPE,target=PATH[,key=value...]",
            _ => "write --device=NAME[,required]",
        };
        Diagnostic::at(
            source,
            shift(spec.pos, column_offset),
            format!("failed to parse csv {flag}s: {what}"),
        )
        .with_hint(hint)
    };
    if spec.value.is_empty() {
        return Err(fail(0, &format!("the {flag} is empty")));
    }
    let mut chars = spec.value.chars().peekable();
    let mut column = 0; // characters consumed so far
    let mut fields = Vec::new();
    loop {
        let start = column;
        let mut text = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            column += 1;
            loop {
                match chars.next() {
                    None => return Err(fail(start, "extraneous or missing \" in quoted-field")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        column += 2;
                        text.push('"');
                    }
                    Some('"') => {
                        column += 1;
                        break;
                    }
                    Some(c) => {
                        column += 1;
                        text.push(c);
                    }
                }
            }
            if chars.peek().is_some_and(|&c| c != ',') {
                return Err(fail(column, "extraneous or missing \" in quoted-field"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(fail(column, "bare \" in non-quoted field"));
                }
                text.push(c);
                chars.next();
                column += 1;
            }
        }
        fields.push(Field {
            text,
            pos: shift(spec.pos, start),
        });
        if chars.next().is_none() {
            break;
        }
        column += 1; // the comma
    }
    Ok(fields)
}

/// The `from=` of a mount as written, checked as BuildKit checks it when the instruction is
/// parsed: a `$` followed by anything is a variable, which `from` does not support.
pub(crate) fn unexpanded_from(source: &Source, spec: &Word) -> Result<Option<Word>, Diagnostic> {
    let mut from = None;
    for field in csv_fields(source, spec, "mount")? {
        let Some((key, value)) = field.text.split_once('=') else {
            continue;
        };
        if !key.eq_ignore_ascii_case("from") {
            continue;
        }
        let value_pos = shift(field.pos, key.chars().count() + 1);
        if let Some(index) = value.find('$') {
            if index != value.len() - 1 {
                return Err(Diagnostic::at(
                    source,
                    value_pos,
                    "'from' doesn't support variable expansion, define alias stage instead",
                )
                .with_hint(
                    "declare the ARG before the first FROM, write `FROM <image>:${ARG} AS alias` \
                     and use from=alias",
                ));
            }
        }
        from = Some(Word {
            value: value.to_string(),
            pos: value_pos,
        });
    }
    Ok(from)
}

/// Interprets a mount specification. `expand` is applied to every value first (pass the
/// identity for a specification that holds no variable, quote or escape).
pub fn parse_mount(
    source: &Source,
    spec: &Word,
    expand: &mut dyn FnMut(&Word) -> Result<String, Diagnostic>,
) -> Result<Mount, Diagnostic> {
    let mut mount = Mount {
        kind: MountType::Bind,
        from: None,
        source: None,
        target: None,
        read_only: false,
        id: None,
        sharing: None,
        required: false,
        size: None,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut read_only_given = false;
    for field in csv_fields(source, spec, "mount")? {
        let at = |message: String| Diagnostic::at(source, field.pos, message);
        let Some((key, raw_value)) = field.text.split_once('=') else {
            match field.text.to_lowercase().as_str() {
                "readonly" | "ro" => {
                    mount.read_only = true;
                    read_only_given = true;
                }
                "readwrite" | "rw" => {
                    mount.read_only = false;
                    read_only_given = true;
                }
                "required" if matches!(mount.kind, MountType::Secret | MountType::Ssh) => {
                    mount.required = true;
                }
                "required" => return Err(unexpected_key(source, &field, "required", mount.kind)),
                _ => {
                    return Err(at(format!(
                        "invalid field '{}' must be a key=value pair",
                        field.text
                    ))
                    .with_hint("only ro, rw and required may be written without a value"))
                }
            }
            continue;
        };
        let key = key.to_lowercase();
        let value_word = Word {
            value: raw_value.to_string(),
            pos: shift(field.pos, key.chars().count() + 1),
        };
        let value = expand(&value_word)?;
        let invalid_value = || {
            Diagnostic::at(
                source,
                value_word.pos,
                format!("invalid value for {key}: {value}"),
            )
        };
        match key.as_str() {
            "type" => {
                mount.kind = match value.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        let mut error = Diagnostic::at(
                            source,
                            value_word.pos,
                            format!("unsupported mount type {value:?}"),
                        );
                        let known = MOUNT_TYPES.join(", ");
                        error = match suggest::nearest(&value, MOUNT_TYPES) {
                            Some(near) => {
                                error.with_hint(format!("did you mean {near}? types: {known}"))
                            }
                            None => error.with_hint(format!("mount types: {known}")),
                        };
                        return Err(error);
                    }
                }
            }
            "from" => mount.from = Some(value),
            "source" | "src" => mount.source = Some(value),
            "target" | "dst" | "destination" => mount.target = Some(value),
            "readonly" | "ro" => {
                mount.read_only = parse_bool(&value).ok_or_else(invalid_value)?;
                read_only_given = true;
            }
            "readwrite" | "rw" => {
                mount.read_only = !parse_bool(&value).ok_or_else(invalid_value)?;
                read_only_given = true;
            }
            "required" if matches!(mount.kind, MountType::Secret | MountType::Ssh) => {
                mount.required = parse_bool(&value).ok_or_else(invalid_value)?;
            }
            "required" => return Err(unexpected_key(source, &field, "required", mount.kind)),
            "size" if mount.kind == MountType::Tmpfs => {
                mount.size = Some(ram_in_bytes(&value).ok_or_else(invalid_value)?);
            }
            "size" => return Err(unexpected_key(source, &field, "size", mount.kind)),
            "id" => mount.id = Some(value),
            "sharing" => {
                mount.sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => {
                        return Err(Diagnostic::at(
                            source,
                            value_word.pos,
                            format!("unsupported sharing value {value:?}"),
                        )
                        .with_hint(format!("sharing is one of {}", SHARING_MODES.join(", "))))
                    }
                })
            }
            "mode" => {
                let mode = u32::from_str_radix(&value, 8).map_err(|_| {
                    Diagnostic::at(
                        source,
                        value_word.pos,
                        format!("invalid value {value} for mode"),
                    )
                    .with_hint("mode is an octal number such as 0644")
                })?;
                mount.mode = Some(mode);
            }
            "uid" | "gid" => {
                let id = value.parse::<u32>().map_err(|_| {
                    Diagnostic::at(
                        source,
                        value_word.pos,
                        format!("invalid value {value} for {key}"),
                    )
                    .with_hint(format!("{key} is a number"))
                })?;
                if key == "uid" {
                    mount.uid = Some(id);
                } else {
                    mount.gid = Some(id);
                }
            }
            "env" => mount.env = Some(value),
            _ => {
                let mut error = at(format!("unexpected key '{key}' in '{}'", field.text));
                if let Some(near) = suggest::nearest(&key, MOUNT_KEYS) {
                    error = error.with_hint(format!("did you mean {near}?"));
                }
                return Err(error);
            }
        }
    }

    let at_spec = |message: String| Diagnostic::at(source, spec.pos, message);
    let file_info_allowed = matches!(
        mount.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_allowed {
        for (name, given) in [
            ("mode", mount.mode.is_some()),
            ("uid", mount.uid.is_some()),
            ("gid", mount.gid.is_some()),
        ] {
            if given {
                return Err(at_spec(format!(
                    "{name} not allowed for {:?} type mounts",
                    mount.kind.as_str()
                ))
                .with_hint("mode, uid and gid apply to cache, secret and ssh mounts"));
            }
        }
    }
    if !read_only_given {
        mount.read_only = !matches!(mount.kind, MountType::Cache | MountType::Tmpfs);
    }
    if mount.kind == MountType::Secret {
        if mount.from.is_some() {
            return Err(at_spec("secret mount should not have a from".into()));
        }
        if mount.sharing.is_some() {
            return Err(at_spec("secret mount should not define sharing".into()));
        }
        if mount.source.is_none() && mount.target.is_none() && mount.id.is_none() {
            return Err(
                at_spec("invalid secret mount. one of source, target required".into())
                    .with_hint("write --mount=type=secret,id=NAME"),
            );
        }
        if mount.source.is_some() && mount.id.is_some() {
            return Err(at_spec("both source and id can't be set".into()));
        }
    }
    if mount.sharing.is_some() && mount.kind != MountType::Cache {
        return Err(at_spec(format!(
            "invalid cache sharing set for {} mount",
            mount.kind.as_str()
        ))
        .with_hint("sharing= applies to cache mounts only"));
    }
    Ok(mount)
}

/// A CDI device a RUN asks for (`--device=name[,required]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    /// Fail when the device is not available (otherwise it is skipped).
    pub required: bool,
}

/// Reads a `--device` value as BuildKit does (never expanded): a name (bare or `name=`),
/// and `required` or `required=BOOL`.
pub(crate) fn parse_device(source: &Source, spec: &Word) -> Result<Device, Diagnostic> {
    let mut device = Device {
        name: String::new(),
        required: false,
    };
    for field in csv_fields(source, spec, "device")? {
        let at = |message: String| Diagnostic::at(source, field.pos, message);
        let (key, value) = match field.text.split_once('=') {
            Some((key, value)) => (key.to_lowercase(), Some(value)),
            None => (field.text.to_lowercase(), None),
        };
        match (key.as_str(), value) {
            ("required", None) => device.required = true,
            ("required", Some(value)) => {
                device.required = parse_bool(value)
                    .ok_or_else(|| at(format!("invalid value for required: {value}")))?;
            }
            ("name", Some(value)) if device.name.is_empty() => device.name = value.to_string(),
            ("name", Some(_)) => {
                return Err(at(format!("device name already set to {}", device.name)))
            }
            _ if device.name.is_empty() => device.name = field.text.clone(),
            (_, None) => {
                return Err(at(format!(
                    "invalid field '{}' must be a key=value pair",
                    field.text
                )))
            }
            (_, Some(_)) => {
                return Err(at(format!("unexpected key '{key}' in '{}'", field.text))
                    .with_hint("a device takes name= and required"))
            }
        }
    }
    Ok(device)
}

fn unexpected_key(source: &Source, field: &Field, key: &str, kind: MountType) -> Diagnostic {
    Diagnostic::at(
        source,
        field.pos,
        format!("unexpected key '{key}' for mount type '{}'", kind.as_str()),
    )
    .with_hint(match key {
        "size" => "size= applies to tmpfs mounts; put type= first",
        _ => "required applies to secret and ssh mounts; put type= first",
    })
}

/// docker/go-units' `RAMInBytes`: a number with an optional binary suffix (`64m`, `1.5GiB`).
fn ram_in_bytes(text: &str) -> Option<i64> {
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let suffix = suffix.strip_prefix(' ').unwrap_or(suffix).to_lowercase();
    let (unit, rest) = match suffix.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => (Some(c), &suffix[1..]),
        _ => (None, suffix.as_str()),
    };
    let rest = rest.strip_prefix('i').unwrap_or(rest);
    if !(rest.is_empty() || rest == "b") {
        return None;
    }
    let multiplier: f64 = match unit {
        None => 1.0,
        Some('k') => 1024.0,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        _ => 1024f64.powi(5),
    };
    let bytes = number * multiplier;
    (bytes < i64::MAX as f64).then_some(bytes as i64)
}

/// `pos` moved `offset` characters to the right on the same line.
pub(crate) fn shift(pos: Pos, offset: usize) -> Pos {
    Pos::new(pos.line, pos.column.saturating_add(offset as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> (Source, Word) {
        let line = format!("RUN --mount={text} true");
        let source = Source::new("Dockerfile", line);
        let word = Word {
            value: text.to_string(),
            pos: Pos::new(1, 13),
        };
        (source, word)
    }

    fn parse(text: &str) -> Result<Mount, Diagnostic> {
        let (source, word) = spec(text);
        parse_mount(&source, &word, &mut |w: &Word| Ok(w.value.clone()))
    }

    #[test]
    fn bind_is_the_default_and_read_only() {
        let mount = parse("target=/src").unwrap();
        assert_eq!(mount.kind, MountType::Bind);
        assert!(mount.read_only);
        assert_eq!(mount.target.as_deref(), Some("/src"));
    }

    #[test]
    fn cache_mounts_are_writable_with_options() {
        let mount =
            parse("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000")
                .unwrap();
        assert_eq!(mount.kind, MountType::Cache);
        assert!(!mount.read_only);
        assert_eq!(mount.sharing, Some(Sharing::Locked));
        assert_eq!(mount.mode, Some(0o755));
        assert_eq!(mount.uid, Some(1000));
        assert_eq!(mount.id.as_deref(), Some("pip"));
    }

    #[test]
    fn secrets_and_ssh() {
        let mount = parse("type=secret,id=npmrc,required,env=NPM_TOKEN").unwrap();
        assert!(mount.required);
        assert!(mount.read_only);
        assert_eq!(mount.env.as_deref(), Some("NPM_TOKEN"));
        let err = parse("type=secret").unwrap_err();
        assert_eq!(
            err.message,
            "invalid secret mount. one of source, target required"
        );
        let err = parse("type=secret,from=x,id=a").unwrap_err();
        assert_eq!(err.message, "secret mount should not have a from");
        assert!(parse("type=ssh,required=true").unwrap().required);
    }

    #[test]
    fn tmpfs_size() {
        assert_eq!(
            parse("type=tmpfs,target=/t,size=64m").unwrap().size,
            Some(64 << 20)
        );
        let err = parse("type=bind,size=1").unwrap_err();
        assert_eq!(err.message, "unexpected key 'size' for mount type 'bind'");
        let err = parse("type=tmpfs,size=lots").unwrap_err();
        assert_eq!(err.message, "invalid value for size: lots");
    }

    #[test]
    fn errors_point_at_the_field() {
        let err = parse("type=cahce,target=/x").unwrap_err();
        assert_eq!(err.message, "unsupported mount type \"cahce\"");
        assert_eq!(err.pos, Some(Pos::new(1, 18)));
        assert!(err.hint.unwrap().starts_with("did you mean cache?"));
        let err = parse("target=/x,tagret=/y").unwrap_err();
        assert_eq!(err.message, "unexpected key 'tagret' in 'tagret=/y'");
        assert_eq!(err.pos, Some(Pos::new(1, 23)));
        let err = parse("target=/x,bogus").unwrap_err();
        assert_eq!(
            err.message,
            "invalid field 'bogus' must be a key=value pair"
        );
        let err = parse("required,type=secret").unwrap_err();
        assert_eq!(
            err.message,
            "unexpected key 'required' for mount type 'bind'"
        );
        let err = parse("type=bind,mode=0600").unwrap_err();
        assert_eq!(err.message, "mode not allowed for \"bind\" type mounts");
        let err = parse("type=bind,sharing=locked").unwrap_err();
        assert_eq!(err.message, "invalid cache sharing set for bind mount");
    }

    #[test]
    fn csv_quoting() {
        let mount = parse("\"target=/a,b\",type=tmpfs").unwrap();
        assert_eq!(mount.target.as_deref(), Some("/a,b"));
        let err = parse("target=/a\"b").unwrap_err();
        assert_eq!(
            err.message,
            "failed to parse csv mounts: bare \" in non-quoted field"
        );
        let err = parse("").unwrap_err();
        assert!(err.message.starts_with("failed to parse csv mounts"));
    }

    #[test]
    fn from_may_not_hold_a_variable() {
        let (source, word) = spec("type=bind,from=$STAGE,target=/x");
        let err = unexpanded_from(&source, &word).unwrap_err();
        assert_eq!(
            err.message,
            "'from' doesn't support variable expansion, define alias stage instead"
        );
        assert_eq!(err.pos, Some(Pos::new(1, 28)));
        let (source, word) = spec("from=builder,target=/x");
        let from = unexpanded_from(&source, &word).unwrap().unwrap();
        assert_eq!(from.value, "builder");
        assert_eq!(from.pos, Pos::new(1, 18));
        // A trailing `$` is no variable.
        let (source, word) = spec("from=odd$");
        assert!(unexpanded_from(&source, &word).is_ok());
    }

    #[test]
    fn devices() {
        let device = |text: &str| {
            let (source, word) = spec(text);
            parse_device(&source, &word)
        };
        assert_eq!(
            device("vendor.com/gpu=all,required").unwrap(),
            Device {
                name: "vendor.com/gpu=all".into(),
                required: true
            }
        );
        assert_eq!(device("name=gpu,required=false").unwrap().name, "gpu");
        assert_eq!(
            device("name=a,name=b").unwrap_err().message,
            "device name already set to a"
        );
        assert_eq!(
            device("gpu,other").unwrap_err().message,
            "invalid field 'other' must be a key=value pair"
        );
        assert_eq!(
            device("gpu,x=1").unwrap_err().message,
            "unexpected key 'x' in 'x=1'"
        );
        assert!(device("")
            .unwrap_err()
            .message
            .starts_with("failed to parse csv devices"));
    }

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(ram_in_bytes("1024"), Some(1024));
        assert_eq!(ram_in_bytes("1k"), Some(1024));
        assert_eq!(ram_in_bytes("1.5GiB"), Some(1024 * 1024 * 1536));
        assert_eq!(ram_in_bytes("2 mb"), Some(2 << 20));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("1q"), None);
    }
}
