//! Table-driven checks of every expansion rule, through the public API. Expected values are
//! BuildKit's answers (checked against its lexer), quirks included.

use std::collections::{BTreeSet, HashMap};

use distill_shell::{Env, Lexer};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The variables most tables run with: a plain value, an empty one, one with spaces, one with
/// non-ASCII text; `XXX`, `YYY` and `N` stay unset.
fn standard_env() -> HashMap<String, String> {
    env(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("EMPTY", ""),
        ("SPACED", "a b  c"),
        ("KO", "한국어"),
    ])
}

/// Runs `process_word` on each (input, expected) with `env`; `Err(reason)` expects an error
/// whose reason (the message without `failed to process "...": `) is `reason`.
fn check_words_as_one(lexer: Lexer, env: &dyn Env, cases: &[(&str, Result<&str, &str>)]) {
    let mut failures = Vec::new();
    for (input, expected) in cases {
        let got = lexer.process_word(input, env);
        let got = got.as_deref().map_err(|err| err.reason());
        if got != *expected {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn check(cases: &[(&str, Result<&str, &str>)]) {
    check_words_as_one(Lexer::new('\\'), &standard_env(), cases);
}

fn check_split(env: &dyn Env, cases: &[(&str, Result<&[&str], &str>)]) {
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    for (input, expected) in cases {
        let got = lexer.process_words(input, env);
        let got: Result<Vec<&str>, &str> = match &got {
            Ok(words) => Ok(words.iter().map(String::as_str).collect()),
            Err(err) => Err(err.reason()),
        };
        let expected = expected.map(|words| words.to_vec());
        if got != expected {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn plain_text_and_quotes() {
    check(&[
        ("", Ok("")),
        ("hello", Ok("hello")),
        ("hello world", Ok("hello world")),
        ("he'll'o", Ok("hello")),
        ("he\"ll\"o", Ok("hello")),
        ("'a b'\"c d\"", Ok("a bc d")),
        ("\"it's\"", Ok("it's")),
        ("'say \"hi\"'", Ok("say \"hi\"")),
        ("\"''\"", Ok("''")),
        ("''", Ok("")),
        (
            "he'llo",
            Err("unexpected end of statement while looking for matching single-quote"),
        ),
        (
            "\"hello",
            Err("unexpected end of statement while looking for matching double-quote"),
        ),
        ("'$PWD'", Ok("$PWD")),
        ("'${PWD:-x}'", Ok("${PWD:-x}")),
        ("'\\$PWD'", Ok("\\$PWD")),
        ("'a\\'", Ok("a\\")),
        ("'a\\nb'", Ok("a\\nb")),
        ("\"$PWD\"", Ok("/home")),
        ("\"he'$PWD'\"", Ok("he'/home'")),
        ("\"${SPACED}\"", Ok("a b  c")),
        // Command substitution is not a thing here: plain text.
        ("$(echo hi)", Ok("$(echo hi)")),
        ("`echo hi`", Ok("`echo hi`")),
    ]);
}

#[test]
fn escapes_outside_quotes() {
    check(&[
        ("he\\'llo", Ok("he'llo")),
        (
            "he\\\\'llo",
            Err("unexpected end of statement while looking for matching single-quote"),
        ),
        ("abc\\tdef", Ok("abctdef")),
        ("a\\ b", Ok("a b")),
        ("hello\\", Ok("hello")),
        ("hello\\\\", Ok("hello\\")),
        ("\\", Ok("")),
        ("\\$PWD", Ok("$PWD")),
        ("\\\\$PWD", Ok("\\/home")),
        ("\\${}", Ok("${}")),
        ("he\\${}xx", Ok("he${}xx")),
        ("\\\"a\\\"", Ok("\"a\"")),
        ("\\한", Ok("한")),
    ]);
}

#[test]
fn escapes_inside_double_quotes() {
    check(&[
        ("\"abc\\tdef\"", Ok("abc\\tdef")),
        ("\"abc\\\\tdef\"", Ok("abc\\tdef")),
        ("\"he\\$PWD\"", Ok("he$PWD")),
        ("\"he\\\\$PWD\"", Ok("he\\/home")),
        ("\"say \\\"hi\\\"\"", Ok("say \"hi\"")),
        ("\"a\\'b\"", Ok("a\\'b")),
        ("\"a\\`b\"", Ok("a\\`b")),
        // An escape right before the end is dropped, and the quote stays open.
        (
            "\"hello\\",
            Err("unexpected end of statement while looking for matching double-quote"),
        ),
        (
            "\"hello\\\"",
            Err("unexpected end of statement while looking for matching double-quote"),
        ),
    ]);
}

#[test]
fn backtick_escape() {
    let env = standard_env();
    check_words_as_one(
        Lexer::new('`'),
        &env,
        &[
            ("a`$PWD", Ok("a$PWD")),
            ("a\\$PWD", Ok("a\\/home")),
            ("C:\\path\\to", Ok("C:\\path\\to")),
            ("\"a`\"b\"", Ok("a\"b")),
            ("\"a``b\"", Ok("a`b")),
            ("\"a\\\"", Ok("a\\")),
            ("a``", Ok("a`")),
            ("a`", Ok("a")),
            ("${XXX:-`}}", Ok("}")),
            // Patterns keep the escape character raw, and patterns escape with `\` only.
            ("${PWD#`/}", Ok("/home")),
            ("${PWD#\\/}", Ok("home")),
        ],
    );
}

#[test]
fn simple_references() {
    check(&[
        ("$PWD", Ok("/home")),
        ("he$PWD", Ok("he/home")),
        ("$PWD.x", Ok("/home.x")),
        ("$PWDx", Ok("")),
        ("${PWD}x", Ok("/homex")),
        ("he${hi}xx", Ok("hexx")),
        ("$pwd", Ok("")),
        ("$KO!", Ok("한국어!")),
        ("안${KO}녕", Ok("안한국어녕")),
        ("$한국어", Ok("")),
        ("$_", Ok("")),
        ("$a_1-x", Ok("-x")),
        // A `$` not followed by a name stays.
        ("$", Ok("$")),
        ("a$", Ok("a$")),
        ("$.", Ok("$.")),
        ("he$.x", Ok("he$.x")),
        ("$ x", Ok("$ x")),
        ("$/", Ok("$/")),
        ("\"$\"", Ok("$")),
        ("$%", Ok("$%")),
        // `$$` is the special parameter `$`, normally unset.
        ("$$", Ok("")),
        ("a$$b", Ok("ab")),
    ]);
}

#[test]
fn positional_and_special_parameters() {
    check(&[
        ("he$1x", Ok("hex")),
        ("$12x", Ok("x")),
        ("$0", Ok("")),
        ("$01", Ok("")),
        ("${1}", Ok("")),
        ("${10}x", Ok("x")),
        ("$@$*$#$?$-$!", Ok("")),
        ("${#}", Ok("")),
        ("${?}", Ok("")),
        ("${-:-dash}", Ok("dash")),
        ("${@:-at}", Ok("at")),
        ("$٣x", Ok("x")),
        ("$²", Ok("$²")),
    ]);
    let positional = env(&[("1", "one"), ("@", "all"), ("0", "zero"), ("12", "twelve")]);
    check_words_as_one(
        Lexer::new('\\'),
        &positional,
        &[
            ("$1", Ok("one")),
            ("$12", Ok("twelve")),
            ("$@", Ok("all")),
            ("${0}", Ok("zero")),
            ("$0x", Ok("zerox")),
        ],
    );
}

#[test]
fn default_and_alternative_values() {
    check(&[
        ("he${XXX:-000}xx", Ok("he000xx")),
        ("he${PWD:-000}xx", Ok("he/homexx")),
        ("${EMPTY:-d}", Ok("d")),
        ("${EMPTY-d}", Ok("")),
        ("${XXX-d}", Ok("d")),
        ("${PWD-d}", Ok("/home")),
        ("${XXX:-}", Ok("")),
        ("${XXX:+set}", Ok("")),
        ("${EMPTY:+set}", Ok("")),
        ("${EMPTY+set}", Ok("set")),
        ("${PWD:+set}", Ok("set")),
        ("${XXX+set}", Ok("")),
        ("${PWD+}", Ok("")),
        ("he${XXX:-$PWD}xx", Ok("he/homexx")),
        ("he${XXX:-${PWD:-yyy}}xx", Ok("he/homexx")),
        ("he${XXX:-${YYY:-yyy}}xx", Ok("heyyyxx")),
        ("${XXX:-${YYY:-${N:-deep}}}", Ok("deep")),
        ("he${PWD:+${SHELL}}xx", Ok("hebashxx")),
        ("he${PWD:+${XXX}}xx", Ok("hexx")),
        ("${XXX:-a b}", Ok("a b")),
        ("${XXX:-'a}b'}", Ok("a}b")),
        ("${XXX:-\"$PWD x\"}", Ok("/home x")),
        ("${XXX:-\\}}", Ok("}")),
        ("${XXX:-a\\b}", Ok("ab")),
        ("${XXX:-$}", Ok("$")),
        ("${XXX:-{}", Ok("{")),
        ("${XXX:--}", Ok("-")),
        ("${XXX:-:}", Ok(":")),
        // The `}` of a word closes the reference even inside what looks nested.
        ("${XXX:-{x}}", Ok("{x}")),
    ]);
}

#[test]
fn required_values() {
    check(&[
        ("${PWD?}", Ok("/home")),
        ("${PWD:?}", Ok("/home")),
        ("${EMPTY?}", Ok("")),
        ("${EMPTY:?}", Err("EMPTY: is not allowed to be empty")),
        ("${XXX?}", Err("XXX: is not allowed to be unset")),
        ("${XXX:?}", Err("XXX: is not allowed to be unset")),
        ("${XXX?must be set}", Err("XXX: must be set")),
        ("${EMPTY:?say $SHELL}", Err("EMPTY: say bash")),
        ("${XXX:?${YYY:-nested}}", Err("XXX: nested")),
        ("${XXX:?''}", Err("XXX: is not allowed to be unset")),
        ("a${PWD:?}b${XXX:?boom}", Err("XXX: boom")),
        // The message word is expanded first, so its own errors win.
        ("${XXX:?${YYY:?inner}}", Err("YYY: inner")),
        // An error found at the end of the input inside `${` reads as a missing brace.
        ("${XXX:-${YYY:?inner}", Err("syntax error: missing '}'")),
    ]);
}

#[test]
fn prefix_and_suffix_removal() {
    let env = env(&[
        ("FILE", "archive.tar.gz"),
        ("PATHV", "/usr/local/bin"),
        ("STARS", "a***yy*"),
        ("Q", "???y"),
        ("SPECIAL", "()[]{}^$.*?|\\x"),
        ("EMPTY", ""),
        ("NL", "ab\ncd"),
        ("KO", "한국어한국어"),
    ]);
    check_words_as_one(
        Lexer::new('\\'),
        &env,
        &[
            ("${FILE#*.}", Ok("tar.gz")),
            ("${FILE##*.}", Ok("gz")),
            ("${FILE%.*}", Ok("archive.tar")),
            ("${FILE%%.*}", Ok("archive")),
            ("${FILE#archive}", Ok(".tar.gz")),
            ("${FILE#nomatch}", Ok("archive.tar.gz")),
            ("${FILE#}", Ok("archive.tar.gz")),
            ("${FILE##}", Ok("archive.tar.gz")),
            ("${FILE%}", Ok("archive.tar.gz")),
            ("${FILE#*}", Ok("archive.tar.gz")),
            ("${FILE##*}", Ok("")),
            ("${FILE%?}", Ok("archive.tar.g")),
            ("${FILE#???????}", Ok(".tar.gz")),
            ("${PATHV##*/}", Ok("bin")),
            ("${PATHV%/*}", Ok("/usr/local")),
            ("${PATHV#/usr/}", Ok("local/bin")),
            ("${PATHV%\\/bin}", Ok("/usr/local")),
            ("${STARS%%\\**\\*}", Ok("a")),
            ("${Q#?\\?}", Ok("?y")),
            ("${SPECIAL#()[]{\\}^$.\\*\\?|\\\\}", Ok("x")),
            ("${EMPTY#*}", Ok("")),
            ("${XXX%%*}", Ok("")),
            ("${FILE#$XXX}", Ok("archive.tar.gz")),
            ("${FILE#'arch'}", Ok("ive.tar.gz")),
            ("${FILE#\"*.\"}", Ok("tar.gz")),
            // `*` and `?` never cross a newline (they are Go's `.`).
            ("${NL#*d}", Ok("ab\ncd")),
            ("${NL##a*}", Ok("\ncd")),
            ("${NL%c*}", Ok("ab\n")),
            ("${KO#*국}", Ok("어한국어")),
            ("${KO##*국}", Ok("어")),
            ("${KO%국*}", Ok("한국어한")),
            ("${KO%%국*}", Ok("한")),
            (
                "${FILE#\\x}",
                Err("invalid pattern (\\x) in substitution: invalid escape '\\x'"),
            ),
            (
                "${FILE%a\\x}",
                Err("invalid pattern (\\xa) in substitution: invalid escape '\\x'"),
            ),
            (
                "${FILE#'\\'}",
                Err("invalid pattern (\\) in substitution: invalid escape '\\\u{fffd}'"),
            ),
            (
                "${FILE:#x}",
                Err("unsupported modifier (:#) in substitution"),
            ),
            (
                "${FILE:%x}",
                Err("unsupported modifier (:%) in substitution"),
            ),
            (
                "${FILE:##}",
                Err("unsupported modifier (:#) in substitution"),
            ),
        ],
    );
}

#[test]
fn substitution() {
    let env = env(&[
        ("P", "/tmp/tmp/bar.txt"),
        ("URL", "http://example.com"),
        ("GLOBS", "/foo*/*/*.txt"),
        ("NEEDLE", "\\*/"),
        ("ONE", "/?/"),
        ("EMPTY", ""),
        ("FOO", "foo"),
    ]);
    check_words_as_one(
        Lexer::new('\\'),
        &env,
        &[
            ("${P/tmp/var}", Ok("/var/tmp/bar.txt")),
            ("${P//tmp/var}", Ok("/var/var/bar.txt")),
            ("${P/\\/tmp/}", Ok("/tmp/bar.txt")),
            ("${P//\\/tmp/}", Ok("/bar.txt")),
            ("${P//\\//\\/}", Ok("\\/tmp\\/tmp\\/bar.txt")),
            ("${URL/http:\\/\\//https://}", Ok("https://example.com")),
            (
                "${GLOBS/$NEEDLE/.} ${GLOBS//$NEEDLE/.}",
                Ok("/foo.*/*.txt /foo..*.txt"),
            ),
            ("${P/$ONE/-}", Ok("/tmp/tmp/bar.txt")),
            ("${P/t*p/X}", Ok("/X/bar.txt")),
            ("${P//?/.}", Ok("................")),
            ("${P/nomatch/X}", Ok("/tmp/tmp/bar.txt")),
            ("${FOO/$EMPTY/ww}", Ok("wwfoo")),
            ("${FOO//$EMPTY/-}", Ok("-f-o-o-")),
            ("${FOO///}", Ok("foo")),
            ("${XXX///}", Ok("")),
            ("${XXX/a/b}", Ok("")),
            ("${FOO/o}", Err("syntax error: missing '/' in ${}")),
            ("${FOO//o}", Err("syntax error: missing '/' in ${}")),
            ("${FOO//}", Err("syntax error: missing '/' in ${}")),
            ("${FOO/o/", Err("syntax error: missing '}'")),
            (
                "${FOO/\\x/y}",
                Err("invalid pattern (\\x) in substitution: invalid escape '\\x'"),
            ),
            // `$...` in the replacement is expanded by the lexer first; what survives as a `$`
            // is read by Go's ReplaceAllString template rules in `//` only.
            ("${FOO//o/[$0]}", Ok("f[][]")),
            ("${FOO//o/[\\$0]}", Ok("f[\\o][\\o]")),
            ("${FOO/o/[\\$0]}", Ok("f[\\$0]o")),
            ("${FOO//o/'$$'}", Ok("f$$")),
            ("${FOO//o/'${0}!'}", Ok("fo!o!")),
            ("${FOO//o/'$x'}", Ok("f")),
            ("${FOO//o/'$'}", Ok("f$$")),
        ],
    );
}

#[test]
fn syntax_errors() {
    check(&[
        ("${}", Err("syntax error: bad substitution")),
        ("${}xx", Err("syntax error: bad substitution")),
        ("he${}", Err("syntax error: bad substitution")),
        ("${:}", Err("syntax error: bad substitution")),
        ("${:-x}", Err("syntax error: bad substitution")),
        ("${{PWD}}", Err("syntax error: bad substitution")),
        ("${", Err("syntax error: missing '}'")),
        (
            "he${PWD",
            Err("unsupported modifier (\u{fffd}) in substitution"),
        ),
        ("${PWD:", Err("syntax error: missing '}'")),
        ("${PWD:-", Err("syntax error: missing '}'")),
        ("${PWD:-x", Err("syntax error: missing '}'")),
        ("${PWD:-'x}'", Err("syntax error: missing '}'")),
        ("${PWD:-\"x", Err("syntax error: missing '}'")),
        ("${PWD:}", Err("syntax error: missing '}'")),
        (
            "${PWD:}x}",
            Err("unsupported modifier (:}) in substitution"),
        ),
        ("he${.}", Err("unsupported modifier (.) in substitution")),
        ("${ PWD}", Err("unsupported modifier ( ) in substitution")),
        ("${PWD=x}", Err("unsupported modifier (=) in substitution")),
        (
            "${PWD:=x}",
            Err("unsupported modifier (:=) in substitution"),
        ),
        (
            "${XXX:YYY}",
            Err("unsupported modifier (:Y) in substitution"),
        ),
        (
            "${PWD:1:2}",
            Err("unsupported modifier (:1) in substitution"),
        ),
        ("${#PWD}", Err("unsupported modifier (P) in substitution")),
        ("${!PWD}", Err("unsupported modifier (P) in substitution")),
        ("${PWD[0]}", Err("unsupported modifier ([) in substitution")),
        // The word of an unsupported `:x` modifier is still read (and must close).
        ("${PWD:=${XXX:?first}}", Err("XXX: first")),
    ]);
}

#[test]
fn error_message_names_the_word() {
    let err = Lexer::new('\\')
        .process_word("a\t\"${X:-x}", &standard_env())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to process \"a\\t\\\"${X:-x}\": unexpected end of statement while looking for matching double-quote"
    );
    let err = Lexer::new('\\')
        .process_word("${X:?boom}", &standard_env())
        .unwrap_err();
    assert_eq!(err.to_string(), "failed to process \"${X:?boom}\": X: boom");
    assert_eq!(err.word(), "${X:?boom}");
    assert_eq!(err.reason(), "X: boom");
}

#[test]
fn byte_order_mark_at_start_is_skipped() {
    check(&[
        ("\u{feff}a", Ok("a")),
        ("a\u{feff}", Ok("a\u{feff}")),
        ("\u{feff}\u{feff}a", Ok("\u{feff}a")),
    ]);
}

#[test]
fn names_are_case_sensitive_and_values_raw() {
    let env = env(&[("a", "lower"), ("A", "upper"), ("REF", "$A ${A} \\x 'q'")]);
    check_words_as_one(
        Lexer::new('\\'),
        &env,
        &[
            ("$a/$A", Ok("lower/upper")),
            ("$REF", Ok("$A ${A} \\x 'q'")),
            ("\"$REF\"", Ok("$A ${A} \\x 'q'")),
        ],
    );
}

#[test]
fn word_splitting() {
    let env = env(&[
        ("hi", "hi"),
        ("space", "abc  def"),
        ("leading", "  ab c"),
        ("trailing", "ab c   "),
        ("EMPTY", ""),
        ("tabs", "a\tb\nc"),
        ("nbsp", "a\u{a0}b"),
    ]);
    check_split(
        &env,
        &[
            ("hello", Ok(&["hello"])),
            ("", Ok(&[])),
            ("   ", Ok(&[])),
            ("\"\"", Ok(&[])),
            ("''", Ok(&[])),
            ("a \"\" b", Ok(&["a", "b"])),
            ("hello there     ", Ok(&["hello", "there"])),
            ("  hello\t\nthere", Ok(&["hello", "there"])),
            ("hello\\ there", Ok(&["hello there"])),
            ("hello\" there  \"", Ok(&["hello there  "])),
            ("hello\\\" there", Ok(&["hello\"", "there"])),
            (
                "hello\" there",
                Err("unexpected end of statement while looking for matching double-quote"),
            ),
            ("hello${hi}bye", Ok(&["hellohibye"])),
            ("hello${space}bye", Ok(&["helloabc", "defbye"])),
            ("hello\"${space}\"bye", Ok(&["helloabc  defbye"])),
            ("hello${leading}def", Ok(&["hello", "ab", "cdef"])),
            ("hello\"${leading}\" def", Ok(&["hello  ab c", "def"])),
            ("hello${trailing}", Ok(&["helloab", "c"])),
            ("hello${trailing}d", Ok(&["helloab", "c", "d"])),
            ("$EMPTY", Ok(&[])),
            ("a $EMPTY b", Ok(&["a", "b"])),
            ("\"$EMPTY\"", Ok(&[])),
            ("$tabs", Ok(&["a", "b", "c"])),
            ("$nbsp", Ok(&["a", "b"])),
            ("'a b'c", Ok(&["a bc"])),
            ("'$space'", Ok(&["$space"])),
            ("8080/tcp 9090", Ok(&["8080/tcp", "9090"])),
            // Quotes inside a modifier's word do not protect its spaces.
            ("${XXX:-\"a b\"}", Ok(&["a", "b"])),
            ("\"${XXX:-a b}\"", Ok(&["a b"])),
        ],
    );
}

/// BuildKit shares one buffer between the word being split and every `${V<op>...}` inside
/// it, so the part of the current word before such a reference is lost; the unsplit word is
/// unaffected.
#[test]
fn word_splitting_keeps_buildkits_shared_buffer_quirk() {
    let env = env(&[("hi", "hi"), ("EMPTY", "")]);
    check_split(
        &env,
        &[
            ("a${XXX:-b}c", Ok(&["bc"])),
            ("x a${XXX:-b}c", Ok(&["x", "bc"])),
            ("a${hi}${XXX:-b}", Ok(&["b"])),
            ("a${hi:+}", Ok(&[])),
            ("a\"${XXX:-b}\"", Ok(&["b"])),
            ("a${hi#h}", Ok(&["i"])),
            ("a${hi/h/H}", Ok(&["Hi"])),
            ("a${hi}", Ok(&["ahi"])),
            ("a$hi", Ok(&["ahi"])),
        ],
    );
    assert_eq!(
        Lexer::new('\\').process_word("a${XXX:-b}c", &env).unwrap(),
        "abc"
    );
}

#[test]
fn matches_report_set_and_unset_names() {
    let env = env(&[("FOO", "xxx"), ("BAR", "")]);
    let lexer = Lexer::new('\\');
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        ("x", "x", &[], &[]),
        ("x ${UNUSED}", "x ", &[], &["UNUSED"]),
        (
            "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
            "xxx  ccc",
            &["BAR", "FOO"],
            &["BAZ"],
        ),
        (
            "${FOO:+a} ${BAR:+b} ${BAZ:+c}",
            "a  ",
            &["BAR", "FOO"],
            &["BAZ"],
        ),
        ("${BAZ:-$FOO}", "xxx", &["FOO"], &["BAZ"]),
        ("${FOO#$BAR}", "xxx", &["BAR", "FOO"], &[]),
        ("$FOO$FOO${FOO}", "xxxxxxxxx", &["FOO"], &[]),
        ("'$NOPE' \\$NOPE", "$NOPE $NOPE", &[], &[]),
        ("$1 $@", " ", &[], &["1", "@"]),
    ];
    for &(input, word, matched, unmatched) in cases {
        let expansion = lexer.process_word_with_matches(input, &env).unwrap();
        assert_eq!(expansion.word, word, "{input:?}");
        assert_eq!(expansion.matched, set(matched), "{input:?} matched");
        assert_eq!(expansion.unmatched, set(unmatched), "{input:?} unmatched");
    }
}

#[test]
fn switches_for_raw_and_partial_expansion() {
    let env = env(&[("SET", "v")]);
    let raw = Lexer::new('\\').raw_quotes(true).skip_unset_env(true);
    check_words_as_one(
        raw,
        &env,
        &[
            ("'a' \"b $SET\"", Ok("'a' \"b v\"")),
            ("$NOPE ${NOPE} $SET", Ok("$NOPE ${NOPE} v")),
            (
                "${NOPE:-d} ${NOPE+x} ${NOPE:?m}",
                Ok("${NOPE:-d} ${NOPE+x} ${NOPE:?m}"),
            ),
            ("${NOPE#*} ${NOPE//a/b}", Ok("${NOPE#*} ${NOPE/a/b}")),
            ("${SET:-d}", Ok("v")),
            (
                "${NOPE:#x}",
                Err("unsupported modifier (:#) in substitution"),
            ),
        ],
    );
    check_words_as_one(
        Lexer::new('\\').raw_escapes(true),
        &env,
        &[
            ("a\\ b", Ok("a\\ b")),
            ("\\$SET", Ok("\\$SET")),
            ("\"\\$SET\"", Ok("\\$SET")),
            ("\"a\\b\"", Ok("a\\\\b")),
            ("x\\", Ok("x\\")),
        ],
    );
    check_words_as_one(
        Lexer::new('\\').skip_process_quotes(true),
        &env,
        &[
            ("'$SET'", Ok("'v'")),
            ("\"a b\"", Ok("\"a b\"")),
            ("\\'", Ok("'")),
        ],
    );
}

/// Nesting is capped so that hostile input cannot exhaust the stack of the 2 MiB threads
/// tests run on (BuildKit has no cap; real Dockerfiles nest two or three levels).
#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let nested = |levels: usize| "${A:-".repeat(levels) + "x" + &"}".repeat(levels);
    let lexer = Lexer::new('\\');
    let env = env(&[]);
    assert_eq!(lexer.process_word(&nested(100), &env).unwrap(), "x");
    for levels in [101, 100_000] {
        let err = lexer.process_word(&nested(levels), &env).unwrap_err();
        assert_eq!(
            err.reason(),
            "substitutions nested more than 100 levels deep"
        );
    }
    let quoted = "\"${A:-".repeat(200) + &"}\"".repeat(200);
    assert!(lexer.process_words(&quoted, &env).is_err());
}
