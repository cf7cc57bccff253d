//! PP-OCR (v4, and v6 for `auto`'s second reading) through ONNX Runtime:
//! detection (DB) → boxes → crops → recognition (CTC) → lines in reading
//! order, each word with its box and confidence. One engine per model
//! generation per worker; its sessions are created once, with one
//! intra-op thread each, and reused for every read.
//!
//! - `model`: loading the runtime, the models and the character list
//! - `detect`: the probability map and its boxes
//! - `quad`: a detected line as a rotated rectangle, and its upright crop
//! - `crops`: boxes cut out, scaled and batched for the recogniser
//! - `recognise`: the recogniser and CTC decoding
//! - `alphabet`: which of the recogniser's classes decoding considers
//! - `lines`: boxes grouped into lines, words split at gaps
//! - `glue`: labels and dates the recogniser glued to their neighbours

pub mod alphabet;
pub mod crops;
pub mod detect;
pub mod glue;
pub mod lines;
pub mod model;
pub mod quad;
pub mod recognise;

use std::path::Path;

use image::GrayImage;
use ort::session::Session;

use self::alphabet::Alphabet;
pub use self::alphabet::Script;
use self::detect::DbSettings;
use self::lines::{PlacedGlyph, ReadBox};
use self::quad::TextBox;
use self::recognise::Decoded;
use crate::ocr::page::OcrPage;

pub use self::model::{Generation, ModelError};

/// The detector's default input limit (longer side, pixels); measured in
/// docs/ocr-accuracy.md.
pub const DEFAULT_MAX_SIDE: u32 = 1280;
/// Crops per recogniser run.
const BATCH: usize = 6;
/// Lines read with less mean confidence than this are dropped as noise.
const MIN_LINE_CONFIDENCE: f32 = 0.5;

/// Failures while reading with PP-OCR.
#[derive(Debug, thiserror::Error)]
pub enum PpOcrError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("ONNX Runtime failed while reading the image: {0}")]
    Inference(#[source] ort::Error),
}

/// A PP-OCRv4 reader: a detection and a recognition session.
pub struct PpOcrEngine {
    detector: Session,
    recogniser: Session,
    alphabet: Alphabet,
    /// Split words where characters are far apart (v4), or only at the
    /// recogniser's spaces (v6).
    split_gaps: bool,
    max_side: u32,
    min_width: u32,
}

impl PpOcrEngine {
    /// Load the runtime and `generation`'s models from `models_dir`;
    /// decoding reads the classes of `script`.
    pub fn new(
        models_dir: &Path,
        script: Script,
        generation: Generation,
    ) -> Result<Self, ModelError> {
        let (detection, recognition) = generation.files();
        let detection = model::model_path(models_dir, detection)?;
        let recognition = model::model_path(models_dir, recognition)?;
        let env = model::environment(models_dir)?;
        let recogniser = model::session(env, &recognition)?;
        let classes = model::characters(&recogniser, &recognition)?;
        Ok(Self {
            detector: model::session(env, &detection)?,
            recogniser,
            alphabet: Alphabet::new(classes, script),
            split_gaps: generation.splits_at_gaps(),
            max_side: pixels_from_env("PPOCR_MAX_SIDE", DEFAULT_MAX_SIDE),
            min_width: pixels_from_env("PPOCR_MIN_WIDTH", crops::MIN_WIDTH),
        })
    }

    /// Limit the detector's input to `max_side` pixels on the longer side.
    pub fn set_max_side(&mut self, max_side: u32) {
        self.max_side = max_side.max(32);
    }

    /// Read an upright grey image into a page, boxes in its pixels.
    pub fn read_page(&mut self, image: &GrayImage) -> Result<OcrPage, PpOcrError> {
        let boxes = detect::detect(
            &mut self.detector,
            image,
            self.max_side,
            DbSettings::default(),
        )?;
        let crops: Vec<_> = (boxes.iter().enumerate())
            .map(|(i, b)| crops::crop(image, b, i))
            .collect();
        let mut read = Vec::with_capacity(boxes.len());
        for batch in crops::batches(crops, BATCH, self.min_width) {
            let placement: Vec<_> = batch
                .indices
                .iter()
                .copied()
                .zip(batch.widths.clone())
                .collect();
            let padded = batch.width;
            let decoded = recognise::recognise(&mut self.recogniser, batch, &self.alphabet)?;
            for ((index, width), decoded) in placement.into_iter().zip(decoded) {
                read.push(place(&boxes[index], decoded, width, padded, image));
            }
        }
        read.retain(|r| !r.glyphs.is_empty() && box_confidence(r) >= MIN_LINE_CONFIDENCE);
        Ok(lines::page_of(read, self.split_gaps))
    }
}

/// A size in pixels from the environment, else `default`: `PPOCR_MAX_SIDE`
/// (the detector limit) and `PPOCR_MIN_WIDTH` (the recogniser's narrowest
/// batch) exist for measuring.
fn pixels_from_env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn box_confidence(read: &ReadBox) -> f32 {
    let n = read.glyphs.len().max(1) as f32;
    read.glyphs.iter().map(|g| g.confidence).sum::<f32>() / n
}

/// Put a crop's characters back on the image: time step `t` of `steps`
/// covers the padded input's columns around `(t + ½) · padded / steps`,
/// and the crop was sampled from the rectangle's length to `width`.
fn place(
    text_box: &TextBox,
    decoded: Decoded,
    width: u32,
    padded: u32,
    image: &GrayImage,
) -> ReadBox {
    let column = padded as f32 / decoded.steps.max(1) as f32;
    let to_image = text_box.length / width.max(1) as f32;
    let along = |step: usize| ((step as f32 + 0.5) * column * to_image).min(text_box.length);
    let glyphs = decoded
        .glyphs
        .into_iter()
        .map(|g| PlacedGlyph {
            x: text_box.point(along(g.step), text_box.thickness / 2.0).0 + 0.5,
            text: g.text,
            confidence: g.confidence,
        })
        .collect();
    let bbox = text_box.bbox(image.width(), image.height());
    let slope = text_box.angle.tan();
    ReadBox {
        bbox,
        slope,
        glyphs,
    }
}
