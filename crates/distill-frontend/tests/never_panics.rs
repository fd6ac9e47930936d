//! Property tests: whatever the input, `parse` and `dump` return instead of panicking, and
//! every position they report lies inside the file.

use distill_frontend::{dump, parse, Node, Pos, Source};
use proptest::prelude::*;

/// Pieces that exercise the parser's special cases when glued together at random.
const TOKENS: &[&str] = &[
    "FROM",
    "RUN",
    "run",
    "COPY",
    "ADD",
    "ENV",
    "LABEL",
    "ARG",
    "CMD",
    "ENTRYPOINT",
    "SHELL",
    "HEALTHCHECK",
    "ONBUILD",
    "EXPOSE",
    "VOLUME",
    "USER",
    "WORKDIR",
    "MAINTAINER",
    "STOPSIGNAL",
    "FOO",
    "CMD",
    "NONE",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "\\",
    "\\\n",
    "`",
    "`\n",
    "#",
    "# escape=`\n",
    "# escape=\\\n",
    "# syntax=x\n",
    "# check=skip=all\n",
    "#!",
    "--",
    "--flag",
    "--from=a",
    "--mount=type=cache,target=/x",
    "=",
    "a=b",
    "k v",
    "\"",
    "'",
    "[",
    "]",
    ",",
    "[\"a\", \"b\"]",
    "[1]",
    "[\"\\u00e9\"]",
    "\\u",
    "<<",
    "<<EOF",
    "<<-EOF",
    "<<'EOF'",
    "3<<EOF",
    "<<<",
    "EOF",
    "\tEOF",
    "$",
    "${",
    "}",
    "${x:-y}",
    "${x/a/b}",
    ":",
    "é",
    "日本",
    "\u{a0}",
    "\u{85}",
    "\u{200b}",
    "\u{feff}",
    "\u{0}",
    "\u{7f}",
    "😀",
    "x",
    "0",
    "-",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|tokens| tokens.concat())
}

fn check_positions(node: &Node, lines: u32) {
    let inside = |pos: Pos| pos.line >= 1 && pos.line <= lines.max(1) && pos.column >= 1;
    assert!(inside(node.pos), "{:?}", node.pos);
    for word in node.flags.iter().chain(node.args.iter()) {
        assert!(inside(word.pos), "{word:?}");
    }
    for heredoc in &node.heredocs {
        assert!(inside(heredoc.pos), "{heredoc:?}");
    }
    assert!(node.start_line <= node.end_line);
    if let Some(child) = &node.onbuild {
        check_positions(child, lines);
    }
}

fn run(text: &str) {
    let source = Source::new("Dockerfile", text);
    let lines = text.split('\n').count() as u32;
    match parse(&source) {
        Ok(dockerfile) => {
            let dumped = dump(&dockerfile);
            assert_eq!(dumped.lines().count(), dockerfile.nodes.len());
            for node in &dockerfile.nodes {
                check_positions(node, lines);
            }
        }
        Err(diagnostic) => {
            let _ = diagnostic.to_string();
            if let Some(pos) = diagnostic.pos {
                assert!(pos.line >= 1 && pos.line <= lines.max(1), "{pos:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        run(&text);
    }

    #[test]
    fn dockerfile_like_token_soup_never_panics(text in token_soup()) {
        run(&text);
    }

    #[test]
    fn instruction_lines_never_panic(
        lines in prop::collection::vec((prop::sample::select(TOKENS), token_soup()), 1..20)
    ) {
        let text: String = lines
            .into_iter()
            .map(|(keyword, rest)| format!("{keyword} {rest}\n"))
            .collect();
        run(&text);
    }
}
