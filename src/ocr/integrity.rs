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

/// Reject files whose format says they end somewhere they do not.
pub fn check_whole(bytes: &[u8]) -> Result<(), IntegrityError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && !jpeg_has_end(bytes) {
        return Err(IntegrityError::TruncatedJpeg);
    }
    Ok(())
}

/// Whether the first image in the file reaches its end-of-image marker,
/// walking its segments from the start: each marker segment by its
/// length, each scan's entropy-coded data to the next marker (in it every
/// 0xFF is followed by 0x00 or a restart marker). What follows the end
/// marker (a Motion Photo's video, a phone maker's trailer) is not read,
/// so its bytes cannot pass for markers. Stray bytes between segments are
/// skipped as decoders skip them. One memchr pass over the file at most.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let next_ff = |from: usize| {
        let rest = bytes.get(from..)?;
        memchr::memchr(0xFF, rest).map(|found| from + found)
    };
    let mut at = 2; // after the start-of-image marker
    loop {
        let Some(mut marker_at) = next_ff(at) else {
            return false;
        };
        // 0xFF fill bytes may come before a marker.
        while bytes.get(marker_at + 1) == Some(&0xFF) {
            marker_at += 1;
        }
        let Some(&marker) = bytes.get(marker_at + 1) else {
            return false;
        };
        at = marker_at + 2;
        match marker {
            0xD9 => return true,
            // Markers without a length: restarts, TEM, and a stuffed 0x00
            // met between segments.
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(length) = bytes.get(at..at + 2) else {
            return false;
        };
        at += usize::from(u16::from_be_bytes([length[0], length[1]]));
        if marker == 0xDA {
            // The entropy-coded data: up to the first marker that is not
            // a stuffed 0x00 or a restart marker.
            loop {
                let Some(ff) = next_ff(at) else { return false };
                match bytes.get(ff + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7 | 0xFF) => at = ff + 1,
                    Some(_) => {
                        at = ff;
                        break;
                    }
                }
            }
        }
    }
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
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF,
            0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9,
        ];
        assert!(check_whole(&whole).is_ok());
    }

    fn encoded_jpeg() -> Vec<u8> {
        let picture =
            image::GrayImage::from_fn(64, 48, |x, y| image::Luma([(x * 3 + y * 5) as u8]));
        let mut jpeg = Vec::new();
        picture
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .expect("encoded");
        jpeg
    }

    #[test]
    fn a_real_jpeg_is_whole_and_cut_anywhere_in_its_scan_it_is_not() {
        let jpeg = encoded_jpeg();
        assert!(check_whole(&jpeg).is_ok());
        let scan = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xDA])
            .expect("a scan");
        for cut in [scan + 1, scan + 20, (scan + jpeg.len()) / 2, jpeg.len() - 1] {
            assert!(
                check_whole(&jpeg[..cut]).is_err(),
                "cut at {cut} of {}",
                jpeg.len()
            );
        }
    }

    #[test]
    fn what_follows_the_end_marker_is_not_read() {
        // A Motion Photo's video or a maker's trailer, with marker-like bytes.
        let mut photo = encoded_jpeg();
        photo.extend_from_slice(&[0x00, 0x00, 0x00, 0x18, b'f', b't', b'y', b'p']);
        photo.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x12, 0xFF, 0xD8, 0x34, 0x56]);
        assert!(check_whole(&photo).is_ok());
    }

    #[test]
    fn other_formats_pass() {
        assert!(check_whole(b"\x89PNG\r\n\x1a\n....").is_ok());
    }
}
