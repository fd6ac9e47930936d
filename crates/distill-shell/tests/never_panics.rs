//! Random words, values and switches never make expansion panic, and the split words never
//! contain more than the single-string expansion has to offer.

use std::collections::HashMap;

use distill_shell::Lexer;
use proptest::prelude::*;

/// Pieces that exercise every branch of the lexer when strung together at random.
const PIECES: &[&str] = &[
    "$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "\\", "`", "'", "\"", "*", " ", "\t", "\n",
    "a", "Z", "_", "0", "1", "@", "!", "=", "[", "한", "٣", "\u{feff}", "\u{a0}", "${", "${A",
    "${B:-", "${A#", "${A%%", "${A//", "$A", "$$", "\\}", "\\/", "\\*", "${}", "${A:?", "'$A'",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|p| p.concat()),
        any::<String>(),
    ]
}

fn lexer() -> impl Strategy<Value = Lexer> {
    (prop::sample::select(&['\\', '`'][..]), any::<[bool; 4]>()).prop_map(
        |(escape, [quotes, escapes, skip_quotes, skip_unset])| {
            Lexer::new(escape)
                .raw_quotes(quotes)
                .raw_escapes(escapes)
                .skip_process_quotes(skip_quotes)
                .skip_unset_env(skip_unset)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn expansion_never_panics(
        lexer in lexer(),
        input in word(),
        a in word(),
        b in prop::option::of(word()),
    ) {
        let mut env = HashMap::new();
        env.insert("A".to_string(), a);
        if let Some(b) = b {
            env.insert("B".to_string(), b);
        }
        let single = lexer.process_word(&input, &env);
        let split = lexer.process_words(&input, &env);
        let full = lexer.process_word_with_matches(&input, &env);
        // The three entry points agree on success or failure, and on the error.
        prop_assert_eq!(single.as_ref().err(), split.as_ref().err());
        prop_assert_eq!(single.as_ref().err(), full.as_ref().err());
        if let (Ok(single), Ok(split), Ok(full)) = (single, split, full) {
            prop_assert_eq!(&single, &full.word);
            prop_assert_eq!(&split, &full.words);
            prop_assert!(split.iter().all(|w| !w.is_empty()));
            // Every name looked up is either set or unset, never both.
            prop_assert!(full.matched.is_disjoint(&full.unmatched));
        }
    }
}
