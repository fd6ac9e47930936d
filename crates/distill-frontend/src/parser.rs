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
use crate::lines::{char_width, trim_newline, LogicalLine, PhysicalLines};
use crate::split::{self, Piece, Split};
use crate::syntax::{Directives, Dockerfile, Heredoc, Node, Pos, Word};

/// What an escape directive may name.
const ESCAPE_HINT: &str = "write `# escape=\\` or `# escape=`` ` (backtick), or remove the line";

pub(crate) fn parse(source: &Source) -> Result<Dockerfile, Diagnostic> {
    let text = source.text.as_str();
    let mut lines = PhysicalLines::new(text);
    let mut scanner = DirectiveScanner::default();
    let mut escape = '\\';
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut logical = LogicalLine::default();

    while let Some((raw, number)) = lines.next() {
        let mut physical = trim_newline(raw);
        if number == 1 {
            physical = physical.strip_prefix('\u{feff}').unwrap_or(physical);
        }
        let content = physical.trim_start();
        let column = 1 + char_width(&physical[..physical.len() - content.len()]);
        if let Some(found) = scanner
            .scan_line(content, "#")
            .map_err(|message| directive_error(source, number, column, message))?
        {
            if found.name == "escape" {
                escape = match found.value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        let value_column = column + char_width(&content[..offset(content, other)]);
                        return Err(Diagnostic::at(
                            source,
                            Pos::new(number, value_column),
                            format!("invalid escape token '{other}' does not match ` or \\"),
                        )
                        .with_hint(ESCAPE_HINT));
                    }
                };
            }
        }
        let content = if content.starts_with('#') {
            ""
        } else {
            content
        };
        let start_line = number;
        let (kept, mut continues) = trim_continuation(content, escape);
        if !continues && kept.is_empty() {
            continue;
        }
        logical.clear();
        logical.push(kept, number, column);
        let mut end_line = number;
        let mut first_empty_continuation = None;
        while continues {
            let Some((raw, number)) = lines.next() else {
                break;
            };
            end_line = number;
            let physical = trim_newline(raw);
            let unindented = physical.trim_start();
            if unindented.starts_with('#') {
                continue;
            }
            if unindented.is_empty() {
                first_empty_continuation.get_or_insert((number, physical));
                continue;
            }
            let (kept, more) = trim_continuation(physical, escape);
            logical.push(kept, number, 1);
            continues = more;
        }
        if let Some((line, physical)) = first_empty_continuation {
            warnings.push(empty_continuation_warning(
                source,
                line,
                physical,
                &logical.text,
            ));
        }

        let split = split::split_line(&logical.text, 0, escape).map_err(|err| {
            let mut diagnostic = Diagnostic::at(source, logical.pos(err.offset), err.message);
            diagnostic.hint = Some(err.expected.to_string());
            diagnostic
        })?;
        let mut node = to_node(split, &logical, start_line, end_line);
        if can_contain_heredoc(&node) && logical.text.contains("<<") {
            read_heredocs(source, &mut lines, &logical, &mut node)?;
        }
        nodes.push(node);
    }

    if nodes.is_empty() {
        return Err(Diagnostic::file(source, "file with no instructions")
            .with_hint("a Dockerfile needs at least one instruction, such as `FROM image`"));
    }
    if let Some(line) = lines.too_long {
        return Err(Diagnostic::at(
            source,
            Pos::new(line, 1),
            "dockerfile line greater than max allowed size of 65535",
        )
        .with_hint("split the line with continuation lines"));
    }
    Ok(Dockerfile {
        directives: read_directives(text, escape),
        nodes,
        warnings,
    })
}

fn directive_error(source: &Source, line: u32, column: u32, message: String) -> Diagnostic {
    Diagnostic::at(source, Pos::new(line, column), message)
        .with_hint("each parser directive may appear once, at the top of the file")
}

/// Byte offset of `inner` inside `outer`, where `inner` is a slice of `outer`.
fn offset(outer: &str, inner: &str) -> usize {
    (inner.as_ptr() as usize)
        .saturating_sub(outer.as_ptr() as usize)
        .min(outer.len())
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

fn empty_continuation_warning(
    source: &Source,
    line: u32,
    physical: &str,
    joined: &str,
) -> Diagnostic {
    Diagnostic {
        file: source.name.clone(),
        pos: Some(Pos::new(line, 1)),
        line_text: physical.to_string(),
        message: format!("Empty continuation line found in: {joined}"),
        hint: Some(
            "Empty continuation lines will become errors in a future release: remove the blank line or end the instruction before it".to_string(),
        ),
    }
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
                .get(..offset(line_text, detected.value))
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
