//! Progress of a build: numbered vertices that start, log, finish, hit the cache or fail, and
//! the printers that show them (`plain`, `tty`, `json`, `quiet`), as BuildKit's progress UI.
//!
//! Workers send [`Event`]s through a [`Progress`] handle (cheap to clone, shared by every
//! thread); one printer behind it writes them in arrival order, so lines of parallel steps
//! interleave whole but never mix. A printer never fails a build: write errors are ignored.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Which output stream a log chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// Something that happened to a vertex (numbered from 1, as BuildKit's `#N`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// Work on the vertex began; `name` is what the user sees (`[build 2/4] RUN make`).
    Started { vertex: usize, name: String },
    /// The vertex's result came from the cache: no work was done.
    Cached { vertex: usize, name: String },
    /// Output of the vertex's command, as it came.
    Log {
        vertex: usize,
        stream: LogStream,
        #[serde(serialize_with = "lossy")]
        data: Vec<u8>,
    },
    /// The vertex finished.
    Done {
        vertex: usize,
        #[serde(serialize_with = "seconds")]
        elapsed: Duration,
    },
    /// The vertex failed (or was cancelled) with this message.
    Failed {
        vertex: usize,
        #[serde(serialize_with = "seconds")]
        elapsed: Duration,
        message: String,
    },
    /// A line about the whole build (the image ID, an exporter's result).
    Note { message: String },
}

fn lossy<S: serde::Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&String::from_utf8_lossy(data))
}

fn seconds<S: serde::Serializer>(elapsed: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64((elapsed.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Numbered lines, BuildKit's `--progress=plain`.
    Plain,
    /// Live status lines for a terminal.
    Tty,
    /// One JSON object per event and line.
    Json,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// Reads `auto|plain|tty|json|quiet`; `auto` is `tty` on a terminal, `plain` otherwise.
    pub fn parse(text: &str, is_terminal: bool) -> Option<Mode> {
        match text {
            "auto" if is_terminal => Some(Mode::Tty),
            "auto" | "plain" => Some(Mode::Plain),
            "tty" => Some(Mode::Tty),
            "json" | "rawjson" => Some(Mode::Json),
            "quiet" => Some(Mode::Quiet),
            _ => None,
        }
    }
}

/// The shared handle workers report through.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    next_vertex: AtomicUsize,
    printer: Mutex<Printer>,
}

impl Progress {
    /// Progress shown in `mode` on `out` (standard error, for the CLI).
    pub fn new(mode: Mode, out: Box<dyn Write + Send>) -> Progress {
        let progress = Progress {
            inner: Arc::new(Inner {
                next_vertex: AtomicUsize::new(1),
                printer: Mutex::new(Printer {
                    mode,
                    out,
                    started: Instant::now(),
                    vertices: Vec::new(),
                    last_log_vertex: None,
                    live_line: false,
                }),
            }),
        };
        if mode == Mode::Tty {
            // Redraws the status line so running steps' times move; ends with the build.
            let weak = Arc::downgrade(&progress.inner);
            std::thread::spawn(move || loop {
                std::thread::sleep(Duration::from_millis(200));
                let Some(inner) = weak.upgrade() else { break };
                let mut printer = match inner.printer.lock() {
                    Ok(printer) => printer,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let _ = printer.redraw_status();
                let _ = printer.out.flush();
            });
        }
        progress
    }

    /// Progress that shows nothing (tests, library callers).
    pub fn silent() -> Progress {
        Progress::new(Mode::Quiet, Box::new(io::sink()))
    }

    /// A new vertex number.
    pub fn vertex(&self) -> usize {
        self.inner.next_vertex.fetch_add(1, Ordering::Relaxed)
    }

    pub fn send(&self, event: Event) {
        // A poisoned printer only means another thread panicked mid-line: keep printing.
        let mut printer = match self.inner.printer.lock() {
            Ok(printer) => printer,
            Err(poisoned) => poisoned.into_inner(),
        };
        printer.print(&event);
    }

    /// Starts a vertex and returns its handle.
    pub fn start(&self, name: impl Into<String>) -> VertexProgress {
        let vertex = self.vertex();
        let name = name.into();
        self.send(Event::Started {
            vertex,
            name: name.clone(),
        });
        VertexProgress {
            progress: self.clone(),
            vertex,
            started: Instant::now(),
        }
    }

    /// Reports a vertex served from the cache.
    pub fn cached(&self, name: impl Into<String>) {
        let vertex = self.vertex();
        self.send(Event::Cached {
            vertex,
            name: name.into(),
        });
    }

    pub fn note(&self, message: impl Into<String>) {
        self.send(Event::Note {
            message: message.into(),
        });
    }
}

/// One running vertex.
pub struct VertexProgress {
    progress: Progress,
    vertex: usize,
    started: Instant,
}

impl VertexProgress {
    pub fn id(&self) -> usize {
        self.vertex
    }

    pub fn log(&self, stream: LogStream, data: &[u8]) {
        self.progress.send(Event::Log {
            vertex: self.vertex,
            stream,
            data: data.to_vec(),
        });
    }

    pub fn done(self) {
        self.progress.send(Event::Done {
            vertex: self.vertex,
            elapsed: self.started.elapsed(),
        });
    }

    pub fn failed(self, message: impl Into<String>) {
        self.progress.send(Event::Failed {
            vertex: self.vertex,
            elapsed: self.started.elapsed(),
            message: message.into(),
        });
    }
}

struct VertexState {
    id: usize,
    name: String,
    started: Instant,
    /// Bytes of an unterminated last log line, per vertex.
    partial: Vec<u8>,
}

struct Printer {
    mode: Mode,
    out: Box<dyn Write + Send>,
    started: Instant,
    vertices: Vec<VertexState>,
    last_log_vertex: Option<usize>,
    /// The tty printer's status line is on screen (to be cleared before the next line).
    live_line: bool,
}

impl Printer {
    fn print(&mut self, event: &Event) {
        let _ = match self.mode {
            Mode::Quiet => Ok(()),
            Mode::Json => self.json(event),
            Mode::Plain => self.plain(event),
            Mode::Tty => self.tty(event),
        };
        let _ = self.out.flush();
    }

    fn json(&mut self, event: &Event) -> io::Result<()> {
        let line = serde_json::to_string(event).map_err(io::Error::other)?;
        writeln!(self.out, "{line}")
    }

    fn state(&mut self, vertex: usize) -> Option<&mut VertexState> {
        self.vertices.iter_mut().find(|v| v.id == vertex)
    }

    fn plain(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Started { vertex, name } => {
                self.vertices.push(VertexState {
                    id: *vertex,
                    name: name.clone(),
                    started: Instant::now(),
                    partial: Vec::new(),
                });
                self.last_log_vertex = Some(*vertex);
                writeln!(self.out, "#{vertex} {name}")
            }
            Event::Cached { vertex, name } => {
                writeln!(self.out, "#{vertex} {name}")?;
                writeln!(self.out, "#{vertex} CACHED")?;
                writeln!(self.out)
            }
            Event::Log {
                vertex,
                stream: _,
                data,
            } => {
                let switched = self.last_log_vertex != Some(*vertex);
                self.last_log_vertex = Some(*vertex);
                let Some(state) = self.state(*vertex) else {
                    return Ok(());
                };
                let elapsed = state.started.elapsed().as_secs_f64();
                state.partial.extend_from_slice(data);
                let mut lines = Vec::new();
                while let Some(end) = state.partial.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = state.partial.drain(..=end).collect();
                    lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
                }
                let name = state.name.clone();
                if switched && !lines.is_empty() {
                    writeln!(self.out, "#{vertex} {name}")?;
                }
                for line in lines {
                    writeln!(self.out, "#{vertex} {elapsed:.3} {line}")?;
                }
                Ok(())
            }
            Event::Done { vertex, elapsed } => {
                self.flush_partial(*vertex)?;
                writeln!(self.out, "#{vertex} DONE {:.1}s", elapsed.as_secs_f64())?;
                writeln!(self.out)
            }
            Event::Failed {
                vertex,
                elapsed: _,
                message,
            } => {
                self.flush_partial(*vertex)?;
                let first = message.lines().next().unwrap_or("");
                writeln!(self.out, "#{vertex} ERROR: {first}")?;
                writeln!(self.out)
            }
            Event::Note { message } => writeln!(self.out, "{message}"),
        }
    }

    fn flush_partial(&mut self, vertex: usize) -> io::Result<()> {
        let Some(state) = self.state(vertex) else {
            return Ok(());
        };
        if state.partial.is_empty() {
            return Ok(());
        }
        let elapsed = state.started.elapsed().as_secs_f64();
        let line = String::from_utf8_lossy(&std::mem::take(&mut state.partial)).into_owned();
        writeln!(self.out, "#{vertex} {elapsed:.3} {line}")
    }

    /// Finished steps stay as `=> name  0.3s` lines; the running ones share one status line
    /// that is redrawn on every event.
    fn tty(&mut self, event: &Event) -> io::Result<()> {
        if self.live_line {
            write!(self.out, "\r\x1b[K")?;
            self.live_line = false;
        }
        match event {
            Event::Started { vertex, name } => {
                self.vertices.push(VertexState {
                    id: *vertex,
                    name: name.clone(),
                    started: Instant::now(),
                    partial: Vec::new(),
                });
            }
            Event::Cached { name, .. } => writeln!(self.out, " => CACHED {name}")?,
            Event::Log { .. } => {}
            Event::Done { vertex, elapsed } => {
                if let Some(index) = self.vertices.iter().position(|v| v.id == *vertex) {
                    let state = self.vertices.remove(index);
                    writeln!(
                        self.out,
                        " => {:<60} {:>6.1}s",
                        state.name,
                        elapsed.as_secs_f64()
                    )?;
                }
            }
            Event::Failed {
                vertex, message, ..
            } => {
                if let Some(index) = self.vertices.iter().position(|v| v.id == *vertex) {
                    let state = self.vertices.remove(index);
                    let first = message.lines().next().unwrap_or("");
                    writeln!(self.out, " => ERROR {}: {first}", state.name)?;
                }
            }
            Event::Note { message } => writeln!(self.out, "{message}")?,
        }
        self.redraw_status()
    }

    /// The tty printer's status line: the build's time and the latest running step's.
    fn redraw_status(&mut self) -> io::Result<()> {
        if self.mode != Mode::Tty {
            return Ok(());
        }
        if self.live_line {
            write!(self.out, "\r\x1b[K")?;
            self.live_line = false;
        }
        if let Some(running) = self.vertices.last() {
            write!(
                self.out,
                "[+] Building {:.1}s ({} running): {} {:.1}s",
                self.started.elapsed().as_secs_f64(),
                self.vertices.len(),
                running.name,
                running.started.elapsed().as_secs_f64()
            )?;
            self.live_line = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn plain_numbers_vertices_and_prefixes_output() {
        let out = Shared::default();
        let progress = Progress::new(Mode::Plain, Box::new(out.clone()));
        progress.cached("[a 1/2] COPY x /x");
        let run = progress.start("[a 2/2] RUN make");
        run.log(LogStream::Stdout, b"hello\nwor");
        run.log(LogStream::Stdout, b"ld\n");
        run.done();
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#1 [a 1/2] COPY x /x");
        assert_eq!(lines[1], "#1 CACHED");
        assert_eq!(lines[3], "#2 [a 2/2] RUN make");
        assert!(lines[4].starts_with("#2 0.") && lines[4].ends_with(" hello"));
        assert!(lines[5].ends_with(" world"));
        assert!(lines[6].starts_with("#2 DONE "));
    }

    #[test]
    fn json_is_one_object_per_line() {
        let out = Shared::default();
        let progress = Progress::new(Mode::Json, Box::new(out.clone()));
        let step = progress.start("[1/1] RUN x");
        step.failed("exit code 1");
        let text = out.text();
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events[0]["event"], "started");
        assert_eq!(events[1]["event"], "failed");
        assert_eq!(events[1]["message"], "exit code 1");
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::parse("auto", true), Some(Mode::Tty));
        assert_eq!(Mode::parse("auto", false), Some(Mode::Plain));
        assert_eq!(Mode::parse("fancy", false), None);
    }
}
