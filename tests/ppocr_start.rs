//! PP-OCR engines started together in a fresh process: ONNX Runtime allows
//! one environment per process, so the first engines must share the one
//! that is built, not each build their own (`eval` and the worker pool start
//! one engine per thread at once). Its own test binary, so that no other
//! test has built the environment first. The models come from
//! `OCR_MODELS_DIR` (fetched by scripts/deps.sh).

use std::sync::{Arc, Barrier};

use receipt_ocr::ocr::ppocr::model;
use receipt_ocr::ocr::{EngineChoice, EngineSettings};

const ENGINES: usize = 16;

#[test]
fn the_runtime_loaded_on_several_threads_at_once_starts_on_each() {
    let together = Arc::new(Barrier::new(ENGINES));
    let starts: Vec<_> = (0..ENGINES)
        .map(|_| {
            let together = together.clone();
            std::thread::spawn(move || {
                together.wait();
                let settings = EngineSettings::with_engine(EngineChoice::Ppocr);
                model::environment(&settings.ocr_models_dir)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for start in starts {
        let started = start.join().expect("the thread ends");
        assert_eq!(started, Ok(()));
    }
}
