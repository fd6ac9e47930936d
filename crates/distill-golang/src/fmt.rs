//! The few `fmt` verbs BuildKit writes history strings with (`created_by`): `%q` and `%v` of a
//! `[]string`, and `%v` of a `time.Duration`, so distill's history reads byte for byte as
//! BuildKit's.
//!
//! Same names and signatures as distill-executor's former `gofmt` module, so it can stand in
//! for it.

use crate::{strconv, time};

/// `fmt.Sprintf("%q", items)` for a `[]string`: each item through `strconv.Quote`, separated by
/// spaces, in brackets: `["/bin/sh" "-c" "echo hi"]`.
pub fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        strconv::quote_into(&mut out, item.as_ref());
    }
    out.push(']');
    out
}

/// `fmt.Sprintf("%v", items)` for a `[]string`: the items as they are, separated by spaces, in
/// brackets: `[/bin/sh -c echo hi]` (so items holding spaces cannot be told apart).
pub fn list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        out.push_str(item.as_ref());
    }
    out.push(']');
    out
}

/// `fmt.Sprintf("%v", d)` for a `time.Duration` `d` of `value` (its `String` method, see
/// [`time::duration_string`]). A `value` beyond a Go duration's range (about 292 years) prints
/// as the largest Go duration.
pub fn duration(value: std::time::Duration) -> String {
    let nanos = i64::try_from(value.as_nanos()).unwrap_or(i64::MAX);
    time::duration_string(nanos)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn string_slices_like_go() {
        assert_eq!(
            quote_list(&["/bin/sh", "-c", "echo hi"]),
            r#"["/bin/sh" "-c" "echo hi"]"#
        );
        assert_eq!(
            quote_list(&[r#"a"b\c"#, "\n\u{1}é"]),
            r#"["a\"b\\c" "\n\x01é"]"#
        );
        assert_eq!(quote_list::<&str>(&[]), "[]");
        assert_eq!(quote_list(&[""]), r#"[""]"#);
        assert_eq!(list(&["/a", "/b"]), "[/a /b]");
        assert_eq!(list(&["echo hi", ""]), "[echo hi ]");
        assert_eq!(list(&Vec::<String>::new()), "[]");
        assert_eq!(list(&[String::from("x")]), "[x]");
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(duration(Duration::ZERO), "0s");
        assert_eq!(duration(Duration::from_secs(30)), "30s");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(duration(Duration::MAX), "2562047h47m16.854775807s");
    }
}
