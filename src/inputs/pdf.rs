//! PDFs through Debian's poppler tools: `pdfinfo` for the page count,
//! encryption and page sizes, `pdftotext -bbox` for a page's text layer
//! with each word's box, and `pdftoppm` to rasterise a page that has none.
//! The file is handed to them in a private temporary directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::InputError;
use super::tool::{self, Limits};

/// Resolution scanned pages are rasterised at. Measured on a generated
/// scanned receipt (README, "Inputs"): 200 dpi is the lowest that read
/// every field of its large print, 300 keeps a step of margin for real
/// receipts' smaller print, and higher ones cost time and read no more.
pub const RASTER_DPI: u32 = 300;

/// The most `pdftotext` or `pdfinfo` may print for one document.
const MAX_TEXT_OUTPUT: usize = 8 * 1024 * 1024;

/// What `pdfinfo` says about a document.
#[derive(Debug, Clone, PartialEq)]
pub struct PdfInfo {
    pub pages: usize,
    /// Width and height of each page in points (1/72 inch), in order.
    pub page_sizes: Vec<(f32, f32)>,
}

impl PdfInfo {
    /// Refuse a document over `max_pages` pages, or with a page that would
    /// rasterise at [`RASTER_DPI`] to more than `max_pixels`.
    pub fn check(&self, max_pages: usize, max_pixels: u64) -> Result<(), InputError> {
        if self.pages == 0 {
            return Err(InputError::UnreadablePdf("it has no pages".into()));
        }
        if self.pages > max_pages {
            return Err(InputError::TooManyPages {
                pages: self.pages,
                limit: max_pages,
            });
        }
        for (index, &(width, height)) in self.page_sizes.iter().enumerate() {
            let (width, height) = (to_pixels(width), to_pixels(height));
            if u64::from(width) * u64::from(height) > max_pixels {
                return Err(InputError::PageTooLarge {
                    page: index + 1,
                    width,
                    height,
                    limit: max_pixels,
                });
            }
        }
        Ok(())
    }
}

/// Points to pixels at [`RASTER_DPI`].
pub fn to_pixels(points: f32) -> u32 {
    (points.max(0.0) * RASTER_DPI as f32 / 72.0).round() as u32
}

/// A PDF written to a private temporary directory for the tools to read;
/// the directory goes when this is dropped.
pub struct PdfFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl PdfFile {
    pub fn write(bytes: &[u8]) -> Result<Self, InputError> {
        let dir = tempfile::tempdir().map_err(InputError::TempFile)?;
        let path = dir.path().join("upload.pdf");
        std::fs::write(&path, bytes).map_err(InputError::TempFile)?;
        Ok(Self { _dir: dir, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Page count and sizes; an encrypted or broken file is an error here.
    pub fn info(&self, max_pages: usize) -> Result<PdfInfo, InputError> {
        let last = (max_pages + 1).to_string();
        let args = [
            OsStr::new("-f"),
            OsStr::new("1"),
            OsStr::new("-l"),
            OsStr::new(&last),
            self.path.as_os_str(),
        ];
        let out =
            tool::run("pdfinfo", &args, Limits::printing(MAX_TEXT_OUTPUT)).map_err(pdf_error)?;
        parse_info(&String::from_utf8_lossy(&out))
    }

    /// The `pdftotext -bbox` XHTML of the whole document.
    pub fn words_xhtml(&self) -> Result<String, InputError> {
        // The crop box, as pdfinfo measures pages and pdftoppm draws them.
        let args = [
            OsStr::new("-bbox"),
            OsStr::new("-cropbox"),
            self.path.as_os_str(),
            OsStr::new("-"),
        ];
        let out =
            tool::run("pdftotext", &args, Limits::printing(MAX_TEXT_OUTPUT)).map_err(pdf_error)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Page `page` (1-based) as a PNG at [`RASTER_DPI`], drawn in grey;
    /// `max_pixels` bounds the page (checked against the limit before).
    pub fn rasterise(&self, page: usize, max_pixels: u64) -> Result<Vec<u8>, InputError> {
        let (page, dpi) = (page.to_string(), RASTER_DPI.to_string());
        let args = [
            OsStr::new("-r"),
            OsStr::new(&dpi),
            OsStr::new("-f"),
            OsStr::new(&page),
            OsStr::new("-l"),
            OsStr::new(&page),
            OsStr::new("-singlefile"),
            // The crop box, the page pdfinfo measured against the pixel
            // limit; the media box may be far larger (a press's bleed, or
            // a file made to draw 900 MP from an accepted page).
            OsStr::new("-cropbox"),
            OsStr::new("-gray"),
            OsStr::new("-png"),
            self.path.as_os_str(),
        ];
        // poppler (22.12) writes `-gray` pages as 8-bit RGB PNGs: up to 3
        // bytes a pixel on a noisy page, and the framing.
        let max_png = max_pixels.saturating_mul(3).saturating_add(1 << 20);
        let max_png = usize::try_from(max_png).unwrap_or(usize::MAX);
        let limits = Limits::printing(max_png).for_pixels(max_pixels);
        tool::run("pdftoppm", &args, limits).map_err(pdf_error)
    }
}

/// Inspect a PDF given as bytes (at upload).
pub fn inspect(bytes: &[u8], max_pages: usize) -> Result<PdfInfo, InputError> {
    PdfFile::write(bytes)?.info(max_pages)
}

/// A poppler failure as what it means for the document.
fn pdf_error(error: tool::ToolError) -> InputError {
    let stderr = error.stderr();
    if stderr.contains("Incorrect password") {
        return InputError::EncryptedPdf;
    }
    match error {
        tool::ToolError::Failed { .. } => {
            let reason = stderr.lines().last().unwrap_or("no reason given");
            InputError::UnreadablePdf(reason.trim().to_string())
        }
        other => InputError::Tool(other),
    }
}

fn parse_info(text: &str) -> Result<PdfInfo, InputError> {
    let mut info = PdfInfo {
        pages: 0,
        page_sizes: Vec::new(),
    };
    for line in text.lines() {
        if let Some(pages) = line.strip_prefix("Pages:") {
            info.pages = pages.trim().parse().unwrap_or(0);
        } else if let Some(size) = line.strip_prefix("Page").and_then(page_size) {
            info.page_sizes.push(size);
        }
    }
    if info.pages == 0 {
        return Err(InputError::UnreadablePdf("poppler found no pages".into()));
    }
    Ok(info)
}

/// `   1 size: 612 x 792 pts (letter)` → (612, 792).
fn page_size(line: &str) -> Option<(f32, f32)> {
    let (_, rest) = line.split_once("size:")?;
    let mut numbers = rest.split_whitespace();
    let width = numbers.next()?.parse().ok()?;
    let _x = numbers.next()?;
    let height = numbers.next()?.parse().ok()?;
    Some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdfinfo_output_gives_pages_and_sizes() {
        let text = "Encrypted:       no\nPages:           2\nPage    1 size:  200 x 100 pts\n\
                    Page    1 rot:   0\nPage    2 size:  612 x 792 pts (letter)\n";
        let info = parse_info(text).expect("parsed");
        assert_eq!(info.pages, 2);
        assert_eq!(info.page_sizes, vec![(200.0, 100.0), (612.0, 792.0)]);
        assert!(info.check(10, 40_000_000).is_ok());
        assert!(matches!(
            info.check(1, 40_000_000),
            Err(InputError::TooManyPages { pages: 2, limit: 1 })
        ));
        assert!(matches!(
            info.check(10, 1_000_000),
            Err(InputError::PageTooLarge { page: 2, .. })
        ));
    }
}
