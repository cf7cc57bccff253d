//! Rebuilding printed lines from recognised boxes: boxes that share most of
//! their height are one line, read left to right; inside a box, words are
//! split where the recogniser's character positions leave a wide gap (it
//! often drops spaces: `TOTAL:$13.03`, `4/24/20166:30:31PM`).

use crate::ocr::page::{BBox, OcrLine, OcrPage, OcrWord};

/// A character placed on the image: `x` is its centre in image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedGlyph {
    pub text: String,
    pub x: f32,
    pub confidence: f32,
}

/// A detected box with what the recogniser read in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadBox {
    pub bbox: BBox,
    /// The text's slope (dy/dx): photos are rarely square to the paper.
    pub slope: f32,
    pub glyphs: Vec<PlacedGlyph>,
}

/// A gap between character centres wider than this many typical gaps
/// (the median in the box) is a space…
const SPACE_PITCHES: f32 = 1.7;
/// …when it is also wider than this fraction of the box height (so a box
/// of evenly spaced letters is never split).
const SPACE_HEIGHTS: f32 = 0.45;
/// Boxes are one line when their centres are at most this share of the
/// lower box's height apart. Unclipped boxes are ~1.7× the text height, so
/// neighbouring printed lines overlap by half: overlap cannot tell them apart.
const SAME_LINE_CENTRES: f32 = 0.4;

/// The page: boxes grouped into lines top to bottom, words left to right.
/// With `split_gaps`, words are also split where characters are far apart.
pub fn page_of(boxes: Vec<ReadBox>, split_gaps: bool) -> OcrPage {
    let lines = group_lines(boxes)
        .into_iter()
        .map(|line| {
            let words = line.iter().flat_map(|read| words_of(read, split_gaps));
            OcrLine::from_words(words.collect())
        })
        .filter(|line| !line.words.is_empty())
        .collect();
    OcrPage { lines }
}

/// Boxes grouped into lines: each box joins the line whose nearest box (by
/// horizontal position, so a slanted line is followed) has its centre
/// closest, if close enough. Lines come top to bottom, boxes left to right.
pub fn group_lines(mut boxes: Vec<ReadBox>) -> Vec<Vec<ReadBox>> {
    boxes.sort_by_key(|b| b.bbox.y * 2 + b.bbox.height);
    let mut lines: Vec<Vec<ReadBox>> = Vec::new();
    for read in boxes {
        match best_line(&lines, &read) {
            Some(i) => lines[i].push(read),
            None => lines.push(vec![read]),
        }
    }
    for line in &mut lines {
        line.sort_by_key(|b| b.bbox.x);
    }
    lines
}

fn best_line(lines: &[Vec<ReadBox>], read: &ReadBox) -> Option<usize> {
    let scored = lines.iter().enumerate().filter_map(|(i, line)| {
        let nearest = line
            .iter()
            .min_by_key(|b| horizontal_distance(&b.bbox, &read.bbox))?;
        let distance = centre_distance(nearest, read);
        (distance <= SAME_LINE_CENTRES).then_some((i, distance))
    });
    scored.min_by(|a, b| a.1.total_cmp(&b.1)).map(|(i, _)| i)
}

/// How far `b`'s centre lies from the line through `a`'s centre (along the
/// slope of the longer box), over the smaller box height.
pub fn centre_distance(a: &ReadBox, b: &ReadBox) -> f32 {
    let centre = |x: &BBox| {
        let (x0, y0) = (x.x as f32, x.y as f32);
        (x0 + x.width as f32 / 2.0, y0 + x.height as f32 / 2.0)
    };
    let ((ax, ay), (bx, by)) = (centre(&a.bbox), centre(&b.bbox));
    let slope = match a.bbox.width >= b.bbox.width {
        true => a.slope,
        false => b.slope,
    };
    let expected = ay + slope * (bx - ax);
    (by - expected).abs() / a.bbox.height.min(b.bbox.height).max(1) as f32
}

fn horizontal_distance(a: &BBox, b: &BBox) -> u32 {
    match a.right() < b.x {
        true => b.x - a.right(),
        false => a.x.saturating_sub(b.right()),
    }
}

/// A box's words: split at recognised spaces, at wide gaps (with
/// `split_gaps`), and where a label or a date is glued to what follows
/// (`glue`).
pub fn words_of(read: &ReadBox, split_gaps: bool) -> Vec<OcrWord> {
    let words = spaced_words(read, split_gaps);
    words.into_iter().flat_map(unglue).collect()
}

/// A word split into its glued pieces, each boxed by its share of letters.
fn unglue(word: OcrWord) -> Vec<OcrWord> {
    let pieces = super::glue::split(&word.text);
    if pieces.len() == 1 {
        return vec![word];
    }
    let total = word.text.chars().count().max(1) as f32;
    let mut start = 0usize;
    let piece = |text: String, start: usize| {
        let share = |n: usize| (word.bbox.width as f32 * n as f32 / total) as u32;
        let (x0, x1) = (share(start), share(start + text.chars().count()));
        let bbox = BBox::new(
            word.bbox.x + x0,
            word.bbox.y,
            (x1 - x0).max(1),
            word.bbox.height,
        );
        OcrWord {
            text,
            bbox,
            confidence: word.confidence,
        }
    };
    let mut out = Vec::with_capacity(pieces.len());
    for text in pieces {
        let length = text.chars().count();
        out.push(piece(text, start));
        start += length;
    }
    out
}

/// A box's words split at recognised spaces and (with `split_gaps`) at
/// wide gaps.
fn spaced_words(read: &ReadBox, split_gaps: bool) -> Vec<OcrWord> {
    let min_gap = match split_gaps {
        true => {
            (typical_gap(&read.glyphs) * SPACE_PITCHES).max(read.bbox.height as f32 * SPACE_HEIGHTS)
        }
        false => f32::INFINITY,
    };
    let mut words = Vec::new();
    let mut current: Vec<&PlacedGlyph> = Vec::new();
    for glyph in &read.glyphs {
        let gap = current.last().map_or(0.0, |last| glyph.x - last.x);
        if glyph.text.trim().is_empty() || gap > min_gap {
            words.extend(word_of(&current, read));
            current.clear();
        }
        if !glyph.text.trim().is_empty() {
            current.push(glyph);
        }
    }
    words.extend(word_of(&current, read));
    words
}

/// The median distance between neighbouring character centres in a box.
fn typical_gap(glyphs: &[PlacedGlyph]) -> f32 {
    median_gap(glyphs.iter().map(|g| g.x).collect())
}

fn median_gap(centres: Vec<f32>) -> f32 {
    let mut gaps: Vec<f32> = centres.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return 0.0;
    }
    gaps.sort_by(f32::total_cmp);
    gaps[gaps.len() / 2]
}

/// One word from its characters: its box spans them (half a character
/// either side) within the detected box's height.
fn word_of(glyphs: &[&PlacedGlyph], read: &ReadBox) -> Option<OcrWord> {
    let (first, last) = (glyphs.first()?, glyphs.last()?);
    let pitch = median_gap(glyphs.iter().map(|g| g.x).collect());
    let half = (pitch / 2.0).max(read.bbox.height as f32 / 4.0);
    let left = (first.x - half).max(read.bbox.x as f32) as u32;
    let right = (last.x + half).min(read.bbox.right() as f32) as u32;
    let text: String = glyphs.iter().map(|g| g.text.as_str()).collect();
    let confidence = glyphs.iter().map(|g| g.confidence).sum::<f32>() / glyphs.len() as f32;
    let bbox = BBox::new(
        left,
        read.bbox.y,
        right.saturating_sub(left).max(1),
        read.bbox.height,
    );
    Some(OcrWord {
        text,
        bbox,
        confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box whose characters sit every `pitch` pixels from `x`, a space
    /// in `text` leaving an empty slot (as a printed space does).
    fn read(text: &str, x: u32, y: u32, pitch: f32) -> ReadBox {
        let glyphs = text
            .chars()
            .enumerate()
            .filter(|(_, c)| *c != ' ')
            .map(|(i, c)| PlacedGlyph {
                text: c.to_string(),
                x: x as f32 + pitch * (i as f32 + 0.5),
                confidence: 0.9,
            })
            .collect();
        let width = (pitch * text.chars().count() as f32) as u32;
        ReadBox {
            bbox: BBox::new(x, y, width, 20),
            slope: 0.0,
            glyphs,
        }
    }

    fn texts(page: &OcrPage) -> Vec<String> {
        page.lines.iter().map(OcrLine::text).collect()
    }

    #[test]
    fn boxes_sharing_a_band_form_one_line_read_left_to_right() {
        let boxes = vec![
            read("3.00", 300, 52, 10.0),
            read("THANK YOU", 20, 100, 10.0),
            read("BREAD", 20, 50, 10.0),
            read("STORE", 20, 10, 10.0),
        ];
        let page = page_of(boxes, true);
        assert_eq!(texts(&page), vec!["STORE", "BREAD 3.00", "THANK YOU"]);
        assert_eq!(page.lines[1].bbox, BBox::new(20, 50, 320, 22));
    }

    #[test]
    fn a_slanted_line_is_followed_across_the_page() {
        // Each box a little lower than the one on its left, the last one
        // lower than the first by most of a box height.
        let boxes = vec![
            read("A", 0, 100, 20.0),
            read("B", 100, 108, 20.0),
            read("C", 200, 116, 20.0),
            read("NEXT", 0, 140, 20.0),
        ];
        assert_eq!(texts(&page_of(boxes, true)), vec!["A B C", "NEXT"]);
    }

    #[test]
    fn a_price_raised_by_the_slant_of_a_photo_stays_on_its_line() {
        // The line rises 1 px every 10 to the right: its price box sits 20 px
        // higher than the name's, more than the next line's distance.
        let mut name = read("2 SAUV BLANC", 0, 100, 10.0);
        name.slope = -0.1;
        let mut price = read("18.00", 260, 80, 10.0);
        price.slope = -0.1;
        let mut next = read("1 VEGGIE", 0, 120, 10.0);
        next.slope = -0.1;
        let page = page_of(vec![name, price, next], true);
        assert_eq!(texts(&page), vec!["2 SAUV BLANC 18.00", "1 VEGGIE"]);
    }

    #[test]
    fn neighbouring_lines_whose_boxes_overlap_by_half_stay_apart() {
        let boxes = vec![
            read("Please ask", 0, 100, 10.0),
            read("if you like", 0, 111, 10.0),
        ];
        assert_eq!(
            texts(&page_of(boxes, true)),
            vec!["Please ask", "if you like"]
        );
    }

    #[test]
    fn a_glued_box_is_split_into_words_at_wide_gaps() {
        let page = page_of(vec![read("TOTAL: $13.03", 0, 0, 12.0)], true);
        assert_eq!(texts(&page), vec!["TOTAL: $13.03"]);
        let words = &page.lines[0].words;
        assert_eq!(words[1].text, "$13.03");
        assert!(words[1].bbox.x >= 6 * 12 - 6 && words[1].bbox.x <= 7 * 12);
    }

    #[test]
    fn evenly_spaced_characters_stay_one_word() {
        let page = page_of(vec![read("4/24/2016", 0, 0, 12.0)], true);
        assert_eq!(page.lines[0].words.len(), 1);
    }

    #[test]
    fn without_gap_splitting_only_the_recognisers_spaces_split_words() {
        // A wide gap and no space read: one word (how v6 is read).
        let page = page_of(vec![read("CORNER MARKET", 0, 0, 12.0)], false);
        assert_eq!(texts(&page), vec!["CORNERMARKET"]);
        // The same box split at gaps (how v4 is read).
        let page = page_of(vec![read("CORNER MARKET", 0, 0, 12.0)], true);
        assert_eq!(texts(&page), vec!["CORNER MARKET"]);
        // A space the recogniser read splits it either way.
        let mut spaced = read("CORNER MARKET", 0, 0, 12.0);
        let space = PlacedGlyph {
            text: " ".into(),
            x: 6.5 * 12.0,
            confidence: 0.9,
        };
        spaced.glyphs.insert(6, space);
        let page = page_of(vec![spaced], false);
        assert_eq!(texts(&page), vec!["CORNER MARKET"]);
        assert_eq!(page.lines[0].words.len(), 2);
    }
}
