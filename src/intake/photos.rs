//! Photos: what an attachment really is (by content, not by its name),
//! its size read from the header before any pixel is decoded, a complete
//! decode to grey levels with EXIF orientation applied, and the small
//! fingerprints the rest of inspection needs.

use serde::Serialize;
use std::io::Cursor;

use super::budget::{Budget, OverBudget};

mod decode;
use decode::{decode_heif, decode_jpeg, decode_png, decode_tiff, decode_with_image, TiffRead};

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

/// The JPEG's frame header (SOF0..SOF15 but DHT, JPG and DAC): its
/// marker and the offset of its `FF` byte, found by walking the segments
/// before the first scan. `None` without one or when a length runs out.
fn jpeg_frame(b: &[u8]) -> Option<(u8, usize)> {
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
            return Some((marker, i));
        }
        if marker == 0xDA {
            return None;
        }
        i += 2 + len;
    }
    None
}

fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    let (_, i) = jpeg_frame(b)?;
    Some((be16(b, i + 7)?, be16(b, i + 5)?))
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
mod tests;
