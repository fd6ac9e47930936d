//! The parse loop: physical lines → directives, comments, continuation-joined instruction
//! lines and here-document bodies, in one pass over the text, as BuildKit's `parser.Parse`.
//!
//! For each instruction the first line loses its leading whitespace, comment lines inside a
//! continuation are skipped, whitespace-only lines inside it are skipped with a warning, and
//! continuation lines keep their leading whitespace. The joined line is split by
//! [`crate::split`]; for RUN, COPY and ADD (also under ONBUILD) not in exec form, the
//! here-documents it opens take their bodies from the following lines. This module never
//! interprets an instruction beyond that.

use crate::diagnostic::{Diagnostic, Source};
use crate::directives::{self, DirectiveScanner};
use crate::heredoc;
use crate::lines::{char_width, offset_in, trim_newline, LogicalLine, PhysicalLines};
use crate::split::{self, Piece, Split};
use crate::syntax::{Directives, Dockerfile, Heredoc, Node, Pos, Word};

pub(crate) fn parse(source: &Source) -> Result<Dockerfile, Diagnostic> {
    let mut parser = Parser {
        source,
        lines: PhysicalLines::new(&source.text),
        directives: DirectiveScanner::default(),
        escape: '\\',
        logical: LogicalLine::default(),
        warnings: Vec::new(),
    };
    let mut nodes = Vec::new();
    while let Some(node) = parser.next_instruction()? {
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(Diagnostic::file(source, "file with no instructions")
            .with_hint("a Dockerfile needs at least one instruction, such as `FROM image`"));
    }
    if let Some(line) = parser.lines.too_long {
        return Err(Diagnostic::at(
            source,
            Pos::new(line, 1),
            "dockerfile line greater than max allowed size of 65535",
        )
        .with_hint("split the line with continuation lines"));
    }
    Ok(Dockerfile {
        directives: read_directives(&source.text, parser.escape),
        nodes,
        warnings: parser.warnings,
    })
}

/// The state of one pass over a Dockerfile.
struct Parser<'a> {
    source: &'a Source,
    lines: PhysicalLines<'a>,
    directives: DirectiveScanner,
    escape: char,
    /// The instruction being read, reused from one instruction to the next.
    logical: LogicalLine,
    warnings: Vec<Diagnostic>,
}

impl Parser<'_> {
    /// Reads up to and including the next instruction (with its continuation lines and
    /// here-document bodies); `None` at the end of the file.
    fn next_instruction(&mut self) -> Result<Option<Node>, Diagnostic> {
        while let Some((raw, number)) = self.lines.next() {
            let mut physical = trim_newline(raw);
            if number == 1 {
                physical = physical.strip_prefix('\u{feff}').unwrap_or(physical);
            }
            let content = physical.trim_start();
            let column = 1 + char_width(&physical[..physical.len() - content.len()]);
            self.directive(content, number, column)?;
            if content.starts_with('#') {
                continue;
            }
            let (kept, continues) = trim_continuation(content, self.escape);
            if !continues && kept.is_empty() {
                continue;
            }
            self.logical.clear();
            self.logical.push(kept, number, column);
            let end_line = if continues {
                self.join_continuation_lines(number)
            } else {
                number
            };
            return self.instruction(number, end_line).map(Some);
        }
        Ok(None)
    }

    /// Reads `content` (a line without its indentation) as a possible parser directive.
    fn directive(&mut self, content: &str, line: u32, column: u32) -> Result<(), Diagnostic> {
        let found = self.directives.scan_line(content, "#").map_err(|message| {
            Diagnostic::at(self.source, Pos::new(line, column), message)
                .with_hint("each parser directive may appear once, at the top of the file")
        })?;
        let Some(found) = found.filter(|found| found.name == "escape") else {
            return Ok(());
        };
        self.escape = match found.value {
            "\\" => '\\',
            "`" => '`',
            other => {
                let value_column = column + char_width(&content[..offset_in(content, other)]);
                return Err(Diagnostic::at(
                    self.source,
                    Pos::new(line, value_column),
                    format!("invalid escape token '{other}' does not match ` or \\"),
                )
                .with_hint("the escape character is a backslash (the default) or a backtick"));
            }
        };
        Ok(())
    }

    /// Appends the continuation lines that follow line `first` to the logical line, skipping
    /// comment lines and (with a warning) whitespace-only lines; returns the last line read.
    fn join_continuation_lines(&mut self, first: u32) -> u32 {
        let mut end_line = first;
        let mut first_empty = None;
        for (raw, number) in self.lines.by_ref() {
            end_line = number;
            let physical = trim_newline(raw);
            let unindented = physical.trim_start();
            if unindented.starts_with('#') {
                continue;
            }
            if unindented.is_empty() {
                first_empty.get_or_insert((number, physical));
                continue;
            }
            let (kept, continues) = trim_continuation(physical, self.escape);
            self.logical.push(kept, number, 1);
            if !continues {
                break;
            }
        }
        if let Some((line, physical)) = first_empty {
            self.warnings.push(Diagnostic {
                file: self.source.name.clone(),
                pos: Some(Pos::new(line, 1)),
                line_text: physical.to_string(),
                message: format!("Empty continuation line found in: {}", self.logical.text),
                hint: Some(
                    "empty continuation lines will become errors in a future release: remove \
                     the blank line or end the instruction before it"
                        .to_string(),
                ),
            });
        }
        end_line
    }

    /// Splits the joined line into a node and reads the bodies of its here-documents.
    fn instruction(&mut self, start_line: u32, end_line: u32) -> Result<Node, Diagnostic> {
        let logical = &self.logical;
        let split = split::split_line(&logical.text, 0, self.escape).map_err(|err| {
            Diagnostic::at(self.source, logical.pos(err.offset), err.message)
                .with_hint(err.expected)
        })?;
        let mut node = to_node(split, logical, start_line, end_line);
        if can_contain_heredoc(&node) && logical.text.contains("<<") {
            read_heredocs(self.source, &mut self.lines, logical, &mut node)?;
        }
        Ok(node)
    }
}

/// BuildKit's line-continuation test: the escape character followed only by spaces and tabs
/// at the end of the line, not itself preceded by the escape character (`\\` at the end is
/// an escaped backslash). Returns the line without it, and whether the line continues.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line, false);
    };
    if before.ends_with(escape) {
        return (line, false);
    }
    (before, true)
}

fn to_node(split: Split, logical: &LogicalLine, start_line: u32, end_line: u32) -> Node {
    let word = |piece: Piece| Word {
        pos: logical.pos(piece.offset),
        value: piece.value,
    };
    Node {
        keyword: split.keyword,
        pos: logical.pos(split.keyword_offset),
        flags: split.flags.into_iter().map(word).collect(),
        args: split.args.into_iter().map(word).collect(),
        json: split.json,
        heredocs: Vec::new(),
        onbuild: split
            .child
            .map(|child| Box::new(to_node(*child, logical, start_line, end_line))),
        original: split.original,
        start_line,
        end_line,
    }
}

/// BuildKit's `canContainHeredoc`: RUN, COPY and ADD (possibly under ONBUILD), not in exec form.
fn can_contain_heredoc(node: &Node) -> bool {
    let target = match (&node.keyword[..], &node.onbuild) {
        ("onbuild", Some(child)) => child,
        _ => node,
    };
    matches!(&target.keyword[..], "run" | "copy" | "add") && !target.json
}

/// Reads the body of each here-document opened on the instruction line, in order.
fn read_heredocs(
    source: &Source,
    lines: &mut PhysicalLines<'_>,
    logical: &LogicalLine,
    node: &mut Node,
) -> Result<(), Diagnostic> {
    let openers = heredoc::openers(&logical.text)
        .map_err(|message| Diagnostic::at(source, node.pos, message))?;
    for opener in openers {
        let pos = logical.pos(opener.offset);
        let mut content = String::new();
        let mut terminated = false;
        for (raw, number) in lines.by_ref() {
            node.end_line = number;
            let mut candidate = trim_newline(raw);
            if opener.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == opener.name {
                terminated = true;
                break;
            }
            content.push_str(if opener.chomp {
                raw.trim_start_matches('\t')
            } else {
                raw
            });
        }
        if !terminated {
            return Err(
                Diagnostic::at(source, pos, "unterminated heredoc").with_hint(format!(
                    "end the here-document with a line containing only `{}`",
                    opener.name
                )),
            );
        }
        node.heredocs.push(Heredoc {
            name: opener.name,
            content,
            expand: opener.expand,
            chomp: opener.chomp,
            file_descriptor: opener.file_descriptor,
            pos,
        });
    }
    Ok(())
}

/// The directives of the file: `escape` as the parse found it, `syntax` and `check` as
/// BuildKit's `DetectSyntax` and `ParseDirective` find them.
fn read_directives(text: &str, escape: char) -> Directives {
    let word = |detected: directives::Detected<'_>| {
        let line_text = text
            .split('\n')
            .nth(detected.line.saturating_sub(1) as usize)
            .unwrap_or("");
        let column = 1 + char_width(
            line_text
                .get(..offset_in(line_text, detected.value))
                .unwrap_or("")
                .trim_start_matches('\u{feff}'),
        );
        Word {
            value: detected.value.to_string(),
            pos: Pos::new(detected.line, column),
        }
    };
    Directives {
        syntax: directives::detect(text, "syntax", true).map(word),
        escape,
        check: directives::detect(text, "check", false).map(word),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("RUN a \\", '\\'), ("RUN a ", true));
        assert_eq!(trim_continuation("RUN a\\  \t", '\\'), ("RUN a", true));
        assert_eq!(trim_continuation("\\", '\\'), ("", true));
        assert_eq!(trim_continuation("  \\ ", '\\'), ("  ", true));
        assert_eq!(trim_continuation("RUN a \\\\", '\\'), ("RUN a \\\\", false));
        assert_eq!(
            trim_continuation("RUN a \\\\\\", '\\'),
            ("RUN a \\\\\\", false)
        );
        assert_eq!(trim_continuation("RUN a `", '`'), ("RUN a ", true));
        assert_eq!(trim_continuation("RUN a \\", '`'), ("RUN a \\", false));
        assert_eq!(
            trim_continuation("RUN a \\\u{b}", '\\'),
            ("RUN a \\\u{b}", false)
        );
    }
}
