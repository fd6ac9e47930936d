//! `distill save`, `load` and `import`: flags and output, as `docker save/load/import` print
//! them. The work is in `distill_archive`.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Args, ValueEnum};
use distill_archive::import::{creation_time, ImportOptions};
use distill_archive::save::Format;
use distill_archive::ArchiveError;
use distill_image::{Platform, Reference};
use distill_layer::Compression;
use distill_store::Store;

use crate::global::Global;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SaveFormat {
    /// What `docker load` reads (manifest.json beside an OCI layout, as Docker 25+ writes)
    Docker,
    /// An OCI image layout (oci-layout, index.json, blobs/) in a tar
    Oci,
}

#[derive(Args)]
pub struct SaveArgs {
    /// Write to FILE instead of standard output ("-" is standard output)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Archive layout
    #[arg(long, value_enum, default_value = "docker")]
    format: SaveFormat,

    /// Images to save: name[:tag], name@digest or image ID
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from FILE instead of standard input ("-" is standard input); plain, gzip or zstd
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,

    /// Print nothing on success
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LayerCompression {
    Gzip,
    Zstd,
    None,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The root filesystem tarball (plain, gzip or zstd), or "-" for standard input
    #[arg(value_name = "FILE|-")]
    file: String,

    /// Name for the new image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,

    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
    /// ONBUILD, USER, VOLUME, WORKDIR)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,

    /// Comment for the image's history (default "Imported from -")
    #[arg(short, long)]
    message: Option<String>,

    /// Platform of the image, os/arch[/variant] [default: the host's]
    #[arg(long)]
    platform: Option<String>,

    /// How to compress the layer
    #[arg(long, value_enum, default_value = "gzip")]
    compression: LayerCompression,
}

/// An archive error for the user: the sentence, then the hint on its own line.
fn user_error(err: ArchiveError) -> anyhow::Error {
    match err.hint() {
        Some(hint) => anyhow!("{err}\nhint: {hint}"),
        None => anyhow!("{err}"),
    }
}

fn open_store(global: &Global) -> anyhow::Result<Store> {
    Store::open(&global.root)
        .with_context(|| format!("opening the store at {}", global.root.display()))
}

pub fn save(args: SaveArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        SaveFormat::Docker => Format::Docker,
        SaveFormat::Oci => Format::Oci,
    };
    let store = open_store(global)?;
    match args.output.as_deref() {
        Some(path) if path != Path::new("-") => {
            // Written beside the target and renamed at the end: a failed save leaves no
            // half archive under the name asked for.
            let dir = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            let mut temp = tempfile::Builder::new()
                .prefix(".distill-save-")
                .tempfile_in(dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            let out = io::BufWriter::with_capacity(256 * 1024, temp.as_file_mut());
            distill_archive::save_from(&store, &args.images, format, out).map_err(user_error)?;
            // A temporary file is private (0600); the archive gets the usual 0644.
            temp.as_file()
                .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .with_context(|| format!("writing {}", path.display()))?;
            temp.as_file()
                .sync_all()
                .with_context(|| format!("writing {}", path.display()))?;
            temp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        _ => {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                bail!(
                    "refusing to write an image archive to a terminal\n\
                     hint: use -o FILE, or redirect standard output"
                );
            }
            let out = io::BufWriter::with_capacity(256 * 1024, stdout.lock());
            distill_archive::save_from(&store, &args.images, format, out).map_err(user_error)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn load(args: LoadArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let images = match args.input.as_deref() {
        Some(path) if path != Path::new("-") => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            distill_archive::load_into(&store, file, &path.display().to_string())
        }
        _ => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                bail!(
                    "no archive to load: standard input is a terminal\n\
                     hint: use -i FILE, or redirect standard input"
                );
            }
            distill_archive::load_into(&store, stdin.lock(), "standard input")
        }
    }
    .map_err(user_error)?;
    if !args.quiet {
        let mut out = io::stdout().lock();
        for image in &images {
            if image.references.is_empty() {
                writeln!(out, "Loaded image ID: {}", image.id)?;
            }
            for reference in &image.references {
                writeln!(out, "Loaded image: {}", reference.familiar())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn import(args: ImportArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let reference = args
        .reference
        .as_deref()
        .map(|text| {
            let reference = Reference::parse_normalized(text)
                .with_context(|| format!("invalid reference {text:?}"))?;
            if reference.digest().is_some() {
                bail!(
                    "invalid reference {text:?}: an imported image is named by a tag, not a digest"
                );
            }
            Ok(reference)
        })
        .transpose()?;
    let platform = match args.platform.as_deref() {
        Some(text) => {
            Platform::parse(text).with_context(|| format!("invalid platform {text:?}"))?
        }
        None => Platform::host(),
    };
    let options = ImportOptions {
        changes: args.changes,
        message: args.message,
        platform,
        created: creation_time().map_err(user_error)?,
    };
    let compression = match args.compression {
        LayerCompression::Gzip => Compression::gzip(),
        LayerCompression::Zstd => Compression::zstd(),
        LayerCompression::None => Compression::None,
    };
    let store = open_store(global)?;
    let imported = if args.file == "-" {
        distill_archive::import_into(
            &store,
            io::stdin().lock(),
            "standard input",
            reference.as_ref(),
            &options,
            compression,
        )
    } else {
        let file = File::open(&args.file).with_context(|| format!("opening {}", args.file))?;
        distill_archive::import_into(
            &store,
            file,
            &args.file,
            reference.as_ref(),
            &options,
            compression,
        )
    }
    .map_err(user_error)?;
    println!("{}", imported.id);
    Ok(ExitCode::SUCCESS)
}
