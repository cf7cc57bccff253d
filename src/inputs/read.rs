//! Reading a PDF or a HEIC/AVIF photo with a worker's OCR engine.
//!
//! A PDF is one receipt: its pages are read in order and parsed as one
//! text. A page with a text layer (an e-receipt) is read from that text,
//! exactly and without OCR; a page without one (a scan) is rasterised at
//! [`RASTER_DPI`](super::pdf::RASTER_DPI) and recognised. A one-page scan goes through the
//! engine's whole policy, as an image upload does; pages of a longer scan
//! are each recognised once and parsed together.

use image::GrayImage;

use super::heif;
use super::pdf::{PdfFile, to_pixels};
use super::pdf_text::{self, MIN_TEXT_WORDS, PdfWord};
use super::{InputError, InputKind};
use crate::ocr::engine::EngineKind;
use crate::ocr::preprocess;
use crate::ocr::{OcrEngine, OcrError, OcrPage, ReceiptReading, Stage, parse_receipt};

/// Read an upload end to end, whatever it is: a PDF or a HEIC/AVIF photo
/// here, an image by the engine; `on_stage` hears as each stage ends.
/// `wanted` is asked before each PDF page after the first: once nobody
/// waits for the answer (the read timed out, the job was cancelled), the
/// remaining pages are not read.
pub fn read_upload(
    engine: &mut OcrEngine,
    bytes: &[u8],
    on_stage: &mut dyn FnMut(Stage),
    wanted: &dyn Fn() -> bool,
) -> Result<ReceiptReading, OcrError> {
    match read_document(engine, bytes, on_stage, wanted) {
        Some(reading) => reading,
        None => engine.read_image(bytes, on_stage),
    }
}

/// Read `bytes` when they are a PDF or a HEIF photo; `None` for an image,
/// which the engine reads itself.
pub fn read_document(
    engine: &mut OcrEngine,
    bytes: &[u8],
    on_stage: &mut dyn FnMut(Stage),
    wanted: &dyn Fn() -> bool,
) -> Option<Result<ReceiptReading, OcrError>> {
    match InputKind::sniff(bytes)? {
        InputKind::Image(_) => None,
        InputKind::Pdf => Some(read_pdf(engine, bytes, on_stage, wanted)),
        InputKind::Heif(_) => Some(read_heif(engine, bytes, on_stage)),
    }
}

fn read_heif(
    engine: &mut OcrEngine,
    bytes: &[u8],
    on_stage: &mut dyn FnMut(Stage),
) -> Result<ReceiptReading, OcrError> {
    let grey = heif::decode(bytes, engine.max_image_pixels())?;
    on_stage(Stage::Loaded);
    engine.read_grey(&grey, on_stage)
}

fn read_pdf(
    engine: &mut OcrEngine,
    bytes: &[u8],
    on_stage: &mut dyn FnMut(Stage),
    wanted: &dyn Fn() -> bool,
) -> Result<ReceiptReading, OcrError> {
    let (max_pages, max_pixels) = (engine.max_pdf_pages(), engine.max_image_pixels());
    let file = PdfFile::write(bytes)?;
    let info = file.info(max_pages)?;
    info.check(max_pages, max_pixels)?;
    let words = pdf_text::pages_of(&file.words_xhtml()?);
    on_stage(Stage::Loaded);
    let page_words = |index: usize| words.get(index).map_or(&[][..], Vec::as_slice);
    let has_text = |index: usize| page_words(index).len() >= MIN_TEXT_WORDS;
    if info.pages == 1 && !has_text(0) {
        let grey = rasterise(&file, 1, max_pixels)?;
        return engine.read_grey(&grey, on_stage);
    }
    let mut pages = Vec::with_capacity(info.pages);
    let mut top = 0;
    for index in 0..info.pages {
        if index > 0 && !wanted() {
            return Err(InputError::Abandoned.into());
        }
        let height = info.page_sizes.get(index).map_or(0, |&(_, h)| to_pixels(h));
        let read = match has_text(index) {
            true => text_page(page_words(index), top),
            false => scanned_page(engine, &file, index + 1, max_pixels, top)?,
        };
        top += height;
        pages.push(read);
    }
    on_stage(Stage::Preprocessed);
    on_stage(Stage::Recognised);
    let reading = reading_of_pages(pages);
    on_stage(Stage::Parsed);
    Ok(reading)
}

/// One page as read, and by what.
struct PageRead {
    page: OcrPage,
    engine: EngineKind,
}

fn text_page(words: &[PdfWord], top: u32) -> PageRead {
    PageRead {
        page: pdf_text::page_of(words, top),
        engine: EngineKind::PdfText,
    }
}

fn scanned_page(
    engine: &mut OcrEngine,
    file: &PdfFile,
    number: usize,
    max_pixels: u64,
    top: u32,
) -> Result<PageRead, OcrError> {
    let grey = rasterise(file, number, max_pixels)?;
    let (mut page, _confidence, kind) = engine.recognise_page(&grey)?;
    move_down(&mut page, top);
    Ok(PageRead { page, engine: kind })
}

/// Page `number` rasterised and decoded to grey.
fn rasterise(file: &PdfFile, number: usize, max_pixels: u64) -> Result<GrayImage, OcrError> {
    let png = file.rasterise(number, max_pixels)?;
    Ok(preprocess::decode_within(&png, max_pixels)?)
}

/// The pages one below the other, parsed as one text.
fn reading_of_pages(pages: Vec<PageRead>) -> ReceiptReading {
    let mut engines: Vec<EngineKind> = Vec::new();
    let mut page = OcrPage::default();
    for read in pages {
        if !engines.contains(&read.engine) {
            engines.push(read.engine);
        }
        page = page.followed_by(read.page);
    }
    let text = page.text();
    ReceiptReading {
        receipt: parse_receipt(&text),
        ocr_confidence: page.confidence() * 100.0,
        text,
        page,
        engines,
    }
}

fn move_down(page: &mut OcrPage, by: u32) {
    for line in &mut page.lines {
        line.bbox.y += by;
        for word in &mut line.words {
            word.bbox.y += by;
        }
    }
}
