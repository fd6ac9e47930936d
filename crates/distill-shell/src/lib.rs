//! Variable expansion in Dockerfile instruction arguments, with the semantics of BuildKit's
//! shell lexer (`frontend/dockerfile/shell/lex.go`), quirks included.
//!
//! A [`Lexer`] is made for one escape character (`\`, or a backtick after `# escape=``) plus
//! BuildKit's four switches. [`Lexer::process_word`] expands a word as one string (ENV values,
//! WORKDIR, ...), [`Lexer::process_words`] expands and splits it into several (EXPOSE, VOLUME,
//! ...), and [`Lexer::process_word_with_matches`] also reports which variables the word read
//! and which of those were unset (for warnings and for "which build args does this step use").
//! Variables come from an [`Env`].
//!
//! What is understood: `'...'`, `"..."`, the escape character, `$V`, `${V}`, `${V:-w}`, `${V-w}`,
//! `${V:+w}`, `${V+w}`, `${V:?m}`, `${V?m}`, `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`, `${V/p/r}`,
//! `${V//p/r}` (words nest; patterns know `*`, `?` and `\`), positional `$1` and the special
//! parameters `$@ $* $# $? $- $$ $! $0` as ordinary (normally unset) names. Everything else
//! (`$(...)`, backticks, `${#V}`, `${V:=w}`, `${V:1:2}`) is literal text or an error, exactly as
//! in BuildKit.
//!
//! This crate never runs a command, never reads the process environment and never panics on
//! any input.

mod expand;
mod pattern;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use distill_golang::strconv;

/// Where expansion looks variables up. `None` means unset, which differs from set to `""` for
/// `${V-w}`, `${V+w}` and `${V?m}`. Names are compared as given: case matters (Linux).
pub trait Env {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl<E: Env + ?Sized> Env for &E {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

/// Why a word could not be expanded. Displays as BuildKit's message:
/// `failed to process "<word>": <reason>`, the word quoted as Go's `%q` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandError {
    word: String,
    reason: String,
}

impl ExpandError {
    /// The word as it was given to the lexer.
    pub fn word(&self) -> &str {
        &self.word
    }

    /// What went wrong, without the word (e.g. `syntax error: missing '}'`).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "failed to process {}: {}",
            strconv::quote(&self.word),
            self.reason
        )
    }
}

impl std::error::Error for ExpandError {}

/// Everything one expansion found out (BuildKit's `ProcessWordResult`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The word expanded as one string, as [`Lexer::process_word`] returns it.
    pub word: String,
    /// The word expanded and split, as [`Lexer::process_words`] returns it.
    pub words: Vec<String>,
    /// Names the word looked up that were set.
    pub matched: BTreeSet<String>,
    /// Names the word looked up that were unset.
    pub unmatched: BTreeSet<String>,
}

/// Expands words with BuildKit's shell-lexer rules.
///
/// The switches default to off, which is how BuildKit expands instruction arguments; they
/// exist for the places where BuildKit turns them on (e.g. heredocs, linting).
#[derive(Clone, Copy, Debug)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset_env: bool,
}

impl Lexer {
    /// A lexer whose escape character is `escape` (`\` unless the Dockerfile says otherwise).
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (BuildKit's `RawQuotes`).
    pub fn raw_quotes(mut self, yes: bool) -> Lexer {
        self.raw_quotes = yes;
        self
    }

    /// Keep escape characters in the output (BuildKit's `RawEscapes`).
    pub fn raw_escapes(mut self, yes: bool) -> Lexer {
        self.raw_escapes = yes;
        self
    }

    /// Treat `'` and `"` as ordinary characters (BuildKit's `SkipProcessQuotes`).
    pub fn skip_process_quotes(mut self, yes: bool) -> Lexer {
        self.skip_process_quotes = yes;
        self
    }

    /// Leave references to unset variables as written instead of expanding them to nothing
    /// (BuildKit's `SkipUnsetEnv`).
    pub fn skip_unset_env(mut self, yes: bool) -> Lexer {
        self.skip_unset_env = yes;
        self
    }

    /// Expands `word` as a single string (BuildKit's `ProcessWord`).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ExpandError> {
        self.run(word, env, false, false)
            .map(|expansion| expansion.word)
    }

    /// Expands `word` and splits the result into words (BuildKit's `ProcessWords`): white space
    /// from the word itself or from a variable's value separates words, quoted or escaped white
    /// space does not, and empty words are dropped (`""` alone gives no word). Like BuildKit
    /// (whose lexer shares one buffer between nesting levels), the part of a word written before
    /// a `${V<op>...}` is lost: `a${V:-b}c` gives `bc` here but `abc` from `process_word`.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        self.run(word, env, true, false)
            .map(|expansion| expansion.words)
    }

    /// Expands `word` and reports which variables it read (BuildKit's
    /// `ProcessWordWithMatches`).
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<Expansion, ExpandError> {
        self.run(word, env, true, true)
    }

    fn run(
        &self,
        word: &str,
        env: &dyn Env,
        split: bool,
        capture: bool,
    ) -> Result<Expansion, ExpandError> {
        if let Some(expansion) = self.plain(word, split) {
            return Ok(expansion);
        }
        let outcome = expand::Expander::new(self, word, env, split, capture)
            .run()
            .map_err(|reason| ExpandError {
                word: word.to_string(),
                reason,
            })?;
        Ok(Expansion {
            word: outcome.word,
            words: outcome.words,
            matched: outcome.matched,
            unmatched: outcome.unmatched,
        })
    }

    /// The expansion of a word with nothing to expand, quote or escape (most words), which is
    /// the word itself, split at white space; `None` when the word needs the full scanner.
    fn plain(&self, word: &str, split: bool) -> Option<Expansion> {
        let special = |ch: char| matches!(ch, '$' | '\'' | '"' | '\u{feff}') || ch == self.escape;
        if word.contains(special) {
            return None;
        }
        let words = if split {
            word.split(char::is_whitespace)
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        Some(Expansion {
            word: word.to_string(),
            words,
            ..Expansion::default()
        })
    }
}
