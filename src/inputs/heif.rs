//! HEIC/HEIF photos (the iPhone camera's default) and AVIF, decoded by
//! Debian's libheif through its `heif-convert` tool into a PNG that we
//! then read as any other image.
//!
//! Orientation: libheif applies the file's own rotation and mirror boxes
//! (`irot`, `imir`) while decoding. A file without them may still carry an
//! EXIF orientation (libheif 1.15's `heif-enc` writes such files, and so do
//! some cameras); that one we apply ourselves. Applying EXIF on top of
//! `irot` would turn the picture twice, so EXIF is used only without them.

use image::metadata::Orientation;
use image::{GrayImage, ImageFormat};

use super::tool::{self, Limits};
use super::{InputError, heif_items};
use crate::ocr::preprocess::{self, PreprocessError};

/// HEIF brands (the `ftyp` box's major or compatible brands) we read.
const HEIC_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
];
const AVIF_BRANDS: &[&[u8; 4]] = &[b"avif", b"avis"];

/// Which of the two a file is, from its `ftyp` box; `None` for neither.
/// AVIF wins when a file names both (AVIF files list `mif1` too).
pub fn sniff(bytes: &[u8]) -> Option<HeifKind> {
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let brands = bytes.get(8..size.min(bytes.len()).max(12))?;
    let names = |list: &[&[u8; 4]]| brands.chunks(4).any(|b| list.iter().any(|l| b == *l));
    if names(AVIF_BRANDS) {
        Some(HeifKind::Avif)
    } else if names(HEIC_BRANDS) {
        Some(HeifKind::Heic)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeifKind {
    Heic,
    Avif,
}

/// The largest image size any `ispe` (image spatial extents) box claims,
/// read without decoding; `None` when there is none.
pub fn claimed_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut largest: Option<(u32, u32)> = None;
    let mut from = 0;
    while let Some(at) = find(&bytes[from..], b"ispe").map(|i| i + from) {
        // size(4) "ispe" version+flags(4) width(4) height(4)
        let field = |offset: usize| -> Option<u32> {
            Some(u32::from_be_bytes(
                bytes.get(at + offset..at + offset + 4)?.try_into().ok()?,
            ))
        };
        if let (Some(width), Some(height)) = (field(8), field(12)) {
            let bigger = largest.is_none_or(|(w, h)| {
                u64::from(width) * u64::from(height) > u64::from(w) * u64::from(h)
            });
            if bigger {
                largest = Some((width, height));
            }
        }
        from = at + 4;
    }
    largest
}

/// Refuse a file whose header claims more than `max_pixels`.
pub fn check_size(bytes: &[u8], max_pixels: u64) -> Result<(), PreprocessError> {
    match claimed_size(bytes) {
        Some((width, height)) if u64::from(width) * u64::from(height) > max_pixels => {
            Err(PreprocessError::TooManyPixels {
                width,
                height,
                limit: max_pixels,
            })
        }
        _ => Ok(()),
    }
}

/// The most top-level images (a burst's photos) a file may hold: only the
/// first is read, but `heif-convert` decodes every one.
pub const MAX_HEIF_IMAGES: usize = 8;

/// Refuse a file of more than [`MAX_HEIF_IMAGES`] top-level images,
/// counted from its boxes (one whose boxes cannot be read is left to
/// libheif, which says what is wrong).
pub fn check_images(bytes: &[u8]) -> Result<(), InputError> {
    match heif_items::top_level_images(bytes) {
        Some(images) if images > MAX_HEIF_IMAGES => Err(InputError::TooManyImages {
            images,
            limit: MAX_HEIF_IMAGES,
        }),
        _ => Ok(()),
    }
}

fn heif_error(error: tool::ToolError) -> InputError {
    match error {
        tool::ToolError::Failed { stderr, .. } => InputError::UnreadableHeif(stderr),
        other => InputError::Tool(other),
    }
}

/// Decode to a grey image, upright.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<GrayImage, InputError> {
    check_size(bytes, max_pixels)?;
    check_images(bytes)?;
    let dir = tempfile::tempdir().map_err(InputError::TempFile)?;
    let (input, output) = (dir.path().join("upload.heic"), dir.path().join("page.png"));
    std::fs::write(&input, bytes).map_err(InputError::TempFile)?;
    let args = [input.as_os_str(), output.as_os_str()];
    let limits = Limits::printing(64 * 1024).for_pixels(max_pixels);
    tool::run("heif-convert", &args, limits).map_err(heif_error)?;
    // A file of several top-level images (a burst) makes the converter
    // write `page-1.png`, `page-2.png`, …: the first is read.
    let first = dir.path().join("page-1.png");
    let png = match std::fs::read(&output) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::read(&first),
        read => read,
    };
    let png = png.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            InputError::UnreadableHeif("heif-convert wrote no image".to_string())
        }
        _ => InputError::TempFile(e),
    })?;
    // What was decoded, not what the file claimed, is held to the limit.
    preprocess::check_dimensions(&png, max_pixels)?;
    // The PNG's own EXIF copy is ignored: the orientation is decided below.
    let mut picture = image::load_from_memory_with_format(&png, ImageFormat::Png)
        .map_err(|e| InputError::UnreadableHeif(e.to_string()))?;
    picture.apply_orientation(orientation(bytes));
    Ok(picture.into_luma8())
}

/// The EXIF orientation to apply: none when the file rotates or mirrors
/// itself (libheif has done it), else what its EXIF block says.
pub fn orientation(bytes: &[u8]) -> Orientation {
    let transformed = [b"irot", b"imir"].iter().any(|kind| has_box(bytes, kind));
    if transformed {
        return Orientation::NoTransforms;
    }
    exif_block(bytes)
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

/// A property box of `kind`: the small fixed size that `irot` and `imir`
/// have (9 bytes) just before the name rules out chance matches in pixels.
fn has_box(bytes: &[u8], kind: &[u8; 4]) -> bool {
    bytes
        .windows(8)
        .any(|w| &w[4..] == kind && w[..4] == 9u32.to_be_bytes())
}

/// The TIFF structure of the EXIF item: from its byte-order mark on.
fn exif_block(bytes: &[u8]) -> Option<&[u8]> {
    let start = find(bytes, b"MM\x00\x2a\x00\x00\x00\x08")
        .or_else(|| find(bytes, b"II\x2a\x00\x08\x00\x00\x00"))?;
    Some(&bytes[start..])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len() as u32;
        let mut out = size.to_be_bytes().to_vec();
        out.extend_from_slice(b"ftyp");
        out.extend_from_slice(major);
        out.extend_from_slice(&[0, 0, 0, 0]);
        compatible.iter().for_each(|b| out.extend_from_slice(*b));
        out
    }

    #[test]
    fn heic_and_avif_are_told_apart_by_their_brands() {
        assert_eq!(sniff(&ftyp(b"heic", &[b"mif1"])), Some(HeifKind::Heic));
        assert_eq!(sniff(&ftyp(b"mif1", &[b"heic"])), Some(HeifKind::Heic));
        assert_eq!(sniff(&ftyp(b"avif", &[b"mif1"])), Some(HeifKind::Avif));
        assert_eq!(sniff(&ftyp(b"isom", &[b"mp41"])), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), None);
    }

    #[test]
    fn the_largest_ispe_box_is_the_claimed_size() {
        let mut bytes = ftyp(b"heic", &[]);
        for (w, h) in [(320u32, 240u32), (4032, 3024)] {
            bytes.extend_from_slice(&20u32.to_be_bytes());
            bytes.extend_from_slice(b"ispe\0\0\0\0");
            bytes.extend_from_slice(&w.to_be_bytes());
            bytes.extend_from_slice(&h.to_be_bytes());
        }
        assert_eq!(claimed_size(&bytes), Some((4032, 3024)));
        assert!(check_size(&bytes, 40_000_000).is_ok());
        assert!(check_size(&bytes, 1_000_000).is_err());
    }
}
