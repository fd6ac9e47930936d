//! Properties over random patterns and paths: nothing panics, the matcher agrees with a
//! straightforward model of patternmatcher (its translation to a regular expression), and the
//! walker's shortcuts never change an answer.

use distill_context::{MatchInfo, Matcher};
use proptest::prelude::*;
use regex::Regex;

/// patternmatcher's translation of a cleaned pattern, written plainly: the classification into
/// exact / prefix / suffix / regular expression, and the expression itself.
fn model_matches(pattern: &str, path: &str) -> Option<bool> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' && chars.get(i) == Some(&'*') {
            i += 1;
            if chars.get(i) == Some(&'/') {
                i += 1;
            }
            if i == chars.len() {
                if kind == Kind::Exact {
                    kind = Kind::Prefix;
                } else {
                    re.push_str(".*");
                    kind = Kind::Regexp;
                }
            } else {
                re.push_str("(.*/)?");
                kind = Kind::Regexp;
            }
            if first {
                kind = Kind::Suffix;
            }
        } else if ch == '*' {
            re.push_str("[^/]*");
            kind = Kind::Regexp;
        } else if ch == '?' {
            re.push_str("[^/]");
            kind = Kind::Regexp;
        } else if ".+()|{}$".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            let escaped = *chars.get(i)?;
            i += 1;
            re.push('\\');
            re.push(escaped);
            kind = Kind::Regexp;
        } else if ch == '[' || ch == ']' {
            re.push(ch);
            kind = Kind::Regexp;
        } else {
            re.push(ch);
        }
        first = false;
    }
    Some(match kind {
        Kind::Exact => path == pattern,
        Kind::Prefix => path.starts_with(&pattern[..pattern.len() - 2]),
        Kind::Suffix => {
            let suffix = &pattern[2..];
            path.ends_with(suffix) || (suffix.starts_with('/') && path == &suffix[1..])
        }
        Kind::Regexp => {
            re.push('$');
            Regex::new(&re).ok()?.is_match(path)
        }
    })
}

/// Whether the path itself (not its parents) matches the matcher's only pattern.
fn whole_match(matcher: &Matcher, path: &str) -> bool {
    let parent = MatchInfo::new(matcher);
    let mut info = MatchInfo::new(matcher);
    matcher.is_excluded_with_parent(path.as_bytes(), Some(&parent), &mut info)
}

/// Deciding every parent first, as a walker does.
fn walker_excludes(matcher: &Matcher, path: &str) -> bool {
    let mut parent: Option<MatchInfo> = None;
    let mut excluded = false;
    let mut end = 0;
    for component in path.split('/') {
        end += component.len();
        let mut info = MatchInfo::new(matcher);
        excluded =
            matcher.is_excluded_with_parent(&path.as_bytes()[..end], parent.as_ref(), &mut info);
        parent = Some(info);
        end += 1;
    }
    excluded
}

/// Pieces of patterns on which patternmatcher's translation and its grammar agree.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a", "b", "ab", ".", "^", "/", "*", "**", "**/", "?", "[ab]", "[^a]", "[a-c]", "[/]",
        "\\*", "\\.", "\\[", "]", "x",
    ])
}

fn pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 1..7).prop_map(|pieces| pieces.concat())
}

fn path_component() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!['a', 'b', 'c', 'x', '.', '^', '*', ']', '\n']),
        1..5,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn clean_path() -> impl Strategy<Value = String> {
    prop::collection::vec(path_component(), 1..5)
        .prop_map(|parts| parts.join("/"))
        .prop_filter("clean paths only", |p| {
            p.split('/').all(|c| c != "." && c != "..")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn nothing_panics(
        patterns in prop::collection::vec("[ab*?\\[\\]^!\\\\/\\-. \né]{0,12}", 0..5),
        path in prop::collection::vec(any::<u8>(), 0..24),
    ) {
        if let Ok(matcher) = Matcher::new(patterns.iter().map(String::as_str)) {
            let _ = matcher.is_excluded_bytes(&path);
            let mut info = MatchInfo::new(&matcher);
            let first = matcher.is_excluded_with_parent(&path, None, &mut info);
            let mut child = MatchInfo::new(&matcher);
            let _ = matcher.is_excluded_with_parent(&path, Some(&info), &mut child);
            let _ = matcher.may_include_under(&path);
            let _ = first;
        }
    }

    #[test]
    fn agrees_with_the_regular_expression_model(pattern in pattern(), path in clean_path()) {
        let matcher = Matcher::new([pattern.as_str()]);
        prop_assume!(matcher.is_ok());
        let matcher = matcher.expect("checked above");
        prop_assume!(matcher.patterns().len() == 1 && !matcher.has_exceptions());
        let cleaned = matcher.patterns()[0].as_str().to_string();
        let model = model_matches(&cleaned, &path);
        prop_assume!(model.is_some());
        prop_assert_eq!(whole_match(&matcher, &path), model.unwrap_or(false),
            "pattern {:?} (cleaned {:?}) on {:?}", pattern, cleaned, path);
    }

    #[test]
    fn a_match_on_a_parent_excludes_the_path(pattern in pattern(), path in clean_path()) {
        let matcher = Matcher::new([pattern.as_str()]);
        prop_assume!(matcher.is_ok());
        let matcher = matcher.expect("checked above");
        prop_assume!(matcher.patterns().len() == 1);
        let mut want = false;
        let mut end = 0;
        for component in path.split('/') {
            end += component.len();
            want |= whole_match(&matcher, &path[..end]);
            end += 1;
        }
        prop_assert_eq!(matcher.is_excluded(&path), want);
    }

    #[test]
    fn without_exceptions_walker_and_standalone_agree(
        patterns in prop::collection::vec(pattern(), 1..4),
        path in clean_path(),
    ) {
        let matcher = Matcher::new(patterns.iter().map(String::as_str));
        prop_assume!(matcher.is_ok());
        let matcher = matcher.expect("checked above");
        prop_assert_eq!(walker_excludes(&matcher, &path), matcher.is_excluded(&path));
    }

    #[test]
    fn skipping_a_directory_never_hides_a_reincluded_path(
        exception in pattern(),
        dir in clean_path(),
        rest in clean_path(),
    ) {
        let text = format!("!{exception}");
        let matcher = Matcher::new([text.as_str()]);
        prop_assume!(matcher.is_ok());
        let matcher = matcher.expect("checked above");
        prop_assume!(matcher.has_exceptions());
        let inside = format!("{dir}/{rest}");
        // An exception alone matching `inside` shows as "not excluded" only if it is tried, so
        // ask the question of the plain pattern.
        let plain = Matcher::new([matcher.patterns()[0].as_str()]).expect("same pattern compiles");
        prop_assume!(plain.patterns()[0].as_str() == matcher.patterns()[0].as_str());
        if whole_match(&plain, &inside) {
            prop_assert!(matcher.may_include_under(dir.as_bytes()),
                "{:?} matches {:?} but the walker would skip {:?}", text, inside, dir);
        }
    }
}
