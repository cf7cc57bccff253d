//! The store's address and phone number from the header, and the time of
//! purchase printed beside the date.

use std::sync::LazyLock;

use chrono::NaiveTime;
use regex::Regex;

use super::{Found, Line};

/// Lines at the top that may hold the address and phone number.
const HEADER_LINES: usize = 12;

// The patterns are literals exercised by the unit tests: they compile.
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([01]?\d|2[0-3])(?::([0-5]\d)(?::([0-5]\d))?\s*([AP])?\.?M?\b|\.([0-5]\d)\s*([AP])\.?M\b)")
        .expect("valid regex")
});
static PHONE_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(TEL|PHONE|PH|TELEPHONE|T)\b\.?\s*(NO)?").expect("valid regex")
});
/// `(212) 555-0100`, `212-555-0100`, `212.555.0100`, `03-7845 2233`,
/// `+60 3-1234 5678`.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+\d{1,3}[ -]?)?(?:\(\d{2,4}\) ?|\b\d{2,4}[-. ])\d{3,4}[-. ]?\d{3,4}\b")
        .expect("valid regex")
});
pub(super) static ADDRESS_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(STREET|ST|AVE|AVENUE|ROAD|RD|BLVD|BOULEVARD|DRIVE|DR|HWY|HIGHWAY|SUITE|STE|",
        r"PARKWAY|PKWY|LANE|LN|PLAZA|JALAN|JLN|TAMAN|LOT|NO|BATU|PERSIARAN|LORONG|BANDAR|",
        r"KAMPUNG|SELANGOR|KUALA LUMPUR|JOHOR|PERAK|PENANG|MELAKA|MALAYSIA|FLOOR|BLOCK|BLK)\b",
        r"|\b\d{5}\b|^\W*\d{1,5}[A-Z]?\s+[A-Za-z]",
    ))
    .expect("valid regex")
});
static NOT_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(TEL|PHONE|FAX|GST|SST|VAT|TAX|INVOICE|RECEIPT|DATE|TIME|TABLE|ORDER|CHECK|SERVER|CASHIER|WWW|HTTP)\b|@|:")
        .expect("valid regex")
});

/// The time on the date's line, else the first time on the receipt.
pub fn find_time(lines: &[Line], date_line: Option<usize>) -> Option<Found<NaiveTime>> {
    let on_date_line = lines
        .iter()
        .filter(|l| Some(l.index) == date_line)
        .find_map(|l| time_in(&l.text).map(|t| (t, l.index, 0.85)));
    let anywhere = || {
        lines
            .iter()
            .find_map(|l| time_in(&l.text).map(|t| (t, l.index, 0.6)))
    };
    let (value, line, confidence) = on_date_line.or_else(anywhere)?;
    Some(Found {
        value,
        line,
        confidence,
    })
}

/// `8:47PM`, `20:47:05`, `8.47 PM`; a 12-hour time with its AM/PM.
fn time_in(text: &str) -> Option<NaiveTime> {
    let caps = TIME.captures(text)?;
    let hour: u32 = caps[1].parse().ok()?;
    let minute: u32 = caps.get(2).or(caps.get(5))?.as_str().parse().ok()?;
    let second: u32 = caps.get(3).map_or(Some(0), |s| s.as_str().parse().ok())?;
    let half = caps
        .get(4)
        .or(caps.get(6))
        .map(|m| m.as_str().to_ascii_uppercase());
    let hour = match half.as_deref() {
        Some("P") if hour < 12 => hour + 12,
        Some("A") if hour == 12 => 0,
        _ => hour,
    };
    NaiveTime::from_hms_opt(hour, minute, second)
}

/// A phone number on a line labelled `TEL`/`PHONE`, else one in the header.
pub fn find_phone(lines: &[Line]) -> Option<Found<String>> {
    let labelled = lines
        .iter()
        .filter(|l| PHONE_LABEL.is_match(&l.text))
        .find_map(|l| phone_in(&l.text).map(|p| (p, l.index, 0.85)));
    let in_header = || {
        lines
            .iter()
            .take(HEADER_LINES)
            .find_map(|l| phone_in(&l.text).map(|p| (p, l.index, 0.6)))
    };
    let (value, line, confidence) = labelled.or_else(in_header)?;
    Some(Found {
        value,
        line,
        confidence,
    })
}

/// A phone number has 7 to 13 digits; fewer is a date or a code.
fn phone_in(text: &str) -> Option<String> {
    PHONE
        .find_iter(text)
        .map(|m| m.as_str().trim())
        .find_map(|p| {
            let digits = p.chars().filter(char::is_ascii_digit).count();
            (7..=13).contains(&digits).then(|| p.to_string())
        })
}

/// The address: the run of address-like lines in the header, starting
/// after the store name (`store_line`, a [`Line::index`]) when known.
pub fn find_address(lines: &[Line], store_line: Option<usize>) -> Option<Found<String>> {
    let header = &lines[..lines.len().min(HEADER_LINES)];
    let after_store = header
        .iter()
        .position(|l| Some(l.index) == store_line)
        .map_or(0, |p| p + 1);
    let start = after_store
        + header[after_store..]
            .iter()
            .position(|l| is_address_line(&l))?;
    let run: Vec<&Line> = header[start..]
        .iter()
        .take_while(is_address_line)
        .take(3)
        .collect();
    let value = run
        .iter()
        .map(|l| l.text.trim())
        .collect::<Vec<_>>()
        .join(", ");
    Some(Found {
        value,
        line: run[0].index,
        confidence: if run.len() >= 2 { 0.7 } else { 0.5 },
    })
}

fn is_address_line(line: &&Line) -> bool {
    let text = &line.text;
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    ADDRESS_WORD.is_match(text)
        && !NOT_ADDRESS.is_match(text)
        && phone_in(text).is_none()
        && line.amount.is_none()
        && letters >= 3
}

#[cfg(test)]
mod tests {
    use super::super::parse_receipt;
    use chrono::NaiveTime;

    #[test]
    fn the_time_beside_the_date_is_read_in_twelve_or_twenty_four_hours() {
        let r = parse_receipt("SHOP\nOrder 12:05\n03/15/2022 7:05 PM\nTOTAL 1.00");
        assert_eq!(r.time, NaiveTime::from_hms_opt(19, 5, 0));
        assert_eq!(r.lines.time, Some(2));
        let r = parse_receipt("SHOP\n15-03-2022 21:40:09\nTOTAL 1.00");
        assert_eq!(r.time, NaiveTime::from_hms_opt(21, 40, 9));
    }

    #[test]
    fn an_amount_is_not_a_time() {
        assert_eq!(parse_receipt("SHOP\nTea 12.50\nTOTAL 12.50").time, None);
    }

    #[test]
    fn the_phone_number_is_read_from_its_labelled_line() {
        let r = parse_receipt("CORNER CAFE\n\n41 Elm Street\nTel: (555) 010-4477\nTOTAL 2.00");
        assert_eq!(r.phone.as_deref(), Some("(555) 010-4477"));
        assert_eq!(r.lines.phone, Some(3));
    }

    #[test]
    fn a_phone_number_without_a_label_is_found_in_the_header() {
        let r = parse_receipt("CORNER CAFE\n555-010-4477\n01/02/2023\nTOTAL 2.00");
        assert_eq!(r.phone.as_deref(), Some("555-010-4477"));
    }

    #[test]
    fn the_address_is_the_run_of_street_and_city_lines_under_the_name() {
        let text =
            "CORNER CAFE\n\n41 Elm Street\nSpringfield, IL 62704\nTel 555-010-4477\nTOTAL 2.00";
        let r = parse_receipt(text);
        assert_eq!(
            r.address.as_deref(),
            Some("41 Elm Street, Springfield, IL 62704")
        );
        assert_eq!(r.lines.address, Some(2));
    }
}
