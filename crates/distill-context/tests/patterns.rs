//! The pattern rules, one table per rule: each row is an ignore file, a path, and whether
//! BuildKit (moby/patternmatcher as its context transfer uses it) excludes that path.

use distill_context::{IgnoreFile, MatchInfo, Matcher};

fn matcher(text: &str) -> Matcher {
    let file = IgnoreFile::parse(text, ".dockerignore");
    match Matcher::from_ignore_file(&file) {
        Ok(matcher) => matcher,
        Err(err) => panic!("{text:?} should compile:\n{err}"),
    }
}

/// Whether a walker excludes `path`: every parent directory is decided first and its results
/// handed down, as BuildKit's walker does.
fn walker_excludes(matcher: &Matcher, path: &str) -> bool {
    let mut parent: Option<MatchInfo> = None;
    let mut end = 0;
    loop {
        let next = path[end..].find('/').map(|i| end + i);
        let prefix = &path[..next.unwrap_or(path.len())];
        let mut info = MatchInfo::new(matcher);
        let excluded =
            matcher.is_excluded_with_parent(prefix.as_bytes(), parent.as_ref(), &mut info);
        match next {
            Some(slash) => {
                parent = Some(info);
                end = slash + 1;
            }
            None => return excluded,
        }
    }
}

fn check(rule: &str, cases: &[(&str, &str, bool)]) {
    let mut failures = Vec::new();
    for &(patterns, path, want) in cases {
        let matcher = matcher(patterns);
        let standalone = matcher.is_excluded(path);
        let walked = walker_excludes(&matcher, path);
        if standalone != want || walked != want {
            failures.push(format!(
                "{patterns:?} on {path:?}: want {want}, is_excluded {standalone}, walker {walked}"
            ));
        }
    }
    assert!(failures.is_empty(), "{rule}:\n{}", failures.join("\n"));
}

#[test]
fn plain_names_match_from_the_context_root_only() {
    check(
        "plain names",
        &[
            ("foo", "foo", true),
            ("foo", "foobar", false),
            ("foo", "fo", false),
            ("foo", "x/foo", false),
            ("foo/bar", "foo/bar", true),
            ("foo/bar", "foo", false),
            ("a.b", "a.b", true),
            ("a.b", "axb", false),
            ("a+b(c)|{d}$", "a+b(c)|{d}$", true),
            ("^foo", "^foo", true),
            ("^foo", "foo", false),
            ("é", "é", true),
        ],
    );
}

#[test]
fn reading_cleans_patterns() {
    check(
        "cleaning",
        &[
            ("/foo", "foo", true),
            ("foo/", "foo", true),
            ("foo//bar/", "foo/bar", true),
            ("./foo/../bar", "bar", true),
            ("./foo/../bar", "foo", false),
            ("  foo  ", "foo", true),
            ("\tfoo", "foo", true),
            ("  # not a comment", "# not a comment", true),
            ("# a comment", "# a comment", false),
            ("/", "anything", false),
            // The exclusion `!../../x` is cleaned a second time with its `!`, which eats the
            // `!`: BuildKit ends up excluding `x`.
            ("!../../x", "x", true),
            ("!../x", "x", false),
        ],
    );
}

#[test]
fn a_pattern_matching_a_directory_excludes_its_contents() {
    check(
        "parents",
        &[
            ("foo", "foo/bar", true),
            ("foo", "foo/bar/baz", true),
            ("foo/bar", "foo/bar/baz/qux", true),
            ("*", "a/b/c", true),
            ("*/b", "a/b/c", true),
            ("a/*", "a", false),
            ("a/*", "a/b/c", true),
            ("**/*.log", "x.log/inner", true),
            ("b", "a/b/c", false),
        ],
    );
}

#[test]
fn star_and_question_mark_never_cross_a_slash() {
    check(
        "* and ?",
        &[
            ("*", "anything", true),
            ("*.go", "main.go", true),
            ("*.go", "cmd/main.go", false),
            ("*/*.go", "cmd/main.go", true),
            ("*/*.go", "a/b/c.go", false),
            ("a*b", "ab", true),
            ("a*b", "axxb", true),
            ("a*b", "a/b", false),
            ("a*b*c", "aXbYbZc", true),
            ("*/temp*", "somedir/temporary.txt", true),
            ("*/temp*", "somedir/sub/temp", false),
            ("*/*/temp*", "somedir/subdir/temporary.txt", true),
            ("temp?", "tempa", true),
            ("temp?", "temp", false),
            ("temp?", "tempab", false),
            ("a?b", "a/b", false),
            ("?", "é", true),
            ("??", "é", false),
            ("a*", "a\nb", true),
            ("a?b", "a\nb", true),
        ],
    );
}

#[test]
fn double_star_matches_any_number_of_directories() {
    check(
        "**",
        &[
            ("**", "anything/at/all", true),
            ("**/foo", "foo", true),
            ("**/foo", "a/b/foo", true),
            ("**/foo", "a/foo/bar", true),
            ("**/foo", "afoo", false),
            ("**/*.log", "x.log", true),
            ("**/*.log", "a/b/x.log", true),
            ("**/*.log", "log", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/xb", false),
            ("a/**/b", "ab", false),
            ("a/**/*.txt", "a/t.txt", true),
            ("a/**/*.txt", "a/x/y/t.txt", true),
            ("a/**/*.txt", "b/t.txt", false),
            ("foo/**", "foo/bar", true),
            ("foo/**", "foo/a/b", true),
            ("foo/**", "foo", false),
            ("**/a/**", "x/a/y", true),
            ("**/a/**", "a/y", true),
            ("**/a/**", "a", false),
            ("a**b", "ab", true),
            ("a**b", "ax/b", true),
            ("a**b", "axb", false),
            ("***", "a/b", true),
            // `**` does not cross a newline, as in Go's regular expressions.
            ("a/**/b", "a/x\ny/b", false),
            ("a/*/**", "a/x/y\nz", false),
        ],
    );
}

#[test]
fn patternmatcher_shortcuts_are_kept() {
    check(
        "shortcuts",
        &[
            // `P**` with a plain P is a prefix test.
            ("foo**", "foobar/x", true),
            ("foo**", "foo", true),
            ("foo**", "fo", false),
            // `**S` with a plain S is a suffix test.
            ("**foo", "barfoo", true),
            ("**foo", "x/barfoo", true),
            ("**foo", "foo", true),
            ("**foo", "foox", false),
            ("**^x", "y^x", true),
            // A `^` outside a class anchors at the start once the general matcher is needed.
            ("a^b*", "a^b", false),
            ("a^b*", "a^bc", false),
            ("^a*", "a", true),
            ("^a*", "ab", true),
            ("^a*", "^a", false),
            // A `]` alone is literal but needs the general matcher: no suffix shortcut then.
            ("**]", "]", true),
            ("**]", "x/]", true),
            ("**]", "x]", false),
        ],
    );
}

#[test]
fn character_classes() {
    check(
        "[...]",
        &[
            ("[abc]", "b", true),
            ("[abc]", "d", false),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("[a-cx-z]", "y", true),
            ("[^a-c]x", "dx", true),
            ("[^a-c]x", "ax", false),
            // `!` is an ordinary member, not a negation.
            ("[!a]", "!", true),
            ("[!a]", "b", false),
            // A class, negated or not, may match a slash.
            ("a[^x]b", "a/b", true),
            ("a[/]b", "a/b", true),
            ("[\\]]", "]", true),
            ("[\\-]", "-", true),
            ("[a\\-z]", "-", true),
            ("[a\\-z]", "b", false),
            ("[\\\\]", "\\", true),
            ("[[]", "[", true),
            ("[é]", "é", true),
            ("[^é]", "e", true),
            ("[Tt]humbs.db", "Thumbs.db", true),
            ("[Tt]humbs.db", "thumbs.db", true),
            ("[Tt]humbs.db", "xhumbs.db", false),
            ("[a-a]", "a", true),
            ("x[*]", "x*", true),
            ("x[*]", "xa", false),
            ("x[?]", "x?", true),
            // After a `*`, Go's syntax check stops early and the class is read as Go's regular
            // expressions read it: `]` first and `-` first or last are members.
            ("x*[a-]", "xa", true),
            ("x*[a-]", "x-", true),
            ("x*[a-]", "xb", false),
            ("x*[-a]", "x-", true),
            ("x*[]a]", "x]", true),
            ("x*[]a]", "xa", true),
            ("x*[]a]", "xb", false),
            ("x*[a-b-c]", "x-", true),
            ("x*[a-b-c]", "xc", true),
            ("x*[a-b-c]", "xd", false),
            ("x*[^]a]", "xb", true),
            ("x*[^]a]", "x]", false),
            ("**/*[-_]test.go", "a/b_test.go", true),
        ],
    );
}

#[test]
fn backslash_escapes_the_next_character() {
    check(
        "\\",
        &[
            ("\\*", "*", true),
            ("\\*", "x", false),
            ("a\\?b", "a?b", true),
            ("a\\?b", "axb", false),
            ("\\[x\\]", "[x]", true),
            ("\\a", "a", true),
            ("\\\\", "\\", true),
            ("a\\/b", "a/b", true),
            ("**/\\*", "x/*", true),
            ("**/\\*", "x/y", false),
        ],
    );
}

#[test]
fn the_last_matching_pattern_wins_and_exceptions_re_include() {
    check(
        "order and exceptions",
        &[
            ("*.log\n!important.log", "a.log", true),
            ("*.log\n!important.log", "important.log", false),
            ("!important.log\n*.log", "important.log", true),
            ("build\n!build/keep", "build", true),
            ("build\n!build/keep", "build/x", true),
            ("build\n!build/keep", "build/keep", false),
            ("build\n!build/keep", "build/keep/deep", false),
            ("build\n!build/keep\nbuild/keep/tmp", "build/keep/tmp", true),
            (
                "build\n!build/keep\nbuild/keep/tmp",
                "build/keep/src",
                false,
            ),
            ("!keep\n*", "keep", true),
            ("*\n!keep", "keep", false),
            ("*\n!keep", "other", true),
            ("**/*.log\n!important.log\nlogs", "logs/important.log", true),
            ("**/*.log\n!**/important.log", "a/b/important.log", false),
            ("docs\n!docs/*.md\ndocs/secret.md", "docs/README.md", false),
            ("docs\n!docs/*.md\ndocs/secret.md", "docs/secret.md", true),
            (
                "node_modules\n!node_modules/keep/**",
                "node_modules/keep",
                true,
            ),
            (
                "node_modules\n!node_modules/keep/**",
                "node_modules/keep/a.js",
                false,
            ),
            (
                "node_modules\n!node_modules/keep/**",
                "node_modules/other/a.js",
                true,
            ),
            ("a\n!a\na", "a/b", true),
            ("!a", "a", false),
        ],
    );
}

#[test]
fn walker_results_differ_from_parent_rematching_in_one_corner() {
    // `!dir` is skipped for `dir` (nothing to re-include yet), so the walker never records it
    // as matching `dir`, and tries it on `dir/file` alone, where it does not match.
    let m = matcher("*/file\n!dir");
    assert!(!m.is_excluded("dir/file"));
    assert!(walker_excludes(&m, "dir/file"));
    assert!(!walker_excludes(&m, "dir"));
}

#[test]
fn exceptions_decide_which_excluded_directories_must_be_walked() {
    let cases: &[(&str, &str, bool)] = &[
        ("node_modules", "node_modules", false),
        ("node_modules\n!node_modules/keep/**", "node_modules", true),
        (
            "node_modules\n!node_modules/keep/**",
            "node_modules/keep",
            true,
        ),
        (
            "node_modules\n!node_modules/keep/**",
            "node_modules/other",
            false,
        ),
        (
            "node_modules\n!node_modules/keep/a.js",
            "node_modules",
            true,
        ),
        (
            "node_modules\n!node_modules/keep/a.js",
            "node_modules/keep",
            true,
        ),
        (
            "node_modules\n!node_modules/keep/a.js",
            "node_modules/keep/a.js",
            false,
        ),
        (
            "node_modules\n!node_modules/keep/a.js",
            "node_modules/kee",
            false,
        ),
        ("build\n!**/important.log", "build/deep/dir", true),
        ("build\n!**important.log", "build", true),
        ("build\n!*/*.md", "build", true),
        ("build\n!*/*.md", "build/sub", false),
        ("build\n!docs/*.md", "build", false),
        ("build\n!b*/x", "build", true),
        ("build\n!b*/x", "build/x", false),
        ("build\n!bu**", "build", true),
        ("build\n!bu**", "other", false),
        ("*\n![a-c]*/keep", "bar", true),
        ("*\n![a-c]*/keep", "dar", false),
        ("*\n!a[^x]b/keep", "a", true),
    ];
    for &(patterns, dir, want) in cases {
        let m = matcher(patterns);
        assert_eq!(
            m.may_include_under(dir.as_bytes()),
            want,
            "{patterns:?} under {dir:?}"
        );
    }
}

#[test]
fn bad_patterns_are_errors_naming_file_line_and_column() {
    let cases: &[(&str, u32, u32, &str)] = &[
        ("foo[", 1, 4, "never closed"),
        ("ok\n  foo[", 2, 6, "never closed"),
        ("[a", 1, 1, "never closed"),
        ("[a-", 1, 1, "never closed"),
        ("[^", 1, 1, "never closed"),
        ("[]", 1, 2, "needs a member"),
        ("[^]", 1, 3, "needs a member"),
        ("[a-]", 1, 4, "needs a member"),
        ("[-a]", 1, 2, "needs a character before it"),
        ("[a-b-c]", 1, 5, "needs a character before it"),
        ("[z-a]", 1, 4, "runs backwards"),
        ("abc\\", 1, 4, "escapes nothing"),
        ("[\\", 1, 1, "never closed"),
        ("!", 1, 1, "names nothing"),
        ("! /", 1, 1, "names nothing"),
        ("!docs/[", 1, 7, "never closed"),
        // Go's check lets these through (they follow a `*`); BuildKit fails on them only when
        // it first matches a path against them. Here they fail at once.
        ("x*/[", 1, 4, "never closed"),
        ("x*[z-a]", 1, 6, "runs backwards"),
        ("a*b\\", 1, 4, "escapes nothing"),
    ];
    for &(text, line, column, message) in cases {
        let file = IgnoreFile::parse(text, "app.Dockerfile.dockerignore");
        let err = match Matcher::from_ignore_file(&file) {
            Ok(_) => panic!("{text:?} should be rejected"),
            Err(err) => err,
        };
        assert_eq!(err.file, "app.Dockerfile.dockerignore", "{text:?}");
        assert_eq!((err.line, err.column), (line, column), "{text:?}: {err}");
        assert!(err.message.contains(message), "{text:?}: {}", err.message);
    }
}

#[test]
fn error_display_shows_the_line_and_a_caret() {
    let file = IgnoreFile::parse("# ignore\nsrc/[abc\n", ".dockerignore");
    let err = Matcher::from_ignore_file(&file).expect_err("unclosed class");
    assert_eq!(
        err.to_string(),
        "invalid pattern `src/[abc`: this character class `[` is never closed\n \
         --> .dockerignore:2:5\n  |\n2 | src/[abc\n  |     ^\n\
         hint: close it with `]`, or write `\\[` for a literal `[`"
    );
}

#[test]
fn patterns_given_directly_are_cleaned_but_keep_a_leading_slash() {
    // Exclude patterns passed straight to the matcher skip the reader, so `/foo` stays rooted
    // and matches nothing, as with patternmatcher.New.
    let m = Matcher::new(["/foo", "", "  bar/ ", "!bar/keep"]).expect("valid patterns");
    assert_eq!(m.patterns().len(), 3);
    assert!(!m.is_excluded("foo"));
    assert!(m.is_excluded("bar/x"));
    assert!(!m.is_excluded("bar/keep"));
    assert!(m.has_exceptions());
    let err = Matcher::new(["ok", "bad["]).expect_err("bad pattern");
    assert_eq!((err.file.as_str(), err.line), ("patterns", 2));
}

#[test]
fn an_empty_matcher_excludes_nothing() {
    let m = matcher("# only comments\n\n");
    assert!(m.is_empty());
    assert!(!m.is_excluded("anything"));
    assert!(!m.may_include_under(b"anything"));
}

#[test]
fn paths_that_are_not_utf8_are_matched_bytewise() {
    let m = matcher("*.bin\nexact");
    assert!(m.is_excluded_bytes(b"a\xff.bin"));
    assert!(!m.is_excluded_bytes(b"a\xff/x.txt"));
    assert!(m.is_excluded_bytes(b"exact/\xfe"));
    let q = matcher("?");
    assert!(q.is_excluded_bytes(b"\xff"));
    assert!(!q.is_excluded_bytes(b"\xff\xfe"));
}

#[test]
fn standalone_paths_are_cleaned_first() {
    let m = matcher("build\n!build/keep\n*.log");
    assert!(m.is_excluded("./build/x"));
    assert!(m.is_excluded("build//x/"));
    assert!(!m.is_excluded("build/./keep/"));
    assert!(m.is_excluded("src/../a.log"));
    assert!(!m.is_excluded("."));
    assert!(!m.is_excluded(""));
    assert!(!matcher("*").is_excluded("./"));
    assert!(matcher("*").is_excluded("./x"));
}
