//! The build engine: replays each reachable stage of a [`Plan`] instruction by instruction,
//! stages in parallel where they do not depend on each other (through the solver's
//! [`run_graph`]), every filesystem step behind a cache key.
//!
//! A stage's state is its image config (what metadata instructions write, exactly as
//! BuildKit's `dockerfile2llb` does, history included), its layers, its build variables and
//! the cache key of its file system. Keys chain over the steps that change files (COPY, ADD,
//! RUN, WORKDIR): each is the parent's key, the step's canonical form after expansion and the
//! content hashes of what it reads, so metadata instructions never invalidate later steps,
//! and a changed build arg misses from the first RUN whose environment holds it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use distill_context::Matcher;
use distill_frontend::Source;
use distill_image::{media_type, Digest, HealthConfig, History, ImageConfig, RuntimeConfig};
use distill_layer::{Compression, ExtractOptions, LayerWriter, Owners, TreeOptions};
use distill_plan::{
    exposed_ports, parse_chmod, Base, Chmod, Command, CommandLine, Healthcheck, Input, Instruction,
    MountType, Network, Plan, Stage, Vars,
};
use distill_sandbox::{
    ExitStatus, IdMapping, LastLines, Mount, MountKind, NetworkMode, OutputSink, Sandbox,
    SandboxSpec, Snapshotter, Stdio, Stream,
};
use distill_solver::{run_graph, CacheKey, GraphError, KeyBuilder, LogStream, StepCache};
use distill_store::{CachedLayer, StepRecord, Store};

use crate::context::ContextHashes;
use crate::copy::{clean_path, CopyRequest, InlineFile};
use crate::error::{BuildError, OrBuild, Result};
use crate::rootview::RootView;
use crate::snapshots;
use crate::users;
use crate::walkprint;
use crate::{BuildOptions, LayerRef};
use distill_golang::fmt as gofmt;

/// BuildKit's history comment for steps of a Dockerfile.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// What a stage ends with.
#[derive(Clone, Debug)]
pub struct StageOutput {
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
    pub vars: Vars,
    pub key: CacheKey,
    /// ARGs declared so far (with their values), for RUN's history.
    pub args: Vec<(String, Option<String>)>,
    /// History entries this build added (SOURCE_DATE_EPOCH redates them at export).
    pub new_history: usize,
    /// When the last layer was first built (seconds since the epoch): a cached step keeps
    /// the time of its cache record, as BuildKit's does, so a cached rebuild is identical.
    pub layer_created: i64,
}

// What the step cache records for a key is the store's `StepRecord`: the store's garbage
// collection reads these records to keep their layers.
impl From<CachedLayer> for LayerRef {
    fn from(layer: CachedLayer) -> LayerRef {
        LayerRef {
            digest: layer.digest,
            diff_id: layer.diff_id,
            size: layer.size,
            media_type: layer.media_type,
        }
    }
}

impl From<&LayerRef> for CachedLayer {
    fn from(layer: &LayerRef) -> CachedLayer {
        CachedLayer {
            digest: layer.digest.clone(),
            diff_id: layer.diff_id.clone(),
            size: layer.size,
            media_type: layer.media_type.clone(),
        }
    }
}

/// Shared by every stage of one build.
pub(crate) struct Engine<'a> {
    pub options: &'a BuildOptions,
    pub plan: &'a Plan,
    cache: StepCache,
    context: RootView,
    ignore: Matcher,
    hashes: Mutex<ContextHashes>,
    sandbox: OnceLock<std::result::Result<(Sandbox, Snapshotter), String>>,
    /// Seconds since the epoch the build started (or SOURCE_DATE_EPOCH).
    pub now: i64,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

fn digest_of(text: &distill_layer::Sha256Digest) -> Result<Digest> {
    Digest::parse(&text.to_string()).or_build(|| "a layer digest")
}

impl<'a> Engine<'a> {
    pub fn new(options: &'a BuildOptions, plan: &'a Plan, ignore: Matcher) -> Result<Engine<'a>> {
        let cache = StepCache::open(options.store.step_records_dir())
            .or_build(|| "opening the build cache")?;
        let hashes = ContextHashes::load(&options.store, &options.context_dir);
        let now = options.source_date_epoch.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        Ok(Engine {
            options,
            plan,
            cache,
            // Canonical, so remembered hashes are found whatever the working directory.
            context: RootView::of_dir(
                fs::canonicalize(&options.context_dir)
                    .unwrap_or_else(|_| options.context_dir.clone()),
            ),
            ignore,
            hashes: Mutex::new(hashes),
            sandbox: OnceLock::new(),
            now,
        })
    }

    pub fn save_hashes(&self) {
        if let Ok(hashes) = self.hashes.lock() {
            hashes.save(&self.options.store);
        }
    }

    /// The context directory on the host (canonical; the context view's only layer).
    fn context_root(&self) -> &Path {
        self.context
            .layers()
            .first()
            .map_or(Path::new(""), PathBuf::as_path)
    }

    fn store(&self) -> &Store {
        &self.options.store
    }

    fn source(&self) -> &Source {
        &self.plan.source
    }

    /// Runs every reachable stage, returns the target's output.
    pub fn run(&self) -> Result<StageOutput> {
        let order = &self.plan.build_order;
        let position = |stage: usize| order.iter().position(|&s| s == stage);
        let mut jobs: Vec<Vec<usize>> = Vec::with_capacity(order.len());
        for &index in order {
            let stage = &self.plan.stages[index];
            let mut deps = Vec::new();
            if let Base::Stage(parent) = stage.base {
                deps.extend(position(parent));
            }
            for dependency in &stage.dependencies {
                if let Input::Stage(other) = dependency.input {
                    if let Some(p) = position(other) {
                        if !deps.contains(&p) {
                            deps.push(p);
                        }
                    }
                }
            }
            jobs.push(deps);
        }
        let results = run_graph(
            &jobs,
            &self.options.cancel,
            |job, inputs: &[Arc<StageOutput>]| {
                let stage = &self.plan.stages[order[job]];
                let mut done: BTreeMap<usize, Arc<StageOutput>> = BTreeMap::new();
                for (&dep, output) in jobs[job].iter().zip(inputs) {
                    done.insert(order[dep], output.clone());
                }
                self.build_stage(stage, &done)
            },
        );
        let results = match results {
            Ok(results) => results,
            Err(GraphError::Job(error)) => return Err(error),
            Err(GraphError::Cancelled) => return Err(BuildError::Cancelled),
            Err(GraphError::Invalid(why)) => return Err(BuildError::message(why)),
        };
        let target = position(self.plan.target)
            .ok_or_else(|| BuildError::message("the target stage is not in the build order"))?;
        Ok((*results[target]).clone())
    }

    fn check_cancel(&self) -> Result<()> {
        if self.options.cancel.is_cancelled() {
            Err(BuildError::Cancelled)
        } else {
            Ok(())
        }
    }

    // ---- stages ----

    fn build_stage(
        &self,
        stage: &Stage,
        done: &BTreeMap<usize, Arc<StageOutput>>,
    ) -> Result<StageOutput> {
        self.check_cancel()?;
        let name = if self.plan.build_order.len() > 1 || self.plan.stages.len() > 1 {
            Some(stage.display_name())
        } else {
            None
        };
        let steps = stage
            .triggers
            .iter()
            .chain(&stage.instructions)
            .filter(|i| counts_as_step(i))
            .count();
        let mut state = match &stage.base {
            Base::Scratch => self.scratch(stage),
            Base::Stage(parent) => {
                let parent = done.get(parent).ok_or_else(|| {
                    BuildError::message(format!("stage {parent} was not built before use"))
                })?;
                let mut output = (**parent).clone();
                if let Some(config) = output.config.config.as_mut() {
                    config.on_build = None;
                }
                output.new_history = 0;
                output
            }
            Base::Image(reference) => self
                .image_base(reference)
                .map_err(|e| e.placed(self.source(), stage.from.pos))?,
        };
        let mut counter = StepCounter {
            stage: name,
            index: 0,
            total: steps + usize::from(matches!(stage.base, Base::Image(_))),
        };
        if let Base::Image(reference) = &stage.base {
            counter.index += 1;
            self.options
                .progress
                .cached(format!("{} FROM {reference}", counter.label()));
        }
        // ONBUILD triggers of a base image run first, then those of a base stage (the plan
        // has them), then the stage's own instructions.
        let image_triggers = match &stage.base {
            Base::Image(_) => {
                let triggers = state
                    .config
                    .config
                    .as_mut()
                    .and_then(|c| c.on_build.take())
                    .unwrap_or_default();
                let mut parsed = Vec::with_capacity(triggers.len());
                for trigger in &triggers {
                    parsed.push(distill_plan::parse_trigger(trigger)?);
                }
                parsed
            }
            _ => Vec::new(),
        };
        counter.total += image_triggers.iter().filter(|i| counts_as_step(i)).count();
        let mut cmd_set = false;
        for instruction in image_triggers
            .iter()
            .chain(&stage.triggers)
            .chain(&stage.instructions)
        {
            self.check_cancel()?;
            self.step(
                stage,
                instruction,
                &mut state,
                &mut counter,
                &mut cmd_set,
                done,
            )
            .map_err(|e| e.placed(self.source(), instruction.pos))?;
        }
        Ok(state)
    }

    fn scratch(&self, stage: &Stage) -> StageOutput {
        let platform = &stage.platform;
        let config = ImageConfig {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: (!platform.variant.is_empty()).then(|| platform.variant.clone()),
            config: Some(RuntimeConfig {
                env: Some(vec![format!("PATH={}", distill_plan::DEFAULT_PATH)]),
                working_dir: Some("/".to_string()),
                ..RuntimeConfig::default()
            }),
            ..ImageConfig::default()
        };
        StageOutput {
            config,
            layers: Vec::new(),
            vars: self.plan.initial_vars::<&str>(&[]),
            key: KeyBuilder::new("scratch")
                .text("platform", &platform.to_string())
                .finish(),
            args: Vec::new(),
            new_history: 0,
            layer_created: self.now,
        }
    }

    fn image_base(&self, reference: &str) -> Result<StageOutput> {
        let store = self.store();
        let record = store.find(reference).map_err(|error| {
            BuildError::message(format!("base image {reference} is not in the store: {error}"))
                .with_hint(format!(
                    "distill does not pull from registries yet: import the image first, \
                     e.g. `docker save {reference} | distill load` or `distill import ROOTFS.tar {reference}`"
                ))
        })?;
        let image = store
            .image(&record)
            .or_build(|| format!("reading base image {reference}"))?;
        let _ = store.touch(&record.target.digest);
        let layers = snapshots::image_layers(&image)?;
        let mut config = image.config.clone();
        config.created = None;
        let runtime = config.config.get_or_insert_with(RuntimeConfig::default);
        let env = runtime.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.split('=').next() == Some("PATH")) {
            env.push(format!("PATH={}", distill_plan::DEFAULT_PATH));
        }
        let vars = self.plan.initial_vars(env);
        Ok(StageOutput {
            config,
            layers,
            vars,
            key: KeyBuilder::new("image")
                .text("manifest", &image.manifest_descriptor.digest.to_string())
                .finish(),
            args: Vec::new(),
            new_history: 0,
            layer_created: self.now,
        })
    }

    // ---- one instruction ----

    fn step(
        &self,
        stage: &Stage,
        instruction: &Instruction,
        state: &mut StageOutput,
        counter: &mut StepCounter,
        cmd_set: &mut bool,
        done: &BTreeMap<usize, Arc<StageOutput>>,
    ) -> Result<()> {
        let expanded = self.plan.step(instruction, &mut state.vars)?;
        let runtime = state
            .config
            .config
            .get_or_insert_with(RuntimeConfig::default);
        let history = |state: &mut StageOutput, created_by: String, layer: bool| {
            state.config.history.push(History {
                // Metadata steps are dated at export, from their neighbours.
                created: layer.then(|| crate::export::rfc3339(state.layer_created)),
                created_by: Some(created_by),
                author: None,
                comment: Some(HISTORY_COMMENT.to_string()),
                empty_layer: !layer,
            });
            state.new_history += 1;
        };
        match &expanded.command {
            Command::Env(pairs) => {
                let env = runtime.env.get_or_insert_with(Vec::new);
                let mut text = String::from("ENV");
                for pair in pairs {
                    let (key, value) = (&pair.key.value, &pair.value.value);
                    text.push_str(&format!(" {key}={value}"));
                    let entry = format!("{key}={value}");
                    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
                        Some(existing) => *existing = entry,
                        None => env.push(entry),
                    }
                }
                history(state, text, false);
            }
            Command::Arg(decls) => {
                let mut parts = Vec::new();
                for decl in decls {
                    let value = decl.default.as_ref().map(|w| w.value.clone());
                    parts.push(match &value {
                        Some(value) => format!("{}={value}", decl.name.value),
                        None => decl.name.value.clone(),
                    });
                    state.args.push((decl.name.value.clone(), value));
                }
                history(state, format!("ARG {}", parts.join(" ")), false);
            }
            Command::Label(pairs) => {
                let labels = runtime.labels.get_or_insert_with(BTreeMap::new);
                let mut text = String::from("LABEL");
                for pair in pairs {
                    labels.insert(pair.key.value.clone(), pair.value.value.clone());
                    text.push_str(&format!(" {}={}", pair.key.value, pair.value.value));
                }
                history(state, text, false);
            }
            Command::Expose(words) => {
                let ports = exposed_ports(self.source(), words)?;
                let exposed = runtime.exposed_ports.get_or_insert_with(BTreeMap::new);
                for port in ports {
                    exposed.insert(port, distill_image::EmptyObject {});
                }
                let words: Vec<&str> = words.iter().map(|w| w.value.as_str()).collect();
                history(state, format!("EXPOSE {}", words.join(" ")), false);
            }
            Command::User(user) => {
                runtime.user = Some(user.value.clone());
                history(state, format!("USER {}", user.value), false);
            }
            Command::Maintainer(name) => {
                state.config.author = Some(name.value.clone());
                history(state, format!("MAINTAINER {}", name.value), false);
            }
            Command::StopSignal(signal) => {
                runtime.stop_signal = Some(signal.value.clone());
                history(state, format!("STOPSIGNAL {}", signal.value), false);
            }
            Command::Shell(words) => {
                let shell: Vec<String> = words.iter().map(|w| w.value.clone()).collect();
                let text = format!("SHELL {}", gofmt::list(&shell));
                runtime.shell = Some(shell);
                history(state, text, false);
            }
            Command::Volume(paths) => {
                let volumes = runtime.volumes.get_or_insert_with(BTreeMap::new);
                let paths: Vec<String> = paths.iter().map(|w| w.value.clone()).collect();
                for path in &paths {
                    volumes.insert(path.clone(), distill_image::EmptyObject {});
                }
                history(state, format!("VOLUME {}", gofmt::list(&paths)), false);
            }
            Command::Onbuild(trigger) => {
                let text = trigger.original.trim_start().to_string();
                runtime.on_build.get_or_insert_with(Vec::new).push(text);
            }
            Command::Cmd(line) => {
                let args = with_shell(runtime, line);
                let text = format!("CMD {}", gofmt::quote_list(&args));
                runtime.cmd = Some(args);
                runtime.args_escaped = Some(true);
                *cmd_set = true;
                history(state, text, false);
            }
            Command::Entrypoint(line) => {
                let args = with_shell(runtime, line);
                let text = format!("ENTRYPOINT {}", gofmt::quote_list(&args));
                runtime.entrypoint = Some(args);
                if !*cmd_set {
                    runtime.cmd = None;
                }
                history(state, text, false);
            }
            Command::Healthcheck(check) => {
                let health = match check {
                    Healthcheck::None => HealthConfig {
                        test: vec!["NONE".to_string()],
                        ..HealthConfig::default()
                    },
                    Healthcheck::Check(check) => {
                        let mut test = Vec::new();
                        if check.command.exec_form {
                            test.push("CMD".to_string());
                            test.extend(check.command.args.iter().map(|w| w.value.clone()));
                        } else {
                            test.push("CMD-SHELL".to_string());
                            let words: Vec<&str> = check
                                .command
                                .args
                                .iter()
                                .map(|w| w.value.as_str())
                                .collect();
                            test.push(words.join(" "));
                        }
                        let nanos = |d: Option<Duration>| d.map_or(0, |d| d.as_nanos() as i64);
                        HealthConfig {
                            test,
                            interval: nanos(check.interval),
                            timeout: nanos(check.timeout),
                            start_period: nanos(check.start_period),
                            start_interval: nanos(check.start_interval),
                            retries: i64::from(check.retries.unwrap_or(0)),
                        }
                    }
                };
                let duration =
                    |nanos: i64| gofmt::duration(Duration::from_nanos(nanos.max(0) as u64));
                let text = format!(
                    "HEALTHCHECK {{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
                    gofmt::list(&health.test),
                    duration(health.interval),
                    duration(health.timeout),
                    duration(health.start_period),
                    duration(health.start_interval),
                    health.retries
                );
                runtime.healthcheck = Some(health);
                history(state, text, false);
            }
            Command::Workdir(path) => {
                let previous = runtime.working_dir.clone().unwrap_or_else(|| "/".into());
                // Docker 20.10's BuildKit records an absolute WORKDIR as written (`/app//x/`
                // stays so in the config and history) and joins a relative one to the
                // previous directory, which cleans it.
                let workdir = if path.value.starts_with('/') {
                    path.value.clone()
                } else {
                    clean_path(&format!("{previous}/{}", path.value))
                };
                runtime.working_dir = Some(workdir.clone());
                let user = runtime.user.clone().unwrap_or_default();
                let directory = clean_path(&workdir);
                if directory != "/" {
                    counter.index += 1;
                    let label = format!("{} {}", counter.label(), display(instruction));
                    self.workdir(state, &directory, &user, &label)?;
                    history(state, format!("WORKDIR {workdir}"), true);
                } else {
                    history(state, format!("WORKDIR {workdir}"), false);
                }
            }
            Command::Copy(_) | Command::Add(_) => {
                counter.index += 1;
                let label = format!("{} {}", counter.label(), display(instruction));
                let created_by = self.copy(stage, &expanded, state, &label, done)?;
                history(state, format!("{created_by} # buildkit"), true);
            }
            Command::Run(_) => {
                let host = distill_plan::Platform::host();
                if stage.platform.os != host.os || stage.platform.architecture != host.architecture
                {
                    return Err(BuildError::message(format!(
                        "RUN cannot run for platform {} on this {} machine",
                        stage.platform, host
                    ))
                    .with_hint(
                        "distill runs RUN steps natively: build for the host's platform, or use \
                         FROM --platform=$BUILDPLATFORM for stages that only prepare files",
                    ));
                }
                counter.index += 1;
                let label = format!("{} {}", counter.label(), display(instruction));
                let created_by = self.run_step(&expanded, state, &label, done)?;
                history(state, format!("{created_by} # buildkit"), true);
            }
            Command::From(_) => {
                return Err(BuildError::message("FROM inside a stage"));
            }
        }
        Ok(())
    }

    // ---- cached filesystem steps ----

    /// Looks `key` up; on a hit the layer is added and `true` returned.
    fn cached(&self, key: &CacheKey, state: &mut StageOutput, label: &str) -> bool {
        if self.options.no_cache {
            return false;
        }
        let Some(record) = self.cache.get::<StepRecord>(key) else {
            return false;
        };
        if !self.store().has_blob(&record.layer.digest) {
            self.cache.remove(key);
            return false;
        }
        self.options.progress.cached(label);
        let created = match record.created {
            Some(created) => created,
            None => {
                // Dated now, once, so the rebuilds after this one keep the same time.
                let _ = self.cache.put(
                    key,
                    &StepRecord {
                        layer: record.layer.clone(),
                        created: Some(self.now),
                    },
                );
                self.now
            }
        };
        state.layers.push(record.layer.into());
        state.key = *key;
        state.layer_created = created;
        true
    }

    /// Remembers a step just built under `key` and adds its layer to `state`.
    fn record(&self, key: &CacheKey, layer: LayerRef, state: &mut StageOutput) {
        let _ = self.cache.put(
            key,
            &StepRecord {
                layer: CachedLayer::from(&layer),
                created: Some(self.now),
            },
        );
        state.layers.push(layer);
        state.key = *key;
        state.layer_created = self.now;
    }

    /// Ends a file-system step: records the layer it built under `key`, or reports it failed.
    fn finish_step(
        &self,
        key: &CacheKey,
        built: Result<LayerRef>,
        state: &mut StageOutput,
        vertex: distill_solver::VertexProgress,
    ) -> Result<()> {
        match built {
            Ok(layer) => {
                self.record(key, layer, state);
                vertex.done();
                Ok(())
            }
            Err(error) => {
                vertex.failed(error.to_string());
                Err(error)
            }
        }
    }

    /// The view of a stage's file system (its snapshots, extracted as needed).
    pub fn view(&self, layers: &[LayerRef]) -> Result<RootView> {
        let mut dirs = Vec::with_capacity(layers.len());
        for layer in layers {
            dirs.push(self.snapshot(layer)?);
        }
        Ok(RootView::new(dirs))
    }

    /// The snapshot directory of `layer`, extracting the blob when there is none yet.
    fn snapshot(&self, layer: &LayerRef) -> Result<PathBuf> {
        snapshots::layer_snapshot(self.store(), layer)
    }

    /// Writes a layer into the store with `fill`, returns its reference.
    fn write_layer(
        &self,
        fill: impl FnOnce(&mut LayerWriter<&mut distill_store::BlobWriter>) -> Result<()>,
    ) -> Result<LayerRef> {
        let mut blob = self.store().ingest().or_build(|| "writing a layer")?;
        let descriptor = {
            let mut writer =
                LayerWriter::new(&mut blob, Compression::gzip()).or_build(|| "writing a layer")?;
            fill(&mut writer)?;
            writer.finish().or_build(|| "writing a layer")?
        };
        let (digest, size) = blob.commit().or_build(|| "storing a layer")?;
        let _ = digest_of(&descriptor.digest)?;
        let diff_id = digest_of(&descriptor.diff_id)?;
        // For `distill images`, which shows Docker's (unpacked) sizes; it can measure later.
        let _ = self
            .store()
            .record_unpacked_size(&diff_id, descriptor.unpacked_size);
        Ok(LayerRef {
            digest,
            diff_id,
            size,
            media_type: descriptor.media_type.to_string(),
        })
    }

    fn workdir(
        &self,
        state: &mut StageOutput,
        workdir: &str,
        user: &str,
        label: &str,
    ) -> Result<()> {
        let view = self.view(&state.layers)?;
        // Docker 20.10's BuildKit makes the directory as its file operations resolve `--chown`:
        // a number is uid and gid (`USER 1500` gives 1500:1500), and a name /etc/passwd or
        // /etc/group lacks is root, not an error (the next RUN is what refuses such a USER).
        let root = users::Ids { uid: 0, gid: 0 };
        let ids = if user.is_empty() {
            root
        } else {
            users::resolve(&view, user, true).unwrap_or(root)
        };
        let key = KeyBuilder::new("mkdir")
            .parent(&state.key)
            .text("path", workdir)
            .text("owner", &format!("{}:{}", ids.uid, ids.gid))
            .finish();
        if self.cached(&key, state, label) {
            return Ok(());
        }
        let vertex = self.options.progress.start(label);
        let request = CopyRequest {
            sources: &[],
            inline: &[],
            dest: workdir,
            workdir: "/",
            source: &view,
            ignore: None,
            exclude: None,
            from_context: false,
            dest_view: &view,
            chown: Some(ids),
            chmod: None,
            epoch: self.options.source_date_epoch,
            now: self.now,
            unpack_archives: false,
        };
        let mut plan = crate::copy::CopyPlan::default();
        // An existing directory is left as it is: BuildKit's mkdir changes nothing and the
        // layer is empty. A new one is made with its missing parents.
        let existing = view
            .resolve(Path::new(workdir), true)
            .or_build(|| workdir.to_string())?;
        match existing {
            Some(found) if found.meta.is_dir() => {}
            Some(found) => {
                vertex.failed("not a directory");
                return Err(BuildError::message(format!(
                    "cannot create working directory {workdir}: {} exists and is not a directory",
                    found.display()
                )));
            }
            None => {
                // Through symlinks, as the sandbox's chdir will go.
                let parts = view
                    .resolve_for_create(Path::new(workdir))
                    .or_build(|| workdir.to_string())?;
                let path: Vec<u8> = parts
                    .iter()
                    .map(|p| p.as_encoded_bytes())
                    .collect::<Vec<_>>()
                    .join(&b'/');
                let mut header =
                    distill_layer::EntryHeader::new(path, distill_layer::EntryKind::Dir);
                header.mode = 0o755;
                header.uid = u64::from(ids.uid);
                header.gid = u64::from(ids.gid);
                header.mtime = self.options.source_date_epoch.unwrap_or(self.now);
                plan.entries.insert(
                    parts
                        .iter()
                        .map(|p| p.as_encoded_bytes().to_vec())
                        .collect(),
                    crate::copy::Planned {
                        header,
                        data: crate::copy::Data::None,
                    },
                );
                request
                    .finish_parents(&mut plan)
                    .map_err(BuildError::message)?;
            }
        }
        let built = self.write_layer(|writer| plan.write(writer).map_err(BuildError::message));
        self.finish_step(&key, built, state, vertex)
    }

    fn copy(
        &self,
        stage: &Stage,
        instruction: &Instruction,
        state: &mut StageOutput,
        label: &str,
        done: &BTreeMap<usize, Arc<StageOutput>>,
    ) -> Result<String> {
        let (is_add, files, from, chown, chmod, link, parents, exclude, checksum, unpack) =
            match &instruction.command {
                Command::Copy(c) => (
                    false,
                    &c.files,
                    c.from.as_ref(),
                    c.chown.as_ref(),
                    c.chmod.as_ref(),
                    c.link,
                    c.parents,
                    &c.exclude,
                    None,
                    None,
                ),
                Command::Add(a) => (
                    true,
                    &a.files,
                    None,
                    a.chown.as_ref(),
                    a.chmod.as_ref(),
                    a.link,
                    false,
                    &a.exclude,
                    a.checksum.as_ref(),
                    a.unpack,
                ),
                _ => return Err(BuildError::message("not a COPY or ADD")),
            };
        let _ = link; // --link only changes how BuildKit stacks the layer, not its content
        if parents {
            return Err(
                BuildError::message("COPY --parents is not supported by distill yet")
                    .with_hint("copy each directory with its own COPY"),
            );
        }
        let exclude_matcher = if exclude.is_empty() {
            None
        } else {
            let patterns: Vec<&str> = exclude.iter().map(|w| w.value.as_str()).collect();
            Some(Matcher::new(patterns).map_err(|error| {
                BuildError::at(self.source(), exclude[0].pos, format!("--exclude: {error}"))
            })?)
        };
        // Where the files come from.
        let source_view;
        let (view, ignore, from_context, _source_key): (
            &RootView,
            Option<&Matcher>,
            bool,
            CacheKey,
        ) = match from {
            None => (
                &self.context,
                Some(&self.ignore),
                true,
                CacheKey::root("context"),
            ),
            Some(word) => match self.plan.input_for(&word.value, true) {
                Some(Input::Stage(index)) => {
                    let output = done.get(&index).ok_or_else(|| {
                        BuildError::message(format!(
                            "stage {} is not built before {}",
                            word.value,
                            stage.display_name()
                        ))
                    })?;
                    source_view = self.view(&output.layers)?;
                    (&source_view, None, false, output.key)
                }
                Some(Input::Scratch) => {
                    source_view = RootView::default();
                    (&source_view, None, false, CacheKey::root("scratch"))
                }
                Some(Input::Image(reference)) => {
                    let output = self.image_base(&reference)?;
                    source_view = self.view(&output.layers)?;
                    (&source_view, None, false, output.key)
                }
                None => {
                    return Err(BuildError::message(format!(
                        "invalid --from value {:?}",
                        word.value
                    )))
                }
            },
        };
        let dest_view = self.view(&state.layers)?;
        let runtime = state.config.config.clone().unwrap_or_default();
        let workdir = runtime.working_dir.clone().unwrap_or_else(|| "/".into());
        let chown_ids = match chown {
            Some(word) => {
                Some(users::resolve(&dest_view, &word.value, true).map_err(BuildError::message)?)
            }
            None => None,
        };
        let chmod_value: Option<Chmod> = match chmod {
            Some(word) => Some(parse_chmod(self.source(), word)?),
            None => None,
        };
        let is_url = |s: &str| s.starts_with("http://") || s.starts_with("https://");
        let sources: Vec<String> = files
            .sources
            .iter()
            .map(|w| w.value.clone())
            .filter(|s| !(is_add && is_url(s)))
            .collect();
        let urls: Vec<String> = files
            .sources
            .iter()
            .map(|w| w.value.clone())
            .filter(|s| is_add && is_url(s))
            .collect();
        if let Some(word) = checksum {
            if urls.len() != 1 || files.sources.len() != 1 {
                return Err(BuildError::at(
                    self.source(),
                    word.pos,
                    "checksum requires a single HTTP(S) source",
                ));
            }
        }
        let mut inline: Vec<InlineFile> = files
            .heredocs
            .iter()
            .map(|h| InlineFile {
                name: h.name.clone(),
                content: distill_frontend::value_bytes(&h.content).into_owned(),
                mode: 0o644,
                mtime: None,
            })
            .collect();
        // A download's identity (its digest and Last-Modified, or the --checksum) stands for
        // its content in the key, as in BuildKit's HTTP source. When --checksum or an ETag the
        // server confirms gives it before downloading, a hit costs no download.
        let only_urls = !urls.is_empty() && sources.is_empty() && inline.is_empty();
        let mut url_key = KeyBuilder::new("add-url");
        url_key
            .parent(&state.key)
            .list("urls", &urls)
            .text("dest", &files.dest.value)
            .text("workdir", &workdir)
            .text("chown", &chown.map(|w| w.value.clone()).unwrap_or_default())
            .text("chmod", &chmod.map(|w| w.value.clone()).unwrap_or_default())
            .text(
                "epoch",
                &self
                    .options
                    .source_date_epoch
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            );
        let url_key =
            |identities: &[String]| url_key.clone().list("identities", identities).finish();
        let mut downloads = crate::fetch::UrlSources::new(
            &urls,
            checksum.map(|word| word.value.as_str()),
            self.store().cache_dir().join("http"),
        );
        if only_urls && !self.options.no_cache {
            if let Some(identities) = downloads.identities_without_download()? {
                if self.cached(&url_key(&identities), state, label) {
                    return Ok(add_created_by(
                        is_add,
                        chown,
                        chmod,
                        &files.sources,
                        &files.heredocs,
                        &files.dest.value,
                    ));
                }
            }
        }
        let mut identities = Vec::with_capacity(urls.len());
        for (download, identity) in downloads.download()? {
            identities.push(identity);
            inline.push(InlineFile {
                name: download.name,
                content: download.content,
                mode: 0o600,
                mtime: Some(download.modified),
            });
        }
        let request = CopyRequest {
            sources: &sources,
            inline: &inline,
            dest: &files.dest.value,
            workdir: &workdir,
            source: view,
            ignore,
            exclude: exclude_matcher.as_ref(),
            from_context,
            dest_view: &dest_view,
            chown: chown_ids,
            chmod: chmod_value.as_ref(),
            epoch: self.options.source_date_epoch,
            now: self.now,
            unpack_archives: is_add && unpack != Some(false),
        };
        let created_by = add_created_by(
            is_add,
            chown,
            chmod,
            &files.sources,
            &files.heredocs,
            &files.dest.value,
        );
        let mut key = KeyBuilder::new(if is_add { "add" } else { "copy" });
        key.parent(&state.key)
            .text("created_by", &created_by)
            .text("workdir", &workdir);
        if let Some(epoch) = self.options.source_date_epoch {
            key.text("epoch", &epoch.to_string());
        }

        // A rebuild's shortcut: when the context files this step names look exactly as when
        // an earlier plan was made, that plan's content digest is the one to key with.
        let remembered = walkprint::Remembered::new(self.store().cache_dir().join("copy-walks"));
        let walk = if from_context && urls.is_empty() && inline.is_empty() && !self.options.no_cache
        {
            let mut salt = key.clone();
            salt.text("unpack", &format!("{is_add} {unpack:?}"))
                .list(
                    "exclude",
                    &exclude.iter().map(|w| w.value.as_str()).collect::<Vec<_>>(),
                )
                .list(
                    "ignore",
                    &self
                        .ignore
                        .patterns()
                        .iter()
                        .map(|p| format!("{} {}", p.is_exception(), p.as_str()))
                        .collect::<Vec<_>>(),
                );
            walkprint::fingerprint(
                self.context_root(),
                &sources,
                &self.ignore,
                salt.finish().as_bytes(),
            )
        } else {
            None
        };
        if let Some(content) = walk.as_ref().and_then(|w| remembered.get(&w.digest)) {
            let mut hit = key.clone();
            hit.field("content", &content)
                .list("downloads", &identities);
            if self.cached(&hit.finish(), state, label) {
                return Ok(created_by);
            }
        }

        let plan = request
            .plan()
            .map_err(|why| BuildError::message(format!("failed to compute cache key: {why}")))?;
        let content = {
            let mut hashes = self
                .hashes
                .lock()
                .map_err(|_| BuildError::message("context hash cache poisoned"))?;
            hashes
                .plan_digest(&plan, from_context)
                .or_build(|| "hashing the copied files")?
        };
        if let Some(walk) = walk.filter(|w| w.settled) {
            remembered.put(&walk.digest, &content);
        }
        key.field("content", &content);
        key.list("downloads", &identities);
        let key = if only_urls {
            url_key(&identities)
        } else {
            key.finish()
        };
        if self.cached(&key, state, label) {
            return Ok(created_by);
        }
        let vertex = self.options.progress.start(label);
        let result = self.write_layer(|writer| plan.write(writer).map_err(BuildError::message));
        self.finish_step(&key, result, state, vertex)?;
        Ok(created_by)
    }

    // ---- RUN ----

    fn sandbox(&self) -> Result<&(Sandbox, Snapshotter)> {
        let entry = self.sandbox.get_or_init(|| {
            let sandbox = Sandbox::new().map_err(|e| e.to_string())?;
            let probe = self.store().root().join("ingest").join(unique("probe"));
            let (snapshotter, _why) =
                Snapshotter::detect(&sandbox, &probe).map_err(|e| e.to_string())?;
            let _ = fs::remove_dir_all(&probe);
            Ok((sandbox, snapshotter))
        });
        entry.as_ref().map_err(|why| {
            BuildError::message(format!("cannot start the RUN sandbox: {why}"))
                .with_hint("RUN needs user namespaces (or root) and overlayfs or a writable store")
        })
    }

    fn run_step(
        &self,
        instruction: &Instruction,
        state: &mut StageOutput,
        label: &str,
        done: &BTreeMap<usize, Arc<StageOutput>>,
    ) -> Result<String> {
        let Command::Run(run) = &instruction.command else {
            return Err(BuildError::message("not a RUN"));
        };
        if let Some((distill_plan::Security::Insecure, word)) = &run.security {
            return Err(BuildError::at(
                self.source(),
                word.pos,
                "RUN --security=insecure is not supported: distill always runs steps sandboxed",
            )
            .with_hint("remove the flag; steps that need host privileges cannot run in distill"));
        }
        if let Some(device) = run.devices.first() {
            return Err(BuildError::at(
                self.source(),
                device.1.pos,
                "RUN --device is not supported by distill yet",
            ));
        }
        let runtime = state.config.config.clone().unwrap_or_default();
        let args = run_args(&runtime, &run.command);
        let mut env = state.vars.to_env_list();
        for (name, value) in self.plan.build_args.proxy_env() {
            if !env.iter().any(|e| e.split('=').next() == Some(name)) {
                env.push(format!("{name}={value}"));
            }
        }
        let workdir = runtime
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        let user = runtime.user.clone().unwrap_or_default();
        let network = match run.network.as_ref().map(|(n, _)| *n) {
            Some(Network::None) => NetworkMode::None,
            Some(Network::Host) => NetworkMode::Host,
            Some(Network::Default) | None => self.options.network,
        };
        // History: `RUN |N K=V ... cmd` for the stage's ARGs, as BuildKit writes it.
        let mut arg_env: Vec<String> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in &state.args {
            let value = state
                .vars
                .get(name)
                .map(str::to_string)
                .or_else(|| value.clone())
                .unwrap_or_default();
            match seen.iter().position(|n| *n == name) {
                Some(index) => arg_env[index] = format!("{name}={value}"),
                None => {
                    seen.push(name);
                    arg_env.push(format!("{name}={value}"));
                }
            }
        }
        let mut history_parts = Vec::new();
        if !arg_env.is_empty() {
            history_parts.push(format!("|{}", arg_env.len()));
            history_parts.extend(arg_env.iter().cloned());
        }
        history_parts.extend(args.iter().cloned());
        let created_by = format!("RUN {}", history_parts.join(" "));

        let mut key = KeyBuilder::new("exec");
        key.parent(&state.key)
            .list("args", &args)
            .list("env", &state.vars.to_env_list())
            .text("cwd", &workdir)
            .text("user", &user)
            .text(
                "network",
                match network {
                    NetworkMode::Host => "host",
                    NetworkMode::None => "none",
                },
            );
        let mut mounts = Vec::new();
        let mut secret_env = Vec::new();
        let scratch_dir = self.store().root().join("ingest").join(unique("run"));
        let cleanup = DirGuard(scratch_dir.clone());
        // A lone heredoc starting with `#!` is a script: BuildKit mounts it at
        // /dev/pipes/NAME (mode 0755) and runs that path through the shell.
        if let Some(script) = shebang_script(&run.command) {
            let (name, content) = script;
            fs::create_dir_all(&scratch_dir).or_build(|| "preparing the RUN step")?;
            let file = scratch_dir.join(unique("script"));
            fs::write(&file, content.as_bytes()).or_build(|| "preparing the RUN step")?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&file, fs::Permissions::from_mode(0o755))
                .or_build(|| "preparing the RUN step")?;
            key.text("script", &content);
            mounts.push(Mount::bind(file, format!("/dev/pipes/{name}"), true));
        }
        for mount in &run.mounts {
            let Some(spec) = &mount.mount else { continue };
            let target = spec.target.clone().map(|t| {
                if t.starts_with('/') {
                    clean_path(&t)
                } else {
                    clean_path(&format!("{workdir}/{t}"))
                }
            });
            match spec.kind {
                MountType::Cache => {
                    let target =
                        target.ok_or_else(|| BuildError::message("cache mounts need a target"))?;
                    let id = spec.id.clone().unwrap_or_else(|| target.clone());
                    let safe: String = id
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    let dir = self.store().cache_dir().join("mounts").join(format!(
                        "{}-{}",
                        safe,
                        &KeyBuilder::new("cache-id").text("id", &id).finish().hex()[..12]
                    ));
                    if !dir.exists() {
                        fs::create_dir_all(&dir)
                            .or_build(|| format!("creating cache mount {id}"))?;
                        use std::os::unix::fs::PermissionsExt;
                        let mode = spec.mode.unwrap_or(0o755);
                        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(mode));
                        let _ = rustix::fs::chown(
                            &dir,
                            Some(rustix::fs::Uid::from_raw(spec.uid.unwrap_or(0))),
                            Some(rustix::fs::Gid::from_raw(spec.gid.unwrap_or(0))),
                        );
                    }
                    key.text("mount", &format!("cache:{target}"));
                    mounts.push(Mount::bind(dir, target, spec.read_only));
                }
                MountType::Tmpfs => {
                    let target =
                        target.ok_or_else(|| BuildError::message("tmpfs mounts need a target"))?;
                    key.text("mount", &format!("tmpfs:{target}"));
                    mounts.push(Mount {
                        target: target.into(),
                        kind: MountKind::Tmpfs {
                            size: spec.size.and_then(|s| u64::try_from(s).ok()),
                            mode: 0o1777,
                        },
                    });
                }
                MountType::Secret => {
                    let id = spec
                        .id
                        .clone()
                        .or_else(|| {
                            target
                                .as_ref()
                                .and_then(|t| t.rsplit('/').next().map(str::to_string))
                        })
                        .ok_or_else(|| {
                            BuildError::message("secret mounts need an id or a target")
                        })?;
                    let Some(value) = self.options.secrets.get(&id) else {
                        if spec.required {
                            return Err(BuildError::message(format!("secret {id} not found"))
                                .with_hint(format!(
                                    "pass it with --secret id={id},src=FILE or env=VAR"
                                )));
                        }
                        continue;
                    };
                    if let Some(name) = &spec.env {
                        secret_env.push(format!("{name}={}", String::from_utf8_lossy(value)));
                        if spec.target.is_none() {
                            continue;
                        }
                    }
                    let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                    fs::create_dir_all(&scratch_dir).or_build(|| "preparing a secret")?;
                    let file = scratch_dir.join(unique("secret"));
                    fs::write(&file, value).or_build(|| "preparing a secret")?;
                    use std::os::unix::fs::PermissionsExt;
                    let _ = fs::set_permissions(
                        &file,
                        fs::Permissions::from_mode(spec.mode.unwrap_or(0o400)),
                    );
                    let _ = rustix::fs::chown(
                        &file,
                        Some(rustix::fs::Uid::from_raw(spec.uid.unwrap_or(0))),
                        Some(rustix::fs::Gid::from_raw(spec.gid.unwrap_or(0))),
                    );
                    mounts.push(Mount::bind(file, target, true));
                }
                MountType::Bind => {
                    let target =
                        target.ok_or_else(|| BuildError::message("bind mounts need a target"))?;
                    let source_path = spec.source.clone().unwrap_or_else(|| "/".into());
                    let (host, content_key) = match &spec.from {
                        None => {
                            let found = self
                                .context
                                .resolve(Path::new(&source_path), true)
                                .or_build(|| source_path.clone())?
                                .ok_or_else(|| {
                                    BuildError::message(format!(
                                        "{source_path}: not found in the build context"
                                    ))
                                })?;
                            let digest = self
                                .hashes
                                .lock()
                                .map_err(|_| BuildError::message("context hash cache poisoned"))?
                                .tree_digest(&self.context, &found, &self.ignore)
                                .or_build(|| "hashing the bind mount")?;
                            let host = crate::bindview::visible_context(
                                self.context_root(),
                                &self.ignore,
                                &found.path,
                                &found.host,
                                &scratch_dir.join(unique("context")),
                            )
                            .or_build(|| format!("binding {source_path} of the build context"))?;
                            (
                                host,
                                KeyBuilder::new("context").field("tree", &digest).finish(),
                            )
                        }
                        Some(from) => {
                            let output = match self.plan.input_for(from, false) {
                                Some(Input::Stage(index)) => {
                                    done.get(&index).map(|o| (**o).clone()).ok_or_else(|| {
                                        BuildError::message(format!("stage {from} is not built"))
                                    })?
                                }
                                Some(Input::Image(reference)) => self.image_base(&reference)?,
                                _ => self.scratch_output(),
                            };
                            let dir = scratch_dir.join(unique("bind"));
                            fs::create_dir_all(&dir).or_build(|| "preparing a bind mount")?;
                            for layer in &output.layers {
                                let blob = self
                                    .store()
                                    .open_blob(&layer.digest)
                                    .or_build(|| "opening a layer")?;
                                distill_layer::extract(
                                    io::BufReader::new(blob),
                                    &dir,
                                    &ExtractOptions::default(),
                                )
                                .or_build(|| "unpacking a layer for a bind mount")?;
                            }
                            let found = RootView::of_dir(&dir)
                                .resolve(Path::new(&source_path), true)
                                .or_build(|| source_path.clone())?
                                .ok_or_else(|| {
                                    BuildError::message(format!(
                                        "{source_path}: not found in {from}"
                                    ))
                                })?;
                            (found.host, output.key)
                        }
                    };
                    key.text("mount", &format!("bind:{target}:{}", spec.read_only))
                        .key("bind-source", &content_key);
                    if spec.read_only {
                        mounts.push(Mount::bind(host, target, true));
                    } else {
                        mounts.push(Mount {
                            target: target.into(),
                            kind: MountKind::ScratchBind { source: host },
                        });
                    }
                }
                MountType::Ssh => {
                    return Err(BuildError::message(
                        "RUN --mount=type=ssh is not supported by distill yet",
                    ));
                }
            }
        }
        let key = key.finish();
        if self.cached(&key, state, label) {
            drop(cleanup);
            return Ok(created_by);
        }
        let vertex = self.options.progress.start(label);
        let view = match self.view(&state.layers) {
            Ok(view) => view,
            Err(error) => {
                vertex.failed(error.to_string());
                return Err(error);
            }
        };
        let result = self.execute(
            &view,
            state,
            args.clone(),
            env,
            secret_env,
            &workdir,
            &user,
            network,
            mounts,
            &scratch_dir,
            &vertex,
        );
        drop(cleanup);
        self.finish_step(&key, result, state, vertex)?;
        Ok(created_by)
    }

    fn scratch_output(&self) -> StageOutput {
        StageOutput {
            config: ImageConfig::default(),
            layers: Vec::new(),
            vars: Vars::new(),
            key: CacheKey::root("scratch"),
            args: Vec::new(),
            new_history: 0,
            layer_created: self.now,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn execute(
        &self,
        view: &RootView,
        state: &StageOutput,
        args: Vec<String>,
        mut env: Vec<String>,
        secret_env: Vec<String>,
        workdir: &str,
        user: &str,
        network: NetworkMode,
        mounts: Vec<Mount>,
        scratch_dir: &Path,
        vertex: &distill_solver::VertexProgress,
    ) -> Result<LayerRef> {
        let (sandbox, snapshotter) = self.sandbox()?;
        let ids = if user.is_empty() {
            users::Ids { uid: 0, gid: 0 }
        } else {
            users::resolve(view, user, false).map_err(BuildError::message)?
        };
        let additional_gids = users::supplementary_groups(view, user);
        // runc gives the process the user's home when the environment sets none; tools such as
        // `go build` and pip need it.
        if !env
            .iter()
            .any(|entry| entry.split('=').next() == Some("HOME"))
        {
            env.push(format!("HOME={}", users::home(view, user)));
        }
        env.extend(secret_env);
        let view_dir = scratch_dir.join("view");
        fs::create_dir_all(scratch_dir).or_build(|| "preparing the RUN step")?;
        let lowers: Vec<PathBuf> = view.layers().to_vec();
        let _ = state;
        let prepared = snapshotter
            .prepare(&lowers, &view_dir)
            .or_build(|| "preparing the RUN step's file system")?;
        let mut spec = SandboxSpec::new(prepared.rootfs(), args.clone());
        // Docker 20.10's runc leaves the directories it made for mount targets in the layer.
        spec.keep_directory_stubs = true;
        spec.env = env;
        spec.cwd = PathBuf::from(workdir);
        spec.uid = ids.uid;
        spec.gid = ids.gid;
        spec.additional_gids = additional_gids;
        spec.network = network;
        spec.mounts = mounts;
        let running = sandbox
            .spawn(&spec, Stdio::Capture)
            .or_build(|| "starting the RUN step")?;
        let killer = running.killer();
        let _hook = self.options.cancel.on_cancel(move || killer.cancel());
        let mut sink = ProgressSink {
            vertex,
            tail: LastLines::new(20),
        };
        let status = running.wait(&mut sink);
        let status = match status {
            Ok(status) => status,
            Err(distill_sandbox::Error::Cancelled) => {
                let _ = prepared.remove();
                return Err(BuildError::Cancelled);
            }
            Err(error) => {
                let _ = prepared.remove();
                return Err(BuildError::message(format!(
                    "running the RUN step: {error}"
                )));
            }
        };
        if !status.success() {
            let _ = prepared.remove();
            let lines = sink.tail.lines();
            let code = match status {
                ExitStatus::Exited(code) => format!("exit code: {code}"),
                other => other.to_string(),
            };
            let mut message = format!(
                "process \"{}\" did not complete successfully: {code}",
                args.join(" ")
            );
            if !lines.is_empty() {
                message.push_str("\nlast lines of output:");
                for line in lines {
                    message.push_str("\n  ");
                    message.push_str(&line);
                }
            }
            return Err(BuildError::message(message));
        }
        self.check_cancel()?;
        let diff = prepared
            .commit()
            .or_build(|| "collecting the RUN step's changes")?;
        let mut options = TreeOptions::new().overlay_upper(true);
        // Rootless without subordinate ids: the diff's files belong to the caller on the host
        // and were root's in the sandbox; with subordinate ids the whole program runs in the
        // user namespace (`enter_user_namespace`) and the files hold their real owners.
        if let IdMapping::Single { uid, gid } = sandbox.ids() {
            options = options.owners(Owners::SingleId {
                uid: *uid,
                gid: *gid,
            });
        }
        if let Some(epoch) = self.options.source_date_epoch {
            options = options.clamp_mtime(epoch);
        }
        let layer = self.write_layer(|writer| {
            writer
                .append_tree(&diff.path, &options)
                .or_build(|| "writing the RUN step's layer")
        })?;
        // The upper directory is already the layer unpacked: keep it as its snapshot.
        if self
            .store()
            .snapshot(&layer.diff_id)
            .ok()
            .flatten()
            .is_none()
        {
            if let Ok(prepared) = self.store().prepare_snapshot() {
                let fs_dir = prepared.fs_dir();
                if fs::remove_dir(&fs_dir).is_ok() && fs::rename(&diff.path, &fs_dir).is_ok() {
                    let _ = prepared.commit(&layer.diff_id);
                }
            }
        }
        Ok(layer)
    }
}

/// Removes a scratch directory when dropped.
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = distill_sandbox::remove_tree(&self.0);
        }
    }
}

struct ProgressSink<'v> {
    vertex: &'v distill_solver::VertexProgress,
    tail: LastLines,
}

impl OutputSink for ProgressSink<'_> {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        let log_stream = match stream {
            Stream::Stdout => LogStream::Stdout,
            Stream::Stderr => LogStream::Stderr,
        };
        self.vertex.log(log_stream, data);
        self.tail.output(stream, data);
    }
}

/// BuildKit's history line of a COPY or ADD (before ` # buildkit`): the flags that change
/// the result, the sources, the heredocs, the destination, as written.
fn add_created_by(
    is_add: bool,
    chown: Option<&distill_frontend::Word>,
    chmod: Option<&distill_frontend::Word>,
    sources: &[distill_frontend::Word],
    heredocs: &[distill_frontend::Heredoc],
    dest: &str,
) -> String {
    let mut created_by = String::from(if is_add { "ADD" } else { "COPY" });
    if let Some(word) = chown {
        created_by.push_str(&format!(" --chown={}", word.value));
    }
    if let Some(word) = chmod {
        created_by.push_str(&format!(" --chmod={}", word.value));
    }
    for source in sources {
        created_by.push(' ');
        created_by.push_str(&source.value);
    }
    for heredoc in heredocs {
        created_by.push_str(&format!(" <<{}", heredoc.name));
    }
    created_by.push(' ');
    created_by.push_str(dest);
    created_by
}

/// `[stage 2/4]` labels.
struct StepCounter {
    stage: Option<String>,
    index: usize,
    total: usize,
}

impl StepCounter {
    fn label(&self) -> String {
        match &self.stage {
            Some(stage) => format!("[{stage} {}/{}]", self.index, self.total),
            None => format!("[{}/{}]", self.index, self.total),
        }
    }
}

fn counts_as_step(instruction: &Instruction) -> bool {
    matches!(
        instruction.command,
        Command::Add(_) | Command::Copy(_) | Command::Run(_) | Command::Workdir(_)
    )
}

/// The instruction as progress shows it: keyword upper case, the rest as written.
fn display(instruction: &Instruction) -> String {
    let text = instruction.original.trim();
    match text.split_once(char::is_whitespace) {
        Some((keyword, rest)) => format!("{} {}", keyword.to_uppercase(), rest.trim_start()),
        None => text.to_uppercase(),
    }
}

/// CMD/ENTRYPOINT arguments: exec form as is, shell form through the stage's SHELL.
fn with_shell(runtime: &RuntimeConfig, line: &CommandLine) -> Vec<String> {
    let words: Vec<String> = line.args.iter().map(|w| w.value.clone()).collect();
    if line.exec_form {
        return words;
    }
    let mut args = runtime
        .shell
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()]);
    args.push(words.join(" "));
    args
}

/// The argv of a RUN: exec form as is; shell form (heredocs included) through SHELL.
fn run_args(runtime: &RuntimeConfig, line: &CommandLine) -> Vec<String> {
    if line.exec_form || line.heredocs.is_empty() {
        return with_shell(runtime, line);
    }
    let command = line.args.first().map(|w| w.value.as_str()).unwrap_or("");
    let text = if let Some((name, _)) = shebang_script(line) {
        format!("/dev/pipes/{name}")
    } else if line.heredocs.len() == 1 && is_only_heredoc(command) {
        line.heredocs[0].content.clone()
    } else {
        let mut text = command.to_string();
        for heredoc in &line.heredocs {
            text.push('\n');
            text.push_str(&heredoc.content);
            text.push_str(&heredoc.name);
        }
        text
    };
    let mut args = runtime
        .shell
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()]);
    args.push(text);
    args
}

/// The name and content of a RUN that is one heredoc starting with `#!`.
fn shebang_script(line: &CommandLine) -> Option<(String, String)> {
    let command = line.args.first().map(|w| w.value.as_str()).unwrap_or("");
    if line.exec_form || line.heredocs.len() != 1 || !is_only_heredoc(command) {
        return None;
    }
    let heredoc = &line.heredocs[0];
    heredoc
        .content
        .starts_with("#!")
        .then(|| (heredoc.name.clone(), heredoc.content.clone()))
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`: a command that is nothing but one heredoc marker.
fn is_only_heredoc(command: &str) -> bool {
    let text = command.trim();
    let rest = text.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.starts_with("<<") && !rest.contains(char::is_whitespace)
}

/// Writes `text` to standard error (for messages outside the progress stream).
#[allow(dead_code)]
fn warn(text: &str) {
    let _ = writeln!(io::stderr(), "{text}");
}

#[allow(dead_code)]
fn media_type_of(layer: &LayerRef) -> &str {
    if layer.media_type.is_empty() {
        media_type::OCI_LAYER_GZIP
    } else {
        &layer.media_type
    }
}
