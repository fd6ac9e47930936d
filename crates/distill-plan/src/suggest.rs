//! "Did you mean ...?": the nearest known word to a misspelt one, by edit distance.
//!
//! Used for unknown instructions, flags, mount keys, stage names and targets. It never
//! suggests a word that is further than a couple of edits away: a wrong hint is worse than none.

/// The candidate closest to `word` (compared without regard to case), if it is close enough
/// to be a plausible typo: at most two edits, and fewer edits than the word has characters.
pub(crate) fn nearest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let word = word.to_lowercase();
    let length = word.chars().count();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&word, &candidate.to_lowercase());
        if distance == 0 || distance > 2 || distance >= length {
            continue;
        }
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Levenshtein distance counted in characters, with a transposition of two neighbours
/// counted as one edit (`FORM` is one edit from `FROM`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: the one before the previous is needed for transpositions.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposition_is_one_edit() {
        assert_eq!(edit_distance("form", "from"), 1);
        assert_eq!(edit_distance("cpy", "copy"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggests_only_close_words() {
        let words = ["FROM", "RUN", "COPY"];
        assert_eq!(nearest("FORM", words), Some("FROM"));
        assert_eq!(nearest("form", words), Some("FROM"));
        assert_eq!(nearest("RN", words), Some("RUN"));
        assert_eq!(nearest("HELLO", words), None);
        // One character is never "corrected" into another word.
        assert_eq!(nearest("X", ["Y"]), None);
    }
}
