//! Words a recogniser glued together or printed in full-width forms, split
//! and normalised before anything else reads the line: `4/24/20166:30:31PM`
//! is a date and a time, `（305)` a bracket. Learned recognisers drop the
//! spaces they are unsure of.

use std::sync::LazyLock;

use regex::{Captures, Regex};

// The patterns are literals exercised by the unit tests: they compile.
/// A date whose year runs into the hour of a time: `05/11/188:47`, also
/// after an order number glued before it (`Order772015/02/2110:45`).
static DATE_THEN_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|\D|\d{3})(\d{1,2} ?[/.-] ?\d{1,2} ?[/.-] ?)(\d{3,6})(:\d{2})")
        .expect("valid regex")
});
/// A time running into the date after it: `12:1111/18/17`, `1:56p06/02/15`.
static TIME_THEN_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\d:\d{2}[AP]?M?)(\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b)").expect("valid regex")
});
const MONTHS: &str = r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|[O0]CT|NOV|DEC";
/// `13-Jul-20188:53`, `16Feb1921:31`: day, month, then a year glued to a time.
static DAY_MONTH_THEN_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b(\d{{1,2}})[ -]?((?:{MONTHS})[A-Z]*\.?)[ -]?'?(\d{{4}}|\d{{2}})(\d{{1,2}}:\d{{2}})"
    ))
    .expect("valid regex")
});
/// `Jun221807:59`, `Jan21'1708:56`: month, day, then a year glued to a time.
static MONTH_DAY_THEN_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b((?:{MONTHS})[A-Z]*\.?) ?(\d{{1,2}}) ?[',’]? ?(\d{{4}}|\d{{2}})(\d{{1,2}}:\d{{2}})"
    ))
    .expect("valid regex")
});
/// A date that lost its second separator, before a time: `02/2219 20:31`
/// is `02/22/19 20:31`. Not after another separator, which would make it
/// the end of a whole date (`05/18/2019 11:19`).
static LOST_SEPARATOR_THEN_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[^\d/.-])(\d{1,2})([/-])([0-3]\d)(\d{2})(\s+\d{1,2}:\d{2})")
        .expect("valid regex")
});
/// An ISO date running into a time: `2018-11-1818:58`.
static ISO_THEN_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\b(?:19|20)\d{2}[/.-]\d{1,2}[/.-]\d{2})(\d{1,2}[:.]\d{2}\b)")
        .expect("valid regex")
});

/// The line with full-width forms made ASCII and glued words split.
pub fn unglue(line: &str) -> String {
    let line = ascii_forms(line);
    let line = DATE_THEN_TIME.replace_all(&line, split_year_from_hour);
    let line = ISO_THEN_TIME.replace_all(&line, "$1 $2");
    let line = TIME_THEN_DATE.replace_all(&line, "$1 $2");
    let line = LOST_SEPARATOR_THEN_TIME.replace_all(&line, "$1$2$3$4$3$5$6");
    let line = DAY_MONTH_THEN_TIME.replace_all(&line, "$1 $2 $3 $4");
    let line = MONTH_DAY_THEN_TIME.replace_all(&line, |c: &Captures| {
        format!("{} {} {} {}", month_name(&c[1]), &c[2], &c[3], &c[4])
    });
    line.into_owned()
}

/// `188` before `:47` is the year `18` and the hour `8`; `20166` is `2016`
/// and `6`. A year of four digits starts with 19 or 20.
fn split_year_from_hour(caps: &Captures) -> String {
    let digits = &caps[3];
    let four_digit_year =
        digits.len() >= 5 && (digits.starts_with("19") || digits.starts_with("20"));
    let (year, hour) = digits.split_at(if four_digit_year { 4 } else { 2 });
    format!("{}{}{year} {hour}{}", &caps[1], &caps[2], &caps[4])
}

/// `0ct` is `Oct`: OCR reads the round O of a month as a zero.
fn month_name(printed: &str) -> String {
    match printed.strip_prefix('0') {
        Some(rest) => format!("O{rest}"),
        None => printed.to_string(),
    }
}

/// Full-width letters, digits and marks (`（`, `：`, `＄`) as their ASCII
/// forms, and the ideographic space as a space.
fn ascii_forms(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_glued_to_the_hour_is_split_from_it() {
        assert_eq!(unglue("3/15/20227:05:12PM"), "3/15/2022 7:05:12PM");
        assert_eq!(unglue("07/09/2310:41AM"), "07/09/23 10:41AM");
        assert_eq!(unglue("REG 06-22-202112:30PM"), "REG 06-22-2021 12:30PM");
        assert_eq!(unglue("2021-06-2209:15"), "2021-06-22 09:15");
        assert_eq!(unglue("Date06-22-202112:30"), "Date06-22-2021 12:30");
        assert_eq!(unglue("Ord772015/02/2110:45"), "Ord772015/02/21 10:45");
    }

    #[test]
    fn a_named_month_date_glued_to_its_time_is_split() {
        assert_eq!(unglue("09-Mar-20217:15:02P"), "09 Mar 2021 7:15:02P");
        assert_eq!(unglue("04Sep2210:05"), "04 Sep 22 10:05");
        assert_eq!(unglue("Mar091611:45PM"), "Mar 09 16 11:45PM");
        assert_eq!(unglue("Sep04'2209:30PM"), "Sep 04 22 09:30PM");
        assert_eq!(unglue("0ct091602:10PM"), "Oct 09 16 02:10PM");
    }

    #[test]
    fn a_time_glued_before_a_date_is_split_from_it() {
        assert_eq!(unglue("Svr 3:1504/02/21"), "Svr 3:15 04/02/21");
        assert_eq!(unglue("7:05p11/30/20"), "7:05p 11/30/20");
    }

    #[test]
    fn a_date_that_lost_its_second_separator_before_a_time_gets_it_back() {
        assert_eq!(unglue("11/0721 18:40:02"), "11/07/21 18:40:02");
        assert_eq!(unglue("Chk 4 03-1422 9:05"), "Chk 4 03-14-22 9:05");
        assert_eq!(unglue("11/07/2021 18:40"), "11/07/2021 18:40");
        assert_eq!(unglue("Table 11/0721"), "Table 11/0721");
    }

    #[test]
    fn full_width_marks_become_ascii() {
        assert_eq!(unglue("TEL（212）555-0100"), "TEL(212)555-0100");
        assert_eq!(unglue("TOTAL：＄9.50"), "TOTAL:$9.50");
    }

    #[test]
    fn ordinary_dates_and_amounts_are_left_alone() {
        assert_eq!(unglue("Date 03/15/2022 19:05"), "Date 03/15/2022 19:05");
        assert_eq!(unglue("TOTAL 12.50"), "TOTAL 12.50");
    }
}
