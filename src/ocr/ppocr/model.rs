//! Loading ONNX Runtime and the PP-OCRv4 models from the models folder:
//! one session per model, one intra-op thread each (a worker pool gives
//! the parallelism), created once per engine and reused for every read.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

/// The files `scripts/deps.sh` puts in the models folder. PP-OCRv4's are
/// its models rewritten with fewer operators by `scripts/fold_ppocr.py`
/// (the same outputs to 1e-4; a quarter less CPU a receipt).
pub const DETECTION_MODEL: &str = "ch_PP-OCRv4_det_infer.folded.onnx";
pub const RECOGNITION_MODEL: &str = "ch_PP-OCRv4_rec_infer.folded.onnx";
pub const V6_DETECTION_MODEL: &str = "PP-OCRv6_det_small.onnx";
pub const V6_RECOGNITION_MODEL: &str = "PP-OCRv6_rec_small.onnx";
pub const CLASSIFIER_MODEL: &str = "ch_ppocr_mobile_v2.0_cls_infer.onnx";

/// Which PP-OCR models an engine runs: both generations take the same
/// inputs and give the same outputs, and read differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// PP-OCRv4 (`rapidocr-onnxruntime` 1.4.4): the first reading.
    V4,
    /// PP-OCRv6 small (`rapidocr` 3.10.0): the second reading of `auto`.
    V6,
}

impl Generation {
    /// The detection and recognition models' file names.
    pub fn files(self) -> (&'static str, &'static str) {
        match self {
            Generation::V4 => (DETECTION_MODEL, RECOGNITION_MODEL),
            Generation::V6 => (V6_DETECTION_MODEL, V6_RECOGNITION_MODEL),
        }
    }

    /// v4 often glues words (`BeefRibs`), so its boxes are also split where
    /// characters are far apart; v6 reads the spaces itself, and splitting
    /// at gaps cuts its words (`G ARDE NIA`): docs/ocr-accuracy.md.
    pub fn splits_at_gaps(self) -> bool {
        self == Generation::V4
    }
}

const RUNTIME_LIBRARY: &str = "libonnxruntime.so";

/// Why the PP-OCR engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "the PP-OCR model {path} is missing: run scripts/deps.sh to fetch it, or set \
         OCR_MODELS_DIR to the folder holding it"
    )]
    MissingModel { path: PathBuf },
    #[error(
        "ONNX Runtime could not be loaded from {path}: {source}. Run scripts/deps.sh to fetch \
         it into OCR_MODELS_DIR, or set ORT_DYLIB_PATH to a libonnxruntime.so (1.17 or newer)"
    )]
    Runtime {
        path: PathBuf,
        source: ort::LoadDynamicError,
    },
    #[error("ONNX Runtime could not load {path}: {source}")]
    Session { path: PathBuf, source: ort::Error },
    #[error("the recognition model {path} has no character list in its metadata")]
    NoCharacters { path: PathBuf },
}

/// The process's ONNX Runtime environment; the library is loaded once.
static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
/// Held while the environment is built: ONNX Runtime allows only one per
/// process, so workers starting together must not each build one.
static BUILDING: Mutex<()> = Mutex::new(());

/// Load `libonnxruntime.so` (from `ORT_DYLIB_PATH` when set, else the
/// models folder) and the environment, once per process.
pub fn environment(models_dir: &Path) -> Result<&'static Environment, ModelError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let _alone = BUILDING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let path = runtime_path(models_dir);
    let runtime = |source| ModelError::Runtime {
        path: path.clone(),
        source,
    };
    let builder = ort::init_from(&path).map_err(runtime)?;
    let env = builder
        .with_name("receipt-ocr")
        .build()
        .map_err(|source| ModelError::Session {
            path: path.clone(),
            source,
        })?;
    Ok(ENVIRONMENT.get_or_init(|| env))
}

fn runtime_path(models_dir: &Path) -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => models_dir.join(RUNTIME_LIBRARY),
    }
}

/// The path of `name` in `models_dir`, or the error saying how to fetch it.
/// A rewritten model (`*.folded.onnx`) falls back to the model as fetched
/// when the rewrite is missing (`scripts/ocr-models.sh` could not run it:
/// a Python older than 3.11, say), with a warning: the same readings,
/// slower.
pub fn model_path(models_dir: &Path, name: &str) -> Result<PathBuf, ModelError> {
    let path = models_dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    let fetched = name.strip_suffix(".folded.onnx");
    let fetched = fetched.map(|stem| models_dir.join(format!("{stem}.onnx")));
    match fetched {
        Some(fetched) if fetched.is_file() => {
            tracing::warn!(
                missing = %path.display(),
                "PP-OCRv4's rewritten model is missing: reading with the model as fetched, \
                 about a third slower; run scripts/ocr-models.sh to rewrite it"
            );
            Ok(fetched)
        }
        _ => Err(ModelError::MissingModel { path }),
    }
}

/// A session on `path` with one intra-op thread.
pub fn session(env: &Environment, path: &Path) -> Result<Session, ModelError> {
    let failed = |source: ort::Error| ModelError::Session {
        path: path.to_path_buf(),
        source,
    };
    let builder = Session::builder(env)
        .map_err(failed)?
        .with_intra_threads(1)
        .map_err(|e| failed(e.into()))?
        .with_inter_threads(1)
        .map_err(|e| failed(e.into()))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| failed(e.into()));
    builder?.commit_from_file(path).map_err(failed)
}

/// The recogniser's classes: index 0 is the CTC blank, then the model's
/// character list (metadata key `character`, one per line), then a space,
/// as PaddleOCR trained it.
pub fn characters(session: &Session, path: &Path) -> Result<Vec<String>, ModelError> {
    let missing = || ModelError::NoCharacters {
        path: path.to_path_buf(),
    };
    let list = session
        .metadata()
        .ok()
        .and_then(|m| m.custom("character"))
        .ok_or_else(missing)?;
    let mut classes = vec![String::new()];
    classes.extend(list.lines().map(str::to_string));
    classes.push(" ".to_string());
    Ok(classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_rewrite_falls_back_to_the_model_as_fetched_and_nothing_else() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let missing = model_path(dir.path(), RECOGNITION_MODEL).expect_err("nothing there");
        assert!(missing.to_string().contains(RECOGNITION_MODEL), "{missing}");
        std::fs::write(dir.path().join("ch_PP-OCRv4_rec_infer.onnx"), b"model").expect("a file");
        let fetched = model_path(dir.path(), RECOGNITION_MODEL).expect("the model as fetched");
        assert_eq!(fetched, dir.path().join("ch_PP-OCRv4_rec_infer.onnx"));
        std::fs::write(dir.path().join(RECOGNITION_MODEL), b"rewritten").expect("a file");
        let rewritten = model_path(dir.path(), RECOGNITION_MODEL).expect("the rewrite");
        assert_eq!(rewritten, dir.path().join(RECOGNITION_MODEL));
        // Models that are never rewritten have nothing to fall back to.
        let v6 = model_path(dir.path(), V6_RECOGNITION_MODEL).expect_err("no v6 model");
        assert!(v6.to_string().contains(V6_RECOGNITION_MODEL), "{v6}");
    }
}
