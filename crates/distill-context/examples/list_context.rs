//! Prints what a build would see of a context directory, one path per line (directories end
//! with `/`), using the ignore file BuildKit would choose.
//!
//! `cargo run -p distill-context --example list_context -- CONTEXT [DOCKERFILE]`

use std::path::PathBuf;
use std::process::ExitCode;

use distill_context::{Context, FileKind};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: list_context CONTEXT [DOCKERFILE]");
        return ExitCode::from(2);
    };
    let dockerfile = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("Dockerfile"));
    let listing = Context::open(&dir, &dockerfile).and_then(|context| context.walk());
    match listing {
        Ok(entries) => {
            for entry in entries {
                let slash = if entry.kind == FileKind::Dir { "/" } else { "" };
                println!("{}{slash}", entry.path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
