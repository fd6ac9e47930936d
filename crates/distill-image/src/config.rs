//! The image configuration (`application/vnd.oci.image.config.v1+json`, the same JSON as
//! Docker's `application/vnd.docker.container.image.v1+json`): platform, runtime defaults
//! (Env, Cmd, Entrypoint, …), the layers' diff IDs and the build history.
//!
//! Docker's extra runtime fields (Healthcheck, OnBuild, Shell, …) are first-class here because
//! Dockerfiles set them; anything else is kept in `extra`. As with manifests, a config's digest
//! (the image ID) is the digest of the bytes read: never re-serialise a config we did not create.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::manifest::{to_json_bytes, FormatError, Platform};

/// The whole config document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// RFC 3339 creation time, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RuntimeConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, FormatError> {
        serde_json::from_slice(bytes).map_err(|source| FormatError::Json {
            what: "image config",
            source,
        })
    }

    /// The JSON of a config we created (see the module note on re-serialising).
    pub fn to_json(&self) -> Vec<u8> {
        to_json_bytes(self)
    }

    pub fn platform(&self) -> Platform {
        let mut platform = Platform::new(&self.os, &self.architecture, self.variant.as_deref());
        platform.os_version = self.os_version.clone();
        platform.os_features = self.os_features.clone();
        platform
    }
}

/// The defaults a container started from the image gets. Field names are Docker's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, EmptyObject>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, EmptyObject>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{}`: the value type of ExposedPorts and Volumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyObject {}

/// HEALTHCHECK. Durations are nanoseconds, as Docker stores them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", args…]`, `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// The layers of the image's root filesystem, as diff IDs (digests of the uncompressed tars).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> RootFs {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One build step. Steps that made no layer say so with `empty_layer`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

    #[test]
    fn reads_a_docker_config_with_every_runtime_field() {
        let text = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-05-01T10:00:00.123456789Z",
            "config":{{"User":"app","ExposedPorts":{{"8080/tcp":{{}}}},"Env":["PATH=/bin"],
              "Entrypoint":["/app"],"Cmd":null,"Volumes":{{"/data":{{}}}},"WorkingDir":"/srv",
              "Labels":{{"a":"b"}},"StopSignal":"SIGTERM","ArgsEscaped":true,
              "Healthcheck":{{"Test":["CMD-SHELL","true"],"Interval":30000000000,"Retries":3}},
              "OnBuild":["RUN x"],"Shell":["/bin/bash","-c"],"Hostname":""}},
            "rootfs":{{"type":"layers","diff_ids":["{DIFF}"]}},
            "history":[{{"created":"2024-05-01T10:00:00Z","created_by":"/bin/sh -c #(nop) ADD file","empty_layer":false}},
                       {{"created_by":"CMD [\"x\"]","empty_layer":true,"comment":"buildkit.dockerfile.v0"}}],
            "container":"abc"}}"#
        );
        let config = ImageConfig::parse(text.as_bytes()).unwrap();
        let runtime = config.config.as_ref().unwrap();
        assert_eq!(runtime.user.as_deref(), Some("app"));
        assert!(runtime
            .exposed_ports
            .as_ref()
            .unwrap()
            .contains_key("8080/tcp"));
        assert_eq!(runtime.cmd, None);
        assert_eq!(
            runtime.entrypoint.as_deref(),
            Some(&["/app".to_string()][..])
        );
        assert_eq!(
            runtime.healthcheck.as_ref().unwrap().interval,
            30_000_000_000
        );
        assert_eq!(runtime.shell.as_ref().unwrap().len(), 2);
        assert_eq!(runtime.args_escaped, Some(true));
        assert_eq!(runtime.extra["Hostname"], Value::String(String::new()));
        assert_eq!(config.extra["container"], Value::String("abc".into()));
        assert_eq!(config.rootfs.diff_ids[0].to_string(), DIFF);
        assert!(config.history[1].empty_layer);
        assert_eq!(config.platform().to_string(), "linux/amd64");
    }

    #[test]
    fn created_configs_omit_empty_fields() {
        let config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..ImageConfig::default()
        };
        assert_eq!(
            String::from_utf8(config.to_json()).unwrap(),
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
        );
    }

    #[test]
    fn rejects_invalid_diff_ids() {
        let text = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:1"]}}"#;
        assert!(ImageConfig::parse(text.as_bytes()).is_err());
    }
}
