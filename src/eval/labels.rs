//! Labelled receipts on disk: finding every image that has a sibling `.json`
//! label, and reading the label into typed values the scorer compares.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use serde::Deserialize;

/// What `eval` reads: every format an upload may be (PDFs and HEIC/AVIF
/// photos go through `crate::inputs`, as in a worker).
const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp", "gif", "pdf", "heic", "heif", "avif",
];

/// One image and what a person (or a reviewed model) read on it.
#[derive(Debug, Clone)]
pub struct LabelledReceipt {
    pub image: PathBuf,
    pub label: Label,
}

/// The label fields we score; `None` means "not labelled, do not score".
#[derive(Debug, Clone, Default)]
pub struct Label {
    pub store_name: Option<String>,
    pub total_amount: Option<BigDecimal>,
    /// Every date the label's string can mean: `05/11/18` is May 11 or
    /// 5 November, and the string alone does not say which.
    pub dates: Option<Vec<NaiveDate>>,
    pub items: Option<Vec<LabelItem>>,
    pub subtotal: Option<BigDecimal>,
    pub tax: Option<BigDecimal>,
}

/// A labelled line item; `line_total` is the label's `price`.
#[derive(Debug, Clone)]
pub struct LabelItem {
    pub name: String,
    pub line_total: BigDecimal,
}

/// The JSON as written in the label files (camelCase, numbers as floats).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLabel {
    store_name: Option<String>,
    total_amount: Option<serde_json::Number>,
    date: Option<String>,
    items: Option<Vec<RawItem>>,
    subtotal: Option<serde_json::Number>,
    tax: Option<serde_json::Number>,
}

#[derive(Deserialize)]
struct RawItem {
    name: Option<String>,
    price: Option<serde_json::Number>,
}

/// Every labelled image under `dir`, searched recursively, in path order so
/// runs are comparable.
pub fn find_labelled_receipts(dir: &Path) -> anyhow::Result<Vec<LabelledReceipt>> {
    let mut images = Vec::new();
    collect_images(dir, &mut images)?;
    images.sort();
    let mut receipts = Vec::new();
    for image in images {
        let label_path = image.with_extension("json");
        if label_path.is_file() {
            let label = read_label(&label_path)?;
            receipts.push(LabelledReceipt { image, label });
        }
    }
    Ok(receipts)
}

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            collect_images(&path, out)?;
        } else if is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn read_label(path: &Path) -> anyhow::Result<Label> {
    let json =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let raw: RawLabel =
        serde_json::from_str(&json).with_context(|| format!("parsing label {}", path.display()))?;
    Ok(Label {
        store_name: raw.store_name.filter(|s| !s.trim().is_empty()),
        total_amount: raw.total_amount.as_ref().and_then(number_to_decimal),
        dates: raw
            .date
            .as_deref()
            .map(label_dates)
            .filter(|d| !d.is_empty()),
        items: raw
            .items
            .map(|items| items.into_iter().filter_map(label_item).collect()),
        subtotal: raw.subtotal.as_ref().and_then(number_to_decimal),
        tax: raw.tax.as_ref().and_then(number_to_decimal),
    })
}

/// One of two fixed halves of a labelled set, so that parser rules can be
/// tuned on one and checked on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    A,
    B,
}

impl Half {
    /// `a` or `b`, as `RECEIPT_OCR_EVAL_HALF` takes it.
    pub fn parse(name: &str) -> Option<Half> {
        match name.trim().to_ascii_lowercase().as_str() {
            "a" => Some(Half::A),
            "b" => Some(Half::B),
            _ => None,
        }
    }
}

/// The half a receipt belongs to: the first byte of the SHA-256 of its
/// file stem, even for A and odd for B. A hash of the name, not of the
/// content or the order, so the split never moves when files are added.
pub fn half_of(image: &Path) -> Half {
    use sha2::{Digest, Sha256};
    let stem = image.file_stem().unwrap_or_default().to_string_lossy();
    let digest = Sha256::digest(stem.as_bytes());
    if digest[0] % 2 == 0 { Half::A } else { Half::B }
}

/// The half named by `RECEIPT_OCR_EVAL_HALF` (`a` or `b`), if any.
pub fn half_from_env() -> anyhow::Result<Option<Half>> {
    match std::env::var("RECEIPT_OCR_EVAL_HALF") {
        Err(_) => Ok(None),
        Ok(name) => Half::parse(&name)
            .map(Some)
            .with_context(|| format!("RECEIPT_OCR_EVAL_HALF is {name:?}: use a or b")),
    }
}

/// The receipts of one half, or all of them when no half is chosen.
pub fn only_half(receipts: Vec<LabelledReceipt>, half: Option<Half>) -> Vec<LabelledReceipt> {
    match half {
        None => receipts,
        Some(half) => receipts
            .into_iter()
            .filter(|r| half_of(&r.image) == half)
            .collect(),
    }
}

fn label_item(raw: RawItem) -> Option<LabelItem> {
    Some(LabelItem {
        name: raw.name?,
        line_total: number_to_decimal(&raw.price?)?,
    })
}

/// JSON numbers go through their decimal text: `56.58` must stay exactly
/// 56.58, which a detour through `f64` arithmetic would not promise.
fn number_to_decimal(number: &serde_json::Number) -> Option<BigDecimal> {
    BigDecimal::from_str(&number.to_string()).ok()
}

/// The dates a label string can mean. Labels copy what is printed, in every
/// format receipts use: `19/10/2018`, `2013-11-06`, `Jun28'17`, `04 JUN 2018`.
pub fn label_dates(raw: &str) -> Vec<NaiveDate> {
    let digits: Vec<u32> = raw
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    let month = month_in(raw);
    let mut dates = match (month, digits.as_slice()) {
        (Some(m), [d, y, ..]) => vec![ymd(*y, m, *d)],
        (None, [compact]) if *compact > 19_000_000 => {
            vec![ymd(compact / 10_000, compact / 100 % 100, compact % 100)]
        }
        (None, [a, b, c, ..]) if *a > 31 => vec![ymd(*a, *b, *c)],
        (None, [a, b, c, ..]) => vec![ymd(*c, *a, *b), ymd(*c, *b, *a)],
        _ => vec![],
    };
    dates.dedup();
    dates.into_iter().flatten().collect()
}

fn ymd(year: u32, month: u32, day: u32) -> Option<NaiveDate> {
    let year = if year < 100 { 2000 + year } else { year };
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

fn month_in(raw: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let upper = raw.to_ascii_uppercase();
    MONTHS
        .iter()
        .position(|m| upper.contains(m))
        .map(|i| i as u32 + 1)
}

/// How many of `images` the `tesseract` command cannot open (PDFs, HEIC
/// and AVIF photos), which the pipeline reads through its own converters.
pub fn documents_among(images: &[PathBuf]) -> usize {
    images
        .iter()
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| DOCUMENT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .count()
}

const DOCUMENT_EXTENSIONS: [&str; 4] = ["pdf", "heic", "heif", "avif"];

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_half_of_a_receipt_depends_only_on_its_file_stem() {
        let a = half_of(Path::new("/x/sroie/X1.jpg"));
        assert_eq!(a, half_of(Path::new("/elsewhere/X1.png")));
        let halves: Vec<Half> = (0..40)
            .map(|i| half_of(Path::new(&format!("r{i}.jpg"))))
            .collect();
        assert!(halves.contains(&Half::A) && halves.contains(&Half::B));
        assert_eq!(Half::parse("B"), Some(Half::B));
    }

    #[test]
    fn label_dates_in_every_printed_format_are_understood() {
        assert_eq!(label_dates("19/10/2018"), vec![date(2018, 10, 19)]);
        assert_eq!(label_dates("2013-11-06"), vec![date(2013, 11, 6)]);
        assert_eq!(label_dates("Jun28'17"), vec![date(2017, 6, 28)]);
        assert_eq!(label_dates("04 JUN 2018"), vec![date(2018, 6, 4)]);
        assert_eq!(label_dates("20180304"), vec![date(2018, 3, 4)]);
        assert_eq!(
            label_dates("05/11/18"),
            vec![date(2018, 5, 11), date(2018, 11, 5)]
        );
        assert!(label_dates("YYYY-MM-DD").is_empty());
    }
}
