//! A HEIF file's top-level images (those libheif lists, and `heif-convert`
//! decodes one after another), counted from its boxes without decoding:
//! the image items of `meta`'s `iinf` that are neither hidden (a grid's
//! tiles) nor another image's thumbnail or auxiliary image (alpha, depth:
//! `iref` `thmb`/`auxl` from them). libheif's own `heif-info` decodes
//! every image to describe it, so it cannot be the check.

use std::collections::HashSet;

/// Item types libheif decodes as images.
const IMAGE_TYPES: &[&[u8; 4]] = &[
    b"hvc1", b"av01", b"grid", b"iden", b"iovl", b"jpeg", b"unci", b"avc1", b"vvc1", b"j2k1",
];

/// How many top-level images `bytes` holds; `None` when its boxes cannot
/// be read (libheif is left to say what is wrong). The boxes are chosen as
/// libheif 1.15 chooses them where a file repeats one: the last `meta`,
/// and in it the first `iinf` and the first `iref` (a crafted file could
/// otherwise show us one photo and libheif ten).
pub fn top_level_images(bytes: &[u8]) -> Option<usize> {
    let meta = boxes(bytes).filter(|b| &b.kind == b"meta").last()?;
    // A full box: version and flags first.
    let children = || boxes(meta.body.get(4..).unwrap_or_default());
    let iinf = children().find(|b| &b.kind == b"iinf")?;
    let images = image_items(iinf.body)?;
    let secondary = match children().find(|b| &b.kind == b"iref") {
        Some(iref) => thumbnails_and_aux(iref.body)?,
        None => HashSet::new(),
    };
    Some(images.iter().filter(|id| !secondary.contains(*id)).count())
}

/// One box: its four-letter type and what follows its header.
struct IsoBox<'a> {
    kind: [u8; 4],
    body: &'a [u8],
}

/// The boxes laid one after another in `bytes`, up to the first that does
/// not fit.
fn boxes(bytes: &[u8]) -> impl Iterator<Item = IsoBox<'_>> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let (kind, header, size) = box_header(rest)?;
        let size = size.unwrap_or(rest.len());
        let body = rest.get(header..size)?;
        rest = &rest[size..];
        Some(IsoBox { kind, body })
    })
}

/// A box header at the start of `bytes`: its type, its length, and the
/// box's whole size (`None`: to the end). A 64-bit size follows a size of
/// 1, and a `uuid` box's 16-byte extended type follows the type.
fn box_header(bytes: &[u8]) -> Option<([u8; 4], usize, Option<usize>)> {
    let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let (header, size) = match size {
        0 => (8, None),
        1 => (16, Some(usize::try_from(read_u64(bytes.get(8..16)?)).ok()?)),
        size => (8, Some(usize::try_from(size).ok()?)),
    };
    let header = if &kind == b"uuid" {
        header + 16
    } else {
        header
    };
    Some((kind, header, size))
}

/// The ids of the image items `iinf` lists that are not hidden.
fn image_items(iinf: &[u8]) -> Option<Vec<u32>> {
    // Version and flags, then the entry count: 16 bits in version 0.
    let entries_at = if *iinf.first()? == 0 { 6 } else { 8 };
    let mut ids = Vec::new();
    for infe in boxes(iinf.get(entries_at..)?).filter(|b| &b.kind == b"infe") {
        let body = infe.body;
        let (version, hidden) = (*body.first()?, body.get(3)? & 1 == 1);
        // Versions 0 and 1 name no item type: nothing libheif decodes.
        let (id, type_at) = match version {
            0 | 1 => continue,
            2 => (u32::from(read_u16(body.get(4..6)?)), 8),
            _ => (read_u32(body.get(4..8)?), 10),
        };
        let item_type = body.get(type_at..type_at + 4)?;
        if !hidden && IMAGE_TYPES.iter().any(|t| &t[..] == item_type) {
            ids.push(id);
        }
    }
    Some(ids)
}

/// The items that are another's thumbnail or auxiliary image. Each
/// reference is read as libheif reads it, from its header on: the source
/// id, a count and that many target ids, whatever its size field says
/// (skipping by the size would read targets where libheif reads sources).
fn thumbnails_and_aux(iref: &[u8]) -> Option<HashSet<u32>> {
    // Item ids are 32-bit from version 1 on.
    let id_size = if *iref.first()? == 0 { 2 } else { 4 };
    let read_id = |bytes: &[u8]| match id_size {
        2 => u32::from(read_u16(bytes)),
        _ => read_u32(bytes),
    };
    let mut from = HashSet::new();
    let mut at = 4;
    while at < iref.len() {
        let (kind, header, _) = box_header(iref.get(at..)?)?;
        let source = iref.get(at + header..at + header + id_size)?;
        let count_at = at + header + id_size;
        let count = usize::from(read_u16(iref.get(count_at..count_at + 2)?));
        if &kind == b"thmb" || &kind == b"auxl" {
            from.insert(read_id(source));
        }
        at = count_at + 2 + count * id_size;
    }
    Some(from)
}

fn read_u16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut eight = [0; 8];
    eight.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(eight)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    /// An `infe` of version 2: id, no protection, type, hidden or not.
    fn infe(id: u16, kind: &[u8; 4], hidden: bool) -> Vec<u8> {
        let mut body = vec![2, 0, 0, u8::from(hidden)];
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(kind);
        body.push(0); // an empty name
        iso_box(b"infe", &body)
    }

    fn iref_of(references: &[(&[u8; 4], u16, u16)]) -> Vec<u8> {
        let mut iref = vec![0, 0, 0, 0];
        for (kind, from, to) in references {
            let mut body = from.to_be_bytes().to_vec();
            body.extend_from_slice(&1u16.to_be_bytes());
            body.extend_from_slice(&to.to_be_bytes());
            iref.extend_from_slice(&iso_box(kind, &body));
        }
        iref
    }

    fn meta(items: &[Vec<u8>], iref: &[u8]) -> Vec<u8> {
        let mut iinf = vec![0, 0, 0, 0];
        iinf.extend_from_slice(&(items.len() as u16).to_be_bytes());
        items.iter().for_each(|item| iinf.extend_from_slice(item));
        let mut meta = vec![0, 0, 0, 0];
        meta.extend_from_slice(&iso_box(b"iinf", &iinf));
        meta.extend_from_slice(&iso_box(b"iref", iref));
        iso_box(b"meta", &meta)
    }

    fn file_of(metas: &[Vec<u8>]) -> Vec<u8> {
        let mut out = iso_box(b"ftyp", b"heic\0\0\0\0mif1heic");
        metas.iter().for_each(|meta| out.extend_from_slice(meta));
        out.extend_from_slice(&iso_box(b"mdat", &[0; 16]));
        out
    }

    fn file(items: &[Vec<u8>], references: &[(&[u8; 4], u16, u16)]) -> Vec<u8> {
        file_of(&[meta(items, &iref_of(references))])
    }

    #[test]
    fn hidden_tiles_thumbnails_aux_images_and_metadata_are_not_top_level() {
        let items = [
            infe(1, b"grid", false),
            infe(2, b"hvc1", true),
            infe(3, b"hvc1", true),
            infe(4, b"hvc1", false),
            infe(5, b"hvc1", false),
            infe(6, b"Exif", false),
            infe(7, b"av01", false),
        ];
        let references = [
            (b"dimg", 1, 2),
            (b"dimg", 1, 3),
            (b"thmb", 4, 1),
            (b"auxl", 5, 1),
        ];
        // The grid and the second photo (id 7).
        assert_eq!(top_level_images(&file(&items, &references)), Some(2));
    }

    /// Crafted files a reviewer made libheif read differently from us.
    #[test]
    fn repeated_boxes_and_lying_reference_sizes_are_read_as_libheif_reads_them() {
        let photos: Vec<_> = (1..=10).map(|id| infe(id, b"hvc1", false)).collect();
        let ten = meta(&photos, &iref_of(&[]));
        assert_eq!(
            top_level_images(&file_of(std::slice::from_ref(&ten))),
            Some(10)
        );
        // A decoy `meta` of one photo before the real one: libheif keeps the last.
        let decoy = meta(&photos[..1], &iref_of(&[]));
        assert_eq!(top_level_images(&file_of(&[decoy, ten])), Some(10));
        // Two `iref`s, the thumbnails in the second: libheif reads the first.
        let thumbnails: Vec<_> = (2..=10).map(|id| (b"thmb", id, 1)).collect();
        let mut second_iref = meta(&photos, &iref_of(&[]));
        second_iref.extend_from_slice(&iso_box(b"iref", &iref_of(&thumbnails)));
        let size = (second_iref.len() as u32).to_be_bytes();
        second_iref[..4].copy_from_slice(&size);
        assert_eq!(top_level_images(&file_of(&[second_iref])), Some(10));
        // A reference whose size covers one target but whose count says 64:
        // libheif reads the `thmb` boxes after it as its targets.
        let mut lying = vec![0, 0, 0, 0];
        let mut reference = 1u16.to_be_bytes().to_vec();
        reference.extend_from_slice(&64u16.to_be_bytes());
        reference.extend_from_slice(&1u16.to_be_bytes());
        lying.extend_from_slice(&iso_box(b"dimg", &reference));
        lying.extend_from_slice(&iref_of(&thumbnails)[4..]);
        let crafted = file_of(&[meta(&photos, &lying)]);
        assert_eq!(top_level_images(&crafted), Some(10));
        // The same thumbnails told plainly are not top-level images.
        let plain = file_of(&[meta(&photos, &iref_of(&thumbnails))]);
        assert_eq!(top_level_images(&plain), Some(1));
    }

    #[test]
    fn boxes_that_do_not_add_up_are_not_counted() {
        assert_eq!(top_level_images(b"\0\0\0\x10ftypheic"), None);
        let mut cut = file(&[infe(1, b"hvc1", false)], &[]);
        cut.truncate(40);
        assert_eq!(top_level_images(&cut), None);
    }
}
