//! Splitting words the recogniser glued where the print had a space but the
//! gap was too narrow to see in its character positions: a label and its
//! value (`TOTAL:$13.03`, `Date:2/19/19`) and a date and its time
//! (`12/19/20167:42:42PM`). Only patterns that cannot be one word are split.

use std::sync::LazyLock;

use regex::Regex;

/// A letter label ending in a colon, then a value: split after the colon.
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: compiling it cannot fail.
    Regex::new(r"^([A-Za-z#]{2,}:)([^\s:].*)$").expect("valid label pattern")
});

/// A date with a four-digit year, then a time or a label: split after the
/// year.
static DATE_TIME: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: compiling it cannot fail.
    Regex::new(r"^(.*\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)\d{2})(\d{1,2}:\d{2}.*|[A-Za-z]{2,}:.*)$")
        .expect("valid date-time pattern")
});

/// The pieces of `word`, in order (the word itself when nothing is glued).
pub fn split(word: &str) -> Vec<String> {
    for pattern in [&*LABEL, &*DATE_TIME] {
        if let Some(caps) = pattern.captures(word) {
            let mut pieces = split(&caps[1]);
            pieces.extend(split(&caps[2]));
            return pieces;
        }
    }
    vec![word.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_dates_and_times_glued_together_are_split() {
        assert_eq!(split("TOTAL:$13.03"), vec!["TOTAL:", "$13.03"]);
        assert_eq!(split("Date:2/19/19,1:20"), vec!["Date:", "2/19/19,1:20"]);
        assert_eq!(
            split("12/19/20167:42:42PM"),
            vec!["12/19/2016", "7:42:42PM"]
        );
        assert_eq!(
            split("Date:10-20-2018Time:12:37PM"),
            vec!["Date:", "10-20-2018", "Time:", "12:37PM"]
        );
    }

    #[test]
    fn times_amounts_and_plain_words_stay_whole() {
        for word in [
            "12:37PM",
            "$13.03",
            "4/24/2016",
            "TOTAL:",
            "Tel:",
            "07-3507405",
        ] {
            assert_eq!(split(word), vec![word], "{word}");
        }
    }
}
