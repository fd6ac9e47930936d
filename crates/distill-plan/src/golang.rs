//! Go's number, boolean and duration syntaxes, which BuildKit uses to read flag values:
//! `strconv.Atoi`/`ParseInt` (stage indexes, `--retries`), `strconv.ParseBool` (mount
//! options) and `time.ParseDuration` (HEALTHCHECK durations: `30s`, `1m30s`, `1.5h`, `500ms`,
//! units `ns us µs μs ms s m h`), so distill accepts exactly the values BuildKit accepts.

/// `strconv.ParseInt(s, 10, 64)`: an optional sign and decimal digits.
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `strconv.ParseBool`.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses `text` into nanoseconds (negative durations are allowed, as in Go).
/// The error says what is wrong with the text.
pub(crate) fn parse_duration(text: &str) -> Result<i128, String> {
    let invalid = || format!("invalid duration {text:?}");
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
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let integer_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let integer = &rest[..integer_end];
        rest = &rest[integer_end..];
        let mut fraction = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let fraction_end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            fraction = &after_dot[..fraction_end];
            rest = &after_dot[fraction_end..];
        }
        if integer.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        if unit.is_empty() {
            return Err(format!("missing unit in duration {text:?}"));
        }
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        // Digits beyond what an i64 of nanoseconds can hold are an overflow in Go too.
        let whole: i128 = if integer.is_empty() {
            0
        } else {
            integer.parse::<i128>().map_err(|_| invalid())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            let digits = &fraction[..fraction.len().min(18)];
            let numerator: i128 = digits.parse().map_err(|_| invalid())?;
            let denominator = 10i128.pow(digits.len() as u32);
            part += numerator * scale / denominator;
        }
        total = total.checked_add(part).ok_or_else(invalid)?;
        if total > i64::MAX as i128 {
            return Err(invalid());
        }
    }
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_booleans() {
        assert_eq!(parse_int("+7"), Some(7));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("007"), Some(7));
        assert_eq!(parse_int("1e3"), None);
        assert_eq!(parse_int("-"), None);
        assert_eq!(parse_int("99999999999999999999"), None);
        assert_eq!(parse_bool("T"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration(".5s"), Ok(500_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("10µs"), Ok(10_000));
        assert_eq!(parse_duration("-1s"), Ok(-1_000_000_000));
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert_eq!(
            parse_duration("10"),
            Err("missing unit in duration \"10\"".into())
        );
        assert_eq!(
            parse_duration("10d"),
            Err("unknown unit \"d\" in duration \"10d\"".into())
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration(".s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }
}
