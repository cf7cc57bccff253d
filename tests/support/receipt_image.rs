//! Receipt images for tests, rendered from known text with a real font, so
//! that what OCR should find is known exactly.

use std::io::Cursor;

use ab_glyph::{FontVec, PxScale};
use image::{GrayImage, ImageFormat, Luma};

/// Debian's fonts-dejavu-core; `TEST_FONT` points elsewhere.
const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

pub fn font() -> FontVec {
    let path = std::env::var("TEST_FONT").unwrap_or_else(|_| DEFAULT_FONT.to_string());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!("cannot read font {path} ({e}): install fonts-dejavu-core or set TEST_FONT")
    });
    FontVec::try_from_vec(bytes).expect("a TrueType font")
}

/// Render lines of text, black on white, like a clean scan at ~300 dpi.
pub fn render(lines: &[&str]) -> GrayImage {
    let font = font();
    let scale = PxScale::from(36.0);
    let line_height = 52;
    let height = 80 + line_height * lines.len() as u32;
    let mut image = GrayImage::from_pixel(900, height, Luma([255]));
    for (i, line) in lines.iter().enumerate() {
        let y = 40 + line_height as i32 * i as i32;
        imageproc::drawing::draw_text_mut(&mut image, Luma([0]), 50, y, scale, &font, line);
    }
    image
}

pub fn encode(image: &GrayImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, format)
        .expect("encoding an in-memory image");
    out.into_inner()
}

/// The receipt most tests upload, and what it says.
pub struct KnownReceipt {
    pub store: &'static str,
    pub total: f64,
    pub items: &'static [(&'static str, f64, f64)],
    pub lines: &'static [&'static str],
}

pub const CORNER_MARKET: KnownReceipt = KnownReceipt {
    store: "CORNER MARKET",
    total: 17.47,
    items: &[
        ("Milk", 2.0, 3.99),
        ("Bread", 1.0, 2.50),
        ("Apples", 3.0, 2.33),
    ],
    lines: &[
        "CORNER MARKET",
        "12 Main Street",
        "Date: 03/14/2024",
        "Milk 2 x 3.99        7.98",
        "Bread                2.50",
        "Apples 3 x 2.33      6.99",
        "TOTAL               17.47",
        "CASH                20.00",
        "CHANGE               2.53",
    ],
};

pub fn corner_market_png() -> Vec<u8> {
    encode(&render(CORNER_MARKET.lines), ImageFormat::Png)
}

/// A receipt with everything receipt APIs return: subtotal, tax, payment,
/// time, address and phone. Line `i` is drawn at y = 40 + 52 i.
pub const HARBOR_CAFE: &[&str] = &[
    "HARBOR CAFE",
    "45 Ocean Avenue",
    "Tel: (503) 555-0142",
    "Date: 06/21/2024 Time: 14:35",
    "Coffee 2 x 3.50       7.00",
    "Bagel                 4.25",
    "SUBTOTAL             11.25",
    "TAX                   0.90",
    "TOTAL                12.15",
    "VISA                 12.15",
];

/// The band of rows where line `i` of a rendered receipt is drawn.
pub fn line_band(i: u32) -> std::ops::Range<u32> {
    let top = 40 + 52 * i;
    top.saturating_sub(8)..top + 52
}

/// A small real JPEG whose header claims `width` × `height` pixels: a
/// decompression bomb's shape (a few hundred bytes that would decode to
/// gigabytes).
pub fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = encode(&GrayImage::new(8, 8), ImageFormat::Jpeg);
    let frame = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline JPEG has a frame header");
    // Marker, length (2), precision (1), then height and width.
    jpeg[frame + 5..frame + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[frame + 7..frame + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

/// A PNG of `lines` whose header is whole and whose pixel data is not:
/// it passes the upload's checks and fails decoding in a worker.
pub fn corrupt_png(lines: &[&str]) -> Vec<u8> {
    let mut png = encode(&render(lines), ImageFormat::Png);
    let data = png
        .windows(4)
        .position(|w| w == b"IDAT")
        .expect("a PNG has image data")
        + 4;
    // After the two-byte zlib header: a final block of the reserved type.
    png[data + 2] = 0xFF;
    png
}

/// A real PNG whose header (CRC and all) claims `width` × `height` pixels.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = encode(&GrayImage::new(8, 8), ImageFormat::Png);
    let kind = png
        .windows(4)
        .position(|w| w == b"IHDR")
        .expect("a PNG has a header");
    png[kind + 4..kind + 8].copy_from_slice(&width.to_be_bytes());
    png[kind + 8..kind + 12].copy_from_slice(&height.to_be_bytes());
    // The chunk's CRC covers its type and data (13 bytes for IHDR).
    let crc = crc32(&png[kind..kind + 4 + 13]);
    png[kind + 17..kind + 21].copy_from_slice(&crc.to_be_bytes());
    png
}

/// PNG's CRC-32 (IEEE, reflected), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
