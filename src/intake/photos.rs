//! Photos: what an attachment really is (by content, not by its name),
//! its size read from the header before any pixel is decoded, a complete
//! decode to grey levels with EXIF orientation applied, and the small
//! fingerprints the rest of inspection needs.

use serde::Serialize;
use std::io::Cursor;

use super::budget::{Budget, OverBudget};

/// Largest picture accepted, in pixels (SPEC: 50 megapixels).
pub const MAX_PIXELS: u64 = 50_000_000;
/// Shorter side below which a photo is too small to read a card from.
pub const MIN_SIDE: u32 = 300;
/// Memory a decoder may allocate for one picture's pixels before they are
/// turned to grey (GIF, WebP, BMP and the TIFF forms read whole), or for a
/// progressive JPEG's coefficients. PNG and
/// most TIFF are read a row or a strip at a time into grey levels and
/// never need it; JPEG decodes straight to grey. With the grey copy (50 MB
/// at most) and the message itself, one message stays under 200 MB.
const MAX_DECODE_BYTES: u64 = 100 * 1024 * 1024;
/// Largest TIFF strip or tile read at once.
const MAX_TIFF_CHUNK_BYTES: usize = 32 * 1024 * 1024;
/// Rows decoded between two looks at the time budget.
const ROWS_PER_BUDGET_CHECK: usize = 256;

/// An image format recognised by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JPEG (JFIF, EXIF).
    Jpeg,
    /// PNG.
    Png,
    /// GIF (first frame).
    Gif,
    /// WebP (lossy or lossless).
    Webp,
    /// HEIC/HEIF, as iPhones send.
    Heic,
    /// BMP (Windows bitmap), as old scanners and Paint save.
    Bmp,
    /// TIFF, as scanners and some "scan to mail" copiers send.
    Tiff,
}

impl Format {
    /// The lower-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Heic => "heic",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
        }
    }
}

/// Why a photo could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    /// More pixels than [`MAX_PIXELS`], or more than the decoder may use.
    #[error("image declares {width}x{height} pixels, over the limit")]
    Oversized {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The data does not decode completely.
    #[error("image does not decode: {0}")]
    Unreadable(String),
    /// The message's time budget ran out while decoding.
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
}

/// Recognises an image by its first bytes.
pub fn sniff(b: &[u8]) -> Option<Format> {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else if b.len() >= 12 && &b[4..8] == b"ftyp" && is_heif_brand(&b[8..12]) {
        Some(Format::Heic)
    } else if is_bmp(b) {
        Some(Format::Bmp)
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        Some(Format::Tiff)
    } else {
        None
    }
}

/// `BM`, then a DIB header of a size some BMP version uses: two letters
/// alone would take any text starting "BM…" for a picture.
fn is_bmp(b: &[u8]) -> bool {
    b.len() >= 26
        && b.starts_with(b"BM")
        && matches!(
            u32::from_le_bytes([b[14], b[15], b[16], b[17]]),
            12 | 40 | 52 | 56 | 64 | 108 | 124
        )
}

fn is_heif_brand(brand: &[u8]) -> bool {
    matches!(
        brand,
        b"heic"
            | b"heix"
            | b"hevc"
            | b"hevx"
            | b"heim"
            | b"heis"
            | b"hevm"
            | b"hevs"
            | b"mif1"
            | b"msf1"
            | b"mif2"
    )
}

/// True for a file name or declared type that says "picture", whatever the
/// content turns out to be.
pub fn looks_like_image(filename: Option<&str>, declared_type: &str) -> bool {
    if declared_type.starts_with("image/") {
        return true;
    }
    filename
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, ext)| {
            matches!(
                ext.to_ascii_lowercase().as_str(),
                "jpg"
                    | "jpeg"
                    | "jpe"
                    | "jfif"
                    | "png"
                    | "gif"
                    | "webp"
                    | "heic"
                    | "heif"
                    | "bmp"
                    | "tif"
                    | "tiff"
                    | "avif"
                    | "svg"
            )
        })
        .unwrap_or(false)
}

/// A decoded picture in grey levels, upright (EXIF orientation applied).
#[derive(Debug, Clone)]
pub struct Gray {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major grey levels, `width * height` bytes.
    pub pixels: Vec<u8>,
}

impl Gray {
    /// The grey level at (x, y).
    #[inline]
    pub fn at(&self, x: u32, y: u32) -> u8 {
        self.pixels[(y * self.width + x) as usize]
    }
}

fn be16(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(
        b.get(i..i + 2)?.try_into().ok()?,
    )))
}
fn le16(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(
        b.get(i..i + 2)?.try_into().ok()?,
    )))
}
fn be32(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}
fn le24(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i + 3)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

/// Width and height as the file declares them, read without decoding.
pub fn declared_size(b: &[u8], format: Format) -> Option<(u32, u32)> {
    match format {
        Format::Jpeg => jpeg_size(b),
        Format::Png => Some((be32(b, 16)?, be32(b, 20)?)),
        Format::Gif => Some((le16(b, 6)?, le16(b, 8)?)),
        Format::Webp => webp_size(b),
        Format::Heic => heif_size(b),
        Format::Bmp | Format::Tiff => header_size_with_image(b, format),
    }
}

/// The size from the image crate's header reader (no pixel decoded).
fn header_size_with_image(b: &[u8], format: Format) -> Option<(u32, u32)> {
    image::ImageReader::with_format(Cursor::new(b), image_format(format)?)
        .into_dimensions()
        .ok()
}

/// The image crate's name for a format it decodes here.
fn image_format(format: Format) -> Option<image::ImageFormat> {
    match format {
        Format::Png => Some(image::ImageFormat::Png),
        Format::Gif => Some(image::ImageFormat::Gif),
        Format::Webp => Some(image::ImageFormat::WebP),
        Format::Bmp => Some(image::ImageFormat::Bmp),
        Format::Tiff => Some(image::ImageFormat::Tiff),
        Format::Jpeg | Format::Heic => None,
    }
}

fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            i += 1;
            continue;
        }
        let marker = b[i + 1];
        if marker == 0xFF || marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            i += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        let len = be16(b, i + 2)? as usize;
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let h = be16(b, i + 5)?;
            let w = be16(b, i + 7)?;
            return Some((w, h));
        }
        if marker == 0xDA {
            return None;
        }
        i += 2 + len;
    }
    None
}

fn webp_size(b: &[u8]) -> Option<(u32, u32)> {
    match b.get(12..16)? {
        b"VP8 " => Some((le16(b, 26)? & 0x3FFF, le16(b, 28)? & 0x3FFF)),
        b"VP8L" => {
            let v = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
            Some(((v & 0x3FFF) + 1, ((v >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => Some((le24(b, 24)? + 1, le24(b, 27)? + 1)),
        _ => None,
    }
}

/// HEIF: the `ispe` property of the file (largest one, to be safe), found by
/// walking the box tree, so no HEVC decoder is touched.
fn heif_size(b: &[u8]) -> Option<(u32, u32)> {
    let mut best: Option<(u32, u32)> = None;
    let mut pos = 0;
    // ispe sits inside meta/iprp/ipco; a bounded scan for the box type is
    // simpler and equally safe since the box carries its own length.
    while let Some(off) = b[pos..].windows(4).position(|w| w == b"ispe") {
        let at = pos + off;
        if let (Some(w), Some(h)) = (be32(b, at + 8), be32(b, at + 12)) {
            if best
                .is_none_or(|(bw, bh)| u64::from(w) * u64::from(h) > u64::from(bw) * u64::from(bh))
            {
                best = Some((w, h));
            }
        }
        pos = at + 4;
    }
    best
}

/// Refuses a picture whose declared size is over the limit.
pub fn check_size(width: u32, height: u32) -> Result<(), PhotoError> {
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        Err(PhotoError::Oversized { width, height })
    } else {
        Ok(())
    }
}

/// Decodes the whole picture to grey levels and turns it upright.
/// Any damage (a truncated file included) is an error, even where a
/// lenient decoder would paint the missing part grey.
pub fn decode(b: &[u8], format: Format) -> Result<Gray, PhotoError> {
    decode_within(b, format, &Budget::unlimited())
}

/// [`decode`], stopping with [`PhotoError::OverBudget`] once `budget`
/// has run out (checked every few hundred rows of a long picture).
pub fn decode_within(b: &[u8], format: Format, budget: &Budget) -> Result<Gray, PhotoError> {
    let size =
        declared_size(b, format).ok_or_else(|| PhotoError::Unreadable("no image header".into()))?;
    check_size(size.0, size.1)?;
    budget.check()?;
    match format {
        Format::Jpeg => decode_jpeg(b),
        Format::Heic => decode_heif(b),
        Format::Png => decode_png(b, budget),
        Format::Tiff => match decode_tiff(b, budget) {
            Err(TiffRead::Unsupported) => decode_with_image(b, format),
            Err(TiffRead::Failed(e)) => Err(e),
            Ok(g) => Ok(g),
        },
        Format::Gif | Format::Webp | Format::Bmp => decode_with_image(b, format),
    }
}

/// Luma of an 8-bit RGB pixel, the weights the image crate uses (Rec. 709).
#[inline]
fn luma8(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 2126 + u32::from(g) * 7152 + u32::from(b) * 722 + 5000) / 10000) as u8
}

/// Grey level of one pixel of `channels` 8-bit samples (grey, grey+alpha,
/// RGB, RGBA: alpha is ignored, as the image crate's conversion does).
#[inline]
fn grey_of(px: &[u8]) -> u8 {
    match px.len() {
        1 | 2 => px[0],
        _ => luma8(px[0], px[1], px[2]),
    }
}

/// Adam7's seven passes: (x step, x offset, y step, y offset).
const ADAM7: [(u32, u32, u32, u32); 7] = [
    (8, 0, 8, 0),
    (8, 4, 8, 0),
    (4, 0, 8, 4),
    (4, 2, 4, 0),
    (2, 0, 4, 2),
    (2, 1, 2, 0),
    (1, 0, 2, 1),
];

/// PNG a row at a time, every bit depth and colour type reduced to 8-bit
/// samples by the decoder and to one grey byte a pixel here: a 16-bit
/// RGBA picture never exists at 8 bytes a pixel.
fn decode_png(b: &[u8], budget: &Budget) -> Result<Gray, PhotoError> {
    decode_png_with(b, budget, false)
}

#[cfg(test)]
fn decode_png_unchecked_crc(b: &[u8]) -> Result<Gray, PhotoError> {
    decode_png_with(b, &Budget::unlimited(), true)
}

fn decode_png_with(b: &[u8], budget: &Budget, ignore_crc: bool) -> Result<Gray, PhotoError> {
    let bad = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => {
            PhotoError::Unreadable("PNG metadata too large".into())
        }
        other => PhotoError::Unreadable(other.to_string()),
    };
    let mut decoder = png::Decoder::new(Cursor::new(b));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.ignore_checksums(ignore_crc);
    decoder.set_limits(png::Limits {
        bytes: 16 * 1024 * 1024,
    });
    let mut reader = decoder.read_info().map_err(bad)?;
    let info = reader.info();
    let (w, h, interlaced) = (info.width, info.height, info.interlaced);
    check_size(w, h)?;
    let orientation = info
        .exif_metadata
        .as_ref()
        .and_then(|x| exif_orientation_raw(x.to_vec()))
        .unwrap_or(1);
    let channels = reader.output_color_type().0.samples();
    let (wu, hu) = (w as usize, h as usize);
    let mut pixels = vec![0u8; wu * hu];
    let short = || PhotoError::Unreadable("PNG image data ends early".into());
    if interlaced {
        for (xs, xo, ys, yo) in ADAM7 {
            let samples = w.saturating_sub(xo).div_ceil(xs) as usize;
            let lines = h.saturating_sub(yo).div_ceil(ys) as usize;
            if samples == 0 {
                continue;
            }
            for line in 0..lines {
                if line % ROWS_PER_BUDGET_CHECK == 0 {
                    budget.check()?;
                }
                let row = reader.next_row().map_err(bad)?.ok_or_else(short)?;
                let y = line * ys as usize + yo as usize;
                let out = &mut pixels[y * wu..][..wu];
                for (k, px) in row.data().chunks_exact(channels).take(samples).enumerate() {
                    out[k * xs as usize + xo as usize] = grey_of(px);
                }
            }
        }
    } else {
        for (y, out) in pixels.chunks_exact_mut(wu.max(1)).enumerate().take(hu) {
            if y % ROWS_PER_BUDGET_CHECK == 0 {
                budget.check()?;
            }
            let row = reader.next_row().map_err(bad)?.ok_or_else(short)?;
            let data = row.data();
            if data.len() < wu * channels {
                return Err(short());
            }
            for (o, px) in out.iter_mut().zip(data.chunks_exact(channels)) {
                *o = grey_of(px);
            }
        }
    }
    Ok(orient(
        Gray {
            width: w,
            height: h,
            pixels,
        },
        orientation,
    ))
}

/// Why the strip reader did not give a picture.
enum TiffRead {
    /// A form it does not read (planes, CMYK, palette, floats…): the image
    /// crate's whole-picture decoder takes it, within its memory limit.
    Unsupported,
    /// The file is damaged or too large.
    Failed(PhotoError),
}

impl From<OverBudget> for TiffRead {
    fn from(e: OverBudget) -> TiffRead {
        TiffRead::Failed(e.into())
    }
}

/// TIFF a strip or tile at a time into grey levels, for the forms
/// scanners write (grey, grey+alpha, RGB, RGBA; 8 or 16 bits; samples
/// interleaved).
fn decode_tiff(b: &[u8], budget: &Budget) -> Result<Gray, TiffRead> {
    use tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
    use tiff::tags::{PlanarConfiguration, Tag};
    use tiff::ColorType;
    let failed = |e: tiff::TiffError| match e {
        tiff::TiffError::LimitsExceeded => TiffRead::Failed(PhotoError::Oversized {
            width: 0,
            height: 0,
        }),
        other => TiffRead::Failed(PhotoError::Unreadable(other.to_string())),
    };
    let mut limits = Limits::default();
    limits.decoding_buffer_size = MAX_TIFF_CHUNK_BYTES;
    limits.intermediate_buffer_size = MAX_TIFF_CHUNK_BYTES;
    let mut d = Decoder::new(Cursor::new(b))
        .map_err(failed)?
        .with_limits(limits);
    let (w, h) = d.dimensions().map_err(failed)?;
    check_size(w, h).map_err(TiffRead::Failed)?;
    let channels = match d.colortype().map_err(failed)? {
        ColorType::Gray(8 | 16) => 1,
        ColorType::GrayA(8 | 16) => 2,
        ColorType::RGB(8 | 16) => 3,
        ColorType::RGBA(8 | 16) => 4,
        _ => return Err(TiffRead::Unsupported),
    };
    let planar = d
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(failed)?
        .unwrap_or(PlanarConfiguration::Chunky.to_u16());
    if planar != PlanarConfiguration::Chunky.to_u16() {
        return Err(TiffRead::Unsupported);
    }
    let orientation = d
        .find_tag_unsigned::<u32>(Tag::Orientation)
        .ok()
        .flatten()
        .unwrap_or(1);
    let (cw, ch) = d.chunk_dimensions();
    let chunks = match d.get_chunk_type() {
        ChunkType::Strip => d.strip_count().map_err(failed)?,
        ChunkType::Tile => d.tile_count().map_err(failed)?,
    };
    let across = w.div_ceil(cw.max(1)).max(1);
    let (wu, hu) = (w as usize, h as usize);
    let mut pixels = vec![0u8; wu * hu];
    for index in 0..chunks {
        budget.check()?;
        let (dw, dh) = d.chunk_data_dimensions(index);
        let (x0, y0) = ((index % across) * cw, (index / across) * ch);
        let samples: Vec<u8> = match d.read_chunk(index).map_err(failed)? {
            DecodingResult::U8(v) => v,
            DecodingResult::U16(v) => v.into_iter().map(|s| (s >> 8) as u8).collect(),
            _ => return Err(TiffRead::Unsupported),
        };
        // A chunk's rows are as wide as the chunk (tiles) or the image
        // (strips); its data may be padded past the picture's edge.
        let stride = samples.len() / (dh.max(1) as usize);
        if stride < dw as usize * channels {
            return Err(TiffRead::Failed(PhotoError::Unreadable(
                "TIFF strip shorter than it says".into(),
            )));
        }
        for (r, row) in samples.chunks_exact(stride).take(dh as usize).enumerate() {
            let y = y0 as usize + r;
            if y >= hu || x0 >= w {
                break;
            }
            let out = &mut pixels[y * wu + x0 as usize..][..(dw as usize).min(wu - x0 as usize)];
            for (o, px) in out.iter_mut().zip(row.chunks_exact(channels)) {
                // The tiff crate has already inverted WhiteIsZero samples.
                *o = grey_of(px);
            }
        }
    }
    Ok(orient(
        Gray {
            width: w,
            height: h,
            pixels,
        },
        orientation,
    ))
}

/// Memory a progressive JPEG's decoder holds before any pixel comes out:
/// every DCT coefficient of every component (two bytes each), since each
/// scan refines all of them. `None` for a baseline JPEG (decoded a few
/// rows of blocks at a time) or when the header cannot be read.
fn progressive_coefficient_bytes(b: &[u8]) -> Option<u64> {
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            i += 1;
            continue;
        }
        let marker = b[i + 1];
        if marker == 0xFF || marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            i += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        let len = be16(b, i + 2)? as usize;
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            if !matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE) {
                return None;
            }
            let h = u64::from(be16(b, i + 5)?);
            let w = u64::from(be16(b, i + 7)?);
            let n = usize::from(*b.get(i + 9)?);
            let sampling: Vec<(u64, u64)> = (0..n)
                .map(|k| {
                    b.get(i + 11 + 3 * k)
                        .map(|&s| (u64::from(s >> 4).max(1), u64::from(s & 15).max(1)))
                })
                .collect::<Option<_>>()?;
            let hmax = sampling.iter().map(|s| s.0).max()?;
            let vmax = sampling.iter().map(|s| s.1).max()?;
            let blocks: u64 = sampling
                .iter()
                .map(|&(hs, vs)| {
                    (w * hs).div_ceil(hmax).div_ceil(8) * (h * vs).div_ceil(vmax).div_ceil(8)
                })
                .sum();
            return Some(blocks * 64 * 2);
        }
        if marker == 0xDA {
            return None;
        }
        i += 2 + len;
    }
    None
}

fn decode_jpeg(b: &[u8]) -> Result<Gray, PhotoError> {
    use zune_core::colorspace::ColorSpace;
    if progressive_coefficient_bytes(b).is_some_and(|n| n > MAX_DECODE_BYTES) {
        let (width, height) = jpeg_size(b).unwrap_or((0, 0));
        return Err(PhotoError::Oversized { width, height });
    }
    use zune_core::options::DecoderOptions;
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(1 << 16)
        .set_max_height(1 << 16)
        .jpeg_set_out_colorspace(ColorSpace::Luma);
    // zune-jpeg reads zero bits once it meets the end marker and goes on
    // painting the rest of the frame, so a file cut short with an FFD9
    // appended, or a tiny file declaring a huge frame, "decodes". Ones
    // before the end marker instead make a short scan fail: no Huffman
    // code is all ones, so the decoder stops on the first code it reads
    // from them. A complete scan never reaches them (they only add to the
    // padding an encoder puts there anyway).
    let padded = primary_eoi(b).map(|at| {
        let mut v = Vec::with_capacity(b.len() + SHORT_SCAN_FILL.len());
        v.extend_from_slice(&b[..at]);
        v.extend_from_slice(&SHORT_SCAN_FILL);
        v.extend_from_slice(&b[at..]);
        v
    });
    let mut d = zune_jpeg::JpegDecoder::new_with_options(padded.as_deref().unwrap_or(b), options);
    d.decode_headers()
        .map_err(|e| PhotoError::Unreadable(format!("{e:?}")))?;
    let (w, h) = d
        .dimensions()
        .ok_or_else(|| PhotoError::Unreadable("no dimensions".into()))?;
    let orientation = d
        .exif()
        .and_then(|x| exif_orientation_raw(x.clone()))
        .unwrap_or(1);
    let pixels = d
        .decode()
        .map_err(|e| PhotoError::Unreadable(format!("{e:?}")))?;
    if !jpeg_has_end(b) {
        return Err(PhotoError::Unreadable(
            "JPEG ends before its end marker".into(),
        ));
    }
    let (w, h) = (w as u32, h as u32);
    if pixels.len() != (w as usize) * (h as usize) {
        return Err(PhotoError::Unreadable("short pixel data".into()));
    }
    Ok(orient(
        Gray {
            width: w,
            height: h,
            pixels,
        },
        orientation,
    ))
}

/// Stuffed 0xFF bytes (`FF 00`): one-bits in entropy-coded data.
const SHORT_SCAN_FILL: [u8; 128] = {
    let mut f = [0u8; 128];
    let mut i = 0;
    while i < f.len() {
        f[i] = 0xFF;
        i += 2;
    }
    f
};

/// Where the primary image's end-of-image marker sits: markers walked by
/// their lengths (so thumbnails inside APP segments are skipped), scan
/// data skipped to the next marker that is not a restart. `None` when
/// the file has none or is malformed.
fn primary_eoi(b: &[u8]) -> Option<usize> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    loop {
        // Fill bytes before a marker.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if *b.get(i)? != 0xFF {
            return None;
        }
        let marker = *b.get(i + 1)?;
        match marker {
            0xD9 => return Some(i),
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let len = be16(b, i + 2)? as usize;
                i += 2 + len;
                if marker == 0xDA {
                    // Entropy-coded data up to the next real marker.
                    loop {
                        let at = i + b.get(i..)?.iter().position(|&x| x == 0xFF)?;
                        let next = *b.get(at + 1)?;
                        if next == 0x00 || next == 0xFF || (0xD0..=0xD7).contains(&next) {
                            i = at + 1;
                        } else {
                            i = at;
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// A complete JPEG has an end-of-image marker after its scan data. Cameras
/// may append trailers (MPF previews, padding) after it, so look for the
/// marker anywhere past the first scan, not only at the last two bytes.
fn jpeg_has_end(b: &[u8]) -> bool {
    let tail = b.len().saturating_sub(b.len().min(1 << 20));
    let trimmed = {
        let mut e = b.len();
        while e > 0 && matches!(b[e - 1], 0 | b'\r' | b'\n' | b' ') {
            e -= 1;
        }
        e
    };
    if trimmed >= 2 && b[trimmed - 2] == 0xFF && b[trimmed - 1] == 0xD9 {
        return true;
    }
    b[tail..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn exif_orientation_raw(data: Vec<u8>) -> Option<u32> {
    let exif = exif::Reader::new().read_raw(data).ok()?;
    orientation_field(&exif)
}

fn orientation_field(exif: &exif::Exif) -> Option<u32> {
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?
        .value
        .get_uint(0)
}

fn decode_with_image(b: &[u8], format: Format) -> Result<Gray, PhotoError> {
    use image::{ColorType, ImageDecoder};
    let unreadable = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => {
            let (w, h) = declared_size(b, format).unwrap_or((0, 0));
            PhotoError::Oversized {
                width: w,
                height: h,
            }
        }
        other => PhotoError::Unreadable(other.to_string()),
    };
    let fmt = image_format(format)
        .ok_or_else(|| PhotoError::Unreadable(format!("no decoder for {}", format.as_str())))?;
    let mut reader = image::ImageReader::with_format(Cursor::new(b), fmt);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits.max_image_width = Some(1 << 16);
    limits.max_image_height = Some(1 << 16);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(unreadable)?;
    let (w, h) = decoder.dimensions();
    check_size(w, h)?;
    if decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(PhotoError::Oversized {
            width: w,
            height: h,
        });
    }
    let orientation = decoder.orientation().map(|o| o.to_exif()).unwrap_or(1);
    let color = decoder.color_type();
    let mut buf = vec![0u8; decoder.total_bytes() as usize];
    decoder.read_image(&mut buf).map_err(unreadable)?;
    // To grey in place: pixel i's grey byte lands at i, at or before where
    // the pixel itself starts, so nothing is overwritten before it is read.
    let n = w as usize * h as usize;
    let bpp = color.bytes_per_pixel() as usize;
    let sample16 =
        |px: &[u8], i: usize| (u16::from_ne_bytes([px[2 * i], px[2 * i + 1]]) >> 8) as u8;
    for i in 0..n {
        let px = &buf[i * bpp..(i + 1) * bpp];
        let v = match color {
            ColorType::L8 | ColorType::La8 => px[0],
            ColorType::Rgb8 | ColorType::Rgba8 => luma8(px[0], px[1], px[2]),
            ColorType::L16 | ColorType::La16 => sample16(px, 0),
            ColorType::Rgb16 | ColorType::Rgba16 => {
                luma8(sample16(px, 0), sample16(px, 1), sample16(px, 2))
            }
            ColorType::Rgb32F | ColorType::Rgba32F => {
                let f = |k: usize| {
                    let v = f32::from_ne_bytes([
                        px[4 * k],
                        px[4 * k + 1],
                        px[4 * k + 2],
                        px[4 * k + 3],
                    ]);
                    (v.clamp(0.0, 1.0) * 255.0).round() as u8
                };
                luma8(f(0), f(1), f(2))
            }
            other => {
                return Err(PhotoError::Unreadable(format!(
                    "pixel format {other:?} not read"
                )))
            }
        };
        buf[i] = v;
    }
    buf.truncate(n);
    buf.shrink_to_fit();
    Ok(orient(
        Gray {
            width: w,
            height: h,
            pixels: buf,
        },
        u32::from(orientation),
    ))
}

#[cfg(feature = "heic")]
fn decode_heif(b: &[u8]) -> Result<Gray, PhotoError> {
    use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
    let err = |e: libheif_rs::HeifError| PhotoError::Unreadable(e.to_string());
    let lib = LibHeif::new();
    let ctx = HeifContext::read_from_bytes(b).map_err(err)?;
    let handle = ctx.primary_image_handle().map_err(err)?;
    check_size(handle.width(), handle.height())?;
    // libheif applies the file's own rotation and mirroring (irot/imir).
    // The decoder's own colour space, not converted: an iPhone's HEVC is
    // YCbCr 4:2:0, whose Y plane is the grey picture, so a 48 MP "HEIF
    // Max" photo never exists as 147 MB of RGB.
    let img = lib
        .decode(&handle, ColorSpace::Undefined, None)
        .map_err(err)?;
    if let Some(y) = img.planes().y {
        return Ok(grey_from_plane(
            y.data,
            y.width,
            y.height,
            y.stride,
            y.storage_bits_per_pixel,
            y.bits_per_pixel,
        ));
    }
    drop(img);
    // Stored as RGB (rare): interleaved RGB is the conversion every
    // libheif build has.
    let img = lib
        .decode(&handle, ColorSpace::Rgb(RgbChroma::Rgb), None)
        .map_err(err)?;
    let planes = img.planes();
    let rgb = planes
        .interleaved
        .ok_or_else(|| PhotoError::Unreadable("no pixel plane".into()))?;
    let (w, h) = (rgb.width, rgb.height);
    let mut pixels = Vec::with_capacity(w as usize * h as usize);
    for row in 0..h as usize {
        let line = &rgb.data[row * rgb.stride..][..w as usize * 3];
        pixels.extend(line.chunks_exact(3).map(|p| luma8(p[0], p[1], p[2])));
    }
    Ok(Gray {
        width: w,
        height: h,
        pixels,
    })
}

/// A luma plane (8 bits, or up to 16 stored little-endian in two bytes)
/// as grey levels.
#[cfg(feature = "heic")]
fn grey_from_plane(data: &[u8], w: u32, h: u32, stride: usize, storage_bits: u8, bits: u8) -> Gray {
    let (wu, hu) = (w as usize, h as usize);
    let mut pixels = Vec::with_capacity(wu * hu);
    for row in 0..hu {
        let line = &data[row * stride..];
        if storage_bits <= 8 {
            pixels.extend_from_slice(&line[..wu]);
        } else {
            let shift = bits.saturating_sub(8).min(8);
            pixels.extend(
                line[..wu * 2]
                    .chunks_exact(2)
                    .map(|p| (u16::from_le_bytes([p[0], p[1]]) >> shift).min(255) as u8),
            );
        }
    }
    Gray {
        width: w,
        height: h,
        pixels,
    }
}

#[cfg(not(feature = "heic"))]
fn decode_heif(_b: &[u8]) -> Result<Gray, PhotoError> {
    Err(PhotoError::Unreadable(
        "this build reads no HEIC (feature `heic` off)".into(),
    ))
}

/// Applies an EXIF orientation (1–8) to a grey picture.
pub fn orient(g: Gray, orientation: u32) -> Gray {
    let (w, h) = (g.width as usize, g.height as usize);
    let map = |transpose: bool, flip_x: bool, flip_y: bool| {
        let (nw, nh) = if transpose { (h, w) } else { (w, h) };
        let mut out = vec![0u8; w * h];
        for ny in 0..nh {
            for nx in 0..nw {
                let (mut sx, mut sy) = if transpose { (ny, nx) } else { (nx, ny) };
                if flip_x {
                    sx = w - 1 - sx;
                }
                if flip_y {
                    sy = h - 1 - sy;
                }
                out[ny * nw + nx] = g.pixels[sy * w + sx];
            }
        }
        Gray {
            width: nw as u32,
            height: nh as u32,
            pixels: out,
        }
    };
    match orientation {
        2 => map(false, true, false),
        3 => map(false, true, true),
        4 => map(false, false, true),
        5 => map(true, false, false),
        6 => map(true, false, true),
        7 => map(true, true, true),
        8 => map(true, true, false),
        _ => g,
    }
}

/// A picture shrunk by averaging `factor`×`factor` blocks (edges that do
/// not fill a block are dropped).
pub fn shrink(g: &Gray, factor: u32) -> Gray {
    let f = factor.clamp(1, 16) as usize;
    let (w, h) = (g.width as usize / f, g.height as usize / f);
    let gw = g.width as usize;
    let area = (f * f) as u32;
    let mut pixels = Vec::with_capacity(w * h);
    // Rows are summed first (a plain vector add the compiler vectorises),
    // then each run of `f` columns; u16 holds up to 16 rows of 255.
    let mut column_sums = vec![0u16; w * f];
    for by in 0..h {
        column_sums.fill(0);
        for row in g.pixels[by * f * gw..].chunks_exact(gw).take(f) {
            for (acc, &v) in column_sums.iter_mut().zip(&row[..w * f]) {
                *acc += u16::from(v);
            }
        }
        pixels.extend(
            column_sums
                .chunks_exact(f)
                .map(|c| (c.iter().map(|&v| u32::from(v)).sum::<u32>() / area) as u8),
        );
    }
    Gray {
        width: w as u32,
        height: h as u32,
        pixels,
    }
}

/// Spread of a picture's luminance below which it shows nothing (blank
/// white or black, a flat colour): grey levels of standard deviation over
/// the 16×16 thumbnail. Card photos and portraits measure far above:
/// 28.8 is the lowest of the 235 photos in `tests/corpus`.
pub const BLANK_SPREAD: f32 = 4.0;

/// Standard deviation of the grey levels of the picture's 16×16 average
/// thumbnail: about 0 for a flat picture whatever its noise.
pub fn luminance_spread(g: &Gray) -> f32 {
    let cells = thumbnail(g);
    let mean = cells.iter().sum::<f32>() / cells.len() as f32;
    let var = cells.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / cells.len() as f32;
    var.sqrt()
}

/// True for a uniform or nearly uniform picture.
pub fn is_blank(g: &Gray) -> bool {
    luminance_spread(g) < BLANK_SPREAD
}

/// The 16×16 average thumbnail, grey levels.
fn thumbnail(g: &Gray) -> [f32; THUMB * THUMB] {
    let mut sums = [0f32; THUMB * THUMB];
    let mut counts = [0f32; THUMB * THUMB];
    let (w, h) = (g.width as usize, g.height as usize);
    let column_bin: Vec<usize> = (0..w).map(|x| x * THUMB / w).collect();
    for (y, row) in g.pixels.chunks_exact(w.max(1)).take(h).enumerate() {
        let base = (y * THUMB / h) * THUMB;
        for (&v, &bin) in row.iter().zip(&column_bin) {
            sums[base + bin] += f32::from(v);
            counts[base + bin] += 1.0;
        }
    }
    let mut cells = [0f32; THUMB * THUMB];
    for i in 0..cells.len() {
        cells[i] = if counts[i] > 0.0 {
            sums[i] / counts[i]
        } else {
            0.0
        };
    }
    cells
}

/// Side of the thumbnail used to compare photos.
pub const THUMB: usize = 16;

/// A photo's fingerprint for near-duplicate detection: a 16×16 average
/// thumbnail, normalised for brightness and contrast, and the aspect ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    /// Zero-mean, unit-variance thumbnail.
    pub cells: [f32; THUMB * THUMB],
    /// Width / height.
    pub aspect: f32,
    /// A 64-bit difference hash, for storage and quick look-ups.
    pub dhash: u64,
}

impl Fingerprint {
    /// Computes the fingerprint of an upright picture (a shrunk copy
    /// serves as well as the original and costs far less).
    pub fn of(g: &Gray) -> Fingerprint {
        let mut cells = thumbnail(g);
        let mut dhash = 0u64;
        for r in 0..8 {
            for c in 0..8 {
                let a = cells[(2 * r) * THUMB + 2 * c];
                let b = cells[(2 * r) * THUMB + 2 * c + 2.min(THUMB - 1 - 2 * c)];
                dhash = (dhash << 1) | u64::from(a > b);
            }
        }
        let mean = cells.iter().sum::<f32>() / cells.len() as f32;
        let var = cells.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / cells.len() as f32;
        let sd = var.sqrt().max(1.0);
        for v in &mut cells {
            *v = (*v - mean) / sd;
        }
        Fingerprint {
            cells,
            aspect: g.width as f32 / g.height.max(1) as f32,
            dhash,
        }
    }

    /// Correlation of the two thumbnails, from -1 to 1.
    pub fn similarity(&self, other: &Fingerprint) -> f32 {
        let n = self.cells.len() as f32;
        self.cells
            .iter()
            .zip(other.cells.iter())
            .map(|(a, b)| a * b)
            .sum::<f32>()
            / n
    }

    /// True when the two are the same photo, re-encoded or resized.
    pub fn near_duplicate(&self, other: &Fingerprint) -> bool {
        let aspect_close = (self.aspect / other.aspect - 1.0).abs() < 0.04;
        aspect_close && self.similarity(other) > NEAR_DUPLICATE_SIMILARITY
    }
}

/// Thumbnail correlation above which two photos are the same picture.
/// Measured on the test corpus: re-encodings and resizes stay above 0.98;
/// the two sides of a card and a portrait stay below 0.8.
pub const NEAR_DUPLICATE_SIMILARITY: f32 = 0.95;

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> Gray {
        let pixels = (0..h)
            .flat_map(|y| (0..w).map(move |x| ((x * 7 + y * 3) % 256) as u8))
            .collect();
        Gray {
            width: w,
            height: h,
            pixels,
        }
    }

    #[test]
    fn sniffs_by_content() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
        assert_eq!(sniff(b"GIF89a......"), Some(Format::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Some(Format::Heic));
        let mut bmp = b"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0".to_vec();
        bmp.resize(30, 0);
        assert_eq!(sniff(&bmp), Some(Format::Bmp));
        assert_eq!(sniff(b"BMW service booking for Monday.."), None);
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(Format::Tiff));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(Format::Tiff));
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
    }

    #[test]
    fn names_and_types_that_say_picture() {
        assert!(looks_like_image(Some("a.JPG"), "application/octet-stream"));
        assert!(looks_like_image(None, "image/png"));
        assert!(!looks_like_image(Some("don.pdf"), "application/pdf"));
    }

    #[test]
    fn oversized_png_is_refused_before_decoding() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&30000u32.to_be_bytes());
        png.extend_from_slice(&30000u32.to_be_bytes());
        png.extend_from_slice(&[8, 0, 0, 0, 0]);
        assert_eq!(
            decode(&png, Format::Png).unwrap_err(),
            PhotoError::Oversized {
                width: 30000,
                height: 30000
            }
        );
    }

    /// A PNG of 8-bit grey `pixels` (w x h), stored with no compression,
    /// Adam7-interlaced when `interlaced`.
    fn grey_png(w: u32, h: u32, pixels: &[u8], interlaced: bool) -> Vec<u8> {
        let mut raw = Vec::new();
        if interlaced {
            for (xs, xo, ys, yo) in ADAM7 {
                let xs_: Vec<u32> = (xo..w).step_by(xs as usize).collect();
                if xs_.is_empty() {
                    continue;
                }
                for y in (yo..h).step_by(ys as usize) {
                    raw.push(0);
                    raw.extend(xs_.iter().map(|&x| pixels[(y * w + x) as usize]));
                }
            }
        } else {
            for row in pixels.chunks(w as usize) {
                raw.push(0);
                raw.extend_from_slice(row);
            }
        }
        // zlib, one stored block.
        let mut z = vec![0x78, 0x01, 0x01];
        z.extend_from_slice(&(raw.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
        z.extend_from_slice(&raw);
        let (mut a, mut b) = (1u32, 0u32);
        for &x in &raw {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        z.extend_from_slice(&((b << 16) | a).to_be_bytes());
        let chunk = |t: &[u8], d: &[u8]| {
            let mut c = (d.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(t);
            c.extend_from_slice(d);
            // The decoder is told to ignore CRCs below; any value will do.
            c.extend_from_slice(&[0, 0, 0, 0]);
            c
        };
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, u8::from(interlaced)]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        png.extend(chunk(b"IDAT", &z));
        png.extend(chunk(b"IEND", b""));
        png
    }

    #[test]
    fn interlaced_and_plain_png_give_the_same_grey_levels() {
        let (w, h) = (13, 11);
        let pixels: Vec<u8> = (0..w * h).map(|i| (i * 37 % 256) as u8).collect();
        for interlaced in [false, true] {
            let png = grey_png(w, h, &pixels, interlaced);
            let g = decode_png_unchecked_crc(&png).unwrap();
            assert_eq!((g.width, g.height), (w, h));
            assert_eq!(g.pixels, pixels, "interlaced: {interlaced}");
        }
    }

    #[test]
    fn a_big_progressive_jpeg_is_refused_before_its_coefficients_are_held() {
        // SOI, SOF2 (progressive): 7000 x 7000, three components, 4:2:0.
        let sof = |w: u16, h: u16| {
            let mut j = vec![0xFF, 0xD8, 0xFF, 0xC2, 0, 17, 8];
            j.extend_from_slice(&h.to_be_bytes());
            j.extend_from_slice(&w.to_be_bytes());
            j.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
            j.extend_from_slice(&[0xFF, 0xD9]);
            j
        };
        let big = sof(7000, 7000);
        // 875 x 875 luma blocks and 2 x 438 x 438 chroma blocks of 64
        // coefficients, two bytes each.
        assert_eq!(progressive_coefficient_bytes(&big), Some(147_112_064));
        assert_eq!(
            decode(&big, Format::Jpeg).unwrap_err(),
            PhotoError::Oversized {
                width: 7000,
                height: 7000
            }
        );
        // A phone-sized progressive picture is decoded as usual (this one
        // then fails for want of scan data, not for its size).
        assert!(matches!(
            decode(&sof(4000, 3000), Format::Jpeg),
            Err(PhotoError::Unreadable(_))
        ));
    }

    #[test]
    fn orientation_rotates() {
        let g = Gray {
            width: 3,
            height: 2,
            pixels: vec![1, 2, 3, 4, 5, 6],
        };
        let r = orient(g.clone(), 6);
        assert_eq!((r.width, r.height), (2, 3));
        assert_eq!(r.pixels, vec![4, 1, 5, 2, 6, 3]);
        let r = orient(g.clone(), 3);
        assert_eq!(r.pixels, vec![6, 5, 4, 3, 2, 1]);
        let r = orient(g, 8);
        assert_eq!(r.pixels, vec![3, 6, 2, 5, 1, 4]);
    }

    #[test]
    fn fingerprint_survives_resizing() {
        let g = gradient(640, 400);
        let small = shrink(&g, 2);
        let a = Fingerprint::of(&g);
        let b = Fingerprint::of(&small);
        assert!(a.near_duplicate(&b), "{}", a.similarity(&b));
        let other = orient(g.clone(), 3);
        assert!(!a.near_duplicate(&Fingerprint::of(&other)));
    }
}
