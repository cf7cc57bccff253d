//! A PDF page's text layer as an [`OcrPage`]: the words `pdftotext -bbox`
//! prints with their boxes, grouped into lines by where they sit (not by
//! poppler's own blocks, which split a receipt's price column from its
//! item names) and ordered left to right. Boxes are in the pixels the page
//! would have rasterised at [`RASTER_DPI`](super::pdf::RASTER_DPI).

use crate::ocr::{BBox, OcrLine, OcrPage, OcrWord};

use super::pdf::to_pixels;

/// A page with fewer words than this is treated as a scan.
pub const MIN_TEXT_WORDS: usize = 3;

/// One word of a page, in points from the page's top-left corner.
#[derive(Debug, Clone, PartialEq)]
pub struct PdfWord {
    pub text: String,
    pub x_min: f32,
    pub y_min: f32,
    pub x_max: f32,
    pub y_max: f32,
}

impl PdfWord {
    fn middle(&self) -> f32 {
        (self.y_min + self.y_max) / 2.0
    }
}

/// The words of each page of a `pdftotext -bbox` document, in page order.
pub fn pages_of(xhtml: &str) -> Vec<Vec<PdfWord>> {
    xhtml
        .split("<page ")
        .skip(1)
        .map(|page| {
            let page = page.split("</page>").next().unwrap_or_default();
            page.split("<word ").skip(1).filter_map(word_of).collect()
        })
        .collect()
}

/// `xMin="1" yMin="2" xMax="3" yMax="4">text</word>` → a word.
fn word_of(fragment: &str) -> Option<PdfWord> {
    let (attributes, rest) = fragment.split_once('>')?;
    let text = unescape(rest.split("</word>").next()?.trim());
    if text.is_empty() {
        return None;
    }
    Some(PdfWord {
        text,
        x_min: attribute(attributes, "xMin")?,
        y_min: attribute(attributes, "yMin")?,
        x_max: attribute(attributes, "xMax")?,
        y_max: attribute(attributes, "yMax")?,
    })
}

fn attribute(attributes: &str, name: &str) -> Option<f32> {
    let start = attributes.find(&format!("{name}=\""))? + name.len() + 2;
    let value = attributes[start..].split('"').next()?;
    value.parse().ok()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The page's words as lines top to bottom: a word joins the line whose
/// first word's height holds its middle. `top` (pixels) is where the page
/// starts in a document read as one tall page.
pub fn page_of(words: &[PdfWord], top: u32) -> OcrPage {
    let mut sorted: Vec<&PdfWord> = words.iter().collect();
    sorted.sort_by(|a, b| a.middle().total_cmp(&b.middle()));
    let mut lines: Vec<Vec<&PdfWord>> = Vec::new();
    for word in sorted {
        match lines.last_mut() {
            Some(line) if word.middle() <= line[0].y_max && word.middle() >= line[0].y_min => {
                line.push(word)
            }
            _ => lines.push(vec![word]),
        }
    }
    let lines = lines
        .into_iter()
        .map(|mut line| {
            line.sort_by(|a, b| a.x_min.total_cmp(&b.x_min));
            OcrLine::from_words(line.into_iter().map(|w| ocr_word(w, top)).collect())
        })
        .collect();
    OcrPage { lines }
}

/// A text-layer word: exact, so its confidence is 1.
fn ocr_word(word: &PdfWord, top: u32) -> OcrWord {
    let (x, y) = (to_pixels(word.x_min), to_pixels(word.y_min) + top);
    let width = to_pixels(word.x_max).saturating_sub(x);
    let height = (to_pixels(word.y_max) + top).saturating_sub(y);
    OcrWord {
        text: word.text.clone(),
        bbox: BBox::new(x, y, width, height),
        confidence: 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XHTML: &str = r#"<doc>
  <page width="200.000000" height="100.000000">
    <word xMin="10.0" yMin="10.0" xMax="40.0" yMax="20.0">Milk</word>
    <word xMin="150.0" yMin="10.5" xMax="180.0" yMax="20.5">7.98</word>
    <word xMin="10.0" yMin="30.0" xMax="50.0" yMax="40.0">TOTAL</word>
    <word xMin="50.0" yMin="10.0" xMax="60.0" yMax="20.0">&amp;</word>
  </page>
  <page width="200.000000" height="100.000000">
  </page>
</doc>"#;

    #[test]
    fn words_are_grouped_into_lines_by_position_whatever_their_order() {
        let pages = pages_of(XHTML);
        assert_eq!(pages.len(), 2);
        assert!(pages[1].is_empty());
        let page = page_of(&pages[0], 0);
        assert_eq!(page.text(), "Milk & 7.98\nTOTAL");
        let milk = &page.lines[0].words[0].bbox;
        assert_eq!((milk.x, milk.y), (42, 42));
        assert_eq!(page_of(&pages[0], 1000).lines[1].bbox.y, 1125);
    }
}
