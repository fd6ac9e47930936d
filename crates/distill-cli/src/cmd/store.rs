//! The local image store commands, with Docker's look and flags: `images`, `tag`, `rmi`,
//! `inspect`, `history`, `df`, `prune`, `builder prune`. Everything they do is
//! `distill-store`'s; this module parses flags and prints tables the way the docker CLI does
//! (go-units sizes and durations, tabwriter columns). Image and layer sizes are Docker's:
//! the layers' unpacked files ([`Store::image_size`]), not the compressed blobs.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{ArgAction, Args, Subcommand, ValueEnum};
use distill_image::{Digest, Reference};
use distill_store::{BuildCachePruneOptions, Image, PruneOptions, Removal, Store};
use serde_json::{json, Map, Value};

use crate::global::Global;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// List images (like `docker images`)
    Images(ImagesArgs),
    /// Create a tag TARGET that refers to SOURCE (like `docker tag`)
    Tag(TagArgs),
    /// Remove one or more images (like `docker rmi`)
    Rmi(RmiArgs),
    /// Show details of one or more images as JSON (like `docker image inspect`)
    Inspect(InspectArgs),
    /// Show the history of an image (like `docker history`)
    History(HistoryArgs),
    /// Show the store's disk usage (like `docker system df`)
    Df(DfArgs),
    /// Remove unreferenced content and leftovers of interrupted writes (like `docker image prune`)
    Prune(PruneArgs),
    /// Manage the build cache (like `docker builder`)
    #[command(subcommand)]
    Builder(BuilderCommand),
}

#[derive(Subcommand)]
pub enum BuilderCommand {
    /// Remove build cache (like `docker builder prune`)
    Prune(BuilderPruneArgs),
}

/// `table` (the default) or `json` (one object per line, as `docker --format json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args)]
pub struct ImagesArgs {
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    filter: Option<String>,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// A table, or one JSON object per line
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Remove an image referenced in several repositories by ID
    #[arg(short, long)]
    force: bool,
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = ArgAction::Set)]
    human: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// A table, or one JSON object per line
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[arg(value_name = "IMAGE")]
    image: String,
}

#[derive(Args)]
pub struct DfArgs {
    /// Show per-image shared and unique sizes
    #[arg(short, long)]
    verbose: bool,
    /// A table, or one JSON object per line
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Args)]
pub struct BuilderPruneArgs {
    /// Remove all build cache, not just what no image uses
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (`until=DURATION`: only cache unused for that long, e.g. 24h)
    #[arg(long, value_name = "FILTER")]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Amount of disk space to keep for cache (e.g. 512MB, 10GB; binary units like Docker's)
    #[arg(long, value_name = "BYTES")]
    keep_storage: Option<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Also remove images without a name (`<none>:<none>`)
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn run(command: StoreCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let store = Store::open(&global.root)
        .with_context(|| format!("opening the image store at {}", global.root.display()))?;
    let mut out = std::io::stdout().lock();
    match command {
        StoreCommand::Images(args) => images(&store, args, &mut out)?,
        StoreCommand::Tag(args) => {
            store.tag(&args.source, &args.target)?;
        }
        StoreCommand::Rmi(args) => {
            let texts: Vec<&str> = args.images.iter().map(String::as_str).collect();
            for event in store.remove_images(&texts, args.force)? {
                match event {
                    Removal::Untagged(name) => writeln!(out, "Untagged: {}", name.familiar())?,
                    Removal::Deleted(id) => writeln!(out, "Deleted: {id}")?,
                }
            }
        }
        StoreCommand::Inspect(args) => return inspect(&store, args, &mut out),
        StoreCommand::History(args) => history(&store, args, &mut out)?,
        StoreCommand::Df(args) => df(&store, args, &mut out)?,
        StoreCommand::Prune(args) => prune(&store, args, &mut out)?,
        StoreCommand::Builder(BuilderCommand::Prune(args)) => {
            builder_prune(&store, args, &mut out)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---- images ----

/// One line of `images`: an image under one of its names (or `<none>`).
struct ImageRow {
    repository: String,
    tag: String,
    digest: String,
    id: Digest,
    created: Option<i64>,
    size: u64,
}

fn images(store: &Store, args: ImagesArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let filter = args
        .filter
        .as_deref()
        .map(Reference::parse_normalized_name)
        .transpose()?;
    let _lease = store.lease()?;
    let mut rows = Vec::new();
    for record in store.images()? {
        let image = match store.image(&record) {
            Ok(image) => image,
            Err(err) => {
                // One damaged image must not hide the others; prune or rmi can clean it.
                eprintln!("warning: skipping image {}: {err}", record.target.digest);
                continue;
            }
        };
        let row = |repository: String, tag: String| ImageRow {
            repository,
            tag,
            digest: record.target.digest.to_string(),
            id: image.id().clone(),
            created: image.created().map(|t| t.unix_timestamp()),
            size: store.image_size(&image),
        };
        if record.names.is_empty() {
            if filter.is_none() {
                rows.push(row("<none>".into(), "<none>".into()));
            }
            continue;
        }
        for name in &record.names {
            if let Some(filter) = &filter {
                let tag_ok = filter.tag().is_none() || filter.tag() == name.tag();
                if filter.name() != name.name() || !tag_ok {
                    continue;
                }
            }
            rows.push(row(
                name.familiar_name(),
                name.tag().unwrap_or("<none>").to_string(),
            ));
        }
    }
    rows.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.repository.cmp(&b.repository))
            .then_with(|| a.tag.cmp(&b.tag))
    });
    let now = now_unix();
    let id_text = |id: &Digest| {
        if args.no_trunc {
            id.to_string()
        } else {
            id.short().to_string()
        }
    };
    if args.quiet {
        let mut seen = BTreeSet::new();
        for row in &rows {
            if seen.insert(row.id.clone()) {
                writeln!(out, "{}", id_text(&row.id))?;
            }
        }
        return Ok(());
    }
    if args.format == Format::Json {
        for row in &rows {
            let size = human_size(row.size, 3);
            let object = json!({
                "Containers": "N/A",
                "CreatedAt": row.created.map_or_else(|| "N/A".to_string(), go_time_string),
                "CreatedSince": created_since(row.created, now),
                "Digest": row.digest,
                "ID": id_text(&row.id),
                "Repository": row.repository,
                "SharedSize": "N/A",
                "Size": size,
                "Tag": row.tag,
                "UniqueSize": "N/A",
                "VirtualSize": size,
            });
            writeln!(out, "{object}")?;
        }
        return Ok(());
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut table = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for row in &rows {
        let mut cells = vec![row.repository.clone(), row.tag.clone()];
        if args.digests {
            cells.push(row.digest.clone());
        }
        cells.extend([
            id_text(&row.id),
            created_since(row.created, now),
            human_size(row.size, 3),
        ]);
        table.push(cells);
    }
    out.write_all(tabulate(&table).as_bytes())?;
    Ok(())
}

// ---- inspect ----

fn inspect(store: &Store, args: InspectArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let _lease = store.lease()?;
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for text in &args.images {
        match store.find(text).and_then(|record| store.image(&record)) {
            Ok(image) => objects.push(inspect_object(&image, store.image_size(&image))),
            Err(err) => errors.push(err),
        }
    }
    out.write_all(&pretty_json(&Value::Array(objects))?)?;
    writeln!(out)?;
    if errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for err in &errors {
        eprintln!("error: {err}");
    }
    Ok(ExitCode::FAILURE)
}

/// The shape of `docker image inspect`; `size` is the image's unpacked size.
fn inspect_object(image: &Image, size: u64) -> Value {
    let config = &image.config;
    let repo_tags: Vec<String> = image.record.names.iter().map(Reference::familiar).collect();
    let repositories: BTreeSet<String> = image
        .record
        .names
        .iter()
        .map(Reference::familiar_name)
        .collect();
    let repo_digests: Vec<String> = repositories
        .iter()
        .map(|repo| format!("{repo}@{}", image.record.target.digest))
        .collect();
    let mut object = Map::new();
    object.insert("Id".into(), json!(image.id().to_string()));
    object.insert("RepoTags".into(), json!(repo_tags));
    object.insert("RepoDigests".into(), json!(repo_digests));
    object.insert("Parent".into(), json!(""));
    object.insert(
        "Comment".into(),
        json!(config
            .extra
            .get("comment")
            .and_then(Value::as_str)
            .unwrap_or("")),
    );
    object.insert(
        "Created".into(),
        json!(config.created.clone().unwrap_or_default()),
    );
    object.insert(
        "DockerVersion".into(),
        json!(config
            .extra
            .get("docker_version")
            .and_then(Value::as_str)
            .unwrap_or("")),
    );
    object.insert(
        "Author".into(),
        json!(config.author.clone().unwrap_or_default()),
    );
    object.insert(
        "Config".into(),
        docker_container_config(config.config.as_ref()),
    );
    object.insert("Architecture".into(), json!(config.architecture));
    if let Some(variant) = &config.variant {
        object.insert("Variant".into(), json!(variant));
    }
    object.insert("Os".into(), json!(config.os));
    if let Some(version) = &config.os_version {
        object.insert("OsVersion".into(), json!(version));
    }
    object.insert("Size".into(), json!(size));
    object.insert(
        "RootFS".into(),
        json!({"Type": config.rootfs.kind, "Layers": config.rootfs.diff_ids}),
    );
    object.insert(
        "Metadata".into(),
        json!({"LastTagTime": rfc3339(image.record.added.unix_timestamp())}),
    );
    object.insert(
        "Descriptor".into(),
        serde_json::to_value(&image.record.target).unwrap_or(Value::Null),
    );
    Value::Object(object)
}

/// The image's runtime config in the shape of Docker's `container.Config`: every field Docker
/// always prints, in its order, with its zero values; optional ones only when set; fields we do
/// not know at the end.
fn docker_container_config(config: Option<&distill_image::RuntimeConfig>) -> Value {
    let mut given = match config.map(serde_json::to_value) {
        Some(Ok(Value::Object(map))) => map,
        _ => Map::new(),
    };
    // (field, zero value; `None` for fields Docker omits when empty)
    let fields: [(&str, Option<Value>); 25] = [
        ("Hostname", Some(json!(""))),
        ("Domainname", Some(json!(""))),
        ("User", Some(json!(""))),
        ("AttachStdin", Some(json!(false))),
        ("AttachStdout", Some(json!(false))),
        ("AttachStderr", Some(json!(false))),
        ("ExposedPorts", None),
        ("Tty", Some(json!(false))),
        ("OpenStdin", Some(json!(false))),
        ("StdinOnce", Some(json!(false))),
        ("Env", Some(Value::Null)),
        ("Cmd", Some(Value::Null)),
        ("Healthcheck", None),
        ("ArgsEscaped", None),
        ("Image", Some(json!(""))),
        ("Volumes", Some(Value::Null)),
        ("WorkingDir", Some(json!(""))),
        ("Entrypoint", Some(Value::Null)),
        ("NetworkDisabled", None),
        ("MacAddress", None),
        ("OnBuild", Some(Value::Null)),
        ("Labels", Some(Value::Null)),
        ("StopSignal", None),
        ("StopTimeout", None),
        ("Shell", None),
    ];
    let mut shaped = Map::new();
    for (field, zero) in fields {
        match (given.remove(field), zero) {
            (Some(value), _) => {
                shaped.insert(field.to_string(), value);
            }
            (None, Some(zero)) => {
                shaped.insert(field.to_string(), zero);
            }
            (None, None) => {}
        }
    }
    shaped.extend(given);
    Value::Object(shaped)
}

// ---- history ----

fn history(store: &Store, args: HistoryArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let _lease = store.lease()?;
    let image = store.image(&store.find(&args.image)?)?;
    let now = now_unix();
    // Steps that made a layer take the layers in order, each with its unpacked size.
    let mut layers = image
        .manifest
        .layers
        .iter()
        .enumerate()
        .map(
            |(index, layer)| match image.config.rootfs.diff_ids.get(index) {
                Some(diff_id) => store.unpacked_size(layer, diff_id).unwrap_or(layer.size),
                None => layer.size,
            },
        );
    let mut entries: Vec<(Option<i64>, String, u64, String)> = Vec::new();
    for step in &image.config.history {
        let size = if step.empty_layer {
            0
        } else {
            layers.next().unwrap_or(0)
        };
        let created = step
            .created
            .as_deref()
            .and_then(distill_store::parse_rfc3339);
        entries.push((
            created,
            step.created_by.clone().unwrap_or_default(),
            size,
            step.comment.clone().unwrap_or_default(),
        ));
    }
    entries.reverse();
    let top_id = if args.no_trunc {
        image.id().to_string()
    } else {
        image.id().short().to_string()
    };
    let id_of = |index: usize| {
        if index == 0 {
            top_id.clone()
        } else {
            "<missing>".to_string()
        }
    };
    if args.quiet {
        for index in 0..entries.len() {
            writeln!(out, "{}", id_of(index))?;
        }
        return Ok(());
    }
    let created_text = |created: Option<i64>| match (args.human, created) {
        (true, _) => created_since(created, now),
        (false, Some(t)) => rfc3339(t),
        (false, None) => "N/A".to_string(),
    };
    let size_text = |size: u64| {
        if args.human {
            human_size(size, 3)
        } else {
            size.to_string()
        }
    };
    let created_by_text = |text: &str| {
        let text = text.replace('\t', " ");
        if args.no_trunc {
            text
        } else {
            ellipsis(&text, 45)
        }
    };
    if args.format == Format::Json {
        for (index, (created, created_by, size, comment)) in entries.iter().enumerate() {
            let object = json!({
                "Comment": comment,
                "CreatedAt": created.map_or_else(|| "N/A".to_string(), rfc3339),
                "CreatedBy": created_by_text(created_by),
                "CreatedSince": created_since(*created, now),
                "ID": id_of(index),
                "Size": size_text(*size),
            });
            writeln!(out, "{object}")?;
        }
        return Ok(());
    }
    let mut table = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
        .map(String::from)
        .to_vec()];
    for (index, (created, created_by, size, comment)) in entries.iter().enumerate() {
        table.push(vec![
            id_of(index),
            created_text(*created),
            created_by_text(created_by),
            size_text(*size),
            comment.clone(),
        ]);
    }
    out.write_all(tabulate(&table).as_bytes())?;
    Ok(())
}

// ---- df ----

fn df(store: &Store, args: DfArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let usage = store.disk_usage()?;
    // Images as Docker counts them (unpacked layers), then what distill keeps on disk besides
    // (compressed blobs, unpacked snapshots), then the build cache as Docker shows it: only
    // what no image also uses, all of it reclaimable by `builder prune -a`.
    let rows = [
        (
            "Images",
            usage.image_layers.total,
            usage.image_layers.active,
            usage.image_layers.size,
            Some(usage.image_layers.reclaimable),
        ),
        (
            "Blobs",
            usage.blobs.total,
            usage.blobs.active,
            usage.blobs.size,
            Some(usage.blobs.reclaimable),
        ),
        (
            "Layer Snapshots",
            usage.snapshots.total,
            usage.snapshots.active,
            usage.snapshots.size,
            Some(usage.snapshots.reclaimable),
        ),
        (
            "Build Cache",
            usage.build_cache.total,
            0,
            usage.build_cache.size,
            None,
        ),
    ];
    let reclaimable_text = |size: u64, reclaimable: Option<u64>| match reclaimable {
        Some(r) if size > 0 => format!("{} ({}%)", human_size(r, 4), r * 100 / size),
        Some(r) => format!("{} (0%)", human_size(r, 4)),
        None => human_size(size, 4),
    };
    if args.format == Format::Json {
        for (kind, total, active, size, reclaimable) in rows {
            let object = json!({
                "Active": active.to_string(),
                "Reclaimable": reclaimable_text(size, reclaimable),
                "Size": human_size(size, 4),
                "TotalCount": total.to_string(),
                "Type": kind,
            });
            writeln!(out, "{object}")?;
        }
        return Ok(());
    }
    let mut table = vec![["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        .map(String::from)
        .to_vec()];
    for (kind, total, active, size, reclaimable) in rows {
        table.push(vec![
            kind.to_string(),
            total.to_string(),
            active.to_string(),
            human_size(size, 4),
            reclaimable_text(size, reclaimable),
        ]);
    }
    out.write_all(tabulate(&table).as_bytes())?;
    if args.verbose {
        let now = now_unix();
        writeln!(out, "\nImages space usage:\n")?;
        let mut table = vec![[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
        ]
        .map(String::from)
        .to_vec()];
        for image in &usage.images {
            let id = image
                .id
                .as_ref()
                .map_or_else(|| "<unreadable>".to_string(), |id| id.short().to_string());
            let created = created_since(image.created.map(|t| t.unix_timestamp()), now);
            let names: Vec<(String, String)> = if image.record.names.is_empty() {
                vec![("<none>".into(), "<none>".into())]
            } else {
                image
                    .record
                    .names
                    .iter()
                    .map(|n| (n.familiar_name(), n.tag().unwrap_or("<none>").to_string()))
                    .collect()
            };
            for (repository, tag) in names {
                table.push(vec![
                    repository,
                    tag,
                    id.clone(),
                    created.clone(),
                    human_size(image.size, 4),
                    human_size(image.shared, 4),
                    human_size(image.unique, 4),
                ]);
            }
        }
        out.write_all(tabulate(&table).as_bytes())?;
        writeln!(
            out,
            "\nBuild cache usage: {}\n",
            human_size(usage.build_cache.size, 4)
        )?;
        // Docker's columns but USAGE: distill does not count a record's uses.
        let mut table = vec![[
            "CACHE ID",
            "CACHE TYPE",
            "SIZE",
            "CREATED",
            "LAST USED",
            "SHARED",
        ]
        .map(String::from)
        .to_vec()];
        for entry in store.build_cache()? {
            // Hashes cut to 12 characters as Docker cuts IDs; a mount keeps its name.
            let is_hash = entry.id.len() == 64 && entry.id.bytes().all(|b| b.is_ascii_hexdigit());
            let id = if is_hash {
                entry.id[..12].to_string()
            } else {
                entry.id.clone()
            };
            table.push(vec![
                id,
                entry.kind.to_string(),
                human_size(entry.size, 4),
                created_since(entry.created, now),
                created_since(Some(entry.last_used), now),
                entry.shared.to_string(),
            ]);
        }
        out.write_all(tabulate(&table).as_bytes())?;
    }
    Ok(())
}

// ---- prune ----

fn prune(store: &Store, args: PruneArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if !args.force {
        let what = if args.all {
            "images without a name, unreferenced content and leftovers of interrupted writes"
        } else {
            "unreferenced content and leftovers of interrupted writes"
        };
        confirm(
            out,
            &format!("WARNING! This will remove {what}.\nAre you sure you want to continue?"),
        )?;
    }
    let report = store.prune(PruneOptions {
        untagged_images: args.all,
    })?;
    let deleted: Vec<String> = report
        .deleted_images
        .iter()
        .map(|digest| format!("deleted: {digest}"))
        .collect();
    print_deleted(out, "Deleted Images:", &deleted, report.reclaimed_bytes)
}

/// Asks `question` with Docker's `[y/N]`; anything but yes cancels.
fn confirm(out: &mut impl Write, question: &str) -> anyhow::Result<()> {
    write!(out, "{question} [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
        bail!("prune cancelled");
    }
    Ok(())
}

/// A prune's report as Docker prints it: the deleted objects under `heading` (nothing when
/// none), then the reclaimed space.
fn print_deleted(
    out: &mut impl Write,
    heading: &str,
    deleted: &[String],
    reclaimed_bytes: u64,
) -> anyhow::Result<()> {
    if !deleted.is_empty() {
        writeln!(out, "{heading}")?;
        for line in deleted {
            writeln!(out, "{line}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        human_size(reclaimed_bytes, 4)
    )?;
    Ok(())
}

// ---- builder prune ----

fn builder_prune(
    store: &Store,
    args: BuilderPruneArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut options = BuildCachePruneOptions {
        all: args.all,
        ..BuildCachePruneOptions::default()
    };
    for filter in &args.filter {
        let (key, value) = filter
            .split_once('=')
            .with_context(|| format!("bad format of filter {filter:?}: expected key=value"))?;
        match key {
            "until" => {
                let nanos = distill_golang::time::parse_duration(value)
                    .map_err(|err| anyhow::anyhow!("--filter until={value}: {err}"))?;
                let nanos = u64::try_from(nanos).with_context(|| {
                    format!("--filter until={value}: a duration cannot be negative")
                })?;
                options.unused_for = Some(std::time::Duration::from_nanos(nanos));
            }
            _ => bail!("invalid filter {key:?}: builder prune accepts until=DURATION"),
        }
    }
    if let Some(text) = &args.keep_storage {
        options.keep_bytes = Some(ram_in_bytes(text).with_context(|| {
            format!("--keep-storage {text:?}: expected a size such as 512MB or 10GB")
        })?);
    }
    if !args.force {
        let what = if args.all {
            "all build cache"
        } else {
            "all dangling build cache"
        };
        confirm(
            out,
            &format!("WARNING! This will remove {what}. Are you sure you want to continue?"),
        )?;
    }
    let report = store.prune_build_cache(options)?;
    let deleted: Vec<String> = report.deleted.iter().map(|id| id.to_string()).collect();
    print_deleted(
        out,
        "Deleted build cache objects:",
        &deleted,
        report.reclaimed_bytes,
    )
}

/// go-units `RAMInBytes`, as `docker builder prune --keep-storage` reads its value: a number
/// (fractions allowed), an optional space, an optional unit k, m, g, t or p in any case
/// (powers of 1024), optionally followed by `i` and `b`/`B`.
fn ram_in_bytes(text: &str) -> Option<u64> {
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    // `\d+(\.\d+)?`: Go's pattern allows more dotted groups, which its ParseFloat refuses.
    let mut groups = number.split('.');
    let well_formed = groups.next().is_some_and(|g| !g.is_empty())
        && groups.next().is_none_or(|g| !g.is_empty())
        && groups.next().is_none();
    if !well_formed {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let (power, suffix) = match unit.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => ("kmgtp".find(c)? as i32 + 1, &unit[1..]),
        _ => (0, unit.as_str()),
    };
    if !matches!(suffix, "" | "i" | "b" | "ib") {
        return None;
    }
    let bytes = value * 1024f64.powi(power);
    (bytes < u64::MAX as f64).then_some(bytes as u64)
}

// ---- docker's formatting ----

/// Columns like Go's tabwriter as the docker CLI sets it up (min width 10, padding 3); the
/// last column is not padded.
fn tabulate(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count() + 3).max(10);
        }
    }
    let mut text = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count();
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push('\n');
    }
    text
}

/// go-units `HumanSizeWithPrecision`: decimal units, `precision` significant digits, Go's `%g`.
fn human_size(size: u64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_format_g(value, precision), UNITS[unit])
}

/// Go's `strconv.FormatFloat(value, 'g', precision, 64)` for non-negative values.
fn go_format_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let precision = precision.max(1);
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |digits: &str| -> String {
        if digits.contains('.') {
            digits
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        } else {
            digits.to_string()
        }
    };
    if exponent < -4 || exponent >= precision as i32 {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exponent.abs());
    }
    let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
    trim(&format!("{value:.decimals$}"))
}

/// go-units `HumanDuration`.
fn human_duration(seconds: i64) -> String {
    let hours_rounded = (seconds as f64 / 3600.0 + 0.5) as i64;
    let minutes = seconds / 60;
    match seconds {
        s if s < 1 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".to_string(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours_rounded == 1 => "About an hour".to_string(),
        _ if hours_rounded < 48 => format!("{hours_rounded} hours"),
        _ if hours_rounded < 24 * 7 * 2 => format!("{} days", hours_rounded / 24),
        _ if hours_rounded < 24 * 30 * 2 => format!("{} weeks", hours_rounded / 24 / 7),
        _ if hours_rounded < 24 * 365 * 2 => format!("{} months", hours_rounded / 24 / 30),
        s => format!("{} years", s / 3600 / 24 / 365),
    }
}

fn created_since(created: Option<i64>, now: i64) -> String {
    match created {
        Some(t) => format!("{} ago", human_duration(now - t)),
        None => "N/A".to_string(),
    }
}

/// Docker's `Created` column cuts text to a display width, ending with `…`.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs / 3600, secs / 60 % 60, secs % 60)
}

/// `2024-01-02T03:04:05Z`.
fn rfc3339(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Go's `time.Time.String()` in UTC: `2024-01-02 03:04:05 +0000 UTC`.
fn go_time_string(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

/// JSON indented by four spaces, as `docker inspect` prints it.
fn pretty_json(value: &Value) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    serde::Serialize::serialize(value, &mut serializer)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        let cases = [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (1234, "1.23kB"),
            (16_430_000, "16.4MB"),
            (7_800_000, "7.8MB"),
            (100_000_000, "100MB"),
            (999_600, "1e+03kB"),
            (1_000_000_000_000, "1TB"),
        ];
        for (size, text) in cases {
            assert_eq!(human_size(size, 3), text, "{size}");
        }
        assert_eq!(human_size(1_234_500, 4), "1.234MB");
        assert_eq!(human_size(1_234_560, 4), "1.235MB");
    }

    #[test]
    fn keep_storage_like_go_units() {
        let cases = [
            ("0", Some(0)),
            ("512", Some(512)),
            ("1k", Some(1024)),
            ("1kb", Some(1024)),
            ("1KiB", Some(1024)),
            ("1.5 MB", Some(1_572_864)),
            ("10GB", Some(10 << 30)),
            ("2t", Some(2 << 40)),
            ("", None),
            ("MB", None),
            ("1.2.3MB", None),
            ("1x", None),
            ("1MBB", None),
            ("-1MB", None),
        ];
        for (text, bytes) in cases {
            assert_eq!(ram_in_bytes(text), bytes, "{text:?}");
        }
    }

    #[test]
    fn durations_like_go_units() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (13 * 86_400, "13 days"),
            (14 * 86_400, "2 weeks"),
            (59 * 86_400, "8 weeks"),
            (60 * 86_400, "2 months"),
            (729 * 86_400, "24 months"),
            (730 * 86_400, "2 years"),
        ];
        for (seconds, text) in cases {
            assert_eq!(human_duration(seconds), text, "{seconds}");
        }
    }

    #[test]
    fn tables_pad_like_tabwriter() {
        let rows = vec![
            vec![
                "REPOSITORY".to_string(),
                "TAG".to_string(),
                "SIZE".to_string(),
            ],
            vec!["a".to_string(), "latest".to_string(), "1kB".to_string()],
        ];
        assert_eq!(
            tabulate(&rows),
            "REPOSITORY   TAG       SIZE\na            latest    1kB\n"
        );
    }

    #[test]
    fn dates_and_ellipsis() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_164_645), "2024-01-02T03:04:05Z");
        assert_eq!(go_time_string(951_782_400), "2000-02-29 00:00:00 +0000 UTC");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abcd", 4), "abcd");
    }
}
