//! Rule-by-rule tests of the whole parser, asserting on the `Node.Dump()` text (what BuildKit
//! prints for the same input), on positions and on diagnostics.

use crate::{dump, parse, Diagnostic, Dockerfile, Pos, Source};

fn parsed(text: &str) -> Dockerfile {
    match parse(&Source::new("Dockerfile", text)) {
        Ok(dockerfile) => dockerfile,
        Err(diagnostic) => panic!("unexpected error for {text:?}:\n{diagnostic}"),
    }
}

fn dump_of(text: &str) -> String {
    dump(&parsed(text))
}

fn error_of(text: &str) -> Diagnostic {
    match parse(&Source::new("Dockerfile", text)) {
        Ok(dockerfile) => panic!(
            "expected an error for {text:?}, got:\n{}",
            dump(&dockerfile)
        ),
        Err(diagnostic) => diagnostic,
    }
}

#[test]
fn keywords_are_case_insensitive_and_dumped_lowercase() {
    assert_eq!(
        dump_of("from alpine\nRuN echo hi\nWORKDIR /app\n"),
        "(from \"alpine\")\n(run \"echo hi\")\n(workdir \"/app\")\n"
    );
}

#[test]
fn whitespace_around_instructions_is_dropped() {
    assert_eq!(
        dump_of("   FROM\talpine:3.20   \n\t\tRUN   echo   a  \n"),
        "(from \"alpine:3.20\")\n(run \"echo   a\")\n"
    );
}

#[test]
fn flags_are_kept_raw_and_only_at_the_start() {
    assert_eq!(
        dump_of("COPY --from=build --chmod=755 a b\n"),
        "(copy [\"--from=build\" \"--chmod=755\"] \"a\" \"b\")\n"
    );
    assert_eq!(
        dump_of("RUN --mount=type=secret,id=\"a b\" --network=none cat x --not-a-flag\n"),
        "(run [\"--mount=type=secret,id=a b\" \"--network=none\"] \"cat x --not-a-flag\")\n"
    );
    // A bare `--` ends the flags and is dropped.
    assert_eq!(
        dump_of("COPY --link -- --weird-name /dst\n"),
        "(copy [\"--link\"] \"--weird-name\" \"/dst\")\n"
    );
    // A flag without a value, followed by a word, stays a bare flag.
    assert_eq!(
        dump_of("COPY --link src dst\n"),
        "(copy [\"--link\"] \"src\" \"dst\")\n"
    );
    // Flags are not validated here.
    assert_eq!(dump_of("CMD --doit a b\n"), "(cmd [\"--doit\"] \"a b\")\n");
    assert_eq!(dump_of("RUN --mount=x\n"), "(run [\"--mount=x\"])\n");
}

#[test]
fn exec_form_and_its_fallback() {
    assert_eq!(
        dump_of("CMD [\"echo\", \"a\\\"b\", \"\\u00e9\\t\"]\n"),
        "(cmd \"echo\" \"a\\\"b\" \"é\\t\")\n"
    );
    assert_eq!(
        dump_of("ENTRYPOINT [\"a\",\nCMD ['a']\n"),
        "(entrypoint \"[\\\"a\\\",\")\n(cmd \"['a']\")\n"
    );
    assert_eq!(dump_of("CMD [\"a\"] trailing\n"), "(cmd \"a\")\n");
    assert_eq!(dump_of("CMD []\n"), "(cmd)\n");
    assert_eq!(
        dump_of("SHELL [\"pwsh\", \"-c\"]\n"),
        "(shell \"pwsh\" \"-c\")\n"
    );
    assert_eq!(
        dump_of("COPY [\"a b\", \"/c\"]\nCOPY [a] b\nVOLUME /a /b\n"),
        "(copy \"a b\" \"/c\")\n(copy \"[a]\" \"b\")\n(volume \"/a\" \"/b\")\n"
    );
    let dockerfile = parsed("FROM a\nRUN [ \"x\" ]\nRUN x\n");
    assert!(dockerfile.nodes[1].json);
    assert!(!dockerfile.nodes[2].json);
}

#[test]
fn exec_form_with_non_strings_is_an_error() {
    let err = error_of("FROM a\nCMD [\"a\", 1]\n");
    assert_eq!(
        err.message,
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(err.pos, Some(Pos::new(2, 11)));
    assert_eq!(err.line_text, "CMD [\"a\", 1]");
    assert!(err.hint.is_some());
}

#[test]
fn env_and_label_become_triples() {
    assert_eq!(
        dump_of("ENV a=b c=\"d e\" f= g=h\\ i\n"),
        "(env \"a\" \"b\" \"=\" \"c\" \"\\\"d e\\\"\" \"=\" \"f\" \"\" \"=\" \"g\" \"h\\\\ i\" \"=\")\n"
    );
    assert_eq!(
        dump_of("ENV PATH /usr/local/bin:$PATH\nENV A  \"b  c\"\n"),
        "(env \"PATH\" \"/usr/local/bin:$PATH\" \"\")\n(env \"A\" \"\\\"b  c\\\"\" \"\")\n"
    );
    assert_eq!(
        dump_of("LABEL \"com.example\"=\"x y\" version=1\n"),
        "(label \"\\\"com.example\\\"\" \"\\\"x y\\\"\" \"=\" \"version\" \"1\" \"=\")\n"
    );
    assert_eq!(dump_of("ENV\n"), "(env)\n");
}

#[test]
fn env_and_label_errors() {
    let err = error_of("FROM a\nENV onlyname\n");
    assert_eq!(err.message, "ENV must have two arguments");
    assert_eq!(err.pos, Some(Pos::new(2, 5)));
    let err = error_of("FROM a\nLABEL a=b  c\n");
    assert_eq!(
        err.message,
        "Syntax error - can't find = in \"c\". Must be of the form: name=value"
    );
    assert_eq!(err.pos, Some(Pos::new(2, 12)));
    let err = error_of("LABEL x\n");
    assert_eq!(err.message, "LABEL must have two arguments");
}

#[test]
fn arg_expose_from_and_plain_strings() {
    assert_eq!(
        dump_of("ARG a b=c \"d e\" f=\"\"\n"),
        "(arg \"a\" \"b=c\" \"\\\"d e\\\"\" \"f=\\\"\\\"\")\n"
    );
    assert_eq!(
        dump_of("FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nEXPOSE 80 443/tcp\n"),
        "(from [\"--platform=$BUILDPLATFORM\"] \"golang:1.22\" \"AS\" \"build\")\n(expose \"80\" \"443/tcp\")\n"
    );
    assert_eq!(
        dump_of("USER a b\nSTOPSIGNAL SIGTERM\nMAINTAINER Jo <jo@example.com>\nWORKDIR\n"),
        "(user \"a b\")\n(stopsignal \"SIGTERM\")\n(maintainer \"Jo <jo@example.com>\")\n(workdir)\n"
    );
}

#[test]
fn healthcheck_type_then_command() {
    assert_eq!(
        dump_of("HEALTHCHECK --interval=30s CMD curl -f http://localhost/ || exit 1\n"),
        "(healthcheck [\"--interval=30s\"] \"CMD\" \"curl -f http://localhost/ || exit 1\")\n"
    );
    assert_eq!(
        dump_of("HEALTHCHECK CMD [\"curl\", \"-f\"]\nHEALTHCHECK NONE\nHEALTHCHECK\n"),
        "(healthcheck \"CMD\" \"curl\" \"-f\")\n(healthcheck \"NONE\")\n(healthcheck)\n"
    );
    assert!(parsed("HEALTHCHECK CMD [\"a\"]\n").nodes[0].json);
}

#[test]
fn onbuild_wraps_one_instruction() {
    assert_eq!(
        dump_of("ONBUILD RUN echo hi\nonbuild copy --from=x [\"a\", \"b\"]\nONBUILD\nONBUILD ONBUILD ENV a=b\n"),
        "(onbuild (run \"echo hi\"))\n(onbuild (copy [\"--from=x\"] \"a\" \"b\"))\n(onbuild)\n(onbuild (onbuild (env \"a\" \"b\" \"=\")))\n"
    );
    let node = &parsed("ONBUILD RUN x\n").nodes[0];
    let child = node.onbuild.as_deref().expect("wrapped instruction");
    assert_eq!(child.keyword, "run");
    assert_eq!(child.pos, Pos::new(1, 9));
    assert_eq!(child.args[0].pos, Pos::new(1, 13));
    assert_eq!(child.original, "RUN x");
}

#[test]
fn unknown_instructions_are_kept_with_an_empty_argument() {
    assert_eq!(dump_of("FROM a\nFORM b c\n"), "(from \"a\")\n(form \"\")\n");
    // A lone continuation character makes an instruction with no keyword.
    assert_eq!(dump_of("FROM a\n\\"), "(from \"a\")\n(\"\")\n");
}

#[test]
fn comments_only_at_line_start() {
    assert_eq!(
        dump_of("# comment\n   # indented comment\nRUN echo # not a comment\n"),
        "(run \"echo # not a comment\")\n"
    );
}

#[test]
fn continuations_join_lines_keeping_their_indentation() {
    assert_eq!(
        dump_of("RUN apt-get update && \\\n    apt-get install -y \\\n\tcurl\n"),
        "(run \"apt-get update &&     apt-get install -y \\tcurl\")\n"
    );
    // Comment lines inside a continuation are dropped, whatever their indentation.
    assert_eq!(
        dump_of("RUN a \\\n  # note\n# another\n  b\n"),
        "(run \"a   b\")\n"
    );
    // An escaped escape character at the end does not continue the line.
    assert_eq!(
        dump_of("RUN echo \\\\\nRUN b\n"),
        "(run \"echo \\\\\\\\\")\n(run \"b\")\n"
    );
    // Spaces and tabs after the escape character are allowed.
    assert_eq!(dump_of("RUN a \\ \t\n b\n"), "(run \"a  b\")\n");
    // A trailing continuation at the end of the file ends the instruction.
    assert_eq!(dump_of("FROM a\nRUN a \\"), "(from \"a\")\n(run \"a\")\n");
    assert_eq!(dump_of("FROM a\nRUN a \\\n"), "(from \"a\")\n(run \"a\")\n");
}

#[test]
fn empty_continuation_lines_warn() {
    let dockerfile = parsed("FROM a\nRUN a \\\n\n   \n  b\nRUN c\n");
    assert_eq!(
        dump(&dockerfile),
        "(from \"a\")\n(run \"a   b\")\n(run \"c\")\n"
    );
    assert_eq!(dockerfile.warnings.len(), 1);
    let warning = &dockerfile.warnings[0];
    assert_eq!(
        warning.message,
        "Empty continuation line found in: RUN a   b"
    );
    assert_eq!(warning.pos, Some(Pos::new(3, 1)));
    // A comment line is not an empty line.
    assert!(parsed("RUN a \\\n# c\n b\n").warnings.is_empty());
}

#[test]
fn crlf_line_endings() {
    let dockerfile = parsed("FROM a\r\nRUN a \\\r\n  b\r\nENV x=y\r\n");
    assert_eq!(
        dump(&dockerfile),
        "(from \"a\")\n(run \"a   b\")\n(env \"x\" \"y\" \"=\")\n"
    );
    // A lone carriage return inside a line is text.
    assert_eq!(dump_of("RUN a\rb\n"), "(run \"a\\rb\")\n");
}

#[test]
fn escape_directive_changes_continuation_and_words() {
    let text = "# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\\nCOPY a `\n  c:\\dst\\\nENV a=b` c\n";
    let dockerfile = parsed(text);
    assert_eq!(dockerfile.directives.escape, '`');
    assert_eq!(
        dump(&dockerfile),
        "(from \"mcr.microsoft.com/windows\")\n(run \"dir c:\\\\\")\n(copy \"a\" \"c:\\\\dst\\\\\")\n(env \"a\" \"b` c\" \"=\")\n"
    );
}

#[test]
fn directives_follow_buildkit_rules() {
    let dockerfile = parsed(
        "\u{feff}# Syntax = docker/dockerfile:1.7 \n#check=skip=all\n  # ESCAPE=`\nFROM a `\n b\n",
    );
    assert_eq!(dockerfile.directives.escape, '`');
    let syntax = dockerfile.directives.syntax.as_ref().expect("syntax");
    assert_eq!(syntax.value, "docker/dockerfile:1.7");
    assert_eq!(syntax.pos, Pos::new(1, 12));
    assert_eq!(
        dockerfile
            .directives
            .check
            .as_ref()
            .map(|w| w.value.as_str()),
        Some("skip=all")
    );
    assert_eq!(dump(&dockerfile), "(from \"a\" \"b\")\n");

    // After an ordinary comment, a blank line or an instruction, directives are comments.
    for text in [
        "# hello\n# escape=`\nRUN a `\n",
        "\n# escape=`\nRUN a `\n",
        "FROM a\n# escape=`\nRUN a `\n",
        "#!/usr/bin/env buildctl\n# escape=`\nRUN a `\n",
        "# unknown=1\n# escape=`\nRUN a `\n",
    ] {
        assert_eq!(parsed(text).directives.escape, '\\', "{text:?}");
    }
    // The syntax directive is still found after a `#!` line.
    let dockerfile = parsed("#!/usr/bin/env buildctl\n# syntax=a/b\nFROM c\n");
    assert_eq!(
        dockerfile.directives.syntax.map(|w| w.value),
        Some("a/b".to_string())
    );
}

#[test]
fn directive_errors() {
    let err = error_of("# escape=x\nFROM a\n");
    assert_eq!(
        err.message,
        "invalid escape token 'x' does not match ` or \\"
    );
    assert_eq!(err.pos, Some(Pos::new(1, 10)));
    let err = error_of("# syntax=a\n# escape=`\n# SYNTAX=b\nFROM a\n");
    assert_eq!(err.message, "only one syntax parser directive can be used");
    assert_eq!(err.pos, Some(Pos::new(3, 1)));
    let err = error_of("# escape=  \nFROM a\n");
    assert_eq!(
        err.message,
        "invalid escape token ' ' does not match ` or \\"
    );
}

#[test]
fn no_instructions_is_an_error() {
    for text in [
        "",
        "\n\n",
        "# only a comment\n",
        "# syntax=docker/dockerfile:1\n",
        "\u{feff}",
    ] {
        let err = error_of(text);
        assert_eq!(err.message, "file with no instructions", "{text:?}");
        assert_eq!(err.pos, None);
    }
}

#[test]
fn heredocs_take_their_bodies_from_the_next_lines() {
    let text = "FROM a\nRUN <<EOF\necho hi\n  EOF\nEOF\nRUN x\n";
    let dockerfile = parsed(text);
    assert_eq!(
        dump(&dockerfile),
        "(from \"a\")\n(run \"<<EOF\")\n(run \"x\")\n"
    );
    let heredoc = &dockerfile.nodes[1].heredocs[0];
    assert_eq!(heredoc.name, "EOF");
    assert_eq!(heredoc.content, "echo hi\n  EOF\n");
    assert!(heredoc.expand);
    assert_eq!(heredoc.pos, Pos::new(2, 5));
    assert_eq!(dockerfile.nodes[1].end_line, 5);
}

#[test]
fn heredoc_variants() {
    let text = "COPY --chmod=755 <<-\"one\" 3<<two /dst/\n\t\tbody $x\n\tone\nsecond\ntwo\n";
    let dockerfile = parsed(text);
    assert_eq!(
        dump(&dockerfile),
        "(copy [\"--chmod=755\"] \"<<-\\\"one\\\"\" \"3<<two\" \"/dst/\")\n"
    );
    let docs = &dockerfile.nodes[0].heredocs;
    assert_eq!(docs.len(), 2);
    assert_eq!(
        (docs[0].name.as_str(), docs[0].chomp, docs[0].expand),
        ("one", true, false)
    );
    assert_eq!(docs[0].content, "body $x\n");
    assert_eq!(
        (docs[1].name.as_str(), docs[1].file_descriptor),
        ("two", Some(3))
    );
    assert_eq!(docs[1].content, "second\n");
    assert_eq!(docs[1].pos, Pos::new(1, 27));
}

#[test]
fn heredoc_detection_rules() {
    // Not in exec form, not in other instructions, not inside quotes, not a here-string.
    for text in [
        "RUN [\"cat\", \"<<EOF\"]\n",
        "ENV a=<<EOF\n",
        "RUN echo \"<<EOF\"\n",
        "RUN cat <<<here\n",
        "RUN echo a<<EOF\n",
        "RUN cat <<EOF \"unclosed\n",
    ] {
        assert!(parsed(text).nodes[0].heredocs.is_empty(), "{text:?}");
    }
    // Under ONBUILD the heredoc belongs to the ONBUILD node, as in BuildKit.
    let dockerfile = parsed("ONBUILD RUN <<EOF\nx\nEOF\n");
    assert_eq!(dump(&dockerfile), "(onbuild (run \"<<EOF\"))\n");
    assert_eq!(dockerfile.nodes[0].heredocs[0].content, "x\n");
    // The opener may come after continuation lines; the body follows the joined line.
    let dockerfile = parsed("RUN cat \\\n <<EOF\nbody\nEOF\n");
    assert_eq!(dockerfile.nodes[0].heredocs[0].content, "body\n");
    // CRLF bodies keep their line endings; the terminator matches without them.
    let dockerfile = parsed("RUN <<EOF\r\nbody\r\nEOF\r\nRUN x\r\n");
    assert_eq!(dockerfile.nodes[0].heredocs[0].content, "body\r\n");
    assert_eq!(dockerfile.nodes.len(), 2);
}

#[test]
fn unterminated_heredoc_is_an_error() {
    let err = error_of("FROM a\nRUN <<EOF cat\nbody\n");
    assert_eq!(err.message, "unterminated heredoc");
    assert_eq!(err.pos, Some(Pos::new(2, 5)));
    assert_eq!(err.line_text, "RUN <<EOF cat");
    let err = error_of("RUN <<A <<B\nA\n");
    assert_eq!(err.message, "unterminated heredoc");
    assert_eq!(err.pos, Some(Pos::new(1, 9)));
}

#[test]
fn strings_are_quoted_like_go() {
    assert_eq!(
        dump_of("RUN echo \"tab\there\" é 日本 \u{1}\u{7f} \u{a0}x \u{200b}\n"),
        "(run \"echo \\\"tab\\there\\\" é 日本 \\x01\\x7f \\u00a0x \\u200b\")\n"
    );
    assert_eq!(
        dump_of("CMD [\"\\ud83d\\ude00\", \"\\u0000\", \"\\ud800\"]\n"),
        "(cmd \"😀\" \"\\x00\" \"�\")\n"
    );
}

#[test]
fn non_ascii_flags_read_byte_by_byte() {
    // BuildKit reads flag text one byte at a time as Latin-1.
    assert_eq!(
        dump_of("COPY --chown=é a b\n"),
        "(copy [\"--chown=Ã©\"] \"a\" \"b\")\n"
    );
    // ... so the second byte of a no-break space ends the flag.
    assert_eq!(
        dump_of("COPY --chown=a\u{a0}b c\n"),
        "(copy [\"--chown=aÂ\"] \"b\" \"c\")\n"
    );
    // Unicode spaces separate ENV words.
    assert_eq!(
        dump_of("ENV a=b\u{a0}c=d\n"),
        "(env \"a\" \"b\" \"=\" \"c\" \"d\" \"=\")\n"
    );
}

#[test]
fn healthcheck_type_is_cut_where_buildkit_cuts_it() {
    let dockerfile = parsed("HEALTHCHECK CMD\u{a0}curl x\n");
    assert_eq!(dump(&dockerfile), "(healthcheck \"CMD\\xc2\" \"curl x\")\n");
    // The value holds BuildKit's exact bytes: the cut character's first byte stands alone.
    assert_eq!(
        crate::value_bytes(&dockerfile.nodes[0].args[0].value).as_ref(),
        b"CMD\xc2"
    );
}

#[test]
fn bytes_that_are_not_utf8_are_kept_and_dumped_like_go() {
    let source = Source::from_bytes(
        "Dockerfile",
        b"FROM a\nMAINTAINER Jos\xe9 <j@example.com>\nENV NAME=Ren\xe9\nRUN echo \xe4\xa0\\\n\x80 done\n"
            .to_vec(),
    );
    let dockerfile = parse(&source).expect("parses");
    assert_eq!(
        dump(&dockerfile),
        "(from \"a\")\n(maintainer \"Jos\\xe9 <j@example.com>\")\n(env \"NAME\" \"Ren\u{fffd}\" \"=\")\n(run \"echo \u{4800} done\")\n"
    );
    assert_eq!(
        crate::value_bytes(&dockerfile.nodes[1].args[0].value).as_ref(),
        b"Jos\xe9 <j@example.com>"
    );
}

#[test]
fn positions_on_keywords_flags_and_arguments() {
    let text = "FROM a\n  COPY --from=b \\\n\t  src  \\\n  dst\n";
    let node = &parsed(text).nodes[1];
    assert_eq!(node.pos, Pos::new(2, 3));
    assert_eq!(node.flags[0].pos, Pos::new(2, 8));
    assert_eq!(node.args[0].value, "src");
    assert_eq!(node.args[0].pos, Pos::new(3, 4));
    assert_eq!(node.args[1].pos, Pos::new(4, 3));
    assert_eq!((node.start_line, node.end_line), (2, 4));

    let node = &parsed("ENV  é=1 b=2\n").nodes[0];
    assert_eq!(node.args[0].pos, Pos::new(1, 6));
    assert_eq!(node.args[1].pos, Pos::new(1, 8));
    assert_eq!(node.args[3].pos, Pos::new(1, 10));

    let node = &parsed("CMD [\"a\",  \"b\"]\n").nodes[0];
    assert_eq!(node.args[1].pos, Pos::new(1, 12));
}

#[test]
fn original_text_is_the_joined_line() {
    let node = &parsed("RUN a \\\n  b\n").nodes[0];
    assert_eq!(node.original, "RUN a   b");
}

#[test]
fn long_non_ascii_lines_keep_exact_positions() {
    let words = 6_000;
    let text = format!("LABEL {}\n", "é=1 ".repeat(words));
    let node = &parsed(&text).nodes[0];
    assert_eq!(node.args.len(), words * 3);
    // Each "é=1 " is four characters; the last key starts after `LABEL ` and the others.
    let last_key = &node.args[(words - 1) * 3];
    assert_eq!(last_key.pos, Pos::new(1, 7 + 4 * (words as u32 - 1)));
}
