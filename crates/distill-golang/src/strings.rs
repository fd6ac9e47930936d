//! Go's `strings.ToLower`, with which BuildKit lowercases instruction keywords before matching
//! them (so `ENTRYPOİNT` is `entrypoint`, where Rust's full case mapping gives `entrypoi̇nt`).

use crate::rawbytes;

/// Go's `strings.ToLower`: each rune through its simple lowercase mapping (one rune to one
/// rune, so `İ` becomes `i`, and a final `Σ` stays `σ`, unlike Rust's `str::to_lowercase`);
/// a byte that is not UTF-8 (a [`rawbytes`] stand-in) comes out as U+FFFD, as Go writes it.
pub fn to_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|ch| simple_lowercase(rawbytes::as_go_rune(ch)))
        .collect()
}

/// `unicode.ToLower` of one rune.
fn simple_lowercase(ch: char) -> char {
    let mut lower = ch.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(single), None) => single,
        // Only U+0130 has a multi-rune full mapping; its simple mapping is `i`.
        _ if ch == '\u{130}' => 'i',
        _ => ch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_is_the_simple_mapping() {
        assert_eq!(to_lower("RUN"), "run");
        assert_eq!(to_lower("ENTRYPOİNT"), "entrypoint");
        assert_eq!(to_lower("ΣΣ"), "σσ");
        assert_eq!(to_lower("HEALTHCHEC\u{212a}"), "healthcheck");
        assert_eq!(to_lower("ÉTÉ"), "été");
    }

    #[test]
    fn bytes_that_are_not_utf8_become_the_replacement_character() {
        let text = rawbytes::decode(b"RU\xceN".to_vec());
        assert_eq!(to_lower(&text), "ru\u{fffd}n");
    }
}
