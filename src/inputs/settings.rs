//! Upload settings of this module: how many files one request may carry
//! (`MAX_BATCH_FILES`), the duplicate window (`DEDUP_WINDOW`) and how many
//! PDFs are checked at once (`MAX_PDF_CHECKS`).

use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct InputSettings {
    /// Most `file` fields one upload request may carry (each is its own job).
    #[arg(
        long = "max-batch-files",
        env = "MAX_BATCH_FILES",
        value_name = "MAX_BATCH_FILES",
        default_value = "20",
        value_parser = at_least_one::<usize>
    )]
    pub max_batch_files: usize,
    /// An upload of the same bytes as one accepted within this window gets
    /// that upload's job back: seconds, or with a unit (`90s`, `10m`,
    /// `2h`); `0` (the default) turns it off.
    #[arg(
        long = "dedup-window",
        env = "DEDUP_WINDOW",
        value_name = "DEDUP_WINDOW",
        default_value = "0",
        value_parser = window
    )]
    pub dedup_window: Duration,
    /// PDF uploads checked with `pdfinfo` at once in this process; more
    /// wait up to 10 s for a turn, then get 503 `server_busy`.
    #[arg(
        long = "max-pdf-checks",
        env = "MAX_PDF_CHECKS",
        value_name = "MAX_PDF_CHECKS",
        default_value = "4",
        value_parser = at_least_one::<usize>
    )]
    pub max_pdf_checks: usize,
    /// Fault injection for tests: each PDF check holds its turn this long
    /// (ms) first, as a PDF that takes `pdfinfo` long would.
    #[cfg(feature = "fault-injection")]
    #[arg(
        long = "inject-pdf-check-hold-ms",
        env = "INJECT_PDF_CHECK_HOLD_MS",
        value_name = "INJECT_PDF_CHECK_HOLD_MS",
        default_value_t = 0,
        hide = true
    )]
    pub inject_pdf_check_hold_ms: u64,
}

impl Default for InputSettings {
    fn default() -> Self {
        Self {
            max_batch_files: 20,
            dedup_window: Duration::ZERO,
            max_pdf_checks: 4,
            #[cfg(feature = "fault-injection")]
            inject_pdf_check_hold_ms: 0,
        }
    }
}

pub use crate::ocr::settings::at_least_one;

/// `600`, `600s`, `10m` or `1h` as a duration.
fn window(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{raw}` is not a number of seconds or a duration such as 10m"))?;
    let seconds = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        other => return Err(format!("unknown unit `{other}`: use s, m or h")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_seconds_or_a_number_with_a_unit() {
        assert_eq!(window("0"), Ok(Duration::ZERO));
        assert_eq!(window("90"), Ok(Duration::from_secs(90)));
        assert_eq!(window("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(window("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(window("2h"), Ok(Duration::from_secs(7200)));
        assert!(window("ten").is_err());
        assert!(window("5d").is_err());
    }
}
