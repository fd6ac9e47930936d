//! `distill debug ...`: stable, hidden hooks that print what the frontend understood, in formats
//! meant to be compared line by line with other implementations (see docs/debug-hooks.md).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use distill_frontend::Source;

use crate::global::Global;

#[derive(Subcommand)]
pub enum DebugCommand {
    /// Print one line per top-level instruction, like BuildKit's parser `Node.Dump()`
    Parse(ParseArgs),
    /// Print the expansion of WORD as BuildKit expands an instruction argument
    Expand(ExpandArgs),
}

#[derive(Args)]
pub struct ParseArgs {
    /// The Dockerfile to parse
    file: PathBuf,
}

#[derive(Args)]
pub struct ExpandArgs {
    /// Set variable K to the raw value V (repeatable; the last one wins; K alone sets K to "")
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,

    /// Split the result into words, one per line (as for EXPOSE, VOLUME, ...)
    #[arg(long)]
    words: bool,

    /// The escape character, as set by the `# escape=` parser directive
    #[arg(long, value_name = "CHAR", default_value_t = '\\')]
    escape: char,

    /// The word to expand
    #[arg(allow_hyphen_values = true)]
    word: String,
}

pub fn run(command: DebugCommand, _global: &Global) -> anyhow::Result<ExitCode> {
    match command {
        DebugCommand::Parse(args) => parse(args),
        DebugCommand::Expand(args) => expand(args),
    }
}

fn parse(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    // Bytes that are not UTF-8 are kept, as BuildKit keeps them (its dump shows them as \xNN).
    let source = Source::from_bytes(args.file.display().to_string(), bytes);
    match distill_frontend::parse(&source) {
        Ok(dockerfile) => {
            print!("{}", distill_frontend::dump(&dockerfile));
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostic) => {
            eprintln!("error: {diagnostic}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn expand(args: ExpandArgs) -> anyhow::Result<ExitCode> {
    // Like BuildKit's EnvsFromSlice: split at the first `=`, a later K replaces an earlier one.
    let env: HashMap<String, String> = args
        .env
        .iter()
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
            (key.to_string(), value.to_string())
        })
        .collect();
    let lexer = distill_shell::Lexer::new(args.escape);
    let result = if args.words {
        lexer.process_words(&args.word, &env)
    } else {
        lexer.process_word(&args.word, &env).map(|w| vec![w])
    };
    match result {
        Ok(words) => {
            for word in words {
                println!("{word}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}
