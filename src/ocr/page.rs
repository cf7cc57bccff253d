//! What an OCR engine saw on a page, whichever engine it was: lines of words
//! in reading order, each with its box in the original image's pixels and a
//! confidence. The parser reads `OcrPage::text()`; boxes let callers point
//! at where a field was printed.

use serde::{Deserialize, Serialize};

/// An axis-aligned box in the pixels of the original image, upright as a
/// viewer shows it (after any EXIF rotation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl BBox {
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    pub fn right(&self) -> u32 {
        self.x + self.width
    }

    pub fn bottom(&self) -> u32 {
        self.y + self.height
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &BBox) -> BBox {
        let (x, y) = (self.x.min(other.x), self.y.min(other.y));
        let right = self.right().max(other.right());
        let bottom = self.bottom().max(other.bottom());
        BBox::new(x, y, right - x, bottom - y)
    }

    /// The smallest box holding all of `boxes`; `None` when there are none.
    pub fn union_all<'a>(boxes: impl IntoIterator<Item = &'a BBox>) -> Option<BBox> {
        boxes.into_iter().fold(None, |acc: Option<BBox>, b| {
            Some(acc.map_or(*b, |a| a.union(b)))
        })
    }
}

/// One word as read, with its box and the engine's confidence (0–1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrWord {
    pub text: String,
    pub bbox: BBox,
    pub confidence: f32,
}

/// One printed line: its words left to right and the box around them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrLine {
    pub words: Vec<OcrWord>,
    pub bbox: BBox,
}

impl OcrLine {
    /// A line of `words` (non-empty), boxed around them.
    pub fn from_words(words: Vec<OcrWord>) -> Self {
        let bbox = BBox::union_all(words.iter().map(|w| &w.bbox)).unwrap_or_default();
        Self { words, bbox }
    }

    /// The words joined by single spaces.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self.words.iter().map(|w| w.text.as_str()).collect();
        texts.join(" ")
    }

    /// The mean word confidence, 0–1 (0 for an empty line).
    pub fn confidence(&self) -> f32 {
        mean(self.words.iter().map(|w| w.confidence))
    }
}

/// A page: lines top to bottom.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OcrPage {
    pub lines: Vec<OcrLine>,
}

impl OcrPage {
    /// The page's text: line `i` of the result is `lines[i]`, joined by
    /// `'\n'` with no blank lines. Readings keep exactly this text so a
    /// parser's line numbers index `lines`.
    pub fn text(&self) -> String {
        let lines: Vec<String> = self.lines.iter().map(OcrLine::text).collect();
        lines.join("\n")
    }

    /// The mean word confidence over the page, 0–1.
    pub fn confidence(&self) -> f32 {
        mean(
            self.lines
                .iter()
                .flat_map(|l| l.words.iter().map(|w| w.confidence)),
        )
    }

    /// This page's lines followed by `other`'s.
    pub fn followed_by(mut self, other: OcrPage) -> OcrPage {
        self.lines.extend(other.lines);
        self
    }
}

fn mean(values: impl Iterator<Item = f32>) -> f32 {
    let (sum, count) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    if count == 0 { 0.0 } else { sum / count as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, x: u32, y: u32) -> OcrWord {
        OcrWord {
            text: text.into(),
            bbox: BBox::new(x, y, 10, 10),
            confidence: 0.5,
        }
    }

    #[test]
    fn page_text_is_its_lines_joined_by_newlines() {
        let page = OcrPage {
            lines: vec![
                OcrLine::from_words(vec![word("TOTAL", 0, 0), word("3.00", 40, 2)]),
                OcrLine::from_words(vec![word("THANK", 0, 20)]),
            ],
        };
        assert_eq!(page.text(), "TOTAL 3.00\nTHANK");
        assert_eq!(page.lines[0].bbox, BBox::new(0, 0, 50, 12));
        assert!((page.confidence() - 0.5).abs() < 1e-6);
    }
}
