//! The store name: the most name-like line of the receipt's header, which
//! also holds the address, phone numbers, tax ids and greetings to skip.

use std::sync::LazyLock;

use regex::Regex;

use super::contact::ADDRESS_WORD;
use super::spelling;
use super::store_name::{clean_name, without_debris};

/// The header is this many lines; a name further down is rarely the store's.
const HEADER_LINES: usize = 10;

// The patterns are literals exercised by the unit tests: they compile.
static NOT_A_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(TEL|PHONE|PH|FAX|GST|SST|VAT|TAX|ABN|ROC|CO\.? ?REG|REG\.? ?NO|",
        r"COMPANY NO|BUSINESS NO|INVOICE|RECEIPT|WELCOME|THANK|ORDER|TABLE|SERVER|CASHIER|",
        r"GUEST|CHECK|DATE|TIME|STREET|ST\.|AVE|AVENUE|ROAD|RD\.?|BLVD|DRIVE|DR\.|HWY|SUITE|",
        r"PARKWAY|PKWY|JALAN|JLN|TAMAN|LOT|NO\.|BATU|SELANGOR|KUALA|JOHOR|MALAYSIA|WWW|HTTP|",
        r"\.COM|EMAIL|CASH SALE)\b|@|#\s*\d|,\s*[A-Z][A-Za-z]\b\.?\s*\d*\s*$",
    ))
    .expect("valid regex")
});
static ZIP_OR_PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{5}\b|\(\d{3}\)|\d{3}[-. ]\d{3,4}[-. ]?\d{0,4}|\b[A-Z]{2} \d{5}")
        .expect("valid regex")
});
/// A street number opening the line: `8030 Renaissance Parkway`.
static STREET_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\W*\d{1,5}[A-Z]?\s+[A-Za-z]").expect("valid regex"));
/// A store number ending the name's line: `#2614`, `CHICKEN#4717`.
static STORE_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"#\s?(\d{2,6})\s*$").expect("valid regex"));
/// Legal forms: a line carrying one is the registered company name.
static LEGAL_FORM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(SDN\.? ?BHD|BHD|S/B|LLC|INC|LTD|LIMITED|GMBH|PLC|CORP|ENTERPRISE|TRADING)\b",
    )
    .expect("valid regex")
});
static BUSINESS_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(RESTAURANT|RESTORAN|CAFE|COFFEE|BAKERY|BAKERIES|MART|MARKET|STORE|SHOP|KITCHEN|",
        r"GRILL|GRILLE|BAR|PIZZA|PIZZERIA|DELI|PHARMACY|HARDWARE|STATIONERY|SUPERMARKET|HOTEL|",
        r"TAVERN|DINER|BURGERS?|BUFFET|SUSHI|TACO|CHICKEN|STEAKHOUSE|BISTRO|HYPERMARKET)\b",
    ))
    .expect("valid regex")
});
/// The store name and how sure we are of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundStore {
    pub name: String,
    /// Position of its (first) line in the lines given to [`find_store`].
    pub line: usize,
    pub confidence: f32,
}

/// The best store-name candidate among the header lines.
pub fn find_store(lines: &[String]) -> Option<FoundStore> {
    // A banner is left blank: neither a name nor a part of one.
    let header: Vec<String> = lines
        .iter()
        .take(HEADER_LINES)
        .map(|l| match is_banner(l) {
            true => String::new(),
            false => clean_name(l),
        })
        .collect();
    let candidates = (0..header.len()).filter(|&i| !is_legal_form_only(&header[i]) || i == 0);
    let address = header.iter().position(|l| is_address_line(l));
    let scored: Vec<(usize, f32)> = candidates
        .filter_map(|i| name_score(&header[i]).map(|s| (i, s)))
        .enumerate()
        .map(|(rank, (i, s))| (i, s - 0.06 * rank as f32 + above_address_bonus(address, i)))
        .collect();
    let (index, score) = *scored.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let index = printed_again_below(&header, index).unwrap_or(index);
    let index = name_starts_above(&header, bracket_opened_above(&header, index));
    let (name, last) = join_wrapped_name(&header, index);
    let name = spelling::repair_name(&without_debris(&name));
    let name = with_store_number(name, &lines[last]);
    (name.len() >= 2).then(|| FoundStore {
        name,
        line: index,
        confidence: store_confidence(score),
    })
}

/// The name is usually printed right above the first line of the store's
/// address (or its phone number), `first_address_line`, so that line gets a little more than
/// logo text above it. Only a tie-breaker: less than the 0.06 a line loses
/// for each name-like line above it.
fn above_address_bonus(first_address_line: Option<usize>, index: usize) -> f32 {
    match first_address_line == Some(index + 1) {
        true => 0.05,
        false => 0.0,
    }
}

/// A line of the store's address or its phone number.
fn is_address_line(line: &str) -> bool {
    STREET_NUMBER.is_match(line) || ZIP_OR_PHONE.is_match(line) || ADDRESS_WORD.is_match(line)
}

/// Name scores run from about 0.3 (a plain line) to 1.1 (a clean upper-case
/// line with a legal form). Measured on real receipts, only the top of that
/// range is usually right: OCR garbles logos and display fonts.
fn store_confidence(score: f32) -> f32 {
    (score - 0.3).clamp(0.05, 0.9)
}

/// The name, with the legal form wrapped onto the next line (`SDN BHD`,
/// `ENTERPRISE (SETIA`), the rest of a name that ends in `&`, the words
/// under a one-word name in a display font (`LUNA` / `NOODLE HOUSE`), and
/// the name-like lines a round bracket spans (a bracket the name opened
/// and has not closed, or one the next line closes); at most
/// [`MAX_NAME_LINES`] lines. Also the index of the name's last line.
fn join_wrapped_name(header: &[String], index: usize) -> (String, usize) {
    let first = &header[index];
    let mut lines = vec![first.as_str()];
    while let Some(next) = header.get(index + lines.len()) {
        let name = lines.join(" ");
        let bracket_open = opens_a_bracket(&name) && !is_address_line(next);
        let in_brackets = (bracket_open || closes_a_bracket(next)) && name_score(next).is_some();
        let wrapped = lines.len() == 1
            && (is_legal_form_only(next)
                || continues_as_company(next)
                || first.ends_with('&')
                || is_name_continued(first, next));
        if lines.len() == MAX_NAME_LINES || !(in_brackets || wrapped) {
            break;
        }
        lines.push(next);
    }
    let last = index + lines.len() - 1;
    (with_misread_bracket(&lines).join(" "), last)
}

/// A name is printed on at most this many lines.
const MAX_NAME_LINES: usize = 3;

/// The text opens more round brackets than it closes.
fn opens_a_bracket(text: &str) -> bool {
    count(text, |c| c == '(') > count(text, |c| c == ')')
}

/// The text closes more round brackets than it opens.
fn closes_a_bracket(text: &str) -> bool {
    count(text, |c| c == ')') > count(text, |c| c == '(')
}

/// OCR reads a `(` as `I`, `l` or `|`. In a name that closes a bracket and
/// opens none (`ENTERPRISE ISETIA` / `ALAM) SDN BHD`, `ABC IM) SDN BHD`),
/// the bracket was opened by the nearest word before the `)`, on its line
/// or ending the line above, that starts with one of those and a capital.
/// Not the name's first word, and not where OCR read another bracket.
fn with_misread_bracket(lines: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let name = lines.join(" ");
    let other_bracket = name.contains(['(', '[', '{']);
    let Some(k) = lines.iter().position(|l| l.contains(')')) else {
        return lines;
    };
    if other_bracket {
        return lines;
    }
    // Word starts: the words before the `)` on its line (not the name's
    // first), nearest first, then the last word of the line above.
    let close = lines[k].find(')').unwrap_or_default();
    let on_line = lines[k][..close]
        .match_indices(' ')
        .map(|(i, _)| (k, i + 1))
        .chain((k > 0).then_some((k, 0)))
        .collect::<Vec<_>>();
    let above = k
        .checked_sub(1)
        .and_then(|a| lines[a].rfind(' ').map(|i| (a, i + 1)));
    let found = on_line
        .into_iter()
        .rev()
        .chain(above)
        .find(|&(line, at)| opens_as_misread_bracket(&lines[line][at..]));
    if let Some((line, at)) = found {
        lines[line].replace_range(at..at + 1, "(");
    }
    lines
}

/// A word whose `(` OCR read as `I`, `l` or `|`: one of those, then a
/// capital (`ISETIA`, `IM)`).
fn opens_as_misread_bracket(word: &str) -> bool {
    let mut chars = word.chars();
    matches!(chars.next(), Some('I' | 'l' | '|')) && chars.next().is_some_and(char::is_uppercase)
}

/// A company name does not begin with its legal form: a line that does
/// (`ENTERPRISE (SETIA` under `AIK HUAT HARDWARE`) continues the one above
/// when what follows the legal form is more of one: nothing, another legal
/// form, `CO.`, `&`, or a bracket (read as one, or as `I`: `ENTERPRISE
/// ISETIA`). `LIMITED TIME OFFER` and `TRADING HOURS: 9-5` are not.
fn continues_as_company(line: &str) -> bool {
    let Some(form) = LEGAL_FORM.find(line).filter(|m| m.start() == 0) else {
        return false;
    };
    let rest = line[form.end()..].trim_start();
    let next_word = rest.split_whitespace().next().unwrap_or_default();
    let misread_bracket = opens_as_misread_bracket(next_word)
        && next_word.chars().all(|c| c.is_alphabetic() || c == '|');
    rest.is_empty()
        || rest.starts_with(['(', '&'])
        || rest.starts_with("CO.")
        || LEGAL_FORM.find(rest).is_some_and(|m| m.start() == 0)
        || misread_bracket
}

/// The name with the store number printed after it on its line
/// (`Panda Express #2614`): chains number their branches so, and the
/// number is part of the name as printed. Header lines are scored
/// without it (a `#` and digits otherwise mark an order or table line).
fn with_store_number(name: String, line: &str) -> String {
    let Some(found) = STORE_NUMBER.captures(line) else {
        return name;
    };
    let number = format!("#{}", &found[1]);
    match name.ends_with(&number) || name.is_empty() {
        true => name,
        false => format!("{name} {number}"),
    }
}

/// A banner, not a name: a word or two between decorations on both sides
/// (`**PURCHASE**`, `>> SETTLED <<`, `-TO GO-`).
fn is_banner(line: &str) -> bool {
    let line = line.trim();
    let decoration = |c: Option<char>| c.is_some_and(|c| "*=~-<>《》«»".contains(c));
    decoration(line.chars().next()) && decoration(line.chars().last())
}

/// A short one-word name continues on the next line when that line is a
/// name of its own words: not an address (a street number first), not a
/// legal form, and not a bare business word with a branch number
/// (`Restaurant #123`), which describes the name rather than continuing it.
fn is_name_continued(name: &str, next: &str) -> bool {
    let short_word = name.split_whitespace().count() == 1 && count(name, char::is_alphabetic) <= 8;
    let starts_with_digit = next.starts_with(|c: char| c.is_ascii_digit());
    let own_words = BUSINESS_WORD.replace_all(next, "");
    let descriptor_only = count(&own_words, char::is_alphabetic) < 3;
    short_word
        && !starts_with_digit
        && !descriptor_only
        && !LEGAL_FORM.is_match(next)
        && name_score(next).is_some()
}

/// A chosen line that closes a bracket it never opened (`ALAM) SDN BHD`)
/// ends a name begun on the name-like lines above it, as far as the
/// bracket's opening (at most [`MAX_NAME_LINES`] lines in all).
fn bracket_opened_above(header: &[String], index: usize) -> usize {
    let mut start = index;
    let mut text = header[index].clone();
    while closes_a_bracket(&text) && index - start + 1 < MAX_NAME_LINES {
        let Some(above) = start
            .checked_sub(1)
            .filter(|&a| name_score(&header[a]).is_some())
        else {
            break;
        };
        text = format!("{} {text}", header[above]);
        start = above;
    }
    start
}

/// The line above the chosen one starts the name when the chosen line
/// continues it (`LUNA` / `NOODLE HOUSE`, where the business words made the
/// second line score higher), or when the chosen line is only a business
/// word and a branch number (`Restaurant 1234`) under a name.
fn name_starts_above(header: &[String], index: usize) -> usize {
    let Some(above) = index.checked_sub(1) else {
        return index;
    };
    let (name, line) = (&header[above], &header[index]);
    // A logo fragment above its name printed in full does not start it.
    let repeated = letters_of(line).contains(&letters_of(name));
    let continues = is_name_continued(name, line) && !repeated;
    let own_words = BUSINESS_WORD.replace_all(line, "");
    let descriptor_only =
        BUSINESS_WORD.is_match(line) && count(&own_words, char::is_alphabetic) < 3;
    match (continues || descriptor_only || continues_as_company(line)) && name_score(name).is_some()
    {
        true => above,
        false => index,
    }
}

/// A logo read as a fragment (`GRILLE`, `FIREFLU`) is often printed again
/// in plain type a few lines below (`Villaggio Grille`): the later line
/// that contains the fragment, or starts with its first four letters.
fn printed_again_below(header: &[String], index: usize) -> Option<usize> {
    let fragment = letters_of(&header[index]);
    let prefix: String = fragment.chars().take(4).collect();
    (index + 1..header.len().min(index + 5)).find(|&j| {
        let later = letters_of(&header[j]);
        let repeats =
            later.contains(&fragment) || (prefix.len() == 4 && later.starts_with(&prefix));
        repeats && later.len() > fragment.len() && name_score(&header[j]).is_some()
    })
}

/// How name-like a header line is (None when it is clearly something else).
/// Names are mostly letters in real words, sit near the top, and often
/// carry a legal form (`SDN BHD`) or a business word (`Restaurant`).
fn name_score(line: &str) -> Option<f32> {
    let letters = count(line, |c| c.is_alphabetic());
    // A company's line ends with its legal form; one that begins with it
    // is the rest of a name above, or no name (`LIMITED TIME OFFER`).
    let is_company = LEGAL_FORM.find_iter(line).any(|m| m.start() > 0);
    let is_address = NOT_A_NAME.is_match(line) || ZIP_OR_PHONE.is_match(line) || line.contains(':');
    let is_street = STREET_NUMBER.is_match(line) && !BUSINESS_WORD.is_match(line);
    // A name is printed with capitals; a lower-case word is logo debris.
    let no_capital = !line.chars().any(char::is_uppercase);
    if letters < 3 || no_capital || super::amount::trailing_amount(line).is_some() {
        return None;
    }
    if (!is_company && is_address) || is_street {
        return None;
    }
    let clean_share = letters as f32 / count(line, |c| !c.is_whitespace()) as f32;
    let word_share = real_word_share(line);
    if clean_share < 0.6 || word_share == 0.0 {
        return None;
    }
    let mut score = 0.3 + 0.2 * clean_share + 0.3 * word_share;
    if is_company {
        score += 0.25;
    }
    let other_letters = letters.saturating_sub(BUSINESS_WORD.find(line).map_or(0, |m| m.len()));
    if BUSINESS_WORD.is_match(line) && other_letters >= 3 {
        score += 0.1;
    }
    if count(line, |c| c.is_uppercase()) * 10 >= letters * 7 {
        score += 0.05;
    }
    Some(score)
}

/// Share of the line's words that look like words: three letters or more
/// with a vowel. OCR of a logo or texture gives letter soup (`Sa e ”`).
/// Marks and single letters (`B & BEST`) are left out of the share; an
/// upper-case word of three letters or more counts as real (`KFC`).
fn real_word_share(line: &str) -> f32 {
    let words: Vec<&str> = line
        .split_whitespace()
        .filter(|w| count(w, |c| c.is_alphabetic()) >= 2)
        .collect();
    let real = words
        .iter()
        .filter(|w| {
            let letters = count(w, |c| c.is_alphabetic());
            let acronym = count(w, |c| c.is_uppercase()) == letters;
            letters >= 3 && (acronym || w.chars().any(|c| "AEIOUYaeiouy".contains(c)))
        })
        .count();
    if words.is_empty() {
        0.0
    } else {
        real as f32 / words.len() as f32
    }
}

/// The line's letters and digits, upper-cased: `Villaggio Grille` → `VILLAGGIOGRILLE`.
fn letters_of(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

fn count(text: &str, what: impl Fn(char) -> bool) -> usize {
    text.chars().filter(|&c| what(c)).count()
}

fn is_legal_form_only(line: &str) -> bool {
    let rest = LEGAL_FORM.replace_all(line, "");
    let rest = rest.replace("CO.", "").replace("(M)", "");
    count(&rest, |c| c.is_alphabetic()) < 2 && LEGAL_FORM.is_match(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_of(text: &str) -> Option<String> {
        let lines: Vec<String> = text.lines().map(String::from).collect();
        find_store(&lines).map(|s| s.name)
    }

    #[test]
    fn the_store_name_skips_addresses_phone_numbers_and_tax_ids() {
        let text = "GST REG NO: 000123456789\n8610 GARFIELD AVE.\nTEL: (562) 928-8999\nGOLDEN BOWL TERIYAKI\n";
        assert_eq!(store_of(text).as_deref(), Some("GOLDEN BOWL TERIYAKI"));
    }

    #[test]
    fn the_first_name_like_header_line_is_the_store() {
        let text =
            "GOLDEN BOWL TERIYAKI\n8610 GARFIELD AVE.\nSOUTH GATE, CA. 90280\nTEL: (562) 928-8999";
        assert_eq!(store_of(text).as_deref(), Some("GOLDEN BOWL TERIYAKI"));
    }

    #[test]
    fn a_company_registration_number_is_not_part_of_the_name() {
        let text = "MR. D.I.Y. SDN BHD (704427-T)\nLOT 1851-A, JALAN KPB 6";
        assert_eq!(store_of(text).as_deref(), Some("MR. D.I.Y. SDN BHD"));
    }

    #[test]
    fn a_company_suffix_on_the_next_line_joins_the_name() {
        let text = "GARDENIA BAKERIES (KL)\nSDN BHD (139386-X)\nLot 3, Jalan Pelabur 23/1";
        assert_eq!(
            store_of(text).as_deref(),
            Some("GARDENIA BAKERIES (KL) SDN BHD")
        );
    }

    #[test]
    fn the_store_name_is_repaired_and_joined_across_lines() {
        let text = "PASARAYA BORONG PINTAR\nSDN BHD\nBR No.: (124525-H)";
        assert_eq!(
            store_of(text).as_deref(),
            Some("PASARAYA BORONG PINTAR SDN BHD")
        );
        let text = "HOME MASTER HARDWARE &\nELECTRICAL\n(CO. REG 123456-X)";
        assert_eq!(
            store_of(text).as_deref(),
            Some("HOME MASTER HARDWARE & ELECTRICAL")
        );
        assert_eq!(
            store_of("SUN VICTORY SON BHD").as_deref(),
            Some("SUN VICTORY SDN BHD")
        );
    }

    #[test]
    fn a_city_and_state_line_is_an_address_not_a_name() {
        assert_eq!(
            store_of("Rosemead ,CA\nHP Pho Ga").as_deref(),
            Some("HP Pho Ga")
        );
    }

    #[test]
    fn ocr_debris_at_the_ends_of_the_name_is_removed() {
        assert_eq!(
            store_of("at New Asia Buffet F").as_deref(),
            Some("New Asia Buffet")
        );
        assert_eq!(
            store_of("99 SPEED MART S/B (S").as_deref(),
            Some("99 SPEED MART S/B")
        );
        assert_eq!(store_of("RED & HOT II").as_deref(), Some("RED & HOT II"));
    }

    #[test]
    fn a_logo_fragment_printed_again_below_in_full_gives_the_full_name() {
        let text = "BISTRO\nlogo x\nHarbor Bistro\n12 Quay Street";
        assert_eq!(store_of(text).as_deref(), Some("Harbor Bistro"));
    }

    #[test]
    fn a_logo_fragment_above_the_name_in_full_does_not_start_the_name() {
        let text = "GRILLE\nHarbor Grille\n12 Quay Street";
        assert_eq!(store_of(text).as_deref(), Some("Harbor Grille"));
    }

    #[test]
    fn the_line_right_above_the_address_wins_a_near_tie_with_logo_text() {
        let text = "ZORBLAX QUINTET\nHarbor Bistro\n12 Quay Street\nTel (555) 010-4477";
        assert_eq!(store_of(text).as_deref(), Some("Harbor Bistro"));
        let text = "ZORBLAX QUINTET\nHarbor Bistro\nwelcome\n12 Quay Street";
        assert_eq!(store_of(text).as_deref(), Some("ZORBLAX QUINTET"));
    }

    #[test]
    fn a_one_word_name_continues_on_the_line_under_it() {
        assert_eq!(
            store_of("LUNA\nNOODLE HOUSE\n12 Quay Street").as_deref(),
            Some("LUNA NOODLE HOUSE")
        );
        assert_eq!(
            store_of("ZAP\nRestaurant #12\n12 Quay Street").as_deref(),
            Some("ZAP")
        );
    }

    #[test]
    fn an_acronym_name_and_a_name_with_single_letters_are_names() {
        assert_eq!(store_of("KFC\n12 Quay Street").as_deref(), Some("KFC"));
        let text = "A & BEST RESTAURANT\n(001234567-P)\nSELANGOR DARUL EHSAN";
        assert_eq!(store_of(text).as_deref(), Some("A & BEST RESTAURANT"));
    }

    #[test]
    fn a_short_name_above_a_line_of_business_words_starts_the_name() {
        assert_eq!(
            store_of("Mira\nFamily Restaurant\n12 Quay Street").as_deref(),
            Some("Mira Family Restaurant")
        );
    }

    #[test]
    fn a_business_word_and_branch_number_under_the_name_give_way_to_it() {
        assert_eq!(
            store_of("ZAPPY'S JR\nRestaurant 4412\n12 Quay Street").as_deref(),
            Some("ZAPPY'S JR")
        );
    }

    #[test]
    fn a_line_without_a_capital_letter_is_not_a_name() {
        assert_eq!(
            store_of("lunaxx\nHarbor\n12 Quay Street").as_deref(),
            Some("Harbor")
        );
    }

    #[test]
    fn a_bracketed_branch_number_does_not_make_the_name_a_phone_line() {
        let text =
            "HARBORVIEWS\nSEAFOOD KITCHEN\nHarborviews Seafood Kitchen (612)\n12 Quay Street";
        assert_eq!(
            store_of(text).as_deref(),
            Some("Harborviews Seafood Kitchen")
        );
    }

    #[test]
    fn a_store_number_after_the_name_is_part_of_it() {
        let text = "Panda Express #2614\nBrooklyn, NY\n(718)246-3898";
        assert_eq!(store_of(text).as_deref(), Some("Panda Express #2614"));
        let text = "CHURCH'S CHICKEN#4717\n7635 WINNETKA";
        assert_eq!(store_of(text).as_deref(), Some("CHURCH'S CHICKEN #4717"));
        // An order number is not a store number, nor is a line of one a name.
        let text = "Harbor Grill\nOrder #: 8262 Dine In";
        assert_eq!(store_of(text).as_deref(), Some("Harbor Grill"));
    }

    #[test]
    fn a_banner_between_decorations_is_neither_a_name_nor_part_of_one() {
        let text = "**PURCHASE**\nPanda Express\nBrooklyn, NY";
        assert_eq!(store_of(text).as_deref(), Some("Panda Express"));
        let text = "Harbor Grill\n10325 Hammocks Blvd\nServer: Kay\n>> SETTLED <<";
        assert_eq!(store_of(text).as_deref(), Some("Harbor Grill"));
        assert!(is_banner("-TO GO-") && !is_banner("| MOONSTAR -"));
    }

    #[test]
    fn a_company_name_over_three_lines_is_joined_up_to_its_closing_bracket() {
        let text =
            "TAN KEE HARDWARE\nENTERPRISE (BANDAR\nBARU) SDN BHD\n123456-X\nNO. 5, JALAN MAJU";
        assert_eq!(
            store_of(text).as_deref(),
            Some("TAN KEE HARDWARE ENTERPRISE (BANDAR BARU) SDN BHD")
        );
        // The opening bracket read as a letter.
        let text = "TAN KEE HARDWARE\nENTERPRISE IBANDAR\nBARU) SDN BHD\nNO. 5, JALAN MAJU";
        assert_eq!(
            store_of(text).as_deref(),
            Some("TAN KEE HARDWARE ENTERPRISE (BANDAR BARU) SDN BHD")
        );
        // Nor does a name take an address for the rest of its bracket, or
        // a line that only begins with a legal-form word.
        let text = "TAN KEE HARDWARE (BANDAR\nNO. 5, JALAN MAJU";
        assert_eq!(store_of(text).as_deref(), Some("TAN KEE HARDWARE (BANDAR"));
        let text = "TAN KEE HARDWARE\nTRADING HOURS: 9AM-5PM";
        assert_eq!(store_of(text).as_deref(), Some("TAN KEE HARDWARE"));
        // A closed bracket ends the name as before.
        let text = "TAN KEE HARDWARE (M) SDN BHD\nBANDAR BARU\nNO. 5, JALAN MAJU";
        assert_eq!(
            store_of(text).as_deref(),
            Some("TAN KEE HARDWARE (M) SDN BHD")
        );
    }

    #[test]
    fn a_bracket_is_put_back_only_where_one_is_closed_and_none_opened() {
        let fixed = |lines: &[&str]| with_misread_bracket(lines).join(" / ");
        assert_eq!(fixed(&["A ISETIA", "ALAM) B"]), "A (SETIA / ALAM) B");
        assert_eq!(fixed(&["ABC IM) SDN BHD"]), "ABC (M) SDN BHD");
        // Nothing closed, or a bracket read as one (or as `[`): unchanged.
        assert_eq!(fixed(&["ISLAND ILAMP"]), "ISLAND ILAMP");
        assert_eq!(fixed(&["A (SETIA", "ALAM) B"]), "A (SETIA / ALAM) B");
        assert_eq!(
            fixed(&["KEDAI IKAN TRADING [M) SDN BHD"]),
            "KEDAI IKAN TRADING [M) SDN BHD"
        );
        // Only the word ending the line above, not one further back; and
        // lower-case words are words.
        assert_eq!(
            fixed(&["KEDAI IKAN", "TRADING", "M) SDN BHD"]),
            "KEDAI IKAN / TRADING / M) SDN BHD"
        );
        assert_eq!(fixed(&["Island lamp ALAM) B"]), "Island lamp ALAM) B");
    }

    #[test]
    fn an_open_bracket_does_not_take_a_label_or_an_address_into_the_name() {
        let text = "99 SPEED MART S/B (S\nTEL: 03-12345678\nNO. 5, JALAN MAJU";
        assert_eq!(store_of(text).as_deref(), Some("99 SPEED MART S/B"));
        let text = "BURGER KING\nLIMITED TIME OFFER\n12 Quay Street";
        assert_eq!(store_of(text).as_deref(), Some("BURGER KING"));
    }

    #[test]
    fn a_name_spans_three_lines_at_most_and_is_found_from_its_last() {
        // The line closing the bracket chosen: the name begins above it.
        let text = "TAN KEE HARDWARE\nENTERPRISE ISETIA\nBARU) SDN BHD\nNO. 5, JALAN MAJU";
        let header: Vec<String> = text.lines().map(String::from).collect();
        assert_eq!(bracket_opened_above(&header, 2), 0);
        assert_eq!(
            store_of(text).as_deref(),
            Some("TAN KEE HARDWARE ENTERPRISE (SETIA BARU) SDN BHD")
        );
        let text = "TAN KEE HARDWARE (BANDAR\nBARU\nSELATAN\nUTARA) SDN BHD";
        assert_eq!(
            store_of(text).as_deref(),
            Some("TAN KEE HARDWARE (BANDAR BARU SELATAN")
        );
    }

    #[test]
    fn logo_noise_above_the_name_is_skipped() {
        let text = "a\n_~ |\nMoonstar Restaurant\n| (650) 992-2888";
        assert_eq!(store_of(text).as_deref(), Some("Moonstar Restaurant"));
    }
}
