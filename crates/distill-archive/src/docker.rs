//! The Docker archive's own files: `manifest.json` (one item per image: config path, tags, layer
//! paths) and the legacy `repositories` (`{"name": {"tag": "<top layer id>"}}`).
//!
//! Since Docker 25 `docker save` writes these beside an OCI layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) whose blobs the paths in `manifest.json` point into; older versions used
//! `<id>.json` and `<id>/layer.tar`. We read both and write the new one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The file name of Docker's manifest.
pub const MANIFEST_JSON: &str = "manifest.json";
/// The file name of the legacy tag map.
pub const REPOSITORIES: &str = "repositories";

/// One image of `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// Path in the archive of the image config.
    #[serde(rename = "Config")]
    pub config: String,
    /// The image's tags, familiar form (`busybox:1`, `localhost:5000/x:y`). `null` when untagged.
    #[serde(rename = "RepoTags", default, deserialize_with = "null_as_empty")]
    pub repo_tags: Vec<String>,
    /// Paths in the archive of the layers, bottom first, in the order of the config's diff IDs.
    #[serde(rename = "Layers", default, deserialize_with = "null_as_empty")]
    pub layers: Vec<String>,
    /// Docker's parent image ID (classic builder only). Kept as written; never needed to load.
    #[serde(rename = "Parent", default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Descriptors of foreign (non-distributable) layers, by diff ID.
    #[serde(
        rename = "LayerSources",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub layer_sources: Option<BTreeMap<String, Value>>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Parses `manifest.json`: a JSON array of items. `null` is refused, as Docker does.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ManifestItem>, String> {
    let items: Option<Vec<ManifestItem>> = serde_json::from_slice(bytes)
        .map_err(|err| format!("{MANIFEST_JSON} is malformed: {err}"))?;
    items.ok_or_else(|| format!("{MANIFEST_JSON} is null; it must be a list of images"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_old_and_new_docker_manifests() {
        let old =
            br#"[{"Config":"820c.json","RepoTags":["bbtest:1"],"Layers":["eff8/layer.tar"]}]"#;
        let items = parse_manifest(old).unwrap();
        assert_eq!(items[0].config, "820c.json");
        assert_eq!(items[0].repo_tags, ["bbtest:1"]);
        let new = br#"[{"Config":"blobs/sha256/aa","RepoTags":null,"Layers":["blobs/sha256/bb"],
            "LayerSources":{"sha256:cc":{"mediaType":"x","size":1,"digest":"sha256:dd"}}}]"#;
        let items = parse_manifest(new).unwrap();
        assert!(items[0].repo_tags.is_empty());
        assert!(items[0].layer_sources.is_some());
    }

    #[test]
    fn refuses_null_and_wrong_shapes() {
        assert!(parse_manifest(b"null").unwrap_err().contains("null"));
        assert!(parse_manifest(b"{}").unwrap_err().contains("malformed"));
        assert!(parse_manifest(br#"[{"RepoTags":[]}]"#)
            .unwrap_err()
            .contains("Config"));
        assert!(parse_manifest(b"[{\"Config\":\"a\"").is_err());
    }

    #[test]
    fn writes_the_fields_docker_reads() {
        let item = ManifestItem {
            config: "blobs/sha256/aa".into(),
            repo_tags: vec!["x:1".into()],
            layers: vec!["blobs/sha256/bb".into()],
            parent: None,
            layer_sources: None,
        };
        assert_eq!(
            serde_json::to_string(&item).unwrap(),
            r#"{"Config":"blobs/sha256/aa","RepoTags":["x:1"],"Layers":["blobs/sha256/bb"]}"#
        );
    }
}
