//! Go's `time.Duration` in text: `time.ParseDuration`, with which BuildKit reads HEALTHCHECK's
//! `--interval`, `--timeout`, `--start-period` and `--start-interval` (`30s`, `1m30s`, `1.5h`,
//! `500ms`), and `Duration.String`, with which it prints them into history (`1m30s`, `1.5ms`).
//!
//! A duration is a count of nanoseconds in an `i64`, as Go's `time.Duration` is. Parsing
//! follows Go step by step, including its overflow checks and its `float64` arithmetic for
//! fractions, so the same text gives the same nanosecond, and never panics.

use std::fmt;

use crate::rawbytes;

/// Why [`parse_duration`] refused a text: Go's error, without its `time: ` package prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Not a duration at all, or beyond the range of an `i64` of nanoseconds.
    Invalid { text: String },
    /// A number without a unit, as in `10`.
    MissingUnit { text: String },
    /// A unit other than `ns us µs μs ms s m h`.
    UnknownUnit { unit: String, text: String },
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Invalid { text } => write!(f, "invalid duration {}", quote(text)),
            DurationError::MissingUnit { text } => {
                write!(f, "missing unit in duration {}", quote(text))
            }
            DurationError::UnknownUnit { unit, text } => write!(
                f,
                "unknown unit {} in duration {}",
                quote(unit),
                quote(text)
            ),
        }
    }
}

impl std::error::Error for DurationError {}

/// 2⁶³, one more than the largest duration: Go's bound while it sums the parts, so that
/// `-9223372036854775808ns` is still the most negative duration.
const MAGNITUDE_LIMIT: u64 = 1 << 63;

/// Go's `time.ParseDuration`: an optional sign, then one or more decimal numbers, each with an
/// optional fraction and a unit (`ns`, `us`, `µs` or `μs`, `ms`, `s`, `m`, `h`), such as `300ms`,
/// `-1.5h` or `2h45m`; `0` needs no unit. Returns nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid {
        text: text.to_owned(),
    };
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while let Some(&first) = rest.as_bytes().first() {
        if first != b'.' && !first.is_ascii_digit() {
            return Err(invalid());
        }
        let (whole, after_whole) = leading_int(rest).ok_or_else(invalid)?;
        let has_whole = after_whole.len() != rest.len();
        rest = after_whole;

        let (mut fraction, mut scale, mut has_fraction) = (0, 1.0, false);
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (digits, digits_scale, after_fraction) = leading_fraction(after_dot);
            (fraction, scale) = (digits, digits_scale);
            has_fraction = after_fraction.len() != after_dot.len();
            rest = after_fraction;
        }
        if !has_whole && !has_fraction {
            return Err(invalid());
        }

        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit {
                text: text.to_owned(),
            });
        }
        let (unit, after_unit) = rest.split_at(unit_len);
        rest = after_unit;
        let unit_nanos = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_owned(),
            text: text.to_owned(),
        })?;

        if whole > MAGNITUDE_LIMIT / unit_nanos {
            return Err(invalid());
        }
        let mut part = whole * unit_nanos;
        if fraction > 0 {
            // Go computes the fraction in float64 (exact to the nanosecond for fractions of an
            // hour) and truncates; the same operations in the same order give the same result.
            // The fraction is below one unit, so the sum stays far below u64::MAX.
            part += (fraction as f64 * (unit_nanos as f64 / scale)) as u64;
            if part > MAGNITUDE_LIMIT {
                return Err(invalid());
            }
        }
        // Go adds in uint64 and only then compares: two parts of exactly 2⁶³ wrap to 0 there.
        total = total.wrapping_add(part);
        if total > MAGNITUDE_LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        // 2⁶³ becomes i64::MIN, whose negation is itself in Go's two's complement too.
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Nanoseconds in one `unit`, for the units Go's `time.ParseDuration` knows.
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU.
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Go's `leadingInt`: the leading ASCII digits of `s` as a number and the rest of `s`; `None`
/// when the number exceeds 2⁶³.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for digit in s[..end].bytes() {
        if value > MAGNITUDE_LIMIT / 10 {
            return None;
        }
        value = value * 10 + u64::from(digit - b'0');
        if value > MAGNITUDE_LIMIT {
            return None;
        }
    }
    Some((value, &s[end..]))
}

/// Go's `leadingFraction`: the leading ASCII digits of `s` as `value / scale`, and the rest of
/// `s`. Digits that would take `value` past 2⁶³ are consumed but ignored (precision stops
/// growing, it is not an error).
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let end = s.bytes().take_while(u8::is_ascii_digit).count();
    let (mut value, mut scale) = (0u64, 1.0f64);
    for digit in s[..end].bytes() {
        if value > (MAGNITUDE_LIMIT - 1) / 10 {
            break;
        }
        let next = value * 10 + u64::from(digit - b'0');
        if next > MAGNITUDE_LIMIT {
            break;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, &s[end..])
}

/// The `time` package's own `quote`, which its parse errors use: like `strconv.Quote` for
/// printable ASCII, but every other byte (each byte of a non-ASCII character, a byte that is
/// not UTF-8, a control character) written as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        if let Some(byte) = rawbytes::escaped_byte(ch) {
            out.push_str(&format!("\\x{byte:02x}"));
        } else if ch < ' ' || !ch.is_ascii() {
            for byte in ch.encode_utf8(&mut [0; 4]).bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        } else {
            if ch == '"' || ch == '\\' {
                out.push('\\');
            }
            out.push(ch);
        }
    }
    out.push('"');
    out
}

/// Go's `time.Duration.String`: `0s`; below a second one unit with a fraction (`1.5ms`,
/// `500µs`, `12ns`); from a second on hours, minutes and seconds, leading zero units left out
/// but inner ones kept (`1h0m0s`, `1m30.5s`); a `-` before negative durations.
pub fn duration_string(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    if magnitude == 0 {
        return "0s".to_owned();
    }
    if magnitude < 1_000_000_000 {
        let (unit, digits) = match magnitude {
            0..1_000 => ("ns", 0),
            // U+00B5 MICRO SIGN, as Go writes it.
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (whole, fraction) = split_fraction(magnitude, digits);
        return format!("{sign}{whole}{fraction}{unit}");
    }
    let (seconds, fraction) = split_fraction(magnitude, 9);
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let mut out = String::from(sign);
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{}m", minutes % 60));
    }
    out.push_str(&format!("{}{fraction}s", seconds % 60));
    out
}

/// `value` with its last `digits` decimal digits as a fraction, as Go's `fmtFrac` writes it:
/// the integer part, and `.` with the fraction's digits less trailing zeros (nothing when the
/// fraction is zero).
fn split_fraction(value: u64, digits: u32) -> (u64, String) {
    let unit = 10u64.pow(digits);
    let rest = value % unit;
    let fraction = if rest == 0 {
        String::new()
    } else {
        let padded = format!(".{rest:0width$}", width = digits as usize);
        padded.trim_end_matches('0').to_owned()
    };
    (value / unit, fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("30s", 30 * SECOND),
            ("+30s", 30 * SECOND),
            ("1m30s", 90 * SECOND),
            ("1h1h", 2 * HOUR),
            ("1.5h", 90 * MINUTE),
            (".5s", 500_000_000),
            ("5.s", 5 * SECOND),
            ("500ms", 500_000_000),
            ("10us", 10_000),
            ("10µs", 10_000),
            ("10μs", 10_000),
            ("7ns", 7),
            ("-1s", -SECOND),
            ("-1.5m", -90 * SECOND),
            ("1.0000000009s", SECOND),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("2562047h47m16.854775807s", i64::MAX),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse_duration(text), Ok(nanos), "parse_duration({text:?})");
        }
    }

    #[test]
    fn fractions_are_computed_as_go_computes_them() {
        // Values checked against Go's time.ParseDuration: its float64 arithmetic rounds these
        // to the whole minute, where exact decimal arithmetic on 18 digits would fall 1ns
        // short.
        assert_eq!(parse_duration("0.3333333333333333333h"), Ok(20 * MINUTE));
        assert_eq!(parse_duration("0.6666666666666666666h"), Ok(40 * MINUTE));
        // Digits past 2⁶³ are ignored, not an error.
        assert_eq!(
            parse_duration("1.50000000000000000000000000000001s"),
            Ok(1_500_000_000)
        );
    }

    #[test]
    fn rejects_what_go_rejects() {
        let message = |text: &str| parse_duration(text).map_err(|err| err.to_string());
        assert_eq!(
            message("10"),
            Err(r#"missing unit in duration "10""#.into())
        );
        assert_eq!(
            message("10d"),
            Err(r#"unknown unit "d" in duration "10d""#.into())
        );
        assert_eq!(
            message("1é"),
            Err(r#"unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#.into())
        );
        assert_eq!(
            message("1\"\\"),
            Err(r#"unknown unit "\"\\" in duration "1\"\\""#.into())
        );
        assert_eq!(
            message("1s "),
            Err(r#"unknown unit "s " in duration "1s ""#.into())
        );
        assert_eq!(
            message("1s-1s"),
            Err(r#"unknown unit "s-" in duration "1s-1s""#.into())
        );
        let stand_in = rawbytes::decode(b"1\xff".to_vec());
        assert_eq!(
            message(&stand_in),
            Err(r#"unknown unit "\xff" in duration "1\xff""#.into())
        );
        for invalid in [
            "",
            "-",
            "+",
            "s",
            ".s",
            "-.s",
            " 1s",
            "9223372036854775808ns",
            "9223372036854775807ns1ns",
            "2562048h",
            "99999999999999999999h",
            "99999999999999999999ns",
        ] {
            assert_eq!(
                parse_duration(invalid),
                Err(DurationError::Invalid {
                    text: invalid.into()
                }),
                "parse_duration({invalid:?})"
            );
        }
    }

    #[test]
    fn sums_wrap_as_in_go() {
        // Go adds the parts in uint64 before checking: 2⁶³ + 2⁶³ wraps to 0.
        assert_eq!(
            parse_duration("9223372036854775808ns9223372036854775808ns"),
            Ok(0)
        );
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (1_500_000, "1.5ms"),
            (999_999_999, "999.999999ms"),
            (SECOND, "1s"),
            (1_500_000_000, "1.5s"),
            (30 * SECOND, "30s"),
            (90 * SECOND, "1m30s"),
            (HOUR, "1h0m0s"),
            (HOUR + 1, "1h0m0.000000001s"),
            (26 * HOUR + 3 * SECOND, "26h0m3s"),
            (-1_500, "-1.5µs"),
            (-90 * SECOND, "-1m30s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(duration_string(nanos), text, "duration_string({nanos})");
        }
    }

    proptest::proptest! {
        #[test]
        fn printed_durations_parse_back(nanos: i64) {
            proptest::prop_assert_eq!(parse_duration(&duration_string(nanos)), Ok(nanos));
        }

        #[test]
        fn parsing_never_panics(text in "[-+]?[0-9.]{0,25}(ns|us|µs|ms|s|m|h|x)?[0-9.]{0,5}(s|h)?") {
            let _ = parse_duration(&text);
        }
    }
}
