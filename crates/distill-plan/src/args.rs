//! Build arguments: the `--build-arg` values a build is given, and the args BuildKit defines
//! itself (platform args, `TARGETSTAGE`, the proxy variables).

use std::collections::BTreeMap;

use crate::expand::Vars;
use crate::platform::Platform;

/// Proxy variables a build arg may set without an `ARG`: they reach every RUN's environment
/// (in any case), and nothing else, unless declared.
pub const PROXY_ARGS: [&str; 5] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// Args that never become environment variables, even when declared.
pub(crate) const NON_ENV_ARGS: [&str; 2] =
    ["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// The `--build-arg` values of a build, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildArgs {
    values: BTreeMap<String, String>,
}

impl BuildArgs {
    pub fn new() -> BuildArgs {
        BuildArgs::default()
    }

    /// Reads `--build-arg` specifications: `K=V` sets K to V; a bare `K` takes K's value from
    /// `lookup` (the process environment, for the CLI) and is ignored when it is unset.
    /// A later value for the same name replaces an earlier one.
    pub fn from_specs<I, S, F>(specs: I, lookup: F) -> Result<BuildArgs, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        F: Fn(&str) -> Option<String>,
    {
        let mut args = BuildArgs::new();
        for spec in specs {
            let spec = spec.as_ref();
            match spec.split_once('=') {
                Some(("", _)) => {
                    return Err(format!(
                        "--build-arg {spec:?}: the name is empty; write --build-arg NAME=VALUE"
                    ))
                }
                Some((name, value)) => args.insert(name, value),
                None if spec.is_empty() => {
                    return Err("--build-arg needs NAME=VALUE or NAME".into());
                }
                None => {
                    if let Some(value) = lookup(spec) {
                        args.insert(spec, &value);
                    }
                }
            }
        }
        Ok(args)
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), value.to_string());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The proxy variables among the build args (any case), for every RUN's environment.
    pub fn proxy_env(&self) -> Vec<(&str, &str)> {
        self.iter()
            .filter(|(name, _)| PROXY_ARGS.iter().any(|p| p.eq_ignore_ascii_case(name)))
            .collect()
    }
}

/// The args BuildKit defines before any `ARG` (in global scope), a build arg of the same
/// name replacing each: build and target platform parts, and `TARGETSTAGE`.
pub(crate) fn predefined_args(
    build: &Platform,
    target: &Platform,
    target_stage: &str,
    build_args: &BuildArgs,
) -> Vars {
    let entries = [
        ("BUILDPLATFORM", build.to_string()),
        ("BUILDOS", build.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", build.architecture.clone()),
        ("BUILDVARIANT", build.variant.clone()),
        ("TARGETPLATFORM", target.to_string()),
        ("TARGETOS", target.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", target.architecture.clone()),
        ("TARGETVARIANT", target.variant.clone()),
        ("TARGETSTAGE", target_stage.to_string()),
    ];
    let mut vars = Vars::new();
    for (name, value) in entries {
        let value = build_args.get(name).map_or(value, str::to_string);
        vars.set(name, &value);
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_from_specs_and_environment() {
        let lookup = |name: &str| (name == "FROM_ENV").then(|| "env value".to_string());
        let args =
            BuildArgs::from_specs(["A=1", "B=", "FROM_ENV", "UNSET", "A=2", "C=x=y"], lookup)
                .unwrap();
        assert_eq!(args.get("A"), Some("2"));
        assert_eq!(args.get("B"), Some(""));
        assert_eq!(args.get("FROM_ENV"), Some("env value"));
        assert_eq!(args.get("UNSET"), None);
        assert_eq!(args.get("C"), Some("x=y"));
        assert!(BuildArgs::from_specs(["=x"], lookup).is_err());
    }

    #[test]
    fn proxies_in_any_case() {
        let args =
            BuildArgs::from_specs(["http_proxy=a", "NO_PROXY=b", "OTHER=c"], |_| None).unwrap();
        assert_eq!(args.proxy_env(), [("NO_PROXY", "b"), ("http_proxy", "a")]);
    }

    #[test]
    fn predefined_platform_args_are_overridable() {
        let build = Platform::new("linux", "amd64", "");
        let target = Platform::new("linux", "arm", "v7");
        let mut overrides = BuildArgs::new();
        overrides.insert("BUILDOS", "custom");
        let vars = predefined_args(&build, &target, "final", &overrides);
        assert_eq!(vars.get("BUILDPLATFORM"), Some("linux/amd64"));
        assert_eq!(vars.get("BUILDOS"), Some("custom"));
        assert_eq!(vars.get("TARGETPLATFORM"), Some("linux/arm/v7"));
        assert_eq!(vars.get("TARGETVARIANT"), Some("v7"));
        assert_eq!(vars.get("TARGETSTAGE"), Some("final"));
    }
}
