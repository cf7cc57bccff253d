//! PDFs and HEIC photos for tests, made from known text: hand-written PDFs
//! (a text layer, or a JPEG scan wrapped with DCTDecode), encrypted by
//! `qpdf`, and HEIC files encoded by libheif's `heif-enc` from a JPEG that
//! carries an EXIF orientation.

use std::process::Command;

use image::{GrayImage, ImageFormat};

use super::receipt_image::{encode, render};

/// One PDF page: lines of text, or a scanned picture at `dpi`.
pub enum PdfPage<'a> {
    Text(&'a [&'a str]),
    Scan { image: GrayImage, dpi: u32 },
}

/// A PDF with `pages` in order.
pub fn pdf(pages: Vec<PdfPage>) -> Vec<u8> {
    pdf_with_bleed(pages, 0)
}

/// The same with each page's media box `bleed` points larger to the top
/// and right than its crop box (the printed area, as a press would get
/// it); viewers show the crop box.
pub fn pdf_with_bleed(pages: Vec<PdfPage>, bleed: u32) -> Vec<u8> {
    let mut objects: Vec<Vec<u8>> = vec![Vec::new(), Vec::new()];
    objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>".to_vec());
    let mut kids = Vec::new();
    for page in pages {
        let (width, height, content, resources) = match page {
            PdfPage::Text(lines) => text_page(lines),
            PdfPage::Scan { image, dpi } => {
                let number = objects.len() + 1;
                objects.push(jpeg_object(&image));
                scan_page(&image, dpi, number)
            }
        };
        objects.push(stream(&content));
        let content_number = objects.len();
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] \
                 /CropBox [0 0 {width} {height}] \
                 /Contents {content_number} 0 R /Resources {resources} >>",
                width + bleed,
                height + bleed
            )
            .into_bytes(),
        );
        kids.push(format!("{} 0 R", objects.len()));
    }
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>".to_vec();
    objects[1] = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        kids.len()
    )
    .into_bytes();
    assemble(&objects)
}

/// A receipt printed in Courier 10 pt on a 3-inch-wide page.
fn text_page(lines: &[&str]) -> (u32, u32, Vec<u8>, String) {
    let height = 40 + 14 * lines.len() as u32;
    let mut content = String::from("BT /F1 10 Tf 12 TL ");
    content += &format!("14 {} Td ", height - 24);
    for line in lines {
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        content += &format!("({escaped}) Tj T* ");
    }
    content += "ET";
    let resources = "<< /Font << /F1 3 0 R >> >>".to_string();
    (216, height, content.into_bytes(), resources)
}

/// A page exactly the size of `image` at `dpi`, the image filling it.
fn scan_page(image: &GrayImage, dpi: u32, image_object: usize) -> (u32, u32, Vec<u8>, String) {
    let width = image.width() * 72 / dpi;
    let height = image.height() * 72 / dpi;
    let content = format!("q {width} 0 0 {height} 0 0 cm /Im0 Do Q").into_bytes();
    let resources = format!("<< /XObject << /Im0 {image_object} 0 R >> >>");
    (width, height, content, resources)
}

fn jpeg_object(image: &GrayImage) -> Vec<u8> {
    let jpeg = encode(image, ImageFormat::Jpeg);
    let mut object = format!(
        "<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray \
         /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>\nstream\n",
        image.width(),
        image.height(),
        jpeg.len()
    )
    .into_bytes();
    object.extend_from_slice(&jpeg);
    object.extend_from_slice(b"\nendstream");
    object
}

fn stream(content: &[u8]) -> Vec<u8> {
    let mut object = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
    object.extend_from_slice(content);
    object.extend_from_slice(b"\nendstream");
    object
}

/// Objects numbered from 1, with the cross-reference table and trailer.
fn assemble(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        out.extend_from_slice(object);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// `pdf` encrypted by `qpdf` (AES-256) with user password `password`.
pub fn encrypted(pdf: &[u8], password: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (plain, locked) = (dir.path().join("plain.pdf"), dir.path().join("locked.pdf"));
    std::fs::write(&plain, pdf).expect("writing the PDF");
    let status = Command::new("qpdf")
        .args(["--encrypt", password, "owner-secret", "256", "--"])
        .arg(&plain)
        .arg(&locked)
        .status()
        .expect("qpdf runs (scripts/deps.sh installs it)");
    assert!(status.success(), "qpdf failed");
    std::fs::read(&locked).expect("the encrypted PDF")
}

/// A scanned receipt: `lines` rendered as a ~300 dpi scan.
pub fn scanned(lines: &[&str]) -> PdfPage<'static> {
    PdfPage::Scan {
        image: render(lines),
        dpi: 300,
    }
}

/// A JPEG of `upright` stored turned a quarter to the left, with EXIF
/// orientation 6 ("turn 90° clockwise to view") so a viewer shows it
/// upright.
pub fn jpeg_stored_sideways(upright: &GrayImage) -> Vec<u8> {
    let stored = image::imageops::rotate270(upright);
    let jpeg = encode(&stored, ImageFormat::Jpeg);
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01".to_vec();
    tiff.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0x00, 0x06, 0, 0]);
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let length = (app1.len() + 2) as u16;
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// `jpeg` encoded by `heif-enc` as HEIC (or AVIF with `avif`); the EXIF
/// block goes with it.
pub fn heif_from_jpeg(jpeg: &[u8], avif: bool) -> Vec<u8> {
    heif_from_jpegs(&[jpeg], avif)
}

/// Several JPEGs as the top-level images of one HEIC (or AVIF), the first
/// one first: a burst, say.
pub fn heif_from_jpegs(jpegs: &[&[u8]], avif: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let extension = if avif { "avif" } else { "heic" };
    let output = dir.path().join(format!("photo.{extension}"));
    let mut command = Command::new("heif-enc");
    if avif {
        command.arg("--avif");
    }
    for (i, jpeg) in jpegs.iter().enumerate() {
        let input = dir.path().join(format!("photo-{i}.jpg"));
        std::fs::write(&input, jpeg).expect("writing the JPEG");
        command.arg(input);
    }
    let status = command
        .arg("-o")
        .arg(&output)
        .status()
        .expect("heif-enc runs (scripts/deps.sh installs libheif-examples)");
    assert!(status.success(), "heif-enc failed");
    std::fs::read(&output).expect("the HEIF file")
}
