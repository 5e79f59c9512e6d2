//! The decoders: each picture format read whole to grey levels, in
//! bounded memory (rows or strips at a time where the format allows),
//! with damage of any kind an error.

use super::*;

/// Luma of an 8-bit RGB pixel, the weights the image crate uses (Rec. 709).
#[inline]
pub(super) fn luma8(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 2126 + u32::from(g) * 7152 + u32::from(b) * 722 + 5000) / 10000) as u8
}

/// Grey level of one pixel of `channels` 8-bit samples (grey, grey+alpha,
/// RGB, RGBA: alpha is ignored, as the image crate's conversion does).
#[inline]
pub(super) fn grey_of(px: &[u8]) -> u8 {
    match px.len() {
        1 | 2 => px[0],
        _ => luma8(px[0], px[1], px[2]),
    }
}

/// Adam7's seven passes: (x step, x offset, y step, y offset).
pub(super) const ADAM7: [(u32, u32, u32, u32); 7] = [
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
pub(super) fn decode_png(b: &[u8], budget: &Budget) -> Result<Gray, PhotoError> {
    decode_png_with(b, budget, false)
}

#[cfg(test)]
pub(super) fn decode_png_unchecked_crc(b: &[u8]) -> Result<Gray, PhotoError> {
    decode_png_with(b, &Budget::unlimited(), true)
}

pub(super) fn decode_png_with(
    b: &[u8],
    budget: &Budget,
    ignore_crc: bool,
) -> Result<Gray, PhotoError> {
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
pub(super) enum TiffRead {
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
pub(super) fn decode_tiff(b: &[u8], budget: &Budget) -> Result<Gray, TiffRead> {
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
pub(super) fn progressive_coefficient_bytes(b: &[u8]) -> Option<u64> {
    let (marker, i) = jpeg_frame(b)?;
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
        .map(|&(hs, vs)| (w * hs).div_ceil(hmax).div_ceil(8) * (h * vs).div_ceil(vmax).div_ceil(8))
        .sum();
    Some(blocks * 64 * 2)
}

pub(super) fn decode_jpeg(b: &[u8]) -> Result<Gray, PhotoError> {
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
pub(super) const SHORT_SCAN_FILL: [u8; 128] = {
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
pub(super) fn primary_eoi(b: &[u8]) -> Option<usize> {
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
pub(super) fn jpeg_has_end(b: &[u8]) -> bool {
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

pub(super) fn exif_orientation_raw(data: Vec<u8>) -> Option<u32> {
    let exif = exif::Reader::new().read_raw(data).ok()?;
    orientation_field(&exif)
}

pub(super) fn orientation_field(exif: &exif::Exif) -> Option<u32> {
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?
        .value
        .get_uint(0)
}

pub(super) fn decode_with_image(b: &[u8], format: Format) -> Result<Gray, PhotoError> {
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
pub(super) fn decode_heif(b: &[u8]) -> Result<Gray, PhotoError> {
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
pub(super) fn grey_from_plane(
    data: &[u8],
    w: u32,
    h: u32,
    stride: usize,
    storage_bits: u8,
    bits: u8,
) -> Gray {
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
pub(super) fn decode_heif(_b: &[u8]) -> Result<Gray, PhotoError> {
    Err(PhotoError::Unreadable(
        "this build reads no HEIC (feature `heic` off)".into(),
    ))
}
