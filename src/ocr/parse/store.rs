//! The store name: the most name-like line of the receipt's header, which
//! also holds the address, phone numbers, tax ids and greetings to skip.

use std::sync::LazyLock;

use regex::Regex;

/// The header is this many lines; a name further down is rarely the store's.
const HEADER_LINES: usize = 8;

// The patterns are literals exercised by the unit tests: they compile.
static NOT_A_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(TEL|PHONE|PH|FAX|HP|GST|SST|VAT|TAX|ABN|ROC|CO\.? ?REG|CO\.? ?NO|REG\.? ?NO|",
        r"COMPANY NO|BUSINESS NO|INVOICE|RECEIPT|WELCOME|THANK|ORDER|TABLE|SERVER|CASHIER|",
        r"GUEST|CHECK|DATE|TIME|STREET|ST\.|AVE|AVENUE|ROAD|RD\.?|BLVD|DRIVE|DR\.|HWY|SUITE|",
        r"JALAN|JLN|TAMAN|LOT|NO\.|BATU|SELANGOR|KUALA|JOHOR|WWW|HTTP|\.COM|EMAIL)\b|@|[:#]",
    ))
    .expect("valid regex")
});
static ZIP_OR_PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{5}\b|\(\d{3}\)|\d{3}[-. ]\d{3,4}[-. ]?\d{0,4}|\b[A-Z]{2} \d{5}")
        .expect("valid regex")
});
static COMPANY_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(SDN\.? ?BHD|BHD|LLC|INC|LTD|LIMITED|GMBH|CO\.|CORP|ENTERPRISE|TRADING|",
        r"RESTAURANT|CAFE|COFFEE|BAKERY|BAKERIES|MART|MARKET|STORE|SHOP|KITCHEN|GRILL|BAR|",
        r"PIZZA|DELI|PHARMACY|HARDWARE|STATIONERY|SUPERMARKET|HOTEL|TAVERN|DINER)\b",
    ))
    .expect("valid regex")
});
/// A company registration number printed after the name: `(704427-T)`.
static TRAILING_REG_NO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\s*[(\[]?\s*(CO\.?\s*(REG|NO)\.?\s*:?)?\s*\d{4,}-?[A-Z]?\s*[)\]]?\s*$")
        .expect("valid regex")
});

/// The store name and how sure we are of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundStore {
    pub name: String,
    pub confidence: f32,
}

/// The best store-name candidate among the header lines.
pub fn find_store(lines: &[String]) -> Option<FoundStore> {
    let header: Vec<&str> = lines
        .iter()
        .take(HEADER_LINES)
        .map(|l| l.as_str())
        .collect();
    let (index, score) = header
        .iter()
        .enumerate()
        .filter_map(|(i, line)| name_score(line, i).map(|s| (i, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let mut name = clean_name(header[index]);
    if let Some(next) = header.get(index + 1).filter(|l| is_company_suffix_line(l)) {
        name = format!("{name} {}", clean_name(next));
    }
    (name.len() >= 2).then(|| FoundStore {
        name,
        confidence: score.clamp(0.0, 1.0),
    })
}

/// How name-like a header line is (None when it is clearly something else).
/// Names are mostly letters, sit near the top, and often carry a company
/// word (`SDN BHD`, `Restaurant`).
fn name_score(line: &str, index: usize) -> Option<f32> {
    let line = clean_name(line);
    let line = line.as_str();
    let letters = line.chars().filter(|c| c.is_alphabetic()).count();
    let digits = line.chars().filter(|c| c.is_ascii_digit()).count();
    let others = line
        .chars()
        .filter(|c| !c.is_alphanumeric() && *c != ' ')
        .count();
    let is_company = COMPANY_WORD.is_match(line);
    if letters < 3 || (!is_company && (NOT_A_NAME.is_match(line) || ZIP_OR_PHONE.is_match(line))) {
        return None;
    }
    let clean_share = letters as f32 / (letters + digits + others) as f32;
    if clean_share < 0.6 || !has_a_real_word(line) {
        return None;
    }
    let mut score = 0.35 + 0.3 * clean_share - 0.05 * index as f32;
    if is_company {
        score += 0.3;
    }
    if letters >= 5 && line.chars().filter(|c| c.is_uppercase()).count() * 10 >= letters * 7 {
        score += 0.05;
    }
    Some(score)
}

/// OCR of a logo or texture gives letter soup (`el lert Ya a`); a name has
/// at least one word of three letters or more.
fn has_a_real_word(line: &str) -> bool {
    line.split_whitespace()
        .any(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 3)
}

fn is_company_suffix_line(line: &str) -> bool {
    let upper = line.trim().to_ascii_uppercase();
    let upper = TRAILING_REG_NO.replace(&upper, "");
    matches!(
        upper.trim_matches(|c: char| !c.is_alphanumeric()),
        "SDN BHD" | "SDN. BHD" | "BHD"
    )
}

/// The name without a registration number or the stray marks OCR puts at
/// the edges of a line (`| MOONSTAR —`).
fn clean_name(line: &str) -> String {
    let without_reg = TRAILING_REG_NO.replace(line, "");
    let trimmed = without_reg
        .trim_matches(|c: char| !c.is_alphanumeric() && !matches!(c, '(' | ')' | '.' | '&' | '\''));
    trimmed.split_whitespace().collect::<Vec<_>>().join(" ")
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
    fn logo_noise_above_the_name_is_skipped() {
        let text = "a\n_~ |\nMoonstar Restaurant\n| (650) 992-2888";
        assert_eq!(store_of(text).as_deref(), Some("Moonstar Restaurant"));
    }
}
