//! The characters the recogniser may read. PP-OCR's recogniser knows
//! thousands of classes (Chinese, full-width punctuation, …) and on a
//! receipt in Latin script a smudge is often read as one of them
//! (`（10.25%）`, `Brooklyn， NY`, `》iket：128《`). With the Latin alphabet
//! (the default, `OCR_ALPHABET=latin`) the decoder only considers
//! Latin-script classes, with full-width forms folded to their ASCII
//! twins; `OCR_ALPHABET=all` keeps every class, for receipts in other
//! scripts.

use clap::ValueEnum;

/// Which of the model's classes decoding considers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Script {
    /// ASCII, Latin letters with diacritics, general punctuation and
    /// currency signs; full-width forms read as ASCII.
    Latin,
    /// Every class the model has.
    All,
}

/// The recogniser's classes as decoding sees them.
#[derive(Debug, Clone)]
pub struct Alphabet {
    /// Each class's text (index 0, the CTC blank, is empty).
    texts: Vec<String>,
    /// The classes decoding looks at, the blank first.
    allowed: Vec<usize>,
    /// For each class, the first class with the same text: two classes
    /// that read the same at neighbouring steps are one character held.
    same_as: Vec<usize>,
}

impl Alphabet {
    /// `classes` as the model defines them: the blank, its characters,
    /// then a space.
    pub fn new(classes: Vec<String>, script: Script) -> Self {
        let texts: Vec<String> = match script {
            Script::All => classes,
            Script::Latin => classes.iter().map(|c| fold(c)).collect(),
        };
        let allowed = (0..texts.len())
            .filter(|&i| i == 0 || script == Script::All || texts[i].chars().all(is_latin))
            .filter(|&i| i == 0 || !texts[i].is_empty())
            .collect();
        let mut first = std::collections::HashMap::new();
        let same_as = (texts.iter().enumerate())
            .map(|(i, text)| *first.entry(text.as_str()).or_insert(i))
            .collect();
        Self {
            texts,
            allowed,
            same_as,
        }
    }

    /// The most probable allowed class of one time step and its probability.
    pub fn best(&self, row: &[f32]) -> (usize, f32) {
        let mut best = (0, f32::MIN);
        for &class in &self.allowed {
            if let Some(&p) = row.get(class)
                && p > best.1
            {
                best = (class, p);
            }
        }
        best
    }

    /// Whether two classes read as the same character.
    pub fn same(&self, a: usize, b: usize) -> bool {
        self.same_as.get(a) == self.same_as.get(b)
    }

    /// A class's text (empty for the blank or an unknown class).
    pub fn text(&self, class: usize) -> &str {
        self.texts.get(class).map_or("", String::as_str)
    }
}

/// Full-width forms (U+FF01–FF5E) and the ideographic space as ASCII,
/// full-width currency signs as their usual ones.
fn fold(class: &str) -> String {
    class
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            '\u{FFE0}' => '¢',
            '\u{FFE1}' => '£',
            '\u{FFE5}' => '¥',
            '\u{FFE6}' => '₩',
            _ => c,
        })
        .collect()
}

/// Characters printed on receipts in Latin script.
fn is_latin(c: char) -> bool {
    matches!(c,
        ' '..='~'                  // ASCII
        | '\u{A0}'..='\u{24F}'     // Latin-1 supplement, Latin extended A and B
        | '\u{2010}'..='\u{205E}'  // general punctuation: dashes, quotes, bullets
        | '\u{20A0}'..='\u{20CF}'  // currency signs
        | '\u{2116}'               // numero sign
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn latin_skips_other_scripts_and_takes_the_best_latin_class() {
        let alphabet = Alphabet::new(classes(&["", "A", "税", "é", " "]), Script::Latin);
        // 税 is the most probable, A the best Latin class.
        assert_eq!(alphabet.best(&[0.1, 0.3, 0.5, 0.05, 0.05]), (1, 0.3));
        assert_eq!(alphabet.best(&[0.1, 0.2, 0.3, 0.35, 0.05]), (3, 0.35));
        // Nothing Latin beats the blank.
        assert_eq!(alphabet.best(&[0.3, 0.1, 0.6, 0.0, 0.0]).0, 0);
    }

    #[test]
    fn all_keeps_every_class() {
        let alphabet = Alphabet::new(classes(&["", "A", "税", " "]), Script::All);
        assert_eq!(alphabet.best(&[0.1, 0.3, 0.5, 0.1]), (2, 0.5));
        assert_eq!(alphabet.text(2), "税");
    }

    #[test]
    fn full_width_forms_read_as_ascii_and_as_the_same_character() {
        let list = classes(&["", "(", "（", "，", "：", "￥", " "]);
        let alphabet = Alphabet::new(list, Script::Latin);
        assert_eq!(alphabet.text(2), "(");
        assert_eq!(alphabet.text(3), ",");
        assert_eq!(alphabet.text(4), ":");
        assert_eq!(alphabet.text(5), "¥");
        assert!(alphabet.same(1, 2));
        assert!(!alphabet.same(1, 3));
        // Under `all` the full-width form stays itself.
        let all = Alphabet::new(classes(&["", "(", "（"]), Script::All);
        assert_eq!(all.text(2), "（");
        assert!(!all.same(1, 2));
    }
}
