//! Descriptors, platforms, image manifests and indexes, for both the OCI and the Docker schema 2
//! families (their JSON shapes are the same; only the media types differ).
//!
//! Parsing keeps fields we do not know in `extra`, but the bytes we read stay the truth: a
//! manifest's digest is the digest of the bytes it came in, so this module must never be used to
//! re-serialise a manifest we did not create and store the result under the old digest.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::media_type;

/// Why a manifest, index or config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("malformed {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported schemaVersion {0} (expected 2)")]
    SchemaVersion(u32),
    #[error(
        "media type {found:?} in the document does not match {declared:?} from its descriptor"
    )]
    MediaTypeMismatch { declared: String, found: String },
    #[error("not an image manifest or index (media type {0:?})")]
    NotAManifest(String),
    #[error("invalid platform {text:?}: {reason}")]
    Platform { text: String, reason: &'static str },
}

/// A pointer to content: what it is, its digest and its size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Embedded content, base64 (kept as text: we never need to decode it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
            data: None,
            extra: Map::new(),
        }
    }

    /// The descriptor of `bytes` (sha256, exact length).
    pub fn for_bytes(media_type: impl Into<String>, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256_of(bytes), bytes.len() as u64)
    }
}

/// The platform an image runs on (`linux/amd64`, `linux/arm64/v8`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: Vec::new(),
            variant: variant.map(str::to_string),
            features: Vec::new(),
        }
    }

    /// Parses `os/arch[/variant]` (as `--platform` takes it) and normalises the names like
    /// containerd (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn parse(text: &str) -> Result<Platform, FormatError> {
        let invalid = |reason| FormatError::Platform {
            text: text.to_string(),
            reason,
        };
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(invalid("expected os/arch[/variant]"));
        }
        if parts.iter().any(|p| {
            p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        }) {
            return Err(invalid("components must be non-empty and alphanumeric"));
        }
        let os = parts[0].to_ascii_lowercase();
        let platform = Platform::new(&os, &parts[1].to_ascii_lowercase(), parts.get(2).copied());
        Ok(platform.normalized())
    }

    /// The platform this program runs on.
    pub fn host() -> Platform {
        Platform::new(std::env::consts::OS, std::env::consts::ARCH, None).normalized()
    }

    /// Canonical architecture and variant names (containerd's normalisation).
    pub fn normalized(mut self) -> Platform {
        let variant = self.variant.take();
        let (architecture, variant) = match (self.architecture.as_str(), variant.as_deref()) {
            ("x86_64" | "x86-64" | "amd64", None) => ("amd64", None),
            ("x86_64" | "x86-64" | "amd64", Some(v)) => ("amd64", Some(v.to_string())),
            ("aarch64" | "arm64", None | Some("8" | "v8")) => ("arm64", None),
            ("aarch64" | "arm64", Some(v)) => ("arm64", Some(v.to_string())),
            ("armhf", _) => ("arm", Some("v7".to_string())),
            ("armel", _) => ("arm", Some("v6".to_string())),
            ("arm", None | Some("7" | "v7")) => ("arm", Some("v7".to_string())),
            ("arm", Some(v @ ("5" | "6" | "8"))) => ("arm", Some(format!("v{v}"))),
            ("i386" | "i486" | "i586" | "i686", v) => ("386", v.map(str::to_string)),
            (other, v) => (other, v.map(str::to_string)),
        };
        self.architecture = architecture.to_string();
        self.variant = variant;
        self
    }

    /// Whether an image built for `self` is what a user asking for `wanted` gets: same OS,
    /// architecture and (normalised) variant; an unspecified wanted variant takes any.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        let have = self.clone().normalized();
        let want = wanted.clone().normalized();
        have.os == want.os
            && have.architecture == want.architecture
            && (want.variant.is_none() || have.variant == want.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A single-platform image: a config and the ordered layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageManifest {
    /// A new OCI manifest (what the store writes for images we create).
    pub fn new_oci(config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }

    /// The JSON of a manifest we created. Never call this on a manifest read from elsewhere
    /// to store it: keep the bytes you read.
    pub fn to_json(&self) -> Vec<u8> {
        to_json_bytes(self)
    }
}

/// A set of manifests, usually one per platform (OCI index or Docker manifest list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageIndex {
    pub fn new_oci(manifests: Vec<Descriptor>) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }

    /// The JSON of an index we created (see [`ImageManifest::to_json`]).
    pub fn to_json(&self) -> Vec<u8> {
        to_json_bytes(self)
    }

    /// The entry for `platform`: the first manifest whose platform satisfies it, else, when
    /// no entry names a platform at all, the first manifest.
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        let images = || {
            self.manifests.iter().filter(|d| {
                media_type::is_manifest(&d.media_type) || media_type::is_index(&d.media_type)
            })
        };
        images()
            .find(|d| d.platform.as_ref().is_some_and(|p| p.satisfies(platform)))
            .or_else(|| {
                images()
                    .all(|d| d.platform.is_none())
                    .then(|| images().next())
                    .flatten()
            })
    }
}

/// A manifest of either kind, as read from bytes.
// Values are parsed one at a time and matched on at once; boxing would only cost readability.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

impl Manifest {
    /// Parses manifest bytes. `declared` is the media type from the descriptor or HTTP header
    /// that led here, if any; when the document names its own media type they must agree.
    /// Without either, the shape decides (`manifests` → index, `config` → image).
    pub fn parse(bytes: &[u8], declared: Option<&str>) -> Result<Manifest, FormatError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            schema_version: Option<u32>,
            media_type: Option<String>,
            manifests: Option<Value>,
            config: Option<Value>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|source| FormatError::Json {
            what: "manifest",
            source,
        })?;
        match probe.schema_version {
            Some(2) => {}
            Some(other) => return Err(FormatError::SchemaVersion(other)),
            None => return Err(FormatError::SchemaVersion(0)),
        }
        if let (Some(declared), Some(found)) = (declared, probe.media_type.as_deref()) {
            if declared != found {
                return Err(FormatError::MediaTypeMismatch {
                    declared: declared.to_string(),
                    found: found.to_string(),
                });
            }
        }
        let kind = probe.media_type.as_deref().or(declared);
        let is_index = match kind {
            Some(t) if media_type::is_index(t) => true,
            Some(t) if media_type::is_manifest(t) => false,
            Some(t) => return Err(FormatError::NotAManifest(t.to_string())),
            None if probe.manifests.is_some() => true,
            None if probe.config.is_some() => false,
            None => return Err(FormatError::NotAManifest(String::new())),
        };
        if is_index {
            serde_json::from_slice(bytes)
                .map(Manifest::Index)
                .map_err(|source| FormatError::Json {
                    what: "image index",
                    source,
                })
        } else {
            serde_json::from_slice(bytes)
                .map(Manifest::Image)
                .map_err(|source| FormatError::Json {
                    what: "image manifest",
                    source,
                })
        }
    }

    /// The media type to describe this manifest with: its own, or OCI's for its kind.
    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Image(m) => m.media_type.as_deref().unwrap_or(media_type::OCI_MANIFEST),
            Manifest::Index(i) => i.media_type.as_deref().unwrap_or(media_type::OCI_INDEX),
        }
    }
}

/// Compact JSON of a value we created. Serialising our own types cannot fail (string keys,
/// no non-finite floats), so a failure here is a bug.
pub(crate) fn to_json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("image types serialise to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn docker_manifest() -> String {
        format!(
            r#"{{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {{"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469, "digest": "{D1}"}},
   "layers": [
      {{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2479, "digest": "{D2}"}},
      {{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 7, "digest": "{D2}", "urls": ["https://example.com/l"]}}
   ],
   "x-vendor": {{"kept": true}}
}}"#
        )
    }

    #[test]
    fn reads_docker_schema2_manifests_and_keeps_unknown_fields() {
        let Manifest::Image(manifest) =
            Manifest::parse(docker_manifest().as_bytes(), None).unwrap()
        else {
            panic!("expected an image manifest");
        };
        assert_eq!(manifest.config.media_type, media_type::DOCKER_CONFIG);
        assert_eq!(manifest.config.size, 1469);
        assert_eq!(manifest.layers.len(), 2);
        assert_eq!(manifest.layers[1].urls, ["https://example.com/l"]);
        assert_eq!(manifest.extra["x-vendor"]["kept"], Value::Bool(true));
        let round = serde_json::to_value(&manifest).unwrap();
        assert_eq!(round["x-vendor"]["kept"], Value::Bool(true));
    }

    #[test]
    fn reads_oci_indexes_with_platforms_and_selects_one() {
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"mediaType":"{}","digest":"{D1}","size":10,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
              {{"mediaType":"{}","digest":"{D2}","size":11,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            media_type::OCI_MANIFEST,
            media_type::OCI_MANIFEST
        );
        let Manifest::Index(index) =
            Manifest::parse(text.as_bytes(), Some(media_type::OCI_INDEX)).unwrap()
        else {
            panic!("expected an index");
        };
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(index.select(&amd64).unwrap().digest.to_string(), D2);
        let arm64 = Platform::parse("linux/aarch64").unwrap();
        assert_eq!(index.select(&arm64).unwrap().digest.to_string(), D1);
        assert!(index
            .select(&Platform::parse("linux/s390x").unwrap())
            .is_none());
    }

    #[test]
    fn rejects_mismatched_or_wrong_documents() {
        let text = docker_manifest();
        assert!(matches!(
            Manifest::parse(text.as_bytes(), Some(media_type::OCI_MANIFEST)),
            Err(FormatError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            Manifest::parse(br#"{"schemaVersion":1,"config":{}}"#, None),
            Err(FormatError::SchemaVersion(1))
        ));
        assert!(matches!(
            Manifest::parse(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None),
            Err(FormatError::NotAManifest(_))
        ));
        assert!(matches!(
            Manifest::parse(b"{", None),
            Err(FormatError::Json { .. })
        ));
        let bad_digest = text.replace(D1, "sha256:zz");
        assert!(Manifest::parse(bad_digest.as_bytes(), None).is_err());
    }

    #[test]
    fn created_manifests_are_deterministic_oci() {
        let config = Descriptor::for_bytes(media_type::OCI_CONFIG, b"{}");
        let layer = Descriptor::new(media_type::OCI_LAYER_GZIP, Digest::parse(D2).unwrap(), 5);
        let manifest = ImageManifest::new_oci(config, vec![layer]);
        let json = String::from_utf8(manifest.to_json()).unwrap();
        assert!(json.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"#));
        assert_eq!(manifest.to_json(), manifest.clone().to_json());
        let back = Manifest::parse(json.as_bytes(), None).unwrap();
        assert_eq!(back, Manifest::Image(manifest));
    }

    #[test]
    fn platform_parsing_and_display() {
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/armhf").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }
}
