//! Repairs to a store-name line: registration numbers, OCR's misreadings
//! of `SDN BHD` and of the letter O, and debris at its ends.

use std::sync::LazyLock;

use regex::Regex;

// The patterns are literals exercised by the unit tests: they compile.
/// OCR's usual misreadings of the Malaysian `SDN BHD` (`SON BHD`, `SDN BILD`).
static SDN_BHD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bS[DO0]N(\.?) ?B(?:HD|ILD|IED|HO|H0)\b").expect("valid regex"));
/// A company registration number printed after the name: `(704427-T)`.
static TRAILING_REG_NO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\s*[(\[]?\s*(CO\.?\s*(REG|NO)\.?\s*:?)?\s*\d{4,}\s?-?\s?[A-Z]?\s*[)\]]?\s*$")
        .expect("valid regex")
});
/// A registration number in brackets whose first character OCR misread as
/// a letter: `(S19537-X)`.
static BRACKETED_REG_NO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\s*[(\[][A-Z]\d{4,}\s?-?\s?[A-Z]?\s*[)\]]?\s*$").expect("valid regex")
});
/// A short branch number in brackets ending the line: `Harbor Grill (031)`.
/// Left there, it would read as a phone's area code.
static TRAILING_STORE_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s*\(\d{1,4}\)\s*$").expect("valid regex"));

/// The name without a registration number or the stray marks OCR puts at
/// the edges of a line (`| MOONSTAR —`), with `SDN BHD` repaired.
pub fn clean_name(line: &str) -> String {
    let repaired = SDN_BHD.replace_all(line, "SDN$1 BHD");
    let repaired = zero_between_letters_as_o(&repaired);
    let repaired = BRACKETED_REG_NO.replace(&repaired, "");
    let without_reg = TRAILING_REG_NO.replace(&repaired, "");
    let without_reg = TRAILING_STORE_NUMBER.replace(&without_reg, "");
    let trimmed = without_reg
        .trim_matches(|c: char| !c.is_alphanumeric() && !matches!(c, '(' | ')' | '.' | '&' | '\''));
    trimmed.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The chosen name without OCR debris at its ends (`at New Asia Buffet F`).
/// Only the chosen name: judged by what remains, letter soup would look
/// like a name.
pub fn without_debris(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let words = super::without_trailing_debris(super::without_leading_debris(&words));
    let joined = words.join(" ");
    joined
        .trim_matches(|c: char| !c.is_alphanumeric() && !matches!(c, '(' | ')' | '.' | '&' | '\''))
        .to_string()
}

/// `HAI-0 RAYA`: a zero inside a word of letters is the letter O.
fn zero_between_letters_as_o(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let letter_at = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(|c| c.is_alphabetic())
    };
    let digit_at = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(char::is_ascii_digit)
    };
    (0..chars.len())
        .map(|i| {
            let (before, after) = (i.checked_sub(1), Some(i + 1));
            let beside_letter = letter_at(before) || letter_at(after);
            let beside_digit = digit_at(before) || digit_at(after);
            let hyphen_word =
                before.and_then(|b| chars.get(b)) == Some(&'-') && letter_at(i.checked_sub(2));
            match chars[i] {
                '0' if (beside_letter || hyphen_word) && !beside_digit => 'O',
                c => c,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_in_a_word_of_letters_is_the_letter_o() {
        assert_eq!(clean_name("TAK-0 RAYA BHD"), "TAK-O RAYA BHD");
        assert_eq!(clean_name("G0LDEN CAFE 20"), "GOLDEN CAFE 20");
    }

    #[test]
    fn a_bracketed_branch_number_after_the_name_is_dropped() {
        assert_eq!(clean_name("Harbor Grill (031)"), "Harbor Grill");
        assert_eq!(clean_name("Harbor (12) Grill"), "Harbor (12) Grill");
    }

    #[test]
    fn a_registration_number_with_its_first_digit_read_as_a_letter_is_dropped() {
        assert_eq!(
            clean_name("77 QUICK MART S/B(S19537-X)"),
            "77 QUICK MART S/B"
        );
    }
}
