//! Text recognition (PP-OCR's CRNN/SVTR model with a CTC head): a batch of
//! crops becomes, per crop, a probability for every class at every time
//! step; greedy CTC decoding turns that into characters, each with the time
//! step where it was read (its position along the crop) and a confidence.

use ort::session::Session;
use ort::value::Tensor;

use super::PpOcrError;
use super::alphabet::Alphabet;
use super::crops::{Batch, HEIGHT};

/// One decoded character.
#[derive(Debug, Clone, PartialEq)]
pub struct Glyph {
    pub text: String,
    /// The time step it peaked at (0-based).
    pub step: usize,
    pub confidence: f32,
}

/// One crop's reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub glyphs: Vec<Glyph>,
    /// How many time steps the crop's padded input had.
    pub steps: usize,
}

impl Decoded {
    /// The mean character confidence (0 when nothing was read).
    pub fn confidence(&self) -> f32 {
        let n = self.glyphs.len().max(1) as f32;
        self.glyphs.iter().map(|g| g.confidence).sum::<f32>() / n
    }

    pub fn text(&self) -> String {
        self.glyphs.iter().map(|g| g.text.as_str()).collect()
    }
}

/// Recognise one batch: one `Decoded` per crop, in the batch's order.
pub fn recognise(
    session: &mut Session,
    batch: Batch,
    alphabet: &Alphabet,
) -> Result<Vec<Decoded>, PpOcrError> {
    let count = batch.indices.len();
    let shape = [count, 3, HEIGHT as usize, batch.width as usize];
    let input = Tensor::from_array((shape, batch.tensor)).map_err(PpOcrError::Inference)?;
    let outputs = session
        .run(ort::inputs![input])
        .map_err(PpOcrError::Inference)?;
    let (shape, values) = outputs[0]
        .try_extract_tensor::<f32>()
        .map_err(PpOcrError::Inference)?;
    let (steps, width) = (shape[1] as usize, shape[2] as usize);
    let per_crop = steps * width;
    let decoded = (0..count)
        .map(|n| ctc_greedy(&values[n * per_crop..(n + 1) * per_crop], width, alphabet))
        .collect();
    Ok(decoded)
}

/// Greedy CTC decoding of a `steps × width` row-major probability matrix:
/// the best allowed class at each step; repeats of the previous step's
/// character and the blank (class 0) are dropped.
pub fn ctc_greedy(probabilities: &[f32], width: usize, alphabet: &Alphabet) -> Decoded {
    let mut glyphs = Vec::new();
    let mut previous = 0;
    let steps = probabilities.len() / width.max(1);
    for (step, row) in probabilities.chunks_exact(width.max(1)).enumerate() {
        let (best, confidence) = alphabet.best(row);
        if best != 0 && !alphabet.same(best, previous) {
            glyphs.push(Glyph {
                text: alphabet.text(best).to_string(),
                step,
                confidence,
            });
        }
        previous = best;
    }
    Decoded { glyphs, steps }
}

#[cfg(test)]
mod tests {
    use super::super::alphabet::Script;
    use super::*;

    fn classes() -> Alphabet {
        let list = ["", "A", "B", " "].iter().map(|s| s.to_string()).collect();
        Alphabet::new(list, Script::Latin)
    }

    /// One row per step over classes [blank, A, B, space].
    fn matrix(rows: &[[f32; 4]]) -> Vec<f32> {
        rows.iter().flatten().copied().collect()
    }

    #[test]
    fn ctc_drops_blanks_and_repeats_but_keeps_a_letter_repeated_across_a_blank() {
        let probabilities = matrix(&[
            [0.1, 0.8, 0.05, 0.05],  // A
            [0.1, 0.7, 0.1, 0.1],    // A again: the same letter held
            [0.9, 0.05, 0.03, 0.02], // blank
            [0.2, 0.6, 0.1, 0.1],    // A: a second A
            [0.1, 0.1, 0.7, 0.1],    // B
            [0.1, 0.1, 0.1, 0.7],    // space
            [0.1, 0.1, 0.5, 0.3],    // B
        ]);
        let decoded = ctc_greedy(&probabilities, 4, &classes());
        assert_eq!(decoded.text(), "AAB B");
        assert_eq!(decoded.steps, 7);
        let steps: Vec<usize> = decoded.glyphs.iter().map(|g| g.step).collect();
        assert_eq!(steps, vec![0, 3, 4, 5, 6]);
        assert!((decoded.glyphs[0].confidence - 0.8).abs() < 1e-6);
        assert!((decoded.confidence() - (0.8 + 0.6 + 0.7 + 0.7 + 0.5) / 5.0).abs() < 1e-6);
    }

    #[test]
    fn an_all_blank_matrix_reads_nothing() {
        let probabilities = matrix(&[[0.9, 0.05, 0.03, 0.02]; 3]);
        let decoded = ctc_greedy(&probabilities, 4, &classes());
        assert!(decoded.glyphs.is_empty());
        assert_eq!(decoded.confidence(), 0.0);
    }
}
