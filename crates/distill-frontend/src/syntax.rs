//! The syntax tree the parser produces, shaped like BuildKit's parser `Node` so that
//! `distill debug parse` can be compared line by line with BuildKit's `Node.Dump()`.
//!
//! A [`Dockerfile`] is its parser directives and one [`Node`] per top-level instruction. A node
//! keeps the instruction text exactly as BuildKit's parser splits it (no variable expansion, no
//! flag validation): giving meaning to flags and arguments is the job of the instruction layer
//! above, which reports its errors at the [`Pos`] kept on every keyword, flag and argument.

/// A position in a Dockerfile: 1-based line and 1-based column, counted in characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub fn new(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }
}

/// A piece of instruction text and where it starts in the file.
///
/// For a file read with [`Source::from_bytes`](crate::Source::from_bytes), a byte that is not
/// UTF-8 appears in `value` as a private-use stand-in character; [`crate::value_bytes`] gives
/// the file's bytes back. UTF-8 files never produce stand-ins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub value: String,
    pub pos: Pos,
}

/// A here-document attached to a RUN, COPY or ADD instruction (`<<EOF ... EOF`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, without quotes, `-` or file-descriptor prefix.
    pub name: String,
    /// The body as BuildKit keeps it: every line up to the delimiter line, each with its line
    /// ending as written (`\r\n` stays), leading tabs already stripped for `<<-`.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): no expansion of the body.
    pub expand: bool,
    /// True for `<<-EOF`: leading tabs were stripped from each body line.
    pub chomp: bool,
    /// The file descriptor before `<<` (`3<<EOF`), when one was written.
    pub file_descriptor: Option<u32>,
    /// Where the `<<` token is.
    pub pos: Pos,
}

/// One instruction, as BuildKit's parser `Node` holds it.
///
/// `args` is BuildKit's `Next` chain: for the shell form the single command string; for the
/// exec (JSON) form one word per array element; for ENV and LABEL `key, value, separator`
/// triples where the separator is `"="` (`k=v` form) or `""` (legacy `k v` form) and the value
/// keeps its quotes raw; for HEALTHCHECK the type (`CMD`/`NONE`) then the command; otherwise
/// the whitespace-separated words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The keyword, lowercased (`from`, `run`, ...).
    pub keyword: String,
    /// Where the keyword starts: the instruction's position.
    pub pos: Pos,
    /// The flags exactly as written, each a `--name=value` or `--name` string.
    pub flags: Vec<Word>,
    /// The arguments (BuildKit's `Next` chain), see the type's documentation.
    pub args: Vec<Word>,
    /// True when the arguments were written in exec (JSON array) form.
    pub json: bool,
    /// Here-documents opened on this instruction's line, in order.
    pub heredocs: Vec<Heredoc>,
    /// For ONBUILD: the wrapped instruction (BuildKit's child node).
    pub onbuild: Option<Box<Node>>,
    /// The instruction's text with continuations joined, as BuildKit's `Node.Original`.
    pub original: String,
    /// First and last physical lines the instruction spans (heredoc bodies included).
    pub start_line: u32,
    pub end_line: u32,
}

/// The parser directives found at the top of a Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=...`
    pub syntax: Option<Word>,
    /// `# escape=...`: the escape character, `\` unless set to a backtick.
    pub escape: char,
    /// `# check=...`
    pub check: Option<Word>,
}

impl Default for Directives {
    fn default() -> Directives {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A parsed Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    /// Things BuildKit warns about without failing (e.g. empty continuation lines).
    pub warnings: Vec<crate::Diagnostic>,
}
