//! OCR misreadings in a store name, repaired with a word list: a word
//! that is not in the list, but becomes exactly one listed word by one of
//! the recogniser's usual confusions (`HANBURGERS` → `HAMBURGERS`,
//! `Amertcas` → `Americas`) or by a thin letter it dropped (`CHCKEN` →
//! `CHICKEN`), is replaced by that word. Names the list does not know and
//! that no confusion turns into a listed word (`Pappadeaux`) stay as read.
//!
//! The list is the file in `OCR_WORDS_FILE`, else Debian's `wamerican`
//! (`/usr/share/dict/american-english`, or `/usr/share/dict/words`);
//! without one, names are left as read (and a warning says so once).

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

/// Where the word list is looked for when `OCR_WORDS_FILE` is not set.
const DEFAULT_WORDS_FILES: [&str; 2] =
    ["/usr/share/dict/american-english", "/usr/share/dict/words"];

/// Shorter words are left alone: too many listed words lie one letter away.
const SHORTEST_REPAIRED: usize = 5;

/// Letters the recogniser reads in place of others, as (read, meant).
const CONFUSIONS: [(char, &str); 12] = [
    ('t', "i"),
    ('l', "i"),
    ('i', "l"),
    ('n', "m"),
    ('r', "n"),
    ('d', "oq"),
    ('c', "e"),
    ('e', "c"),
    ('u', "v"),
    ('v', "u"),
    ('h', "b"),
    ('b', "h"),
];

/// Thin letters the recogniser drops.
const DROPPED: [char; 2] = ['i', 'l'];

static WORDS: LazyLock<Option<Words>> = LazyLock::new(|| {
    let configured = std::env::var_os("OCR_WORDS_FILE").filter(|f| !f.is_empty());
    let paths: Vec<std::path::PathBuf> = match configured {
        Some(path) => vec![path.into()],
        None => DEFAULT_WORDS_FILES.iter().map(Into::into).collect(),
    };
    let words = paths.iter().find_map(|path| Words::load(path));
    if words.is_none() {
        tracing::warn!(
            tried = ?paths,
            "no word list: store names are not spell-repaired (install Debian's wamerican or set OCR_WORDS_FILE)"
        );
    }
    words
});

/// A word list, lower-cased.
pub struct Words(HashSet<String>);

impl Words {
    /// One word a line; possessives (`Marie's`) and words with other marks
    /// are left out.
    pub fn from_list(list: &str) -> Self {
        let words = list
            .lines()
            .map(str::trim)
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic()))
            .map(str::to_ascii_lowercase)
            .collect();
        Self(words)
    }

    /// The list in `path`, or `None` when it cannot be read.
    pub fn load(path: &Path) -> Option<Self> {
        let list = std::fs::read_to_string(path).ok()?;
        Some(Self::from_list(&list))
    }

    fn contains(&self, word: &str) -> bool {
        self.0.contains(word)
    }
}

/// `name` with its misread words repaired by the installed word list.
pub fn repair_name(name: &str) -> String {
    match WORDS.as_ref() {
        Some(words) => repair_with(name, words),
        None => name.to_string(),
    }
}

/// `name` with each misread word repaired from `words`. Words are runs of
/// letters, split where a lower-case letter meets a capital
/// (`AmertcasDrive` is two words); marks and digits stay as they are.
pub fn repair_with(name: &str, words: &Words) -> String {
    let mut repaired = String::with_capacity(name.len());
    let mut word = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        let starts_word = c.is_ascii_uppercase() && previous_lower;
        if !c.is_ascii_alphabetic() || starts_word {
            repaired.push_str(&repair_word(&word, words));
            word.clear();
        }
        match c.is_ascii_alphabetic() {
            true => word.push(c),
            false => repaired.push(c),
        }
        previous_lower = c.is_ascii_lowercase();
    }
    repaired.push_str(&repair_word(&word, words));
    repaired
}

/// The one listed word `word` is a misreading of, in `word`'s case; or
/// `word` itself when it is listed, short, or could be several words.
fn repair_word(word: &str, words: &Words) -> String {
    let lower = word.to_ascii_lowercase();
    if lower.len() < SHORTEST_REPAIRED || words.contains(&lower) {
        return word.to_string();
    }
    let mut meant = readings(&lower);
    meant.retain(|reading| words.contains(reading));
    meant.sort();
    meant.dedup();
    match meant.as_slice() {
        [only] => in_case_of(word, only),
        _ => word.to_string(),
    }
}

/// What `word` (lower case) could have been: one confused letter put
/// right, or one dropped thin letter put back.
fn readings(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let replaced = |at: usize, letter: char| {
        let mut reading = chars.clone();
        reading[at] = letter;
        reading.into_iter().collect::<String>()
    };
    let inserted = |at: usize, letter: char| {
        let mut reading = chars.clone();
        reading.insert(at, letter);
        reading.into_iter().collect::<String>()
    };
    let mut readings = Vec::new();
    for (at, read) in chars.iter().enumerate() {
        for (_, meant) in CONFUSIONS.iter().filter(|(confused, _)| confused == read) {
            readings.extend(meant.chars().map(|letter| replaced(at, letter)));
        }
    }
    for at in 0..=chars.len() {
        readings.extend(DROPPED.iter().map(|&thin| inserted(at, thin)));
    }
    readings
}

/// `meant` (lower case) written as `read` was: all capitals, a capital
/// first, or lower case.
fn in_case_of(read: &str, meant: &str) -> String {
    if read.chars().all(|c| c.is_ascii_uppercase()) {
        return meant.to_ascii_uppercase();
    }
    if read.starts_with(|c: char| c.is_ascii_uppercase()) {
        let mut chars = meant.chars();
        let first = chars.next().map(|c| c.to_ascii_uppercase());
        return first.into_iter().chain(chars).collect();
    }
    meant.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Words {
        Words::from_list(
            "hamburgers\nchicken\nesquire\nAmericas\nMarie\nMarie's\ndrive\ngrill\nchris\ncafe\ncart\npart\n",
        )
    }

    #[test]
    fn a_word_one_usual_confusion_away_from_a_listed_word_is_repaired() {
        let words = words();
        assert_eq!(
            repair_with("CHRIS'S HANBURGERS", &words),
            "CHRIS'S HAMBURGERS"
        );
        assert_eq!(
            repair_with("HMS ESDUIRE GRILLE", &words),
            "HMS ESQUIRE GRILLE"
        );
        assert_eq!(
            repair_with("Marle Callender's", &words),
            "Marie Callender's"
        );
    }

    #[test]
    fn a_dropped_thin_letter_is_put_back() {
        assert_eq!(
            repair_with("CHURCH'S CHCKEN#4717", &words()),
            "CHURCH'S CHICKEN#4717"
        );
    }

    #[test]
    fn words_glued_at_a_capital_are_repaired_apart() {
        let repaired = repair_with("Sonic AmertcasDrive-In", &words());
        assert_eq!(repaired, "Sonic AmericasDrive-In");
    }

    #[test]
    fn listed_short_unknown_and_ambiguous_words_stay_as_read() {
        let words = words();
        // Listed, shorter than five letters, no confusion away from a
        // listed word, and a word two listed words could have been.
        assert_eq!(repair_with("Grill", &words), "Grill");
        assert_eq!(repair_with("CAFF", &words), "CAFF");
        assert_eq!(repair_with("Pappadeaux", &words), "Pappadeaux");
        let ambiguous = Words::from_list("maine\nmalme\n");
        assert_eq!(repair_with("MALNE", &ambiguous), "MALNE");
    }

    #[test]
    fn the_installed_word_list_repairs_names() {
        // scripts/deps.sh and the Dockerfile install Debian's wamerican.
        assert_eq!(repair_name("CHRIS'S HANBURGERS"), "CHRIS'S HAMBURGERS");
        assert_eq!(
            repair_name("Pappadeaux Seafood Kitchen"),
            "Pappadeaux Seafood Kitchen"
        );
    }

    #[test]
    fn a_word_list_that_cannot_be_read_is_none() {
        assert!(Words::load(Path::new("/nonexistent/words")).is_none());
    }
}
