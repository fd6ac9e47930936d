//! `--change` for `import`: the Dockerfile instructions `docker import --change` accepts (CMD,
//! ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR), applied in order to the new
//! image's runtime config with BuildKit's meaning. Each change is parsed by the frontend's
//! Dockerfile parser; variables in ENV, LABEL, EXPOSE, USER, VOLUME and WORKDIR are expanded from
//! the ENV set so far, as in a Dockerfile.
//!
//! Never runs anything and never accepts an instruction that would need a build (RUN, COPY, …).

use std::collections::{BTreeMap, HashMap};

use distill_frontend::{Node, Source};
use distill_image::{EmptyObject, RuntimeConfig};
use distill_shell::Lexer;

use crate::error::{ArchiveError, Result};

/// The instructions a change may use, as `docker import` lists them.
pub const SUPPORTED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// The shell a shell-form CMD or ENTRYPOINT runs in (no SHELL instruction can change it here).
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// Applies `changes` (each one Dockerfile instruction, as given to `--change`) to `config`.
pub fn apply(config: &mut RuntimeConfig, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for change in changes {
        let source = Source::new("--change", change.as_str());
        let dockerfile = distill_frontend::parse(&source).map_err(|diagnostic| {
            ArchiveError::invalid(format!("invalid --change {change:?}: {diagnostic}"))
        })?;
        let lexer = Lexer::new(dockerfile.directives.escape);
        for node in &dockerfile.nodes {
            apply_node(config, node, &lexer, &mut cmd_set)
                .map_err(|why| ArchiveError::invalid(format!("--change {change:?}: {why}")))?;
        }
    }
    Ok(())
}

fn apply_node(
    config: &mut RuntimeConfig,
    node: &Node,
    lexer: &Lexer,
    cmd_set: &mut bool,
) -> std::result::Result<(), String> {
    let keyword = node.keyword.to_ascii_uppercase();
    if !node.flags.is_empty() && keyword != "ONBUILD" {
        return Err(format!(
            "{keyword} takes no flags here, found {}",
            node.flags[0].value
        ));
    }
    let env = env_map(config);
    let expand = |word: &str| {
        lexer
            .process_word(word, &env)
            .map_err(|err| format!("{keyword}: {err}"))
    };
    let expand_words = |word: &str| {
        lexer
            .process_words(word, &env)
            .map_err(|err| format!("{keyword}: {err}"))
    };
    match keyword.as_str() {
        "CMD" => {
            config.cmd = Some(command(node));
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            config.entrypoint = Some(command(node));
            // As in a build: an ENTRYPOINT drops a CMD that was not set by these changes.
            if !*cmd_set {
                config.cmd = None;
            }
        }
        "ENV" => {
            for (key, value) in pairs(node, "ENV")? {
                let key = expand(&key)?;
                let value = expand(&value)?;
                set_env(config, &key, &value);
            }
        }
        "LABEL" => {
            for (key, value) in pairs(node, "LABEL")? {
                let key = expand(&key)?;
                if key.is_empty() {
                    return Err("LABEL names must not be empty".into());
                }
                let value = expand(&value)?;
                config
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key, value);
            }
        }
        "EXPOSE" => {
            if node.args.is_empty() {
                return Err("EXPOSE requires at least one argument".into());
            }
            for arg in &node.args {
                for spec in expand_words(&arg.value)? {
                    for port in expose_ports(&spec)? {
                        config
                            .exposed_ports
                            .get_or_insert_with(BTreeMap::new)
                            .insert(port, EmptyObject {});
                    }
                }
            }
        }
        "USER" => {
            let [user] = node.args.as_slice() else {
                return Err("USER requires exactly one argument".into());
            };
            config.user = Some(expand(&user.value)?);
        }
        "VOLUME" => {
            if node.args.is_empty() {
                return Err("VOLUME requires at least one argument".into());
            }
            for arg in &node.args {
                let paths = if node.json {
                    vec![expand(&arg.value)?]
                } else {
                    expand_words(&arg.value)?
                };
                for path in paths {
                    let path = path.trim().to_string();
                    if path.is_empty() {
                        return Err("VOLUME specified can not be an empty string".into());
                    }
                    config
                        .volumes
                        .get_or_insert_with(BTreeMap::new)
                        .insert(path, EmptyObject {});
                }
            }
        }
        "WORKDIR" => {
            let [dir] = node.args.as_slice() else {
                return Err("WORKDIR requires exactly one argument".into());
            };
            let dir = expand(&dir.value)?;
            let base = config
                .working_dir
                .clone()
                .unwrap_or_else(|| "/".to_string());
            config.working_dir = Some(join_workdir(&base, &dir));
        }
        "ONBUILD" => {
            let Some(inner) = &node.onbuild else {
                return Err("ONBUILD requires an instruction".into());
            };
            let inner_keyword = inner.keyword.to_ascii_uppercase();
            if matches!(inner_keyword.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(format!(
                    "{inner_keyword} isn't allowed as an ONBUILD trigger"
                ));
            }
            config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(onbuild_expression(&node.original));
        }
        other => {
            return Err(format!(
                "{other} is not supported by import; it accepts {}",
                SUPPORTED.join(", ")
            ))
        }
    }
    Ok(())
}

/// CMD/ENTRYPOINT arguments: the JSON array as is, or the shell form run by `/bin/sh -c`.
fn command(node: &Node) -> Vec<String> {
    if node.json {
        return node.args.iter().map(|word| word.value.clone()).collect();
    }
    let mut command: Vec<String> = DEFAULT_SHELL.iter().map(|s| s.to_string()).collect();
    command.extend(node.args.iter().map(|word| word.value.clone()));
    command
}

/// ENV/LABEL's `key, value, separator` triples, as the parser gives them.
fn pairs(node: &Node, keyword: &str) -> std::result::Result<Vec<(String, String)>, String> {
    if node.args.is_empty() || !node.args.len().is_multiple_of(3) {
        return Err(format!("{keyword} requires at least one argument"));
    }
    Ok(node
        .args
        .chunks(3)
        .map(|triple| (triple[0].value.clone(), triple[1].value.clone()))
        .collect())
}

fn env_map(config: &RuntimeConfig) -> HashMap<String, String> {
    config
        .env
        .iter()
        .flatten()
        .filter_map(|entry| entry.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn set_env(config: &mut RuntimeConfig, key: &str, value: &str) {
    let env = config.env.get_or_insert_with(Vec::new);
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|existing| existing.split_once('=').map(|(k, _)| k) == Some(key))
    {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

/// `80`, `80/udp`, `8000-8002/tcp` → `["80/tcp"]`, … (Docker's `nat.ParsePortSpecs` for EXPOSE).
fn expose_ports(spec: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, protocol) = match spec.split_once('/') {
        Some((ports, protocol)) => (ports, protocol.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {protocol}"));
    }
    if ports.contains(':') {
        return Err(format!(
            "EXPOSE takes ports only, not IP or host ports: {spec}"
        ));
    }
    let parse = |text: &str| {
        text.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {text}"))
    };
    let (start, end) = match ports.split_once('-') {
        Some((start, end)) => (parse(start)?, parse(end)?),
        None => {
            let port = parse(ports)?;
            (port, port)
        }
    };
    if end < start {
        return Err(format!(
            "invalid range specified for containerPort: {ports}"
        ));
    }
    Ok((start..=end)
        .map(|port| format!("{port}/{protocol}"))
        .collect())
}

/// WORKDIR `dir` relative to `base`, cleaned like Go's `path.Clean`.
fn join_workdir(base: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{base}/{dir}")
    };
    distill_golang::path::clean(&format!("/{joined}"))
}

/// What BuildKit stores for `ONBUILD X`: the original text after the ONBUILD keyword.
fn onbuild_expression(original: &str) -> String {
    let trimmed = original.trim_start();
    let rest = if trimmed.len() >= 7 && trimmed[..7].eq_ignore_ascii_case("ONBUILD") {
        &trimmed[7..]
    } else {
        trimmed
    };
    rest.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_specs_expand_like_docker() {
        assert_eq!(expose_ports("80").unwrap(), ["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            expose_ports("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_ports("80/xyz")
            .unwrap_err()
            .contains("invalid proto"));
        assert!(expose_ports("http")
            .unwrap_err()
            .contains("invalid containerPort"));
        assert!(expose_ports("9-3").unwrap_err().contains("invalid range"));
        assert!(expose_ports("127.0.0.1:80:80").is_err());
    }

    #[test]
    fn workdir_joins_and_cleans() {
        assert_eq!(join_workdir("/", "app"), "/app");
        assert_eq!(join_workdir("/app", "sub/../lib"), "/app/lib");
        assert_eq!(join_workdir("/app", "/srv/"), "/srv");
        assert_eq!(join_workdir("/", ".."), "/");
    }

    #[test]
    fn onbuild_keeps_the_trigger_text() {
        assert_eq!(onbuild_expression("ONBUILD RUN echo hi"), "RUN echo hi");
        assert_eq!(
            onbuild_expression("  onbuild   COPY . /app "),
            "COPY . /app"
        );
    }

    #[test]
    fn env_entries_are_replaced_in_place() {
        let mut config = RuntimeConfig::default();
        set_env(&mut config, "A", "1");
        set_env(&mut config, "B", "2");
        set_env(&mut config, "A", "3");
        assert_eq!(config.env.unwrap(), ["A=3", "B=2"]);
    }
}
