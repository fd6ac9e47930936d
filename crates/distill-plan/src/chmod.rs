//! `--chmod` values of COPY and ADD: an octal mode up to `07777`, or a symbolic mode in
//! chmod(1)'s syntax (`u+x,go-w`, `a=rX`), which BuildKit accepts since dockerfile 1.14.

use distill_frontend::{Diagnostic, Source, Word};

/// A checked `--chmod` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chmod {
    /// Permission bits (`0o777` at most: see `parse_chmod`).
    Octal(u32),
    /// Clauses to apply to each file's current mode, as written.
    Symbolic(String),
}

/// Reads an (expanded) `--chmod` value.
pub fn parse_chmod(source: &Source, word: &Word) -> Result<Chmod, Diagnostic> {
    let text = word.value.as_str();
    let invalid = || {
        Diagnostic::at(
            source,
            word.pos,
            format!(
                "invalid chmod parameter: '{text}'. it should be octal string and between 0 and 07777"
            ),
        )
        .with_hint("write an octal mode such as 0755, or a symbolic one such as u+x,go-w")
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Go's ParseUint(s, 8, 32): digits 8 and 9 make it symbolic, which fails below.
        if let Ok(mode) = u32::from_str_radix(text, 8) {
            // Docker 20.10's BuildKit hands the number to Go's os.Chmod as an os.FileMode,
            // whose setuid/setgid/sticky flags are other bits: 04755 gives 0755. distill
            // matches the engine it is compared with.
            return if mode <= 0o7777 {
                Ok(Chmod::Octal(mode & 0o777))
            } else {
                Err(invalid())
            };
        }
    }
    if is_symbolic(text) {
        Ok(Chmod::Symbolic(text.to_string()))
    } else {
        Err(invalid())
    }
}

/// chmod(1)'s `[ugoa]*([-+=]([rwxXst]*|[ugo]))+` clauses, separated by commas.
fn is_symbolic(text: &str) -> bool {
    !text.is_empty()
        && text.split(',').all(|clause| {
            let actions = clause.trim_start_matches(['u', 'g', 'o', 'a']);
            if actions.is_empty() {
                return false;
            }
            let mut chars = actions.chars().peekable();
            while let Some(operator) = chars.next() {
                if !matches!(operator, '+' | '-' | '=') {
                    return false;
                }
                match chars.peek() {
                    Some('u' | 'g' | 'o') => {
                        chars.next();
                    }
                    _ => {
                        while chars
                            .peek()
                            .is_some_and(|c| matches!(c, 'r' | 'w' | 'x' | 'X' | 's' | 't'))
                        {
                            chars.next();
                        }
                    }
                }
            }
            true
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use distill_frontend::Pos;

    fn parse(text: &str) -> Result<Chmod, Diagnostic> {
        let source = Source::new("Dockerfile", format!("COPY --chmod={text} a b\n"));
        let word = Word {
            value: text.into(),
            pos: Pos::new(1, 14),
        };
        parse_chmod(&source, &word)
    }

    #[test]
    fn octal_and_symbolic_modes() {
        assert_eq!(parse("755"), Ok(Chmod::Octal(0o755)));
        assert_eq!(parse("04755"), Ok(Chmod::Octal(0o755)));
        assert_eq!(parse("1777"), Ok(Chmod::Octal(0o777)));
        assert_eq!(parse("0"), Ok(Chmod::Octal(0)));
        assert_eq!(parse("u+x,go-w"), Ok(Chmod::Symbolic("u+x,go-w".into())));
        assert_eq!(parse("a=rX"), Ok(Chmod::Symbolic("a=rX".into())));
        assert_eq!(parse("g=u"), Ok(Chmod::Symbolic("g=u".into())));
        assert_eq!(parse("+x"), Ok(Chmod::Symbolic("+x".into())));
    }

    #[test]
    fn rejects_the_rest() {
        for bad in ["17777", "789", "", "64a", "u", "u+q", "x+r", "u+x,"] {
            let error = parse(bad).unwrap_err();
            assert_eq!(
                error.message,
                format!("invalid chmod parameter: '{bad}'. it should be octal string and between 0 and 07777")
            );
        }
    }
}
