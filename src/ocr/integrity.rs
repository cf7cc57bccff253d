//! Checks that an image file is whole before it is read. Decoders are
//! lenient: a JPEG cut off mid-transfer decodes to a partial picture and
//! OCR then reports a wrong receipt as a success. A cut-off file is
//! refused at upload, and is a permanent failure in a worker (a job added
//! by another producer, a blob that changed).

/// Why an image is not whole.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error(
        "the JPEG is truncated or corrupt (its end-of-image marker is missing); upload the whole file again"
    )]
    TruncatedJpeg,
}

const JPEG_START_OF_SCAN: [u8; 2] = [0xFF, 0xDA];
const JPEG_END_OF_IMAGE: [u8; 2] = [0xFF, 0xD9];

/// Reject files whose format says they end somewhere they do not.
pub fn check_whole(bytes: &[u8]) -> Result<(), IntegrityError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && !jpeg_has_end(bytes) {
        return Err(IntegrityError::TruncatedJpeg);
    }
    Ok(())
}

/// In a JPEG's entropy-coded data every 0xFF byte is followed by 0x00, so
/// FF D9 after the last start-of-scan can only be the real end marker.
/// (memchr's searches: a few microseconds for a phone photo, cheap enough
/// for every upload.)
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let last_scan = memchr::memmem::rfind(bytes, &JPEG_START_OF_SCAN).unwrap_or(0);
    memchr::memmem::find(&bytes[last_scan..], &JPEG_END_OF_IMAGE).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_without_its_end_marker_is_truncated() {
        let cut = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0xFF, 0xDA, 0x12, 0x34];
        assert!(check_whole(&cut).is_err());
    }

    #[test]
    fn a_jpeg_with_its_end_marker_is_whole() {
        let whole = [
            0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xDA, 0x12, 0xFF, 0x00, 0xFF, 0xD9,
        ];
        assert!(check_whole(&whole).is_ok());
    }

    #[test]
    fn other_formats_pass() {
        assert!(check_whole(b"\x89PNG\r\n\x1a\n....").is_ok());
    }
}
