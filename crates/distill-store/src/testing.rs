//! Small images for tests, written straight into a store (before `load`/`import` exist, and
//! for tests of other crates that need an image without a build).
//!
//! Layers are uncompressed tars of regular files, so each layer's diff ID is its blob digest.

use distill_image::{
    media_type, Descriptor, History, ImageConfig, ImageManifest, Reference, RootFs, RuntimeConfig,
};

use crate::error::Result;
use crate::store::{Image, Store};

/// An image to commit: layers of `(path, content)` files, a creation time and a command.
#[derive(Clone, Debug)]
pub struct TestImage {
    layers: Vec<Vec<(String, Vec<u8>)>>,
    created: String,
    cmd: Vec<String>,
    architecture: String,
}

impl Default for TestImage {
    fn default() -> TestImage {
        TestImage {
            layers: Vec::new(),
            created: "2024-01-02T03:04:05Z".to_string(),
            cmd: vec!["/bin/true".to_string()],
            architecture: distill_image::Platform::host().architecture,
        }
    }
}

impl TestImage {
    pub fn new() -> TestImage {
        TestImage::default()
    }

    /// Adds a layer holding these files (paths relative, no leading `/`).
    pub fn layer(mut self, files: &[(&str, &[u8])]) -> TestImage {
        self.layers.push(
            files
                .iter()
                .map(|(path, content)| (path.to_string(), content.to_vec()))
                .collect(),
        );
        self
    }

    /// The config's `created` (RFC 3339).
    pub fn created(mut self, created: &str) -> TestImage {
        self.created = created.to_string();
        self
    }

    /// The config's architecture (default: this machine's).
    pub fn architecture(mut self, architecture: &str) -> TestImage {
        self.architecture = architecture.to_string();
        self
    }

    pub fn cmd(mut self, cmd: &[&str]) -> TestImage {
        self.cmd = cmd.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Writes the blobs and records the image under `names` (normalised like Docker).
    pub fn commit(&self, store: &Store, names: &[&str]) -> Result<Image> {
        let _lease = store.lease()?;
        let mut layers = Vec::new();
        let mut history = Vec::new();
        for files in &self.layers {
            let tar = tar_of(files);
            let digest = store.put_blob(&tar)?;
            layers.push(Descriptor::new(
                media_type::OCI_LAYER_TAR,
                digest,
                tar.len() as u64,
            ));
            let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
            history.push(History {
                created: Some(self.created.clone()),
                created_by: Some(format!("COPY {} / # buildkit", paths.join(" "))),
                comment: Some("buildkit.dockerfile.v0".to_string()),
                ..History::default()
            });
        }
        history.push(History {
            created: Some(self.created.clone()),
            created_by: Some(format!("CMD {:?}", self.cmd)),
            comment: Some("buildkit.dockerfile.v0".to_string()),
            empty_layer: true,
            ..History::default()
        });
        let config = ImageConfig {
            created: Some(self.created.clone()),
            architecture: self.architecture.clone(),
            os: "linux".to_string(),
            config: Some(RuntimeConfig {
                env: Some(vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
                ]),
                cmd: Some(self.cmd.clone()),
                ..RuntimeConfig::default()
            }),
            rootfs: RootFs {
                diff_ids: layers.iter().map(|l| l.digest.clone()).collect(),
                ..RootFs::default()
            },
            history,
            ..ImageConfig::default()
        };
        let config_bytes = config.to_json();
        store.put_blob(&config_bytes)?;
        let manifest = ImageManifest::new_oci(
            Descriptor::for_bytes(media_type::OCI_CONFIG, &config_bytes),
            layers,
        );
        let manifest_bytes = manifest.to_json();
        store.put_blob(&manifest_bytes)?;
        let target = Descriptor::for_bytes(media_type::OCI_MANIFEST, &manifest_bytes);
        let names = names
            .iter()
            .map(|n| Reference::parse_normalized(n))
            .collect::<Result<Vec<_>, _>>()?;
        let record = store.add_image(&target, &names)?;
        store.image(&record)
    }
}

/// A ustar archive of regular files, mode 0644, owned by root, mtime 0.
pub fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, content) in files {
        let mut header = [0u8; 512];
        put(&mut header[0..100], path.as_bytes());
        put(&mut header[100..108], b"0000644\0");
        put(&mut header[108..116], b"0000000\0");
        put(&mut header[116..124], b"0000000\0");
        put(
            &mut header[124..136],
            format!("{:011o}\0", content.len()).as_bytes(),
        );
        put(&mut header[136..148], b"00000000000\0");
        header[156] = b'0';
        put(&mut header[257..265], b"ustar\x0000");
        header[148..156].fill(b' ');
        let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        put(
            &mut header[148..156],
            format!("{checksum:06o}\0 ").as_bytes(),
        );
        out.extend_from_slice(&header);
        out.extend_from_slice(content);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}
