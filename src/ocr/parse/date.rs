//! The purchase date: every date-shaped run of text, read in the order
//! (day or month first) the receipt's own dates or its locale show.

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;

// The patterns are literals exercised by the unit tests: they compile.
static NUMERIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\d{1,4}) ?([/.-]) ?(\d{1,2}) ?([/.-]) ?(\d{2,4})\b").expect("valid regex")
});
static MONTH_NAMED: LazyLock<Regex> = LazyLock::new(|| {
    let month = r"(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|[O0]CT|NOV|DEC)[A-Z]*\.?";
    Regex::new(&format!(
        r"(?i)\b(?:(\d{{1,2}})(?:ST|ND|RD|TH)?[ -]?{month}[ ,.'’‘′´`-]*(\d{{2,4}})|{month} ?(\d{{1,2}})(?:ST|ND|RD|TH)?[ ,.'’‘′´`]*(\d{{2,4}}))\b"
    ))
    .expect("valid regex")
});
static DATE_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(DATE|DATED|TARIKH)\b").expect("valid regex"));

/// Which part of `05/11/18` is the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    DayFirst,
    MonthFirst,
}

/// A date found on the receipt and how sure we are of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoundDate {
    pub date: NaiveDate,
    /// Position of its line in the lines given to [`find_date`].
    pub line: usize,
    pub confidence: f32,
}

/// The purchase date: the first date on a line labelled as one, else the
/// first date anywhere. `order_hint` breaks ties that the text cannot.
pub fn find_date(lines: &[String], order_hint: Option<DateOrder>) -> Option<FoundDate> {
    let order = order_from_text(lines).or(order_hint);
    let mut found = Vec::new();
    for (position, line) in lines.iter().enumerate() {
        found.extend(
            dates_in_line(line, order)
                .into_iter()
                .map(|d| (position, d)),
        );
    }
    let labelled = found.iter().find(|(p, _)| DATE_LABEL.is_match(&lines[*p]));
    let (position, (date, sure)) = labelled.or(found.first())?;
    let mut confidence = if *sure { 0.85 } else { 0.6 };
    if DATE_LABEL.is_match(&lines[*position]) {
        confidence += 0.1;
    }
    Some(FoundDate {
        date: *date,
        line: *position,
        confidence,
    })
}

/// Dates on one line, each with whether its reading was unambiguous.
fn dates_in_line(line: &str, order: Option<DateOrder>) -> Vec<(NaiveDate, bool)> {
    let line = &o_beside_digits_as_zero(line);
    let mut dates = Vec::new();
    for caps in numeric_candidates(line) {
        let parts = [&caps[1], &caps[3], &caps[5]];
        dates.extend(numeric_date(parts, order));
    }
    for caps in MONTH_NAMED.captures_iter(line) {
        let month = caps.get(2).or(caps.get(4)).map_or("", |m| m.as_str());
        let day = caps.get(1).or(caps.get(5)).map_or("", |m| m.as_str());
        let year = caps.get(3).or(caps.get(6)).map_or("", |m| m.as_str());
        if let Some(date) = ymd(year, month_number(month), day) {
            dates.push((date, true));
        }
    }
    dates
}

/// `O4-04-2018`: an O touching a digit is a zero.
fn o_beside_digits_as_zero(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let digit_at = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(char::is_ascii_digit)
    };
    (0..chars.len())
        .map(|i| match chars[i] {
            'O' | 'o' if digit_at(i.checked_sub(1)) || digit_at(Some(i + 1)) => '0',
            c => c,
        })
        .collect()
}

/// Numeric date shapes starting at every number of the line, overlapping:
/// in `#19- 18/03/2018` the shape `19- 18/03` must not hide the date. A
/// number glued to letters before it still starts one (`le30/03/2018`),
/// and so do the last two digits of a long number glued to a separator
/// (`Order986206/08/19`: an order number, then the date). Both separators
/// must be the same: `10- 8/64` is a product code, not a date.
fn numeric_candidates(line: &str) -> impl Iterator<Item = regex::Captures<'_>> {
    let bytes = line.as_bytes();
    let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let run_before = move |i: usize| (0..i).rev().take_while(|&j| digit_at(j)).count();
    let starts = line.char_indices().filter(move |&(i, c)| {
        let glued_tail = run_before(i) >= 3
            && digit_at(i + 1)
            && matches!(bytes.get(i + 2), Some(b'/' | b'.' | b'-'));
        c.is_ascii_digit() && (!line[..i].ends_with(|p: char| p.is_ascii_digit()) || glued_tail)
    });
    starts.filter_map(|(i, _)| {
        NUMERIC
            .captures_at(line, i)
            .filter(|c| c.get(0).is_some_and(|m| m.start() == i))
            .filter(|c| c[2] == c[4])
    })
}

fn numeric_date([a, b, c]: [&str; 3], order: Option<DateOrder>) -> Option<(NaiveDate, bool)> {
    if a.len() == 4 {
        return ymd(a, b.parse().ok()?, c).map(|d| (d, true));
    }
    if a.len() > 2 {
        return None;
    }
    let day_first = ymd(c, b.parse().ok()?, a);
    let month_first = ymd(c, a.parse().ok()?, b);
    match (day_first, month_first) {
        (Some(d), Some(m)) if d == m => Some((d, true)),
        (Some(d), Some(m)) => match order {
            Some(DateOrder::MonthFirst) => Some((m, false)),
            _ => Some((d, false)),
        },
        (Some(d), None) => Some((d, true)),
        (None, Some(m)) => Some((m, true)),
        (None, None) => None,
    }
}

/// Which way round `05/11/18` is read when the text does not say: US
/// dollars or a US phone number or ZIP code put the month first; other
/// currencies and Malaysian company forms put the day first.
pub fn order_hint(currency: Option<&str>, lines: &[String]) -> Option<DateOrder> {
    static NORTH_AMERICAN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"\(\d{3}\) ?\d{3}[-. ]\d{4}|\b\d{3}[-.]\d{3}[-.]\d{4}\b|\b[A-Z]{2},? \d{5}(-\d{4})?\b",
        )
        .expect("valid regex")
    });
    let any = |pattern: &Regex| lines.iter().any(|l| pattern.is_match(l));
    match currency {
        Some("USD") => Some(DateOrder::MonthFirst),
        Some(_) => Some(DateOrder::DayFirst),
        None if any(&NORTH_AMERICAN) => Some(DateOrder::MonthFirst),
        None if lines
            .iter()
            .any(|l| l.contains("SDN BHD") || l.contains("GST")) =>
        {
            Some(DateOrder::DayFirst)
        }
        None => None,
    }
}

/// A date with a day above 12 anywhere on the receipt settles the order
/// for all its dates.
fn order_from_text(lines: &[String]) -> Option<DateOrder> {
    lines
        .iter()
        .flat_map(|l| numeric_candidates(l))
        .find_map(|caps| {
            let (a, b): (u32, u32) = (caps[1].parse().ok()?, caps[3].parse().ok()?);
            match (a, b) {
                (13..=31, 1..=12) if caps[1].len() <= 2 => Some(DateOrder::DayFirst),
                (1..=12, 13..=31) => Some(DateOrder::MonthFirst),
                _ => None,
            }
        })
}

fn month_number(name: &str) -> u32 {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    // `0CT`: OCR reads the round O of `OCT` as a zero.
    let upper = name.to_ascii_uppercase().replacen('0', "O", 1);
    MONTHS
        .iter()
        .position(|m| upper.starts_with(m))
        .map_or(0, |i| i as u32 + 1)
}

/// A plausible purchase date (years 1990–2069; two-digit years are 20xx).
/// A four-digit year OCR got wrong in its first digits (`2617`, `7017`)
/// is read as 20xx from its last two.
fn ymd(year: &str, month: u32, day: &str) -> Option<NaiveDate> {
    let year: i32 = year.parse().ok()?;
    let year = match year {
        0..=69 => 2000 + year,
        1990..=2069 => year,
        1000..=9999 if year % 100 <= 69 => 2000 + year % 100,
        _ => return None,
    };
    NaiveDate::from_ymd_opt(year, month, day.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    fn date_of(text: &str, hint: Option<DateOrder>) -> Option<NaiveDate> {
        find_date(&lines(text), hint).map(|f| f.date)
    }

    fn ymd_date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn dates_in_the_usual_formats_are_read() {
        assert_eq!(date_of("05-18-2019 11:19 AM", None), ymd_date(2019, 5, 18));
        assert_eq!(date_of("Date: 19/10/2018", None), ymd_date(2018, 10, 19));
        assert_eq!(date_of("2013-11-06 18:02", None), ymd_date(2013, 11, 6));
        assert_eq!(date_of("04 JUN 2018", None), ymd_date(2018, 6, 4));
        assert_eq!(date_of("Apr 01, 2019 7:45PM", None), ymd_date(2019, 4, 1));
        assert_eq!(date_of("Jun28'17 12:01", None), ymd_date(2017, 6, 28));
        assert_eq!(date_of("13-Jul-2018", None), ymd_date(2018, 7, 13));
        assert_eq!(date_of("24.11.17", None), ymd_date(2017, 11, 24));
        assert_eq!(
            date_of("Date: jul15’17 04:07PM", None),
            ymd_date(2017, 7, 15)
        );
    }

    #[test]
    fn a_month_read_with_a_zero_or_a_prime_before_the_year_is_read() {
        assert_eq!(date_of("0ct03′21 11:05AM", None), ymd_date(2021, 10, 3));
        assert_eq!(date_of("Mar 7‘22", None), ymd_date(2022, 3, 7));
    }

    #[test]
    fn ocr_damage_in_dates_is_repaired() {
        assert_eq!(
            date_of("Date: O4-04-2018 14:26", None),
            ymd_date(2018, 4, 4)
        );
        assert_eq!(date_of("Date: 28/08/7017", None), ymd_date(2017, 8, 28));
    }

    #[test]
    fn an_ambiguous_date_follows_the_receipts_locale() {
        assert_eq!(
            date_of("05/11/18", Some(DateOrder::MonthFirst)),
            ymd_date(2018, 5, 11)
        );
        assert_eq!(
            date_of("05/11/18", Some(DateOrder::DayFirst)),
            ymd_date(2018, 11, 5)
        );
    }

    #[test]
    fn another_date_with_a_day_above_twelve_settles_the_order() {
        let text = "Printed 05/11/18\nValid until 25/11/18";
        assert_eq!(
            date_of(text, Some(DateOrder::MonthFirst)),
            ymd_date(2018, 11, 5)
        );
    }

    #[test]
    fn a_labelled_date_wins_over_other_dates() {
        let text = "Member since 01/02/2010\nDate: 03/15/2019";
        assert_eq!(date_of(text, None), ymd_date(2019, 3, 15));
    }

    #[test]
    fn a_date_right_after_other_numbers_is_still_found() {
        assert_eq!(
            date_of("ORD #70 -REG #19- 18/03/2018 23:02:16", None),
            ymd_date(2018, 3, 18)
        );
    }

    #[test]
    fn a_date_glued_to_the_letters_or_the_number_before_it_is_found() {
        assert_eq!(date_of("au15/02/2021 a 10:02", None), ymd_date(2021, 2, 15));
        assert_eq!(date_of("Ticket772015/02/21", None), ymd_date(2021, 2, 15));
    }

    #[test]
    fn numbers_joined_by_two_different_separators_are_not_a_date() {
        let text = "CLIP SET AB12- 7/48\n03-05-19 10:15";
        assert_eq!(
            date_of(text, Some(DateOrder::DayFirst)),
            ymd_date(2019, 5, 3)
        );
    }

    #[test]
    fn times_and_phone_numbers_are_not_dates() {
        assert_eq!(date_of("TEL 03-7845 2233\n11:19 AM", None), None);
    }
}
