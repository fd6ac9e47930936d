//! One ignore pattern, compiled once into the cheapest form that decides it, and matched against
//! slash-separated relative paths without allocating.
//!
//! The meaning is moby/patternmatcher's, which BuildKit uses: the pattern is cleaned like Go's
//! `filepath.Clean`, checked the way patternmatcher checks it (Go's `filepath.Match` against
//! `.`, which reads the pattern only until that match fails), then read one character at a time:
//!
//! - `*` matches any run of characters other than `/`; `?` one character other than `/`;
//! - `**` followed by `/` (or not) matches any number of whole directories, including none
//!   (`**/a` matches `a` and `x/y/a`; `a/**/b` matches `a/b`); at the end of a pattern it matches
//!   anything, `/` included;
//! - `[...]` is a class of characters and ranges (`[a-z0-9]`), negated by a leading `^`, with `\`
//!   escaping the next character (`[!...]` is *not* a negation: `!` is an ordinary member, as in
//!   Go); a class, negated or not, may match `/`;
//! - `\` makes the next character literal;
//! - every other character is itself.
//!
//! Four of patternmatcher's shortcuts change what some patterns mean, and are kept on purpose:
//! a pattern without wildcards must equal the path; `P**` with a plain `P` matches every path
//! starting with `P` (so `foo**` matches `foobar/x`); `**S` with a plain `S` matches every path
//! ending with `S` (so `**foo` matches `barfoo`, and `**/foo` matches `foo` and `x/foo`); and in
//! a pattern that needs the general matcher, a `^` outside a class anchors at the start of the
//! path as in a regular expression (so `a^b*` never matches).
//!
//! patternmatcher matches with a Go regular expression translated from the pattern, so classes
//! follow that grammar once past Go's partial check: `]` right after `[` or `[^` is a member, and
//! so is a `-` that does not sit between two members (`x*[a-]` is accepted, `[a-]` is not, as in
//! BuildKit). Known differences, all in corners where BuildKit's translation breaks its own
//! grammar: `*`, `?` and `[:name:]` inside a class are plain members here; `\d`, `\w` and other
//! escaped letters are the letter itself (Go's regexp reads them as classes or rejects them); a
//! pattern Go's regexp would reject (`x*[z-a]`, `x*/[`, `a*b\`) is an error when the ignore
//! file is read, where BuildKit fails only once a path is matched against it (and not at all if
//! none ever is). A byte of a path that is not UTF-8 counts as one character that no literal
//! names. `**` does not cross a newline in a name, as in Go (`.` there excludes `\n`).

use crate::ignorefile::clean;

/// A character of a path that is not valid UTF-8: one byte, equal to no pattern character.
const INVALID: u32 = 0x11_0000;

/// State sets of this many words (64 states each) live on the stack; larger ones are rare.
const INLINE_WORDS: usize = 4;

/// A compiled pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    form: Form,
}

#[derive(Clone, Debug)]
enum Form {
    /// No wildcard: the path equals the text.
    Exact,
    /// `P**` with a plain `P` (the first this many bytes): the path starts with `P`.
    Prefix(usize),
    /// `**S` with a plain `S` (the text after `**`): the path ends with `S`, or `S` is `/T`
    /// and the path is `T`.
    Suffix,
    /// Anything else: an automaton over the path's characters.
    Glob(Program),
}

/// Why a pattern is malformed, at a character index of the cleaned pattern (`None`: the
/// pattern as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub index: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

impl SyntaxError {
    fn new(index: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            index: Some(index),
            message: message.into(),
            hint: None,
        }
    }

    /// The same error for a piece of pattern that starts `by` characters further on.
    fn shifted(mut self, by: usize) -> SyntaxError {
        self.index = self.index.map(|i| i + by);
        self
    }

    fn hint(mut self, hint: impl Into<String>) -> SyntaxError {
        self.hint = Some(hint.into());
        self
    }
}

impl Pattern {
    /// Compiles one pattern as patternmatcher's `New` receives it from the ignore-file reader:
    /// trimmed, cleaned again (leading `!` included, as Go does), then split into its `!` and
    /// the pattern proper.
    pub(crate) fn compile(raw: &str) -> Result<Pattern, SyntaxError> {
        let cleaned = clean(raw.trim());
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => {
                return Err(SyntaxError {
                    index: None,
                    message: "`!` alone names nothing to re-include".to_string(),
                    hint: Some("write the path to keep after the `!`, as in `!README.md`".into()),
                });
            }
            Some(rest) => (true, rest.to_string()),
            None => (false, cleaned),
        };
        let form = compile_form(&text)?;
        Ok(Pattern {
            text,
            exclusion,
            form,
        })
    }

    /// The cleaned pattern, without its `!`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True for an exception (`!pattern`), which re-includes what it matches.
    pub fn is_exception(&self) -> bool {
        self.exclusion
    }

    /// Whether `path` itself matches.
    pub(crate) fn matches(&self, path: &[u8]) -> bool {
        let text = self.text.as_bytes();
        match &self.form {
            Form::Exact => same(path, text),
            Form::Prefix(len) => has_prefix(path, &text[..*len]),
            Form::Suffix => suffix_matches(path, &text[2..]),
            Form::Glob(program) => program.matches(path, Mode::Whole),
        }
    }

    /// Whether `path` or one of its parent directories matches.
    pub(crate) fn matches_self_or_parent(&self, path: &[u8]) -> bool {
        let text = self.text.as_bytes();
        match &self.form {
            Form::Exact => {
                has_prefix(path, text) && (path.len() == text.len() || path[text.len()] == b'/')
            }
            // A parent starting with the prefix makes the path start with it too.
            Form::Prefix(len) => has_prefix(path, &text[..*len]),
            Form::Suffix => any_end(path, |end| suffix_matches(&path[..end], &text[2..])),
            Form::Glob(program) => program.matches(path, Mode::SelfOrParent),
        }
    }

    /// Whether some path strictly under directory `dir` could match (`false` only when none can).
    pub(crate) fn may_match_under(&self, dir: &[u8]) -> bool {
        let text = self.text.as_bytes();
        match &self.form {
            Form::Exact => {
                text.len() > dir.len() + 1 && text.starts_with(dir) && text[dir.len()] == b'/'
            }
            Form::Prefix(len) => {
                let prefix = &text[..*len];
                let mut dir_slash = Vec::with_capacity(dir.len() + 1);
                dir_slash.extend_from_slice(dir);
                dir_slash.push(b'/');
                dir_slash.starts_with(prefix) || prefix.starts_with(&dir_slash)
            }
            Form::Suffix => true,
            Form::Glob(program) => {
                let mut dir_slash = Vec::with_capacity(dir.len() + 1);
                dir_slash.extend_from_slice(dir);
                dir_slash.push(b'/');
                program.matches(&dir_slash, Mode::Alive)
            }
        }
    }
}

/// `**S` matching as patternmatcher's suffix shortcut does it.
fn suffix_matches(path: &[u8], suffix: &[u8]) -> bool {
    has_suffix(path, suffix) || (suffix.first() == Some(&b'/') && same(path, &suffix[1..]))
}

// Byte comparisons written out: the strings compared are short and usually differ in their
// first (or, for suffixes, last) byte, where a call to `memcmp` costs more than the comparison.

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn has_prefix(path: &[u8], prefix: &[u8]) -> bool {
    path.len() >= prefix.len() && path.iter().zip(prefix).all(|(x, y)| x == y)
}

fn has_suffix(path: &[u8], suffix: &[u8]) -> bool {
    path.len() >= suffix.len()
        && path
            .iter()
            .rev()
            .zip(suffix.iter().rev())
            .all(|(x, y)| x == y)
}

/// Whether `test` holds for the length of one of `path`'s parent directories or of `path`
/// itself (for each end of a name in it, that is).
fn any_end(path: &[u8], mut test: impl FnMut(usize) -> bool) -> bool {
    for (end, &byte) in path.iter().enumerate().skip(1) {
        if byte == b'/' && test(end) {
            return true;
        }
    }
    test(path.len())
}

/// What one character of the pattern became while reading it.
enum Token {
    Char(char),
    AnyButSlash,
    Class(Class),
    Star,
    /// `**` before more pattern: `(.*/)?`.
    Dirs,
    /// `**` ending the pattern: `.*`.
    Tail,
    /// `^` outside a class.
    Caret,
}

/// How patternmatcher classified the pattern while translating it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    General,
}

fn compile_form(text: &str) -> Result<Form, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    check_like_go(&chars)?;
    let mut tokens = Vec::new();
    let mut detected = Detected::Exact;
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    tokens.push(Token::Tail);
                    detected = if detected == Detected::Exact {
                        Detected::Prefix
                    } else {
                        Detected::General
                    };
                } else {
                    tokens.push(Token::Dirs);
                    detected = Detected::General;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::General;
            }
            '?' => {
                tokens.push(Token::AnyButSlash);
                detected = Detected::General;
            }
            '\\' => match chars.get(i) {
                Some(&escaped) => {
                    tokens.push(Token::Char(escaped));
                    i += 1;
                    detected = Detected::General;
                }
                None => {
                    return Err(SyntaxError::new(i - 1, "a `\\` at the end escapes nothing")
                        .hint("write `\\\\` for a literal backslash"));
                }
            },
            '[' => {
                let (class, next) = parse_class(&chars, i)?;
                tokens.push(Token::Class(class));
                i = next;
                detected = Detected::General;
            }
            ']' => {
                tokens.push(Token::Char(']'));
                detected = Detected::General;
            }
            '^' => tokens.push(Token::Caret),
            other => tokens.push(Token::Char(other)),
        }
        first = false;
    }
    Ok(match detected {
        Detected::Exact => Form::Exact,
        Detected::Prefix => Form::Prefix(text.len() - 2),
        Detected::Suffix => Form::Suffix,
        Detected::General => Form::Glob(Program::new(tokens)),
    })
}

/// The syntax check patternmatcher makes when it receives a pattern: Go's
/// `filepath.Match(pattern, ".")`, which reads the pattern only until the match against `.`
/// fails, so a malformed class after a `*` may pass (`a*[` does, `a[` does not).
fn check_like_go(chars: &[char]) -> Result<(), SyntaxError> {
    let mut name: &[char] = &['.'];
    let mut pos = 0;
    'pattern: while pos < chars.len() {
        let (star, start, end) = scan_chunk(chars, pos);
        pos = end;
        if star && start == end {
            return Ok(());
        }
        let chunk = &chars[start..end];
        let last = pos == chars.len();
        match match_chunk(chunk, name).map_err(|err| err.shifted(start))? {
            Some(rest) if rest.is_empty() || !last => {
                name = rest;
                continue;
            }
            _ => {}
        }
        if star {
            let mut skip = 0;
            while skip < name.len() && name[skip] != '/' {
                let attempt =
                    match_chunk(chunk, &name[skip + 1..]).map_err(|e| e.shifted(start))?;
                if let Some(rest) = attempt {
                    if !last || rest.is_empty() {
                        name = rest;
                        continue 'pattern;
                    }
                }
                skip += 1;
            }
        }
        return Ok(());
    }
    Ok(())
}

/// The next run of `*` (`star`) and the chunk after it, up to the next `*` outside a class:
/// `(star, chunk start, chunk end)`.
fn scan_chunk(chars: &[char], mut i: usize) -> (bool, usize, usize) {
    let mut star = false;
    while chars.get(i) == Some(&'*') {
        star = true;
        i += 1;
    }
    let start = i;
    let mut in_class = false;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => i += 1,
            '[' => in_class = true,
            ']' => in_class = false,
            '*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    (star, start, i)
}

/// Matches one chunk against the start of `name` as Go does, reading the whole chunk even
/// after a mismatch so that its syntax is checked: `Some(rest of name)` on a match.
fn match_chunk<'n>(
    chunk: &[char],
    mut name: &'n [char],
) -> Result<Option<&'n [char]>, SyntaxError> {
    let mut failed = false;
    let mut c = 0;
    while c < chunk.len() {
        if name.is_empty() {
            failed = true;
        }
        match chunk[c] {
            '[' => {
                let open = c;
                let subject = if failed { None } else { Some(name[0]) };
                if !failed {
                    name = &name[1..];
                }
                c += 1;
                let negated = chunk.get(c) == Some(&'^');
                if negated {
                    c += 1;
                }
                let mut inside = false;
                let mut members = 0;
                loop {
                    if chunk.get(c) == Some(&']') && members > 0 {
                        c += 1;
                        break;
                    }
                    let (lo, after) = go_class_member(chunk, c, open)?;
                    c = after;
                    let mut hi = lo;
                    if chunk.get(c) == Some(&'-') {
                        let (end, after) = go_class_member(chunk, c + 1, open)?;
                        hi = end;
                        c = after;
                    }
                    inside |= subject.is_some_and(|r| lo <= r && r <= hi);
                    members += 1;
                }
                if inside == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed {
                    failed = name[0] == '/';
                    name = &name[1..];
                }
                c += 1;
            }
            other => {
                let literal = if other == '\\' {
                    c += 1;
                    match chunk.get(c) {
                        Some(&escaped) => escaped,
                        None => {
                            return Err(SyntaxError::new(
                                c - 1,
                                "a `\\` at the end escapes nothing",
                            )
                            .hint("write `\\\\` for a literal backslash"));
                        }
                    }
                } else {
                    other
                };
                if !failed {
                    failed = literal != name[0];
                    name = &name[1..];
                }
                c += 1;
            }
        }
    }
    Ok(if failed { None } else { Some(name) })
}

/// One member of a class at `i` (possibly `\`-escaped), as Go's `getEsc` reads it: a member
/// cannot be `-` or `]`, and a class must go on after every member.
fn go_class_member(
    chars: &[char],
    mut i: usize,
    open: usize,
) -> Result<(char, usize), SyntaxError> {
    let unclosed = || unclosed_class(open);
    match chars.get(i) {
        None => return Err(unclosed()),
        Some('-') => {
            return Err(SyntaxError::new(
                i,
                "a `-` in a character class needs a character before it",
            )
            .hint("write `\\-` for a literal `-`"));
        }
        Some(']') => {
            return Err(SyntaxError::new(
                i,
                "a character class needs a member here, before its `]`",
            )
            .hint("write `\\]` for a literal `]`"));
        }
        Some('\\') => i += 1,
        Some(_) => {}
    }
    let member = *chars.get(i).ok_or_else(unclosed)?;
    i += 1;
    if i >= chars.len() {
        return Err(unclosed());
    }
    Ok((member, i))
}

fn unclosed_class(open: usize) -> SyntaxError {
    SyntaxError::new(open, "this character class `[` is never closed")
        .hint("close it with `]`, or write `\\[` for a literal `[`")
}

/// Parses a class whose `[` is at `start - 1` the way Go's regular expressions read the
/// translated pattern (patternmatcher matches with those): a `]` right after `[` or `[^` is a
/// member, a `-` is a member unless it joins two members into a range, `\` escapes the next
/// character. Returns the class and the index after its `]`.
fn parse_class(chars: &[char], start: usize) -> Result<(Class, usize), SyntaxError> {
    let open = start - 1;
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let first = i;
    let mut ranges = Vec::new();
    loop {
        match chars.get(i) {
            None => return Err(unclosed_class(open)),
            Some(']') if i != first => return Ok((Class { negated, ranges }, i + 1)),
            _ => {}
        }
        let (lo, after) = regex_class_member(chars, i, open)?;
        i = after;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']') {
            let (end, after) = regex_class_member(chars, i + 1, open)?;
            hi = end;
            if hi < lo {
                return Err(SyntaxError::new(
                    i + 1,
                    format!("the range `{lo}-{hi}` in a character class runs backwards"),
                )
                .hint(format!("write it as `{hi}-{lo}`")));
            }
            i = after;
        }
        ranges.push((lo as u32, hi as u32));
    }
}

fn regex_class_member(chars: &[char], i: usize, open: usize) -> Result<(char, usize), SyntaxError> {
    match chars.get(i) {
        Some('\\') => match chars.get(i + 1) {
            Some(&escaped) => Ok((escaped, i + 2)),
            None => Err(unclosed_class(open)),
        },
        Some(&member) => Ok((member, i + 1)),
        None => Err(unclosed_class(open)),
    }
}

#[derive(Clone, Debug)]
struct Class {
    negated: bool,
    ranges: Vec<(u32, u32)>,
}

impl Class {
    fn contains(&self, ch: u32) -> bool {
        let inside = self.ranges.iter().any(|&(lo, hi)| lo <= ch && ch <= hi);
        inside != self.negated
    }
}

/// One state of the automaton; state `i` moves to `i + 1` when its instruction is satisfied.
#[derive(Clone, Debug)]
enum Inst {
    Char(u32),
    AnyButSlash,
    Class(Box<Class>),
    /// `[^/]*`: loops on any character but `/`, or moves on without consuming.
    Star,
    /// Entry of `(.*/)?`: moves without consuming to `DirsInner` (next) or past it.
    DirsEntry,
    /// Inside `(.*/)?`: loops on any character but `\n`, and moves on after consuming a `/`.
    DirsInner,
    /// `.*` at the end: loops on any character but `\n`, or moves on.
    Tail,
    /// `^`: moves on without consuming only at the start of the path.
    StartAnchor,
    Accept,
}

/// How much of an answer a run of the automaton gives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The whole path matches.
    Whole,
    /// The whole path or one of its parent directories matches.
    SelfOrParent,
    /// The input can be extended into a match (some state is still alive after it).
    Alive,
}

/// A Thompson automaton simulated with bit sets: time linear in path length times pattern
/// length, whatever the pattern, and no allocation for patterns of up to 256 states.
#[derive(Clone, Debug)]
struct Program {
    insts: Vec<Inst>,
    /// The plain characters every match starts with, and how many states they take.
    prefix: Vec<u8>,
    prefix_states: usize,
    /// The plain characters every match ends with.
    suffix: Vec<u8>,
}

impl Program {
    fn new(tokens: Vec<Token>) -> Program {
        let mut insts = Vec::with_capacity(tokens.len() + 2);
        for token in tokens {
            match token {
                Token::Char(c) => insts.push(Inst::Char(c as u32)),
                Token::AnyButSlash => insts.push(Inst::AnyButSlash),
                Token::Class(class) => insts.push(Inst::Class(Box::new(class))),
                Token::Star => insts.push(Inst::Star),
                Token::Dirs => {
                    insts.push(Inst::DirsEntry);
                    insts.push(Inst::DirsInner);
                }
                Token::Tail => insts.push(Inst::Tail),
                Token::Caret => insts.push(Inst::StartAnchor),
            }
        }
        insts.push(Inst::Accept);
        let literal = |inst: &Inst| match inst {
            Inst::Char(c) => char::from_u32(*c),
            _ => None,
        };
        let mut prefix = String::new();
        let mut prefix_states = 0;
        for c in insts.iter().map_while(literal) {
            prefix.push(c);
            prefix_states += 1;
        }
        let body = &insts[..insts.len() - 1];
        let mut suffix_chars: Vec<char> = body.iter().rev().map_while(literal).collect();
        suffix_chars.reverse();
        Program {
            insts,
            prefix: prefix.into_bytes(),
            prefix_states,
            suffix: suffix_chars.into_iter().collect::<String>().into_bytes(),
        }
    }

    fn accept(&self) -> usize {
        self.insts.len() - 1
    }

    fn matches(&self, path: &[u8], mode: Mode) -> bool {
        let (mut start_state, mut start_pos) = (0, 0);
        if mode != Mode::Alive {
            // Cheap rejections before running the automaton: most paths fail here.
            if !has_prefix(path, &self.prefix) {
                return false;
            }
            if !self.suffix.is_empty() {
                let possible = match mode {
                    Mode::Whole => has_suffix(path, &self.suffix),
                    _ => {
                        let last = self.suffix[self.suffix.len() - 1];
                        any_end(path, |end| {
                            end > 0
                                && path[end - 1] == last
                                && has_suffix(&path[..end], &self.suffix)
                        })
                    }
                };
                if !possible {
                    return false;
                }
            }
            (start_state, start_pos) = (self.prefix_states, self.prefix.len());
        }
        let words = self.insts.len().div_ceil(64);
        if words <= INLINE_WORDS {
            let mut current = [0u64; INLINE_WORDS];
            let mut next = [0u64; INLINE_WORDS];
            let (current, next) = (&mut current[..words], &mut next[..words]);
            self.run(path, mode, (start_state, start_pos), current, next)
        } else {
            let mut current = vec![0u64; words];
            let mut next = vec![0u64; words];
            self.run(
                path,
                mode,
                (start_state, start_pos),
                &mut current,
                &mut next,
            )
        }
    }

    fn run<'s>(
        &self,
        path: &[u8],
        mode: Mode,
        (start_state, mut pos): (usize, usize),
        mut current: &'s mut [u64],
        mut next: &'s mut [u64],
    ) -> bool {
        let accept = self.accept();
        insert(current, start_state);
        self.close(current, pos == 0);
        loop {
            if pos == path.len() {
                return match mode {
                    Mode::Alive => current.iter().any(|&w| w != 0),
                    _ => contains(current, accept),
                };
            }
            if mode == Mode::SelfOrParent
                && pos > 0
                && path[pos] == b'/'
                && contains(current, accept)
            {
                return true;
            }
            let (ch, width) = decode(path, pos);
            pos += width;
            next.fill(0);
            let mut state = next_set(current, 0);
            while let Some(i) = state {
                match &self.insts[i] {
                    Inst::Char(c) => {
                        if ch == *c {
                            insert(next, i + 1);
                        }
                    }
                    Inst::AnyButSlash => {
                        if ch != u32::from(b'/') {
                            insert(next, i + 1);
                        }
                    }
                    Inst::Class(class) => {
                        if class.contains(ch) {
                            insert(next, i + 1);
                        }
                    }
                    Inst::Star => {
                        if ch != u32::from(b'/') {
                            insert(next, i);
                        }
                    }
                    Inst::DirsInner => {
                        if ch != u32::from(b'\n') {
                            insert(next, i);
                        }
                        if ch == u32::from(b'/') {
                            insert(next, i + 1);
                        }
                    }
                    Inst::Tail => {
                        if ch != u32::from(b'\n') {
                            insert(next, i);
                        }
                    }
                    Inst::DirsEntry | Inst::StartAnchor | Inst::Accept => {}
                }
                state = next_set(current, i + 1);
            }
            if next.iter().all(|&w| w == 0) {
                return false;
            }
            self.close(next, false);
            std::mem::swap(&mut current, &mut next);
        }
    }

    /// Adds every state reachable without consuming a character. All such moves go forward,
    /// so one ascending pass reaches them all.
    fn close(&self, set: &mut [u64], at_start: bool) {
        let mut state = next_set(set, 0);
        while let Some(i) = state {
            match self.insts[i] {
                Inst::Star | Inst::Tail => insert(set, i + 1),
                Inst::DirsEntry => {
                    insert(set, i + 1);
                    insert(set, i + 2);
                }
                Inst::StartAnchor if at_start => insert(set, i + 1),
                _ => {}
            }
            state = next_set(set, i + 1);
        }
    }
}

fn insert(set: &mut [u64], state: usize) {
    set[state / 64] |= 1 << (state % 64);
}

fn contains(set: &[u64], state: usize) -> bool {
    set[state / 64] & (1 << (state % 64)) != 0
}

/// The first state in `set` at or after `from`.
fn next_set(set: &[u64], from: usize) -> Option<usize> {
    let mut word = from / 64;
    let mut bits = set.get(word)? & (!0u64 << (from % 64));
    loop {
        if bits != 0 {
            return Some(word * 64 + bits.trailing_zeros() as usize);
        }
        word += 1;
        bits = *set.get(word)?;
    }
}

/// The character at `pos` and its width in bytes; a byte that does not start valid UTF-8 is
/// one [`INVALID`] character.
fn decode(path: &[u8], pos: usize) -> (u32, usize) {
    let first = path[pos];
    if first < 0x80 {
        return (u32::from(first), 1);
    }
    let width = match first {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (INVALID, 1),
    };
    match path.get(pos..pos + width).map(std::str::from_utf8) {
        Some(Ok(s)) => match s.chars().next() {
            Some(c) => (c as u32, width),
            None => (INVALID, 1),
        },
        _ => (INVALID, 1),
    }
}
